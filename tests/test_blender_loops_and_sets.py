"""Loop and Make Intensity Set in real Blender against a real sketch worker: a looped
cue's strip is exactly one loop long (not the file, which has a guard frame), or its
intro and one loop, with where the loop starts on the strip, and a set
lands as stacked layers at the playhead with its manifest beside the audio."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    LayoutStandIn,
    addon,
    add_blocker,
    blender_addon,
    bpy,
    draw_panels,
    scene_rate,
    strips_of,
    tick_until_idle,
)

from acestep_core.jobs import CANCELLED
from acestep_core.timeline import seconds_to_frames

PROMPT = "tense chase, synthwave, fast drums"
FAST_BPM = 240.0  # two bars = 2 s: short loops keep the sketch worker quick


def _settings(scene, **values):
    settings = scene.acestep
    settings.prompt = PROMPT
    settings.use_bpm, settings.bpm = True, FAST_BPM
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


def _sounds(scene):
    return [s for s in strips_of(scene) if s.type == "SOUND"]


def _loop_frames(record: dict, sample_rate: int, rate: Fraction) -> int:
    return seconds_to_frames(Fraction(record["loop_end_exclusive"], sample_rate), rate)


def test_loop_generate_places_exactly_one_loop_with_its_loop_record(addon, worker):
    scene = bpy.context.scene
    scene.frame_current = 10
    _settings(scene, duration=5.0, loop=True, loop_bars=2, loudness="console")
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    (strip,) = _sounds(scene)
    record = json.loads(strip["acestep_loop"])
    assert record["bars"] == 2 and record["bpm"] == FAST_BPM
    job = worker.status(strip["acestep_job"])
    output = job.outputs[0]
    assert job.request["loop"] is True and job.request["loop_bars"] == 2 and job.request["loudness"] == "console"
    # One loop: from loop_end_exclusive, not the file (one guard frame longer), not the 5 s asked.
    expected = _loop_frames(record, output.sample_rate, scene_rate(scene))
    assert (strip.frame_final_start, strip.frame_final_duration) == (10, expected)
    assert record["frames_in_file"] > record["loop_end_exclusive"]
    assert expected == 48 + seconds_to_frames(Fraction(record["loop_start"], output.sample_rate), scene_rate(scene))
    assert job.request["intro_bars"] == 0 and record["intro_bars"] == 0 and record["loop_start"] == 0
    assert (strip["acestep_loop_start"], strip["acestep_intro_bars"]) == (0.0, 0)
    scene.sequence_editor.active_strip = strip
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    assert "Loop: 2 bars at 240 BPM; the strip is one loop" in shown and "Intro" not in shown


class _PropsLayout(LayoutStandIn):
    """The panel's layout, also recording which properties it shows."""

    def __init__(self, labels=None, props=None):
        super().__init__(labels)
        self.props = props if props is not None else []

    def _child(self, *args, **kwargs):
        return _PropsLayout(self.labels, self.props)

    row = column = box = split = grid_flow = _child

    def prop(self, data, name, **kwargs):
        super().prop(data, name, **kwargs)
        self.props.append(name)


def test_auto_intro_sends_the_intro_the_cli_makes(addon, worker):
    """Auto Intro before a 2-bar loop is a 2-bar intro, as `generate --intro auto` makes it."""
    from acestep_core.cli import intro_from_text

    scene = bpy.context.scene
    settings = _settings(scene, duration=5.0, loop=True, loop_bars=2, intro_bars=0)
    settings.intro_auto = True
    layout = _PropsLayout()
    addon.module.panel.draw_loop_options(layout, settings)
    assert "intro_auto" in layout.props
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message
    (strip,) = _sounds(scene)
    job = worker.status(strip["acestep_job"])
    assert job.request["intro_bars"] == intro_from_text("auto", 2) == 2 == strip["acestep_intro_bars"]


def test_loop_with_an_intro_places_the_intro_and_one_loop_and_records_where_the_loop_starts(addon, worker):
    scene = bpy.context.scene
    scene.frame_current = 10
    settings = _settings(scene, duration=5.0, loop=True, loop_bars=2, intro_bars=1)
    layout = _PropsLayout()
    addon.module.panel.draw_loop_options(layout, settings)
    assert "intro_bars" in layout.props  # shown under Loop while Loop is on
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    (strip,) = _sounds(scene)
    job = worker.status(strip["acestep_job"])
    output = job.outputs[0]
    assert job.request["loop"] is True and job.request["loop_bars"] == 2 and job.request["intro_bars"] == 1
    record = json.loads(strip["acestep_loop"])
    rate = scene_rate(scene)
    assert record["intro_bars"] == 1 and record["bars"] == 2
    assert record["intro_frames"] == record["loop_start"] == output.sample_rate  # one bar at 240 BPM: 1 s
    # The strip is the intro and one loop, from the file's first frame (not the 5 s asked).
    assert (strip.frame_final_start, strip.frame_final_duration) == (10, 24 + 48)
    assert strip.frame_final_duration == _loop_frames(record, output.sample_rate, rate)
    assert strip.frame_start == 10 and strip.frame_offset_start == 0
    assert strip["acestep_loop_start"] == pytest.approx(1.0) and strip["acestep_intro_bars"] == 1
    scene.sequence_editor.active_strip = strip
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    assert ("Intro 1 bar, then the loop (2 bars at 240 BPM) from 1 s, frame 34; "
            "the strip is the intro and one loop") in shown

    # Regenerate keeps the intro: same request, same length.
    assert bpy.ops.acestep.regenerate() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message
    again = next(s for s in _sounds(scene) if s != strip)
    assert worker.status(again["acestep_job"]).request["intro_bars"] == 1
    assert (again.frame_final_start, again.frame_final_duration) == (10, 72) and again.mute


def test_intro_bars_count_only_with_loop_on(addon, worker):
    scene = bpy.context.scene
    settings = _settings(scene, duration=3.0, loop=False, intro_bars=2)
    layout = _PropsLayout()
    addon.module.panel.draw_loop_options(layout, settings)
    assert "intro_bars" not in layout.props  # hidden with Loop off, and not sent
    settings.intro_bars = 40
    assert settings.intro_bars == 16  # the most an intro can be
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message
    (strip,) = _sounds(scene)
    request = worker.status(strip["acestep_job"]).request
    assert request["loop"] is False and request["intro_bars"] == 0
    assert "acestep_loop" not in strip and "acestep_loop_start" not in strip
    assert strip.frame_final_duration == 72


def test_make_intensity_set_stacks_layers_that_play_together_and_puts_stingers_after_the_loop(addon, worker):
    scene = bpy.context.scene
    add_blocker(scene, "titles", channel=1, start=0, end=40)  # the set must go above it
    scene.frame_current = 20
    _settings(scene, set_intensities=2, set_bars=2, set_stingers=2)
    assert scene.acestep.set_kind == "LAYERS"  # the default
    bpy.ops.ed.undo_push(message="before the set")  # what Blender records for the user's last edit

    started = time.perf_counter()
    assert bpy.ops.acestep.make_intensity_set() == {"FINISHED"}
    assert time.perf_counter() - started < 1.0, "the set must not be waited for"
    assert addon.runtime.busy and not bpy.ops.acestep.make_intensity_set.poll()
    assert not bpy.ops.acestep.generate.poll() and bpy.ops.acestep.cancel.poll()
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    sounds = _sounds(scene)
    layers = [s for s in sounds if s["acestep_role"] in ("base", "layer")]
    stingers = [s for s in sounds if s["acestep_role"] == "stinger"]
    assert [s["acestep_role"] for s in layers] == ["base", "layer", "layer"]
    assert [s.channel for s in layers] == [2, 3, 4]
    # The layers stack: they all play (their sum is the base), and the base, the full mix, is muted.
    assert [s.mute for s in layers] == [True, False, False]
    assert [s["acestep_level"] for s in layers] == [0, 1, 2]
    job = worker.status(layers[0]["acestep_job"])
    parts = [", ".join(layer["parts"]) for layer in job.manifest["layers"]]
    assert [s.name for s in layers] == [f"{PROMPT} (base)", f"{PROMPT} (layer 1/2: {parts[0]})",
                                        f"{PROMPT} (layer 2/2: {parts[1]})"]
    record = json.loads(layers[0]["acestep_loop"])
    loop_len = _loop_frames(record, job.outputs[0].sample_rate, scene_rate(scene))
    assert {(s.frame_final_start, s.frame_final_duration) for s in layers} == {(20, loop_len)}
    assert all(s["acestep_prompt"] == PROMPT and s["acestep_job"] == job.id and s["acestep_seed"] for s in sounds)

    assert len(stingers) == 2 and {s.channel for s in stingers} == {5}
    assert stingers[0].frame_final_start == 20 + loop_len
    assert stingers[1].frame_final_start == stingers[0].frame_final_end
    assert not any(s.mute for s in stingers)
    assert [s.name for s in stingers] == [f"{PROMPT} (stinger 1/2)", f"{PROMPT} (stinger 2/2)"]

    folder = Path(bpy.path.abspath(layers[0].sound.filepath)).parent
    assert all(Path(bpy.path.abspath(s.sound.filepath)).parent == folder for s in sounds)
    manifests = list(folder.glob("*-set.json"))
    assert len(manifests) == 1 and list(folder.glob("*-set.tres")) and list(folder.glob("*-layers.tres"))
    manifest = json.loads(manifests[0].read_text())
    named = json.dumps(manifest)
    assert all(Path(s.sound.filepath).name in named for s in layers)
    assert 'type="AudioStreamSynchronized"' in next(folder.glob("*-layers.tres")).read_text()

    assert "placed" in addon.runtime.message and "layers play together" in addon.runtime.message

    bpy.ops.ed.undo()
    assert _sounds(bpy.context.scene) == [], "one undo removes the whole set"
    assert [s.name for s in strips_of(bpy.context.scene)] == ["titles"]


def test_make_intensity_set_of_variants_mutes_them_to_audition_one_at_a_time(addon, worker):
    scene = bpy.context.scene
    scene.frame_current = 20
    _settings(scene, set_kind="VARIANTS", set_intensities=2, set_bars=2, set_stingers=0)
    assert bpy.ops.acestep.make_intensity_set() == {"FINISHED"}
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    layers = [s for s in _sounds(scene) if s["acestep_role"] in ("base", "intensity")]
    assert [s["acestep_role"] for s in layers] == ["base", "intensity", "intensity"]
    assert [s.mute for s in layers] == [False, True, True]
    assert [s.name for s in layers] == [f"{PROMPT} (base)", f"{PROMPT} (intensity 1/2)", f"{PROMPT} (intensity 2/2)"]
    job = worker.status(layers[0]["acestep_job"])
    assert job.set_options == {"variants": 2, "bars": 2, "stingers": 0} and job.manifest["mode"] == "variants"
    assert "variants muted" in addon.runtime.message


def test_cancel_mid_set_leaves_no_strips(addon, worker):
    scene = bpy.context.scene
    _settings(scene, set_intensities=3, set_bars=4, set_stingers=2)
    assert bpy.ops.acestep.make_intensity_set() == {"FINISHED"}
    task = addon.tracker.task
    deadline = time.monotonic() + 30
    while task.jobs[0].job_id is None and time.monotonic() < deadline:
        addon.tick()
        time.sleep(0.02)
    assert task.jobs[0].job_id is not None
    assert bpy.ops.acestep.cancel() == {"FINISHED"}
    tick_until_idle(addon)
    assert _sounds(scene) == []
    assert "cancelled" in addon.runtime.message
    status = worker.wait(task.jobs[0].job_id, timeout=30)
    assert status.status == CANCELLED or status.finished


def test_bad_set_settings_say_what_to_change_before_anything_is_sent(addon):
    scene = bpy.context.scene
    _settings(scene, prompt="")
    with pytest.raises(RuntimeError, match="type a prompt"):  # an ERROR report raises when called from Python
        bpy.ops.acestep.make_intensity_set()
    assert "type a prompt" in addon.runtime.message and addon.runtime.message_level == "ERROR"
    # 200 bars at 30 BPM is far past the longest cue: refused here, with the fix.
    _settings(scene, bpm=30.0, set_bars=200)
    with pytest.raises(RuntimeError, match="200 bars at 30 BPM"):
        bpy.ops.acestep.make_intensity_set()
    assert "ask for fewer bars" in addon.runtime.message and "Make Intensity Set again" in addon.runtime.message
    assert not addon.tracker.busy and _sounds(scene) == []
