"""Where in a model's audio a loop should sit: on its bar grid, where the music holds steady.

A model asked for a tempo plays near it, but its first downbeat need not fall on frame 0,
and it may open quietly or wind down. The backend is asked for a few bars of headroom;
then, on the planned tempo's bar grid (the phase found from the onsets), every start that
leaves room for the loop is scored:
- steadiness: the spread of the loop's bar powers, in dB (one energy all the way round);
- the seam: how much the bar after the loop sounds like the loop's first bar (the tail
  folded over the start is then the music's own repeat).
The lowest score wins.

Hand-written: PyMusicLooper (the library for loop points) searches free loop lengths on
its own beat tracking with librosa; here the length is fixed in bars and the grid is
known, so the search is a few dozen candidates scored with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acestep_core.audio.analysis import ONSET_LEAD_S, onset_envelope

# Bars of headroom asked of the model: room to skip an opening or a downbeat off frame 0.
MIN_HEADROOM_BARS = 2
MAX_HEADROOM_BARS = 4
# The seam's weight against steadiness: a mismatch of 1 (nothing alike) counts like 6 dB.
SEAM_WEIGHT_DB = 6.0
_BANDS = 32


@dataclass(frozen=True)
class LoopRegion:
    offset: int  # frames dropped from the model's audio before the file starts
    bars_skipped: int  # whole bars skipped after the grid's first downbeat
    phase: int  # frames from the audio's start to its first downbeat
    steadiness_db: float
    seam_mismatch: float  # 0: the bar after the loop is spectrally the loop's first bar; 1: unlike

    def to_dict(self) -> dict:
        return {"offset_frames": self.offset, "bars_skipped": self.bars_skipped, "downbeat_phase_frames": self.phase,
                "steadiness_db": round(self.steadiness_db, 2), "seam_mismatch": round(self.seam_mismatch, 3)}


def headroom_bars(loop_bars: int) -> int:
    return int(min(MAX_HEADROOM_BARS, max(MIN_HEADROOM_BARS, math.ceil(loop_bars / 4))))


def downbeat_phase(frames: np.ndarray, rate: int, bpm: float, beats_per_bar: int) -> int:
    """Frames to the first downbeat: the beat phase where onsets line up best, then the
    beat of the bar whose onsets are strongest (kicks and crashes mark bar 1)."""
    envelope, hop_s = onset_envelope(frames, rate)
    beat_hops = 60.0 / bpm / hop_s
    if envelope.size < 2 * beat_hops:
        return 0
    steps = max(1, int(round(beat_hops)))
    # Sum of onset strength on a beat grid, for each sub-beat offset.
    strengths = [float(envelope[np.round(np.arange(o, envelope.size, beat_hops)).astype(int)
                                .clip(0, envelope.size - 1)].sum()) for o in range(steps)]
    beat_offset = int(np.argmax(strengths))
    bar_hops = beat_hops * beats_per_bar
    beat_sums = [float(envelope[np.round(np.arange(beat_offset + b * beat_hops, envelope.size, bar_hops))
                                .astype(int).clip(0, envelope.size - 1)].sum()) for b in range(beats_per_bar)]
    first = beat_offset + int(np.argmax(beat_sums)) * beat_hops
    return int(round((first * hop_s + ONSET_LEAD_S) * rate))


def choose_loop_region(frames: np.ndarray, rate: int, bpm: float, beats_per_bar: int, loop_bars: int,
                       intro_bars: int, tail_frames: int) -> LoopRegion:
    """The best start for intro + loop (+ the tail folded over the seam) in `frames`
    ((frames, channels) at `rate`), on the bar grid of `bpm`."""
    bar = beats_per_bar * 60.0 / bpm * rate
    phase = downbeat_phase(frames, rate, bpm, beats_per_bar)
    mono = frames.mean(axis=1) if frames.ndim == 2 else frames
    needed = (intro_bars + loop_bars) * bar + max(tail_frames, bar)
    first_line = phase % bar  # the grid's first bar line in the audio
    candidates = [k for k in range(0, 64) if first_line + k * bar + needed <= mono.size]
    if not candidates:
        return LoopRegion(0, 0, 0, 0.0, 0.0)
    best: tuple[float, LoopRegion] | None = None
    for k in candidates:
        start = first_line + k * bar  # the file's first frame (the intro's, else the loop's)
        loop_start = start + intro_bars * bar
        powers = [_power_db(mono[int(round(loop_start + b * bar)) : int(round(loop_start + (b + 1) * bar))])
                  for b in range(loop_bars)]
        steadiness = max(powers) - min(powers)
        after = mono[int(round(loop_start + loop_bars * bar)) : int(round(loop_start + (loop_bars + 1) * bar))]
        first = mono[int(round(loop_start)) : int(round(loop_start + bar))]
        mismatch = 1.0 - _spectral_likeness(first, after)
        score = steadiness + SEAM_WEIGHT_DB * mismatch
        region = LoopRegion(int(round(start)), k, phase, steadiness, mismatch)
        if best is None or score < best[0] - 1e-9:
            best = (score, region)
    return best[1]


def _power_db(block: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.mean(np.square(block, dtype=np.float64))) + 1e-12)


def _spectral_likeness(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two blocks' log band energies (0..1)."""
    length = min(a.size, b.size)
    if length < 64:
        return 0.0
    bands = [_band_energies(x[:length]) for x in (a, b)]
    norm = float(np.linalg.norm(bands[0]) * np.linalg.norm(bands[1]))
    return 0.0 if norm == 0.0 else max(0.0, float(np.dot(bands[0], bands[1])) / norm)


def _band_energies(block: np.ndarray) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(block * np.hanning(block.size))) ** 2
    edges = np.unique(np.geomspace(2, spectrum.size - 1, _BANDS + 1).astype(int))
    return np.log1p(np.add.reduceat(spectrum, edges[:-1]) / block.size)
