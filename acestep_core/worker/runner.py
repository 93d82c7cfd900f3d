"""The job queue: one thread runs one job at a time on the one backend, FIFO across clients.

Queued and running jobs live in memory (so a status poll never waits on SQLite or
on the model); every change of state is written to the store at once, so a restart
knows what finished, what was waiting and what was cut short.

Nothing the store raises stops the runner: a job whose start cannot be recorded fails
with the store's sentence ("no space left on device in ..."), and an end that cannot be
recorded is kept in memory (polls see it) and written again every few seconds until the
disk takes it. The queue is bounded (QueueFull past max_queue), and a submission that
would not fit on the disk is refused before it is queued.
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
from acestep_core.dynamic_sets import LAYER_EXTRACT_TRACKS, LAYERS, build_dynamic_set
from acestep_core.errors import AceStepError, GenerationCancelled
from acestep_core.generation import generate_cues, slug_from_prompt
from acestep_core.config import configured_reference_library  # read per job: config.json may change
from acestep_core.library import index_outputs_safely
from acestep_core.jobs import (
    CANCELLED, DONE, FAILED, INTERRUPTED_MESSAGE, MODEL_FAILED, MODEL_LOADED, MODEL_LOADING, MODEL_UNLOADED, RUNNING,
    SET_JOB, JobStatus,
)
from acestep_core.progress import GENERATING, LOADING, Progress
from acestep_core.request import GenerationRequest
from acestep_core.worker.limits import DEFAULT_MAX_QUEUE
from acestep_core.worker.sets import SetOptions, set_job_record
from acestep_core.worker.store import JobStore, StorageProblem, free_bytes, no_space_message, utc_now

log = logging.getLogger("acestep_core.worker")

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_AUDIO_SUFFIX = re.compile(r"\.(wav|flac|ogg)$", re.IGNORECASE)
STAGE_STARTING = "starting"
STAGE_CANCELLING = "cancelling"
QUEUE_RETRY_AFTER_S = 30  # what a 429 tells a client to wait: about one short job
RECORD_RETRY_S = 2.0  # how often an end the store refused is written again
PRUNE_INTERVAL_S = 3600.0  # retention also runs this often while idle (and after every job)
SPACE_MARGIN_BYTES = 4 * 1024 * 1024  # sidecars, the job database, temporaries


class QueueFull(AceStepError):
    """The queue holds max_queue jobs already; `retry_after` seconds is a fair wait."""

    def __init__(self, limit: int):
        self.limit = limit
        self.retry_after = QUEUE_RETRY_AFTER_S
        super().__init__(f"the worker's queue is full ({limit} jobs waiting); wait for some to finish or cancel "
                         "some, then submit again")


def estimated_output_bytes(request: GenerationRequest, set_options: SetOptions | None = None) -> int:
    """About how much a job writes: its cues as uncompressed PCM (FLAC and Ogg write less)."""
    per_second = request.sample_rate * 2 * request.bit_depth // 8
    if set_options is None:
        seconds = request.duration * request.candidates
    else:
        bar_s = 4 * 60.0 / (request.bpm or 120.0)
        loop_s = min(set_options.bars * bar_s, 600.0) if set_options.bars else request.duration
        # Layers: the base's part stems (removed once the layers are written) are there too.
        files = set_options.intensities + 1 + (len(LAYER_EXTRACT_TRACKS) + 1 if set_options.mode == LAYERS else 0)
        seconds = files * (loop_s + bar_s) + set_options.stingers * 3 * bar_s
    return int(seconds * per_second)


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
                 on_finished: Callable[[], None] | None = None, max_queue: int = DEFAULT_MAX_QUEUE,
                 prune: Callable[[set[str], set[str]], None] | None = None):
        self.store = store
        self.backend = backend
        self.outputs_dir = Path(outputs_dir)
        # upload id -> path on this machine; the worker reads no path a client names.
        self._resolve_upload = resolve_upload or (lambda upload_id: None)
        self.idle_unload_seconds = idle_unload_seconds
        self._on_finished = on_finished or (lambda: None)  # wakes long-polling status requests
        self.max_queue = max_queue
        # Retention: prune(job ids, upload ids) deletes old files, never those of the ids given.
        self._prune = prune
        self._cond = threading.Condition()
        self._queue: collections.deque[str] = collections.deque()
        self._queued: dict[str, JobStatus] = {}
        self._running: _RunningJob | None = None
        # Ends the store refused (a full disk): the final status, and store.finish's arguments.
        self._unrecorded: dict[str, tuple[JobStatus, dict]] = {}
        self._stopping = False
        self._preload_requested = False
        self._model_loading = False
        self._model_error: str | None = None
        self._last_active = time.monotonic()
        self._last_pruned = float("-inf")
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
        stopped = not self._thread.is_alive()
        if stopped:
            with self._cond:
                self._record_unrecorded()
                for job_id in self._unrecorded:
                    log.error("job %s ended but the job database never took its end; the next start "
                              "shows it as interrupted", job_id)
        return stopped

    def preload(self) -> None:
        """Load the model in the runner thread now instead of on the first job; the
        model state reads "loading" from this call on."""
        with self._cond:
            self._preload_requested = True
            self._model_loading = True
            self._cond.notify_all()

    # -- what the API calls ---------------------------------------------------------

    def submit(self, request: GenerationRequest, set_options: SetOptions | None = None,
               requested_by: str | None = None) -> JobStatus:
        """Record the job (committed before the reply) and queue it; returns its status.
        With set_options the job makes a dynamic-music set from the request. Raises
        QueueFull past max_queue, StorageProblem when its files would not fit or the
        store cannot record it."""
        job_id = new_job_id()
        self._check_space(request, set_options)
        with self._cond:
            if len(self._queue) >= self.max_queue:
                raise QueueFull(self.max_queue)
            status = self.store.add_job(job_id, request.to_dict(), None if set_options is None else set_options.to_dict(),
                                        requested_by)
            self._queue.append(job_id)
            self._queued[job_id] = status
            self._cond.notify_all()
            return self._live_view(status)

    def _check_space(self, request: GenerationRequest, set_options: SetOptions | None) -> None:
        free = free_bytes(self.outputs_dir)
        needed = estimated_output_bytes(request, set_options) + SPACE_MARGIN_BYTES
        if free is not None and free < needed:
            raise StorageProblem(f"{no_space_message(self.outputs_dir)} (this job needs about "
                                 f"{_megabytes(needed)} MB, {_megabytes(free)} MB are free)", disk_full=True)

    def status(self, job_id: str) -> JobStatus | None:
        with self._cond:
            if self._running is not None and self._running.status.id == job_id:
                return self._running_view(self._running)
            if job_id in self._queued:
                return self._live_view(self._queued[job_id])
            if job_id in self._unrecorded:
                return self._unrecorded[job_id][0]
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
                self._record_end(self._queued.pop(job_id), {"status": CANCELLED, "stage": CANCELLED})
                cancelled_queued = True
            else:
                cancelled_queued = False
        if cancelled_queued:
            self._on_finished()
        return self.status(job_id)

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

    def idle_for(self) -> float:
        """Seconds since the last job ended (or the model loaded); 0 while a job runs or waits."""
        with self._cond:
            if self._queue or self._running is not None or self._model_loading:
                return 0.0
            return time.monotonic() - self._last_active

    def model_state(self) -> tuple[str, str | None]:
        """(one of jobs.MODEL_STATES, the load error when it failed)."""
        with self._cond:
            running = self._running
            loading = self._model_loading or (running is not None and LOADING in running.status.stage)
            error = self._model_error
        if self.backend.loaded:
            return MODEL_LOADED, None
        if loading:
            return MODEL_LOADING, None
        return (MODEL_FAILED, error) if error else (MODEL_UNLOADED, None)

    def uploads_in_use(self) -> set[str]:
        """Upload ids that queued or running jobs will read: retention never deletes these."""
        with self._cond:
            return self._uploads_in_use()

    def _uploads_in_use(self) -> set[str]:
        statuses = list(self._queued.values()) + ([self._running.status] if self._running else [])
        return {s.request[field] for s in statuses for field in ("source_audio", "reference_audio")
                if isinstance(s.request.get(field), str)}

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
            try:
                if not self._run_next_job():
                    return
            except Exception:  # noqa: BLE001 - a bug here must not leave every later job queued
                log.exception("the job runner failed between jobs; it goes on")
                time.sleep(RECORD_RETRY_S)

    def _run_next_job(self) -> bool:
        """Take the next job, run it and record its end; False when the runner stops."""
        with self._cond:
            job_id = self._next_job_or_idle()
            if job_id is None:
                return False
            status = dataclasses.replace(self._queued.pop(job_id), status=RUNNING,
                                         stage=STAGE_STARTING, progress=0.0)
            running = self._running = _RunningJob(status)
        outcome: dict = {"status": FAILED, "error": INTERRUPTED_MESSAGE}
        try:
            try:
                self.store.mark_running(job_id)
            except StorageProblem as exc:
                # Its outputs would go to the same disk; fail it now with the cause.
                log.error("job %s cannot start: %s", job_id, exc)
                outcome = {"status": FAILED, "error": str(exc)}
            else:
                outcome = self._run(running)
        finally:
            # Record the end and leave the running slot in one step, so a poll or a
            # cancel never sees a job that is both finished and still running.
            with self._cond:
                self._record_end(running.status, outcome)
                self._running = None
                self._last_active = time.monotonic()
            self._on_finished()
        self._prune_files()
        return True

    def _record_end(self, status: JobStatus, outcome: dict) -> None:
        """Write a job's end to the store (lock held); when the store refuses, keep it in
        memory, where polls find it, until _record_unrecorded gets it written."""
        try:
            self.store.finish(status.id, **outcome)
        except StorageProblem as exc:
            log.error("job %s ended (%s) but the job database did not take it: %s; the worker keeps it "
                      "and writes it again every %g s", status.id, outcome["status"], exc, RECORD_RETRY_S)
            self._unrecorded[status.id] = (_final_view(status, outcome), outcome)

    def _record_unrecorded(self) -> None:
        for job_id, (_, outcome) in list(self._unrecorded.items()):
            try:
                self.store.finish(job_id, **outcome)
            except StorageProblem:
                return  # the store still refuses; try again later
            del self._unrecorded[job_id]
            log.info("job %s's end is now in the job database", job_id)

    def _next_job_or_idle(self) -> str | None:
        """Wait (lock held) for the next job id; unload the model when idle long enough;
        write ends the store refused, and prune old files, now and then. None means stop."""
        while not self._stopping:
            if self._unrecorded:
                self._record_unrecorded()
            if self._queue:
                return self._queue.popleft()
            if self._preload_requested:
                self._preload_requested = False
                self._load_model()
                continue
            timeout = None
            if self.idle_unload_seconds is not None and self.backend.loaded:
                idle_for = time.monotonic() - self._last_active
                timeout = self.idle_unload_seconds - idle_for
                if timeout <= 0:
                    self._unload_idle_model()
                    continue
            if self._prune is not None:
                until_prune = self._last_pruned + PRUNE_INTERVAL_S - time.monotonic()
                if until_prune <= 0:
                    self._without_lock(self._prune_files, "pruning old files")
                    continue
                timeout = until_prune if timeout is None else min(timeout, until_prune)
            if self._unrecorded:
                timeout = RECORD_RETRY_S if timeout is None else min(timeout, RECORD_RETRY_S)
            self._cond.wait(timeout)
        return None

    def _load_model(self) -> None:
        """--preload's load (lock held, released while loading)."""
        self._model_loading = True
        self._cond.release()
        try:
            self.backend.load()
            error = None
        except Exception as exc:  # noqa: BLE001 - the first job reports its own failure too
            log.exception("loading the model failed")
            error = str(exc) if isinstance(exc, AceStepError) else f"{type(exc).__name__}: {exc}"
        finally:
            self._cond.acquire()
        self._model_loading = False
        self._model_error = error
        self._last_active = time.monotonic()

    def _prune_files(self) -> None:
        """Retention, between jobs: never the files of a queued or running job."""
        if self._prune is None:
            return
        with self._cond:
            self._last_pruned = time.monotonic()
            jobs = set(self._queued) | ({self._running.status.id} if self._running else set())
            uploads = self._uploads_in_use()
            try:
                self._prune(jobs, uploads)
            except Exception:  # noqa: BLE001 - an old file that cannot go must not stop the queue
                log.exception("pruning old files failed")

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
                                           on_progress=on_progress, is_cancelled=running.cancel.is_set,
                                           mode=options.mode, check_against=configured_reference_library())
                record = set_job_record(result)
            else:
                output_path = job_dir / f"{output_stem(request)}.{request.output_format}"
                record = {"outputs": generate_cues(request, self.backend, output_path, on_progress=on_progress,
                                                   is_cancelled=running.cancel.is_set,
                                                   check_against=configured_reference_library())}
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
            self._note_load_failure(str(exc))
            return {"status": FAILED, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the worker
            _remove_empty_folder(job_dir)
            log.exception("job %s failed unexpectedly", job_id)
            error = f"the worker failed on this job: {type(exc).__name__}: {exc}"
            self._note_load_failure(error)
            return {"status": FAILED, "error": error}
        _number_stem_files(record)
        index_outputs_safely(record["outputs"], warn=log.warning)  # the cue library; never fails the job
        with self._cond:
            self._model_error = None
        log.info("job %s done in %.2f s (%d file(s))", job_id, time.monotonic() - started,
                 len(record["outputs"]) + len(record.get("artifacts", [])))
        return {"status": DONE, "stage": DONE, **record}

    def _note_load_failure(self, error: str) -> None:
        """A job that failed with the model still unloaded failed loading it."""
        if not self.backend.loaded:
            with self._cond:
                self._model_error = error

    def _request_for_backend(self, as_sent: dict) -> GenerationRequest:
        request = GenerationRequest.from_dict(as_sent)
        if request.source_audio is not None:
            path = self._resolve_upload(request.source_audio)
            if path is None:
                raise AceStepError(f"the upload {request.source_audio} is gone from the worker; upload the source audio again")
            request = dataclasses.replace(request, source_audio=str(path))
        if request.reference_audio is not None:
            path = self._resolve_upload(request.reference_audio)
            if path is None:
                raise AceStepError(f"the upload {request.reference_audio} is gone from the worker; upload the reference clip again")
            request = dataclasses.replace(request, reference_audio=str(path))
        return request

    def _on_progress(self, running: _RunningJob, progress: Progress) -> None:
        now = time.monotonic()
        with self._cond:
            status = running.status
            status.progress = round(progress.fraction, 4)
            if status.stage != STAGE_CANCELLING:
                status.stage = progress.stage
            # A set's stages read "intensity 2/3: generating 5/8" or "base cue and its parts: generating 5/8".
            if GENERATING in progress.stage:
                if running.steps_began is None:
                    running.steps_began, running.steps_began_fraction = now, progress.fraction
                elif progress.fraction > running.steps_began_fraction:
                    per_unit = (now - running.steps_began) / (progress.fraction - running.steps_began_fraction)
                    running.expected_end = now + per_unit * (1.0 - progress.fraction)


def _final_view(status: JobStatus, outcome: dict) -> JobStatus:
    """The status the store would return once it records `outcome` (see JobStore.finish)."""
    state = outcome["status"]
    return dataclasses.replace(
        status, status=state, stage=outcome.get("stage") or state, error=outcome.get("error"),
        progress=1.0 if state == DONE else status.progress, position=None, eta_seconds=None,
        outputs=list(outcome.get("outputs") or []), artifacts=list(outcome.get("artifacts") or []),
        manifest=outcome.get("manifest"), finished_at=utc_now())


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):.0f}" if count >= 1024 * 1024 else f"{count / (1024 * 1024):.1f}"


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


def _number_stem_files(record: dict) -> None:
    """Give each output's stems file numbers after the job's outputs and artifacts, so the
    numbers of a job without stems stay what they were."""
    outputs = record["outputs"]
    number = len(outputs) + len(record.get("artifacts", []))
    for k, output in enumerate(outputs):
        files = []
        for track, path in output.stems.items():
            files.append({"track": track, "index": number, "file": Path(path).name})
            number += 1
        outputs[k] = dataclasses.replace(output, stem_files=files)

