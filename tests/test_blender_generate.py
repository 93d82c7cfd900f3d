"""Generate in real Blender against a real sketch worker over HTTP: the operator returns at
once, the timer tick follows the job, and the cue lands where and as long as asked."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    add_blocker,
    blender_addon,
    bpy,
    scene_rate,
    strips_of,
    tick_until_placed,
)

from acestep_core.jobs import DONE
from acestep_core.timeline import frames_to_seconds

PROMPT = "calm exploration, ambient, soft pads"


def _settings(scene, **values):
    settings = scene.acestep
    settings.prompt = PROMPT
    settings.use_bpm, settings.bpm = True, 120.0  # the sketch backend needs at least one bar
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


def test_generate_returns_at_once_and_places_candidates_on_free_channels(addon, worker):
    scene = bpy.context.scene
    # Channel 1 is busy over part of the span and channel 2 at its very end: the cue
    # must go to the first channel free over the WHOLE span, never overlapping.
    add_blocker(scene, "titles", channel=1, start=90, end=130)
    add_blocker(scene, "late fx", channel=2, start=210, end=260)
    add_blocker(scene, "after", channel=3, start=220, end=300)  # touches the cue's end only
    scene.frame_current = 100
    _settings(scene, duration=5.0, candidates=3)

    started = time.perf_counter()
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    assert time.perf_counter() - started < 1.0, "Generate must not wait for the music"
    runtime = addon.runtime
    assert runtime.busy and runtime.worker_state == "CONNECTED"
    assert not bpy.ops.acestep.generate.poll(), "the busy flag greys out Generate"
    assert bpy.ops.acestep.cancel.poll()

    progress_seen = []
    tick_until_placed(addon, on_tick=lambda _: progress_seen.append((runtime.progress, runtime.stage)))
    assert not runtime.busy and runtime.progress == 0.0
    assert all(0.0 <= p <= 1.0 and stage for p, stage in progress_seen[:-1]), progress_seen  # the last tick placed

    cues = [s for s in strips_of(scene) if s.type == "SOUND"]
    assert [(s.channel, s.frame_final_start, s.frame_final_duration) for s in cues] == [
        (3, 100, 120), (4, 100, 120), (5, 100, 120)]  # 5 s at 24 fps
    assert [s.mute for s in cues] == [False, True, True]
    assert [s.name for s in cues] == [PROMPT, f"{PROMPT} #2", f"{PROMPT} #3"]
    job_ids = {s["acestep_job"] for s in cues}
    assert len(job_ids) == 1 and worker.status(job_ids.pop()).status == DONE
    seeds = [int(s["acestep_seed"]) for s in cues]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2
    assert all(s["acestep_prompt"] == PROMPT and s["acestep_model"] == "sketch" for s in cues)
    assert len({s["acestep_group"] for s in cues}) == 1
    stored = json.loads(cues[1]["acestep_request"])
    assert stored["seed"] == seeds[1] and stored["bpm"] == 120.0 and stored["candidates"] == 1
    # Unsaved .blend: the audio went to a temporary folder, and the user is told.
    paths = [Path(bpy.path.abspath(s.sound.filepath)) for s in cues]
    assert all(p.is_file() and p.parent.name == "acestep_audio" for p in paths)
    assert "not saved" in runtime.message and runtime.message_level == "WARNING"


def test_length_fits_selected_strips_preview_range_and_markers_at_29_97(addon, worker):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001
    rate = scene_rate(scene)
    shot_a = add_blocker(scene, "shot a", channel=1, start=101, end=180)
    shot_b = add_blocker(scene, "shot b", channel=1, start=180, end=251)
    for strip in strips_of(scene):
        strip.select = strip in (shot_a, shot_b)
    scene.use_preview_range = True  # first: turning it on copies the scene range into it
    scene.frame_preview_start, scene.frame_preview_end = 400, 549
    scene.timeline_markers.new("door opens", frame=700)
    scene.timeline_markers.new("door shuts", frame=611)
    cases = [("SELECTED", {}, 101, 150, 2),  # channel 1 holds the shots over that span
             ("PREVIEW", {}, 400, 150, 1),
             ("MARKERS", {"marker_from": "door opens", "marker_to": "door shuts"}, 611, 89, 1)]
    for source, extra, start, frames, channel in cases:
        _settings(scene, duration_source=source, **extra)
        assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
        job = addon.tracker.task.jobs[0]
        assert job.request.duration == pytest.approx(float(frames_to_seconds(frames, rate)), abs=1e-9)
        tick_until_placed(addon)
        placed = [s for s in strips_of(scene) if s.type == "SOUND" and s.frame_final_start == start]
        assert [(s.frame_final_start, s.frame_final_duration) for s in placed] == [(start, frames)], source
        assert placed[0].channel == channel


def test_saved_blend_keeps_audio_beside_it_by_relative_path(addon, worker, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    blend = project / "cutscene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    scene.frame_current = 48
    _settings(scene, duration=4.0)
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_placed(addon)
    cue = next(s for s in strips_of(scene) if s.type == "SOUND")
    assert cue.sound.filepath.startswith("//acestep_audio/")
    assert (project / "acestep_audio" / Path(cue.sound.filepath).name).is_file()
    assert "not saved" not in addon.runtime.message
    bpy.ops.wm.save_mainfile()

    # The project moves (another disk, another machine): the audio moves with it.
    moved = tmp_path / "moved"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    bpy.ops.wm.open_mainfile(filepath=str(moved / "cutscene.blend"))
    scene = bpy.context.scene
    cue = next(s for s in strips_of(scene) if s.type == "SOUND")
    resolved = Path(bpy.path.abspath(cue.sound.filepath))
    assert resolved.is_file() and resolved.parent == moved / "acestep_audio"
    assert (cue.frame_final_start, cue.frame_final_duration, cue.frame_duration) == (48, 96, 96)
    assert cue["acestep_prompt"] == PROMPT


def test_use_this_take_keeps_one_and_regenerate_stacks_a_muted_variation(addon, worker):
    scene = bpy.context.scene
    scene.frame_current = 10
    _settings(scene, duration=4.0, candidates=3)
    bpy.ops.acestep.generate()
    tick_until_placed(addon)
    first, second, third = [s for s in strips_of(scene) if s.type == "SOUND"]

    editor = scene.sequence_editor
    editor.active_strip = first
    scene.acestep.variation = "COVER"  # the sketch backend cannot: falls back to a new seed, says so
    assert bpy.ops.acestep.regenerate() == {"FINISHED"}, addon.runtime.message
    tick_until_placed(addon)
    variation = next(s for s in strips_of(scene) if s.name.endswith("variation"))
    assert variation.mute and variation.channel == 4
    assert (variation.frame_final_start, variation.frame_final_duration) == (10, 96)
    assert variation["acestep_group"] == first["acestep_group"]
    assert variation["acestep_prompt"] == PROMPT and variation["acestep_job"] != first["acestep_job"]
    assert "cannot make covers" in addon.runtime.message

    editor.active_strip = third
    assert bpy.ops.acestep.use_candidate() == {"FINISHED"}
    remaining = [s for s in strips_of(scene) if s.type == "SOUND"]
    assert [(s.name, s.channel, s.mute) for s in remaining] == [(f"{PROMPT} #3", 1, False)]


def test_bad_input_is_refused_before_anything_is_sent(addon, worker):
    scene = bpy.context.scene
    cases = [
        ({"prompt": "   "}, "type a prompt first"),
        ({"duration_source": "SELECTED"}, "no strips are selected"),
        ({"duration_source": "PREVIEW"}, "the preview range is off"),
        ({"duration_source": "MARKERS", "marker_from": "nope"}, "pick two markers"),
    ]
    jobs_before = len(worker.jobs(limit=100))
    for values, message in cases:
        _settings(scene, **values)
        with pytest.raises(RuntimeError, match=message):  # how bpy surfaces an operator's ERROR report
            bpy.ops.acestep.generate()
        assert message in addon.runtime.message and addon.runtime.message_level == "ERROR"
        assert not addon.runtime.busy
        scene.acestep.duration_source = "SECONDS"
    assert len(worker.jobs(limit=100)) == jobs_before
    assert strips_of(scene) == []


def test_files_already_in_the_audio_folder_are_never_overwritten(addon, worker, tmp_path):
    """A taken name gets the next number, audio and sidecar alike (x.wav.json): the same
    prompt twice, and files that were there before, all stay."""
    project = tmp_path / "project"
    audio = project / "acestep_audio"
    audio.mkdir(parents=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "cutscene.blend"))
    scene = bpy.context.scene
    _settings(scene, duration=4.0)
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_placed(addon)
    [first] = [s for s in strips_of(scene) if s.type == "SOUND"]
    worker_name = Path(worker.status(first["acestep_job"]).outputs[0].path).name
    stem = Path(worker_name).stem
    first_path = Path(bpy.path.abspath(first.sound.filepath))
    assert first_path == audio / worker_name and (audio / f"{worker_name}.json").is_file()

    # Someone's own file under the next number: its audio is free, its sidecar is not.
    (audio / f"{stem}_2.wav.json").write_text("mine")
    before = {p.name: p.read_bytes() for p in audio.iterdir()}
    for candidates in (1, 2, 2):
        scene.acestep.candidates = candidates
        assert bpy.ops.acestep.generate() == {"FINISHED"}
        tick_until_placed(addon)
    assert {p.name: p.read_bytes() for p in audio.iterdir() if p.name in before} == before
    new_audio = [f"{stem}_3.wav", f"{stem}-1.wav", f"{stem}-2.wav", f"{stem}_2-1.wav", f"{stem}_2-2.wav"]
    assert sorted(p.name for p in audio.iterdir() if p.name not in before) \
        == sorted(new_audio + [f"{name}.json" for name in new_audio])
    placed = {Path(bpy.path.abspath(s.sound.filepath)).name for s in strips_of(scene) if s.type == "SOUND"}
    assert placed == {worker_name, *new_audio}
