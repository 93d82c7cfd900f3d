"""Refine a chosen cue: its request again, with the user's changes, and where it came from.

Standard library only (both hosts use it). The steps, for the CLI and both hosts:

1. `read_parent(FILE)` reads the cue's sidecar (FILE.json): the request it was made
   with, its own seed (the take's, not its job's first), its take number;
2. `refine_request(parent, changes, cover_strength)` applies the user's changes over
   that request, so every field the user left alone (seed included) stays the parent's,
   and attaches the lineage: parent file, job and seed, and a field-by-field diff;
3. the request is generated like any other; the sidecar keeps the lineage at its top.

Without a cover, a refinement is the parent's request made again with its seed: same
seed and settings, so only what the user changed differs (the sketch renders the
parent again note for note when nothing changed). With `cover_strength`, the new cue
is a cover of the parent's audio (ACE-Step's cover task) at that strength; a backend
that cannot cover (the sketch) refuses it with a sentence, rather than quietly doing
something else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acestep_core.errors import AceStepError, FieldProblem, InvalidRequest
from acestep_core.lineage import Lineage
from acestep_core.output_names import sidecar_path
from acestep_core.request import GenerationRequest

COVER_TASK = "cover"
# Fields a refinement never copies from the parent: its own file name, and its lineage
# (the new one says the whole story: its parent's file names the grandparent's).
_NOT_INHERITED = {"file_name": None, "lineage": None}


class ParentUnreadable(AceStepError):
    """The cue to refine has no sidecar, or one that does not say how it was made."""


@dataclass
class ParentCue:
    """A cue as made: its file, the request with its own seed, and where it came from."""

    path: Path
    request: GenerationRequest  # as the parent was asked, seed = the parent's own
    seed: int | None
    job: str | None = None
    candidate: int | None = None
    lineage: dict | None = None  # the parent's own lineage, when it was a refinement too


def read_parent(path: str | Path, job: str | None = None) -> ParentCue:
    """The cue at `path` and how it was made, from its sidecar `path`.json.
    Raises ParentUnreadable (one sentence) when the sidecar is missing or unreadable."""
    path = Path(path).expanduser()
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        what = "" if path.is_file() else f" (and {path.name} itself is not there either)"
        raise ParentUnreadable(f"{path.name} has no sidecar {sidecar.name}{what}, so how it was made is not known; "
                               "refine a cue acestep-dcc made, with its .json beside it")
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ParentUnreadable(f"the sidecar {sidecar.name} cannot be read ({_reason(exc)}); refine a cue whose "
                               ".json acestep-dcc wrote, or make the cue again") from None
    return parent_from_metadata(metadata, path.resolve(), job)


def parent_from_metadata(metadata: Any, path: str | Path, job: str | None = None) -> ParentCue:
    """parent_cue from a sidecar's contents (a host that has the worker's output metadata)."""
    name = Path(path).name
    request_data = metadata.get("request") if isinstance(metadata, dict) else None
    if not isinstance(request_data, dict):
        raise ParentUnreadable(f"the sidecar of {name} does not record the request it was made with; refine a cue "
                               "acestep-dcc made (its .json has a \"request\")")
    seed = metadata.get("seed")
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else request_data.get("seed")
    try:
        request = GenerationRequest.from_dict({**request_data, **_NOT_INHERITED, "seed": seed})
    except InvalidRequest as exc:
        raise ParentUnreadable(f"the request in the sidecar of {name} is not one this version can make again "
                               f"({exc}); make the cue again instead") from None
    candidate = metadata.get("candidate")
    job = job or (metadata.get("job") if isinstance(metadata.get("job"), str) else None)
    return ParentCue(path=Path(path), request=request, seed=request.seed, job=job,
                     candidate=candidate if isinstance(candidate, int) and not isinstance(candidate, bool) else None,
                     lineage=metadata.get("lineage") if isinstance(metadata.get("lineage"), dict) else None)


def refine_request(parent: ParentCue, changes: dict[str, Any] | None = None, cover_strength: float | None = None,
                   cover_source: str | None = None) -> GenerationRequest:
    """The parent's request with `changes` (request fields) applied and the lineage attached.

    `cover_strength` (0-1) makes a cover of the parent: `cover_source` is what the
    backend reads it from (the parent's path for the CLI, an upload id for a worker;
    default: the parent's path). Raises InvalidRequest naming every bad change.
    """
    changes = dict(changes or {})
    unknown = [name for name in changes if name not in _REQUEST_FIELDS or name == "lineage"]
    if unknown:
        raise InvalidRequest([FieldProblem(name, f"{name!r} is not a request field a refinement can change; "
                                                 f"change any of {', '.join(_CHANGEABLE)}") for name in unknown])
    data = {**parent.request.to_dict(), **changes, "lineage": None}
    if cover_strength is not None:
        if isinstance(cover_strength, bool) or not isinstance(cover_strength, (int, float)) \
                or not 0.0 <= cover_strength <= 1.0:
            raise InvalidRequest([FieldProblem("cover_strength", (
                f"the cover strength must be between 0 (loosely after the parent) and 1 (closely), got "
                f"{cover_strength!r}; or leave it out to regenerate with the parent's seed"))])
        data.update(task=COVER_TASK, cover_strength=float(cover_strength),
                    source_audio=cover_source or str(parent.path),
                    repaint_start=None, repaint_end=None, track=None)
    request = GenerationRequest.from_dict(data)
    lineage = Lineage(parent_file=parent.path.name, parent_seed=parent.seed, parent_job=parent.job,
                      parent_path=str(parent.path), parent_candidate=parent.candidate,
                      cover_strength=None if cover_strength is None else float(cover_strength))
    record = lineage.to_dict()
    record["changed"] = request_changes(parent.request, request)
    return dataclasses.replace(request, lineage=record).validated()


def request_changes(before: GenerationRequest, after: GenerationRequest) -> dict[str, dict[str, Any]]:
    """{field: {"before": x, "after": y}} for every request field that differs (not the lineage)."""
    old, new = before.to_dict(), after.to_dict()
    return {name: {"before": old[name], "after": new[name]} for name in _REQUEST_FIELDS
            if name != "lineage" and old[name] != new[name]}


def lineage_lines(lineage: Any) -> list[str]:
    """What a host shows: ["Refined from boss-2.wav (seed 7, take 2, job 1a2b3c4d)",
    "Changed: prompt 'a' -> 'b'; bpm 120 -> 140"], or [] for a cue that is no refinement."""
    if not isinstance(lineage, dict) or not isinstance(lineage.get("parent_file"), str):
        return []
    facts = []
    if lineage.get("parent_seed") is not None:
        facts.append(f"seed {lineage['parent_seed']}")
    if lineage.get("parent_candidate"):
        facts.append(f"take {lineage['parent_candidate']}")
    if lineage.get("parent_job"):
        facts.append(f"job {str(lineage['parent_job'])[:8]}")
    how = "Cover" if lineage.get("cover_strength") is not None else "Refined"
    first = f"{how} of {lineage['parent_file']}" if how == "Cover" else f"Refined from {lineage['parent_file']}"
    if lineage.get("cover_strength") is not None:
        facts.append(f"strength {lineage['cover_strength']:g}")
    lines = [first + (f" ({', '.join(facts)})" if facts else "")]
    changed = lineage.get("changed") if isinstance(lineage.get("changed"), dict) else {}
    order = {name: k for k, name in enumerate(_REQUEST_FIELDS)}  # the request's order, however it was stored
    shown = [f"{name} {_shown(change.get('before'))} -> {_shown(change.get('after'))}"
             for name, change in sorted(changed.items(), key=lambda item: order.get(item[0], len(order)))
             if isinstance(change, dict) and name not in ("source_audio", "task", "cover_strength")]
    if shown:
        lines.append("Changed: " + "; ".join(shown))
    else:
        lines.append("Changed: nothing (the same request and seed)" if how == "Refined" else "Changed: nothing else")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:59] + "…")
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, ValueError):
        return f"it is not valid JSON: {exc}"
    return getattr(exc, "strerror", None) or str(exc)


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(GenerationRequest))
_CHANGEABLE = tuple(name for name in _REQUEST_FIELDS if name != "lineage")
