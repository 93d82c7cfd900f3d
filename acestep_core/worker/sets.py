"""Set jobs: the body of POST /v1/sets, and how a finished DynamicSet is recorded as a job.

    {"request": {GenerationRequest fields}, "intensities": 3, "bars": 16 | "fit", "stingers": 2}
    {"request": {...}, "variants": 3, "bars": 16, "stingers": 2}

"intensities" makes layers (stems that stack, acestep_core.dynamic_sets); "variants"
makes one loop per level instead (to switch between); a body gives one or the other, and
neither is 3 layers. A body from before variants existed ("intensities" only) is valid
and makes layers, which a turbo checkpoint answers with variants (the manifest says so).

The request gives the prompt, format, loudness and, optionally, tempo, key and seed; the
set decides the rest (every file is a loop of `bars` bars but the stingers, one
candidate each), so request fields that would be overruled are refused rather than
ignored. Ranges are the core's (acestep_core.dynamic_sets, acestep_core.request).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acestep_core.dynamic_sets import LAYERS, MAX_INTENSITIES, MAX_STINGERS, VARIANTS, DynamicSet
from acestep_core.errors import FieldProblem, InvalidRequest
from acestep_core.jobs import JobArtifact
from acestep_core.request import MAX_LOOP_BARS, GenerationRequest, set_option_problems, whole_number_as_int

DEFAULT_INTENSITIES = 3
DEFAULT_BARS = 16
DEFAULT_STINGERS = 2
FIT = "fit"
BODY_FIELDS = ("request", "intensities", "variants", "bars", "stingers")


@dataclass(frozen=True)
class SetOptions:
    """The set's own settings: `intensities` levels, made as `mode` ("layers" or
    "variants"). `bars` None fits the request's duration."""

    intensities: int = DEFAULT_INTENSITIES
    bars: int | None = DEFAULT_BARS
    stingers: int = DEFAULT_STINGERS
    mode: str = LAYERS

    def to_dict(self) -> dict[str, Any]:
        """As the API spells it (and JobStatus.set_options records it): bars is a number or
        "fit"; the level count is "intensities" for layers and "variants" for variants."""
        count = "intensities" if self.mode == LAYERS else "variants"
        return {count: self.intensities, "bars": FIT if self.bars is None else self.bars, "stingers": self.stingers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SetOptions":
        """From a dict to_dict wrote (the job store); not for client input."""
        bars = data.get("bars", DEFAULT_BARS)
        mode = VARIANTS if "variants" in data else LAYERS
        count = data["variants"] if mode == VARIANTS else data["intensities"]
        return cls(int(count), None if bars == FIT else int(bars), int(data["stingers"]), mode)


def parse_set_body(data: Any) -> tuple[GenerationRequest, SetOptions]:
    """The validated request and options of a POST /v1/sets body; InvalidRequest lists every problem."""
    if not isinstance(data, dict):
        raise InvalidRequest([FieldProblem("request", (
            'the body must be a JSON object: {"request": {"prompt": ...}, "intensities": 3, "bars": 16, "stingers": 2}'))])
    problems = [FieldProblem(str(name), f"unknown field {name!r}; a set takes {', '.join(BODY_FIELDS)}")
                for name in data if name not in BODY_FIELDS]
    mode = VARIANTS if "variants" in data else LAYERS
    if "variants" in data and "intensities" in data:
        problems.append(FieldProblem("variants", (
            "give intensities (layers that stack) or variants (loops to switch between), not both")))
    intensities = whole_number_as_int(data.get("variants" if mode == VARIANTS else "intensities", DEFAULT_INTENSITIES))
    stingers = whole_number_as_int(data.get("stingers", DEFAULT_STINGERS))
    problems += [FieldProblem("variants", p.message.replace("intensities", "variants"))
                 if mode == VARIANTS and p.field == "intensities" else p
                 for p in set_option_problems(intensities, stingers)]
    bars = whole_number_as_int(data.get("bars", DEFAULT_BARS))
    if isinstance(bars, str) and bars.strip().lower() == FIT:
        bars = None
    elif not _is_int(bars) or not 1 <= bars <= MAX_LOOP_BARS:
        problems.append(FieldProblem("bars", f"bars must be a whole number from 1 to {MAX_LOOP_BARS}, or \"fit\" for the whole "
                                             f"bars nearest the request's duration, got {bars!r}"))
        bars = None
    if "request" not in data:
        problems.append(FieldProblem("request", 'request is required: the generation request, for example {"prompt": "boss battle, rock"}'))
        raise InvalidRequest(problems)
    try:
        request = GenerationRequest.from_dict(data["request"])
    except InvalidRequest as exc:
        raise InvalidRequest(problems + exc.problems) from None
    problems += _overruled_fields(request)
    if not problems:
        # The base loop is this request as build_dynamic_set makes it; its rules (bars at
        # this tempo within the longest duration, for one) are checked here, before queueing.
        as_looped = dataclasses.replace(request, loop=True, loop_bars=bars)
        problems += [FieldProblem("bars" if p.field == "loop_bars" else p.field, p.message.replace("loop_bars", "bars"))
                     for p in as_looped.problems()]
    if problems:
        raise InvalidRequest(problems)
    return request, SetOptions(intensities, bars, stingers, mode)


def _overruled_fields(request: GenerationRequest) -> list[FieldProblem]:
    problems = []
    if request.task != "text2music":
        problems.append(FieldProblem("task", f"a set is made from the prompt (text2music); {request.task} is not available for sets"))
    if request.candidates != 1:
        problems.append(FieldProblem("candidates", "a set makes one file per level; leave candidates at 1 (submit the set again for another take)"))
    if request.loop_bars is not None:
        problems.append(FieldProblem("loop_bars", "give a set's length as bars beside the request, not as request.loop_bars"))
    if request.intro_bars:
        problems.append(FieldProblem("intro_bars", "a set's loops have no intro (their layers start together); "
                                                   "set intro_bars to 0"))
    if request.intensity is not None:
        problems.append(FieldProblem("intensity", "a set chooses each level's intensity; leave intensity empty and set intensities instead"))
    if request.stems or request.tracks:
        problems.append(FieldProblem("stems", "a set chooses its own stems (its layers); leave stems off and tracks empty"))
    if request.reference_audio is not None:
        problems.append(FieldProblem("reference_audio", "a set takes no reference clip; leave reference_audio empty (null)"))
    return problems


def set_job_record(result: DynamicSet) -> dict[str, Any]:
    """What the job store keeps for a finished set (keyword arguments of JobStore.finish):
    every cue numbered in order (base, levels, stingers) with its role in metadata["set"]
    ("layer" for a layered set's stems, "intensity" for variants), then the manifest and
    the Godot resources as artifacts."""
    levels, stingers = len(result.layers), len(result.stingers)
    roles = [{"role": "base"}]
    if result.mode == LAYERS:
        roles += [{"role": "layer", "level": k, "levels": levels, "parts": list(cue.metadata.get("parts", []))}
                  for k, cue in enumerate(result.layers, start=1)]
    else:
        roles += [{"role": "intensity", "level": k, "levels": levels, "intensity": cue.metadata["request"]["intensity"]}
                  for k, cue in enumerate(result.layers, start=1)]
    roles += [{"role": "stinger", "number": k, "stingers": stingers} for k in range(1, stingers + 1)]
    cues = [result.base, *result.layers, *result.stingers]
    outputs = [dataclasses.replace(cue, index=n, metadata={**cue.metadata, "set": role})
               for n, (cue, role) in enumerate(zip(cues, roles))]
    artifacts = [JobArtifact(len(outputs), str(Path(result.manifest_path).resolve()), "manifest")]
    if result.godot_resource_path is not None:
        artifacts.append(JobArtifact(len(artifacts) + len(outputs), str(Path(result.godot_resource_path).resolve()),
                                     "godot_resource"))
    if result.godot_layers_path is not None:
        artifacts.append(JobArtifact(len(artifacts) + len(outputs), str(Path(result.godot_layers_path).resolve()),
                                     "godot_layers"))
    return {"outputs": outputs, "artifacts": artifacts, "manifest": result.manifest}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

