"""The arranger: from a request to tempo, key and style (the same for every candidate), and
from a seed to a score (sections, progression, drum hits and notes, in beats).

Two steps, kept apart on purpose. choose_musical_choices() reads only the request and
its prompt, so every candidate of one request shares the tempo, key, meter, style and
length recorded in the sidecar. arrange() reads only those choices and one seed, so a
candidate made alone with its seed is the same candidate. The seed picks what a take
plays within the style: the progressions, the style's alternative and optional parts
(candidate_parts), the groove's variant and fills, the motif, the voicings.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from acestep_core.backends.sketch.grooves import write_drums
from acestep_core.backends.sketch.parts import WRITERS, ending_notes
from acestep_core.backends.sketch.score import Bar, Hit, Note, Score, Section
from acestep_core.backends.sketch.styles import (
    ADDED_BY_WORD, DRUMS, KIT_BY_WORD, KIT_GROOVES, LEAD_BY_WORD, REMOVED_BY_WORD, STYLES, Part, StyleSpec, part_track,
)
from acestep_core.backends.sketch.words import part_plays, plays
from acestep_core.backends.sketch.synthesis import SAMPLE_RATE
from acestep_core.backends.sketch.theory import parse_numeral
from acestep_core.keywords import FALLBACK_STYLE_ID, PromptTags
from acestep_core.musical_plan import TempoKeyPlan, plan_tempo_and_key
from acestep_core.request import NOTE_NAMES, GenerationRequest, beats_per_bar, key_to_pitch_class

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
    intro_bars: int = 0  # a loop's one-time intro before its body (ending "continues")
    instruments_added: tuple[str, ...] = ()
    instruments_removed: tuple[str, ...] = ()
    time_signature_from: str = "default"
    # Why the arrangement is thinner than the style's ("ballad": no drum kit), or None.
    sparse: str | None = None
    # The prompt's instrument words and its "no X" words: a take's palette keeps the one
    # and never brings back the other (candidate_parts).
    asked_instruments: tuple[str, ...] = ()
    excluded_instruments: tuple[str, ...] = ()
    plan: TempoKeyPlan | None = None
    # The prompt's moods and scenes: with the seed they choose the tune, so "dark chase" and
    # "boss battle" at one seed are not one tune, while tempo words, instruments and "no X"
    # (what a refinement changes) keep it.
    identity: str = ""

    def stream(self, name: str) -> str:
        return f"{self.identity}|{name}" if self.identity else name

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

    Tempo and key as acestep_core.musical_plan plans them (the request's, the prompt's,
    then the style's habits).
    """
    style_id = tags.style_id if tags.style_id in STYLES else FALLBACK_STYLE_ID
    style_from = tags.style_from if tags.style_id in STYLES else "fallback"
    style = STYLES[style_id]

    plan = plan_tempo_and_key(request, tags)  # the same plan generation gives every backend
    bpm, bpm_from, key_from = plan.bpm, plan.bpm_from, plan.key_from
    tonic_pc, minor = key_to_pitch_class(plan.key)

    time_signature = plan.time_signature  # the request's, a meter word's ("waltz": 3/4), else 4/4
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

    style, parts, added, removed = _parts_for_instruments(style, tags)
    sparse = None
    if "ballad" in tags.styles and "drums" not in tags.instruments:
        # A ballad is sung over keys: no kit, and the bass waits for the verse.
        sparse = "ballad: no drum kit"
        parts = tuple(replace(p, min_energy=max(p.min_energy, 1)) if p.role == "bass" else p
                      for p in parts if p.role != "drums")
    return MusicalChoices(
        style=style, style_from=style_from, bpm=bpm, bpm_from=bpm_from, tonic_pc=tonic_pc, minor=minor,
        key_from=key_from, time_signature=time_signature, frames=frames, groove_bars=groove_bars, ending=ending,
        energy=None if request.intensity is None else int(round(2 * request.intensity)),
        intro_bars=request.intro_bars if request.loop else 0,
        parts=parts, instruments_added=added, instruments_removed=removed,
        time_signature_from=plan.time_signature_from, sparse=sparse,
        asked_instruments=tags.instruments, excluded_instruments=tags.excluded_instruments, plan=plan,
        identity=",".join(sorted({*tags.moods, *tags.scenes})),
    )


def _parts_for_instruments(style: StyleSpec, tags: PromptTags
                           ) -> tuple[StyleSpec, tuple[Part, ...], tuple[str, ...], tuple[str, ...]]:
    """The style as the prompt's instrument words change it: parts added, a melody moved to
    the lead instrument named, a kit swapped for the drums named, and the "no X" taken out."""
    parts = list(style.parts)
    added, removed = [], []
    for word in tags.instruments:
        extra = ADDED_BY_WORD.get(word)
        if extra and not plays(word, parts, style.kit):
            parts.append(extra)
            added.append(word)
        elif word in LEAD_BY_WORD and not plays(word, parts, style.kit):
            patch, low, high = LEAD_BY_WORD[word]
            lead = next((i for i, part in enumerate(parts) if part.role == "lead"), None)
            if lead is None:
                parts.append(Part("lead", "melody", patch, low, high, min_energy=1))
            else:
                parts[lead] = replace(parts[lead], writer="melody", patch=patch, low=low, high=high)
            added.append(word)
        elif word in KIT_BY_WORD and not plays(word, parts, style.kit):
            kit, groove = KIT_BY_WORD[word]
            has_drums = any(part.role == "drums" for part in parts)
            # The style's own groove on the new kit where it has one, else the kit's.
            groove = KIT_GROOVES.get(kit, style.groove if has_drums and style.groove != "none" else groove)
            style = replace(style, kit=kit, groove=groove)
            if not has_drums:
                parts.insert(0, DRUMS)
            added.append(word)
    for word in tags.excluded_instruments:
        roles, patches = REMOVED_BY_WORD.get(word, (frozenset(), frozenset()))
        kept = [p for p in parts if p.role not in roles and p.patch not in patches]
        if len(kept) < len(parts):
            removed.append(word)
        parts = kept
    return style, tuple(parts), tuple(added), tuple(removed)


# -- the form ------------------------------------------------------------------------------


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


ENERGY = {"intro": 0, "breakdown": 0, "verse": 1, "chorus": 2, "loop": 2}


def plan_loop_sections(groove_bars: int, intro_bars: int) -> list[tuple[str, int]]:
    """A loop is one section at one energy (the full groove), after its intro if it has one.

    The loop section runs on past the loop's last bar (the tail the finishing step folds
    over its start), so the bar after the loop plays what the loop's first bar plays.
    """
    intro = min(intro_bars, max(groove_bars - 1, 0))
    return ([("intro", intro)] if intro else []) + [("loop", groove_bars - intro)]


def build_score(choices: MusicalChoices, rng: np.random.Generator) -> tuple[Score, list[Section], dict]:
    """The form: which progressions, which sections, and the chord and energy of every bar."""
    style = choices.style
    options = style.progressions(choices.minor)
    verse = options.home[int(rng.integers(len(options.home)))]
    everything = options.home + options.away
    chorus = everything[int(rng.integers(len(everything)))]
    # A loop plays the home progression: it opens on the tonic and heads back to it.
    progressions = {"intro": verse, "verse": verse, "breakdown": verse, "chorus": chorus, "loop": verse}
    looped = choices.ending == "continues"
    # Slow harmony needs room: a short cue changes chord every bar, or it would hear only two.
    # A loop's bars (all but the tail bar) are a whole number of phrases.
    body_bars = choices.groove_bars - choices.intro_bars - 1 if looped else choices.groove_bars
    slow = style.bars_per_chord
    fits_slow = body_bars >= 8 * slow and (not looped or body_bars % (len(verse) * slow) == 0)
    bars_per_chord = slow if fits_slow else 1
    phrase_bars = len(verse) * bars_per_chord
    sections: list[Section] = []
    start = 0
    plan = (plan_loop_sections(choices.groove_bars, choices.intro_bars) if looped
            else plan_sections(choices.groove_bars, phrase_bars, rng))
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
    drums = any(part.role == "drums" for part in choices.parts) and style.groove != "none"
    score = Score(tuple(bars), choices.tonic_pc, choices.minor, choices.time_signature, drums)
    summary = {"progressions": {"verse": list(progressions["verse"]), "chorus": list(progressions["chorus"])}}
    return score, sections, summary


# -- the feel and the streams ----------------------------------------------------------------


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


def candidate_parts(choices: MusicalChoices, seed: int) -> tuple[Part, ...]:
    """What one take plays: the style's parts, each perhaps swapped for one of the style's
    alternatives of its role, and each of the style's optional parts in about half the takes.

    A part that plays an instrument the prompt names stays; nothing comes in that a "no X"
    took out, or on a track the style's parts do not play (every take has the same stems).
    """
    style = choices.style
    rng = seeded_stream(seed, choices.stream(f"palette/{style.style_id}"))
    kit = style.kit

    def allowed(part: Part) -> bool:
        return not any(part_plays(word, part, kit) for word in choices.excluded_instruments) and not any(
            part.role in REMOVED_BY_WORD.get(word, ((), ()))[0] or part.patch in REMOVED_BY_WORD.get(word, ((), ()))[1]
            for word in choices.excluded_instruments)

    tracks = {part_track(p) for p in choices.parts}
    parts = []
    for part in choices.parts:
        options = [part]
        if part in style.parts and not any(part_plays(word, part, kit) for word in choices.asked_instruments):
            options += [alt for alt in style.alternatives
                        if alt.role == part.role and part_track(alt) == part_track(part) and allowed(alt)
                        and alt.min_energy == part.min_energy]
        parts.append(options[int(rng.integers(len(options)))])
    for extra in style.optional:
        if rng.random() < 0.5 and allowed(extra) and part_track(extra) in tracks:
            parts.append(extra)
    return tuple(parts)


def arrange(choices: MusicalChoices, seed: int) -> Arrangement:
    """One candidate's score from its seed."""
    score, sections, summary = build_score(choices, seeded_stream(seed, choices.stream(f"form/{choices.style.style_id}")))
    tracks: list[tuple[Part, list[Note]]] = []
    hits: list[Hit] = []
    parts = candidate_parts(choices, seed)
    for part in parts:
        rng = seeded_stream(seed, choices.stream(f"{part.role}/{part.writer}/{part.patch}"))
        if part.role == "drums":
            hits = write_drums(score, choices.style.groove, rng)
        else:
            tracks.append((part, WRITERS[part.writer](score, part, rng)))
    if choices.ending == "ring-out":
        start = choices.groove_bars * score.beats
        beats = choices.ring_out_beats
        tracks = [(part, notes + ending_notes(score, part, start, beats)) for part, notes in tracks]
        if any(p.role == "drums" for p in parts) and choices.style.groove != "none":
            main = "timpani" if choices.style.groove == "orchestral" else "kick"
            hits = hits + [Hit(start, main, 1.0), Hit(start, "crash", 1.0)]
    swing = choices.style.swing
    if swing:
        tracks = [(part, [replace(n, start=swing_beat(n.start, swing)) for n in notes]) for part, notes in tracks]
        hits = [replace(h, start=swing_beat(h.start, swing)) for h in hits]
    summary["parts"] = [f"{p.role}: {p.patch or p.writer}" for p in parts]
    summary["sections"] = [
        {"name": s.name, "start_bar": s.start_bar + 1, "bars": s.bars, "energy": s.energy} for s in sections
    ]
    return Arrangement(score, sections, tracks, hits, summary)
