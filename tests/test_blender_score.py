"""Score Cutscene in real Blender against a real sketch worker: one cue per marker section,
frame-accurate at 24 and 29.97 fps, crossfaded on a channel pair, in one undo step."""

from __future__ import annotations

from fractions import Fraction

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    BLENDER_VERSION,
    addon,
    add_blocker,
    blender_addon,
    bpy,
    scene_rate,
    strips_of,
    tick_until_idle,
    volume_at,
)

from acestep_core.timeline import frames_to_seconds, seconds_to_frames

MARKER_NAMES = ("calm exploration", "boss appears", "victory fanfare")
# (fps, fps_base, marker frames, frame_end): sections of 5 s, 6 s and 6 s, whole bars at 120 BPM.
LAYOUTS = {
    "24 fps": (24, 1.0, (1, 121, 265), 408),
    "29.97 fps": (30, 1.001, (1, 151, 331), 510),
}


def _cutscene(scene, fps, fps_base, marker_frames, frame_end, crossfade=0.5):
    scene.render.fps, scene.render.fps_base = fps, fps_base
    scene.frame_start, scene.frame_end = 1, frame_end
    for name, frame in zip(MARKER_NAMES, marker_frames):
        scene.timeline_markers.new(name, frame=frame)
    settings = scene.acestep
    settings.crossfade = crossfade
    settings.use_bpm, settings.bpm = True, 120.0
    return settings


def _cues(scene):
    return sorted((s for s in strips_of(scene) if s.type == "SOUND"), key=lambda s: s.frame_final_start)


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_score_cutscene_places_frame_accurate_crossfaded_cues(addon, worker, layout):
    fps, fps_base, marker_frames, frame_end = LAYOUTS[layout]
    scene = bpy.context.scene
    _cutscene(scene, fps, fps_base, marker_frames, frame_end)
    rate = scene_rate(scene)
    fade = seconds_to_frames(0.5, rate)  # 12 frames at 24 fps, 15 at 29.97
    # The edit already holds picture on channel 1 and a sound effect on channel 3:
    # the music needs two adjacent channels free over the whole cutscene.
    add_blocker(scene, "picture", channel=1, start=1, end=frame_end + 1)
    add_blocker(scene, "door slam", channel=3, start=200, end=230)

    assert bpy.ops.acestep.score_cutscene() == {"FINISHED"}, addon.runtime.message
    task = addon.tracker.task
    assert [job.plan.section for job in task.jobs] == list(MARKER_NAMES)
    tick_until_idle(addon)

    cues = _cues(scene)
    ends = list(marker_frames[1:]) + [frame_end + 1]
    assert [c.name for c in cues] == list(MARKER_NAMES)
    assert [c.frame_final_start for c in cues] == list(marker_frames)
    assert [c.frame_final_duration for c in cues] == [
        ends[0] - marker_frames[0] + fade, ends[1] - marker_frames[1] + fade, ends[2] - marker_frames[2]]
    assert [c.channel for c in cues] == [4, 5, 4]
    assert not any(c.mute for c in cues)
    assert [c["acestep_section"] for c in cues] == list(MARKER_NAMES)
    assert [c["acestep_prompt"] for c in cues] == list(MARKER_NAMES)
    for cue in cues:
        # What the worker was asked for is exactly the frames placed.
        asked = worker.status(cue["acestep_job"]).request["duration"]
        assert seconds_to_frames(asked, rate) == cue.frame_final_duration
        assert abs(Fraction(asked) - frames_to_seconds(cue.frame_final_duration, rate)) < Fraction(1, 10**9)

    first, boss, victory = (c.name for c in cues)
    boundary = marker_frames[1]
    assert volume_at(scene, first, marker_frames[0]) == pytest.approx(1.0)  # the first cue starts at full volume
    assert volume_at(scene, first, boundary) == pytest.approx(1.0)
    assert volume_at(scene, first, boundary + fade) == pytest.approx(0.0)
    assert volume_at(scene, boss, boundary) == pytest.approx(0.0)
    assert volume_at(scene, boss, boundary + fade) == pytest.approx(1.0)
    middle = boundary + fade // 2
    assert 0.0 < volume_at(scene, boss, middle) < 1.0
    assert volume_at(scene, first, middle) + volume_at(scene, boss, middle) == pytest.approx(1.0, abs=0.05)
    assert volume_at(scene, victory, frame_end) == pytest.approx(1.0)  # the last cue plays out to the end
    assert "3 cues on channels 4, 5, crossfaded" in addon.runtime.message


def test_score_is_one_undo_step(addon, worker):
    scene = bpy.context.scene
    _cutscene(scene, *LAYOUTS["24 fps"])
    add_blocker(scene, "picture", channel=1, start=1, end=409)
    bpy.ops.ed.undo_push(message="before scoring")  # what Blender records for the user's last edit
    bpy.ops.acestep.score_cutscene()
    tick_until_idle(addon)
    assert [c.name for c in _cues(bpy.context.scene)] == list(MARKER_NAMES)

    bpy.ops.ed.undo()
    scene = bpy.context.scene
    assert _cues(scene) == [], "one undo removes every cue of the score"
    assert [s.name for s in strips_of(scene)] == ["picture"]
    bpy.ops.ed.redo()
    assert [c.name for c in _cues(bpy.context.scene)] == list(MARKER_NAMES)


def test_section_prompts_and_style_words_shape_each_cue(addon, worker):
    scene = bpy.context.scene
    settings = _cutscene(scene, *LAYOUTS["24 fps"], crossfade=0.0)
    assert bpy.ops.acestep.fill_section_prompts() == {"FINISHED"}
    assert [item.marker for item in settings.section_prompts] == list(MARKER_NAMES)
    settings.section_prompts[1].prompt = "tense boss battle, fast drums"
    settings.score_style = "synthwave"
    bpy.ops.acestep.fill_section_prompts()  # listing again keeps what was typed
    assert settings.section_prompts[1].prompt == "tense boss battle, fast drums"

    bpy.ops.acestep.score_cutscene()
    tick_until_idle(addon)
    cues = _cues(scene)
    assert [c["acestep_prompt"] for c in cues] == [
        "calm exploration, synthwave", "tense boss battle, fast drums, synthwave", "victory fanfare, synthwave"]
    assert [c.name for c in cues] == list(MARKER_NAMES)  # strips stay named for their markers
    # No crossfade: the cues butt together exactly at the markers, on alternating channels.
    assert [(c.frame_final_start, c.frame_final_end, c.channel) for c in cues] == [
        (1, 121, 1), (121, 265, 2), (265, 409, 1)]


@pytest.mark.parametrize(
    "markers, message",
    [
        ((), "there are no markers before the end of the scene"),
        ((("late", 2000),), "there are no markers before the end of the scene"),
        ((("a", 10), ("b", 10)), "markers 'a' and 'b' are both at"),
        ((("", 10),), "the marker at frame 10 has no name"),
    ],
)
def test_markers_that_make_no_score_are_explained(addon, worker, markers, message):
    scene = bpy.context.scene
    for name, frame in markers:
        scene.timeline_markers.new(name, frame=frame)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.acestep.score_cutscene()
    assert message in addon.runtime.message and not addon.runtime.busy


@pytest.mark.skipif(BLENDER_VERSION < (5, 0, 0), reason="the sequencer scene is separate from the window's scene from Blender 5.0")
def test_blender_5_scores_the_sequencer_scene_not_the_window_scene(addon, worker):
    window_scene = bpy.context.scene
    edit = bpy.data.scenes.new("Edit")
    bpy.context.workspace.sequencer_scene = edit
    try:
        _cutscene(edit, *LAYOUTS["24 fps"])
        assert bpy.context.sequencer_scene == edit
        assert bpy.ops.acestep.score_cutscene() == {"FINISHED"}, addon.runtime.message
        tick_until_idle(addon)
        assert [c.name for c in _cues(edit)] == list(MARKER_NAMES)
        assert _cues(window_scene) == []
    finally:
        bpy.context.workspace.sequencer_scene = None
