"""The local model worker: one warm process per user that every open host shares.

`run_worker` is imported on first use, so `acestep_core.worker.discovery` (standard
library only, read by the host-side client) never pulls in FastAPI or numpy.
"""

from __future__ import annotations

__all__ = ["run_worker"]


def __getattr__(name: str):
    if name == "run_worker":
        from acestep_core.worker.serve import run_worker

        return run_worker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
