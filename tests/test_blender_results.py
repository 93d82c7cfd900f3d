"""What a result says, shown in real Blender against a real sketch worker: the tempo and
key each ordinary cue was made at and what analysis measured, on the strip and in the
panel, and the worker's warnings (a missed loudness target) in the panel and the report."""

from __future__ import annotations

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)

PROMPT = "calm exploration, ambient, soft pads"


def _outputs(worker, job_id):
    return sorted(worker.status(job_id).outputs, key=lambda o: o.index)


def test_generated_strips_show_the_tempo_and_key_used_and_measured(addon, worker):
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration, settings.candidates = PROMPT, 8.0, 2  # no BPM or key: the model picks
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    cues = [s for s in strips_of(scene) if s.type == "SOUND"]
    outputs = _outputs(worker, cues[0]["acestep_job"])
    assert len(cues) == len(outputs) == 2
    for strip, output in zip(cues, outputs):
        tempo, key = output.metadata["tempo"], output.metadata["key"]
        assert tempo["measured"] is not None and key["measured"], "the sketch's audio is analysed"
        assert strip["acestep_bpm"] == pytest.approx(tempo["used"], abs=0.01)
        assert strip["acestep_bpm_measured"] == pytest.approx(tempo["measured"], abs=0.01)
        assert (strip["acestep_key"], strip["acestep_key_measured"]) == (key["used"], key["measured"])
        assert "acestep_warnings" not in strip

    first = outputs[0].metadata
    used = f"{round(first['tempo']['used'], 2):g} BPM, {first['key']['used']}"
    assert f"({used})" in addon.runtime.message, "the report says the tempo and key"
    assert "Warning" not in addon.runtime.message and addon.runtime.message_level == "WARNING"  # unsaved .blend only
    scene.sequence_editor.active_strip = cues[0]
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    # The tempo and key were planned, so the measurements are checks, and say how they came out.
    assert first["tempo"]["check"] in ("agrees", "disagrees") and first["key"]["check"] in ("agrees", "disagrees")
    assert (f"{round(first['tempo']['used'], 2):g} BPM (measured {round(first['tempo']['measured'], 2):g}, "
            f"{first['tempo']['check']}), {first['key']['used']} (measured {first['key']['measured']}, "
            f"{first['key']['check']})") in shown
    assert cues[0]["acestep_bpm_check"] == first["tempo"]["check"]


def test_score_cutscene_sections_record_their_tempo_and_key(addon, worker):
    scene = bpy.context.scene
    for name, frame in (("explore", 1), ("boss fight, fast drums", 121)):
        scene.timeline_markers.new(name, frame=frame)
    scene.frame_end = 240
    assert bpy.ops.acestep.score_cutscene() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    cues = [s for s in strips_of(scene) if s.type == "SOUND"]
    assert len(cues) == 2
    for strip in cues:
        [output] = _outputs(worker, strip["acestep_job"])
        assert strip["acestep_bpm"] == pytest.approx(output.metadata["tempo"]["used"], abs=0.01)
        assert strip["acestep_key"] == output.metadata["key"]["used"]


def test_a_missed_loudness_target_is_said_in_the_panel_and_the_report(addon, worker):
    """-5 LUFS under a -1 dBTP ceiling cannot be reached without crushing the music: the
    worker says so in the result, and Blender says it where the user looks."""
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration = PROMPT, 6.0
    settings.loudness, settings.loudness_lufs = "TARGET", -5.0
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    assert addon.tracker.task.jobs[0].request.loudness == -5.0
    tick_until_idle(addon)
    [cue] = [s for s in strips_of(scene) if s.type == "SOUND"]
    [output] = _outputs(worker, cue["acestep_job"])
    [warning] = output.metadata["warnings"]
    assert "LUFS" in warning
    runtime = addon.runtime
    assert f"Warning: {warning}" in runtime.message and runtime.message_level == "WARNING"
    assert cue["acestep_warnings"] == warning
    scene.sequence_editor.active_strip = cue
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    assert " ".join(warning.split()) in shown, "the Generated Strip panel says it too"


def test_prompt_words_the_backend_did_not_play_are_said_in_the_panel(addon, worker):
    """The sketch plays no 808: the sidecar lists the word, and Blender says so."""
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration = "calm exploration, 808", 4.0
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    [cue] = [s for s in strips_of(scene) if s.type == "SOUND"]
    [output] = _outputs(worker, cue["acestep_job"])
    assert output.metadata["not_rendered"] == ["808"]
    note = "the sketch backend does not play these words of the prompt: 808"
    assert note in cue["acestep_warnings"] and note in addon.runtime.message
    scene.sequence_editor.active_strip = cue
    assert note in " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))


def test_the_word_template_offers_every_instrument_of_the_library(addon):
    """Blender holds at most 32 flags in one property: the library's instruments are split
    over two, and the template reads both."""
    from acestep_core import keywords

    settings = bpy.context.scene.acestep
    offered = [item.identifier for name in ("instruments", "more_instruments")
               for item in settings.bl_rna.properties[name].enum_items]
    assert offered == list(keywords.INSTRUMENT_WORDS)
    settings.mood, settings.scene_word = "tense", "boss battle"
    settings.instruments, settings.more_instruments = {"drums"}, {"chiptune noise"}
    assert bpy.ops.acestep.use_template() == {"FINISHED"}
    assert settings.prompt == "tense boss battle, drums, chiptune noise"
