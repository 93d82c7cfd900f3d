"""The cluster's job queue: the single worker's JobRunner interface, run on Serve replicas.

The ingress's routes (the worker's own FastAPI app) call submit, status, cancel and
recent exactly as they call JobRunner's. Every job is recorded in the head node's
SQLite store (this ingress is its one writer) before the reply, then sent at once to
the generation deployment through a Serve handle: Serve holds it until a replica is
free, so its autoscaler sees the waiting jobs as ongoing requests (autoscaling on the
queue length). Faults:

- a replica that dies mid-job (its stream raises): the job is sent once more, to a
  replica Serve chooses (another, or the dead one's replacement); a second loss fails
  it with both causes;
- cancel: a queued job is taken back from Serve; a running job's stream is cancelled,
  which cancels the replica's generator and so its JobRunner job;
- an ingress restart: jobs that were running are queued again (the store survives).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

from acestep_core.jobs import (
    CANCELLED, DONE, FAILED, MODEL_LOADED, MODEL_LOADING, MODEL_UNLOADED, QUEUED, RUNNING, JobArtifact, JobStatus,
)
from acestep_core.library import index_outputs_safely
from acestep_core.request import GenerationRequest
from acestep_core.worker.limits import DEFAULT_MAX_QUEUE
from acestep_core.worker.runner import STAGE_CANCELLING, QueueFull, new_job_id
from acestep_core.worker.sets import SetOptions
from acestep_core.worker.store import JobStore, StorageProblem

log = logging.getLogger("acestep_core.cluster")

MAX_ATTEMPTS = 2  # a job whose replica dies is retried once
STAGE_WAITING = "waiting for a replica"
MAX_CAUSE_CHARS = 300


@dataclasses.dataclass
class _ClusterJob:
    status: JobStatus
    response: Any = None  # the Serve stream while the job is out
    task: asyncio.Task | None = None
    started: bool = False
    cancel_requested: bool = False
    ended: bool = False
    attempt: int = 0
    replica: dict[str, Any] = dataclasses.field(default_factory=dict)


class ClusterRunner:
    def __init__(self, store: JobStore, replicas, outputs_dir: Path, *, resolve_upload=None,
                 on_finished: Callable[[], None] | None = None, max_queue: int = DEFAULT_MAX_QUEUE,
                 prune: Callable[[set[str], set[str]], None] | None = None):
        self.store = store
        self.replicas = replicas  # the generation deployment's handle
        self.outputs_dir = Path(outputs_dir)
        self._resolve_upload = resolve_upload or (lambda upload_id: None)
        self._on_finished = on_finished or (lambda: None)
        self.max_queue = max_queue
        self._prune = prune
        self._lock = threading.Lock()
        self._jobs: dict[str, _ClusterJob] = {}  # queued and running, in submission order
        self._loop: asyncio.AbstractEventLoop | None = None
        self.model_loaded = False
        self.retries: list[dict[str, Any]] = []  # the latest replica losses, for GET /v1/cluster
        self.requeued_on_start: list[str] = []

    # -- lifecycle -------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue again what the last ingress left running or queued, and send it out."""
        self._loop = loop
        self.requeued_on_start = self.store.requeue_running()
        for job_id in self.store.queued_ids():
            status = self.store.get(job_id)
            if status is not None:
                self._send(_ClusterJob(status))

    # -- what the API calls -------------------------------------------------------------

    def submit(self, request: GenerationRequest, set_options: SetOptions | None = None,
               requested_by: str | None = None) -> JobStatus:
        with self._lock:
            if self.queue_length >= self.max_queue:
                raise QueueFull(self.max_queue)
            status = self.store.add_job(new_job_id(), request.to_dict(),
                                        None if set_options is None else set_options.to_dict(), requested_by)
            job = _ClusterJob(status)
            self._send(job)
            return self._view(job)

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return self._view(job)
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> JobStatus | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return self.store.get(job_id)
            job.cancel_requested = True
            if job.started:
                job.status.stage = STAGE_CANCELLING
                self._cancel_response(job)
                return self._view(job)
            # Never reached a replica: cancelled now, and taken back from Serve's queue.
            self._end(job, {"status": CANCELLED, "stage": CANCELLED})
            self._cancel_response(job)
        self._on_finished()
        return self.store.get(job_id)

    def recent(self, limit: int) -> list[JobStatus]:
        return [self.status(job.id) or job if not job.finished else job for job in self.store.recent(limit)]

    @property
    def queue_length(self) -> int:
        return sum(1 for job in list(self._jobs.values()) if not job.started)

    @property
    def running_job_id(self) -> str | None:
        """The oldest running job (a cluster runs many at once: GET /v1/cluster lists them)."""
        return next((job_id for job_id, job in list(self._jobs.items()) if job.started), None)

    def model_state(self) -> tuple[str, str | None]:
        if self.model_loaded:
            return MODEL_LOADED, None
        if any(job.started for job in list(self._jobs.values())):
            return MODEL_LOADING, None
        return MODEL_UNLOADED, None

    def uploads_in_use(self) -> set[str]:
        with self._lock:
            return {job.status.request[name] for job in self._jobs.values()
                    for name in ("source_audio", "reference_audio") if isinstance(job.status.request.get(name), str)}

    def running(self) -> list[dict[str, Any]]:
        """Which replica runs which job (GET /v1/cluster)."""
        with self._lock:
            return [{"job": job_id, "attempt": job.attempt, **job.replica}
                    for job_id, job in self._jobs.items() if job.started]

    # -- sending jobs out (the event loop) ------------------------------------------------

    def _send(self, job: _ClusterJob) -> None:
        assert self._loop is not None, "start() first"
        self._jobs[job.status.id] = job
        # submit runs on the loop (an async route) or on a thread: either way the driver
        # is a task on the ingress's loop.
        self._loop.call_soon_threadsafe(self._start_task, job)

    def _start_task(self, job: _ClusterJob) -> None:
        if not job.ended:
            job.task = asyncio.ensure_future(self._drive(job))

    async def _drive(self, job: _ClusterJob) -> None:
        causes: list[str] = []
        outcome: dict[str, Any] | None = None
        while outcome is None:
            job.attempt += 1
            job_dir = self.outputs_dir / job.status.id
            shutil.rmtree(job_dir, ignore_errors=True)  # a lost attempt's partial files
            try:
                outcome = await self._attempt(job, job_dir)
            except asyncio.CancelledError:
                outcome = {"status": CANCELLED, "stage": CANCELLED}
            except Exception as exc:  # noqa: BLE001 - anything from a stream is the replica's loss
                if job.cancel_requested or _is_cancellation(exc):
                    outcome = {"status": CANCELLED, "stage": CANCELLED}
                    break
                cause = f"{type(exc).__name__}: {exc}"[:MAX_CAUSE_CHARS]
                causes.append(cause)
                log.warning("job %s lost its replica %s (attempt %d): %s", job.status.id,
                            job.replica.get("replica", "?"), job.attempt, cause)
                self.retries = (self.retries + [{"job": job.status.id, "attempt": job.attempt, "cause": cause,
                                                 **job.replica}])[-20:]
                if job.attempt >= MAX_ATTEMPTS:
                    outcome = {"status": FAILED, "error": (
                        f"the cluster replica running this job stopped {len(causes)} times ({'; '.join(causes)}); "
                        "submit it again, and see the cluster's log if it keeps happening")}
                else:
                    with self._lock:
                        job.started = False
                        job.status = dataclasses.replace(job.status, status=QUEUED, stage=STAGE_WAITING,
                                                         progress=0.0, eta_seconds=None)
        if outcome["status"] != DONE:
            shutil.rmtree(self.outputs_dir / job.status.id, ignore_errors=True)
        with self._lock:
            if job.ended:  # cancelled while queued: already recorded
                return
            self._end(job, outcome)
        self._on_finished()
        if outcome["status"] == DONE:
            index_outputs_safely(outcome["outputs"], warn=log.warning)  # the head's cue library
        self._prune_files()

    async def _attempt(self, job: _ClusterJob, job_dir: Path) -> dict[str, Any]:
        payload = {"id": job.status.id, "request": job.status.request, "set_options": job.status.set_options,
                   "uploads": self._upload_bytes(job.status.request)}
        job.response = self.replicas.options(stream=True).run_job.remote(payload)
        if job.cancel_requested:
            job.response.cancel()
        final: dict[str, Any] | None = None
        async for event in job.response:
            if job.ended:
                break
            kind = event["event"]
            if kind == "started":
                self._on_started(job, event)
            elif kind == "progress":
                with self._lock:
                    job.status.progress = event["progress"]
                    job.status.eta_seconds = event["eta_seconds"]
                    if job.status.stage != STAGE_CANCELLING:
                        job.status.stage = event["stage"]
            elif kind == "file":
                _write_chunk(job_dir, event["name"], event["data"], event["first"])
            elif kind == "end":
                self.model_loaded = self.model_loaded or bool(event.get("loaded"))
                final = event["status"]
        if final is None:
            raise RuntimeError("the replica ended the job without saying how it ended")
        return _outcome(JobStatus.from_dict(final), job_dir)

    def _on_started(self, job: _ClusterJob, event: dict[str, Any]) -> None:
        with self._lock:
            if job.ended:  # cancelled while Serve was already handing it to a replica: stays cancelled
                self._cancel_response(job)
                return
            job.started = True
            job.replica = {"replica": event["replica"], "pid": event["pid"], "node": event["node"]}
            if job.status.stage != STAGE_CANCELLING:
                job.status.stage = "starting"
            job.status.status = RUNNING
        self.model_loaded = self.model_loaded or bool(event.get("loaded"))
        try:
            self.store.mark_running(job.status.id)
        except StorageProblem as exc:
            log.error("job %s started but the job database did not take it: %s", job.status.id, exc)

    def _upload_bytes(self, request: dict[str, Any]) -> dict[str, bytes]:
        """The uploads a job reads travel with it: the replica may be on another machine."""
        found = {}
        for name in ("source_audio", "reference_audio"):
            upload_id = request.get(name)
            path = self._resolve_upload(upload_id) if isinstance(upload_id, str) else None
            if path is not None:
                found[upload_id] = Path(path).read_bytes()
        return found

    def _cancel_response(self, job: _ClusterJob) -> None:
        if job.response is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(job.response.cancel)

    # -- views and records (lock held) ---------------------------------------------------

    def _view(self, job: _ClusterJob) -> JobStatus:
        if job.started:
            return dataclasses.replace(job.status, position=None)
        waiting = [job_id for job_id, other in self._jobs.items() if not other.started]
        position = waiting.index(job.status.id) if job.status.id in waiting else None
        return dataclasses.replace(job.status, position=position, eta_seconds=None)

    def _end(self, job: _ClusterJob, outcome: dict[str, Any]) -> None:
        job.ended = True
        self._jobs.pop(job.status.id, None)
        try:
            self.store.finish(job.status.id, **outcome)
        except StorageProblem as exc:
            log.error("job %s ended (%s) but the job database did not take it: %s", job.status.id,
                      outcome["status"], exc)

    def _prune_files(self) -> None:
        if self._prune is None:
            return
        with self._lock:
            jobs = set(self._jobs)
        try:
            self._prune(jobs, self.uploads_in_use())
        except Exception:  # noqa: BLE001 - an old file that cannot go must not stop the queue
            log.exception("pruning old files failed")


def _outcome(final: JobStatus, job_dir: Path) -> dict[str, Any]:
    """The replica's final status as store.finish's arguments, its paths moved to the
    head's copy of the files."""
    if final.status != DONE:
        outcome: dict[str, Any] = {"status": final.status, "stage": final.stage or final.status}
        if final.error:
            outcome["error"] = final.error
        return outcome

    def here(path: str | None) -> str | None:
        return None if path is None else str(job_dir / Path(path).name)

    outputs = [dataclasses.replace(o, path=here(o.path), sidecar_path=here(o.sidecar_path),
                                   stems={track: here(p) for track, p in o.stems.items()}) for o in final.outputs]
    artifacts = [JobArtifact(a.index, here(a.path), a.role) for a in final.artifacts]
    return {"status": DONE, "stage": DONE, "outputs": outputs, "artifacts": artifacts, "manifest": final.manifest}


def _write_chunk(job_dir: Path, name: str, data: bytes, first: bool) -> None:
    # A file name from the replica, never a path: its own job folder holds it.
    target = job_dir / Path(name).name
    job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(target, "wb" if first else "ab") as out:
        out.write(data)


def _is_cancellation(exc: Exception) -> bool:
    try:
        from ray.exceptions import TaskCancelledError
    except ImportError:
        return False
    return isinstance(exc, TaskCancelledError)

