"""The running task and the timer tick that follows it on Blender's UI thread.

One task at a time (the busy flag). Its TaskRunner thread does every call to the
worker; the tick only reads what the runner published, copies it into
WindowManager.acestep for the panel, redraws the sequencers and, once the runner has
brought all the audio in, places the strips (bpy work, so here, in one undo step).
Headless Blender does not fire timers: tests and the benchmark call `tick()`.
"""

from __future__ import annotations

import traceback

import bpy

from . import compat, strip_placement, strip_records, worker_link
from .task_runner import TaskRunner, wait_for
from .tasks import Task

TICK_INTERVAL = 0.1  # seconds between UI refreshes while a task runs
STOP_WAIT_S = 2.0  # how long unregister waits for a runner to wind down


class Tracker:
    """The one task at a time and the last thing to tell the user."""

    def __init__(self) -> None:
        self.task: Task | None = None
        self.message = ""
        self.level = "INFO"

    @property
    def busy(self) -> bool:
        return self.task is not None

    def say(self, message: str, level: str = "INFO") -> None:
        self.message, self.level = message, level


tracker = Tracker()


# -- starting and stopping ----------------------------------------------------------------


def start_task(task: Task, context=None) -> None:
    """Make `task` the running task: its runner thread starts talking to the worker and
    the tick starts following it. Returns at once."""
    task.runner = TaskRunner(task, worker_link.link)
    tracker.task = task
    tracker.say(f"{task.label}: started")
    task.runner.start()
    ensure_timer()
    sync_ui(context)


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_INTERVAL)


def stop_timer() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def cancel_task(context=None) -> str:
    """Forget the running task at once; its runner cancels its jobs on the worker.
    Nothing has been placed yet, so nothing is left half-made."""
    task = tracker.task
    if task is None:
        return "nothing is running"
    task.runner.request_cancel()
    tracker.task = None
    message = f"{task.label}: cancelled, nothing was placed"
    tracker.say(message, "WARNING")
    sync_ui(context)
    return message


def forget_everything() -> None:
    """On file load and unregister: the timeline the task was for is going away."""
    stop_timer()
    task = tracker.task
    tracker.task = None
    if task is not None and task.runner is not None:
        task.runner.request_cancel()
        wait_for(task.runner, STOP_WAIT_S)


# -- the tick -----------------------------------------------------------------------------


def tick() -> float | None:
    """The timer callback. No network, so it takes well under a millisecond while a job
    runs; the one tick that places the strips does the bpy work. Never raises."""
    task = tracker.task
    if task is None:
        sync_ui()
        link = worker_link.link
        return TICK_INTERVAL if link.state == worker_link.STARTING or link.model_loading else None
    outcome = task.runner.outcome
    if outcome is not None and not (outcome.ok and _busy_elsewhere()):
        tracker.task = None
        try:
            _finish(task) if outcome.ok else _fail(task, outcome.message)
        except Exception as exc:  # a bug of ours: say so rather than break the timer
            traceback.print_exc()
            _fail(task, f"unexpected error ({type(exc).__name__}: {exc}); the system console has details")
    sync_ui()
    return TICK_INTERVAL if tracker.task is not None else None


def _busy_elsewhere() -> bool:
    """Placing strips mid-drag or mid-render would fight the user: wait for a calm tick."""
    if bpy.app.is_job_running("RENDER"):
        return True
    wm = bpy.context.window_manager
    return any(len(getattr(window, "modal_operators", ())) for window in wm.windows) if wm else False


def _finish(task: Task) -> None:
    try:
        placed = strip_placement.place_task_with_undo(task)
    except Exception as exc:
        _fail(task, str(exc))
        return
    message = f"{task.label}: placed {placed}"
    warnings = task_warnings(task)
    for warning in warnings:
        message += f". Warning: {warning}"
    if task.notice:
        message += f". {task.notice}"
    tracker.say(message, "WARNING" if task.notice or warnings else "INFO")
    notify_status_bar(message, "WARNING" if warnings else "INFO")


def task_warnings(task: Task) -> list[str]:
    """The worker's warnings about the task's files, each said once (takes of one job
    often share one, a missed loudness target say)."""
    found: list[str] = []
    for job in task.jobs:
        for output in (job.status.outputs if job.status is not None else []):
            found += [w for w in strip_records.output_warnings(output) if w not in found]
    return found


def _fail(task: Task, reason: str) -> None:
    tracker.say(f"{task.label}: {reason}. Nothing was placed", "ERROR")
    notify_status_bar(tracker.message, "ERROR")


# -- what the panel shows -----------------------------------------------------------------


def stage_text(task: Task) -> str:
    if worker_link.link.state == worker_link.STARTING:
        return "starting the worker"
    current = next((j for j in task.jobs if not j.finished), None)
    if current is None:
        return "bringing the audio in"
    status = current.status
    if worker_link.link.model_loading and (status is None or status.status == "queued"):
        stage = "loading model"  # the worker loads it before it takes the job
    elif status is None:
        stage = "submitting"
    elif status.status == "queued":
        stage = f"queued ({status.position} ahead)" if status.position else "queued"
    else:
        stage = status.stage or status.status
    if len(task.jobs) > 1:
        index = task.jobs.index(current) + 1
        return f"section {index}/{len(task.jobs)} '{current.plan.section or current.plan.name}': {stage}"
    return stage


def sync_ui(context=None) -> None:
    """Copy the tracker and the link into WindowManager.acestep, and redraw."""
    wm = getattr(context or bpy.context, "window_manager", None)
    runtime = getattr(wm, "acestep", None)
    if runtime is None:
        return
    task, link = tracker.task, worker_link.link
    runtime.busy = task is not None
    if task is not None:
        runtime.task_label = task.label
        runtime.progress = sum(j.progress for j in task.jobs) / max(1, len(task.jobs))
        runtime.stage = stage_text(task)
    else:
        runtime.progress, runtime.stage = 0.0, ""
    runtime.message, runtime.message_level = tracker.message, tracker.level
    runtime.worker_state, runtime.worker_summary, runtime.worker_fix = link.state, link.summary, link.fix
    runtime.worker_tasks = ", ".join((link.health or {}).get("supports_tasks") or ()) if link.client is not None else ""
    compat.tag_sequencer_redraw(context)


def notify_status_bar(message: str, level: str) -> None:
    """A line in the status bar and the Info log. From a timer there is no operator to
    report through, so a small internal one does it."""
    try:
        # ERROR reports raise when an operator is called from Python; WARNING shows the same.
        bpy.ops.acestep.notify(message=message[:1000], level="WARNING" if level == "ERROR" else level)
    except Exception:  # no window to report in (Blender closing, say)
        pass
