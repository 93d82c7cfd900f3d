"""The job queue: one thread runs one job at a time on the one backend, FIFO across clients.

Queued and running jobs live in memory (so a status poll never waits on SQLite or
on the model); every change of state is written to the store at once, so a restart
knows what finished, what was waiting and what was cut short.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from acestep_core.backends.base import Backend
from acestep_core.dynamic_sets import build_dynamic_set
from acestep_core.errors import AceStepError, GenerationCancelled
from acestep_core.generation import generate_cues, slug_from_prompt
from acestep_core.jobs import CANCELLED, DONE, FAILED, INTERRUPTED_MESSAGE, RUNNING, SET_JOB, JobStatus
from acestep_core.progress import GENERATING, Progress
from acestep_core.request import GenerationRequest
from acestep_core.worker.sets import SetOptions, set_job_record
from acestep_core.worker.store import JobStore

log = logging.getLogger("acestep_core.worker")

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_AUDIO_SUFFIX = re.compile(r"\.(wav|flac|ogg)$", re.IGNORECASE)
STAGE_STARTING = "starting"
STAGE_CANCELLING = "cancelling"


def new_job_id() -> str:
    return uuid.uuid4().hex


def output_stem(request: GenerationRequest) -> str:
    """The file stem the worker chooses: the client's file_name reduced to safe characters,
    else a slug of the prompt. Never a path: folders are the worker's own."""
    if request.file_name:
        stem = _AUDIO_SUFFIX.sub("", request.file_name)
        stem = re.sub(r"[^A-Za-z0-9_\-]+", "-", stem).strip("-.")[:64]
        if stem:
            return stem
    return slug_from_prompt(request.prompt)


@dataclasses.dataclass
class _RunningJob:
    status: JobStatus
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    # ETA baseline: the time and fraction when generation steps began.
    steps_began: float | None = None
    steps_began_fraction: float = 0.0
    expected_end: float | None = None


class JobRunner:
    def __init__(self, store: JobStore, backend: Backend, outputs_dir: Path, *,
                 resolve_upload=None, idle_unload_seconds: float | None = None,
                 on_finished: Callable[[], None] | None = None):
        self.store = store
        self.backend = backend
        self.outputs_dir = Path(outputs_dir)
        # upload id -> path on this machine; the worker reads no path a client names.
        self._resolve_upload = resolve_upload or (lambda upload_id: None)
        self.idle_unload_seconds = idle_unload_seconds
        self._on_finished = on_finished or (lambda: None)  # wakes long-polling status requests
        self._cond = threading.Condition()
        self._queue: collections.deque[str] = collections.deque()
        self._queued: dict[str, JobStatus] = {}
        self._running: _RunningJob | None = None
        self._stopping = False
        self._preload_requested = False
        self._last_active = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="acestep-job-runner", daemon=True)
        self.interrupted_on_start: list[str] = []

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Mark jobs cut short by the last stop as failed, requeue the ones that never began."""
        self.interrupted_on_start = self.store.mark_interrupted()
        for job_id in self.interrupted_on_start:
            _remove_unrecorded_files(self.outputs_dir / job_id)
        for job_id in self.store.queued_ids():
            status = self.store.get(job_id)
            if status is not None:
                self._queue.append(job_id)
                self._queued[job_id] = status
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the running job; a running job is cancelled and recorded as interrupted.
        Queued jobs stay queued in the store and run when the worker starts again. False
        when the job did not stop in time (a step that never checks for cancel, such as a
        model load); the next start records it as interrupted instead."""
        with self._cond:
            self._stopping = True
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def preload(self) -> None:
        """Load the model in the runner thread now instead of on the first job."""
        with self._cond:
            self._preload_requested = True
            self._cond.notify_all()

    # -- what the API calls ---------------------------------------------------------

    def submit(self, request: GenerationRequest, set_options: SetOptions | None = None) -> JobStatus:
        """Record the job (committed before the reply) and queue it; returns its status.
        With set_options the job makes a dynamic-music set from the request."""
        job_id = new_job_id()
        with self._cond:
            status = self.store.add_job(job_id, request.to_dict(), None if set_options is None else set_options.to_dict())
            self._queue.append(job_id)
            self._queued[job_id] = status
            self._cond.notify_all()
            return self._live_view(status)

    def status(self, job_id: str) -> JobStatus | None:
        with self._cond:
            if self._running is not None and self._running.status.id == job_id:
                return self._running_view(self._running)
            if job_id in self._queued:
                return self._live_view(self._queued[job_id])
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> JobStatus | None:
        """A queued job is cancelled at once and never runs; a running one stops at its next
        step (the reply says 'cancelling'). A finished job is left as it is."""
        with self._cond:
            running = self._running
            if running is not None and running.status.id == job_id:
                running.cancel.set()
                running.status.stage = STAGE_CANCELLING
                return self._running_view(running)
            if job_id in self._queued:
                self._queue.remove(job_id)
                del self._queued[job_id]
                self.store.finish(job_id, CANCELLED, stage=CANCELLED)
                cancelled_queued = True
            else:
                cancelled_queued = False
        if cancelled_queued:
            self._on_finished()
        return self.store.get(job_id)

    def recent(self, limit: int) -> list[JobStatus]:
        jobs = self.store.recent(limit)
        return [self.status(job.id) or job if not job.finished else job for job in jobs]

    @property
    def queue_length(self) -> int:
        """Jobs waiting, not counting the running one."""
        with self._cond:
            return len(self._queue)

    @property
    def running_job_id(self) -> str | None:
        with self._cond:
            return self._running.status.id if self._running else None

    # -- views (called with the lock held) ----------------------------------------

    def _live_view(self, status: JobStatus) -> JobStatus:
        position = self._queue.index(status.id) if status.id in self._queued else None
        return dataclasses.replace(status, position=position)

    def _running_view(self, running: _RunningJob) -> JobStatus:
        eta = None
        if running.expected_end is not None:
            eta = round(max(running.expected_end - time.monotonic(), 0.0), 2)
        return dataclasses.replace(running.status, position=None, eta_seconds=eta)

    # -- the runner thread ------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                job_id = self._next_job_or_idle()
                if job_id is None:
                    return
                status = dataclasses.replace(self._queued.pop(job_id), status=RUNNING,
                                             stage=STAGE_STARTING, progress=0.0)
                running = self._running = _RunningJob(status)
                self.store.mark_running(job_id)
            outcome: dict = {"status": FAILED, "error": INTERRUPTED_MESSAGE}
            try:
                outcome = self._run(running)
            finally:
                # Record the end and leave the running slot in one step, so a poll or a
                # cancel never sees a job that is both finished and still running.
                with self._cond:
                    self.store.finish(running.status.id, **outcome)
                    self._running = None
                    self._last_active = time.monotonic()
                self._on_finished()

    def _next_job_or_idle(self) -> str | None:
        """Wait (lock held) for the next job id; unload the model when idle long enough.
        None means stop."""
        while not self._stopping:
            if self._queue:
                return self._queue.popleft()
            if self._preload_requested:
                self._preload_requested = False
                self._without_lock(self.backend.load, "loading the model")
                self._last_active = time.monotonic()
                continue
            timeout = None
            if self.idle_unload_seconds is not None and self.backend.loaded:
                idle_for = time.monotonic() - self._last_active
                timeout = self.idle_unload_seconds - idle_for
                if timeout <= 0:
                    self._unload_idle_model()
                    continue
            self._cond.wait(timeout)
        return None

    def _unload_idle_model(self) -> None:
        log.info("unloading the model after %.0f s idle", self.idle_unload_seconds)
        self._without_lock(self.backend.unload, "unloading the model")

    def _without_lock(self, action, what: str) -> None:
        """Run a slow model action with the lock released, so submissions and polls never
        wait for it; a failure is logged, and the next job reports its own."""
        self._cond.release()
        try:
            action()
        except Exception:  # noqa: BLE001 - the queue must keep going
            log.exception("%s failed", what)
        finally:
            self._cond.acquire()

    def _run(self, running: _RunningJob) -> dict:
        """Run one job; returns how to record its end (keyword arguments of store.finish)."""
        job_id = running.status.id
        job_dir = self.outputs_dir / job_id
        started = time.monotonic()

        def on_progress(progress: Progress) -> None:
            self._on_progress(running, progress)

        try:
            request = self._request_for_backend(running.status.request)
            if running.status.kind == SET_JOB:
                options = SetOptions.from_dict(running.status.set_options or {})
                result = build_dynamic_set(request, self.backend, job_dir, intensities=options.intensities,
                                           bars=options.bars, stingers=options.stingers, name=output_stem(request),
                                           on_progress=on_progress, is_cancelled=running.cancel.is_set)
                record = set_job_record(result)
            else:
                output_path = job_dir / f"{output_stem(request)}.{request.output_format}"
                record = {"outputs": generate_cues(request, self.backend, output_path, on_progress=on_progress,
                                                   is_cancelled=running.cancel.is_set)}
        except GenerationCancelled:
            _remove_empty_folder(job_dir)
            if self._stopping:
                log.info("job %s interrupted by the worker stopping", job_id)
                return {"status": FAILED, "error": INTERRUPTED_MESSAGE}
            log.info("job %s cancelled", job_id)
            return {"status": CANCELLED, "stage": CANCELLED}
        except AceStepError as exc:
            _remove_empty_folder(job_dir)
            log.warning("job %s failed: %s", job_id, exc)
            return {"status": FAILED, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the worker
            _remove_empty_folder(job_dir)
            log.exception("job %s failed unexpectedly", job_id)
            return {"status": FAILED, "error": f"the worker failed on this job: {type(exc).__name__}: {exc}"}
        log.info("job %s done in %.2f s (%d file(s))", job_id, time.monotonic() - started,
                 len(record["outputs"]) + len(record.get("artifacts", [])))
        return {"status": DONE, "stage": DONE, **record}

    def _request_for_backend(self, as_sent: dict) -> GenerationRequest:
        request = GenerationRequest.from_dict(as_sent)
        if request.source_audio is not None:
            path = self._resolve_upload(request.source_audio)
            if path is None:
                raise AceStepError(f"the upload {request.source_audio} is gone from the worker; upload the source audio again")
            request = dataclasses.replace(request, source_audio=str(path))
        return request

    def _on_progress(self, running: _RunningJob, progress: Progress) -> None:
        now = time.monotonic()
        with self._cond:
            status = running.status
            status.progress = round(progress.fraction, 4)
            if status.stage != STAGE_CANCELLING:
                status.stage = progress.stage
            # A set's stages read "intensity 2/3: generating 5/8".
            if GENERATING in progress.stage:
                if running.steps_began is None:
                    running.steps_began, running.steps_began_fraction = now, progress.fraction
                elif progress.fraction > running.steps_began_fraction:
                    per_unit = (now - running.steps_began) / (progress.fraction - running.steps_began_fraction)
                    running.expected_end = now + per_unit * (1.0 - progress.fraction)


def _remove_unrecorded_files(folder: Path) -> None:
    """An interrupted job's folder: the store records no outputs for it, so whatever it
    holds is left over (hidden temporaries, and the finished cues of a set cut short)."""
    if folder.is_dir():
        for leftover in folder.iterdir():
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)
        _remove_empty_folder(folder)


def _remove_empty_folder(folder: Path) -> None:
    """generate_cues leaves no file behind on failure; drop the job's empty folder too."""
    try:
        folder.rmdir()
    except OSError:
        pass
