"""Editing a sound strip in real Blender against workers running the real ACE-Step pipeline
on the tiny random checkpoint: Repaint Selection on turbo (a take above, the same position
and length, the source sample for sample outside the range), Add Layer and Split into Stems
(extract) on a base checkpoint, and turbo greying out Add Layer with the sentence that
names the checkpoint to download."""

from __future__ import annotations

from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)
from test_blender_edit import add_sound, write_wav
from worker_fixtures import WorkerProcess

pytestmark = pytest.mark.slow
pytest.importorskip("torch", reason="building the tiny ACE-Step checkpoint needs torch in this Python")
np = pytest.importorskip("numpy")
sf = pytest.importorskip("soundfile")

CROSSFADE_S = 0.03  # acestep_core.audio.splice's edge fade


@pytest.fixture(scope="module")
def base_worker_process(tmp_path_factory) -> WorkerProcess:
    """A worker on a tiny random base checkpoint (extract, lego and complete need one)."""
    from tiny_checkpoint import build_tiny_checkpoint

    model = build_tiny_checkpoint(tmp_path_factory.mktemp("models") / "acestep-v15-tiny-base", variant="base")
    process = WorkerProcess(tmp_path_factory.mktemp("base-worker-home"), "acestep", model)
    process.start()
    yield process
    process.stop(timeout=10)


def _source_strip(scene, tmp_path: Path, seconds: float = 4.0):
    """A user's own 48 kHz 16-bit WAV at frame 20, its first 6 frames trimmed off."""
    strip = add_sound(scene, write_wav(tmp_path / "music.wav", seconds), "music", 1, 20)
    strip.frame_final_start = 26
    scene.sequence_editor.active_strip = strip
    return strip


def _read(strip) -> np.ndarray:
    data, rate = sf.read(bpy.path.abspath(strip.sound.filepath), dtype="int16", always_2d=True)
    assert rate == 48000
    return data


def _outside(samples: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    a, b = round((start_s - CROSSFADE_S) * 48000), round((end_s + CROSSFADE_S) * 48000)
    return np.concatenate([samples[:a], samples[b:]])


def test_repaint_selection_lands_as_a_playing_take_above_with_the_rest_unchanged(addon, acestep_worker, tmp_path):
    scene = bpy.context.scene
    source = _source_strip(scene, tmp_path)
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 44, 67
    bpy.ops.ed.undo_push(message="before the repaint")
    scene.acestep.edit_prompt = "soft pads, calm"

    assert bpy.ops.acestep.repaint_selection() == {"FINISHED"}, addon.runtime.message
    assert addon.runtime.busy
    tick_until_idle(addon, timeout=300)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    source = scene.sequence_editor.strips["music"]
    (take,) = [s for s in strips_of(scene) if s.get("acestep_edit") == "repaint"]
    assert (take.channel, take.frame_start, take.frame_final_start, take.frame_final_end) == (2, 20, 26, 116)
    assert take.frame_duration == source.frame_duration and not take.mute and source.mute
    assert take["acestep_group"] == source["acestep_group"] and take["acestep_candidate"] == 2
    job = acestep_worker.status(take["acestep_job"])
    request = job.request
    assert request["task"] == "repaint" and request["prompt"] == "soft pads, calm"
    # Frames 44..68 of a strip whose file starts at frame 20, at 24 fps.
    assert request["repaint_start"] == pytest.approx(1.0) and request["repaint_end"] == pytest.approx(2.0)
    assert (request["sample_rate"], request["bit_depth"], request["duration"]) == (48000, 16, 4.0)

    original, repainted = _read(source), _read(take)
    assert repainted.shape == original.shape, "the take is as long as the source"
    assert np.array_equal(_outside(repainted, 1.0, 2.0), _outside(original, 1.0, 2.0)), \
        "outside the range and its crossfades the take is the source, sample for sample"
    inside = slice(round(1.1 * 48000), round(1.9 * 48000))
    assert not np.array_equal(repainted[inside], original[inside]), "inside the range it is new audio"

    bpy.ops.ed.undo()
    scene = bpy.context.scene
    assert [s.name for s in strips_of(scene)] == ["music"] and not scene.sequence_editor.strips["music"].mute


def test_turbo_greys_out_add_layer_with_the_checkpoint_to_download(addon, acestep_worker, tmp_path):
    scene = bpy.context.scene
    _source_strip(scene, tmp_path)
    assert bpy.ops.acestep.connect() == {"FINISHED"}
    assert "lego" not in addon.link.health["supports_tasks"] and "repaint" in addon.link.health["supports_tasks"]
    assert not bpy.ops.acestep.add_layer.poll() and bpy.ops.acestep.repaint_selection.poll()
    addon.module.job_tracking.sync_ui()
    text = " ".join(draw_panels(addon, only="ACESTEP_PT_edit_strip"))
    assert "lego needs a base or sft checkpoint" in text
    assert "acestep-dcc download-model ACE-Step/acestep-v15-xl-base-diffusers" in text


def test_add_layer_on_a_base_checkpoint_lands_on_a_strip_above(addon, base_worker_process, monkeypatch, tmp_path):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(base_worker_process.home))
    client = base_worker_process.client
    scene = bpy.context.scene
    source = _source_strip(scene, tmp_path)
    for frame, name in ((44, "drums in"), (68, "drums out")):
        scene.timeline_markers.new(name, frame=frame)
    scene.frame_current = 50
    assert bpy.ops.acestep.connect() == {"FINISHED"}
    assert "lego" in addon.link.health["supports_tasks"] and bpy.ops.acestep.add_layer.poll()

    assert bpy.ops.acestep.add_layer(track="drums", prompt="fast drums", use_range=True) == {"FINISHED"}, \
        addon.runtime.message
    tick_until_idle(addon, timeout=300)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    source = scene.sequence_editor.strips["music"]
    (layer,) = [s for s in strips_of(scene) if s.get("acestep_edit") == "layer"]
    assert (layer.channel, layer.frame_start, layer.frame_final_start, layer.frame_final_end) == (2, 20, 26, 116)
    assert layer.name == "music (drums)" and layer["acestep_track"] == "drums" and layer["acestep_source"] == "music"
    assert not layer.mute and not source.mute, "a layer plays over its source"
    assert layer.frame_duration == source.frame_duration
    request = client.status(layer["acestep_job"]).request
    assert (request["task"], request["track"], request["prompt"]) == ("lego", "drums", "fast drums")
    assert request["repaint_start"] == pytest.approx(1.0) and request["repaint_end"] == pytest.approx(2.0)
    assert scene.acestep.layer_track == "drums", "the instrument is remembered for next time"
    samples = _read(layer)
    assert samples.shape == _read(source).shape
    assert not _outside(samples, 1.0, 2.0).any(), "the layer is silent outside its range and fades"


def test_split_into_stems_by_extract_on_a_base_checkpoint(addon, base_worker_process, monkeypatch, tmp_path):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(base_worker_process.home))
    scene = bpy.context.scene
    _source_strip(scene, tmp_path)
    scene.acestep.stem_tracks = {"drums", "bass"}
    assert bpy.ops.acestep.split_stems() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon, timeout=300)
    assert addon.runtime.message_level != "ERROR", addon.runtime.message

    stems = sorted((s for s in strips_of(scene) if s.get("acestep_edit") == "stem"), key=lambda s: s.channel)
    assert [(s.name, s.channel) for s in stems] == [("music (drums)", 2), ("music (bass)", 3)]
    source = scene.sequence_editor.strips["music"]
    assert all((s.frame_start, s.frame_final_start, s.frame_final_end) == (20, 26, 116) for s in stems)
    assert all(s.frame_duration == source.frame_duration for s in stems) and source.mute
    assert len({s["acestep_stem_group"] for s in stems}) == 1
    request = base_worker_process.client.status(stems[0]["acestep_job"]).request
    assert request["task"] == "extract" and request["tracks"] == ["drums", "bass"] and request["source_audio"]
