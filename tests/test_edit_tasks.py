"""Editing audio that exists: repaint keeps the source outside its range, lego adds a layer
that is silent outside its range, complete and reference run, each on the real diffusers
pipeline over a tiny checkpoint, through the CLI, read back with soundfile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.audio.splice import CROSSFADE_S, new_audio_gain, splice
from acestep_core.cli import main

pytest.importorskip("torch", reason="the ACE-Step pipeline needs torch")

RATE = 48000
PROMPT = "calm exploration, ambient pads"


def sidecar(path: Path) -> dict:
    return json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """3 s of 16-bit stereo at 48 kHz, the two channels different, as an editor exports it."""
    t = np.arange(3 * RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    path = tmp_path / "take.wav"
    sf.write(path, np.stack([tone, 0.5 * np.roll(tone, 123)], axis=1), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory) -> Path:
    from tiny_checkpoint import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("models") / "acestep-v15-tiny-base", variant="base")


def run(*args: str) -> int:
    return main(["generate", PROMPT, "--steps", "2", "--seed", "7", *args])


def changed_span(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """First and last second where two int arrays differ."""
    differs = np.nonzero(np.abs(a.astype(np.int64) - b).max(axis=1))[0]
    return differs[0] / RATE, differs[-1] / RATE


# -- repaint -------------------------------------------------------------------------------


def test_repaint_is_the_source_sample_for_sample_outside_its_range(tiny_checkpoint: Path, source: Path,
                                                                    tmp_path: Path):
    out = tmp_path / "repainted.wav"
    assert run("--task", "repaint", "--source", str(source), "--range", "1", "2",
               "--model", str(tiny_checkpoint), "-o", str(out)) == 0
    before, _ = sf.read(source, dtype="int16")
    after, rate = sf.read(out, dtype="int16")
    # The source's own length, rate and depth, without being asked.
    assert (rate, after.shape, sf.info(out).subtype) == (RATE, before.shape, "PCM_16")
    first, last = changed_span(before, after)
    assert 1.0 - CROSSFADE_S <= first < 1.0 and 2.0 < last <= 2.0 + CROSSFADE_S
    inside = slice(int(1.1 * RATE), int(1.9 * RATE))
    assert np.mean(before[inside] != after[inside]) > 0.9  # the range itself is new audio
    record = sidecar(out)
    assert record["settings"]["repaint_start"] == 1.0 and record["settings"]["crossfade_s"] == CROSSFADE_S
    assert record["backend"]["name"] == "acestep"


def test_repaint_of_a_24_bit_source_stays_exact_and_is_not_renormalised(tiny_checkpoint: Path, tmp_path: Path):
    t = np.arange(2 * RATE) / RATE
    quiet = 0.05 * np.sin(2 * np.pi * 330 * t)  # far below any loudness target
    path = tmp_path / "quiet.wav"
    sf.write(path, np.stack([quiet, quiet], axis=1), RATE, subtype="PCM_24")
    out = tmp_path / "quiet-repainted.wav"
    assert run("--task", "repaint", "--source", str(path), "--range", "0.5", "1.5",
               "--model", str(tiny_checkpoint), "-o", str(out)) == 0
    before, _ = sf.read(path, dtype="int32")
    after, _ = sf.read(out, dtype="int32")
    assert sf.info(out).subtype == "PCM_24"
    head, tail = int((0.5 - CROSSFADE_S) * RATE), int((1.5 + CROSSFADE_S) * RATE) + 1
    np.testing.assert_array_equal(after[:head], before[:head])
    np.testing.assert_array_equal(after[tail:], before[tail:])


# -- lego, complete, extract on a base checkpoint; refused on turbo ------------------------


def test_lego_layer_is_as_long_as_the_source_and_silent_outside_its_range(base_checkpoint: Path, source: Path,
                                                                         tmp_path: Path):
    out = tmp_path / "guitar.wav"
    assert run("--task", "lego", "--track", "guitar", "--source", str(source), "--range", "1", "2",
               "--model", str(base_checkpoint), "-o", str(out)) == 0
    layer, rate = sf.read(out, dtype="int16")
    assert (rate, layer.shape) == (RATE, (3 * RATE, 2))
    sounding = np.nonzero(np.abs(layer).max(axis=1))[0]
    assert 1.0 - CROSSFADE_S <= sounding[0] / RATE < 1.0 and 2.0 < sounding[-1] / RATE <= 2.0 + CROSSFADE_S
    assert np.mean(layer[int(1.1 * RATE):int(1.9 * RATE)] != 0) > 0.9
    assert sidecar(out)["settings"]["track"] == "guitar"


def test_complete_writes_audio_as_long_as_the_source(base_checkpoint: Path, source: Path, tmp_path: Path):
    out = tmp_path / "completed.wav"
    assert run("--task", "complete", "--tracks", "drums,bass", "--source", str(source),
               "--model", str(base_checkpoint), "-o", str(out)) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert (rate, audio.shape) == (RATE, (3 * RATE, 2)) and np.abs(audio).max() > 0
    assert sidecar(out)["settings"]["tracks"] == ["drums", "bass"]


@pytest.mark.parametrize("task", ["lego", "complete"])
def test_turbo_refuses_lego_and_complete_before_any_work(tiny_checkpoint: Path, source: Path, tmp_path: Path,
                                                         capsys, task: str):
    flags = ["--track", "guitar"] if task == "lego" else ["--tracks", "drums"]
    out = tmp_path / "out"
    assert run("--task", task, *flags, "--source", str(source), "--model", str(tiny_checkpoint),
               "-o", str(out / "x.wav")) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{task} needs a base or sft checkpoint; ACE-Step's turbo checkpoints were not trained for it: run "
        "'acestep-dcc download-model ACE-Step/acestep-v15-xl-base-diffusers' and pass --model")
    assert not out.exists() or list(out.iterdir()) == []


def test_each_checkpoint_says_which_tasks_it_runs(tiny_checkpoint: Path, base_checkpoint: Path):
    from acestep_core.backends.acestep import AceStepBackend

    turbo = AceStepBackend(tiny_checkpoint, device="cpu").describe()
    base = AceStepBackend(base_checkpoint, device="cpu").describe()
    assert turbo.supports_tasks == ("text2music", "repaint", "cover")
    assert base.supports_tasks == ("text2music", "repaint", "cover", "extract", "lego", "complete")
    assert turbo.supports_reference and base.supports_reference


# -- reference audio -----------------------------------------------------------------------


def test_a_reference_clip_changes_the_cue_and_is_recorded(tiny_checkpoint: Path, source: Path, tmp_path: Path):
    plain, guided = tmp_path / "plain.wav", tmp_path / "guided.wav"
    common = ["--seconds", "2", "--model", str(tiny_checkpoint)]
    assert run(*common, "-o", str(plain)) == 0
    assert run(*common, "--reference", str(source), "-o", str(guided)) == 0
    a, _ = sf.read(plain, dtype="float32")
    b, _ = sf.read(guided, dtype="float32")
    # Same seed: only the reference differs, and it reaches the model (a tiny random model's
    # timbre condition moves the audio only a little, so any change counts).
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert sidecar(guided)["settings"]["reference_audio"] == "take.wav"
    assert "reference_audio" not in sidecar(plain)["settings"]


# -- the splice itself ---------------------------------------------------------------------


def test_crossfade_gains_sum_to_one_and_stay_inside_the_clip():
    gain = new_audio_gain(1000, 1000, 0.01, 0.5)  # the fade-in would start before frame 0
    assert gain[0] > 0 and gain[10:500].min() == 1.0 and gain[531:].max() == 0.0
    assert np.all(np.diff(gain[500:531]) < 0)
    new = np.ones((1000, 1), dtype=np.float32)
    old = np.full((1000, 1), 0.5, dtype=np.float32)
    splice(new, "repaint", 1000, 0.2, 0.4, old)
    ramp = slice(170, 200)
    np.testing.assert_allclose(new[ramp, 0], 0.5 + 0.5 * new_audio_gain(1000, 1000, 0.2, 0.4)[ramp], rtol=1e-6)
    assert new[:170].max() == 0.5 and new[200:400].min() == 1.0 and new[430:].max() == 0.5
    with pytest.raises(ValueError, match="repaint \\(with its source\\) and lego"):
        splice(new, "cover", 1000, 0.2, 0.4, old)


def test_doctor_says_which_tasks_the_checkpoint_runs(tiny_checkpoint: Path, base_checkpoint: Path, capsys):
    main(["doctor", "--model", str(tiny_checkpoint)])
    turbo = [line for line in capsys.readouterr().out.splitlines() if "model folder" in line][0]
    assert turbo.endswith("turbo variant, runs text2music, repaint, cover; extract, lego, complete need a base or "
                          "sft checkpoint: run 'acestep-dcc download-model ACE-Step/acestep-v15-xl-base-diffusers'")
    main(["doctor", "--model", str(base_checkpoint)])
    base = [line for line in capsys.readouterr().out.splitlines() if "model folder" in line][0]
    assert base.endswith("base variant, runs text2music, repaint, cover, extract, lego, complete")
