"""The arranger: from a request to tempo, key and style (the same for every candidate), and
from a seed to a score (sections, progression, drum hits and notes, in beats).

Two steps, kept apart on purpose. choose_musical_choices() reads only the request and
its prompt, so every candidate of one request shares the tempo, key, style and length
recorded in the sidecar. arrange() reads only those choices and one seed, so a candidate
made alone with its seed is the same candidate.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from acestep_core.backends.sketch.styles import ADDED_BY_WORD, REMOVED_BY_WORD, STYLES, Part, StyleSpec
from acestep_core.backends.sketch.synthesis import SAMPLE_RATE
from acestep_core.backends.sketch.theory import (
    Chord, bass_pitch, chord_scale, nearest_pitch, parse_numeral, pitches_in_range, scale_pitch_classes, voice_chord,
)
from acestep_core.keywords import FALLBACK_STYLE_ID, PromptTags
from acestep_core.request import NOTE_NAMES, GenerationRequest, beats_per_bar, key_to_pitch_class, normalize_key

# A remainder shorter than this many beats is faded rather than given an ending chord.
MIN_RING_OUT_BEATS = 1.0


@dataclass(frozen=True)
class MusicalChoices:
    """What every candidate of one request shares, and where each choice came from."""

    style: StyleSpec
    style_from: str
    bpm: float
    bpm_from: str
    tonic_pc: int
    minor: bool
    key_from: str
    time_signature: str
    frames: int
    groove_bars: int  # bars the groove plays before the ending (with "fade", the last is cut short)
    # How the cue ends: "whole bars" (it is whole bars long and stops on the bar line),
    # "ring-out" (a final tonic chord rings through the last part bar), "fade" (the groove
    # fades over a remainder too short to ring), "continues" (a loop request: the groove
    # runs to the last frame, the finishing step folds it over the start).
    ending: str
    parts: tuple[Part, ...]
    energy: int | None = None  # every section's energy, when the request sets an intensity
    instruments_added: tuple[str, ...] = ()
    instruments_removed: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{NOTE_NAMES[self.tonic_pc]} {'minor' if self.minor else 'major'}"

    @property
    def beats_per_bar(self) -> int:
        return beats_per_bar(self.time_signature)

    @property
    def beat_frames(self) -> float:
        return 60.0 * SAMPLE_RATE / self.bpm

    @property
    def bar_frames(self) -> float:
        return self.beat_frames * self.beats_per_bar

    @property
    def bars_covering(self) -> int:
        return math.ceil(self.frames / self.bar_frames - 1e-9)

    @property
    def ring_out_beats(self) -> float:
        return (self.frames - self.groove_bars * self.bar_frames) / self.beat_frames


def choose_musical_choices(request: GenerationRequest, tags: PromptTags) -> MusicalChoices:
    """Tempo, key, style, meter, length and parts for a request; no randomness.

    The request's own bpm and key win; then what the prompt says (tags); then the style's
    habits. The tonic, when nothing names it, comes from a checksum of the prompt, so the
    same prompt keeps its key and different prompts do not all sit in one key.
    """
    style_id = tags.style_id if tags.style_id in STYLES else FALLBACK_STYLE_ID
    style_from = tags.style_from if tags.style_id in STYLES else "fallback"
    style = STYLES[style_id]

    if request.bpm is not None:
        bpm, bpm_from = float(request.bpm), "request"
    elif tags.bpm is not None:
        bpm, bpm_from = float(tags.bpm), f"prompt ({tags.bpm_from})"
    else:
        bpm, bpm_from = style.default_bpm, "style default"

    if request.key:
        tonic_pc, minor = key_to_pitch_class(normalize_key(request.key))
        key_from = "request"
    elif tags.key:
        tonic_pc, minor = key_to_pitch_class(tags.key)
        key_from = "prompt (named key)"
    else:
        minor = (tags.mode or style.default_mode) == "minor"
        checksum = zlib.crc32(" ".join(request.prompt.lower().split()).encode("utf-8"))
        tonic_pc = style.tonics[checksum % len(style.tonics)]
        key_from = "prompt (mode words)" if tags.mode else "style default"

    time_signature = request.time_signature or "4/4"
    frames = int(round(request.duration * SAMPLE_RATE))
    bar_frames = 60.0 * SAMPLE_RATE / bpm * beats_per_bar(time_signature)
    nearest_bars = int(round(frames / bar_frames))
    if request.loop:
        groove_bars, ending = math.ceil(frames / bar_frames - 1e-9), "continues"
    elif nearest_bars >= 1 and abs(frames - nearest_bars * bar_frames) <= 1.0:
        groove_bars, ending = nearest_bars, "whole bars"
    else:
        groove_bars = int(frames // bar_frames)
        remainder_beats = (frames - groove_bars * bar_frames) / (bar_frames / beats_per_bar(time_signature))
        ending = "ring-out" if remainder_beats >= MIN_RING_OUT_BEATS else "fade"
        if ending == "fade":
            groove_bars += 1  # the groove runs through the sliver that is left, and fades

    parts, added, removed = _parts_for_instruments(style, tags)
    return MusicalChoices(
        style=style, style_from=style_from, bpm=bpm, bpm_from=bpm_from, tonic_pc=tonic_pc, minor=minor,
        key_from=key_from, time_signature=time_signature, frames=frames, groove_bars=groove_bars, ending=ending,
        energy=None if request.intensity is None else int(round(2 * request.intensity)),
        parts=parts, instruments_added=added, instruments_removed=removed,
    )


def _parts_for_instruments(style: StyleSpec, tags: PromptTags) -> tuple[tuple[Part, ...], tuple[str, ...], tuple[str, ...]]:
    parts = list(style.parts)
    added, removed = [], []
    for word in tags.instruments:
        extra = ADDED_BY_WORD.get(word)
        if extra and not any(p.writer == extra.writer and p.patch == extra.patch for p in parts):
            parts.append(extra)
            added.append(word)
    for word in tags.excluded_instruments:
        roles, patches = REMOVED_BY_WORD.get(word, (frozenset(), frozenset()))
        kept = [p for p in parts if p.role not in roles and p.patch not in patches]
        if len(kept) < len(parts):
            removed.append(word)
        parts = kept
    return tuple(parts), tuple(added), tuple(removed)


# -- the score ---------------------------------------------------------------------------


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
    """What the note writers need: the bars, the key and the meter."""

    bars: tuple[Bar, ...]
    tonic_pc: int
    minor: bool
    time_signature: str

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


@dataclass
class Arrangement:
    """A candidate's score: notes per part, drum hits, and a summary for the sidecar."""

    score: Score
    sections: list[Section]
    tracks: list[tuple[Part, list[Note]]]
    hits: list[Hit]
    summary: dict = field(default_factory=dict)


def plan_sections(bars: int, phrase_bars: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """Names and lengths of the sections, in phrases of phrase_bars (the last may be short).

    Short cues go straight to the full groove; longer ones build: an intro, verses and
    choruses, a breakdown in long cues, and always a chorus last.
    """
    phrases = math.ceil(bars / phrase_bars)
    if phrases == 0:
        return []  # a cue shorter than a bar is only its final chord
    if phrases == 1:
        names = ["chorus"]
    elif phrases == 2:
        names = ["verse", "chorus"]
    elif phrases == 3:
        names = ["intro", "verse", "chorus"] if bars >= 12 else ["verse", "chorus", "chorus"]
    else:
        verse = 1 + int(rng.integers(2))  # one or two phrases of verse per round
        cycle = ["verse"] * verse + ["chorus"] * 2
        names = ["intro"]
        while len(names) < phrases:
            if len(names) >= phrases * 0.55 and "breakdown" not in names and phrases >= 7:
                names.append("breakdown")
            names.extend(cycle)
        names = names[:phrases]
        names[-1] = "chorus"
    plan = []
    for index, name in enumerate(names):
        length = min(phrase_bars, bars - index * phrase_bars)
        plan.append((name, length))
    return plan


ENERGY = {"intro": 0, "breakdown": 0, "verse": 1, "chorus": 2}


def build_score(choices: MusicalChoices, rng: np.random.Generator) -> tuple[Score, list[Section], dict]:
    """The form: which progressions, which sections, and the chord and energy of every bar."""
    style = choices.style
    options = style.progressions(choices.minor)
    verse = options.home[int(rng.integers(len(options.home)))]
    everything = options.home + options.away
    chorus = everything[int(rng.integers(len(everything)))]
    progressions = {"intro": verse, "verse": verse, "breakdown": verse, "chorus": chorus}
    # Slow harmony needs room: a short cue changes chord every bar, or it would hear only two.
    bars_per_chord = style.bars_per_chord if choices.groove_bars >= 8 * style.bars_per_chord else 1
    phrase_bars = len(verse) * bars_per_chord
    sections: list[Section] = []
    start = 0
    plan = plan_sections(choices.groove_bars, phrase_bars, rng)
    if len(plan) == 1:
        progressions["chorus"] = verse  # a one-phrase cue has to set up the key by itself
    for name, length in plan:
        # An intensity asks for one layer of a dynamic-music set: the same song at one energy.
        energy = ENERGY[name] if choices.energy is None else choices.energy
        sections.append(Section(name, start, length, energy, progressions[name]))
        start += length
    bars: list[Bar] = []
    for section in sections:
        chords = [parse_numeral(n, choices.minor) for n in section.progression]
        for offset in range(section.bars):
            slot = (offset // bars_per_chord) % len(chords)
            following = chords[(slot + 1) % len(chords)]
            chord_starts = offset % bars_per_chord == 0
            bars.append(Bar(
                index=section.start_bar + offset, chord=chords[slot], next_chord=following,
                energy=section.energy, section=section.name, position=offset % phrase_bars,
                phrase_bars=min(phrase_bars, section.bars - (offset // phrase_bars) * phrase_bars),
                chord_starts=chord_starts,
                chord_bars=min(bars_per_chord - offset % bars_per_chord, section.bars - offset),
            ))
    # The bar after a section's last bar is the next section's first chord.
    for i, bar in enumerate(bars[:-1]):
        if bars[i + 1].section != bar.section or bars[i + 1].index != bar.index + 1:
            bars[i] = replace(bar, next_chord=bars[i + 1].chord)
    if bars:
        bars[-1] = replace(bars[-1], next_chord=parse_numeral("I" if not choices.minor else "i", choices.minor))
    score = Score(tuple(bars), choices.tonic_pc, choices.minor, choices.time_signature)
    summary = {"progressions": {"verse": list(progressions["verse"]), "chorus": list(progressions["chorus"])}}
    return score, sections, summary


# -- drums --------------------------------------------------------------------------------


def write_drums(score: Score, groove: str, rng: np.random.Generator) -> list[Hit]:
    """Hits bar by bar: the groove at the bar's energy, a fill at phrase ends, a crash on top."""
    if groove == "none":
        return []
    variant = int(rng.integers(3))
    hits: list[Hit] = []
    for bar in score.bars:
        pattern = _groove_bar(score, groove, bar.energy, variant)
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


def _grid(step: float, length: int) -> list[float]:
    return [i * step for i in range(int(round(length / step)))]


def _groove_bar(score: Score, groove: str, energy: int, variant: int) -> list[tuple[float, str, float]]:
    """One bar of a style's groove: (beat in bar, drum, velocity)."""
    beats, eighth, sixteenth = score.beats, score.eighth, score.sixteenth
    pulses, backbeats = score.pulses, score.backbeats
    kicks = [0.0] + ([2.0] if beats == 4 else [])
    out: list[tuple[float, str, float]] = []

    def hats(step: float, drum: str = "closed_hat", loud: float = 0.8, soft: float = 0.5) -> None:
        for p in _grid(step, beats):
            out.append((p, drum, loud if p in pulses or (not score.compound and p == int(p)) else soft))

    if groove == "four_on_floor":
        for p in pulses:
            out.append((float(p), "kick", 1.0))
        offbeats = list(score.offbeats)
        if energy == 0:
            out += [(p, "closed_hat", 0.5) for p in offbeats]
            return out
        out += [(float(b), "clap", 0.9) for b in backbeats]
        out += [(p, "open_hat", 0.75) for p in offbeats]
        if energy == 2:
            out += [(p, "closed_hat", 0.45) for p in _grid(sixteenth, beats) if p not in offbeats]
        return out
    if groove == "orchestral":
        out.append((0.0, "timpani", 0.7 if energy == 0 else 1.0))
        if energy >= 1 and beats in (4, 6):
            out.append((beats / 2.0, "timpani_low", 0.75))
        if energy == 2:
            if variant == 1:
                out += [(float(beats) - eighth, "timpani", 0.6)]
            # A field drum marks the pulses, with a pickup into the next bar.
            out += [(float(p), "snare", 0.25) for p in pulses] + [(beats - eighth, "snare", 0.18)]
        return out
    if groove == "synthwave":
        if energy == 0:
            hats(eighth, loud=0.6, soft=0.4)
            out += [(0.0, "kick", 0.9)] + ([(2.0, "kick", 0.8)] if beats == 4 else [])
            return out
        out += [(float(p), "kick", 1.0) for p in pulses]
        out += [(float(b), "snare", 1.0) for b in backbeats]
        if energy == 2:
            out += [(float(b), "clap", 0.7) for b in backbeats]
            hats(sixteenth, loud=0.7, soft=0.4)
            if variant == 2:
                out += [(p, "open_hat", 0.6) for p in score.offbeats]
        else:
            hats(eighth)
        return out
    # rock, pop, chiptune, lofi share a backbeat groove with their own touches.
    extra_kicks = {0: [], 1: [2.5] if beats == 4 else [], 2: [1.5, 2.5] if beats == 4 else []}[variant]
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
    if groove == "pop" and energy == 2:
        out += [(float(b), "clap", 0.6) for b in backbeats]
    if groove == "chiptune" and energy == 2:
        hats(eighth, loud=0.7, soft=0.55)
        out += [(beats - eighth, "open_hat", 0.6)]
    elif groove == "rock" and energy == 2:
        hats(eighth, drum="open_hat", loud=0.55, soft=0.4)
    else:
        hats(eighth)
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
    positions = _grid(step, int(length)) if length >= 1 else [0.0]
    if groove == "lofi":
        step = score.eighth
        positions = _grid(step, int(length))
    fill = []
    for i, offset in enumerate(positions):
        progress = i / max(len(positions) - 1, 1)
        voice = voices[min(int(progress * len(voices)), len(voices) - 1)]
        fill.append((start + offset, voice, 0.55 + 0.4 * progress))
    return kept + fill


# -- pitched parts ------------------------------------------------------------------------


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
            eighths = _grid(score.eighth, score.beats)
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
        for i, p in enumerate(_grid(score.eighth, score.beats)):
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
        for i, p in enumerate(_grid(step, score.beats)):
            notes.append(Note(bar.index * score.beats + p, step * lengths, (tones[i % len(tones)],),
                              0.95 if p in score.pulses else 0.7))
    return notes


def write_arp16(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    return _arpeggio(score, part, rng, score.sixteenth, 2, 0.8)


def write_chip_arp(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """The console's chord: one pulse voice running through the chord tones in sixteenths."""
    return _arpeggio(score, part, rng, score.sixteenth, 1, 1.0)


def write_bell_pulse(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """One soft bell on every beat, walking the chord's tones; the ambient cue's pulse."""
    orders = ((0, 1, 2, 1), (0, 2, 1, 3), (2, 1, 0, 1), (0, 1, 2, 3))
    order = orders[int(rng.integers(len(orders)))]
    notes, previous = [], None
    for bar in score.bars:
        if not _active(bar, part):
            continue
        voicing = voice_chord(bar.chord, score.tonic_pc, part.low, part.low + 16, previous)
        previous = voicing
        for beat in range(score.beats):
            pitch = voicing[order[(bar.index * score.beats + beat) % len(order)] % len(voicing)]
            notes.append(Note(bar.index * score.beats + beat, 1.0, (pitch,), 0.9 if beat == 0 else 0.65))
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
        out = [(p, score.eighth * 0.85, root, 0.95 if p in score.pulses else 0.8) for p in _grid(score.eighth, score.beats)]
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
                for i, p in enumerate(_grid(step, score.beats))]

    return _bass_line(score, part, rng, pattern)


def write_offbeat(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        return [(p, score.eighth * 0.7, root, 0.95) for p in score.offbeats]

    return _bass_line(score, part, rng, pattern)


def write_half_notes(score: Score, part: Part, rng: np.random.Generator) -> list[Note]:
    """Contrabass: long notes on the pulses; driving eighths when the music is at full tilt."""
    def pattern(score: Score, bar: Bar, root: int, fifth: int):
        if bar.energy == 2:
            return [(p, score.eighth * 0.6, root, 0.95 if p in score.pulses else 0.75) for p in _grid(score.eighth, score.beats)]
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
                for i, p in enumerate(_grid(score.eighth, score.beats))]

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
}


# -- the ending and the feel -------------------------------------------------------------


def ending_notes(score: Score, part: Part, start_beat: float, beats: float) -> list[Note]:
    """What a part plays on the final chord that rings out the cue: the tonic, held."""
    tonic = parse_numeral("i" if score.minor else "I", score.minor)
    if part.role in ("chords", "pad") and part.writer != "drone":
        if part.writer == "power_chords":
            root = bass_pitch(tonic, score.tonic_pc, part.low)
            return [Note(start_beat, beats, (root, root + 7, root + 12), 1.0)]
        return [Note(start_beat, beats, voice_chord(tonic, score.tonic_pc, part.low, part.high, None), 1.0)]
    if part.role == "bass":
        return [Note(start_beat, beats, (bass_pitch(tonic, score.tonic_pc, part.low),), 1.0)]
    if part.writer == "drone":
        root = bass_pitch(tonic, score.tonic_pc, part.low)
        return [Note(start_beat, beats, (root, root + 12), 0.9)]
    if part.role == "lead":
        tones = [p for p in range(part.low, part.high + 1) if p % 12 == score.tonic_pc]
        return [Note(start_beat, beats, (tones[len(tones) // 2],), 0.9)] if tones else []
    return []


def swing_beat(beat: float, amount: float) -> float:
    """Delay the off-beat eighths toward the triplet (amount 1) and stretch what lies between."""
    if not amount:
        return beat
    whole = math.floor(beat)
    fraction = beat - whole
    offbeat = 0.5 + amount / 6.0
    if fraction < 0.5:
        return whole + fraction / 0.5 * offbeat
    return whole + offbeat + (fraction - 0.5) / 0.5 * (1.0 - offbeat)


def seeded_stream(seed: int, name: str) -> np.random.Generator:
    """numpy.random.default_rng for one named stream of a candidate's seed.

    Each part draws from its own stream, so taking a part out ("no drums") or adding
    one leaves every other part exactly as it was.
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def arrange(choices: MusicalChoices, seed: int) -> Arrangement:
    """One candidate's score from its seed."""
    score, sections, summary = build_score(choices, seeded_stream(seed, "form"))
    tracks: list[tuple[Part, list[Note]]] = []
    hits: list[Hit] = []
    for part in choices.parts:
        rng = seeded_stream(seed, f"{part.role}/{part.writer}/{part.patch}")
        if part.role == "drums":
            hits = write_drums(score, choices.style.groove, rng)
        else:
            tracks.append((part, WRITERS[part.writer](score, part, rng)))
    if choices.ending == "ring-out":
        start = choices.groove_bars * score.beats
        beats = choices.ring_out_beats
        tracks = [(part, notes + ending_notes(score, part, start, beats)) for part, notes in tracks]
        if any(p.role == "drums" for p in choices.parts) and choices.style.groove != "none":
            main = "timpani" if choices.style.groove == "orchestral" else "kick"
            hits = hits + [Hit(start, main, 1.0), Hit(start, "crash", 1.0)]
    swing = choices.style.swing
    if swing:
        tracks = [(part, [replace(n, start=swing_beat(n.start, swing)) for n in notes]) for part, notes in tracks]
        hits = [replace(h, start=swing_beat(h.start, swing)) for h in hits]
    summary["sections"] = [
        {"name": s.name, "start_bar": s.start_bar + 1, "bars": s.bars, "energy": s.energy} for s in sections
    ]
    return Arrangement(score, sections, tracks, hits, summary)
