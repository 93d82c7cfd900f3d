"""One root exception with specific subclasses, so callers can catch the family.

Every message is a sentence a user can act on: what is wrong and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class AceStepError(Exception):
    """Root of every error acestep-dcc raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def to_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


class InvalidRequest(AceStepError):
    """A request with one or more bad fields; `problems` lists every one of them."""

    def __init__(self, problems: list[FieldProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems) or "invalid request")


class ModelNotFound(AceStepError):
    """No model folder where one was expected."""


class ModelIncomplete(AceStepError):
    """A model folder with files missing (an interrupted download, usually)."""


class NotAnAceStepCheckpoint(AceStepError):
    """A folder that holds some other model, not ACE-Step 1.5 in diffusers format."""


class OutputNotWritable(AceStepError):
    """The output folder cannot be created or written."""


class BackendUnavailable(AceStepError):
    """The backend cannot run here (a missing dependency, or no model configured)."""


class GenerationCancelled(AceStepError):
    """The job was cancelled; nothing was written."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class GenerationFailed(AceStepError):
    """The backend failed while generating (out of memory, for example)."""


class WorkerError(AceStepError):
    """Root of the errors the worker client raises."""


class WorkerNotRunning(WorkerError):
    """No worker answers and none could be started."""


class WorkerUnreachable(WorkerError):
    """A worker was found but did not answer in time (stopped or crashed)."""


class WorkerAuthFailed(WorkerError):
    """The worker refused our token (a stale discovery file, or a wrong token in the preferences)."""


class JobNotFound(WorkerError):
    """The worker has no job with that id."""


class WorkerRejected(WorkerError):
    """The worker refused a request (4xx); `problems` lists field-by-field sentences when it sent them."""

    def __init__(self, message: str, status_code: int = 400, problems: list[FieldProblem] | None = None):
        self.status_code = status_code
        self.problems = list(problems or [])
        super().__init__(message)


class ModelDownloadFailed(AceStepError):
    """Fetching model weights failed (offline, unreachable Hub, unknown or gated repo, disk full)."""


class LoopDoesNotFit(AceStepError, ValueError):
    """The generated audio is too short for the loop asked for (raised by audio.loops)."""
