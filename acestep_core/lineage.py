"""Where a refined cue came from: its parent file, job and seed, and what the user changed.

Standard library only. The record travels as the request's `lineage` field (the CLI, the
worker's POST /v1/jobs, both hosts) and lands in the sidecar's top-level "lineage".
acestep_core.refine builds it; this module only says what a valid one is, in sentences
and as the worker's JSON Schema (both written here, so they cannot drift apart).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_SEED = 2**32 - 1
MAX_NAME_CHARS = 255
MAX_PATH_CHARS = 4096
MAX_JOB_CHARS = 64
MAX_CANDIDATE = 1000
MAX_LINEAGE_BYTES = 64 * 1024  # a diff of long lyrics fits; a client cannot bloat every sidecar


@dataclass
class FieldChange:
    """One request field the user changed: its value in the parent and in the refinement."""

    before: Any
    after: Any


@dataclass
class Lineage:
    """`cover_strength` None: regenerated with the parent's seed and settings (the user's
    changes applied); a number: made as a cover of the parent's audio at that strength."""

    parent_file: str  # the parent's file name
    parent_seed: int | None  # the seed the parent was made with
    parent_job: str | None = None  # the worker job that made the parent, when known
    parent_path: str | None = None  # where the parent was when it was refined
    parent_candidate: int | None = None  # which take of its job (1-based)
    changed: dict[str, FieldChange] = field(default_factory=dict)
    cover_strength: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = ("parent_file", "parent_seed", "parent_job", "parent_path", "parent_candidate", "changed", "cover_strength")


def lineage_problems(value: Any, request_fields: tuple[str, ...] | list[str]) -> list[str]:
    """Sentences for what is wrong with a lineage record (a dict from JSON); [] when it is fine.
    `changed` may only name fields of the request (`request_fields`)."""
    if not isinstance(value, dict):
        return [f"lineage must be an object saying which cue this refines, or empty (null), got {_kind(value)}"]
    found = [f"lineage has an unknown field {name!r}; its fields are {', '.join(_FIELDS)}"
             for name in value if name not in _FIELDS]
    name = value.get("parent_file")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        found.append(f"lineage.parent_file must be the parent's file name (1 to {MAX_NAME_CHARS} characters)")
    for key, limit in (("parent_path", MAX_PATH_CHARS), ("parent_job", MAX_JOB_CHARS)):
        text = value.get(key)
        if text is not None and (not isinstance(text, str) or len(text) > limit):
            found.append(f"lineage.{key} must be text of at most {limit} characters, or empty (null)")
    if "parent_seed" not in value:
        found.append("lineage.parent_seed is required: the parent's seed, or null when it is not known")
    elif value["parent_seed"] is not None and not _whole_in(value["parent_seed"], 0, MAX_SEED):
        found.append(f"lineage.parent_seed must be a whole number from 0 to {MAX_SEED}, or null")
    candidate = value.get("parent_candidate")
    if candidate is not None and not _whole_in(candidate, 1, MAX_CANDIDATE):
        found.append(f"lineage.parent_candidate must be a whole number from 1 to {MAX_CANDIDATE}, or null")
    strength = value.get("cover_strength")
    if strength is not None and not (_number(strength) and 0.0 <= strength <= 1.0):
        found.append("lineage.cover_strength must be between 0 and 1, or null for a refinement that is no cover")
    changed = value.get("changed", {})
    if not isinstance(changed, dict):
        found.append("lineage.changed must be an object: request field -> {before, after}")
    else:
        for key, change in changed.items():
            if key not in request_fields:
                found.append(f"lineage.changed names {key!r}, which is no request field")
            elif not isinstance(change, dict) or set(change) != {"before", "after"}:
                found.append(f"lineage.changed.{key} must be an object with exactly 'before' and 'after'")
    if not found:
        try:  # what the sidecar writer must be able to write, and no bigger than a sidecar should carry
            size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
            return ["lineage must hold only JSON text and numbers (no NaN, no lone surrogates)"]
        if size > MAX_LINEAGE_BYTES:
            found.append(f"lineage is {size} bytes of JSON; at most {MAX_LINEAGE_BYTES} are kept")
    return found


def normalized_lineage(value: dict[str, Any]) -> dict[str, Any]:
    """A valid record with every field present and whole numbers as ints (JSON's 2.0 is 2)."""
    record = Lineage(parent_file=value["parent_file"], parent_seed=_int_or_none(value.get("parent_seed")),
                     parent_job=value.get("parent_job"), parent_path=value.get("parent_path"),
                     parent_candidate=_int_or_none(value.get("parent_candidate")),
                     cover_strength=None if value.get("cover_strength") is None else float(value["cover_strength"]))
    data = record.to_dict()
    data["changed"] = {key: {"before": change["before"], "after": change["after"]}
                       for key, change in (value.get("changed") or {}).items()}
    return data


def lineage_schema(request_fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """lineage_problems' rules as JSON Schema (the worker's OpenAPI component "Lineage")."""
    whole = lambda low, high: {"anyOf": [{"type": "integer", "minimum": low, "maximum": high},  # noqa: E731
                                         {"type": "null"}]}
    text = lambda limit: {"anyOf": [{"type": "string", "maxLength": limit}, {"type": "null"}]}  # noqa: E731
    return {
        "type": "object",
        "title": "Lineage",
        "description": "Which cue this request refines and what it changes (the sidecar's \"lineage\").",
        "required": ["parent_file", "parent_seed"],
        "additionalProperties": False,
        "properties": {
            "parent_file": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            "parent_seed": whole(0, MAX_SEED),
            "parent_job": text(MAX_JOB_CHARS),
            "parent_path": text(MAX_PATH_CHARS),
            "parent_candidate": whole(1, MAX_CANDIDATE),
            "changed": {"type": "object", "propertyNames": {"enum": list(request_fields)},
                        "additionalProperties": {"type": "object", "required": ["before", "after"],
                                                 "additionalProperties": False,
                                                 "properties": {"before": {}, "after": {}}}},
            "cover_strength": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]},
        },
    }


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _number(value: Any) -> bool:
    import math

    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def _whole_in(value: Any, low: int, high: int) -> bool:
    # JSON (and JSON Schema's "integer") does not tell 2.0 from 2.
    return _number(value) and float(value).is_integer() and low <= value <= high


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
