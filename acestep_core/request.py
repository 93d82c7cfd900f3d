"""The one definition of a generation request, used by the CLI, the worker and both hosts.

Standard library only. Validation reports every problem at once, by field, in
sentences a user understands; the worker returns the same sentences as 4xx bodies.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from acestep_core.errors import FieldProblem, InvalidRequest
from acestep_core.lineage import lineage_problems, normalized_lineage

TASKS = ("text2music", "repaint", "cover", "extract", "lego", "complete")
# Tasks that work on existing audio (source_audio), and those ACE-Step's turbo checkpoints
# were not trained for (they need a base or sft checkpoint).
SOURCE_TASKS = tuple(task for task in TASKS if task != "text2music")
BASE_ONLY_TASKS = ("extract", "lego", "complete")
TRACK_TASKS = ("extract", "lego")  # the one instrument they take out or add
REFERENCE_TASKS = ("text2music", "cover")  # reference_audio: a clip for timbre and style
# ACE-Step's own instrument names (extract, lego, complete, and which stems a split makes).
TRACK_NAMES = ("vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion", "strings",
               "synth", "fx", "brass", "woodwinds")
OUTPUT_FORMATS = ("wav", "flac", "ogg")
SAMPLE_RATES = (44100, 48000)
BIT_DEPTHS = (16, 24)
MIN_DURATION_S = 1.0
MAX_DURATION_S = 600.0
MAX_CANDIDATES = 8
MIN_BPM = 30.0
MAX_BPM = 300.0
MAX_SEED = 2**32 - 1
MAX_STEPS = 200
MAX_GUIDANCE = 30.0
MAX_SHIFT = 20.0
MAX_PROMPT_CHARS = 2000
MAX_LYRICS_CHARS = 8000
TIME_SIGNATURES = ("2/4", "3/4", "4/4", "6/8")
MAX_LOOP_BARS = 256
MAX_INTRO_BARS = 16
# "auto" intro: four bars, or two before a loop of four bars or fewer (a long intro before
# a short loop is most of the file).
AUTO_INTRO = "auto"


def auto_intro_bars(loop_bars: int | None) -> int:
    """The intro an 'auto' asks for before a loop of `loop_bars` (None: the loop fits the length)."""
    return 2 if loop_bars is not None and loop_bars <= 4 else 4


# Integrated loudness targets (LUFS) by name: EBU R128 / console platforms, and the level
# mobile stores and streaming expect. "none" leaves the loudness as generated.
LOUDNESS_PRESETS: dict[str, float | None] = {"console": -23.0, "mobile": -16.0, "none": None}
MIN_LOUDNESS_LUFS = -60.0
MAX_LOUDNESS_LUFS = -5.0
MIN_TRUE_PEAK_DB = -20.0
MAX_TRUE_PEAK_DB = 0.0
LOOP_TASKS = ("text2music", "cover")

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_TO_SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
_SHARP_SPELLING_EXCEPTIONS = {"E#": "F", "B#": "C"}
# The patterns are also the worker's OpenAPI schema's, so they are written to mean the
# same in Python (used with fullmatch) and in JSON Schema (ECMA-262).
KEY_PATTERN = r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m|M)?\s*$"
_KEY_PATTERN = re.compile(KEY_PATTERN)
# File names the worker and CLI accept: no folders, no leading dot, nothing a shell or
# filesystem treats specially. The CLI takes folders through -o, not through this field.
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _\-.()]{0,119}$"
_FILE_NAME_PATTERN = re.compile(FILE_NAME_PATTERN)
# Style pack names (acestep_core.packs): folder names and CLI words (NAME:SCALE), so no
# colon or slash. A LoRA scale above ~1.5 mostly adds artefacts; 2 leaves room to try.
STYLE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
_STYLE_NAME_PATTERN = re.compile(STYLE_NAME_PATTERN)
MAX_STYLE_SCALE = 2.0


def normalize_key(text: str) -> str:
    """'Em', 'e min', 'Bb minor', 'F#' -> 'E minor', 'E minor', 'A# minor', 'F# major'.

    Raises ValueError with a sentence when the text is not a key.
    """
    match = _KEY_PATTERN.fullmatch(text.replace("♯", "#").replace("♭", "b"))
    if not match:
        raise ValueError(
            f"key must be a note and a mode such as 'E minor' or 'Bb major', got {text!r}"
        )
    letter, accidental, mode = match.groups()
    note = letter.upper() + accidental
    note = _FLAT_TO_SHARP.get(note, _SHARP_SPELLING_EXCEPTIONS.get(note, note))
    is_minor = mode in ("minor", "min", "m")
    return f"{note} {'minor' if is_minor else 'major'}"


def key_to_pitch_class(key: str) -> tuple[int, bool]:
    """'A minor' -> (9, True). The key must already be normalized."""
    note, mode = key.split()
    return NOTE_NAMES.index(note), mode == "minor"


def beats_per_bar(time_signature: str | None) -> int:
    """'6/8' -> 6; None -> 4."""
    if not time_signature:
        return 4
    return int(time_signature.split("/")[0])


def slug_from_prompt(prompt: str, limit: int = 48) -> str:
    """'Intense boss battle, rock!' -> 'intense-boss-battle-rock' (a safe file stem)."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    slug = "-".join(words)[:limit].strip("-")
    return slug or "cue"



@dataclass
class GenerationRequest:
    """What to generate. Every field has a default except the prompt.

    `seed=None` draws a seed and records it. `steps`, `guidance` and `shift` of None use
    the model's own defaults (turbo and base checkpoints differ). `source_audio` is a
    file path for the CLI and an upload id for the worker (the worker reads no client path).
    """

    prompt: str
    lyrics: str = ""
    duration: float = 30.0
    seed: int | None = None
    candidates: int = 1
    steps: int | None = None
    guidance: float | None = None
    shift: float | None = None
    bpm: float | None = None
    key: str | None = None
    time_signature: str | None = None
    task: str = "text2music"
    source_audio: str | None = None
    repaint_start: float | None = None
    repaint_end: float | None = None
    cover_strength: float = 1.0
    output_format: str = "wav"
    sample_rate: int = 44100
    bit_depth: int = 16
    file_name: str | None = None
    # Game-ready output. `loop` makes a seamless loop on whole bars (loop_bars of them, or
    # None for the whole bars nearest `duration`). `loudness` is a preset name from
    # LOUDNESS_PRESETS or a target in LUFS; None leaves the loudness as generated. The
    # true-peak ceiling (dBTP) always applies. `intensity` (0 = sparsest, 1 = fullest) asks
    # for one level of a dynamic-music set; None is the backend's natural arrangement.
    loop: bool = False
    loop_bars: int | None = None
    # Bars of one-time intro before a loop's body, in the same file (0: none); the loop
    # starts after it.
    intro_bars: int = 0
    loudness: str | float | None = None
    true_peak_ceiling_db: float = -1.0
    intensity: float | None = None
    # `track` is the instrument extract takes out or lego adds (TRACK_NAMES); `tracks` the
    # ones complete adds, or which stems `stems` makes. Lego's range is repaint_start/end
    # (both None: the whole source). `reference_audio` (text2music, cover) is a clip whose
    # timbre and style to follow: a path for the CLI, an upload id for the worker.
    track: str | None = None
    tracks: list[str] | None = None
    reference_audio: str | None = None
    stems: bool = False
    # A style pack (LoRA) by its installed name, and how strongly it applies (0: not at all).
    style: str | None = None
    style_scale: float = 1.0
    # A refinement of an earlier cue (acestep_core.refine builds it, acestep_core.lineage
    # says what is valid): parent file, job and seed, and the fields changed. The sidecar
    # records it as its top-level "lineage"; it never changes the audio.
    lineage: dict[str, Any] | None = None

    def loudness_target_lufs(self) -> float | None:
        """The integrated loudness target in LUFS, or None to leave loudness alone."""
        if isinstance(self.loudness, str):
            return LOUDNESS_PRESETS[self.loudness.strip().lower()]
        return None if self.loudness is None else float(self.loudness)

    # -- validation ---------------------------------------------------------------

    def problems(self) -> list[FieldProblem]:
        """Every problem with this request, one per field at most, in field order."""
        found: list[FieldProblem] = []

        def bad(name: str, message: str) -> None:
            found.append(FieldProblem(name, message))

        if not isinstance(self.prompt, str) or not self.prompt.strip():
            bad("prompt", "prompt must describe the music, for example 'calm exploration, ambient, soft pads'")
        elif len(self.prompt) > MAX_PROMPT_CHARS:
            bad("prompt", f"prompt must be at most {MAX_PROMPT_CHARS} characters, got {len(self.prompt)}")
        if not isinstance(self.lyrics, str):
            bad("lyrics", "lyrics must be text (leave empty for an instrumental)")
        elif len(self.lyrics) > MAX_LYRICS_CHARS:
            bad("lyrics", f"lyrics must be at most {MAX_LYRICS_CHARS} characters, got {len(self.lyrics)}")
        if not _is_number(self.duration) or not (MIN_DURATION_S <= self.duration <= MAX_DURATION_S):
            bad("duration", f"duration must be between {MIN_DURATION_S:g} and {MAX_DURATION_S:g} seconds, got {self.duration!r}")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED):
            bad("seed", f"seed must be a whole number from 0 to {MAX_SEED}, or empty to draw one, got {self.seed!r}")
        if not _is_int(self.candidates) or not 1 <= self.candidates <= MAX_CANDIDATES:
            bad("candidates", f"candidates must be between 1 and {MAX_CANDIDATES}, got {self.candidates!r}")
        if self.steps is not None and (not _is_int(self.steps) or not 1 <= self.steps <= MAX_STEPS):
            bad("steps", f"steps must be between 1 and {MAX_STEPS}, or empty for the model's default, got {self.steps!r}")
        if self.guidance is not None and (not _is_number(self.guidance) or not 0.0 <= self.guidance <= MAX_GUIDANCE):
            bad("guidance", f"guidance must be between 0 and {MAX_GUIDANCE:g}, or empty for the model's default, got {self.guidance!r}")
        if self.shift is not None and (not _is_number(self.shift) or not 0.0 < self.shift <= MAX_SHIFT):
            bad("shift", f"shift must be above 0 and at most {MAX_SHIFT:g}, or empty for the model's default, got {self.shift!r}")
        if self.bpm is not None and (not _is_number(self.bpm) or not MIN_BPM <= self.bpm <= MAX_BPM):
            bad("bpm", f"bpm must be between {MIN_BPM:g} and {MAX_BPM:g}, or empty to let the music choose, got {self.bpm!r}")
        if self.key is not None:
            try:
                normalize_key(self.key) if isinstance(self.key, str) else normalize_key(repr(self.key))
            except ValueError as exc:
                bad("key", str(exc))
        if self.time_signature is not None and self.time_signature not in TIME_SIGNATURES:
            bad("time_signature", f"time_signature must be one of {', '.join(TIME_SIGNATURES)}, got {self.time_signature!r}")
        if self.task not in TASKS:
            bad("task", f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        elif self.task in SOURCE_TASKS:
            if not isinstance(self.source_audio, str) or not self.source_audio:
                bad("source_audio", f"the {self.task} task needs source audio to work from")
        elif self.source_audio is not None:
            bad("source_audio", f"source_audio is only used by the {_words(SOURCE_TASKS)} tasks; remove it or set the task")
        track_list = ", ".join(TRACK_NAMES)
        # A stems split is "extract" with stems and tracks (one extract per track), so no track.
        split = self.task == "extract" and self.stems is True and bool(self.tracks)
        if self.track is not None:
            if self.track not in TRACK_NAMES:
                bad("track", f"track must be one of {track_list}, got {self.track!r}")
            elif self.task not in TRACK_TASKS:
                bad("track", f"track is only used by the {_words(TRACK_TASKS)} tasks; remove it or set the task")
        elif self.task in TRACK_TASKS and not split:
            verb = "take out" if self.task == "extract" else "add"
            bad("track", f"{self.task} needs track, the instrument to {verb}: one of {track_list}")
        if self.tracks is not None:
            wrong = [name for name in self.tracks if name not in TRACK_NAMES] if isinstance(self.tracks, list) else [self.tracks]
            if not isinstance(self.tracks, list):
                bad("tracks", f"tracks must be a list of track names from {track_list}, got {self.tracks!r}")
            elif wrong:
                bad("tracks", f"track must be one of {track_list}, got {wrong[0]!r}")
            elif not self.tracks:
                bad("tracks", f"tracks must name at least one of {track_list}, or be empty (null)")
            elif len(set(self.tracks)) != len(self.tracks):
                twice = next(name for name in self.tracks if self.tracks.count(name) > 1)
                bad("tracks", f"tracks names {twice!r} twice; name each track once")
            elif self.task != "complete" and self.stems is not True:
                bad("tracks", "tracks is only used by the complete task and by stems; remove it, set the task to complete or turn stems on")
        elif self.task == "complete":
            bad("tracks", f"complete needs tracks, the instruments to add, from {track_list}")
        if self.reference_audio is not None:
            if not self.reference_audio:
                bad("reference_audio", "reference_audio must name the reference clip, or be empty (null)")
            elif self.task not in REFERENCE_TASKS:
                bad("reference_audio", f"reference_audio is only used by the {_words(REFERENCE_TASKS)} tasks; remove it for {self.task}")
        if not isinstance(self.stems, bool):
            bad("stems", f"stems must be true or false, got {self.stems!r}")
        start, end = self.repaint_start, self.repaint_end
        if self.task == "repaint":
            if not _is_number(start) or not _is_number(end) or not 0 <= start < end:
                bad("repaint_start", f"repaint needs repaint_start and repaint_end in seconds with 0 <= start < end, got {start!r} and {end!r}")
        elif self.task == "lego":  # optional: both empty is the whole source
            if (start is not None or end is not None) and (not _is_number(start) or not _is_number(end) or not 0 <= start < end):
                bad("repaint_start", f"lego's range needs repaint_start and repaint_end in seconds with 0 <= start < end, or both empty for the whole source, got {start!r} and {end!r}")
        elif start is not None or end is not None:
            bad("repaint_start", "repaint_start and repaint_end are only used by the repaint and lego tasks")
        if not _is_number(self.cover_strength) or not 0.0 <= self.cover_strength <= 1.0:
            bad("cover_strength", f"cover_strength must be between 0 and 1, got {self.cover_strength!r}")
        if self.output_format not in OUTPUT_FORMATS:
            bad("output_format", f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.output_format!r}")
        if self.sample_rate not in SAMPLE_RATES:
            bad("sample_rate", f"sample_rate must be 44100 or 48000, got {self.sample_rate!r}")
        if self.bit_depth not in BIT_DEPTHS:
            bad("bit_depth", f"bit_depth must be 16 or 24, got {self.bit_depth!r}")
        if self.file_name is not None and (
            not isinstance(self.file_name, str)
            or not _FILE_NAME_PATTERN.fullmatch(self.file_name)
            or ".." in self.file_name
        ):
            bad("file_name", f"file_name must be a plain file name (letters, digits, space, _-.(), no folders), got {self.file_name!r}")
        if not isinstance(self.loop, bool):
            bad("loop", f"loop must be true or false, got {self.loop!r}")
        elif self.loop and self.task not in LOOP_TASKS:
            bad("loop", f"loop works with the {' and '.join(LOOP_TASKS)} tasks; turn loop off for {self.task}")
        if self.loop_bars is not None:
            if not _is_int(self.loop_bars) or not 1 <= self.loop_bars <= MAX_LOOP_BARS:
                bad("loop_bars", f"loop_bars must be a whole number from 1 to {MAX_LOOP_BARS}, or empty to fit the duration, got {self.loop_bars!r}")
            elif self.loop is not True:
                bad("loop_bars", "loop_bars is only used by a loop; set loop to true or remove loop_bars")
            elif _is_number(self.bpm) and MIN_BPM <= self.bpm <= MAX_BPM:
                bar_s = beats_per_bar(self.time_signature if self.time_signature in TIME_SIGNATURES else None) * 60.0 / self.bpm
                if (self.loop_bars + 1) * bar_s > MAX_DURATION_S:
                    bad("loop_bars", f"{self.loop_bars} bars at {self.bpm:g} BPM (plus one bar to fold over the seam) "
                                     f"last more than {MAX_DURATION_S:g} seconds; ask for fewer bars")
        if not _is_int(self.intro_bars) or not 0 <= self.intro_bars <= MAX_INTRO_BARS:
            bad("intro_bars", f"intro_bars must be a whole number from 0 (no intro) to {MAX_INTRO_BARS}, got {self.intro_bars!r}")
        elif self.intro_bars and self.loop is not True:
            bad("intro_bars", "intro_bars is an intro before a loop; set loop to true or set intro_bars to 0")
        if isinstance(self.loudness, str):
            if self.loudness.strip().lower() not in LOUDNESS_PRESETS:
                bad("loudness", f"loudness must be {', '.join(LOUDNESS_PRESETS)} or a target in LUFS such as -18, got {self.loudness!r}")
        elif self.loudness is not None and (not _is_number(self.loudness)
                                            or not MIN_LOUDNESS_LUFS <= self.loudness <= MAX_LOUDNESS_LUFS):
            bad("loudness", f"loudness must be a preset ({', '.join(LOUDNESS_PRESETS)}) or between "
                            f"{MIN_LOUDNESS_LUFS:g} and {MAX_LOUDNESS_LUFS:g} LUFS, got {self.loudness!r}")
        if not _is_number(self.true_peak_ceiling_db) or not MIN_TRUE_PEAK_DB <= self.true_peak_ceiling_db <= MAX_TRUE_PEAK_DB:
            bad("true_peak_ceiling_db", f"true_peak_ceiling_db must be between {MIN_TRUE_PEAK_DB:g} and {MAX_TRUE_PEAK_DB:g} dBTP "
                                        f"(-1 suits every platform), got {self.true_peak_ceiling_db!r}")
        if self.intensity is not None and (not _is_number(self.intensity) or not 0.0 <= self.intensity <= 1.0):
            bad("intensity", f"intensity must be between 0 (sparsest) and 1 (fullest), or empty for the natural arrangement, got {self.intensity!r}")
        if self.lineage is not None:
            wrong = lineage_problems(self.lineage, [f.name for f in dataclasses.fields(self)])
            if wrong:
                bad("lineage", "; ".join(wrong))
        if self.style is not None and (not isinstance(self.style, str) or not _STYLE_NAME_PATTERN.fullmatch(self.style)):
            bad("style", f"style must be the name of an installed style pack (lowercase letters, digits, - or _), got {self.style!r}")
        if not _is_number(self.style_scale) or not 0.0 <= self.style_scale <= MAX_STYLE_SCALE:
            bad("style_scale", f"style_scale must be between 0 and {MAX_STYLE_SCALE:g}, got {self.style_scale!r}")
        elif self.style is None and self.style_scale != 1.0:
            bad("style_scale", "style_scale is only used with a style pack; set style or leave style_scale at 1")
        return _with_text_problems(self, found)

    def validated(self) -> "GenerationRequest":
        """This request with its key normalized; raises InvalidRequest listing every problem."""
        found = self.problems()
        if found:
            raise InvalidRequest(found)
        changes: dict[str, Any] = {}
        if self.key is not None:
            changes["key"] = normalize_key(self.key)
        if isinstance(self.loudness, str):
            changes["loudness"] = self.loudness.strip().lower()
        if self.lineage is not None:
            changes["lineage"] = normalized_lineage(self.lineage)
        return dataclasses.replace(self, **changes) if changes else self

    # -- JSON ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> "GenerationRequest":
        """Build and validate a request from JSON-like data. Unknown fields are an error."""
        if not isinstance(data, dict):
            raise InvalidRequest([FieldProblem("request", "the request must be a JSON object")])
        known = {f.name: f for f in dataclasses.fields(cls)}
        found: list[FieldProblem] = []
        for name in data:
            if name not in known:
                found.append(FieldProblem(str(name), f"unknown field {name!r}; known fields are {', '.join(known)}"))
        if "prompt" not in data:
            found.append(FieldProblem("prompt", "prompt is required"))
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            value = whole_number_as_int(value) if int in _FIELD_TYPES[name] else value
            problem = _type_problem(name, value)
            if problem:
                found.append(FieldProblem(name, problem))
            else:
                kwargs[name] = value
        if found:
            raise InvalidRequest(found)
        return cls(**kwargs).validated()

    @classmethod
    def from_json(cls, text: str) -> "GenerationRequest":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequest([FieldProblem("request", f"the request is not valid JSON: {exc}")]) from None
        return cls.from_dict(data)


# A dynamic-music set's options (acestep-dcc set, POST /v1/sets, both hosts' dialogs).
MAX_SET_INTENSITIES = 8
MAX_SET_STINGERS = 8


def set_option_problems(intensities: Any, stingers: Any) -> list[FieldProblem]:
    """What is wrong with a set's intensity and stinger counts, as field sentences."""
    found = []
    if not _is_int(intensities) or not 1 <= intensities <= MAX_SET_INTENSITIES:
        found.append(FieldProblem("intensities", f"intensities must be a whole number from 1 to {MAX_SET_INTENSITIES}, got {intensities!r}"))
    if not _is_int(stingers) or not 0 <= stingers <= MAX_SET_STINGERS:
        found.append(FieldProblem("stingers", f"stingers must be a whole number from 0 to {MAX_SET_STINGERS}, got {stingers!r}"))
    return found

# JSON types each field accepts; validation of ranges happens in problems().
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "lyrics": (str,),
    "duration": (int, float),
    "seed": (int, type(None)),
    "candidates": (int,),
    "steps": (int, type(None)),
    "guidance": (int, float, type(None)),
    "shift": (int, float, type(None)),
    "bpm": (int, float, type(None)),
    "key": (str, type(None)),
    "time_signature": (str, type(None)),
    "task": (str,),
    "source_audio": (str, type(None)),
    "repaint_start": (int, float, type(None)),
    "repaint_end": (int, float, type(None)),
    "cover_strength": (int, float),
    "output_format": (str,),
    "sample_rate": (int,),
    "bit_depth": (int,),
    "file_name": (str, type(None)),
    "loop": (bool,),
    "loop_bars": (int, type(None)),
    "intro_bars": (int,),
    "loudness": (str, int, float, type(None)),
    "true_peak_ceiling_db": (int, float),
    "intensity": (int, float, type(None)),
    "track": (str, type(None)),
    "tracks": (list, type(None)),
    "reference_audio": (str, type(None)),
    "stems": (bool,),
    "style": (str, type(None)),
    "style_scale": (int, float),
    "lineage": (dict, type(None)),
}

_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false", type(None): "empty (null)",
               list: "a list", dict: "an object"}


def _type_problem(name: str, value: Any) -> str | None:
    allowed = _FIELD_TYPES[name]
    # bool is an int in Python, but only a bool field takes true/false.
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        words = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in allowed))
        return f"{name} must be {words}, got {type(value).__name__} {value!r}"
    return None


# Text fields that must be real Unicode. source_audio is left out: for the CLI it is a
# file path, and a path may hold any bytes.
_TEXT_FIELDS = ("prompt", "lyrics", "key", "time_signature", "task", "output_format", "file_name", "loudness", "track", "style")


def text_problem(name: str, value: Any) -> str | None:
    """A sentence when `value` is a str holding a lone surrogate, which is not text: the
    model's tokenizer, SQLite and every file format refuse it. JSON can carry one
    ("\\ud800"), and the CLI gets one for each byte of argv that is not UTF-8 (Python
    decodes argv with surrogateescape, to U+DC80..U+DCFF)."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"{name} is not valid UTF-8 text (character {exc.start + 1} is a lone surrogate, "
                f"{value[exc.start]!r}); type it again, or save it as UTF-8")
    return None


def _with_text_problems(request: GenerationRequest, found: list[FieldProblem]) -> list[FieldProblem]:
    """`found` with a field's text problem in place of whatever else it had (one per field)."""
    text = {name: FieldProblem(name, message) for name in _TEXT_FIELDS
            if (message := text_problem(name, getattr(request, name))) is not None}
    if not text:
        return found
    merged = {p.field: text.get(p.field, p) for p in found} | text
    order = {f.name: k for k, f in enumerate(dataclasses.fields(GenerationRequest))}
    return sorted(merged.values(), key=lambda p: order.get(p.field, len(order)))


def _words(names: tuple[str, ...]) -> str:
    """('a', 'b', 'c') -> 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def whole_number_as_int(value: Any) -> Any:
    """2.0 -> 2: JSON (and JSON Schema's "integer") does not tell 2.0 from 2, so neither
    do whole-number fields. Anything else is returned as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
