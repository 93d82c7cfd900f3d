"""Finishing steps, each a small pure function over numpy arrays.

Backends hand over channels-first float audio at their own rate (48 kHz for ACE-Step);
game engines want interleaved frames at 44.1 kHz, exactly as long as asked, never clipped.
"""

from __future__ import annotations

import numpy as np
import soxr

# Leave a little room below full scale: 16-bit rounding and sample-rate conversion
# can add a fraction of a dB of overshoot.
DEFAULT_PEAK_CEILING_DB = -0.3


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


def resample(frames: np.ndarray, from_rate: int, to_rate: int, quality: str = "VHQ") -> np.ndarray:
    """High-quality sample-rate conversion (soxr); a no-op when the rates match."""
    if from_rate == to_rate:
        return frames
    return soxr.resample(frames, from_rate, to_rate, quality=quality).astype(np.float32, copy=False)


def fit_length(frames: np.ndarray, length: int) -> np.ndarray:
    """Trim or pad with silence to exactly `length` frames."""
    have = frames.shape[0]
    if have == length:
        return frames
    if have > length:
        return frames[:length]
    padding = np.zeros((length - have, frames.shape[1]), dtype=frames.dtype)
    return np.concatenate([frames, padding], axis=0)


def apply_peak_ceiling(frames: np.ndarray, ceiling_db: float = DEFAULT_PEAK_CEILING_DB) -> np.ndarray:
    """Scale down (never up) so the sample peak sits at or below the ceiling."""
    peak = float(np.max(np.abs(frames))) if frames.size else 0.0
    ceiling = 10.0 ** (ceiling_db / 20.0)
    if peak <= ceiling:
        return frames
    return (frames * (ceiling / peak)).astype(np.float32, copy=False)


def target_length(duration_s: float, sample_rate: int) -> int:
    """Frames in `duration_s` seconds at `sample_rate`, rounded to the nearest frame."""
    return int(round(duration_s * sample_rate))


def finish_candidate(samples: np.ndarray, source_rate: int, target_rate: int, duration_s: float,
                     bit_depth: int = 24) -> np.ndarray:
    """The standard chain for one candidate: frames, clean, resample, exact length, peak-safe."""
    frames = replace_non_finite(frames_from_channels_first(samples))
    frames = resample(frames, source_rate, target_rate, resampler_quality(bit_depth))
    frames = fit_length(frames, target_length(duration_s, target_rate))
    return apply_peak_ceiling(frames)
