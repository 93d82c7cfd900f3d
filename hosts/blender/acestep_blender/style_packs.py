"""The panel's style pack selector: the packs the worker has, as a search list.

The worker lists its packs (GET /v1/packs, each with whether its model can use it);
the list is read once per connection and again on Refresh, so drawing never waits.
"""

from __future__ import annotations

import bpy

from acestep_core.errors import WorkerError

from . import job_tracking, worker_link
from .preferences import addon_settings


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


class ACESTEP_OT_refresh_packs(bpy.types.Operator):
    """Ask the worker again which style packs it has (after 'acestep-dcc packs install')"""

    bl_idname = "acestep.refresh_packs"
    bl_label = "Refresh Style Packs"
    bl_options = {"REGISTER"}

    def execute(self, context):
        link = worker_link.link
        link.connect(addon_settings(context))
        try:
            link.refresh_packs()
        except WorkerError as exc:
            self.report({"WARNING"}, str(exc))
        job_tracking.sync_ui(context)
        self.report({"INFO"}, f"{len(known_packs())} style pack(s) on the worker")
        return {"FINISHED"}
