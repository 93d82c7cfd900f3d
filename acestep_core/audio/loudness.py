"""Integrated loudness to a target and a true-peak ceiling (ITU-R BS.1770 / EBU R128).

Loudness is pyloudnorm's meter (its K-weighting stages, block bounds and gates) computed
in a few array operations instead of its per-block loop. True peak is the largest
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
from functools import lru_cache

import numpy as np
import pyloudnorm
import soxr
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import butter, sosfilt, sosfilt_zi

OVERSAMPLING = 4
# Oversampling is soxr's very-high-quality resampler. Measured against ideal (FFT) 4x
# interpolation on tones at 44.1 kHz: within 0.01 dB up to 0.925 of Nyquist (20.4 kHz),
# 0.04 dB low at 0.93, 1 dB at 0.94; blind past 0.95 (the 48 -> 44.1 kHz conversion passes up to about
# 0.94). Short FIR interpolators (scipy's default, BS.1770's 48-tap example) roll off
# earlier and under-read peaks made of content near Nyquist by up to a dB, which would let
# such peaks through the ceiling. soxr "HQ" is 40% cheaper here and reads 0.07 dB low at 0.93.
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
# BS.1770 gating: 400 ms blocks every 100 ms, an absolute gate at -70 LUFS and a relative
# one 10 LU under the loudness of the blocks above it; channel weights L, R, C, Ls, Rs.
_BLOCK_S = 0.4
_BLOCK_STEP = 0.25
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_MIN_MEASURE_S = _BLOCK_S
# Oversample this many frames at a time: the 4x output (1 MiB for stereo) stays in cache
# while its per-frame maximum is taken, which costs more than the resampling otherwise.
_OVERSAMPLING_BLOCK = 16384
# Context on either side so the resampler's filter sees the audio (or silence) around it.
_OVERSAMPLING_CONTEXT = 1024


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
    return gated_loudness(block_powers(frames, sample_rate))


def block_powers(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """K-weighted mean square of every gating block, (channels, blocks).

    pyloudnorm's meter (its own K-weighting stages, block bounds and gates) without its
    per-block Python loop. A plain gain g scales these by g**2 exactly, so a caller that
    only changes the gain need not filter again.
    """
    data = np.asarray(frames, dtype=np.float64)
    data = data[:, None] if data.ndim == 1 else data
    if data.shape[0] == 0:
        return np.zeros((data.shape[1], 0))
    minimum = int(math.ceil(_MIN_MEASURE_S * sample_rate)) + 1
    if data.shape[0] < minimum:
        data = np.tile(data, (int(math.ceil(minimum / data.shape[0])), 1))
    return _channel_block_powers(np.ascontiguousarray(data.T), sample_rate)


def _channel_block_powers(channels: np.ndarray, sample_rate: int) -> np.ndarray:
    """block_powers of (channels, frames) float64 audio at least one block long."""
    power = sosfilt(_k_weighting(sample_rate), channels, axis=-1)
    np.square(power, out=power)
    count = power.shape[1]
    # The same float expressions as pyloudnorm, so every block has the same bounds; block
    # j runs from edge j to edge j + 4 (a block is four steps), cut at the end.
    blocks = int(np.round((count / sample_rate - _BLOCK_S) / (_BLOCK_S * _BLOCK_STEP))) + 1
    edges = (_BLOCK_S * (np.arange(blocks + 4) * _BLOCK_STEP) * sample_rate).astype(np.int64)
    edges = edges[edges < count]
    steps = np.zeros((power.shape[0], blocks + 4))
    steps[:, : edges.size] = np.add.reduceat(power, edges, axis=1)
    sums = steps[:, :blocks] + steps[:, 1 : blocks + 1] + steps[:, 2 : blocks + 2] + steps[:, 3 : blocks + 3]
    return sums / (_BLOCK_S * sample_rate)


def gated_loudness(powers: np.ndarray) -> float:
    """BS.1770 gated loudness in LUFS of block_powers; -inf when no block passes the gates."""
    weights = np.array(_CHANNEL_WEIGHTS[: powers.shape[0]])
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(weights @ powers)
    audible = blocks >= _ABSOLUTE_GATE_LUFS
    if not audible.any():
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(weights @ powers[:, audible].mean(axis=1)) + _RELATIVE_GATE_LU
    gated = (blocks > relative) & audible
    if not gated.any():
        return -math.inf
    value = -0.691 + 10.0 * math.log10(weights @ powers[:, gated].mean(axis=1))
    return value if math.isfinite(value) else -math.inf


@lru_cache(maxsize=8)
def _k_weighting(sample_rate: int) -> np.ndarray:
    """pyloudnorm's K-weighting stages (shelf, high-pass) as second-order sections."""
    stages = pyloudnorm.Meter(sample_rate)._filters.values()
    return np.array([np.concatenate([stage.passband_gain * stage.b, stage.a]) for stage in stages])


def true_peak_envelope(frames: np.ndarray, circular: bool = False, oversampling: int = OVERSAMPLING) -> np.ndarray:
    """Per frame, the largest magnitude of the audio oversampled `oversampling` times from that frame to the next, over channels."""
    # float32 keeps ~1e-7 relative precision, far inside the ceiling margin, at half the cost.
    data = np.ascontiguousarray(frames, dtype=np.float32)
    count = data.shape[0]
    if count == 0:
        return np.zeros(0)
    envelope = np.zeros(count, dtype=np.float32)  # zero where soxr would ever round the output short
    for first, rows in _oversampled_frames(data, circular, oversampling):
        envelope[first : first + rows.shape[0] // oversampling] = _largest_per_frame(rows, oversampling)
    # The sample itself always counts, whatever the filter's ripple says.
    return np.maximum(envelope, _largest_per_frame(data, 1))


def _oversampled_frames(data: np.ndarray, circular: bool, oversampling: int = OVERSAMPLING):
    """Yield (first frame, its 4x oversampled rows), a whole number of frames at a time.

    The same output as one soxr.resample call on the padded audio (a stream is exact),
    block by block.
    """
    count, channels = data.shape
    pad = min(_OVERSAMPLING_CONTEXT, count)
    head = data[-pad:] if circular else np.zeros((pad, channels), np.float32)
    tail = data[:pad] if circular else np.zeros((pad, channels), np.float32)
    blocks = [head] + [data[start : start + _OVERSAMPLING_BLOCK] for start in range(0, count, _OVERSAMPLING_BLOCK)]
    blocks.append(tail)
    rate = 48000  # any rate: only the ratio matters
    stream = soxr.ResampleStream(rate, oversampling * rate, channels, dtype="float32", quality=_OVERSAMPLING_QUALITY)
    skip, first = pad * oversampling, 0
    carry = np.zeros((0, channels), np.float32)
    for index, block in enumerate(blocks):
        rows = stream.resample_chunk(block, last=index == len(blocks) - 1)
        dropped = min(skip, rows.shape[0])
        skip -= dropped
        rows = np.concatenate([carry, rows[dropped:]]) if carry.shape[0] else rows[dropped:]
        whole = min(rows.shape[0] // oversampling, count - first)
        if whole:
            yield first, rows[: whole * oversampling]
            first += whole
        carry = rows[whole * oversampling :]


def _largest_per_frame(rows: np.ndarray, oversampling: int = OVERSAMPLING) -> np.ndarray:
    """Largest magnitude of each group of `oversampling` rows, over channels."""
    grouped = np.abs(rows).reshape(rows.shape[0] // oversampling, -1)
    # Column by column: numpy reduces a short last axis ten times slower.
    largest = grouped[:, 0].copy()
    for column in range(1, grouped.shape[1]):
        np.maximum(largest, grouped[:, column], out=largest)
    return largest


def true_peak_dbtp(frames: np.ndarray, circular: bool = False, oversampling: int = OVERSAMPLING) -> float:
    """True peak in dBTP; -inf for silence. The limiter holds peaks on the 4x grid, so its
    output peaks a little between those points: files as written are measured at 8x."""
    envelope = true_peak_envelope(frames, circular, oversampling)
    return gain_to_db(float(envelope.max())) if envelope.size else -math.inf


def sample_peak_dbfs(frames: np.ndarray) -> float:
    return gain_to_db(float(np.max(np.abs(frames)))) if np.size(frames) else -math.inf


def remove_subsonic(frames: np.ndarray, sample_rate: int, circular: bool = False) -> np.ndarray:
    """A 2nd-order Butterworth high-pass at 15 Hz (-0.1 dB at 40 Hz), started in the steady
    state of the opening's mean (its DC), so an offset does not turn into a click at the
    start; a loop is filtered as the cycle it is (its second pass through the filter is kept)."""
    return _frames_of(_subsonic_removed(frames, sample_rate, circular))


def _subsonic_removed(frames: np.ndarray, sample_rate: int, circular: bool) -> np.ndarray:
    """remove_subsonic as float64 (channels, frames), the layout the K-weighting runs fastest on."""
    data = np.asarray(frames)
    if data.shape[0] == 0:
        return np.zeros(data.shape[::-1])
    sos = butter(2, SUBSONIC_CUTOFF_HZ, btype="highpass", fs=sample_rate, output="sos")
    # sosfilt makes its own float64 channels-first copy to filter in; its result is handed
    # back as a view of that copy, so no further copy is needed for the channels.
    if circular:
        twice = np.concatenate([data, data], axis=0)
        initial = sosfilt_zi(sos)[:, :, None] * twice[0].astype(np.float64)[None, None, :]
        return sosfilt(sos, twice, axis=0, zi=initial)[0][data.shape[0]:].T
    opening = data[: max(1, int(0.02 * sample_rate))].mean(axis=0, dtype=np.float64)
    initial = sosfilt_zi(sos)[:, :, None] * opening[None, None, :]
    return sosfilt(sos, data, axis=0, zi=initial)[0].T


def _frames_of(channels: np.ndarray) -> np.ndarray:
    """(channels, frames) -> contiguous float32 (frames, channels)."""
    return np.ascontiguousarray(channels.T, dtype=np.float32)


def limit_true_peak(frames: np.ndarray, sample_rate: int, ceiling_dbtp: float, circular: bool = False,
                    envelope: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Bring true peaks down to the ceiling with a smooth look-ahead gain; returns (audio, max reduction dB).

    The gain is the running minimum of the gain each frame needs (held one window either
    side) smoothed by a moving average one window wide; an average of values that are
    each at most what a frame needs is at most what it needs, so no peak gets through.
    `envelope` is true_peak_envelope(frames, circular) when the caller has it already.
    Audio already under the ceiling comes back as the same array.
    """
    ceiling = db_to_gain(ceiling_dbtp)
    if envelope is None:
        envelope = true_peak_envelope(frames, circular)
    if envelope.size == 0 or envelope.max() <= ceiling:
        return frames, 0.0
    needed = np.minimum(1.0, ceiling / np.maximum(envelope.astype(np.float64), 1e-12))
    window = max(1, int(round(LIMITER_WINDOW_S * sample_rate)))
    mode = "wrap" if circular else "nearest"
    held = minimum_filter1d(needed, size=2 * window + 1, mode=mode)
    gain = uniform_filter1d(held, size=2 * window + 1, mode=mode)
    gain = np.minimum(gain, held)  # float rounding in the average must not let a peak through
    # In float32: its rounding (1e-7) is far inside the ceiling margin, and finish_loudness
    # measures the limited audio again anyway.
    limited = np.asarray(frames, dtype=np.float32) * gain.astype(np.float32)[:, None]
    return limited, -gain_to_db(float(gain.min()))


@dataclass(frozen=True)
class _Measured:
    """Audio with the two measurements that cost: its true-peak envelope and its loudness
    block powers. A plain gain scales both exactly (soxr and the K-weighting are linear),
    so they are carried across gains and measured again only after the limiter."""

    frames: np.ndarray
    envelope: np.ndarray
    powers: np.ndarray

    @classmethod
    def of(cls, frames: np.ndarray, sample_rate: int, circular: bool,
           channels: np.ndarray | None = None) -> _Measured:
        """Measure `frames`; `channels` is the same audio as float64 (channels, frames) when at hand."""
        if channels is None or frames.shape[0] < int(math.ceil(_MIN_MEASURE_S * sample_rate)) + 1:
            powers = block_powers(frames, sample_rate)
        else:
            powers = _channel_block_powers(channels, sample_rate)
        return cls(frames, true_peak_envelope(frames, circular), powers)

    def scaled(self, gain_db: float) -> _Measured:
        gain = db_to_gain(gain_db)
        return _Measured((self.frames * gain).astype(np.float32), self.envelope * np.float32(gain),
                         self.powers * gain**2)

    @property
    def loudness(self) -> float:
        return gated_loudness(self.powers)

    @property
    def true_peak(self) -> float:
        return gain_to_db(float(self.envelope.max())) if self.envelope.size else -math.inf


def finish_loudness(frames: np.ndarray, sample_rate: int, target_lufs: float | None,
                    ceiling_dbtp: float, circular: bool = False) -> tuple[np.ndarray, LoudnessReport]:
    """Set integrated loudness to `target_lufs` (None: leave it) under a true-peak ceiling.

    Subsonic content is removed first. With no target the audio is only turned down, as a
    whole, when its true peak is over the ceiling. `circular` treats the audio as a loop for
    the filter, the peak measurement and the limiter.
    """
    effective_ceiling = ceiling_dbtp - CEILING_MARGIN_DB
    channels = _subsonic_removed(frames, sample_rate, circular)
    out = _Measured.of(_frames_of(channels), sample_rate, circular, channels)
    del channels
    before = out.loudness
    gain_db = 0.0
    reduction_db = 0.0
    note = None
    if target_lufs is None or not math.isfinite(before):
        if target_lufs is not None:
            note = "the audio is silent; loudness was not changed"
        peak = out.true_peak
        if peak > effective_ceiling:
            gain_db = effective_ceiling - peak
            out = out.scaled(gain_db)
    else:
        gain_db = min(target_lufs - before, MAX_GAIN_DB)
        if gain_db < target_lufs - before:
            note = f"the audio is nearly silent; raised by the most allowed, {MAX_GAIN_DB:g} dB"
        out = out.scaled(gain_db)
        previous_miss = math.inf
        for _ in range(_MAX_PASSES):
            out, reduced = _limited(out, sample_rate, effective_ceiling, circular)
            reduction_db = max(reduction_db, reduced)
            measured = out.loudness
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
            out = out.scaled(step)
        out, reduced = _limited(out, sample_rate, effective_ceiling, circular)
        reduction_db = max(reduction_db, reduced)
        # The limiter's last hundredths of a dB: a plain gain, so the ceiling holds exactly.
        peak = out.true_peak
        if peak > effective_ceiling:
            out = out.scaled(effective_ceiling - peak)
    report = LoudnessReport(
        target_lufs=target_lufs,
        ceiling_dbtp=ceiling_dbtp,
        integrated_lufs_before=before if math.isfinite(before) else None,
        integrated_lufs=_finite_or_none(out.loudness),
        true_peak_dbtp=_finite_or_none(out.true_peak),
        sample_peak_dbfs=_finite_or_none(sample_peak_dbfs(out.frames)),
        gain_db=gain_db,
        limiter_reduction_db=reduction_db,
        note=note,
    )
    return out.frames, report


def _limited(audio: _Measured, sample_rate: int, ceiling_dbtp: float, circular: bool) -> tuple[_Measured, float]:
    """limit_true_peak on measured audio; what the limiter changed is measured again."""
    frames, reduced = limit_true_peak(audio.frames, sample_rate, ceiling_dbtp, circular, audio.envelope)
    if frames is audio.frames:
        return audio, reduced
    return _Measured.of(frames, sample_rate, circular), reduced


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
