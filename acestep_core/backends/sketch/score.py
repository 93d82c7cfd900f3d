"""The score the arranger writes and the mixer plays: notes and drum hits in beats, and
the bars they sit on (chord, energy, place in the phrase) with the meter's grid."""

from __future__ import annotations

from dataclasses import dataclass

from acestep_core.backends.sketch.theory import Chord, scale_pitch_classes
from acestep_core.request import beats_per_bar


@dataclass(frozen=True)
class Note:
    start: float  # beats from the start of the cue
    length: float  # beats the note is held (its release rings on after)
    pitches: tuple[int, ...]
    velocity: float = 1.0


@dataclass(frozen=True)
class Hit:
    start: float
    drum: str
    velocity: float = 1.0


@dataclass(frozen=True)
class Section:
    name: str  # intro, verse, chorus, breakdown
    start_bar: int
    bars: int
    energy: int  # 0 sparse, 1 groove, 2 full
    progression: tuple[str, ...]


@dataclass(frozen=True)
class Bar:
    index: int
    chord: Chord
    next_chord: Chord
    energy: int
    section: str
    position: int  # bar within its phrase
    phrase_bars: int
    chord_starts: bool  # the chord changes on this bar
    chord_bars: int  # bars the chord lasts from here (within its section)

    @property
    def phrase_start(self) -> bool:
        return self.position == 0

    @property
    def phrase_end(self) -> bool:
        return self.position == self.phrase_bars - 1


@dataclass(frozen=True)
class Score:
    """What the note writers need: the bars, the key and the meter, and whether a drum kit
    plays (without one, the pitched parts alone must say where the beat is)."""

    bars: tuple[Bar, ...]
    tonic_pc: int
    minor: bool
    time_signature: str
    drums: bool = True

    @property
    def beats(self) -> int:
        return beats_per_bar(self.time_signature)

    @property
    def compound(self) -> bool:
        return self.time_signature == "6/8"

    @property
    def eighth(self) -> float:
        """The groove's subdivision in beats (6/8 counts eighths as beats)."""
        return 1.0 if self.compound else 0.5

    @property
    def sixteenth(self) -> float:
        return self.eighth / 2

    @property
    def pulses(self) -> tuple[int, ...]:
        """Beats that carry the pulse: every beat, or the two dotted quarters of 6/8."""
        return (0, 3) if self.compound else tuple(range(self.beats))

    @property
    def offbeats(self) -> tuple[float, ...]:
        """Where off-beat accents go: the "and" of each beat, or the last eighth of each
        group of three in 6/8."""
        return tuple(p + (2.0 if self.compound else 0.5) for p in self.pulses)

    @property
    def backbeats(self) -> tuple[int, ...]:
        return {4: (1, 3), 3: (2,), 2: (1,), 6: (3,)}[self.beats]

    @property
    def scale(self) -> tuple[int, ...]:
        return scale_pitch_classes(self.tonic_pc, self.minor)


def grid(step: float, length: float) -> list[float]:
    """Positions from 0 up to `length` beats, every `step` beats."""
    return [i * step for i in range(int(round(length / step)))]
