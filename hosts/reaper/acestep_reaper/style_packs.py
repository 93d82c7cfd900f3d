"""The Generate dialog's style pack field: shown when the worker has packs its model can use.

The worker lists them (GET /v1/packs); the field takes NAME or NAME:STRENGTH, the same
as `acestep-dcc generate --style`.
"""

from __future__ import annotations

from acestep_core.errors import FieldProblem, InvalidRequest, WorkerError
from acestep_core.packs.manifest import PackError, parse_style

from . import generation
from .settings import find_worker

MAX_NAMES_IN_CAPTION = 4


def usable_packs() -> list[str]:
    """The names of the worker's usable packs; [] when no worker answers or it has none."""
    client = find_worker(timeout=generation.PROBE_TIMEOUT)
    if client is None:
        return []
    try:
        return [pack["name"] for pack in client.packs() if pack.get("usable")]
    except WorkerError:  # a worker from before style packs, or one that stopped answering
        return []


def caption(names: list[str]) -> str:
    """No commas: REAPER splits GetUserInputs' captions on them."""
    shown = " | ".join(names[:MAX_NAMES_IN_CAPTION]) + (" | ..." if len(names) > MAX_NAMES_IN_CAPTION else "")
    return f"Style pack ({shown}; NAME:0.5 sets the strength; empty: none)"


def parse(text: str, names: list[str]) -> tuple[str | None, float]:
    """'' -> no pack; 'chip' -> ('chip', 1.0); 'chip:0.5' -> ('chip', 0.5)."""
    text = text.strip()
    if not text:
        return None, 1.0
    try:
        name, scale = parse_style(text)
    except PackError:
        raise InvalidRequest([FieldProblem("style_scale", (
            f"Style pack takes a name or name:strength with a number from 0 to 2 (chip:0.5); got {text!r}"))]) from None
    if name not in names:
        raise InvalidRequest([FieldProblem("style", (
            f"Style pack {name!r} is not one the worker can use; it has {', '.join(names)}"))])
    return name, scale
