"""Verification: where, and how closely, a query's chroma follows a reference's.

For each tempo ratio in TEMPO_RATIOS the query's frames are resampled in time, and for
each of the 12 key rotations the frame-by-frame cosine similarity to the reference is
averaged along every diagonal over a MATCH_WINDOW_S window. The best such mean is the
score; its diagonal, followed while the window stays over the threshold, gives the
matching time ranges. This is the cross-similarity matrix of cover-song detection
(librosa.segment.cross_similarity, Serra et al. 2009) searched for straight diagonals:
a straight line is what a copy at one tempo makes, and searching only straight lines at
a few tempi is what keeps a query against 1,000 references under a second. It is
hand-written because librosa.segment.cross_similarity plus librosa.sequence.rqa (the
recurrence alignment, which also follows bent paths) took 169 ms for one (tempo, key)
pair of a 60 s query and a 30 s reference here, against 25 ms for all 108 pairs below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from acestep_core.originality.features import FRAME_S

# +-10 % in steps of 2.5 %: over a window the drift between steps is under half a frame.
TEMPO_RATIOS = tuple(round(1 + 0.025 * k, 3) for k in range(-4, 5))
# The length of a stretch that must match: the 10 s of the shortest excerpt the check
# must catch. Longer is safer: two sketch cues sharing a 4-bar progression scored up to
# 0.917 over 8 s with 6 s centring, 0.82 over 10 s with 3 s; copies 0.887 and more.
MATCH_WINDOW_S = 10.0
# The coarse pass averages this many frames into one, and keeps this many (tempo, key) pairs.
COARSE_FACTOR = 3
COARSE_KEEP = 3


@dataclass
class Alignment:
    score: float  # best windowed mean cosine, 0..1
    ratio: float  # the query's tempo / the reference's
    semitones: int  # the query is the reference moved by this many semitones
    query_range: tuple[float, float]  # seconds in the query file
    reference_range: tuple[float, float]  # seconds in the reference


def stretched(chroma: np.ndarray, ratio: float) -> np.ndarray:
    """The query's frames played `ratio` times as long (a query at ratio x the reference's tempo
    lines up with it after stretched(query, ratio))."""
    frames = len(chroma)
    count = max(1, int(round(frames * ratio)))
    positions = np.minimum(np.arange(count) / ratio, frames - 1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, frames - 1)
    frac = (positions - low)[:, None].astype(np.float32)
    mixed = chroma[low] * (1 - frac) + chroma[high] * frac
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.where(norms > 1e-6, mixed / np.maximum(norms, 1e-6), 0.0).astype(np.float32)


def window_frames(query_frames: int, reference_frames: int) -> int:
    """MATCH_WINDOW_S in frames, or the shorter file's length when it is shorter."""
    return max(4, min(int(round(MATCH_WINDOW_S / FRAME_S)), query_frames, reference_frames))


def align(query: np.ndarray, reference: np.ndarray, threshold: float) -> Alignment | None:
    """The best straight-line match of `query` (frames, 12) in `reference` (frames, 12).

    A coarse pass (frames averaged by COARSE_FACTOR, every 5 % of tempo, all 12 keys)
    picks the COARSE_KEEP best (tempo, key) pairs; the fine pass searches each at full
    resolution and the tempo ratios beside it."""
    if len(query) < 4 or len(reference) < 4:
        return None
    coarse_query, coarse_reference = _decimated(query), _decimated(reference)
    coarse = []
    rotations = np.stack([np.roll(coarse_reference, -shift, axis=1) for shift in range(12)])
    for ratio in TEMPO_RATIOS[::2]:
        q = stretched(coarse_query, ratio)
        means, _, _ = _best_windows(rotations @ q.T,
                                    window_frames(len(q) * COARSE_FACTOR, len(reference)) // COARSE_FACTOR)
        coarse += [(float(score), ratio, shift) for shift, score in enumerate(means)]
    coarse.sort(reverse=True)
    best = None
    for _, coarse_ratio, shift in coarse[:COARSE_KEEP]:
        rotated = np.roll(reference, -shift, axis=1)
        for ratio in TEMPO_RATIOS:
            if abs(ratio - coarse_ratio) > 0.026:
                continue
            q = stretched(query, ratio)
            window = window_frames(len(q), len(reference))
            sim = rotated @ q.T
            score, ref_start, query_start = _best_window(sim, window)
            if best is None or score > best[0]:
                best = (score, ratio, shift, ref_start, query_start, sim, window)
    score, ratio, shift, ref_start, query_start, sim, window = best
    ref_range, query_range = _extend(sim, ref_start, query_start, window, min(threshold, score))
    return Alignment(score=float(np.clip(score, 0.0, 1.0)), ratio=ratio, semitones=-_signed(shift),
                     query_range=(round(query_range[0] * FRAME_S / ratio, 2), round(query_range[1] * FRAME_S / ratio, 2)),
                     reference_range=(round(ref_range[0] * FRAME_S, 2), round(ref_range[1] * FRAME_S, 2)))


def _decimated(chroma: np.ndarray) -> np.ndarray:
    frames = len(chroma) // COARSE_FACTOR * COARSE_FACTOR
    if frames == 0:
        return chroma
    blocks = chroma[:frames].reshape(-1, COARSE_FACTOR, 12).mean(axis=1)
    norms = np.linalg.norm(blocks, axis=1, keepdims=True)
    return np.where(norms > 1e-6, blocks / np.maximum(norms, 1e-6), 0.0).astype(np.float32)


def _signed(shift: int) -> int:
    return shift - 12 if shift > 6 else shift


def _best_window(sim: np.ndarray, window: int) -> tuple[float, int, int]:
    """The best mean of `window` consecutive cells along any diagonal of sim (R, Q), and
    where that window starts: (mean, reference frame, query frame)."""
    means, ref_starts, query_starts = _best_windows(sim[None], window)
    return float(means[0]), int(ref_starts[0]), int(query_starts[0])


def _best_windows(sims: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_best_window for each of K matrices (K, R, Q) at once: (means, reference starts,
    query starts), each (K,)."""
    keys, rows, cols = sims.shape
    window = max(1, min(window, rows, cols))
    # Sheared view: row d holds the diagonal whose query frame is reference frame + d - (rows - 1).
    width = 2 * rows - 1 + cols
    padded = np.zeros((keys, rows, width), np.float32)
    padded[:, :, rows - 1: rows - 1 + cols] = sims
    diagonals = as_strided(padded, shape=(keys, rows + cols - 1, rows),
                           strides=(rows * width * 4, 4, (width + 1) * 4))
    sums = np.cumsum(diagonals, axis=2, dtype=np.float32)
    window_sums = sums[:, :, window - 1:].copy()
    window_sums[:, :, 1:] -= sums[:, :, :-window]
    # Only windows wholly inside the matrix count: diagonal d covers reference frames
    # [max(0, rows-1-d), min(rows, rows-1-d+cols)).
    d = np.arange(rows + cols - 1)[:, None]
    i = np.arange(window_sums.shape[2])[None, :]
    inside = (i >= np.maximum(0, rows - 1 - d)) & (i + window <= np.minimum(rows, rows - 1 - d + cols))
    window_sums[:, ~inside] = -np.inf
    flat = window_sums.reshape(keys, -1).argmax(axis=1)
    diagonal, start = np.divmod(flat, window_sums.shape[2])
    means = window_sums.reshape(keys, -1)[np.arange(keys), flat] / window
    return means, start, start + diagonal - (rows - 1)


def _extend(sim: np.ndarray, ref_start: int, query_start: int, window: int,
            threshold: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """Grow the best window along its diagonal while windows stay at or over threshold."""
    rows, cols = sim.shape
    offset = query_start - ref_start
    first = max(0, -offset)
    last = min(rows, cols - offset)  # reference frames i in [first, last) lie on the diagonal
    values = sim[np.arange(first, last), np.arange(first, last) + offset]
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    means = (sums[window:] - sums[:-window]) / window  # means[j]: window starting at reference frame first + j
    j = ref_start - first
    lo = j
    while lo > 0 and means[lo - 1] >= threshold - 1e-6:
        lo -= 1
    hi = j
    while hi + 1 < len(means) and means[hi + 1] >= threshold - 1e-6:
        hi += 1
    # A window over the threshold may start or end on music that is not the copy; trim
    # each end while the 1 s around it is under the threshold.
    smooth = max(1, int(round(1.0 / FRAME_S)))
    local = np.convolve(values, np.ones(smooth) / smooth, mode="same")
    start, end = lo, hi + window  # indexes into values
    while end - start > window // 2 and local[start] < threshold:
        start += 1
    while end - start > window // 2 and local[end - 1] < threshold:
        end -= 1
    ref_range = (first + start, first + end)
    return ref_range, (ref_range[0] + offset, ref_range[1] + offset)
