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

# The worker's model, as GET /v1/health's "model_state" says it ("model_error" says why
# when it failed). A worker started with --preload answers at once with "loading".
MODEL_UNLOADED = "unloaded"
MODEL_LOADING = "loading"
MODEL_LOADED = "loaded"
MODEL_FAILED = "failed"
MODEL_STATES = (MODEL_UNLOADED, MODEL_LOADING, MODEL_LOADED, MODEL_FAILED)

# What a job makes: one request's candidates (POST /v1/jobs), or a dynamic-music set
# (POST /v1/sets: base loop, intensity loops, stingers, manifest, Godot resource).
CUE_JOB = "cue"
SET_JOB = "set"
# metadata["set"]["role"] of a set job's outputs.
SET_ROLES = ("base", "layer", "intensity", "stinger")  # layer: a layered set's stem; intensity: a variant


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
    # Sentences for what finishing could not do as asked (a missed loudness target, ...),
    # the same as the sidecar's "warnings": hosts show them beside the cue.
    warnings: list[str] = field(default_factory=list)
    # Stem files written beside the mix (request.stems): track name -> absolute path.
    stems: dict[str, str] = field(default_factory=dict)
    # The same stems as a worker serves them: [{"track": "drums", "index": N, "file":
    # "boss.drums.wav"}], N in GET /v1/jobs/{id}/files/{N} (numbered after every output
    # and artifact of the job). Empty outside a worker.
    stem_files: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> "CueOutput":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def set_role(self) -> str | None:
        """'base', 'layer', 'intensity' or 'stinger' for an output of a set job, else None.
        A set output's metadata["set"] also says its place: {"role": "layer", "level": 2,
        "levels": 3, "parts": ["bass"]} (a layered set: the layers stack), {"role":
        "intensity", "level": 2, "levels": 3, "intensity": 0.5} (a set of variants: one
        plays at a time) or {"role": "stinger", "number": 1, "stingers": 2}."""
        role = (self.metadata.get("set") or {}).get("role")
        return role if role in SET_ROLES else None


@dataclass
class JobArtifact:
    """A file a job wrote that is not a cue: a set's manifest (role "manifest") or its
    Godot resource ("godot_resource"). `index` continues the outputs' numbering, so it is
    also n in GET /v1/jobs/{id}/files/{n}."""

    index: int
    path: str
    role: str

    @classmethod
    def from_dict(cls, data: dict) -> "JobArtifact":
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
    # Added for sets; a cue job keeps these defaults.
    kind: str = CUE_JOB
    # {"intensities" (layers) or "variants", "bars" (a number or "fit"), "stingers"}
    set_options: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None  # a done set's manifest, as in its JSON file
    artifacts: list[JobArtifact] = field(default_factory=list)
    # The user whose token submitted the job (acestep-dcc tokens add NAME); None: the
    # worker's own discovery-file token.
    requested_by: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    def artifact(self, role: str) -> JobArtifact | None:
        return next((a for a in self.artifacts if a.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobStatus":
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["outputs"] = [CueOutput.from_dict(o) for o in data.get("outputs") or []]
        values["artifacts"] = [JobArtifact.from_dict(a) for a in data.get("artifacts") or []]
        return cls(**values)
