"""The running task and the timer tick that follows it.

A task is one press of Generate, Score Cutscene or Regenerate: one or more worker
jobs whose audio is placed together, in one undo step, once every job is done. Only
plain data is kept here (ids, requests, frame numbers), never a bpy object, so an
undo or a file load in between cannot leave a dangling reference.

Each tick does one thing with at most one short call to the worker (see `_advance`),
then writes what the panel shows into WindowManager.acestep and redraws sequencers.
Headless Blender does not fire timers: tests call `tick()` themselves.
"""

from __future__ import annotations

import dataclasses
import itertools
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from acestep_core.errors import AceStepError, WorkerError
from acestep_core.jobs import CANCELLED, DONE, FAILED, JobStatus
from acestep_core.request import GenerationRequest

from . import audio_files, compat, strip_placement, worker_link

GENERATE, SCORE, VARIATION = "GENERATE", "SCORE", "VARIATION"
POLL_INTERVAL = 0.25  # seconds between looks at a running job
BUSY_INTERVAL = 0.02  # more to do right away (submitting a score's sections)
QUALITY_STEP_FACTOR = 2  # "Quality" runs twice the model's own steps


@dataclass
class CuePlan:
    """Where one job's audio goes. `channel` None means the first free one at placement
    time (the timeline may change while the job runs)."""

    name: str
    frame_start: int
    frames: int
    fade_in: int = 0
    fade_out: int = 0
    channel: int | None = None
    lowest_channel: int = 1
    group: str | None = None  # join an existing candidate group (variations)
    muted: bool = False  # variations arrive muted, so what plays now keeps playing
    section: str | None = None


@dataclass
class CueJob:
    request: GenerationRequest
    plan: CuePlan
    job_id: str | None = None
    status: JobStatus | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status is not None and self.status.finished

    @property
    def progress(self) -> float:
        if self.status is None:
            return 0.0
        return 1.0 if self.status.status == DONE else float(self.status.progress or 0.0)


@dataclass
class Task:
    kind: str
    label: str
    scene_name: str
    output_folder: Path
    jobs: list[CueJob]
    quality: str = "FAST"
    remote: bool = False  # the worker is on another machine: download, never copy
    notice: str = ""  # said when it is done (audio in a temporary folder, say)
    _poll_order: object = None

    def next_to_poll(self) -> CueJob | None:
        """Round robin over the submitted, unfinished jobs."""
        waiting = [j for j in self.jobs if j.job_id is not None and not j.finished]
        if not waiting:
            return None
        if self._poll_order is None:
            self._poll_order = itertools.count()
        return waiting[next(self._poll_order) % len(waiting)]


class Tracker:
    """The one task at a time (the busy flag) and the last thing to tell the user."""

    def __init__(self) -> None:
        self.task: Task | None = None
        self.message = ""
        self.level = "INFO"
        self.timer_registered = False

    @property
    def busy(self) -> bool:
        return self.task is not None

    def say(self, message: str, level: str = "INFO") -> None:
        self.message, self.level = message, level


tracker = Tracker()


# -- starting, stopping ------------------------------------------------------------------


def start_task(task: Task, context=None) -> None:
    """Make `task` the running task and make sure the tick runs."""
    tracker.task = task
    tracker.say(f"{task.label}: waiting for the worker")
    ensure_timer()
    sync_ui(context)


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=BUSY_INTERVAL)
    tracker.timer_registered = True


def stop_timer() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    tracker.timer_registered = False


def cancel_task(context=None) -> str:
    """Cancel every job of the running task on the worker and forget the task.
    Nothing has been placed yet, so nothing is left half-made."""
    task = tracker.task
    if task is None:
        return "nothing is running"
    problems = _cancel_jobs(task)
    tracker.task = None
    message = f"{task.label}: cancelled, nothing was placed"
    if problems:
        message += f" (the worker did not confirm: {problems[0]})"
    tracker.say(message, "WARNING")
    sync_ui(context)
    return message


def _cancel_jobs(task: Task) -> list[str]:
    client = worker_link.link.client
    problems: list[str] = []
    for job in task.jobs:
        if job.job_id is None or job.finished or client is None:
            continue
        try:
            client.cancel(job.job_id)
        except WorkerError as exc:
            problems.append(str(exc))
    return problems


def fail_task(message: str, context=None) -> None:
    """Stop the task with a message that says what to do; nothing gets placed."""
    task = tracker.task
    if task is not None:
        _cancel_jobs(task)
    tracker.task = None
    label = f"{task.label}: " if task is not None else ""
    tracker.say(f"{label}{message}. Nothing was placed", "ERROR")
    sync_ui(context)
    notify_status_bar(tracker.message, "ERROR")


# -- the tick ----------------------------------------------------------------------------


def tick() -> float | None:
    """The timer callback: advance the running task by one step. Never raises."""
    if tracker.task is None:
        return _advance_connection()
    try:
        interval = _advance(tracker.task)
    except WorkerError as exc:
        if worker_link.link.state != worker_link.DOWN:
            worker_link.link.lost(exc)
        fail_task(str(exc))
        interval = None
    except AceStepError as exc:
        fail_task(str(exc))
        interval = None
    except Exception as exc:  # a bug of ours: say so once rather than tick forever
        traceback.print_exc()
        fail_task(f"unexpected error ({type(exc).__name__}: {exc}); the system console has details")
        interval = None
    sync_ui()
    if tracker.task is None:
        tracker.timer_registered = False
        return None
    return interval


def _advance_connection() -> float | None:
    """No task, but Connect started a worker: follow its start until it answers."""
    link = worker_link.link
    try:
        if link.state == worker_link.STARTING:
            link.poll_start()
        elif link.client is not None and link.health is None:
            link.refresh_health()
    except WorkerError:
        pass  # the link now says why and what to do
    sync_ui()
    if link.state == worker_link.STARTING or (link.client is not None and link.health is None):
        return POLL_INTERVAL
    tracker.timer_registered = False
    return None


def _advance(task: Task) -> float:
    """One step: start the worker, submit one job, poll one job, or place everything."""
    link = worker_link.link
    if link.state == worker_link.STARTING:
        link.poll_start()
        return POLL_INTERVAL
    if link.client is None:
        raise WorkerError(f"{link.summary or 'the worker is not connected'}; {link.fix or worker_link.START_FIX}")
    if link.health is None:
        link.refresh_health()
        return BUSY_INTERVAL
    pending = next((j for j in task.jobs if j.job_id is None), None)
    if pending is not None:
        _submit(task, pending)
        return BUSY_INTERVAL
    job = task.next_to_poll()
    if job is not None:
        job.status = link.client.status(job.job_id)
        if job.status.status in (FAILED, CANCELLED):
            raise AceStepError(_failure_sentence(task, job))
        return POLL_INTERVAL if not all(j.finished for j in task.jobs) else BUSY_INTERVAL
    _finish(task)
    return POLL_INTERVAL


def _submit(task: Task, job: CueJob) -> None:
    link = worker_link.link
    request = job.request
    if task.quality == "QUALITY" and request.steps is None and link.default_steps():
        request = _replace(request, steps=link.default_steps() * QUALITY_STEP_FACTOR)
    status = link.client.submit(request)
    job.request, job.job_id, job.status = request, status.id, status


def _finish(task: Task) -> None:
    """Every job is done: bring the audio into the output folder, then place it all in
    one undo step. A failure on the way leaves the timeline as it was."""
    client = worker_link.link.client
    for job in task.jobs:
        if not job.files:
            job.files = audio_files.bring_in(client, job.status, task.output_folder, task.remote)
    placed = strip_placement.place_task_with_undo(task)
    tracker.task = None
    message = f"{task.label}: placed {placed}"
    if task.notice:
        message += f". {task.notice}"
    tracker.say(message, "WARNING" if task.notice else "INFO")
    notify_status_bar(message, "INFO")


def _failure_sentence(task: Task, job: CueJob) -> str:
    status = job.status
    where = f"section '{job.plan.section}' " if job.plan.section else ""
    if status.status == CANCELLED:
        return f"{where}was cancelled on the worker"
    return (f"{where}failed on the worker: {status.error or 'no reason given'}; change the prompt or "
            "settings and try again, or see the worker log")


def _replace(request: GenerationRequest, **changes) -> GenerationRequest:
    return dataclasses.replace(request, **changes)


# -- what the panel shows ----------------------------------------------------------------


def stage_text(task: Task) -> str:
    link = worker_link.link
    if link.state == worker_link.STARTING:
        return "starting the worker"
    current = next((j for j in task.jobs if not j.finished), None)
    if current is None:
        return "placing"
    if current.status is None:
        stage = "submitting"
    elif current.status.status == "queued":
        position = current.status.position
        stage = "queued" if not position else f"queued ({position} ahead)"
    else:
        stage = current.status.stage or current.status.status
    if len(task.jobs) > 1:
        index = task.jobs.index(current) + 1
        name = current.plan.section or current.plan.name
        return f"section {index}/{len(task.jobs)} '{name}': {stage}"
    return stage


def sync_ui(context=None) -> None:
    """Copy the tracker and the link into WindowManager.acestep, and redraw."""
    wm = getattr(context or bpy.context, "window_manager", None)
    runtime = getattr(wm, "acestep", None)
    if runtime is None:
        return
    task = tracker.task
    link = worker_link.link
    runtime.busy = task is not None
    if task is not None:
        runtime.task_label = task.label
        runtime.progress = sum(j.progress for j in task.jobs) / max(1, len(task.jobs))
        runtime.stage = stage_text(task)
    else:
        runtime.progress = 0.0
        runtime.stage = ""
    runtime.message = tracker.message
    runtime.message_level = tracker.level
    runtime.worker_state = link.state
    runtime.worker_summary = link.summary
    runtime.worker_fix = link.fix
    compat.tag_sequencer_redraw(context)


def notify_status_bar(message: str, level: str) -> None:
    """Show a line in the status bar and the Info log (from a timer there is no operator
    to report through, so a small internal one does it)."""
    try:
        # ERROR reports raise when an operator is called from Python; WARNING shows the same.
        bpy.ops.acestep.notify(message=message[:1000], level="WARNING" if level == "ERROR" else level)
    except Exception:  # no window to report in (headless, or Blender is closing)
        pass


def forget_everything() -> None:
    """On file load and unregister: the timeline the task was for is gone."""
    stop_timer()
    tracker.task = None
