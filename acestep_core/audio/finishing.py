"""Finishing steps, each a small pure function over numpy arrays.

Backends hand over channels-first float audio at their own rate (48 kHz for ACE-Step);
game engines want interleaved frames at 44.1 kHz, exactly as long as asked, never clipped.
Long audio is worked through in chunks of about a second, into one output array, so a
ten-minute cue costs one copy of itself rather than several, and a cancel
(is_cancelled, checked between chunks) takes effect at once.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from acestep_core.errors import GenerationCancelled
from acestep_core.progress import CancelCheck, never_cancelled

# Leave a little room below full scale: 16-bit rounding and sample-rate conversion
# can add a fraction of a dB of overshoot.
DEFAULT_PEAK_CEILING_DB = -0.3
# Frames converted, cleaned and resampled at a time (0.5 MiB of float32 stereo).
CHUNK_FRAMES = 1 << 16


def frames_from_channels_first(samples: np.ndarray) -> np.ndarray:
    """(channels, frames) -> (frames, channels), float32, contiguous."""
    if samples.ndim != 2:
        raise ValueError(f"expected (channels, frames) audio, got shape {samples.shape}")
    return np.ascontiguousarray(samples.T, dtype=np.float32)


def replace_non_finite(frames: np.ndarray) -> np.ndarray:
    """NaN/inf (a diverged model) become silence instead of poisoning the file."""
    if np.isfinite(frames).all():
        return frames
    return np.nan_to_num(frames, nan=0.0, posinf=0.0, neginf=0.0)


def resampler_quality(bit_depth: int) -> str:
    """soxr HQ is 20-bit precise, already below 16-bit output's noise floor; 24-bit gets VHQ."""
    return "VHQ" if bit_depth > 16 else "HQ"


def resample(frames: np.ndarray, from_rate: int, to_rate: int, quality: str = "VHQ", *,
             is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """High-quality sample-rate conversion (soxr); a no-op when the rates match."""
    if from_rate == to_rate:
        return frames
    return frames_at_rate(np.asarray(frames).T, from_rate, to_rate, quality, is_cancelled=is_cancelled)


def frames_at_rate(samples: np.ndarray, from_rate: int, to_rate: int, quality: str = "VHQ",
                   length: int | None = None, *, is_cancelled: CancelCheck = never_cancelled,
                   reuse: bool = False) -> np.ndarray:
    """Channels-first audio -> float32 (frames, channels) at `to_rate`, NaN/inf made silence.

    One pass of about a second at a time through a soxr stream (the same samples as one
    soxr.resample call) into a single output array. `length` cuts or pads (with silence)
    to exactly that many frames; None keeps what the conversion gives. `reuse`: the caller
    gives `samples` up, so when no conversion is needed and they are interleaved float32
    already (samples.T contiguous, as the sketch makes them), they are cleaned in place and
    returned as they are: a long cue is then never copied.
    """
    if samples.ndim != 2:
        raise ValueError(f"expected (channels, frames) audio, got shape {samples.shape}")
    channels, count = samples.shape
    if reuse and from_rate == to_rate and length in (None, count) and _interleaved_float32(samples):
        return _cleaned_in_place(samples.T, is_cancelled)
    expected = count if from_rate == to_rate else _converted_length(count, from_rate, to_rate)
    out = np.zeros((expected if length is None else length, channels), dtype=np.float32)
    stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, channels, dtype="float32",
                                                                   quality=quality)
    if stream is None:
        return _transposed_clean(samples, out, is_cancelled)
    written = 0
    for start in range(0, max(count, 1), CHUNK_FRAMES):
        if is_cancelled():
            raise GenerationCancelled()
        part = samples[:, start : start + CHUNK_FRAMES]
        chunk = np.empty((part.shape[1], channels), dtype=np.float32)
        for channel in range(channels):  # column by column: 5x faster than one transposing copy
            chunk[:, channel] = part[channel]
        # One sum finds any NaN or inf (cheaper than isfinite); nan_to_num copies, for the
        # chunk may be a view of the caller's audio.
        if not math.isfinite(float(chunk.sum(dtype=np.float64))):
            chunk = np.nan_to_num(chunk, nan=0.0, posinf=0.0, neginf=0.0)
        if stream is not None:
            chunk = stream.resample_chunk(chunk, last=start + CHUNK_FRAMES >= count)
        take = min(chunk.shape[0], out.shape[0] - written)
        out[written : written + take] = chunk[:take]
        written += take
    if length is None and written < out.shape[0]:
        out = out[:written]  # soxr rounded its output a frame short of the estimate
    return out


def _interleaved_float32(samples: np.ndarray) -> bool:
    frames = samples.T
    return frames.dtype == np.float32 and frames.flags.c_contiguous and frames.flags.writeable


def _cleaned_in_place(frames: np.ndarray, is_cancelled: CancelCheck) -> np.ndarray:
    for start in range(0, frames.shape[0], CHUNK_FRAMES):
        if is_cancelled():
            raise GenerationCancelled()
        _clean(frames[start : start + CHUNK_FRAMES])
    return frames


def _clean(part: np.ndarray) -> None:
    # One sum finds any NaN or inf (cheaper than isfinite).
    if not math.isfinite(float(part.sum(dtype=np.float64))):
        np.nan_to_num(part, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def _transposed_clean(samples: np.ndarray, out: np.ndarray, is_cancelled: CancelCheck) -> np.ndarray:
    """No rate change: each chunk is transposed straight into `out` (cut or zero-padded
    already), then cleaned there, so the audio is copied once."""
    count = min(samples.shape[1], out.shape[0])
    for start in range(0, count, CHUNK_FRAMES):
        if is_cancelled():
            raise GenerationCancelled()
        part = out[start : min(start + CHUNK_FRAMES, count)]
        for channel in range(part.shape[1]):  # column by column: 5x faster than one transposing copy
            part[:, channel] = samples[channel, start : start + part.shape[0]]
        _clean(part)
    return out


def _converted_length(frames: int, from_rate: int, to_rate: int) -> int:
    """The frames soxr gives for `frames` at the new rate (it rounds the exact length)."""
    return int(round(frames * to_rate / from_rate))


def fit_length(frames: np.ndarray, length: int) -> np.ndarray:
    """Trim or pad with silence to exactly `length` frames."""
    have = frames.shape[0]
    if have == length:
        return frames
    if have > length:
        return frames[:length]
    padding = np.zeros((length - have, frames.shape[1]), dtype=frames.dtype)
    return np.concatenate([frames, padding], axis=0)


def apply_peak_ceiling(frames: np.ndarray, ceiling_db: float = DEFAULT_PEAK_CEILING_DB, *,
                       in_place: bool = False) -> np.ndarray:
    """Scale down (never up) so the sample peak sits at or below the ceiling."""
    peak = max(float(frames.max()), -float(frames.min())) if frames.size else 0.0
    ceiling = 10.0 ** (ceiling_db / 20.0)
    if peak <= ceiling:
        return frames
    if in_place:
        frames *= np.float32(ceiling / peak)
        return frames
    return (frames * (ceiling / peak)).astype(np.float32, copy=False)


def target_length(duration_s: float, sample_rate: int) -> int:
    """Frames in `duration_s` seconds at `sample_rate`, rounded to the nearest frame."""
    return int(round(duration_s * sample_rate))


def finish_candidate(samples: np.ndarray, source_rate: int, target_rate: int, duration_s: float,
                     bit_depth: int = 24, *, is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """The standard chain for one candidate: frames, clean, resample, exact length, peak-safe.

    Returns a new float32 (frames, channels) array; `samples` is left as it was.
    """
    frames = frames_at_rate(samples, source_rate, target_rate, resampler_quality(bit_depth),
                            target_length(duration_s, target_rate), is_cancelled=is_cancelled)
    return apply_peak_ceiling(frames, in_place=True)
