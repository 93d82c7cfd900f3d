"""Loudness to a target and a true-peak ceiling: the meter, the limiter, and real cues from the
sketch backend and the tiny ACE-Step checkpoint, measured again from the written files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy.signal import resample

from acestep_core.audio.loudness import finish_loudness, integrated_loudness, true_peak_dbtp
from acestep_core.backends.sketch import SketchBackend
from acestep_core.cli import main
from acestep_core.generation import generate_cues
from acestep_core.request import LOUDNESS_PRESETS, GenerationRequest


def independent_true_peak_dbtp(audio: np.ndarray, rate: int, loop: bool = False) -> float:
    """A second meter: ideal band-limited interpolation (FFT zero-padding, 4x) instead of our
    soxr resampler. A cue is padded with silence so it is not read as a loop; a loop is."""
    data = np.asarray(audio, dtype=np.float64)
    if not loop:
        data = np.pad(data, ((4096, 4096), (0, 0)))
    upsampled = resample(data, 4 * data.shape[0], axis=0)
    return 20 * math.log10(float(np.abs(upsampled).max()))


def measured(path: Path) -> tuple[float, float, int]:
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    return pyloudnorm.Meter(rate).integrated_loudness(audio), independent_true_peak_dbtp(audio, rate), rate


def test_true_peak_sees_between_the_samples():
    # A quarter-rate sine sampled 45 degrees off its crests: every sample sits at 0.707 of the
    # peak. Measured as the loop it is (a hard start would ring, which is a real peak too).
    n = np.arange(48000)
    sine = np.sin(2 * np.pi * n / 4 + np.pi / 4)
    audio = np.stack([sine, sine], axis=1) * 0.9
    assert 20 * math.log10(np.abs(audio).max()) == pytest.approx(20 * math.log10(0.9 * 0.7071), abs=0.01)
    assert true_peak_dbtp(audio, circular=True) == pytest.approx(20 * math.log10(0.9), abs=0.01)


def test_meter_reads_the_ebu_reference_tone():
    # EBU Tech 3341 case 1: a 1 kHz sine at -23 dBFS in both channels reads -23.0 LUFS.
    t = np.arange(20 * 48000) / 48000
    tone = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t)
    assert integrated_loudness(np.stack([tone, tone], axis=1), 48000) == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("target", [-23.0, -16.0, -9.0])
def test_target_and_ceiling_on_a_peaky_signal(target: float):
    rate = 44100
    rng = np.random.default_rng(3)
    t = np.arange(8 * rate) / rate
    body = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal(t.size)
    hit = np.hanning(441) * rng.standard_normal(441) * 0.9
    for start in range(0, t.size - 441, rate // 4):  # hits far above the body: the limiter works at -9 LUFS
        body[start : start + 441] += hit
    audio = np.stack([body, body], axis=1).astype(np.float32)
    out, report = finish_loudness(audio, rate, target, -1.0)
    assert abs(integrated_loudness(out, rate) - target) <= 0.5
    assert true_peak_dbtp(out) <= -1.0 and independent_true_peak_dbtp(out, rate) <= -1.0
    assert report.integrated_lufs == pytest.approx(integrated_loudness(out, rate), abs=1e-6)
    if target == -9.0:
        assert report.limiter_reduction_db > 0


def test_no_target_only_turns_down_to_the_ceiling():
    quiet = (0.01 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)[:, None] * np.ones(2)).astype(np.float32)
    out, report = finish_loudness(quiet, 44100, None, -1.0)
    assert report.gain_db == 0.0
    # Only the 15 Hz high-pass touched it: the same level, within a hundredth of a dB.
    assert 20 * math.log10(np.sqrt((out[4410:] ** 2).mean() / (quiet[4410:] ** 2).mean())) == pytest.approx(0, abs=0.01)
    loud = (np.sin(np.arange(44100) / 3.0)[:, None] * np.ones(2)).astype(np.float32)
    out, report = finish_loudness(loud, 44100, None, -1.0)
    assert true_peak_dbtp(out) <= -1.0 and report.gain_db < 0


def test_dc_offset_does_not_eat_the_headroom():
    rate = 44100
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(4 * rate) / rate)
    offset = np.stack([tone + 0.6, tone - 0.6], axis=1).astype(np.float32)  # as a diverged model hands over
    out, report = finish_loudness(offset, rate, -12.0, -1.0)
    assert abs(out.mean(axis=0)).max() < 0.01
    assert report.limiter_reduction_db == 0.0 and abs(report.integrated_lufs + 12.0) <= 0.1


def test_silence_is_left_alone_with_a_note():
    out, report = finish_loudness(np.zeros((44100, 2), np.float32), 44100, -16.0, -1.0)
    assert not out.any() and report.integrated_lufs is None and "silent" in report.note


@pytest.mark.parametrize("loudness, fmt, depth", [
    ("console", "wav", 16), ("mobile", "wav", 24), (-18.0, "flac", 16), ("mobile", "ogg", 16),
])
def test_sketch_cues_land_on_the_target(tmp_path: Path, loudness, fmt: str, depth: int):
    request = GenerationRequest(prompt="boss battle, rock, driving drums", duration=8, seed=4, loudness=loudness,
                                output_format=fmt, bit_depth=depth)
    (cue,) = generate_cues(request, SketchBackend(), tmp_path / f"cue.{fmt}")
    target = LOUDNESS_PRESETS.get(loudness, loudness) if isinstance(loudness, str) else loudness
    lufs, peak, _ = measured(Path(cue.path))
    assert abs(lufs - target) <= 0.5
    assert peak <= -1.0
    sidecar = cue.metadata["loudness"]
    assert sidecar["target_lufs"] == target and sidecar["ceiling_dbtp"] == -1.0
    assert abs(sidecar["integrated_lufs"] - lufs) <= 0.1 and sidecar["true_peak_dbtp"] <= -1.0


def test_looped_cue_is_limited_across_its_seam(tmp_path: Path):
    request = GenerationRequest(prompt="boss battle, rock", bpm=150, loop=True, loop_bars=4, seed=8,
                                loudness=-10.0, true_peak_ceiling_db=-2.0)
    (cue,) = generate_cues(request, SketchBackend(), tmp_path / "loop.wav")
    audio, rate = sf.read(cue.path, dtype="float64", always_2d=True)
    end = cue.metadata["loop"]["loop_end_exclusive"]
    cycle = audio[:end]
    assert independent_true_peak_dbtp(cycle, rate, loop=True) <= -2.0  # the seam as it plays
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(cycle) - (-10.0)) <= 0.5


def test_cli_loudness_presets(tmp_path: Path):
    out = tmp_path / "mobile.wav"
    assert main(["generate", "calm exploration, ambient", "--seconds", "6", "--seed", "1", "--loudness", "mobile",
                 "--true-peak", "-1.5", "--backend", "sketch", "-o", str(out)]) == 0
    lufs, peak, _ = measured(out)
    assert abs(lufs + 16) <= 0.5 and peak <= -1.5


def test_tiny_checkpoint_cues_land_on_the_target(tiny_checkpoint: Path, tmp_path: Path):
    from acestep_core.backends.acestep import AceStepBackend

    backend = AceStepBackend(tiny_checkpoint, device="cpu")
    for loudness, target in (("console", -23.0), ("mobile", -16.0)):
        request = GenerationRequest(prompt="boss battle", duration=3, seed=2, loudness=loudness)
        (cue,) = generate_cues(request, backend, tmp_path / f"{loudness}.wav")
        lufs, peak, _ = measured(Path(cue.path))
        assert abs(lufs - target) <= 0.5, loudness
        assert peak <= -1.0, loudness


# -- the filters, without scipy.signal --------------------------------------------------------


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
def test_filter_coefficients_are_the_libraries_own(rate: int):
    import scipy.signal

    from acestep_core.audio import filters

    stages = pyloudnorm.Meter(rate)._filters.values()
    assert np.array_equal(filters.k_weighting_sos(rate),
                          [np.concatenate([stage.passband_gain * stage.b, stage.a]) for stage in stages])
    high_pass = scipy.signal.butter(2, 15.0, btype="highpass", fs=rate, output="sos")
    assert np.allclose(filters.butter_highpass_sos(15.0, rate), high_pass, rtol=1e-12, atol=0)
    for sos in (high_pass, filters.k_weighting_sos(rate)):
        assert np.allclose(filters.sosfilt_zi(sos), scipy.signal.sosfilt_zi(sos), rtol=1e-9, atol=0)


@pytest.mark.parametrize("public", [False, True], ids=["scipy's kernel", "scipy.signal.sosfilt"])
def test_streamed_filter_equals_one_sosfilt_call(public: bool, monkeypatch):
    import scipy.signal

    from acestep_core.audio import filters

    if public:
        monkeypatch.setenv("ACESTEP_DCC_PUBLIC_SOSFILT", "1")
    filters._load_sosfilt_kernel.cache_clear()
    try:
        assert (filters._sosfilt_kernel() is None) == public
        signal = np.random.default_rng(2).standard_normal((2, 50000))
        sos = filters.k_weighting_sos(44100)
        start = np.random.default_rng(3).standard_normal((2, 2, 2))
        expected, _ = scipy.signal.sosfilt(sos, signal, axis=-1, zi=np.moveaxis(start, 1, 0))
        stream = filters.SosStream(sos, 2, start)
        pieces = [stream.filter(np.ascontiguousarray(signal[:, a : a + 7777])) for a in range(0, 50000, 7777)]
        assert np.array_equal(np.concatenate(pieces, axis=1), expected)
    finally:
        filters._load_sosfilt_kernel.cache_clear()


FIRST_FILTERS_ON_THREADS = """
import threading, numpy as np
from acestep_core.audio import filters
sos = filters.k_weighting_sos(44100)
errors, start = [], threading.Barrier(8)
def run():
    start.wait()
    try:
        filters.SosStream(sos, 2).filter(np.ones((2, 4096)))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=run) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(errors or "ok")
"""


def test_the_first_filters_on_several_threads_at_once_all_work():
    # Candidates finish on threads; the kernel's first load once raised KeyError: 'scipy'
    # on some of them. A fresh interpreter each time, so scipy is not loaded yet.
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", FIRST_FILTERS_ON_THREADS], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_finishing_in_place_changes_the_given_array_and_nothing_else():
    rng = np.random.default_rng(4)
    audio = (0.1 * rng.standard_normal((3 * 44100, 2))).astype(np.float32)
    kept = audio.copy()
    copied, report = finish_loudness(audio, 44100, -16.0, -1.0)
    assert np.array_equal(audio, kept)  # the default leaves its input alone
    same, report_in_place = finish_loudness(audio, 44100, -16.0, -1.0, in_place=True)
    assert same is audio and np.array_equal(same, copied) and report_in_place == report


@pytest.mark.parametrize("prompt, loop", [("boss battle, rock", False), ("calm exploration, ambient", True)])
def test_the_8x_peak_near_finishing_peaks_is_the_8x_peak_of_the_whole_file(prompt: str, loop: bool):
    from acestep_core.audio.finishing import finish_candidate
    from acestep_core.audio.writer import as_written, quantized

    request = GenerationRequest(prompt=prompt, duration=20, seed=6).validated()
    raw = SketchBackend().generate(request, [6], lambda progress: None, lambda: False)
    frames = finish_candidate(raw.samples[0], raw.sample_rate, 44100, 20)
    finished, report = finish_loudness(frames, 44100, None, -1.0, circular=loop)
    written = as_written(quantized(finished, "wav", 16))
    near = true_peak_dbtp(written, loop, 8, known_peaks=report.peaks_per_block)
    assert near == true_peak_dbtp(written, loop, 8)
    assert near >= true_peak_dbtp(written, loop) - 1e-6  # 8x sees at least what 4x sees
