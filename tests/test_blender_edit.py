"""Editing the active sound strip in real Blender against a real sketch worker over HTTP:
Split into Stems lands aligned above the strip in one undo step; Repaint Selection and Add
Layer are greyed out with the reason on a model that cannot do them; the range a repaint
changes is read off the preview range or the markers, in seconds inside the file."""

from __future__ import annotations

import json
import time
import wave
from fractions import Fraction
from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    add_blocker,
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)

PROMPT = "tense boss battle, synthwave, fast drums, bass"


def _sounds(scene) -> list:
    return [s for s in strips_of(scene) if s.type == "SOUND"]


def _generate_cue(addon, scene, frame: int = 10, seconds: float = 4.0):
    """A sketch cue placed by the add-on itself (its file has the sketch's sidecar)."""
    settings = scene.acestep
    settings.prompt, settings.duration = PROMPT, seconds
    settings.use_bpm, settings.bpm = True, 120.0
    scene.frame_current = frame
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    (cue,) = _sounds(scene)
    return cue


def write_wav(path: Path, seconds: float, rate: int = 48000, channels: int = 2) -> Path:
    """A plain 16-bit WAV that no acestep-dcc backend made (no sidecar)."""
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(((i * 37) % 2000 - 1000).to_bytes(2, "little", signed=True) * channels
                                 for i in range(frames)))
    return path


def add_sound(scene, path: Path, name: str, channel: int, frame_start: int):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    return strips.new_sound(name=name, filepath=str(path), channel=channel, frame_start=frame_start)


def test_split_into_stems_lands_aligned_above_the_strip_tied_together_in_one_undo_step(addon, worker):
    scene = bpy.context.scene
    cue = _generate_cue(addon, scene)
    source_name = cue.name
    # The user trimmed both ends: the stems must show the same moment of the music.
    cue.frame_final_start, cue.frame_final_end = cue.frame_final_start + 12, cue.frame_final_end - 6
    add_blocker(scene, "titles", channel=2, start=40, end=60)  # inside the span: stems go above it
    scene.sequence_editor.active_strip = cue
    span = (cue.frame_final_start, cue.frame_final_end)
    assert span == (22, 100) and cue.frame_start == 10 and cue.frame_offset_start == 12
    content = cue.frame_duration
    bpy.ops.ed.undo_push(message="trimmed the cue")

    assert bpy.ops.acestep.split_stems.poll()
    started = time.perf_counter()
    assert bpy.ops.acestep.split_stems() == {"FINISHED"}, addon.runtime.message
    assert time.perf_counter() - started < 1.0, "Split into Stems must not wait for the worker"
    assert addon.runtime.busy and not bpy.ops.acestep.split_stems.poll() and bpy.ops.acestep.cancel.poll()
    tick_until_idle(addon)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    stems = [s for s in _sounds(scene) if s.get("acestep_edit") == "stem"]
    job = worker.status(stems[0]["acestep_job"])
    assert job.request["stems"] is True and job.request["task"] == "text2music"  # the sketch renders its parts again
    tracks = [stem["track"] for stem in job.outputs[0].stem_files]
    assert len(tracks) >= 2
    by_channel = sorted(stems, key=lambda s: s.channel)
    assert [s["acestep_track"] for s in by_channel] == tracks, "one strip per stem, in the worker's order"
    assert [s.channel for s in by_channel] == list(range(3, 3 + len(tracks))), "free channels above, one run"
    for stem in stems:
        assert (stem.frame_start, stem.frame_final_start, stem.frame_final_end) == (10, 22, 100)
        assert stem.frame_duration == content, "a stem is as long as the mix"
        suffix = f" ({stem['acestep_track']})"  # after the source's name, shortened to fit
        assert stem.name.endswith(suffix) and source_name.startswith(stem.name[: -len(suffix)])
        assert stem["acestep_stem_group"] == job.id and stem["acestep_source"] == source_name
        assert not stem.mute
        path = Path(bpy.path.abspath(stem.sound.filepath))
        assert path.is_file() and path.name.endswith(f".{stem['acestep_track']}.wav")
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        assert sidecar["stem_of"] and sidecar["track"] == stem["acestep_track"]
    assert scene.sequence_editor.strips[source_name].mute, "the stems sum to the mix: it is muted"
    assert f"{len(tracks)} stems" in addon.runtime.message

    # A stem is not split again: its sidecar says whose stem it is.
    scene.sequence_editor.active_strip = stems[0]
    with pytest.raises(RuntimeError, match=f"is already the {stems[0]['acestep_track']} stem of"):
        bpy.ops.acestep.split_stems()

    bpy.ops.ed.undo()
    scene = bpy.context.scene
    assert [s.name for s in _sounds(scene)] == [source_name], "one undo removes every stem"
    restored = scene.sequence_editor.strips[source_name]
    assert not restored.mute and (restored.frame_final_start, restored.frame_final_end) == (22, 100)


def test_a_file_the_sketch_did_not_make_is_refused_before_any_work(addon, worker, tmp_path):
    scene = bpy.context.scene
    strip = add_sound(scene, write_wav(tmp_path / "dialogue.wav", 2.0), "dialogue", 1, 1)
    scene.sequence_editor.active_strip = strip
    before = len(worker.jobs(limit=100))
    with pytest.raises(RuntimeError, match="dialogue.wav was not made by the sketch backend"):
        bpy.ops.acestep.split_stems()  # an ERROR report raises when called from Python
    assert "base or sft checkpoint" in addon.runtime.message and addon.runtime.message_level == "ERROR"
    assert len(worker.jobs(limit=100)) == before, "nothing was sent"
    assert not addon.runtime.busy and [s.name for s in _sounds(scene)] == ["dialogue"]


def test_repaint_and_add_layer_are_greyed_out_on_the_sketch_with_the_reason(addon, worker, tmp_path):
    scene = bpy.context.scene
    strip = add_sound(scene, write_wav(tmp_path / "music.wav", 2.0), "music", 1, 1)
    scene.sequence_editor.active_strip = strip
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 5, 20

    # Not connected yet: the action asks the worker, and refuses before sending anything.
    before = len(worker.jobs(limit=100))
    assert bpy.ops.acestep.repaint_selection.poll()
    with pytest.raises(RuntimeError, match="cannot repaint"):
        bpy.ops.acestep.repaint_selection()
    assert "--backend acestep" in addon.runtime.message
    assert len(worker.jobs(limit=100)) == before

    # Connected: the panel says what the model can do, and the buttons are greyed out.
    assert addon.link.health["supports_tasks"] == ["text2music"]
    assert not bpy.ops.acestep.repaint_selection.poll()
    assert not bpy.ops.acestep.add_layer.poll()
    assert bpy.ops.acestep.split_stems.poll()
    addon.module.job_tracking.sync_ui()
    labels = draw_panels(addon, only="ACESTEP_PT_edit_strip")
    text = " ".join(labels)
    assert "This model can: text2music" in text
    assert "cannot repaint;" in text and "cannot add a layer (lego);" in text
    assert {"[acestep.split_stems]", "[acestep.repaint_selection]", "[acestep.add_layer]"} <= set(labels)


def test_repaint_range_is_the_preview_range_or_the_markers_in_seconds_inside_the_file(addon, tmp_path):
    edit_plans = addon.module.edit_plans
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001  # 29.97
    rate = Fraction(30000, 1001)
    strip = add_sound(scene, write_wav(tmp_path / "music.wav", 8.0), "music", 2, 50)
    strip.frame_final_start = 80  # trimmed: the file's first 30 frames are hidden
    strip.sound_offset = 0.5  # and the sound shifted half a second into the file

    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 60, 119
    first, end = edit_plans.edit_range(scene, strip)
    assert (first, end) == (80, 120), "clipped to what the strip shows; the preview end frame is included"
    start_s, end_s = edit_plans.range_seconds(strip, first, end, rate, 8.0)
    assert start_s == pytest.approx(float(Fraction(30) / rate + Fraction(1, 2)), abs=1e-6)
    assert end_s == pytest.approx(float(Fraction(70) / rate + Fraction(1, 2)), abs=1e-6)

    scene.use_preview_range = False
    for frame, name in ((40, "intro"), (100, "hit"), (150, "calm")):
        scene.timeline_markers.new(name, frame=frame)
    scene.frame_current = 120
    assert edit_plans.edit_range(scene, strip) == (100, 150)
    scene.frame_current = 100  # on a marker: that marker starts the range
    assert edit_plans.edit_range(scene, strip) == (100, 150)
    scene.frame_current = 10
    with pytest.raises(edit_plans.BadInput, match="no range to change"):
        edit_plans.edit_range(scene, strip)
    scene.frame_current = 60  # between intro and hit, only partly over the strip
    assert edit_plans.edit_range(scene, strip) == (80, 100)
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 1, 40
    with pytest.raises(edit_plans.BadInput, match="outside 'music'"):
        edit_plans.edit_range(scene, strip)


def test_cancel_mid_split_places_nothing_and_mutes_nothing(addon, worker):
    scene = bpy.context.scene
    cue = _generate_cue(addon, scene, seconds=20.0)
    scene.sequence_editor.active_strip = cue
    assert bpy.ops.acestep.split_stems() == {"FINISHED"}, addon.runtime.message
    assert bpy.ops.acestep.cancel() == {"FINISHED"}
    tick_until_idle(addon)
    assert "cancelled, nothing was placed" in addon.runtime.message
    assert [s.name for s in _sounds(scene)] == [cue.name] and not cue.mute
    assert bpy.ops.acestep.split_stems.poll(), "the next edit can start"


def test_a_flac_source_is_read_with_blenders_audio_module_where_soundfile_is_missing(addon, tmp_path, monkeypatch):
    """Blender's Python has no soundfile: the core reads only WAV then, and Blender's aud reads the rest."""
    sf = pytest.importorskip("soundfile")
    np = pytest.importorskip("numpy")
    path = tmp_path / "theme.flac"
    sf.write(str(path), np.zeros((88200, 2)), 44100, subtype="PCM_24")
    monkeypatch.setitem(__import__("sys").modules, "soundfile", None)  # as in Blender's own Python
    assert addon.module.edit_plans.source_format(path) == ("flac", 44100, 16, 2.0)
    notes = tmp_path / "notes.ogg"
    notes.write_text("not audio")
    with pytest.raises(addon.module.edit_plans.BadInput, match="cannot read .*notes.ogg as audio"):
        addon.module.edit_plans.source_format(notes)
