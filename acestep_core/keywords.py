"""The prompt keyword library: words by category, what each implies, and the prompt template.

Standard library only: the Blender panel and the REAPER dialog list these words, and the
sketch backend parses prompts with them, so every surface offers and understands the
same vocabulary.

The template is "[mood] [scene], [style], [tempo] [instruments]", for example
compose_prompt(mood="tense", scene="boss battle", style="synthwave", tempo="fast",
instruments=["drums"]) -> "tense boss battle, synthwave, fast drums".

parse_prompt() reads any text, not only composed prompts: case-insensitive, punctuation
and hyphens are separators ("lo-fi" == "lo fi"), the longest known phrase wins
("boss battle" before "battle"), a trailing plural 's' is optional ("pad" == "pads"),
"no drums" / "without strings" exclude an instrument, "120 bpm" and "E minor" are read
as an explicit tempo and key, "minor key" / "in major" as an explicit mode, and the meter
words ("waltz", "jig", "6/8", "compound") as a time signature (METER_WORDS).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from acestep_core.request import MAX_BPM, MIN_BPM, normalize_key

CATEGORIES = ("mood", "scene", "style", "instrument", "tempo")
MODES = ("major", "minor")
STYLE_IDS = ("rock", "synthwave", "orchestral", "chiptune", "lofi", "ambient", "electronic", "pop", "horror", "folk",
             "jazz")
# What the sketch backend plays when nothing in the prompt names or suggests a style.
FALLBACK_STYLE_ID = "pop"


@dataclass(frozen=True)
class Keyword:
    """One word of the library and what it implies.

    `mode` is the major/minor lean of a mood, scene or style; `bpm_range` the tempo a
    tempo word names (for moods, scenes and styles, a weaker hint); `style_id` the style
    a style word names (for moods and scenes, the style to suggest when none is named).
    """

    word: str
    category: str
    mode: str | None = None
    bpm_range: tuple[int, int] | None = None
    style_id: str | None = None
    aliases: tuple[str, ...] = ()


def _mood(word, mode, bpm=None, style=None, aliases=()):
    return Keyword(word, "mood", mode, bpm, style, aliases)


def _scene(word, mode, bpm=None, style=None, aliases=()):
    return Keyword(word, "scene", mode, bpm, style, aliases)


def _style(word, style_id, bpm, mode=None, aliases=()):
    return Keyword(word, "style", mode, bpm, style_id, aliases)


def _instrument(word, aliases=()):
    return Keyword(word, "instrument", aliases=aliases)


def _tempo(word, bpm, aliases=()):
    return Keyword(word, "tempo", bpm_range=bpm, aliases=aliases)


KEYWORDS: tuple[Keyword, ...] = (
    # -- moods: dark and tense lean minor, calm and heroic lean major -----------------
    _mood("tense", "minor", (120, 140)),
    _mood("dark", "minor"),
    _mood("ominous", "minor", (70, 90), aliases=("menacing", "threatening")),
    _mood("mysterious", "minor", (75, 95), aliases=("mystical", "enigmatic")),
    _mood("eerie", "minor", (60, 80), "horror", ("creepy", "spooky", "unsettling")),
    # Clusters, tritones and a drone: the horror palette, whatever the scene.
    _mood("dissonant", "minor", (55, 75), "horror", ("atonal", "discordant", "dissonance")),
    _mood("suspenseful", "minor", (90, 110), aliases=("suspense",)),
    _mood("sad", "minor", (60, 80), aliases=("sorrowful", "tragic")),
    _mood("melancholic", "minor", (65, 85), aliases=("melancholy", "wistful")),
    _mood("somber", "minor", (60, 75), aliases=("sombre", "gloomy", "grim")),
    _mood("lonely", "minor", (60, 80), aliases=("desolate", "isolated")),
    _mood("aggressive", "minor", (145, 170), "rock", ("fierce", "brutal")),
    _mood("angry", "minor", (140, 165), "rock", ("furious", "rage")),
    _mood("intense", "minor", (130, 160), aliases=("urgent",)),
    _mood("desperate", "minor", (130, 150)),
    _mood("nostalgic", None, (75, 95), "lofi"),
    _mood("epic", None, (110, 140), "orchestral", ("grand", "majestic")),
    _mood("energetic", None, (125, 150), aliases=("high energy", "powerful")),
    _mood("heroic", "major", (110, 135), "orchestral", ("brave", "noble")),
    _mood("triumphant", "major", (100, 125), "orchestral", ("victorious", "glorious")),
    _mood("hopeful", "major", (90, 115), aliases=("optimistic", "inspiring")),
    _mood("uplifting", "major", (115, 130), aliases=("euphoric",)),
    _mood("happy", "major", (110, 130), aliases=("joyful", "cheerful", "fun")),
    _mood("playful", "major", (105, 125), "chiptune", ("quirky", "bouncy", "cute")),
    _mood("whimsical", "major", (95, 115), aliases=("magical", "fairytale")),
    _mood("calm", "major", (65, 85), "ambient", ("tranquil", "soothing", "gentle")),
    _mood("peaceful", "major", (60, 80), "ambient", ("serene", "quiet")),
    _mood("relaxed", "major", (70, 90), "lofi", ("relaxing", "easygoing")),
    _mood("chill", "major", (75, 95), "lofi", ("chilled", "cozy", "cosy")),
    _mood("dreamy", "major", (70, 90), "ambient", ("ethereal", "floating")),
    _mood("romantic", "major", (70, 90), aliases=("tender", "loving")),
    _mood("bright", "major", None, aliases=("sunny",)),
    _mood("mellow", None, (70, 90), aliases=("soft", "smooth")),
    # -- scenes (the game or film moment) --------------------------------------------
    _scene("boss battle", "minor", (145, 165), "rock", ("boss fight", "final boss", "boss theme")),
    _scene("battle", "minor", (130, 150), "orchestral", ("fight", "combat", "war", "skirmish")),
    _scene("chase", "minor", (150, 170), "synthwave", ("pursuit", "escape", "getaway")),
    _scene("stealth", "minor", (85, 100), "ambient", ("sneaking", "infiltration", "heist")),
    _scene("horror", "minor", (60, 80), "horror", ("haunted house", "nightmare")),
    _scene("dungeon", "minor", (70, 90), "ambient", ("cave", "catacombs", "crypt", "ruins")),
    _scene("night city", "minor", (95, 115), "synthwave", ("city at night", "neon city", "cyberpunk city")),
    _scene("game over", "minor", (60, 75), "ambient", ("defeat", "death", "you died")),
    _scene("trailer", "minor", (100, 130), "orchestral", ("teaser",)),
    _scene("rain", "minor", (70, 85), "lofi", ("rainy day", "storm")),
    _scene("exploration", "major", (80, 100), "ambient", ("exploring", "open world", "wandering")),
    _scene("adventure", "major", (110, 130), "orchestral", ("quest", "journey", "overworld")),
    _scene("forest", "major", (75, 95), "ambient", ("woods", "jungle", "meadow")),
    _scene("town", None, (95, 115), None, ("village", "market", "tavern")),
    _scene("title screen", "major", (90, 110), "orchestral", ("opening", "intro screen")),
    _scene("menu", "major", (80, 95), "lofi", ("main menu", "pause menu", "lobby", "inventory")),
    _scene("victory", "major", (110, 130), "orchestral", ("win", "level complete", "celebration")),
    _scene("credits", "major", (85, 105), None, ("end credits", "roll credits")),
    _scene("racing", "major", (150, 175), "electronic", ("race", "driving scene", "speed run")),
    _scene("puzzle", "major", (90, 110), "lofi", ("thinking", "crafting")),
    _scene("shop", "major", (100, 115), "chiptune", ("store", "merchant")),
    _scene("training", "major", (120, 140), "rock", ("montage", "workout")),
    _scene("space", None, (60, 85), "ambient", ("outer space", "spaceship", "sci-fi", "galaxy")),
    _scene("underwater", None, (60, 80), "ambient", ("ocean", "deep sea")),
    _scene("sunset", "major", (80, 100), "lofi", ("beach", "summer evening")),
    _scene("cutscene", None, None, "orchestral", ("cinematic scene", "dialogue")),
    # -- styles -------------------------------------------------------------------
    _style("rock", "rock", (110, 140), aliases=("hard rock", "guitar rock", "rock and roll")),
    _style("metal", "rock", (140, 180), "minor", ("heavy metal", "thrash", "djent")),
    _style("punk", "rock", (160, 190), aliases=("pop punk", "punk rock")),
    _style("synthwave", "synthwave", (95, 118), "minor", ("retrowave", "outrun", "80s", "1980s", "vaporwave")),
    _style("darksynth", "synthwave", (100, 125), "minor", ("dark synth", "cyberpunk")),
    _style("orchestral", "orchestral", (90, 120), aliases=("orchestra", "symphonic", "film score", "classical")),
    _style("cinematic", "orchestral", (90, 120), aliases=("movie score", "soundtrack")),
    _style("epic orchestral", "orchestral", (120, 140), "minor", ("epic orchestra", "hybrid orchestral")),
    _style("chiptune", "chiptune", (130, 160), "major", ("8-bit", "8bit", "16-bit", "nes", "retro game", "bitpop", "gameboy")),
    _style("lo-fi", "lofi", (70, 90), aliases=("lofi", "lo-fi hip hop", "chillhop", "jazzhop")),
    _style("hip hop", "lofi", (85, 95), aliases=("boom bap", "hiphop")),
    _style("ambient", "ambient", (60, 80), aliases=("atmospheric", "soundscape", "new age")),
    _style("drone", "ambient", (50, 70)),
    _style("dark ambient", "ambient", (55, 75), "minor"),
    _style("electronic", "electronic", (120, 128), aliases=("edm", "electro", "electronica")),
    _style("house", "electronic", (120, 126), aliases=("deep house",)),
    _style("techno", "electronic", (125, 135)),
    _style("trance", "electronic", (134, 140), aliases=("progressive trance",)),
    _style("dance", "electronic", (120, 128), aliases=("club",)),
    _style("pop", "pop", (100, 120), aliases=("indie pop", "pop music")),
    _style("indie", "pop", (100, 125), aliases=("indie rock",)),
    # A ballad is slow and sparse: the sketch plays it without a drum kit.
    _style("ballad", "pop", (60, 80)),
    _style("horror score", "horror", (55, 75), "minor", ("horror music", "survival horror", "horror ambient")),
    _style("folk", "folk", (95, 125), "major", ("celtic", "bluegrass", "country", "americana", "acoustic folk")),
    _style("jazz", "jazz", (100, 150), None, ("swing", "bebop", "smooth jazz", "jazzy", "noir", "jazz club")),
    # -- instruments ----------------------------------------------------------------
    _instrument("drums", ("drum kit", "beat", "beats")),
    _instrument("percussion", ("hand drums",)),
    _instrument("hi-hats", ("hihats", "hats")),
    _instrument("claps", ("handclaps",)),
    _instrument("808", ("808s", "808 bass")),
    _instrument("bass", ("bassline", "bass line", "bass guitar")),
    _instrument("synth bass", ("bass synth",)),
    _instrument("electric guitar", ("electric guitars",)),
    _instrument("distorted guitar", ("power chords", "heavy guitar", "distortion guitar")),
    _instrument("acoustic guitar", ("nylon guitar", "acoustic guitars", "fingerpicked guitar")),
    _instrument("guitar", ("guitars",)),
    _instrument("piano", ("grand piano",)),
    _instrument("electric piano", ("rhodes", "e-piano", "epiano", "wurlitzer")),
    _instrument("organ", ("hammond",)),
    _instrument("synth", ("synths", "synthesizer", "synthesizers")),
    _instrument("synth lead", ("lead synth",)),
    _instrument("lead", ("melody", "lead melody")),
    _instrument("pads", ("pad", "synth pads", "synth pad")),
    _instrument("arpeggio", ("arpeggios", "arp", "arps", "arpeggiator")),
    _instrument("strings", ("string section", "string ensemble")),
    _instrument("violin", ("violins", "fiddle")),
    _instrument("cello", ("cellos",)),
    _instrument("brass", ("horns", "horn section", "trumpets", "trombones")),
    _instrument("choir", ("choirs", "voices", "chant")),
    _instrument("timpani", ()),
    _instrument("taiko", ("war drums",)),
    _instrument("bells", ("glockenspiel", "chimes", "celesta")),
    _instrument("flute", ("flutes", "whistle", "tin whistle", "pan flute")),
    _instrument("saxophone", ("sax", "saxophones", "alto sax", "tenor sax")),
    _instrument("harp", ("harps", "lyre")),
    _instrument("brushed drums", ("brushes", "brush drums", "brush kit", "brushed snare")),
    _instrument("orchestral percussion", ("orchestral drums", "cinematic percussion", "cinematic drums")),
    _instrument("chiptune pulse", ("pulse wave", "square wave", "chip lead", "8-bit lead")),
    _instrument("chiptune noise", ("noise drums", "noise channel", "8-bit drums", "chip drums")),
    _instrument("vinyl crackle", ("vinyl", "crackle", "tape hiss")),
    # -- tempo words: what they say, in bpm -----------------------------------------
    _tempo("very slow", (50, 62), ("glacial", "extremely slow")),
    _tempo("slow", (62, 80), ("slowly", "slow tempo")),
    _tempo("laid-back", (70, 90), ("laidback", "downtempo", "lazy")),
    _tempo("mid-tempo", (90, 115), ("midtempo", "moderate", "medium tempo")),
    _tempo("upbeat", (110, 130), ("up-tempo", "uptempo", "lively")),
    _tempo("driving", (120, 140), ("pumping", "propulsive")),
    _tempo("fast", (140, 165), ("quick", "fast tempo", "rapid")),
    _tempo("very fast", (165, 190), ("frantic", "breakneck", "extremely fast", "hyper")),
)


def _words(category: str) -> tuple[str, ...]:
    return tuple(k.word for k in KEYWORDS if k.category == category)


MOOD_WORDS = _words("mood")
SCENE_WORDS = _words("scene")
STYLE_WORDS = _words("style")
INSTRUMENT_WORDS = _words("instrument")
TEMPO_WORDS = _words("tempo")
WORDS_BY_CATEGORY: dict[str, tuple[str, ...]] = {c: _words(c) for c in CATEGORIES}

_BY_WORD: dict[str, Keyword] = {k.word: k for k in KEYWORDS}

# Words that name a meter, and the time signature each asks for (request.TIME_SIGNATURES).
# Not a category of KEYWORDS: the UIs list moods, scenes, styles, instruments and tempo.
METER_WORDS: dict[str, str] = {
    "waltz": "3/4", "minuet": "3/4", "mazurka": "3/4", "triple meter": "3/4", "3/4": "3/4",
    "jig": "6/8", "tarantella": "6/8", "barcarolle": "6/8", "compound": "6/8", "compound meter": "6/8",
    "6/8": "6/8", "2/4": "2/4", "4/4": "4/4",
}


def keyword(word: str) -> Keyword:
    """The library entry for a canonical word or an alias; KeyError when it is not known."""
    found = _PHRASES.get(_normalize_phrase(word))
    if found is None:
        raise KeyError(f"{word!r} is not in the prompt keyword library")
    return found


# -- composing --------------------------------------------------------------------------


def compose_prompt(
    mood: str | None = None,
    scene: str | None = None,
    style: str | None = None,
    instruments: Sequence[str] = (),
    tempo: str | None = None,
) -> str:
    """The template "[mood] [scene], [style], [tempo] [instruments]".

    compose_prompt("tense", "boss battle", "synthwave", ["drums"], "fast")
    -> "tense boss battle, synthwave, fast drums". Empty parts are left out; free text
    is allowed (the UIs offer the library's words, users may type their own).
    """
    if isinstance(instruments, str):
        instruments = [instruments]
    parts = [" ".join(p for p in (_clean(mood), _clean(scene)) if p), _clean(style)]
    played = [_clean(i) for i in instruments if _clean(i)]
    if played:
        played[0] = " ".join(p for p in (_clean(tempo), played[0]) if p)
        parts.extend(played)
    else:
        parts.append(_clean(tempo))
    return ", ".join(p for p in parts if p)


def _clean(text: str | None) -> str:
    return " ".join(str(text).split()) if text else ""


# -- parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTags:
    """What a prompt says, in canonical library words, in the order they appear.

    `bpm` is explicit ("120 bpm") or implied; `bpm_from` says which: "number", "tempo
    words", "mood and scene" or "style". `mode` is "major"/"minor" from a named key or
    the leans of the moods, scenes and styles, None when they cancel out or say nothing.
    `style_id` is the first named style's id, else the style a scene or mood suggests
    (`style_from` says which).
    """

    moods: tuple[str, ...] = ()
    scenes: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    excluded_instruments: tuple[str, ...] = ()
    tempo_words: tuple[str, ...] = ()
    bpm: float | None = None
    bpm_from: str | None = None
    # The range an implied bpm is the middle of (None for an explicit "120 bpm"): a seed may
    # choose another tempo inside it (musical_plan).
    bpm_range: tuple[int, int] | None = None
    mode: str | None = None
    key: str | None = None
    style_id: str | None = None
    style_from: str | None = None
    # The meter words found (METER_WORDS' keys), and the time signature the first one names.
    meter_words: tuple[str, ...] = ()
    time_signature: str | None = None
    # "key" (a named key), "mode word" ("minor key", "in major"), "moods and scenes" or
    # "style" (their leans), None without a mode.
    mode_from: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        return {name: list(value) if isinstance(value, tuple) else value for name, value in data.items()}


# Characters that end a phrase; hyphens and underscores only join words ("lo-fi" = "lo fi").
_SEPARATORS = re.compile(r"[^a-z0-9\s]+")
_BPM_PATTERNS = (
    re.compile(r"(\d{2,3}(?:\.\d+)?)\s*bpm\b"),
    re.compile(r"\b(?:bpm|tempo)\s*[:=]?\s*(\d{2,3}(?:\.\d+)?)\b"),
)
# The note letter must be a capital ("Em", "F# minor"), so "a minor boss" stays words.
_KEY_PATTERN = re.compile(r"(?<![A-Za-z0-9])([A-G])\s?([#b♯♭]?)(?:\s?(major|minor|maj|min)\b|(m)\b)", re.IGNORECASE)
# "minor key", "in major", "major mode": the mode said outright (a bare "minor" may mean small).
_MODE_PATTERN = re.compile(r"\b(?:(major|minor)\s+(?:key|mode|scale|tonality)|in\s+(?:a\s+)?(major|minor)(?!\s+\w*\d))\b")
_METER_PATTERN = re.compile(
    r"(?<![\w/])(" + "|".join(sorted((re.escape(w).replace("\\ ", r"\s+") for w in METER_WORDS), key=len, reverse=True))
    + r")(?:e?s)?(?![\w/])")
_NEGATIONS = frozenset({"no", "without", "minus", "not", "except"})
_FILLERS = frozenset({"any", "the", "a"})


def _normalize_phrase(text: str) -> str:
    text = text.lower().replace("'", "").replace("’", "").replace("-", " ").replace("_", " ")
    return " ".join(text.split())


def _phrase_index() -> dict[str, Keyword]:
    index: dict[str, Keyword] = {}
    for entry in KEYWORDS:
        for form in (entry.word, *entry.aliases):
            phrase = _normalize_phrase(form)
            if phrase in index:
                raise ValueError(f"the keyword library lists {phrase!r} twice")
            index[phrase] = entry
    # An optional plural 's' on the last word ("pad" = "pads"), where it collides with no
    # listed phrase. Short and numeric words keep their spelling ("80s" is not "80").
    for phrase, entry in list(index.items()):
        last = phrase.rsplit(" ", 1)[-1]
        if not last.isalpha() or len(last) <= 3 or last.endswith("ss"):
            continue
        variant = phrase[:-1] if last.endswith("s") else phrase + "s"
        index.setdefault(variant, entry)
    return index


_PHRASES = _phrase_index()
_LONGEST_PHRASE = max(len(p.split()) for p in _PHRASES)


def parse_prompt(text: str) -> PromptTags:
    """Read the library's words, an explicit bpm and a named key out of free text."""
    lowered = text.lower()
    found: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    excluded: list[str] = []
    for chunk in _SEPARATORS.split(_normalize_phrase(text)):
        tokens = chunk.split()
        i = 0
        while i < len(tokens):
            length, entry = _longest_match(tokens, i)
            if entry is None:
                i += 1
                continue
            negated = entry.category == "instrument" and _is_negated(tokens, i)
            target = excluded if negated else found[entry.category]
            if entry.word not in target:
                target.append(entry.word)
            i += length
    bpm, bpm_from, bpm_range = _explicit_bpm(lowered), "number", None
    if bpm is None:
        bpm, bpm_from, bpm_range = _implied_bpm(found)
    key = _named_key(text)
    style_id, style_from = _implied_style(found)
    meters = list(dict.fromkeys(" ".join(m.group(1).split()) for m in _METER_PATTERN.finditer(lowered)))
    said_mode = _said_mode(lowered)
    if key:
        mode, mode_from = key.split()[1], "key"
    elif said_mode:
        mode, mode_from = said_mode, "mode word"
    else:
        mode, mode_from = _implied_mode(found)
    return PromptTags(
        moods=tuple(found["mood"]),
        scenes=tuple(found["scene"]),
        styles=tuple(found["style"]),
        instruments=tuple(w for w in found["instrument"] if w not in excluded),
        excluded_instruments=tuple(excluded),
        tempo_words=tuple(found["tempo"]),
        bpm=bpm,
        bpm_from=bpm_from if bpm is not None else None,
        bpm_range=bpm_range,
        mode=mode,
        key=key,
        style_id=style_id,
        style_from=style_from,
        meter_words=tuple(meters),
        time_signature=METER_WORDS[meters[0]] if meters else None,
        mode_from=mode_from,
    )


def _longest_match(tokens: list[str], start: int) -> tuple[int, Keyword | None]:
    for length in range(min(_LONGEST_PHRASE, len(tokens) - start), 0, -1):
        entry = _PHRASES.get(" ".join(tokens[start:start + length]))
        if entry is not None:
            return length, entry
    return 0, None


def _is_negated(tokens: list[str], start: int) -> bool:
    before = [t for t in tokens[max(0, start - 3):start] if t not in _FILLERS]
    return bool(before) and before[-1] in _NEGATIONS


def _explicit_bpm(lowered: str) -> float | None:
    for pattern in _BPM_PATTERNS:
        match = pattern.search(lowered)
        if match:
            value = float(match.group(1))
            if MIN_BPM <= value <= MAX_BPM:
                return value
    return None


def _named_key(text: str) -> str | None:
    for match in _KEY_PATTERN.finditer(text):
        letter, accidental, mode, short_minor = match.groups()
        if not letter.isupper():
            continue
        mode = (mode or short_minor or "").lower()
        if short_minor and short_minor != "m":  # "EM" is not a key
            continue
        try:
            return normalize_key(f"{letter}{accidental} {'minor' if mode in ('minor', 'min', 'm') else 'major'}")
        except ValueError:
            continue
    return None


def _entries(found: dict[str, list[str]], *categories: str) -> Iterable[Keyword]:
    for category in categories:
        for word in found[category]:
            yield _BY_WORD[word]


def _implied_bpm(found: dict[str, list[str]]) -> tuple[float | None, str | None, tuple[int, int] | None]:
    # Tempo words say the tempo; moods and scenes only hint at it; a style's habit comes last.
    for categories, source in ((("tempo",), "tempo words"), (("mood", "scene"), "mood and scene"), (("style",), "style")):
        ranges = [e.bpm_range for e in _entries(found, *categories) if e.bpm_range]
        if ranges:
            low, high = _overlap_of(ranges)
            return float(int((low + high) / 2 + 0.5)), source, (low, high)
    return None, None, None


def _overlap_of(ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """The ranges' overlap, or their average range when they do not overlap."""
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if low > high:
        low = sum(r[0] for r in ranges) / len(ranges)
        high = sum(r[1] for r in ranges) / len(ranges)
    return int(round(low)), int(round(high))


def _said_mode(lowered: str) -> str | None:
    match = _MODE_PATTERN.search(lowered)
    return (match.group(1) or match.group(2)) if match else None


def _implied_mode(found: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """The moods' and scenes' lean ("victory, metal" is major: the moment outweighs the
    genre's habit); the styles' lean only when the moods and scenes say nothing or cancel."""
    for categories, source in ((("mood", "scene"), "moods and scenes"), (("style",), "style")):
        lean = sum((1 if e.mode == "major" else -1) for e in _entries(found, *categories) if e.mode)
        if lean:
            return ("major" if lean > 0 else "minor"), source
    return None, None


def _implied_style(found: dict[str, list[str]]) -> tuple[str | None, str | None]:
    for category, source in (("style", "style word"), ("scene", "scene"), ("mood", "mood")):
        for entry in _entries(found, category):
            if entry.style_id:
                return entry.style_id, source
    return None, None


__all__ = [
    "CATEGORIES", "MODES", "STYLE_IDS", "FALLBACK_STYLE_ID", "Keyword", "KEYWORDS",
    "MOOD_WORDS", "SCENE_WORDS", "STYLE_WORDS", "INSTRUMENT_WORDS", "TEMPO_WORDS", "WORDS_BY_CATEGORY", "METER_WORDS",
    "PromptTags", "compose_prompt", "parse_prompt", "keyword",
]


def not_rendered_note(metadata: dict | None) -> str:
    """'the sketch backend does not play these words of the prompt: waltz, choir', or '':
    what a cue's sidecar (its `not_rendered`) says, in the words the CLI and the hosts show."""
    words = [str(w) for w in ((metadata or {}).get("not_rendered") or [])]
    if not words:
        return ""
    name = ((metadata or {}).get("backend") or {}).get("name") or "backend"
    return f"the {name} backend does not play these words of the prompt: {', '.join(words)}"
