"""Which of the prompt's library words the sketch renders, and which it does not.

Every word acestep_core.keywords knows either changes something the sketch plays (a
tempo, the mode, the style, the meter, a part, a part taken out) or is listed in the
sidecar's `not_rendered` and said on the CLI and in the hosts. A word counts as rendered
only when it changed this cue: "rock, synthwave" plays rock, so "synthwave" is listed;
"bright" in a cue whose key the request sets is listed too.

plays(word, parts, kit) says whether parts (and a drum kit) play the instrument a word
names; the arranger uses it to add parts for words, to keep a seed's palette from
swapping out an instrument the prompt asked for, and to keep "no X" true.
"""

from __future__ import annotations

from typing import Iterable

from acestep_core.backends.sketch.styles import Part
from acestep_core.keywords import PromptTags, keyword

_SYNTH_PATCHES = frozenset({"supersaw_pad", "arp_pluck", "square_lead", "stab", "soft_pad", "pulse_lead",
                            "pulse_arp", "evolving_pad", "sub_drone", "retro_bass", "offbeat_bass"})
_GUITARS = frozenset({"power_chord", "lead_guitar"})
_ACOUSTIC = frozenset({"acoustic_guitar"})
# Instrument word -> the patches that sound like it (None: see _ROLES / _WRITERS / drums).
_PATCHES: dict[str, frozenset[str]] = {
    "synth bass": frozenset({"retro_bass", "offbeat_bass", "nes_triangle"}),
    "electric guitar": _GUITARS, "distorted guitar": _GUITARS, "guitar": _GUITARS | _ACOUSTIC,
    "acoustic guitar": _ACOUSTIC, "saxophone": frozenset({"saxophone"}), "flute": frozenset({"flute"}),
    "harp": frozenset({"harp"}), "choir": frozenset({"choir"}), "chiptune pulse": frozenset({"pulse_lead", "pulse_arp"}),
    "piano": frozenset({"piano"}), "electric piano": frozenset({"electric_piano"}), "organ": frozenset({"rock_organ"}),
    "synth": _SYNTH_PATCHES,
    "pads": frozenset({"supersaw_pad", "soft_pad", "evolving_pad", "sub_drone"}),
    "strings": frozenset({"string_ensemble", "string_staccato", "contrabass"}),
    # A string ensemble's section holds violins and cellos; a contrabass line the cellos' low end.
    "violin": frozenset({"string_ensemble", "string_staccato", "fiddle"}),
    "cello": frozenset({"string_ensemble", "contrabass"}),
    "brass": frozenset({"horn"}),
    "bells": frozenset({"glass_bell", "music_box"}),
}
_ROLES: dict[str, frozenset[str]] = {"bass": frozenset({"bass"}), "lead": frozenset({"lead"}),
                                     "arpeggio": frozenset({"arp"})}
_SYNTH_LEADS = frozenset({"square_lead", "pulse_lead", "arp_pluck", "soft_lead"})
# Drum words: the kits whose one-shots include them (every kit but "none" is drums).
_KITS_WITH: dict[str, frozenset[str] | None] = {
    "drums": None, "percussion": None,
    "hi-hats": frozenset({"rock", "synthwave", "electronic", "chiptune", "lofi", "pop"}),
    "claps": frozenset({"synthwave", "electronic", "pop"}),
    "timpani": frozenset({"orchestral"}), "taiko": frozenset({"taiko"}),
    "brushed drums": frozenset({"brushes"}), "orchestral percussion": frozenset({"orchestral", "taiko"}),
    "chiptune noise": frozenset({"chiptune"}),
}


def part_plays(word: str, part: Part, kit: str) -> bool:
    """True when this one part plays the instrument `word` names."""
    if word in _KITS_WITH:
        kits = _KITS_WITH[word]
        return part.role == "drums" and kit != "none" and (kits is None or kit in kits)
    if word == "vinyl crackle":
        return part.writer == "crackle"
    if word == "synth lead":
        return part.role == "lead" and part.patch in _SYNTH_LEADS
    if word in _ROLES:
        return part.role in _ROLES[word]
    return part.patch in _PATCHES.get(word, frozenset())


def plays(word: str, parts: Iterable[Part], kit: str) -> bool:
    return any(part_plays(word, part, kit) for part in parts)


def not_rendered(tags: PromptTags, plan, style_id: str, style_from: str, parts_by_take: list[tuple[Part, ...]],
                 kit: str) -> list[str]:
    """The prompt's library words that changed nothing in this cue, in the prompt's order
    by category; a "no X" the cue still plays as "no X".

    `plan` is the TempoKeyPlan; `parts_by_take` every candidate's parts (a word counts when
    every take plays it).
    """
    used_bpm = plan.bpm_from.removeprefix("prompt (").removesuffix(")") if plan.bpm_from.startswith("prompt (") else None
    used_mode = plan.key_from == "prompt (mode words)" and tags.mode_from in ("moods and scenes", "style")
    mode = plan.key.split()[1]
    from_prompt = style_from not in ("fallback", None)
    listed: list[str] = []

    def shapes_the_cue(word: str) -> bool:
        entry = keyword(word)
        if entry.bpm_range and used_bpm == {"tempo": "tempo words", "style": "style"}.get(entry.category, "mood and scene"):
            return True
        if entry.mode == mode and used_mode and (
                (tags.mode_from == "style") == (entry.category == "style")):
            return True
        return from_prompt and entry.style_id == style_id and _names_the_style(word, tags)

    for word in (*tags.moods, *tags.scenes, *tags.styles, *tags.tempo_words):
        if not shapes_the_cue(word):
            listed.append(word)
    for word in tags.instruments:
        if not all(plays(word, parts, kit) for parts in parts_by_take):
            listed.append(word)
    for word in tags.excluded_instruments:
        if any(plays(word, parts, kit) for parts in parts_by_take):
            listed.append(f"no {word}")
    meter_from = getattr(plan, "time_signature_from", "default")
    for index, word in enumerate(tags.meter_words):
        if not (index == 0 and meter_from.startswith("prompt")):
            listed.append(word)
    return listed


def _names_the_style(word: str, tags: PromptTags) -> bool:
    """The word is where the played style came from: the first style word, else the first
    scene or mood that suggests one (keywords._implied_style's order)."""
    entry = keyword(word)
    if tags.style_from == "style word":
        return entry.category == "style" and word == tags.styles[0]
    for category, words in (("scene", tags.scenes), ("mood", tags.moods)):
        if tags.style_from == category:
            first = next((w for w in words if keyword(w).style_id), None)
            return word == first
    return False

