"""Finishing steps and the atomic writer against real soundfile/soxr."""

import os
import time

import numpy as np
import pytest
import soundfile as sf

from acestep_core.audio import loudness
from acestep_core.audio.finishing import (
    apply_peak_ceiling, finish_candidate, fit_length, frames_from_channels_first, replace_non_finite, resample,
)
from acestep_core.audio.writer import write_audio_atomic, write_json_atomic
from acestep_core.errors import GenerationCancelled


def tone(seconds=1.0, rate=48000, freq=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    mono = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([mono, mono]).astype(np.float32)


def test_resample_keeps_the_tone_and_the_length():
    frames = frames_from_channels_first(tone(1.0, 48000, 1000.0))
    out = resample(frames, 48000, 44100)
    assert out.shape == (44100, 2)
    spectrum = np.abs(np.fft.rfft(out[:, 0]))
    assert abs(np.argmax(spectrum) * 44100 / out.shape[0] - 1000.0) < 2.0


@pytest.mark.parametrize("length", [100, 48000, 50000])
def test_fit_length_is_exact(length):
    frames = frames_from_channels_first(tone(1.0))
    fitted = fit_length(frames, length)
    assert fitted.shape == (length, 2)
    if length > 48000:
        assert not fitted[48000:].any()


def test_peak_ceiling_only_turns_down():
    loud = np.full((10, 2), 1.7, np.float32)
    assert np.max(np.abs(apply_peak_ceiling(loud, -1.0))) == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    quiet = np.full((10, 2), 0.1, np.float32)
    assert np.array_equal(apply_peak_ceiling(quiet), quiet)


def test_non_finite_samples_become_silence():
    frames = np.array([[np.nan, 1.0], [np.inf, -np.inf]], np.float32)
    assert np.array_equal(replace_non_finite(frames), [[0.0, 1.0], [0.0, 0.0]])


@pytest.mark.parametrize("rate, seconds", [(44100, 15.0), (48000, 15.0), (44100, 2.345)])
def test_finish_candidate_gives_exact_duration_and_no_clipping(rate, seconds):
    raw = tone(seconds + 0.3, 48000, amplitude=1.4)
    out = finish_candidate(raw, 48000, rate, seconds)
    assert out.shape == (round(seconds * rate), 2)
    assert np.max(np.abs(out)) < 1.0


@pytest.mark.parametrize("fmt, depth, subtype", [("wav", 16, "PCM_16"), ("wav", 24, "PCM_24"),
                                                 ("flac", 24, "PCM_24"), ("ogg", 16, "VORBIS")])
def test_writer_formats_and_metadata(tmp_path, fmt, depth, subtype):
    path = tmp_path / f"cue.{fmt}"
    frames = frames_from_channels_first(tone(0.5, 44100))
    write_audio_atomic(path, frames, 44100, fmt, depth, {"title": "boss battle", "comment": "backend: sketch"})
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 2, subtype, 22050)
    with sf.SoundFile(path) as f:
        assert f.title == "boss battle" and f.comment == "backend: sketch"
    assert os.listdir(tmp_path) == [path.name]


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "cue.wav"
    bad = np.zeros((10, 2), np.float32)
    with pytest.raises(KeyError):
        write_audio_atomic(path, bad, 44100, "wav", 12)  # no such depth
    assert os.listdir(tmp_path) == []
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_written_files_follow_the_umask_not_private_temp_permissions(tmp_path):
    path = tmp_path / "cue.wav"
    write_audio_atomic(path, np.zeros((10, 2), np.float32), 44100, "wav", 16)
    write_json_atomic(tmp_path / "cue.json", {"x": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "cue.json").stat().st_mode & 0o777 == 0o666 & ~mask


# -- cancelling long steps -------------------------------------------------------------------


class CancelLater:
    """is_cancelled that turns true `after` seconds after it is first asked and records when it did.

    Counted from the first ask, not from construction: on a slow machine the set-up before a
    step's first check can itself take longer than `after`."""

    def __init__(self, after: float):
        self.after, self.started, self.turned, self.asked = after, None, None, 0

    def __call__(self) -> bool:
        self.asked += 1
        if self.started is None:
            self.started = time.perf_counter()
        if self.turned is None and time.perf_counter() - self.started >= self.after:
            self.turned = time.perf_counter()
        return self.turned is not None


def _long_noise(seconds: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return (0.3 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32)


LONG_STEPS = {
    "finish_candidate": lambda audio, cancel: finish_candidate(audio, 48000, 44100, 120.0, is_cancelled=cancel),
    "resample": lambda audio, cancel: resample(audio.T, 48000, 44100, is_cancelled=cancel),
    "finish_loudness": lambda audio, cancel: loudness.finish_loudness(audio.T, 48000, -9.0, -1.0, is_cancelled=cancel),
    "finish_loudness, loop": lambda audio, cancel: loudness.finish_loudness(audio.T, 48000, None, -1.0, circular=True,
                                                                             is_cancelled=cancel),
    "remove_subsonic": lambda audio, cancel: loudness.remove_subsonic(audio.T, 48000, is_cancelled=cancel),
    "block_powers": lambda audio, cancel: loudness.block_powers(audio.T, 48000, is_cancelled=cancel),
    "true_peak_envelope": lambda audio, cancel: loudness.true_peak_envelope(audio.T, is_cancelled=cancel),
    "limit_true_peak": lambda audio, cancel: loudness.limit_true_peak(audio.T * 8, 48000, -1.0, is_cancelled=cancel),
}


@pytest.mark.parametrize("step", LONG_STEPS)
def test_long_audio_steps_stop_within_a_fraction_of_a_second_of_a_cancel(step):
    audio = _long_noise(120.0, 48000)
    cancel = CancelLater(0.05)
    with pytest.raises(GenerationCancelled):
        LONG_STEPS[step](audio, cancel)
    assert cancel.turned is not None
    assert time.perf_counter() - cancel.turned < 0.5
    assert cancel.asked > 1  # asked as it went, not only once before starting


def test_a_step_that_is_never_cancelled_gives_the_same_audio_as_without_the_check():
    audio = _long_noise(3.0, 48000)
    plain = finish_candidate(audio, 48000, 44100, 3.0)
    checked = finish_candidate(audio, 48000, 44100, 3.0, is_cancelled=lambda: False)
    assert np.array_equal(plain, checked)
