"""Drum parts: each style's groove per bar and energy, fills at phrase ends, crashes on top."""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from acestep_core.backends.sketch.score import Hit, Score, grid


@dataclass(frozen=True)
class Feel:
    """What a take's drummer does with the style's groove, drawn once from the seed.

    `variant` the kick pattern (and each groove's own touch); `hats` how the hats (or the
    four-on-the-floor's off-beats) run: 0 the style's own, 1 busier, 2 sparser with an
    open hat; `half_time` the backbeat on beat 3 alone (4/4 rock, pop, synthwave);
    `ghosts` soft snare notes before the backbeats.
    """

    variant: int = 0
    hats: int = 0
    half_time: bool = False
    ghosts: bool = False

    @classmethod
    def drawn(cls, groove: str, score: Score, rng: np.random.Generator) -> "Feel":
        variant, hats = int(rng.integers(3)), int(rng.integers(3))
        half_time = bool(rng.random() < 0.3) and groove in ("rock", "pop", "synthwave") and score.beats == 4
        ghosts = bool(rng.random() < 0.4) and groove in ("rock", "pop", "lofi", "synthwave") and not score.compound
        return cls(variant, hats, half_time, ghosts)


def write_drums(score: Score, groove: str, rng: np.random.Generator) -> list[Hit]:
    """Hits bar by bar: the groove at the bar's energy, a fill at phrase ends, a crash on top."""
    if groove == "none":
        return []
    feel = Feel.drawn(groove, score, rng)
    hits: list[Hit] = []
    for bar in score.bars:
        pattern = _groove_bar(score, groove, bar.energy, feel)
        if bar.phrase_end and bar.energy > 0 and bar.phrase_bars >= 2:
            pattern = _with_fill(score, groove, pattern, long=bar.energy == 2 and rng.random() < 0.5, rng=rng)
        if bar.phrase_start and (bar.energy == 2 or (bar.energy == 1 and bar.index > 0 and bar.section != "verse")):
            pattern = [h for h in pattern if not (h[0] == 0 and "hat" in h[1])] + [(0.0, "crash", 0.9)]
        if bar.phrase_start and groove == "orchestral" and bar.energy == 2:
            pattern.append((0.0, "boom", 1.0))
        base = bar.index * score.beats
        for position, drum, velocity in pattern:
            hits.append(Hit(base + position, drum, velocity * float(rng.uniform(0.9, 1.0))))
    return hits


def _groove_bar(score: Score, groove: str, energy: int, feel: Feel) -> list[tuple[float, str, float]]:
    """One bar of a style's groove in a take's feel: (beat in bar, drum, velocity)."""
    beats, eighth, sixteenth = score.beats, score.eighth, score.sixteenth
    pulses, backbeats = score.pulses, score.backbeats
    variant = feel.variant
    if feel.half_time and energy >= 1:
        backbeats = (2,)
    # A busier take's hats run a step finer, a sparser one's a step coarser.
    finer = {0: 1.0, 1: 0.5, 2: 2.0}[feel.hats]
    kicks = [0.0] + ([2.0] if beats == 4 else [])
    out: list[tuple[float, str, float]] = []

    def hats(step: float, drum: str = "closed_hat", loud: float = 0.8, soft: float = 0.5) -> None:
        for p in grid(step, beats):
            out.append((p, drum, loud if p in pulses or (not score.compound and p == int(p)) else soft))

    if groove == "four_on_floor":
        for p in pulses:
            out.append((float(p), "kick", 1.0))
        offbeats = list(score.offbeats)
        if energy == 0:
            out += [(p, "closed_hat", 0.5) for p in offbeats]
            return out
        out += [(float(b), "clap", 0.9) for b in backbeats]
        if feel.hats == 2:  # closed off-beats, the open hat only on the bar's last
            out += [(p, "closed_hat", 0.7) for p in offbeats[:-1]] + [(offbeats[-1], "open_hat", 0.75)]
        else:
            out += [(p, "open_hat", 0.75) for p in offbeats]
        if energy == 2 or feel.hats == 1:
            out += [(p, "closed_hat", 0.45 if energy == 2 else 0.35) for p in grid(sixteenth, beats) if p not in offbeats]
        if variant == 1 and energy == 2:
            out += [(beats - sixteenth, "kick", 0.6)]
        elif variant == 2 and energy == 2:
            out += [(b + sixteenth * 3, "snare", 0.4) for b in backbeats]
        return out
    if groove == "jazz":
        # The ride's spang-a-lang (every beat, the skip before two and four), the hi-hat's
        # foot on the backbeats, the kick feathered on the pulses; the swing does the rest.
        if energy == 0:
            return [(float(p), "open_hat", 0.5) for p in pulses] + [(0.0, "kick", 0.35)]
        out += [(float(p), "closed_hat", 0.8 if energy == 2 else 0.65) for p in pulses]
        out += [(b - eighth, "closed_hat", 0.5) for b in backbeats if b - eighth > 0]
        out += [(float(b), "rim" if variant == 2 else "snare", 0.35) for b in backbeats]
        out += [(float(p), "kick", 0.3) for p in pulses]
        if energy == 2:
            comp = (1.5, 3.5) if variant == 1 and beats == 4 else ((2.5,) if beats == 4 else ())
            out += [(c, "snare", 0.45) for c in comp]
        return out
    if groove == "orchestral":
        out.append((0.0, "timpani", 0.7 if energy == 0 else 1.0))
        if energy >= 1 and beats in (4, 6):
            out.append((beats / 2.0, "timpani_low", 0.75))
        if energy == 2:
            if variant == 1:
                out += [(float(beats) - eighth, "timpani", 0.6)]
            elif variant == 2 and not score.compound:
                out += [(1.5, "timpani", 0.55)]
            if feel.hats == 1 and not score.compound:
                # A march: the field drum's dotted rhythm on every beat.
                out += [(p + q, "snare", v) for p in range(beats) for q, v in ((0.0, 0.28), (0.75, 0.16))]
            elif feel.hats == 2:
                out += [(0.0, "snare", 0.22), (beats - eighth, "snare", 0.18)]
            else:
                # A field drum marks the pulses, with a pickup into the next bar.
                out += [(float(p), "snare", 0.25) for p in pulses] + [(beats - eighth, "snare", 0.18)]
        return out
    if groove == "synthwave":
        if energy == 0:
            hats(eighth, loud=0.6, soft=0.4)
            out += [(0.0, "kick", 0.9)] + ([(2.0, "kick", 0.8)] if beats == 4 else [])
            return out
        out += [(float(p), "kick", 1.0) for p in (pulses if not feel.half_time else (0, 2.5) if beats == 4 else pulses)]
        out += [(float(b), "snare", 1.0) for b in backbeats]
        if feel.ghosts:
            out += [(b - sixteenth, "snare", 0.25) for b in backbeats if b - sixteenth > 0]
        if energy == 2:
            out += [(float(b), "clap", 0.7) for b in backbeats]
            hats(sixteenth if feel.hats != 2 else eighth, loud=0.7, soft=0.4)
            if variant == 2 or feel.hats == 2:
                out += [(p, "open_hat", 0.6) for p in score.offbeats]
        else:
            hats(eighth if feel.hats != 1 else sixteenth)
        return out
    # rock, pop, chiptune, lofi share a backbeat groove with their own touches.
    extra_kicks = {0: [], 1: [2.5] if beats == 4 else [], 2: [1.5, 2.5] if beats == 4 else []}[variant]
    if feel.half_time:
        kicks, extra_kicks = [0.0], ([2.5, 3.5] if variant == 2 else [2.5])
    if groove == "lofi":
        extra_kicks = [2.5] if beats == 4 and variant != 1 else ([1.5] if beats == 4 else [])
    if energy == 0:
        if groove == "lofi":
            hats(eighth, loud=0.55, soft=0.35)
            out += [(float(b), "rim", 0.7) for b in backbeats]
        else:
            out.append((0.0, "kick", 0.85))
            hats(1.0 if not score.compound else 3.0, loud=0.6, soft=0.6)
        return out
    out += [(k, "kick", 1.0) for k in (kicks if not score.compound else [0.0])]
    out += [(k, "kick", 0.8) for k in extra_kicks]
    out += [(float(b), "snare", 1.0) for b in backbeats]
    if feel.ghosts:
        out += [(b - sixteenth, "snare", 0.22) for b in backbeats if b - sixteenth > 0]
    if groove == "pop" and energy == 2:
        out += [(float(b), "clap", 0.6) for b in backbeats]
    step = eighth * finer if not score.compound else {1.0: 1.0, 0.5: 0.5, 2.0: 3.0}[finer]
    if groove == "chiptune" and energy == 2:
        hats(step, loud=0.7, soft=0.55)
        out += [(beats - eighth, "open_hat", 0.6)]
    elif groove == "rock" and energy == 2 and feel.hats != 1:
        hats(step, drum="open_hat", loud=0.55, soft=0.4)
    else:
        hats(step)
        if energy == 2:
            out += [(beats - eighth, "open_hat", 0.6)]
    return out


def _with_fill(score: Score, groove: str, pattern: list, long: bool, rng: np.random.Generator) -> list:
    """Replace the last beat (two when `long`) with a fill that climbs into the next phrase."""
    length = min(2.0 if long else 1.0, score.beats / 2) * (3.0 if score.compound else 1.0)
    length = min(length, float(score.beats))
    start = score.beats - length
    kept = [h for h in pattern if h[0] < start or (h[1] == "kick" and h[0] == start)]
    if groove == "orchestral":
        voices = ["timpani", "timpani_low"]
    elif groove in ("rock", "pop", "synthwave") and rng.random() < 0.7:
        voices = ["snare", "tom_high", "tom_high", "tom_low"]
    elif groove == "lofi":
        voices = ["snare", "rim"]
    else:
        voices = ["snare"]
    step = score.sixteenth
    positions = grid(step, int(length)) if length >= 1 else [0.0]
    if groove == "lofi":
        step = score.eighth
        positions = grid(step, int(length))
    # The fill stops an eighth short: the breath lets the next downbeat land as an attack
    # (a roll run into it masks it, and the top of a loop or phrase sounds soft).
    positions = [p for p in positions if p < length - score.eighth - 1e-9] or positions[:1]
    fill = []
    for i, offset in enumerate(positions):
        progress = i / max(len(positions) - 1, 1)
        voice = voices[min(int(progress * len(voices)), len(voices) - 1)]
        fill.append((start + offset, voice, 0.55 + 0.4 * progress))
    return kept + fill
