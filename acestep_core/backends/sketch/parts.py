"""Pitched parts: the note writers a style's parts name (chords, arpeggios, bass lines,
the melody), and what each part plays on the final chord.

Every writer takes the score, its part and its own random stream, and returns notes in
beats; a part plays only in bars whose energy reaches its min_energy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from acestep_core.backends.sketch.score import Bar, Note, Score, grid
from acestep_core.backends.sketch.styles import Part
from acestep_core.backends.sketch.theory import (
    Chord, bass_pitch, chord_scale, nearest_pitch, parse_numeral, pitches_in_range, voice_chord,
)


def _active(bar: Bar, part: Part) -> bool:
    return bar.energy >= part.min_energy


def with_tonic_third_on_top(voicing: tuple[int, ...], chord: Chord, tonic_pc: int) -> tuple[int, ...]:
    """The tonic chord with its third doubled above the top voice: the note that says major
    or minor, where the ear (and a key finder) hears it best."""
    if not chord.is_tonic or len(chord.intervals) < 3:
        return voicing
    third_pc = (tonic_pc + chord.intervals[1]) % 12
    top = max(voicing)
    return voicing + (top + 1 + (third_pc - top - 1) % 12,)


def write_sustain(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Voiced chords held for as long as each chord lasts, with smooth voice leading."""
    notes, previous = [], None
    choice = float(rng.random())
    for bar in score.bars:
        if not (_active(bar, part) and bar.chord_starts):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.high, previous, choice)
        previous = voicing
        voicing = with_tonic_third_on_top(voicing, bar.chord, score.tonic_pc)
        velocity = 0.75 if bar.energy == 0 else 0.9 + 0.1 * (bar.energy == 2)
        notes.append(Note(bar.index * score.beats, bar.chord_bars * score.beats, voicing, velocity))
    return notes


def write_power_chords(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Root, fifth and octave: held in intros, palm-muted eighths in verses, accents in
    choruses. Minor chords, and every chord of a chorus, carry their third on top (a
    tenth): a bare fifth says neither major nor minor."""
    notes = []
    chorus_rhythm = [(0.0, 1.5), (1.5, 1.0), (2.5, 1.5)] if score.beats == 4 else [(0.0, float(score.beats))]
    for bar in score.bars:
        if not _active(bar, part):
            continue
        root = bass_pitch(bar.chord, score.tonic_pc, part.low)
        third = bar.chord.intervals[1] if len(bar.chord.intervals) > 2 else 7
        chord = (root, root + 7, root + 12) + ((root + 12 + third,) if third == 3 else ())
        base = bar.index * score.beats
        if bar.energy == 0:
            notes.append(Note(base, score.beats, chord, 0.7))
        elif bar.energy == 1:
            eighths = grid(score.eighth, score.beats)
            # On the tonic the bar ends in a pentatonic riff: the third, then the minor
            # seventh (minor keys) or the sixth (major keys), the notes that name the mode.
            riff = {}
            if bar.chord.is_tonic and len(bar.chord.intervals) > 2 and len(eighths) >= 4:
                riff = {eighths[-2]: root + bar.chord.intervals[1], eighths[-1]: root + (10 if score.minor else 9)}
            for p in eighths:
                if p in riff:
                    notes.append(Note(base + p, score.eighth * 0.8, (riff[p], riff[p] + 12), 0.9))
                else:
                    notes.append(Note(base + p, score.eighth * 0.6, chord, 0.85 if p in score.pulses else 0.7))
        else:
            tenth = chord if len(chord) == 4 else chord + (root + 12 + third,)
            for p, length in chorus_rhythm:
                notes.append(Note(base + p, length, tenth, 1.0))
    return notes


def write_ostinato(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Staccato strings on the eighths, circling root, fifth and octave of each chord."""
    shapes = ((0, 1, 2, 1), (0, 2, 1, 2), (0, 0, 1, 2))
    shape = shapes[int(rng.integers(len(shapes)))]
    notes = []
    for bar in score.bars:
        if not _active(bar, part):
            continue
        root = bass_pitch(bar.chord, score.tonic_pc, part.low)
        fifth = root + bar.chord.intervals[-1] if len(bar.chord.intervals) == 2 else root + 7
        tones = (root, fifth, root + 12)
        for i, p in enumerate(grid(score.eighth, score.beats)):
            pitch = tones[shape[i % len(shape)]]
            notes.append(Note(bar.index * score.beats + p, score.eighth * 0.5, (pitch,),
                              1.0 if p in score.pulses else 0.75))
    return notes


def _arpeggio(score: Score, part: Part, rng: np.random.Generator, step: float, span_octaves: int,
              lengths: float) -> list[Note]:
    orders = ("up", "updown", "down")
    order = orders[int(rng.integers(len(orders)))]
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.low + 12 + 4, previous)
        previous = voicing
        tones = [p + 12 * o for o in range(span_octaves) for p in voicing if p + 12 * o <= part.high]
        if order == "down":
            tones = tones[::-1]
        elif order == "updown":
            tones = tones + tones[-2:0:-1]
        for i, p in enumerate(grid(step, score.beats)):
            notes.append(Note(bar.index * score.beats + p, step * lengths, (tones[i % len(tones)],),
                              0.95 if p in score.pulses else 0.7))
    return notes


def write_arp16(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    return _arpeggio(score, part, rng, score.sixteenth, 2, 0.8)


def write_chip_arp(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """The console's chord: one pulse voice running through the chord tones in sixteenths."""
    return _arpeggio(score, part, rng, score.sixteenth, 1, 1.0)


# Where in the bar a bell pulse rings, by beats to the bar: every beat, a dotted
# (3+3+2) lilt, or slow halves with a pickup; a take draws one.
_BELL_RHYTHMS = {
    4: ((0.0, 1.0, 2.0, 3.0), (0.0, 1.5, 3.0), (0.0, 2.0, 3.5)),
    3: ((0.0, 1.0, 2.0), (0.0, 1.5), (0.0, 2.0, 2.5)),
    2: ((0.0, 1.0), (0.0, 1.5), (0.0,)),
    6: ((0.0, 3.0), (0.0, 2.0, 3.0, 5.0), (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)),
}


def write_bell_pulse(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """One soft bell at each pulse of the take's rhythm, walking the chord's tones; the
    ambient cue's pulse."""
    orders = ((0, 1, 2, 1), (0, 2, 1, 3), (2, 1, 0, 1), (0, 1, 2, 3))
    order = orders[int(rng.integers(len(orders)))]
    rhythms = _BELL_RHYTHMS[score.beats]
    if not score.drums:
        # With no kit the bells are the beat: a lilt (3+3+2) off it reads as 2/3 or 4/3 of
        # the tempo to a beat tracker, and to a listener too. Pulses on the beats only.
        rhythms = tuple(r for r in rhythms if all(float(at).is_integer() for at in r)
                        and (not score.compound or set(r) <= {0.0, 3.0} or len(r) == 6)) or rhythms[:1]
    rhythm = rhythms[int(rng.integers(len(rhythms)))]
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.low + 16, previous)
        previous = voicing
        for k, at in enumerate(rhythm):
            length = (rhythm[k + 1] if k + 1 < len(rhythm) else score.beats) - at
            pitch = voicing[order[(bar.index * len(rhythm) + k) % len(order)] % len(voicing)]
            notes.append(Note(bar.index * score.beats + at, length, (pitch,), 0.9 if at == 0 else 0.65))
    return notes


def write_comp(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Electric-piano comping: a long chord and a push, in one of a few rhythms."""
    rhythms = (((0.0, 2.5, 1.0), (2.5, 1.5, 0.8)), ((0.0, 1.0, 1.0), (1.5, 1.0, 0.8), (3.0, 1.0, 0.7)),
               ((0.0, 3.5, 1.0), (3.5, 0.5, 0.7)))
    rhythm = rhythms[int(rng.integers(len(rhythms)))] if score.beats == 4 else ((0.0, float(score.beats), 1.0),)
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.high, previous)
        previous = voicing
        voicing = with_tonic_third_on_top(voicing, bar.chord, score.tonic_pc)
        for p, length, velocity in (rhythm if bar.energy else ((0.0, float(score.beats), 0.8),)):
            notes.append(Note(bar.index * score.beats + p, length, voicing, velocity))
    return notes


def write_stabs(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Short chord stabs on the off-beats (or a 3-3-2 push)."""
    if score.beats == 4 and rng.random() < 0.4:
        positions = [0.0, 1.5, 3.0]
    else:
        positions = list(score.offbeats)
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.high, previous)
        previous = voicing
        voicing = with_tonic_third_on_top(voicing, bar.chord, score.tonic_pc)
        for p in positions if bar.energy else positions[:1]:
            notes.append(Note(bar.index * score.beats + p, score.eighth * 0.7, voicing, 0.9))
    return notes


def write_piano_rhythm(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Pop piano: chords on every pulse (eighth pushes in choruses), held in the intro."""
    push = rng.random() < 0.5
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.high, previous)
        previous = voicing
        voicing = with_tonic_third_on_top(voicing, bar.chord, score.tonic_pc)
        base = bar.index * score.beats
        if bar.energy == 0:
            notes.append(Note(base, float(score.beats), voicing, 0.75))
            continue
        for p in score.pulses:
            step = 3.0 if score.compound else 1.0
            notes.append(Note(base + p, step * 0.9, voicing, 0.95 if p == 0 else 0.75))
        if push and bar.energy == 2 and score.beats == 4:
            notes.append(Note(base + 3.5, 0.45, voicing, 0.7))
    return notes


def write_drone(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """The tonic, doubled at the octave, held through each phrase: the floor of an ambient cue."""
    notes = []
    tonic = bass_pitch(parse_numeral("i" if score.minor else "I", score.minor), score.tonic_pc, part.low)
    start = None
    for i, bar in enumerate(score.bars):
        if start is None:
            start = bar
        last = i == len(score.bars) - 1 or score.bars[i + 1].section != bar.section or score.bars[i + 1].phrase_start
        if last:
            beats = (bar.index + 1 - start.index) * score.beats
            notes.append(Note(start.index * score.beats, beats, (tonic, tonic + 12), 0.9))
            start = None
    return notes


def write_tritone_drone(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """The tonic with the tritone an octave and a half above, held through each phrase:
    the interval that will not settle, under a horror cue."""
    return [replace(n, pitches=(n.pitches[0], n.pitches[0] + 18)) for n in write_drone(score, part, rng)]


def write_creep(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Two notes a semitone apart, rocking: slow in the verse, on every beat when it builds."""
    start = int(rng.integers(2))  # the take begins on the note or the semitone above it
    tonics = [p for p in range(part.low, part.high - 1) if p % 12 == score.tonic_pc] or [part.low]
    home = tonics[len(tonics) // 2]
    notes = []
    for bar in score.bars:
        if not _active(bar, part):
            continue
        step = 1.0 if bar.energy == 2 else score.beats / 2.0
        for i, at in enumerate(grid(step, score.beats)):
            pitch = home + (i + start + bar.index) % 2
            notes.append(Note(bar.index * score.beats + at, step * 0.95, (pitch,), 0.7 + 0.15 * (bar.energy == 2)))
    return notes


def write_strum(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """An acoustic guitar: the chord's root low, the triad above it, each string a few
    milliseconds after the last (downstrokes low to high, upstrokes back). One strum per
    bar in the intro, one per beat in the verse, down-down-up-up-down-up in the chorus."""
    stagger = 0.025  # beats between strings: ~12 ms at 120 bpm
    patterns = {4: ((0.0, 1), (1.0, 1), (1.5, -1), (2.5, -1), (3.0, 1), (3.5, -1)), 3: ((0.0, 1), (1.0, 1), (1.5, -1), (2.0, 1)),
                2: ((0.0, 1), (1.0, 1), (1.5, -1)), 6: ((0.0, 1), (2.0, -1), (3.0, 1), (5.0, -1))}
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        root = bass_pitch(bar.chord, score.tonic_pc, part.low)
        voicing = voice_chord(bar.chord, score.tonic_pc, root + 5, part.high, previous)
        previous = voicing
        strings = (root,) + voicing
        if bar.energy == 0:
            rhythm = ((0.0, 1),)
        elif bar.energy == 1:
            rhythm = tuple((float(p), 1) for p in score.pulses)
        else:
            rhythm = patterns[score.beats]
        base = bar.index * score.beats
        for k, (at, direction) in enumerate(rhythm):
            following = rhythm[k + 1][0] if k + 1 < len(rhythm) else float(score.beats)
            order = strings if direction > 0 else strings[::-1][:3]  # an upstroke catches the top strings
            velocity = (0.95 if at == 0 else 0.8) * (1.0 if direction > 0 else 0.75)
            for i, pitch in enumerate(order):
                notes.append(Note(base + at + i * stagger, following - at - i * stagger, (pitch,), velocity))
    return notes


def write_fingerpick(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Fingerpicked eighths through the chord, each note left to ring on."""
    return _arpeggio(score, part, rng, score.eighth, 2, 2.0)


def write_arp8(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """A harp's broken chords: eighths over two octaves, ringing."""
    return _arpeggio(score, part, rng, score.eighth, 2, 3.0)


# -- bass lines ---------------------------------------------------------------------------


def _bass_line(score: Score, part: Part, rng: np.random.Generator, pattern) -> list[Note]:
    notes = []
    for bar in score.bars:
        if not _active(bar, part):
            continue
        root = bass_pitch(bar.chord, score.tonic_pc, part.low)
        fifth = root + 7 if root + 7 <= part.high else root - 5
        base = bar.index * score.beats
        for position, length, pitch, velocity in pattern(score, bar, root, fifth):
            notes.append(Note(base + position, length, (pitch,), velocity))
    return notes


def write_bass_eighths(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Driving root eighths; on the tonic chord and at phrase ends the bar climbs the chord
    (third, fifth) into the next one."""

    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 0:
            return [(0.0, float(score.beats) * 0.95, root, 0.8)]
        out = [(p, score.eighth * 0.85, root, 0.95 if p in score.pulses else 0.8) for p in grid(score.eighth, score.beats)]
        if (bar.phrase_end or bar.chord.is_tonic) and len(out) >= 4:
            third = root + (bar.chord.intervals[1] if len(bar.chord.intervals) > 2 else 7)
            out[-2] = (out[-2][0], out[-2][1], third, 0.9)
            out[-1] = (out[-1][0], out[-1][1], fifth, 0.9)
        return out

    return _bass_line(score, part, rng, pattern)


def write_octave_eighths(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    sixteenths = rng.random() < 0.35

    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 0:
            return [(float(p), 0.9 * (3.0 if score.compound else 1.0), root, 0.8) for p in score.pulses]
        step = score.sixteenth if sixteenths and bar.energy == 2 else score.eighth
        return [(p, step * 0.8, root + 12 * (i % 2), 0.95 if i % 2 == 0 else 0.8)
                for i, p in enumerate(grid(step, score.beats))]

    return _bass_line(score, part, rng, pattern)


def write_offbeat(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        return [(p, score.eighth * 0.7, root, 0.95) for p in score.offbeats]

    return _bass_line(score, part, rng, pattern)


def write_half_notes(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Contrabass: long notes on the pulses; driving eighths when the music is at full tilt."""
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 2:
            return [(p, score.eighth * 0.6, root, 0.95 if p in score.pulses else 0.75) for p in grid(score.eighth, score.beats)]
        halves = [0.0, 2.0] if score.beats == 4 else ([0.0, 3.0] if score.compound else [0.0])
        length = score.beats / len(halves)
        return [(p, length * 0.95, root, 0.9) for p in halves]

    return _bass_line(score, part, rng, pattern)


def write_chip_bounce(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """The console bass: eighths bouncing over the chord's root, third, fifth and octave."""
    # Steps into the chord: 0 root, 1 third, 2 fifth, 3 octave.
    shapes = ((0, 0, 3, 0, 2, 0, 1, 2), (0, 3, 1, 3, 2, 3, 1, 3), (0, 1, 2, 3, 2, 1, 0, 2))
    shape = shapes[int(rng.integers(len(shapes)))]

    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 0:
            return [(float(p), 0.9 * (3.0 if score.compound else 1.0), root, 0.85) for p in score.pulses]
        third = bar.chord.intervals[1] if len(bar.chord.intervals) > 2 else 7
        steps = (0, third, 7, 12)
        return [(p, score.eighth * 0.9, root + steps[shape[i % len(shape)]], 0.95 if p in score.pulses else 0.85)
                for i, p in enumerate(grid(score.eighth, score.beats))]

    return _bass_line(score, part, rng, pattern)


def write_lofi_bass(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Root, a lazy push on the fifth, and a chromatic step into the next chord."""
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if score.beats != 4:
            return [(0.0, score.beats * 0.9, root, 0.9)]
        following = bass_pitch(bar.next_chord, score.tonic_pc, part.low)
        approach = following - 1 if following - 1 >= part.low else following + 1
        if bar.energy == 0:
            return [(0.0, 3.5, root, 0.85), (3.5, 0.45, approach, 0.7)]
        return [(0.0, 1.4, root, 0.95), (1.5, 0.45, fifth, 0.75), (2.0, 1.4, root, 0.85), (3.5, 0.45, approach, 0.75)]

    return _bass_line(score, part, rng, pattern)


def write_pop_bass(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 0:
            return [(0.0, score.beats * 0.95, root, 0.85)]
        out = [(float(p), (3.0 if score.compound else 1.0) * 0.85, root, 0.95) for p in score.pulses]
        if score.beats == 4:
            out[-1] = (3.0, 0.45, root, 0.85)
            out.append((3.5, 0.45, fifth, 0.8))
        return out

    return _bass_line(score, part, rng, pattern)


def write_walking(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """A jazz walking bass: a quarter note on every beat, the root on one, chord and scale
    tones between, and a chromatic step into the next chord's root on the last beat."""
    notes = []
    pitch = None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        root = bass_pitch(bar.chord, score.tonic_pc, part.low)
        target = bass_pitch(bar.next_chord, score.tonic_pc, part.low)
        tones = pitches_in_range(set(bar.chord.pitch_classes(score.tonic_pc)), part.low, part.high)
        base = bar.index * score.beats
        if bar.energy == 0 or score.compound:
            notes += [Note(base + p, (3.0 if score.compound else 1.0) * 0.9, (root,), 0.85) for p in score.pulses[:2]]
            continue
        line = [root]
        upward = pitch is None or root < (part.low + part.high) / 2 or rng.random() < 0.5
        for _ in range(score.beats - 2):
            ahead = [p for p in tones if (p > line[-1]) == upward and p != line[-1]] or tones
            line.append(min(ahead, key=lambda p: abs(p - line[-1])))
        approach = target + (1 if line[-1] > target else -1)
        line.append(approach if part.low <= approach <= part.high else target + 1)
        for beat, note in enumerate(line[: score.beats]):
            notes.append(Note(base + beat, 0.9, (note,), 0.95 if beat == 0 else 0.8))
        pitch = line[-1]
    return notes


# -- melody -------------------------------------------------------------------------------

_RHYTHM_CELLS = {
    4: ((1, 1, 1, 1), (1.5, 0.5, 1, 1), (0.5, 0.5, 1, 2), (2, 1, 1), (1, 0.5, 0.5, 2), (1.5, 1.5, 1),
        (0.5, 0.5, 0.5, 0.5, 2), (1, 1, 2), (0.5, 1, 0.5, 2)),
    3: ((1, 1, 1), (2, 1), (1.5, 0.5, 1), (1, 0.5, 0.5, 1), (0.5, 0.5, 2)),
    2: ((1, 1), (0.5, 0.5, 1), (1.5, 0.5), (0.5, 0.5, 0.5, 0.5)),
    6: ((3, 3), (2, 1, 3), (1, 1, 1, 3), (3, 2, 1), (2, 1, 2, 1), (1, 1, 1, 2, 1)),
}
_CADENCE_CELLS = {4: ((2, 2), (1, 1, 2), (1, 3)), 3: ((1, 2), (3,)), 2: ((2,), (1, 1)), 6: ((3, 3), (6,))}


def write_melody(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """A two-bar motif (rhythm and contour) drawn once, then sung over each phrase's chords.

    Notes on the pulse land on chord tones; the others step through the key's scale,
    bent around the chord. Each phrase ends on a long chord tone, the tonic when the
    chord holds it. Repeating one motif is what makes it sound like a tune.
    """
    cells = _RHYTHM_CELLS[score.beats]
    motif = [cells[int(rng.integers(len(cells)))] for _ in range(2)]
    cadence = _CADENCE_CELLS[score.beats][int(rng.integers(len(_CADENCE_CELLS[score.beats])))]
    steps = [int(rng.choice([-2, -1, -1, 0, 1, 1, 2])) for _ in range(sum(len(c) for c in motif))]
    rests = {int(i) for i in np.flatnonzero(rng.random(len(steps)) < 0.08) if i > 0}
    notes: list[Note] = []
    pitch = (part.low + part.high) / 2
    for bar in score.bars:
        if not _active(bar, part):
            continue
        half = bar.position % 2
        cadence_bar = bar.phrase_end and bar.phrase_bars >= 3
        rhythm = cadence if cadence_bar else motif[half]
        step_offset = 0 if half == 0 else len(motif[0])
        chord_pcs = bar.chord.pitch_classes(score.tonic_pc)
        tones = pitches_in_range(set(chord_pcs), part.low, part.high)
        scale = pitches_in_range(set(chord_scale(score.scale, chord_pcs)), part.low, part.high)
        position = 0.0
        for i, length in enumerate(rhythm):
            last = cadence_bar and i == len(rhythm) - 1
            step = steps[(step_offset + i) % len(steps)]
            if last:
                targets = [p for p in tones if p % 12 == score.tonic_pc] or [p for p in tones if p % 12 == chord_pcs[0]]
                pitch = nearest_pitch(targets or tones, pitch)
            elif position in score.pulses or position == 0:
                # Over the tonic chord the tune leans on the key note, and in minor on the
                # minor third too: the notes that name the key and its mode.
                named = (0, 3) if score.minor else (0,)
                leaning = [p for p in tones if (p - score.tonic_pc) % 12 in named]
                pitch = nearest_pitch(leaning if bar.chord.is_tonic and leaning else tones, pitch + 1.7 * step)
            else:
                index = min(range(len(scale)), key=lambda k: abs(scale[k] - pitch))
                pitch = scale[int(np.clip(index + step, 0, len(scale) - 1))]
            if not ((step_offset + i) in rests and not cadence_bar):
                velocity = 0.95 if position in score.pulses else 0.8
                notes.append(Note(bar.index * score.beats + position, length * (1.0 if last else 0.9), (int(pitch),), velocity))
            position += length
    return notes


def write_nothing(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Parts the mixer makes itself (the vinyl crackle) have no notes."""
    return []


WRITERS = {
    "sustain": write_sustain, "power_chords": write_power_chords, "ostinato": write_ostinato,
    "arp16": write_arp16, "chip_arp": write_chip_arp, "bell_pulse": write_bell_pulse, "comp": write_comp,
    "stabs": write_stabs, "piano_rhythm": write_piano_rhythm, "drone": write_drone,
    "bass_eighths": write_bass_eighths, "octave_eighths": write_octave_eighths, "offbeat": write_offbeat,
    "half_notes": write_half_notes, "chip_bounce": write_chip_bounce, "lofi_bass": write_lofi_bass,
    "pop_bass": write_pop_bass, "melody": write_melody, "crackle": write_nothing,
    "tritone_drone": write_tritone_drone, "creep": write_creep, "strum": write_strum, "fingerpick": write_fingerpick,
    "arp8": write_arp8, "walking": write_walking,
}


def ending_notes(score: Score, part: Part, start_beat: float, beats: float) -> list[Note]:
    """What a part plays on the final chord that rings out the cue: the tonic, held."""
    tonic = parse_numeral("i" if score.minor else "I", score.minor)
    if part.role in ("chords", "pad") and part.writer not in ("drone", "tritone_drone"):
        if part.writer == "power_chords":
            root = bass_pitch(tonic, score.tonic_pc, part.low)
            return [Note(start_beat, beats, (root, root + 7, root + 12), 1.0)]
        return [Note(start_beat, beats, voice_chord(tonic, score.tonic_pc, part.low, part.high, None), 1.0)]
    if part.role == "bass":
        return [Note(start_beat, beats, (bass_pitch(tonic, score.tonic_pc, part.low),), 1.0)]
    if part.writer in ("drone", "tritone_drone"):
        root = bass_pitch(tonic, score.tonic_pc, part.low)
        return [Note(start_beat, beats, (root, root + (18 if part.writer == "tritone_drone" else 12)), 0.9)]
    if part.role == "lead":
        tones = [p for p in range(part.low, part.high + 1) if p % 12 == score.tonic_pc]
        return [Note(start_beat, beats, (tones[len(tones) // 2],), 0.9)] if tones else []
    return []
