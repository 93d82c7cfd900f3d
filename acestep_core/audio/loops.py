"""Seamless loops on whole bars: the bar grid, the loop's length, and the tail fold.

The backend is asked for a little more than the loop (the tail). The loop is the first
`bars` bars; the audio that follows the loop's end is the music's own continuation, so
folding it over the loop's start with a crossfade makes the last frame of the loop run
on into the first without a step: at the seam the tail is at full gain and the start at
zero. All positions are frames at the output rate; a loop's length is rounded once, so
bar lines never drift more than half a frame from the tempo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acestep_core.errors import LoopDoesNotFit  # defined there so the CLI can catch it without numpy

# The crossfade is one beat, kept between these lengths: long enough to blend two
# different musical moments, short enough that the loop's first beat keeps its attack.
MIN_CROSSFADE_S = 0.05
MAX_CROSSFADE_S = 0.5
# How far past the loop the backend is asked to go: one bar, at most this long, and
# never less than the crossfade. Models tend to wind down at the end of what they are
# asked for; a spare bar keeps that out of the fold.
MAX_TAIL_S = 4.0
# A bar when the tempo is not known before generating (60 BPM in 4/4): the most a
# "fit" loop can run past the requested duration, plus a tail.
UNKNOWN_TEMPO_MARGIN_S = 6.0


@dataclass(frozen=True)
class LoopPlan:
    """Where the loop is, in frames at `sample_rate`."""

    bars: int
    bpm: float
    beats_per_bar: int
    sample_rate: int
    length: int  # frames in the loop; the loop is [start, start + length)
    crossfade: int  # frames folded over the seam
    intro_bars: int = 0  # a one-time intro before the loop, in the same file
    start: int = 0  # the loop's first frame: the intro's length
    source_offset: int = 0  # frames of the generated audio before the file's first (loop_region)

    @property
    def end_exclusive(self) -> int:
        return self.start + self.length

    def bar_lines(self) -> list[int]:
        """Frame of each bar line from the file's bar 1 to the loop's end (intro_bars + bars + 1 values)."""
        return bar_lines(self.intro_bars + self.bars, self.bpm, self.beats_per_bar, self.sample_rate)


def frames_per_bar(bpm: float, beats_per_bar: int, sample_rate: int) -> float:
    """Exact (fractional) frames in one bar: 120 BPM, 4/4, 48 kHz -> 96000.0."""
    if bpm <= 0 or beats_per_bar <= 0:
        raise ValueError(f"bpm and beats per bar must be positive, got {bpm!r} and {beats_per_bar!r}")
    return beats_per_bar * 60.0 / bpm * sample_rate


def bar_lines(bars: int, bpm: float, beats_per_bar: int, sample_rate: int) -> list[int]:
    """Nearest frame of each bar line 0..bars; the last one is the loop's length."""
    bar = frames_per_bar(bpm, beats_per_bar, sample_rate)
    return [int(round(k * bar)) for k in range(bars + 1)]


# Loop lengths `fit` chooses among: musical phrases. 1 and 2 only for durations under
# three bars; past 16 bars a loop stays 16 (a longer cue is a score, not a loop).
PHRASE_BARS = (1, 2, 4, 8, 16)


def fit_bars(duration_s: float, bpm: float, beats_per_bar: int) -> int:
    """The phrase (PHRASE_BARS) nearest a duration, on a log scale: 30 s at 120 BPM 4/4 (15 bars) -> 16."""
    bar_s = beats_per_bar * 60.0 / bpm
    bars = max(duration_s / bar_s, 1e-9)
    return min(PHRASE_BARS, key=lambda phrase: abs(math.log2(phrase / bars)))


def largest_phrase_within(bars: int) -> int:
    """The longest phrase of at most `bars` bars (at least 1)."""
    return max([phrase for phrase in PHRASE_BARS if phrase <= bars] or [1])


def crossfade_frames(bpm: float, sample_rate: int) -> int:
    beat_s = 60.0 / bpm
    return int(round(min(max(beat_s, MIN_CROSSFADE_S), MAX_CROSSFADE_S) * sample_rate))


def tail_seconds(bpm: float | None, beats_per_bar: int) -> float:
    """Seconds to generate past the loop's end."""
    if bpm is None:
        return UNKNOWN_TEMPO_MARGIN_S
    bar_s = beats_per_bar * 60.0 / bpm
    return max(min(bar_s, MAX_TAIL_S), MAX_CROSSFADE_S)


def plan_loop(bpm: float, beats_per_bar: int, sample_rate: int, *, bars: int | None,
              duration_s: float, available_frames: int | None = None, intro_bars: int = 0) -> LoopPlan:
    """The loop for a cue: `bars` whole bars, or (bars=None) the phrase nearest `duration_s`.

    With `available_frames` (the audio actually generated), a fitted loop shrinks to the
    longest phrase that fits with its crossfade; an explicit bar count that does not fit raises
    LoopDoesNotFit with a sentence saying what to change.
    """
    fade = crossfade_frames(bpm, sample_rate)
    wanted = bars if bars is not None else fit_bars(duration_s, bpm, beats_per_bar)
    count = wanted
    if available_frames is not None:
        bar = frames_per_bar(bpm, beats_per_bar, sample_rate)
        # With an intro the seam borrows the intro's last beat (fold_head), not a tail.
        spare = 0 if intro_bars else fade
        fitting = int(math.floor((available_frames - spare) / bar + 1e-9)) - intro_bars
        if bars is not None and fitting < bars:
            seconds_needed = (bars * bar + fade) / sample_rate
            raise LoopDoesNotFit(
                f"{bars} bars at {bpm:.1f} BPM need {seconds_needed:.1f} s of audio but only "
                f"{available_frames / sample_rate:.1f} s was generated; set the tempo, "
                f"ask for fewer bars, or let the loop fit the audio"
            )
        count = wanted if fitting >= wanted else largest_phrase_within(fitting) if fitting >= 1 else 0
        if count < 1:
            raise LoopDoesNotFit(
                f"the generated audio ({available_frames / sample_rate:.1f} s) is shorter than one bar "
                f"at {bpm:.1f} BPM plus its crossfade; ask for a longer duration"
            )
    lines = bar_lines(intro_bars + count, bpm, beats_per_bar, sample_rate)
    start = lines[intro_bars]
    length = lines[-1] - start
    return LoopPlan(bars=count, bpm=float(bpm), beats_per_bar=beats_per_bar, sample_rate=sample_rate,
                    length=length, crossfade=min(fade, length, start if intro_bars else length),
                    intro_bars=intro_bars, start=start)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized correlation of two equally long blocks, clipped to [0, 1]."""
    energy = math.sqrt(float(np.sum(a.astype(np.float64) ** 2)) * float(np.sum(b.astype(np.float64) ** 2)))
    if energy == 0.0:
        return 0.0
    return min(max(float(np.sum(a.astype(np.float64) * b)) / energy, 0.0), 1.0)


def crossfade_gains(length: int, rho: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(fade_in, fade_out) gains for `length` frames: equal-power, corrected for correlation.

    With uncorrelated signals (rho = 0) this is the sin/cos equal-power fade. The two
    sides of a music loop are often alike (the same chords a bar later), and summing
    alike signals at equal power swells by up to 3 dB mid-fade; dividing by
    sqrt(1 + 2*rho*sin*cos) keeps the power constant for any correlation rho in [0, 1]
    (rho = 1 gives gains that sum to one).
    """
    theta = (np.pi / 2.0) * np.arange(length, dtype=np.float64) / max(length, 1)
    fade_in, fade_out = np.sin(theta), np.cos(theta)
    norm = 1.0 / np.sqrt(1.0 + 2.0 * rho * fade_in * fade_out)
    return fade_in * norm, fade_out * norm


def fold_tail(frames: np.ndarray, plan: LoopPlan, rho: float | None = None) -> np.ndarray:
    """The loop [0, plan.length) with the audio after it crossfaded over its start.

    `frames` is (frames, channels) and must run at least plan.crossfade frames past the
    loop. Frame 0 of the result is the frame that followed the loop's last frame in the
    generated audio, so playing end -> start continues the music exactly.
    """
    needed = plan.length + plan.crossfade
    if frames.shape[0] < needed:
        raise LoopDoesNotFit(
            f"the loop needs {needed} frames (the loop and its crossfade) but the audio has {frames.shape[0]}"
        )
    loop = np.array(frames[: plan.length], dtype=np.float32, copy=True)
    fade = plan.crossfade
    if fade == 0:
        return loop
    head = frames[:fade].astype(np.float64)
    tail = frames[plan.length : plan.length + fade].astype(np.float64)
    fade_in, fade_out = crossfade_gains(fade, correlation(head, tail) if rho is None else rho)
    loop[:fade] = (head * fade_in[:, None] + tail * fade_out[:, None]).astype(np.float32)
    return loop


def fold_head(frames: np.ndarray, plan: LoopPlan, rho: float | None = None) -> np.ndarray:
    """Intro and loop [0, plan.end_exclusive), the loop's last beat crossfaded into what led
    into its start (the intro's last beat).

    The intro then runs into the loop exactly as generated on the first pass, and the
    loop's last frame is the frame before its start, so end -> start continues the music.
    """
    end, fade = plan.end_exclusive, plan.crossfade
    if frames.shape[0] < end or plan.start < fade:
        raise LoopDoesNotFit(f"the intro and loop need {end} frames but the audio has {frames.shape[0]}")
    out = np.array(frames[:end], dtype=np.float32, copy=True)
    if fade == 0:
        return out
    ending = frames[end - fade : end].astype(np.float64)
    lead_in = frames[plan.start - fade : plan.start].astype(np.float64)
    fade_in, fade_out = crossfade_gains(fade, correlation(ending, lead_in) if rho is None else rho)
    out[end - fade : end] = (ending * fade_out[:, None] + lead_in * fade_in[:, None]).astype(np.float32)
    return out


def fold(frames: np.ndarray, plan: LoopPlan, rho: float | None = None) -> np.ndarray:
    """The file's frames: fold_tail for a loop from the file's start, fold_head after an intro.

    `rho` (None: measured here) sets the crossfade's correlation: stems take the mix's, so
    their folds stay linear and they still sum to the mix."""
    return fold_head(frames, plan, rho) if plan.intro_bars else fold_tail(frames, plan, rho)


def fold_correlation(frames: np.ndarray, plan: LoopPlan) -> float:
    """The correlation fold measures for this loop's crossfade."""
    fade = plan.crossfade
    if plan.intro_bars:
        end = plan.end_exclusive
        return correlation(frames[end - fade : end].astype(np.float64),
                           frames[plan.start - fade : plan.start].astype(np.float64))
    return correlation(frames[:fade].astype(np.float64), frames[plan.length : plan.length + fade].astype(np.float64))


def with_guard_frame(frames: np.ndarray, start: int = 0) -> np.ndarray:
    """The file followed by a copy of the loop's first frame (see acestep_core.audio.riff on dwEnd)."""
    return np.concatenate([frames, frames[start : start + 1]], axis=0)
