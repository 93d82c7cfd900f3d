"""Music theory the arranger needs: scales, Roman-numeral chords, voicings, melody notes.

Pitches are MIDI note numbers; pitch classes are 0..11 with C = 0; chord roots are
semitones above the key's tonic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; a major V brings the leading tone in

_NUMERAL = re.compile(r"^(?P<accidental>[b#]?)(?P<roman>iii|ii|iv|vii|vi|v|i|III|II|IV|VII|VI|V|I)"
                      r"(?P<dim>°?)(?P<extension>maj7|7|sus2|sus4|add9|b9|5)?$")
_DEGREES = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}


@dataclass(frozen=True)
class Chord:
    """A chord in a key: its numeral, its root in semitones above the tonic, its intervals."""

    numeral: str
    root: int
    intervals: tuple[int, ...]

    def pitch_classes(self, tonic_pc: int) -> tuple[int, ...]:
        return tuple((tonic_pc + self.root + i) % 12 for i in self.intervals)

    @property
    def is_tonic(self) -> bool:
        return self.root == 0


def parse_numeral(numeral: str, minor: bool) -> Chord:
    """'VI' in a minor key -> Chord('VI', 8, (0, 4, 7)). Case is quality: 'ii7' is minor seventh.

    Degrees count in the key's own scale (natural minor for minor keys); a 'b' or '#'
    prefix borrows a chromatic root ('bVII' in major). Extensions: maj7, 7, sus2, sus4,
    add9, b9 (a minor ninth: the semitone cluster of a horror chord), 5 (a power chord);
    '°' makes a diminished triad.
    """
    match = _NUMERAL.match(numeral)
    if not match:
        raise ValueError(f"not a chord numeral: {numeral!r}")
    roman = match["roman"]
    scale = MINOR_SCALE if minor else MAJOR_SCALE
    root = scale[_DEGREES[roman.lower()]] + {"b": -1, "#": 1, "": 0}[match["accidental"]]
    if match["dim"]:
        third, fifth = 3, 6
    elif roman.isupper():
        third, fifth = 4, 7
    else:
        third, fifth = 3, 7
    extension = match["extension"] or ""
    intervals: tuple[int, ...] = (0, third, fifth)
    if extension == "maj7":
        intervals = (0, third, fifth, 11)
    elif extension == "7":
        intervals = (0, third, fifth, 10)
    elif extension == "sus2":
        intervals = (0, 2, fifth)
    elif extension == "sus4":
        intervals = (0, 5, fifth)
    elif extension == "add9":
        intervals = (0, third, fifth, 14)
    elif extension == "b9":
        intervals = (0, third, fifth, 13)
    elif extension == "5":
        intervals = (0, 7)
    return Chord(numeral, root % 12, intervals)


def scale_pitch_classes(tonic_pc: int, minor: bool) -> tuple[int, ...]:
    return tuple((tonic_pc + step) % 12 for step in (MINOR_SCALE if minor else MAJOR_SCALE))


def pitches_in_range(pitch_classes: tuple[int, ...] | set[int], low: int, high: int) -> list[int]:
    """Every MIDI pitch from low to high (inclusive) whose class is in pitch_classes."""
    return [p for p in range(low, high + 1) if p % 12 in pitch_classes]


def chord_scale(scale_pcs: tuple[int, ...], chord_pcs: tuple[int, ...]) -> tuple[int, ...]:
    """The key's scale bent to fit the chord: a scale note a semitone from a chord tone
    that the chord contradicts (G over E major in A minor) gives way to that chord tone."""
    bent = set()
    for pc in scale_pcs:
        clash = next((c for c in chord_pcs if c not in scale_pcs and (c - pc) % 12 in (1, 11)), None)
        bent.add(clash if clash is not None else pc)
    return tuple(sorted(bent))


def lowest_at_or_above(pitch_class: int, low: int) -> int:
    return low + (pitch_class - low) % 12


def close_voicings(pitch_classes: tuple[int, ...], low: int, high: int) -> list[tuple[int, ...]]:
    """Every close-position voicing (each inversion, each octave) that fits in [low, high]."""
    voicings = []
    for inversion in range(len(pitch_classes)):
        order = pitch_classes[inversion:] + pitch_classes[:inversion]
        start = lowest_at_or_above(order[0], low)
        while start <= high:
            notes = [start]
            for pc in order[1:]:
                notes.append(notes[-1] + 1 + (pc - notes[-1] - 1) % 12)
            if notes[-1] <= high:
                voicings.append(tuple(notes))
            start += 12
    return voicings


def voice_chord(chord: Chord, tonic_pc: int, low: int, high: int, previous: tuple[int, ...] | None,
                choice: float = 0.0) -> tuple[int, ...]:
    """A close voicing in [low, high] that moves least from `previous` (smooth voice leading).

    With no previous chord, `choice` in [0, 1) picks among the voicings nearest the middle
    of the range, so seeds can differ in how a progression is voiced.
    """
    pcs = chord.pitch_classes(tonic_pc)
    # Keep at most four distinct notes; the ninth of an add9 goes on top, not in a cluster.
    pcs = tuple(dict.fromkeys(pcs))[:4]
    options = close_voicings(pcs, low, high)
    if not options:
        return tuple(sorted(lowest_at_or_above(pc, low) for pc in pcs))
    if previous:
        centre = sum(previous) / len(previous)
        return min(options, key=lambda v: (_movement(v, previous), abs(sum(v) / len(v) - centre)))
    middle = (low + high) / 2
    options.sort(key=lambda v: abs(sum(v) / len(v) - middle))
    return options[min(int(choice * 3), len(options) - 1)]


def _movement(voicing: tuple[int, ...], previous: tuple[int, ...]) -> int:
    """Total semitones each voice moves to the nearest note of the other chord."""
    return sum(min(abs(a - b) for b in previous) for a in voicing) + sum(min(abs(a - b) for a in voicing) for b in previous)


def bass_pitch(chord: Chord, tonic_pc: int, low: int) -> int:
    """The chord's root in the twelve semitones from `low` up."""
    return lowest_at_or_above((tonic_pc + chord.root) % 12, low)


def nearest_pitch(candidates: list[int], target: float) -> int:
    return min(candidates, key=lambda p: (abs(p - target), p))
