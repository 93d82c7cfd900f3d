"""Job status and outputs as they cross the worker boundary. Standard library only,
JSON-able, defined once and used by the worker, the client and both hosts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
JOB_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINAL_STATES = (DONE, FAILED, CANCELLED)

INTERRUPTED_MESSAGE = "interrupted: the worker stopped"


@dataclass
class CueOutput:
    """One written file. `path` is absolute on the worker's machine; `index` is the
    candidate's 0-based position, which is also n in GET /v1/jobs/{id}/files/{n}."""

    index: int
    path: str
    seed: int
    duration: float
    sample_rate: int
    sidecar_path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "CueOutput":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class JobStatus:
    id: str
    status: str
    progress: float = 0.0
    stage: str = ""
    position: int | None = None  # place in the queue while queued (0 = next)
    eta_seconds: float | None = None
    error: str | None = None
    outputs: list[CueOutput] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobStatus":
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["outputs"] = [CueOutput.from_dict(o) for o in data.get("outputs") or []]
        return cls(**values)
