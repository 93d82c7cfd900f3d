"""Tempo and key fixed before generating, so lengths never hang on a measurement.

    plan = plan_tempo_and_key(GenerationRequest(prompt="boss battle, rock"))
    plan.bpm, plan.bpm_from   # 155.0, "prompt (mood and scene)"

The request's own bpm, key and time signature win; then what the prompt says (an
explicit "140 bpm", tempo words, the moods', scenes' and styles' ranges in
acestep_core.keywords; a named key, "minor key", or the moods' and scenes' leans before
the styles': "victory fanfare" is major; a meter word: "waltz" 3/4, "jig" or "6/8" 6/8);
then the style's habits (4/4 when nothing names a meter). A tonic that nothing names comes from a checksum
of the prompt, so the same prompt keeps its key and different prompts do not all sit in
one key. Every backend gets the plan as the request's bpm, key and time signature
(ACE-Step as its bpm, keyscale and timesignature conditions); what was measured afterwards is only a check (tempo_check).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

from acestep_core.keywords import FALLBACK_STYLE_ID, PromptTags, parse_prompt
from acestep_core.request import NOTE_NAMES, GenerationRequest, normalize_key

# Tasks that make music from nothing: a task on a source file keeps the source's tempo
# and key, which nothing here knows before the model hears it.
PLANNED_TASKS = ("text2music",)
# A measured tempo within this fraction of the plan (or of its half or double: beat
# trackers often lock to the other octave) agrees with it.
TEMPO_AGREEMENT = 0.04
DEFAULT_TIME_SIGNATURE = "4/4"


@dataclass(frozen=True)
class TempoKeyPlan:
    bpm: float
    bpm_from: str
    key: str
    key_from: str
    time_signature: str = DEFAULT_TIME_SIGNATURE
    time_signature_from: str = "default"

    def applied(self, request: GenerationRequest) -> GenerationRequest:
        # The default meter stays unsaid (None), as it was asked: backends read None as 4/4.
        meter = request.time_signature if self.time_signature_from == "default" else self.time_signature
        return replace(request, bpm=self.bpm, key=self.key, time_signature=meter)

    def to_dict(self) -> dict:
        return {"bpm": self.bpm, "bpm_from": self.bpm_from, "key": self.key, "key_from": self.key_from,
                "time_signature": self.time_signature, "time_signature_from": self.time_signature_from}


def seeded_bpm(bpm_range: tuple[int, int], seed: int) -> float:
    """A whole bpm in the middle half of the range, chosen by the seed: takes of one prompt
    made with different seeds need not all sit on the range's midpoint."""
    low, high = bpm_range
    first, last = math.ceil(low + (high - low) / 4), math.floor(high - (high - low) / 4)
    if last <= first:
        return float(round((low + high) / 2))
    return float(first + zlib.crc32(f"tempo/{int(seed)}".encode()) % (last - first + 1))


def plan_tempo_and_key(request: GenerationRequest, tags: PromptTags | None = None,
                       seed: int | None = None) -> TempoKeyPlan:
    """The plan for a request. With `seed` (the first candidate's), a tempo the prompt only
    implies (a range, not "120 bpm") is chosen inside the range by the seed."""
    # The style table is the sketch's, the one place the styles' habits are written down.
    from acestep_core.backends.sketch.styles import STYLES

    tags = tags if tags is not None else parse_prompt(request.prompt)
    style = STYLES[tags.style_id if tags.style_id in STYLES else FALLBACK_STYLE_ID]
    if request.bpm is not None:
        bpm, bpm_from = float(request.bpm), "request"
    elif tags.bpm is not None:
        bpm, bpm_from = float(tags.bpm), f"prompt ({tags.bpm_from})"
        if seed is not None and tags.bpm_range is not None:
            bpm = seeded_bpm(tags.bpm_range, seed)
    else:
        bpm, bpm_from = float(style.default_bpm), f"style default ({style.style_id})"

    if request.key:
        key, key_from = normalize_key(request.key), "request"
    elif tags.key:
        key, key_from = tags.key, "prompt (named key)"
    else:
        minor = (tags.mode or style.default_mode) == "minor"
        checksum = zlib.crc32(" ".join(request.prompt.lower().split()).encode("utf-8"))
        tonic = style.tonics[checksum % len(style.tonics)]
        key = f"{NOTE_NAMES[tonic]} {'minor' if minor else 'major'}"
        key_from = "prompt (mode words)" if tags.mode else f"style default ({style.style_id})"

    if request.time_signature:
        meter, meter_from = request.time_signature, "request"
    elif tags.time_signature:
        meter, meter_from = tags.time_signature, f"prompt ({tags.meter_words[0]})"
    else:
        meter, meter_from = DEFAULT_TIME_SIGNATURE, "default"
    return TempoKeyPlan(bpm=bpm, bpm_from=bpm_from, key=key, key_from=key_from,
                        time_signature=meter, time_signature_from=meter_from)


def planned_request(request: GenerationRequest, seed: int | None = None
                    ) -> tuple[GenerationRequest, TempoKeyPlan | None]:
    """The request as the backend gets it (bpm and key filled in), and the plan (None: not planned)."""
    if request.task not in PLANNED_TASKS:
        return request, None
    plan = plan_tempo_and_key(request, seed=seed)
    return plan.applied(request), plan


def tempo_agrees(planned_bpm: float, measured_bpm: float) -> bool:
    """True when the measurement is the plan, or its half or double (octave errors)."""
    return any(abs(measured_bpm * factor - planned_bpm) <= TEMPO_AGREEMENT * planned_bpm for factor in (0.5, 1.0, 2.0))
