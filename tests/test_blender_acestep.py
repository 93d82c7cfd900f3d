"""The add-on against a worker running the real ACE-Step pipeline on the tiny random
checkpoint: the same Generate, Score Cutscene and Regenerate paths, and a cover
variation, which the sketch backend cannot make."""

from __future__ import annotations

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    strips_of,
    tick_until_idle,
)

pytestmark = pytest.mark.slow
# The tiny checkpoint is built with torch in the test's own Python (bpy 5.2 runs on 3.13, without torch).
pytest.importorskip("torch", reason="building the tiny ACE-Step checkpoint needs torch in this Python")


def _cues(scene):
    return sorted((s for s in strips_of(scene) if s.type == "SOUND"), key=lambda s: (s.frame_final_start, s.channel))


def test_generate_then_cover_variation_on_acestep(addon, acestep_worker):
    scene = bpy.context.scene
    scene.frame_current = 24
    settings = scene.acestep
    settings.prompt, settings.duration, settings.candidates = "calm exploration, ambient, soft pads", 3.0, 2
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon, timeout=300)
    first, second = _cues(scene)
    assert [(c.frame_final_start, c.frame_final_duration, c.channel, c.mute) for c in (first, second)] == [
        (24, 72, 1, False), (24, 72, 2, True)]
    model = acestep_worker.health()["model"].rstrip("/").rsplit("/", 1)[-1]
    assert first["acestep_model"] == model and "model loaded" in addon.runtime.worker_summary

    assert addon.link.supports("cover")
    scene.sequence_editor.active_strip = first
    settings.variation = "COVER"
    assert bpy.ops.acestep.regenerate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon, timeout=300)
    variation = next(c for c in _cues(scene) if c.name.endswith("variation"))
    job = acestep_worker.status(variation["acestep_job"])
    assert job.request["task"] == "cover" and job.request["source_audio"]
    assert (variation.channel, variation.mute, variation.frame_final_duration) == (3, True, 72)
    assert variation["acestep_group"] == first["acestep_group"]


def test_score_cutscene_on_acestep(addon, acestep_worker):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 120
    scene.timeline_markers.new("calm exploration", frame=1)
    scene.timeline_markers.new("boss appears", frame=61)
    scene.acestep.crossfade = 0.25
    assert bpy.ops.acestep.score_cutscene() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon, timeout=300)
    cues = _cues(scene)
    assert [(c.name, c.frame_final_start, c.frame_final_duration, c.channel) for c in cues] == [
        ("calm exploration", 1, 66, 1), ("boss appears", 61, 60, 2)]


def test_a_worker_blender_starts_loads_the_model_at_once_and_the_panel_says_so(addon, tiny_checkpoint,
                                                                                monkeypatch, tmp_path):
    """--preload: the model loads while the user is still writing a prompt, and the status
    line says "loading model" until it is ready."""
    from acestep_core.client import find_worker
    from worker_fixtures import WORKER_PYTHON

    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "home"))
    prefs = addon.preferences
    prefs.worker_python, prefs.model_folder = WORKER_PYTHON, str(tiny_checkpoint)
    try:
        assert bpy.ops.acestep.connect() == {"FINISHED"}
        seen = []
        tick_until_idle(addon, timeout=120, on_tick=lambda _: seen.append(addon.runtime.worker_summary))
        loading = [s for s in seen if s.endswith("loading model")]
        assert loading, f"never said loading model: {sorted(set(seen))}"
        assert addon.runtime.worker_summary.endswith("model loaded"), addon.runtime.worker_summary
        assert seen.index(loading[0]) < len(seen) - 1 - seen[::-1].index(addon.runtime.worker_summary)
        assert addon.link.health["model_state"] == "loaded"
    finally:
        running = find_worker()
        if running is not None:
            running.shutdown()
