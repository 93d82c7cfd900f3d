"""Integrated loudness to a target and a true-peak ceiling (ITU-R BS.1770 / EBU R128).

Loudness is measured with pyloudnorm (K-weighting, gated). True peak is the largest
magnitude of the audio oversampled four times, as BS.1770 Annex 2 describes, so peaks
between samples (which a DAC or a lossy decoder will produce) count. Reaching a target
is a gain; when that gain would push the true peak over the ceiling, a look-ahead peak
limiter takes the peaks down and the gain is corrected until the loudness lands on the
target again. Loops are measured and limited circularly, so the seam is treated as the
middle of the music it is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
import soxr
from scipy.signal import butter, sosfilt, sosfilt_zi

OVERSAMPLING = 4
# Oversampling is soxr's very-high-quality resampler: close to ideal band-limited
# interpolation up to about 0.95 of Nyquist. Short FIR interpolators (scipy's default,
# BS.1770's 48-tap example) roll off earlier and under-read peaks made of content near
# Nyquist by up to a dB, which would let such peaks through the ceiling.
_OVERSAMPLING_QUALITY = "VHQ"
# Aim this far under the ceiling: 16-bit rounding, dither-free float -> int conversion
# and a different true-peak meter's filter can each read a few hundredths of a dB higher.
CEILING_MARGIN_DB = 0.1
# Loudness is corrected until it is this close to the target (well inside 0.5 LU).
LOUDNESS_TOLERANCE_LU = 0.05
_MAX_PASSES = 6
# Never raise a near-silent cue by more than this: it would only bring up noise.
MAX_GAIN_DB = 40.0
# Limiter look-ahead (attack) and release, each.
LIMITER_WINDOW_S = 0.005
# DC offset and subsonic rumble: inaudible, K-weighting ignores them, yet they eat the
# headroom under the true-peak ceiling (a diverged model can hand over a 0.6 offset).
SUBSONIC_CUTOFF_HZ = 15.0
# BS.1770 gating needs at least one 400 ms block.
_MIN_MEASURE_S = 0.4


@dataclass
class LoudnessReport:
    """What finishing measured and did; recorded in the sidecar under "loudness"."""

    target_lufs: float | None
    ceiling_dbtp: float
    integrated_lufs_before: float | None
    integrated_lufs: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    gain_db: float
    limiter_reduction_db: float
    note: str | None = None

    def to_dict(self) -> dict:
        return {key: (round(value, 3) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def gain_to_db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def integrated_loudness(frames: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of (frames, channels) audio; -inf for silence.

    Audio shorter than one gating block is measured repeated to one block (a short loop
    is heard repeated anyway).
    """
    data = np.asarray(frames, dtype=np.float64)
    minimum = int(math.ceil(_MIN_MEASURE_S * sample_rate)) + 1
    if data.shape[0] == 0:
        return -math.inf
    if data.shape[0] < minimum:
        data = np.tile(data, (int(math.ceil(minimum / data.shape[0])), 1))
    with np.errstate(divide="ignore"):
        value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(data))
    return value if math.isfinite(value) else -math.inf


def true_peak_envelope(frames: np.ndarray, circular: bool = False) -> np.ndarray:
    """Per frame, the largest magnitude of the 4x oversampled audio from that frame to the next, over channels."""
    # float32 keeps ~1e-7 relative precision, far inside the ceiling margin, at half the cost.
    data = np.asarray(frames, dtype=np.float32)
    count = data.shape[0]
    if count == 0:
        return np.zeros(0)
    # Enough context for the resampler's filter on either side.
    pad = min(1024, count)
    if circular:
        padded = np.concatenate([data[-pad:], data, data[:pad]], axis=0)
    else:
        padded = np.pad(data, ((pad, pad), (0, 0)))
    rate = 48000  # any rate: only the ratio matters
    upsampled = soxr.resample(padded, rate, OVERSAMPLING * rate, quality=_OVERSAMPLING_QUALITY)
    middle = upsampled[pad * OVERSAMPLING : (pad + count) * OVERSAMPLING]
    if middle.shape[0] < count * OVERSAMPLING:  # never expected; keep the shape whatever soxr rounds
        middle = np.pad(middle, ((0, count * OVERSAMPLING - middle.shape[0]), (0, 0)))
    per_frame = np.abs(middle).reshape(count, OVERSAMPLING, -1).max(axis=(1, 2))
    # The sample itself always counts, whatever the filter's ripple says.
    return np.maximum(per_frame, np.abs(data).max(axis=1))


def true_peak_dbtp(frames: np.ndarray, circular: bool = False) -> float:
    """True peak in dBTP; -inf for silence."""
    envelope = true_peak_envelope(frames, circular)
    return gain_to_db(float(envelope.max())) if envelope.size else -math.inf


def sample_peak_dbfs(frames: np.ndarray) -> float:
    return gain_to_db(float(np.max(np.abs(frames)))) if np.size(frames) else -math.inf


def remove_subsonic(frames: np.ndarray, sample_rate: int, circular: bool = False) -> np.ndarray:
    """A 2nd-order Butterworth high-pass at 15 Hz (-0.1 dB at 40 Hz), started in the steady
    state of the opening's mean (its DC), so an offset does not turn into a click at the
    start; a loop is filtered as the cycle it is (its second pass through the filter is kept)."""
    data = np.asarray(frames, dtype=np.float64)
    if data.shape[0] == 0:
        return np.asarray(frames, dtype=np.float32)
    sos = butter(2, SUBSONIC_CUTOFF_HZ, btype="highpass", fs=sample_rate, output="sos")
    if circular:
        twice = np.concatenate([data, data], axis=0)
        initial = sosfilt_zi(sos)[:, :, None] * twice[0][None, None, :]
        return sosfilt(sos, twice, axis=0, zi=initial)[0][data.shape[0]:].astype(np.float32)
    opening = data[: max(1, int(0.02 * sample_rate))].mean(axis=0)
    initial = sosfilt_zi(sos)[:, :, None] * opening[None, None, :]
    return sosfilt(sos, data, axis=0, zi=initial)[0].astype(np.float32)


def limit_true_peak(frames: np.ndarray, sample_rate: int, ceiling_dbtp: float,
                    circular: bool = False) -> tuple[np.ndarray, float]:
    """Bring true peaks down to the ceiling with a smooth look-ahead gain; returns (audio, max reduction dB).

    The gain is the running minimum of the gain each frame needs (held one window either
    side) smoothed by a moving average one window wide; an average of values that are
    each at most what a frame needs is at most what it needs, so no peak gets through.
    """
    ceiling = db_to_gain(ceiling_dbtp)
    envelope = true_peak_envelope(frames, circular)
    if envelope.size == 0 or envelope.max() <= ceiling:
        return frames, 0.0
    needed = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
    window = max(1, int(round(LIMITER_WINDOW_S * sample_rate)))
    mode = "wrap" if circular else "nearest"
    held = minimum_filter1d(needed, size=2 * window + 1, mode=mode)
    gain = uniform_filter1d(held, size=2 * window + 1, mode=mode)
    gain = np.minimum(gain, held)  # float rounding in the average must not let a peak through
    limited = (np.asarray(frames, dtype=np.float64) * gain[:, None]).astype(np.float32)
    return limited, -gain_to_db(float(gain.min()))


def finish_loudness(frames: np.ndarray, sample_rate: int, target_lufs: float | None,
                    ceiling_dbtp: float, circular: bool = False) -> tuple[np.ndarray, LoudnessReport]:
    """Set integrated loudness to `target_lufs` (None: leave it) under a true-peak ceiling.

    Subsonic content is removed first. With no target the audio is only turned down, as a
    whole, when its true peak is over the ceiling. `circular` treats the audio as a loop for
    the filter, the peak measurement and the limiter.
    """
    effective_ceiling = ceiling_dbtp - CEILING_MARGIN_DB
    out = remove_subsonic(frames, sample_rate, circular)
    before = integrated_loudness(out, sample_rate)
    gain_db = 0.0
    reduction_db = 0.0
    note = None
    if target_lufs is None or not math.isfinite(before):
        if target_lufs is not None:
            note = "the audio is silent; loudness was not changed"
        peak = true_peak_dbtp(out, circular)
        if peak > effective_ceiling:
            gain_db = effective_ceiling - peak
            out = (out * db_to_gain(gain_db)).astype(np.float32)
    else:
        gain_db = min(target_lufs - before, MAX_GAIN_DB)
        if gain_db < target_lufs - before:
            note = f"the audio is nearly silent; raised by the most allowed, {MAX_GAIN_DB:g} dB"
        out = (out * db_to_gain(gain_db)).astype(np.float32)
        previous_miss = math.inf
        for _ in range(_MAX_PASSES):
            out, reduced = limit_true_peak(out, sample_rate, effective_ceiling, circular)
            reduction_db = max(reduction_db, reduced)
            measured = integrated_loudness(out, sample_rate)
            miss = target_lufs - measured
            if abs(miss) <= LOUDNESS_TOLERANCE_LU or note is not None:
                break
            if miss > 0 and miss > 0.9 * previous_miss:
                note = (f"{target_lufs:g} LUFS cannot be reached under a {ceiling_dbtp:g} dBTP ceiling without "
                        f"distorting this audio; it stops at {measured:.1f} LUFS")
                break
            previous_miss = abs(miss)
            step = max(min(miss, MAX_GAIN_DB - gain_db), -MAX_GAIN_DB)
            gain_db += step
            out = (out * db_to_gain(step)).astype(np.float32)
        out, reduced = limit_true_peak(out, sample_rate, effective_ceiling, circular)
        reduction_db = max(reduction_db, reduced)
        # The limiter's last hundredths of a dB: a plain gain, so the ceiling holds exactly.
        peak = true_peak_dbtp(out, circular)
        if peak > effective_ceiling:
            out = (out * db_to_gain(effective_ceiling - peak)).astype(np.float32)
    report = LoudnessReport(
        target_lufs=target_lufs,
        ceiling_dbtp=ceiling_dbtp,
        integrated_lufs_before=before if math.isfinite(before) else None,
        integrated_lufs=_finite_or_none(integrated_loudness(out, sample_rate)),
        true_peak_dbtp=_finite_or_none(true_peak_dbtp(out, circular)),
        sample_peak_dbfs=_finite_or_none(sample_peak_dbfs(out)),
        gain_db=gain_db,
        limiter_reduction_db=reduction_db,
        note=note,
    )
    return out, report


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
