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
from dataclasses import asdict, dataclass, field

import numpy as np
import soxr

from acestep_core.audio.filters import SosStream, butter_highpass_sos, k_weighting_sos, sosfilt_zi
from acestep_core.errors import GenerationCancelled
from acestep_core.progress import CancelCheck, never_cancelled

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
# Ask is_cancelled every this many oversampling blocks (about a second of audio).
_CANCEL_CHECK_BLOCKS = 4
# Loudness passes run this many 100 ms steps at a time (1.6 s: a 1.1 MiB float64 stereo chunk).
_CHUNK_STEPS = 16
# The limiter works out its gain this many frames at a time.
_LIMITER_CHUNK = 1 << 16
# Finishing keeps the largest 4x true peak of every block of this many frames (a 26 k-value
# map for ten minutes): where a finer measurement of the same audio must look.
PEAK_BLOCK_FRAMES = 1024
# A finer (8x) measurement looks only in blocks whose 4x peak is within this ratio of the
# largest (-1.9 dB). Between two 4x points a band-limited signal rises at most ~8% of its
# peak above the higher of them (its second derivative is bounded), so a block more than
# 0.76 dB under the 4x maximum cannot hold the 8x maximum; the rest is margin for the
# resampler's own ripple. The absolute slack covers 16-bit rounding of the written samples.
_FINE_SEARCH_RATIO = 0.8
_FINE_SEARCH_SLACK = 1e-3
# Context around each searched run: soxr VHQ's filter reaches under 128 frames (with 256
# the run's oversampled values are exactly those of one pass over the whole audio).
_FINE_CONTEXT = 256
# true_peak_blocks surveys with soxr HQ, then measures at VHQ every block whose HQ peak is
# within this ratio (-0.5 dB) of the largest: HQ's shortfall is far smaller.
_SURVEY_QUALITY = "HQ"
_SURVEY_RATIO = 0.944
# Past this share of the blocks (heavily limited audio), the whole audio is oversampled instead.
_FINE_SEARCH_MOST = 0.4


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
    # The largest 4x true peak per PEAK_BLOCK_FRAMES of the finished audio (not in the sidecar):
    # pass it to true_peak_dbtp(known_peaks=...) to measure the same audio, as written, at 8x cheaply.
    peaks_per_block: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {key: (round(value, 3) if isinstance(value, float) else value) for key, value in asdict(self).items()
                if key != "peaks_per_block"}


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


def block_powers(frames: np.ndarray, sample_rate: int, *, is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """K-weighted mean square of every gating block, (channels, blocks).

    pyloudnorm's meter (its own K-weighting stages, block bounds and gates) without its
    per-block Python loop, chunk by chunk. A plain gain g scales these by g**2 exactly, so
    a caller that only changes the gain need not filter again.
    """
    data = np.asarray(frames)
    data = data[:, None] if data.ndim == 1 else data
    if data.shape[0] == 0:
        return np.zeros((data.shape[1], 0))
    minimum = _minimum_measured_frames(sample_rate)
    if data.shape[0] < minimum:
        data = np.tile(data, (int(math.ceil(minimum / data.shape[0])), 1))
    return _filtered_pass(data, sample_rate, None, measure=True, is_cancelled=is_cancelled)


def _minimum_measured_frames(sample_rate: int) -> int:
    return int(math.ceil(_MIN_MEASURE_S * sample_rate)) + 1


def _filtered_pass(data: np.ndarray, sample_rate: int, high_pass: SosStream | None, *, measure: bool,
                   write_back: bool = False, is_cancelled: CancelCheck = never_cancelled) -> np.ndarray | None:
    """One pass over (frames, channels) audio in chunks of whole 100 ms loudness steps: run
    `high_pass` (writing the result back into `data` when write_back), then, when `measure`,
    the K-weighting; returns the block powers (None without `measure`).

    Each chunk is converted to float64 channels-first once and filtered in place, so the
    pass holds about a megabyte however long the audio, and its powers are the same
    numbers one call over the whole audio gives (the filters carry their state across).
    """
    count, channels = data.shape
    blocks = int(np.round((count / sample_rate - _BLOCK_S) / (_BLOCK_S * _BLOCK_STEP))) + 1
    # The same float expressions as pyloudnorm, so every block has the same bounds; block
    # j runs from edge j to edge j + 4 (a block is four steps), cut at the end.
    edges = (_BLOCK_S * (np.arange(max(blocks, 0) + 4) * _BLOCK_STEP) * sample_rate).astype(np.int64)
    if measure:
        edges = edges[edges < count]
    else:  # no blocks to measure: chunks of the same size from frame 0
        edges = np.arange(0, count, max(1, int(_BLOCK_S * _BLOCK_STEP * sample_rate)))
    steps = np.zeros((channels, max(blocks, 0) + 4)) if measure else None
    weighting = SosStream(k_weighting_sos(sample_rate), channels) if measure else None
    buffer = None  # one float64 chunk for the whole pass
    for first in range(0, edges.size, _CHUNK_STEPS):
        _raise_if_cancelled(is_cancelled)
        local = edges[first : first + _CHUNK_STEPS]
        start = int(local[0])
        stop = int(edges[first + _CHUNK_STEPS]) if first + _CHUNK_STEPS < edges.size else count
        if buffer is None or buffer.shape[1] < stop - start:
            buffer = np.empty((channels, stop - start))
        chunk = buffer[:, : stop - start]
        if chunk.shape[1] != buffer.shape[1]:
            chunk = np.empty((channels, stop - start))  # the last, shorter chunk: the kernel wants C order
        for channel in range(channels):  # channel by channel: 5x faster than one transposing copy
            chunk[channel] = data[start:stop, channel]
        if high_pass is not None:
            high_pass.filter(chunk)
            if write_back:
                for channel in range(channels):
                    data[start:stop, channel] = chunk[channel]
        if weighting is not None:
            weighting.filter(chunk)
            np.square(chunk, out=chunk)
            steps[:, first : first + local.size] = np.add.reduceat(chunk, local - start, axis=1)
    if steps is None:
        return None
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


def true_peak_envelope(frames: np.ndarray, circular: bool = False, oversampling: int = OVERSAMPLING, *,
                       is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """Per frame, the largest magnitude of the audio oversampled `oversampling` times from that frame to the next, over channels."""
    # float32 keeps ~1e-7 relative precision, far inside the ceiling margin, at half the cost.
    data = np.ascontiguousarray(frames, dtype=np.float32)
    count = data.shape[0]
    if count == 0:
        return np.zeros(0)
    envelope = np.zeros(count, dtype=np.float32)  # zero where soxr would ever round the output short
    for first, rows in _oversampled_frames(data, circular, oversampling, is_cancelled):
        _largest_per_frame(rows, oversampling, out=envelope[first : first + rows.shape[0] // oversampling])
    # The sample itself always counts, whatever the filter's ripple says.
    for start in range(0, count, _OVERSAMPLING_BLOCK):
        part = envelope[start : start + _OVERSAMPLING_BLOCK]
        np.maximum(part, _largest_per_frame(data[start : start + _OVERSAMPLING_BLOCK], 1), out=part)
    return envelope


def true_peak_blocks(frames: np.ndarray, circular: bool = False, *,
                     is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """The largest value of true_peak_envelope in every PEAK_BLOCK_FRAMES frames (the last
    block may be short), float32, without keeping the envelope.

    Blocks more than half a dB under the largest peak hold soxr HQ's reading, which may be
    a few hundredths of a dB lower than VHQ's; the largest peak and every block near it are
    VHQ's own (see _blocks_in_runs).
    """
    data = np.ascontiguousarray(frames, dtype=np.float32)
    if data.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    # soxr HQ first (40% cheaper; it reads at most a few hundredths of a dB low, and only
    # for content past 0.92 of Nyquist), then VHQ where the largest peak can be.
    blocks = _streamed_blocks(data, circular, OVERSAMPLING, is_cancelled, _SURVEY_QUALITY)
    near = np.flatnonzero(blocks >= float(blocks.max()) * _SURVEY_RATIO)
    if near.size > _FINE_SEARCH_MOST * blocks.size:
        return _streamed_blocks(data, circular, OVERSAMPLING, is_cancelled)
    for first_block, maxima in _blocks_in_runs(data, circular, OVERSAMPLING, near, is_cancelled):
        blocks[first_block : first_block + maxima.size] = maxima
    return blocks


def _streamed_blocks(data: np.ndarray, circular: bool, oversampling: int, is_cancelled: CancelCheck,
                     quality: str = _OVERSAMPLING_QUALITY) -> np.ndarray:
    """Per-block maxima of the whole audio oversampled `oversampling` times, in one stream."""
    count = data.shape[0]
    blocks = np.zeros(-(-count // PEAK_BLOCK_FRAMES), dtype=np.float32)
    for first, rows in _oversampled_frames(data, circular, oversampling, is_cancelled, quality):
        largest = _largest_per_frame(rows, oversampling)
        # The sample itself always counts, whatever the filter's ripple says.
        np.maximum(largest, _largest_per_frame(data[first : first + largest.size], 1), out=largest)
        # Block boundaries inside these frames (the first one where this piece starts).
        bounds = np.arange(-(-first // PEAK_BLOCK_FRAMES) * PEAK_BLOCK_FRAMES, first + largest.size, PEAK_BLOCK_FRAMES)
        starts = np.concatenate([[first], bounds[bounds > first]]) - first
        maxima = np.maximum.reduceat(largest, starts)
        index = (first + starts) // PEAK_BLOCK_FRAMES
        np.maximum(blocks[index], maxima, out=maxima)
        blocks[index] = maxima
    return blocks


def _blocks_in_runs(data: np.ndarray, circular: bool, oversampling: int, near: np.ndarray,
                    is_cancelled: CancelCheck):
    """Yield (first block, per-block maxima) of the audio oversampled `oversampling` times,
    for runs of the blocks in `near` (sorted), each run measured with _FINE_CONTEXT frames
    of the audio around it: the same values one stream over the whole audio gives."""
    count, channels = data.shape
    if near.size == 0:
        return
    # Runs of blocks (a gap of a few blocks is measured too, rather than set up again).
    breaks = np.flatnonzero(np.diff(near) > 4)
    run_starts = np.concatenate([[near[0]], near[breaks + 1]])
    run_stops = np.concatenate([near[breaks], [near[-1]]]) + 1
    context = min(_FINE_CONTEXT, count)
    rate = 48000  # any rate: only the ratio matters
    stream = soxr.ResampleStream(rate, oversampling * rate, channels, dtype="float32", quality=_OVERSAMPLING_QUALITY)
    for first_block, stop_block in zip(run_starts, run_stops):
        _raise_if_cancelled(is_cancelled)
        start, stop = int(first_block) * PEAK_BLOCK_FRAMES, min(count, int(stop_block) * PEAK_BLOCK_FRAMES)
        around = np.arange(start - context, stop + context)
        if circular:
            segment = data[around % count]
        else:
            segment = np.zeros((around.size, channels), np.float32)
            inside = (around >= 0) & (around < count)
            segment[inside] = data[around[inside]]
        stream.clear()  # each run starts afresh, as one soxr.resample call would
        rows = stream.resample_chunk(segment, last=True)[context * oversampling : (context + stop - start) * oversampling]
        largest = np.zeros(stop - start, dtype=np.float32)
        whole = rows.shape[0] // oversampling
        largest[:whole] = _largest_per_frame(rows[: whole * oversampling], oversampling)
        np.maximum(largest, _largest_per_frame(data[start:stop], 1), out=largest)
        padded = np.zeros(-(-largest.size // PEAK_BLOCK_FRAMES) * PEAK_BLOCK_FRAMES, dtype=np.float32)
        padded[: largest.size] = largest
        yield int(first_block), padded.reshape(-1, PEAK_BLOCK_FRAMES).max(axis=1)


def _blocks_of_envelope(envelope: np.ndarray) -> np.ndarray:
    whole = envelope.size // PEAK_BLOCK_FRAMES
    blocks = envelope[: whole * PEAK_BLOCK_FRAMES].reshape(whole, -1).max(axis=1) if whole else np.zeros(0, np.float32)
    if envelope.size > whole * PEAK_BLOCK_FRAMES:
        blocks = np.append(blocks, envelope[whole * PEAK_BLOCK_FRAMES :].max())
    return blocks.astype(np.float32, copy=False)


def _fine_true_peak(data: np.ndarray, circular: bool, oversampling: int, known_peaks: np.ndarray,
                    is_cancelled: CancelCheck) -> float:
    """The largest magnitude of `data` oversampled `oversampling` times, looking only at the
    blocks whose known 4x peak is near the largest (see _FINE_SEARCH_RATIO)."""
    largest = _sample_peak(data)
    threshold = float(known_peaks.max()) * _FINE_SEARCH_RATIO - _FINE_SEARCH_SLACK
    near = np.flatnonzero(known_peaks >= threshold)
    if near.size > _FINE_SEARCH_MOST * known_peaks.size:  # limited audio: peaks everywhere, one stream is cheaper
        return _streamed_peak(data, circular, oversampling, is_cancelled)
    for _, maxima in _blocks_in_runs(data, circular, oversampling, near, is_cancelled):
        largest = max(largest, float(maxima.max()))
    return largest


def _oversampled_frames(data: np.ndarray, circular: bool, oversampling: int = OVERSAMPLING,
                        is_cancelled: CancelCheck = never_cancelled, quality: str = _OVERSAMPLING_QUALITY):
    """Yield (first frame, its oversampled rows), a whole number of frames at a time.

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
    stream = soxr.ResampleStream(rate, oversampling * rate, channels, dtype="float32", quality=quality)
    skip, first = pad * oversampling, 0
    carry = np.zeros((0, channels), np.float32)
    for index, block in enumerate(blocks):
        if index % _CANCEL_CHECK_BLOCKS == 0:
            _raise_if_cancelled(is_cancelled)
        rows = stream.resample_chunk(block, last=index == len(blocks) - 1)
        dropped = min(skip, rows.shape[0])
        skip -= dropped
        rows = np.concatenate([carry, rows[dropped:]]) if carry.shape[0] else rows[dropped:]
        whole = min(rows.shape[0] // oversampling, count - first)
        if whole:
            yield first, rows[: whole * oversampling]
            first += whole
        carry = rows[whole * oversampling :]


def _largest_per_frame(rows: np.ndarray, oversampling: int = OVERSAMPLING, out: np.ndarray | None = None) -> np.ndarray:
    """Largest magnitude of each group of `oversampling` rows, over channels."""
    grouped = np.abs(rows).reshape(rows.shape[0] // oversampling, -1)
    # Column by column: numpy reduces a short last axis ten times slower.
    if out is None:
        largest = grouped[:, 0].copy()
    else:
        largest = out
        largest[...] = grouped[:, 0]
    for column in range(1, grouped.shape[1]):
        np.maximum(largest, grouped[:, column], out=largest)
    return largest


def _sample_peak(data: np.ndarray) -> float:
    """max |data| without a full-size temporary."""
    return max(float(data.max()), -float(data.min())) if data.size else 0.0


def true_peak_dbtp(frames: np.ndarray, circular: bool = False, oversampling: int = OVERSAMPLING, *,
                   known_peaks: np.ndarray | None = None, is_cancelled: CancelCheck = never_cancelled) -> float:
    """True peak in dBTP; -inf for silence. The limiter holds peaks on the 4x grid, so its
    output peaks a little between those points: files as written are measured at 8x.

    `known_peaks` is true_peak_blocks of the same audio (finishing's report carries it as
    peaks_per_block; the audio may since have been rounded to the file's bit depth): a
    finer measurement then looks only where the peak can be, a few percent of the audio.
    """
    data = np.ascontiguousarray(frames, dtype=np.float32)
    if data.shape[0] == 0:
        return -math.inf
    if oversampling > OVERSAMPLING and known_peaks is not None \
            and known_peaks.size == -(-data.shape[0] // PEAK_BLOCK_FRAMES):
        return gain_to_db(_fine_true_peak(data, circular, oversampling, known_peaks, is_cancelled))
    return gain_to_db(_streamed_peak(data, circular, oversampling, is_cancelled))


def _streamed_peak(data: np.ndarray, circular: bool, oversampling: int, is_cancelled: CancelCheck) -> float:
    """The largest value of true_peak_envelope, without keeping the envelope."""
    largest = _sample_peak(data)
    for _, rows in _oversampled_frames(data, circular, oversampling, is_cancelled):
        largest = max(largest, _sample_peak(rows))
    return largest


def sample_peak_dbfs(frames: np.ndarray) -> float:
    return gain_to_db(_sample_peak(np.asarray(frames))) if np.size(frames) else -math.inf


def remove_subsonic(frames: np.ndarray, sample_rate: int, circular: bool = False, *,
                    is_cancelled: CancelCheck = never_cancelled) -> np.ndarray:
    """A 2nd-order Butterworth high-pass at 15 Hz (-0.1 dB at 40 Hz), started in the steady
    state of the opening's mean (its DC), so an offset does not turn into a click at the
    start; a loop is filtered as the cycle it is (its second pass through the filter is kept).
    Returns float32 (frames, channels), a new array."""
    data = np.array(frames, dtype=np.float32, order="C")
    data = data[:, None] if data.ndim == 1 else data
    _remove_subsonic_in_place(data, sample_rate, circular, measure=False, is_cancelled=is_cancelled)
    return data


def _remove_subsonic_in_place(data: np.ndarray, sample_rate: int, circular: bool, *, measure: bool,
                              is_cancelled: CancelCheck) -> np.ndarray | None:
    """remove_subsonic on float32 (frames, channels) `data` in place; with `measure`, also
    returns block_powers of the filtered audio from the same pass."""
    count, channels = data.shape
    if count == 0:
        return np.zeros((channels, 0)) if measure else None
    sos = butter_highpass_sos(SUBSONIC_CUTOFF_HZ, sample_rate)
    if circular:
        # Once round the loop to settle the filter (output discarded), then the pass that is kept.
        settle = SosStream(sos, channels, sosfilt_zi(sos)[None] * data[0].astype(np.float64)[:, None, None])
        _filtered_pass(data, sample_rate, settle, measure=False, is_cancelled=is_cancelled)
        stream = SosStream(sos, channels, settle.state)
    else:
        opening = data[: max(1, int(0.02 * sample_rate))].mean(axis=0, dtype=np.float64)
        stream = SosStream(sos, channels, sosfilt_zi(sos)[None] * opening[:, None, None])
    if not measure or count < _minimum_measured_frames(sample_rate):
        _filtered_pass(data, sample_rate, stream, measure=False, write_back=True, is_cancelled=is_cancelled)
        return block_powers(data, sample_rate, is_cancelled=is_cancelled) if measure else None
    return _filtered_pass(data, sample_rate, stream, measure=True, write_back=True, is_cancelled=is_cancelled)


def limit_true_peak(frames: np.ndarray, sample_rate: int, ceiling_dbtp: float, circular: bool = False,
                    envelope: np.ndarray | None = None, *, in_place: bool = False,
                    is_cancelled: CancelCheck = never_cancelled) -> tuple[np.ndarray, float]:
    """Bring true peaks down to the ceiling with a smooth look-ahead gain; returns (audio, max reduction dB).

    The gain is the running minimum of the gain each frame needs (held one window either
    side) smoothed by a moving average one window wide; an average of values that are
    each at most what a frame needs is at most what it needs, so no peak gets through.
    `envelope` is true_peak_envelope(frames, circular) when the caller has it already.
    Audio already under the ceiling comes back as the same array; otherwise the result is
    float32, written over `frames` when in_place (frames must then be float32 and
    contiguous). The gain is worked out a chunk at a time (with two windows of context on
    either side), so no full-length float64 array is made.
    """
    ceiling = db_to_gain(ceiling_dbtp)
    if envelope is None:
        envelope = true_peak_envelope(frames, circular, is_cancelled=is_cancelled)
    if envelope.size == 0 or envelope.max() <= ceiling:
        return frames, 0.0
    from scipy.ndimage import minimum_filter1d, uniform_filter1d  # only when there is something to limit

    out = frames if in_place else np.array(frames, dtype=np.float32, order="C")
    count = envelope.size
    window = max(1, int(round(LIMITER_WINDOW_S * sample_rate)))
    size, reach = 2 * window + 1, 2 * window
    lowest = 1.0
    for start in range(0, count, _LIMITER_CHUNK):
        _raise_if_cancelled(is_cancelled)
        stop = min(count, start + _LIMITER_CHUNK)
        around = np.arange(start - reach, stop + reach)
        around = around % count if circular else np.clip(around, 0, count - 1)
        seen = envelope[around].astype(np.float64)
        if seen.max() <= ceiling:
            continue  # every frame here and within reach needs no gain: the gain is exactly 1
        needed = np.minimum(1.0, ceiling / np.maximum(seen, 1e-12))
        held = minimum_filter1d(needed, size=size)  # the edges' mode is moot: only the middle is kept
        if not circular:  # past either end the held gain goes on as it was at the end ("nearest")
            held[: max(0, reach - start)] = held[max(0, reach - start)]
            beyond = max(0, stop + reach - count)
            if beyond:
                held[-beyond:] = held[-beyond - 1]
        gain = uniform_filter1d(held, size=size)
        gain = np.minimum(gain, held)[reach : reach + stop - start]  # rounding in the average must not let a peak through
        # In float32: its rounding (1e-7) is far inside the ceiling margin, and finish_loudness
        # measures the limited audio again anyway.
        out[start:stop] *= gain.astype(np.float32)[:, None]
        lowest = min(lowest, float(gain.min()))
    return out, -gain_to_db(lowest)


class _Measured:
    """Audio with the two measurements that cost: its true peak per block (and, when the
    limiter may need it, the true-peak envelope) and its loudness block powers. A plain
    gain scales them exactly (soxr and the K-weighting are linear), so they are carried
    across gains and measured again only after the limiter. The audio is changed in place."""

    def __init__(self, frames: np.ndarray, powers: np.ndarray, circular: bool, keep_envelope: bool,
                 is_cancelled: CancelCheck):
        self.frames, self.powers = frames, powers
        if keep_envelope:
            self.envelope = true_peak_envelope(frames, circular, is_cancelled=is_cancelled)
            self.blocks = _blocks_of_envelope(self.envelope)
        else:
            self.envelope = None
            self.blocks = true_peak_blocks(frames, circular, is_cancelled=is_cancelled)

    def scale(self, gain_db: float) -> None:
        gain = db_to_gain(gain_db)
        self.frames *= np.float32(gain)
        self.powers = self.powers * gain**2
        self.blocks *= np.float32(gain)
        if self.envelope is not None:
            self.envelope *= np.float32(gain)

    @property
    def peak(self) -> float:
        return float(self.blocks.max()) if self.blocks.size else 0.0

    @property
    def loudness(self) -> float:
        return gated_loudness(self.powers)

    @property
    def true_peak(self) -> float:
        return gain_to_db(self.peak)


def finish_loudness(frames: np.ndarray, sample_rate: int, target_lufs: float | None,
                    ceiling_dbtp: float, circular: bool = False, *, in_place: bool = False,
                    is_cancelled: CancelCheck = never_cancelled) -> tuple[np.ndarray, LoudnessReport]:
    """Set integrated loudness to `target_lufs` (None: leave it) under a true-peak ceiling.

    Subsonic content is removed first. With no target the audio is only turned down, as a
    whole, when its true peak is over the ceiling. `circular` treats the audio as a loop for
    the filter, the peak measurement and the limiter. Returns float32 (frames, channels):
    `frames` itself, changed, when in_place and it is float32 and contiguous (what
    generation does, so a long cue is never copied), else a new array. Every step runs in
    chunks and checks is_cancelled between them (GenerationCancelled within a fraction of
    a second).
    """
    effective_ceiling = ceiling_dbtp - CEILING_MARGIN_DB
    data = _working_array(frames, in_place)
    powers = _remove_subsonic_in_place(data, sample_rate, circular, measure=True, is_cancelled=is_cancelled)
    out = _Measured(data, powers, circular, target_lufs is not None, is_cancelled)
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
            out.scale(gain_db)
    else:
        gain_db = min(target_lufs - before, MAX_GAIN_DB)
        if gain_db < target_lufs - before:
            note = f"the audio is nearly silent; raised by the most allowed, {MAX_GAIN_DB:g} dB"
        out.scale(gain_db)
        previous_miss = math.inf
        for _ in range(_MAX_PASSES):
            out, reduced = _limited(out, sample_rate, effective_ceiling, circular, is_cancelled)
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
            out.scale(step)
        out, reduced = _limited(out, sample_rate, effective_ceiling, circular, is_cancelled)
        reduction_db = max(reduction_db, reduced)
        # The limiter's last hundredths of a dB: a plain gain, so the ceiling holds exactly.
        peak = out.true_peak
        if peak > effective_ceiling:
            out.scale(effective_ceiling - peak)
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
        peaks_per_block=out.blocks,
    )
    return out.frames, report


def _working_array(frames: np.ndarray, in_place: bool) -> np.ndarray:
    """float32 C-contiguous (frames, channels): `frames` itself when in_place allows, else a copy."""
    if in_place and isinstance(frames, np.ndarray) and frames.dtype == np.float32 and frames.flags.c_contiguous \
            and frames.flags.writeable and frames.ndim == 2:
        return frames
    data = np.array(frames, dtype=np.float32, order="C")
    return data[:, None] if data.ndim == 1 else data


def _limited(audio: _Measured, sample_rate: int, ceiling_dbtp: float, circular: bool,
             is_cancelled: CancelCheck) -> tuple[_Measured, float]:
    """limit_true_peak on measured audio, in place; what the limiter changed is measured again."""
    frames, reduced = limit_true_peak(audio.frames, sample_rate, ceiling_dbtp, circular, audio.envelope,
                                      in_place=True, is_cancelled=is_cancelled)
    if reduced == 0.0:
        return audio, reduced
    return _Measured(frames, block_powers(frames, sample_rate, is_cancelled=is_cancelled), circular, True,
                     is_cancelled), reduced


def _raise_if_cancelled(is_cancelled: CancelCheck) -> None:
    if is_cancelled():
        raise GenerationCancelled()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
