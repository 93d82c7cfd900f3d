"""The panel's style pack selector: the packs the worker has, as a search list.

The worker lists its packs (GET /v1/packs, each with whether its model can use it);
the list is read once per connection and again on Refresh (operators.ACESTEP_OT_refresh_packs),
so drawing never waits. Nothing here imports job tracking or placement: properties use it.
"""

from __future__ import annotations

from . import worker_link


def known_packs() -> list[dict]:
    """The connected worker's packs; [] when none is connected or it lists none."""
    return list(worker_link.link.packs or [])


def pack_names(_settings, _context, edit_text: str):
    """StringProperty search: every pack whose name holds the typed text, with why not when unusable."""
    typed = edit_text.strip().lower()
    return [(pack["name"], pack.get("description") or ("" if pack.get("usable") else "not usable here"))
            for pack in known_packs() if typed in pack["name"]]


def pack_problem(name: str) -> str | None:
    """What the panel says under a chosen pack the worker cannot use (or does not have)."""
    name = name.strip()
    if not name or worker_link.link.packs is None:
        return None  # not connected yet: the worker says it at Generate
    for pack in known_packs():
        if pack["name"] == name:
            return None if pack.get("usable") else pack.get("reason")
    return f"the worker has no style pack named {name!r}; install it with 'acestep-dcc packs install'"
