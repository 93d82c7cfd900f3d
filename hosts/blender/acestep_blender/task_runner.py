"""All of one task's talking to the worker, on a background thread.

Blender's UI thread never waits on the network: a busy worker can take tens of
milliseconds to answer (it shares the CPU with the model), a stuck one seconds. This
thread waits for a worker being started, submits each job, polls them, and brings the
finished audio into the output folder; the timer tick on the UI thread only reads
what it published and does the bpy work. Nothing here imports or touches bpy.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from dataclasses import dataclass

from acestep_core.errors import AceStepError, WorkerError
from acestep_core.jobs import CANCELLED, FAILED, QUEUED

from . import audio_files, worker_link
from .tasks import CueJob, Task

POLL_INTERVAL = 0.25  # the longest the worker holds a status answer (progress updates this often)
QUALITY_STEP_FACTOR = 2  # "Quality" runs twice the model's own steps


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""


class TaskRunner(threading.Thread):
    def __init__(self, task: Task, link: worker_link.WorkerLink):
        super().__init__(name=f"acestep {task.label}", daemon=True)
        self.task = task
        self.link = link
        self.outcome: Outcome | None = None  # set once, when the thread is done
        self._cancel = threading.Event()

    def request_cancel(self) -> None:
        """Stop, and cancel on the worker whatever was submitted. Returns at once."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        client = None
        try:
            client = self.link.wait_until_started(self._cancel.is_set)
            if client is None:  # cancelled while the worker was starting
                self.outcome = Outcome(False, "cancelled")
                return
            self._submit_all(client)
            if not self.cancelled:
                self._poll_until_done(client)
            if not self.cancelled:
                for job in self.task.jobs:
                    if job.set_options:
                        job.files, job.artifact_files = audio_files.bring_in_set(
                            client, job.status, self.task.output_folder, self.task.remote)
                        continue
                    if job.stems:
                        job.files, job.stem_files = audio_files.bring_in_stems(
                            client, job.status, self.task.output_folder, self.task.remote)
                        continue
                    job.files = audio_files.bring_in(client, job.status, self.task.output_folder, self.task.remote)
                self._refresh_status_line()
            self.outcome = Outcome(ok=not self.cancelled)
        except WorkerError as exc:
            if self.link.state != worker_link.DOWN:
                self.link.lost(exc)
            self.outcome = Outcome(False, str(exc))
        except AceStepError as exc:
            self.outcome = Outcome(False, str(exc))
        except Exception as exc:  # a bug of ours: say so once
            traceback.print_exc()
            self.outcome = Outcome(False, f"unexpected error ({type(exc).__name__}: {exc}); the system console has details")
        finally:
            if client is not None and (self.cancelled or (self.outcome and not self.outcome.ok)):
                self._cancel_submitted(client)

    def _submit_all(self, client) -> None:
        steps = self.link.default_steps()
        for job in self.task.jobs:
            if self.cancelled:
                return
            request = job.request
            if job.source_audio is not None and not request.source_audio:
                request = dataclasses.replace(request, source_audio=client.upload(job.source_audio))
            if self.task.quality == "QUALITY" and request.steps is None and steps:
                request = dataclasses.replace(request, steps=steps * QUALITY_STEP_FACTOR)
            # A set is one job on the worker: base, intensity loops and stingers together.
            status = client.submit_set(request, **job.set_options) if job.set_options else client.submit(request)
            job.request, job.job_id, job.status = request, status.id, status

    def _poll_until_done(self, client) -> None:
        """The worker runs the jobs in order, so follow the first unfinished one. Long
        polling: the worker answers within POLL_INTERVAL, or the moment the job ends."""
        while not self.cancelled:
            job = next((j for j in self.task.jobs if not j.finished), None)
            if job is None:
                return
            job.status = client.status(job.job_id, wait=POLL_INTERVAL)
            if job.status.status in (FAILED, CANCELLED):
                raise AceStepError(_failure_sentence(job))
            if job.status.status == QUEUED and self.link.model_loading:
                self.link.refresh_health()  # the panel says "loading model" until it has

    def _refresh_status_line(self) -> None:
        """The worker has changed (its model loaded on the first job): say so."""
        try:
            self.link.refresh_health()
        except WorkerError:
            pass  # the audio is here; the next task will find out

    def _cancel_submitted(self, client) -> None:
        for job in self.task.jobs:
            if job.job_id is not None and not job.finished:
                try:
                    client.cancel(job.job_id)
                except WorkerError:
                    pass  # gone or unreachable: nothing of it will be placed either way


def _failure_sentence(job: CueJob) -> str:
    status = job.status
    where = f"section '{job.plan.section}' " if job.plan.section else ""
    if status.status == CANCELLED:
        return f"{where}was cancelled on the worker"
    return (f"{where}failed on the worker: {status.error or 'no reason given'}; change the prompt or "
            "settings and try again, or see the worker log")


def wait_for(runner: TaskRunner, timeout: float) -> None:
    """Join with a deadline (unregister and tests): a stuck call must not hang Blender."""
    deadline = time.monotonic() + timeout
    while runner.is_alive() and time.monotonic() < deadline:
        runner.join(0.05)
