"""A generation in flight: requests go to the worker and come back as takes, one short
step per tick so REAPER never waits.

Each tick does at most one call to the worker (probe, upload, submit or a file fetch)
and touches REAPER only to check for a Cancel and to update a progress label when its
text changes. While jobs run, no tick waits on the worker: each tick takes one
non-blocking step of a StatusPoll (send a status request, or take the part of its
answer that has arrived), so a busy worker that needs milliseconds, once a third of a
second, to answer never holds up REAPER's main thread. No thread either: REAPER runs
a script's Python threads only while the script's own code runs (python-reapy issue
#45), so a thread could stall between ticks. The steps: find or start the worker,
upload source audio (covers), submit, follow the jobs until every one is done, bring
each file into the media folder, then hand everything to the Placement, which edits
the project in one undo block. A Placement also shows progress and removes its
placeholders when the run is cancelled or fails, so nothing is left half-made.

SetGeneration does the same for a dynamic-music set, which is one job at the worker.

The runs in flight are listed in the ExtState ("runs": run id -> job ids), so the
Cancel action, a separate script in REAPER, can find them; it cancels their jobs at
the worker and lists their run ids under "cancel".
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from acestep_core import client as worker_client
from acestep_core.errors import AceStepError, WorkerError, WorkerNotRunning, WorkerUnreachable
from acestep_core.jobs import CANCELLED, DONE, FAILED, QUEUED, CueOutput, JobArtifact, JobStatus
from acestep_core.progress import LOADING
from acestep_core.request import BASE_ONLY_TASKS, GenerationRequest

from acestep_core import output_names

from . import media, project, settings

WORKER_START_TIMEOUT = 90.0
PROBE_TIMEOUT = 0.5  # a tick may wait this long for a worker that does not answer
LOADING_LABEL = "ACE-Step: loading model"
MODEL_LOADING, MODEL_UNLOADED = "loading", "unloaded"  # the worker health's model_state

BASE_REPO_ID = "ACE-Step/acestep-v15-xl-base-diffusers"  # as acestep_core.backends.base says (not imported: a host module)

RUNNING: dict[str, "Generation"] = {}  # this Python's runs (REAPER keeps one interpreter)


@dataclass
class Result:
    request: GenerationRequest
    job: JobStatus
    files: list[Path] = field(default_factory=list)  # one per output, in output order
    artifact_files: dict[str, Path] = field(default_factory=dict)  # a set's manifest and resource, by role


class Placement(Protocol):
    """Where a run's results go, and what shows it is on its way."""

    project: str

    def progress(self, index: int, text: str) -> None: ...

    def place(self, results: list[Result]) -> None: ...

    def discard(self) -> None: ...


# -- the run list in the ExtState ---------------------------------------------------------------


def _read_json(key: str, default):
    try:
        return json.loads(project.get_state(key, settings.EXT_SECTION) or "null") or default
    except ValueError:
        return default


def running_runs() -> dict[str, list[str]]:
    return _read_json("runs", {})


def cancelled_runs() -> list[str]:
    return _read_json("cancel", [])


def _set_run(run_id: str, job_ids: list[str] | None) -> None:
    runs = running_runs()
    if job_ids is None:
        runs.pop(run_id, None)
    else:
        runs[run_id] = job_ids
    project.set_state("runs", json.dumps(runs) if runs else "", settings.EXT_SECTION)
    if job_ids is None:
        cancelled = [r for r in cancelled_runs() if r != run_id]
        project.set_state("cancel", json.dumps(cancelled) if cancelled else "", settings.EXT_SECTION)


def request_cancel(run_ids: list[str]) -> None:
    project.set_state("cancel", json.dumps(sorted(set(cancelled_runs()) | set(run_ids))), settings.EXT_SECTION)


# -- the run ------------------------------------------------------------------------------------


class Generation:
    """One action's requests, from the worker to the timeline."""

    def __init__(self, requests: list[GenerationRequest], placement: Placement, folder: Path,
                 notice: str | None = None, uploads: list[str | None] | None = None):
        self.run_id = uuid.uuid4().hex
        self.requests = list(requests)
        self.placement = placement
        self.folder = folder
        self.notice = notice
        self.uploads = list(uploads or [None] * len(requests))
        self.jobs: list[JobStatus | None] = [None] * len(requests)
        self.results: list[Result] = []
        self.client: worker_client.WorkerClient | None = None
        self.launch = None
        self.launched_at = 0.0
        self.phase = "connect"
        self.model_loading = False  # the worker said it is loading the model; no job of ours has started
        self.finished = False
        self.outcome = ""  # "placed", "cancelled" or the error shown
        self._status_poll: worker_client.StatusPoll | None = None
        self._seen: JobStatus | None = None
        self.status_updates = 0  # new statuses the ticks took from the worker
        self._fetch_queue: list[tuple[int, CueOutput | JobArtifact]] = []
        RUNNING[self.run_id] = self
        _set_run(self.run_id, [])

    # -- one step ----------------------------------------------------------------------------

    def tick(self) -> bool:
        """Take the next step; False once the run is over (placed, cancelled or failed)."""
        if self.finished:
            return False
        try:
            if self.run_id in cancelled_runs():
                self._end_cancelled()
            else:
                getattr(self, "_" + self.phase)()
        except WorkerNotRunning as error:
            self._fail(_worker_message(error))
        except WorkerUnreachable as error:
            self._fail(f"ACE-Step lost its worker: {error}.\n\nRun the action again: it starts a new worker "
                       "when none answers (or start one yourself with 'acestep-dcc worker').")
        except AceStepError as error:
            self._fail(str(error))
        except Exception as error:  # shown, not only printed: users do not watch the console
            project.console(traceback.format_exc())
            self._fail(f"ACE-Step stopped because of an unexpected error: {error}\n\n"
                       "The details are in the ReaScript console; please include them when you report it.")
        return not self.finished

    def abandon(self) -> None:
        """The user stopped the script (REAPER's atexit): cancel the jobs and clean up."""
        if self.finished:
            return
        for job in self.jobs:
            if job is not None and self.client is not None:
                try:
                    self.client.cancel(job.id)
                except WorkerError:
                    pass
        self._end_cancelled()

    # -- the steps -----------------------------------------------------------------------------

    def _connect(self) -> None:
        self.client = settings.find_worker(timeout=PROBE_TIMEOUT)
        if self.client is not None:
            self.phase = "model_state"
            return
        command = settings.host_worker_command()
        if not command:
            raise WorkerNotRunning(settings.NO_WORKER_MESSAGE)
        self._show_all("ACE-Step: starting the worker")
        # A Worker Python that is not there, or lacks the worker's packages, is then said
        # in one sentence that names the setting and the Python to set.
        self.launch = worker_client.start_worker(command, setting=settings.WORKER_PYTHON,
                                                 fix=settings.worker_python_fix(command[0]))
        self.launched_at = time.monotonic()
        self.phase = "starting"

    def _starting(self) -> None:
        self.client = worker_client.check_started(self.launch, timeout=PROBE_TIMEOUT)
        if self.client is not None:
            self.phase = "model_state"
        elif time.monotonic() - self.launched_at > WORKER_START_TIMEOUT:
            raise WorkerNotRunning(f"the worker did not start within {WORKER_START_TIMEOUT:g} s; "
                                   f"its log is at {getattr(self.launch, 'log_path', 'the worker log')}")

    def _model_state(self) -> None:
        """One look at the worker's health: while it loads the model (as a worker REAPER
        started with --preload does at first), queued jobs show "loading model"."""
        health = self.client.health()
        self.check_tasks(health)
        state = health.get("model_state")
        # A worker we just started with --preload may answer before its load begins.
        self.model_loading = state == MODEL_LOADING or (self.launch is not None and state == MODEL_UNLOADED)
        if self.model_loading:
            self._show_all(LOADING_LABEL)
        self.phase = "upload"

    def check_tasks(self, health: dict) -> None:
        """Refuse, before anything is sent, a task the worker's model cannot do (a worker
        too old to list its tasks is left to answer for itself)."""
        supported = health.get("supports_tasks")
        if not isinstance(supported, list):
            return
        for request in self.requests:
            if request.task not in supported:
                raise AceStepError(unsupported_task_message(request.task, health))

    def _upload(self) -> None:
        for index, path in enumerate(self.uploads):
            if path is not None:
                self._show(index, "ACE-Step: sending the source audio")
                upload_id = self.client.upload(path)
                self.requests[index].source_audio = upload_id
                self.uploads[index] = None
                return
        self.phase = "submit"

    def _submit_job(self, request: GenerationRequest) -> JobStatus:
        return self.client.submit(request)

    def _submit(self) -> None:
        index = self.jobs.index(None)
        self.jobs[index] = self._submit_job(self.requests[index])
        _set_run(self.run_id, [job.id for job in self.jobs if job is not None])
        self._show(index, LOADING_LABEL if self.model_loading else "ACE-Step queued")
        if None not in self.jobs:
            self.phase = "poll"

    def _poll(self) -> None:
        # The worker runs jobs first come, first served, so this run's jobs end in the order
        # they were submitted: one poll at a time, on the first job not yet finished.
        index = next(i for i, job in enumerate(self.jobs) if not job.finished)
        if self._status_poll is None or self._status_poll.job_id != self.jobs[index].id:
            self._stop_polling()
            self._status_poll = worker_client.StatusPoll(self.client, self.jobs[index].id)
        job = self._status_poll.poll()  # never waits; raises WorkerUnreachable for a lost worker
        if job is None or job is self._seen:
            return
        self._seen = job
        self.status_updates += 1
        self.jobs[index] = job
        if job.status == FAILED:
            raise AceStepError(f"ACE-Step could not generate {media.short_prompt(self.requests[index].prompt)!r}: "
                               f"{job.error or 'the worker gave no reason'}. Change the request and try again.")
        if job.status == CANCELLED:
            self._end_cancelled()
            return
        if job.status != QUEUED:
            self.model_loading = False  # the worker has taken a job: loaded, or loading for it
        if job.status == DONE:
            self._show(index, "ACE-Step 100%")
        elif job.status == QUEUED:
            self._show(index, LOADING_LABEL if self.model_loading else "ACE-Step queued")
        elif job.stage == LOADING:
            self._show(index, LOADING_LABEL)
        else:
            self._show(index, self._progress_label(job))
        if all(job.status == DONE for job in self.jobs):
            self._stop_polling()
            self.results = [Result(request, job) for request, job in zip(self.requests, self.jobs)]
            self._fetch_queue = [(i, file) for i, job in enumerate(self.jobs) for file in self._files_to_fetch(job)]
            self.phase = "fetch"

    def _progress_label(self, job: JobStatus) -> str:
        return f"ACE-Step {int(job.progress * 100)}%"

    def _files_to_fetch(self, job: JobStatus) -> list[CueOutput | JobArtifact]:
        return list(job.outputs)

    def _fetch(self) -> None:
        index, file = self._fetch_queue.pop(0)
        self._bring_home(self.results[index], file)
        if not self._fetch_queue:
            self.phase = "place"

    def _bring_home(self, result: Result, file: CueOutput | JobArtifact) -> None:
        result.files.append(media.bring_home(self.client, result.job.id, file, self.folder, result.request.prompt))

    def _place(self) -> None:
        self.placement.place(self.results)
        if self.notice:
            project.console(self.notice)
        warnings = self.warnings()
        if warnings:  # also in the item notes; the console opens, so the user sees them now
            project.console("\n".join(f"ACE-Step warning: {text}" for text in warnings))
        self._end("placed")

    def warnings(self) -> list[str]:
        """The worker's warnings about the placed files, each once, naming the cue."""
        found: list[str] = []
        for result in self.results:
            for output in result.job.outputs:
                for text in media.output_warnings(output):
                    line = f"{media.short_prompt(result.request.prompt)!r} (seed {output.seed}): {text}"
                    if line not in found:
                        found.append(line)
        return found

    # -- endings -------------------------------------------------------------------------------

    def _stop_polling(self) -> None:
        if self._status_poll is not None:
            self._status_poll.close()
            self._status_poll = None

    def _end(self, outcome: str) -> None:
        self._stop_polling()
        self.finished = True
        self.outcome = outcome
        RUNNING.pop(self.run_id, None)
        _set_run(self.run_id, None)

    def _end_cancelled(self) -> None:
        self.placement.discard()
        self._end("cancelled")

    def _fail(self, text: str) -> None:
        try:
            self.placement.discard()
        finally:
            self._end(text)
            project.message(text)

    def _show(self, index: int, text: str) -> None:
        self.placement.progress(index, text)

    def _show_all(self, text: str) -> None:
        for index in range(len(self.requests)):
            self.placement.progress(index, text)


class SetGeneration(Generation):
    """A dynamic-music set: one job at the worker (POST /v1/sets). Its files keep the
    worker's names, with their sidecars, in a new folder inside the media folder, beside
    the manifest and Godot resource that name them: the folder is the set as a game
    engine takes it."""

    def __init__(self, request: GenerationRequest, options: dict, placement: Placement, folder: Path,
                 notice: str | None = None):
        super().__init__([request], placement, folder, notice)
        self.options = dict(options)  # submit_set's intensities, bars ("fit" or a number), stingers
        self.set_folder: Path | None = None

    def _submit_job(self, request: GenerationRequest) -> JobStatus:
        return self.client.submit_set(request, **self.options)

    def _progress_label(self, job: JobStatus) -> str:
        part = job.stage.split(":")[0] if ":" in job.stage else ""  # "intensity 2/3: generating 5/8"
        return f"ACE-Step {int(job.progress * 100)}%" + (f" ({part})" if part else "")

    def _files_to_fetch(self, job: JobStatus) -> list[CueOutput | JobArtifact]:
        return [*job.outputs, *job.artifacts]

    def _bring_home(self, result: Result, file: CueOutput | JobArtifact) -> None:
        if self.set_folder is None:
            label = media.maker_label(file if isinstance(file, CueOutput) else None)
            self.set_folder = media.new_set_folder(self.folder, result.request.prompt, label)
        target = self.set_folder / Path(file.path).name
        path = media.fetch_file(self.client, result.job.id, file.index, file.path, target)
        if isinstance(file, CueOutput):
            result.files.append(path)
            media.write_sidecar(file, self.set_folder)
        else:
            result.artifact_files[file.role] = path


TASK_WORDS = {"repaint": "repaint part of an item", "lego": "add a layer (lego)", "extract": "extract stems",
              "complete": "complete an arrangement", "cover": "cover an item", "text2music": "make new music"}


def supported_tasks_text(health: dict) -> str:
    """'sketch (procedural sketch) can do: text2music' from a worker's health."""
    tasks = health.get("supports_tasks") or ["text2music"]
    label = health.get("label") or health.get("backend") or "the worker's model"
    return f"{label} can do: {', '.join(tasks)}"


def unsupported_task_message(task: str, health: dict) -> str:
    """One sentence that says the loaded model cannot do `task`, and what to load instead."""
    what = TASK_WORDS.get(task, task)
    head = f"The loaded model cannot {what}: {supported_tasks_text(health)}."
    if health.get("backend") == "sketch":
        return (f"{head} The sketch backend only makes new music; start the worker with an ACE-Step checkpoint "
                f"('acestep-dcc worker --backend acestep --model FOLDER'), then run this action again.")
    if task in BASE_ONLY_TASKS:
        return (f"{head} {task} needs a base or sft checkpoint; ACE-Step's turbo checkpoints were not trained for it: "
                f"run 'acestep-dcc download-model {BASE_REPO_ID}' and start the worker with --model on that folder.")
    return f"{head} Start the worker with a checkpoint that can, then run this action again."


def _worker_message(error: WorkerNotRunning) -> str:
    text = str(error)
    if text == settings.NO_WORKER_MESSAGE:
        return text
    if text.startswith((settings.WORKER_PYTHON, f"cannot start the worker with {settings.WORKER_PYTHON}")):
        return f"ACE-Step's worker could not be started: {text}."  # it says what to set
    return (f"ACE-Step's worker could not be started: {text}\n\n"
            "Check the worker command (run 'acestep-dcc install reaper' again from the environment where "
            "acestep-dcc is installed), or start the worker yourself with 'acestep-dcc worker'.")


@dataclass(frozen=True)
class StemFile:
    """One stem of a finished output, as the worker lists it: a track name, its file on
    the worker's machine, and n in GET /v1/jobs/{id}/files/{n} when the worker serves it."""

    output: CueOutput
    track: str
    path: str
    index: int | None = None


def stem_files(output: CueOutput) -> list[StemFile]:
    """The output's stems: the worker's list ({"track", "index", "file"}) or CueOutput's
    track -> path mapping."""
    stems = output.stem_files or output.stems or {}
    if isinstance(stems, dict):
        return [StemFile(output, track, str(path)) for track, path in stems.items()]
    found = []
    for entry in stems:
        path = entry.get("path") or entry.get("file") or ""
        if path and not Path(path).is_absolute():
            path = str(Path(output.path).with_name(Path(path).name))
        found.append(StemFile(output, entry["track"], path, entry.get("index")))
    return found


class StemsGeneration(Generation):
    """A split into stems: one job whose stems, not its mix, come home, named after the
    mix they belong to (NAME.drums.wav ...); Result.artifact_files maps each track to its file."""

    def _files_to_fetch(self, job: JobStatus) -> list[StemFile]:
        found = [stem for output in job.outputs[:1] for stem in stem_files(output)]
        if not found:
            raise AceStepError("The worker made no stems of this item: its model plays none of the asked-for parts. "
                               "Split an item that has music in it, or a file the sketch or a base checkpoint made.")
        return found

    def _bring_home(self, result: Result, file: StemFile) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not result.artifact_files:  # one free mix name for all the stems, so they share it
            fmt = output_names.audio_extension(file.output.path) or "wav"
            tracks = [stem.track for stem in stem_files(file.output)]
            mix = output_names.first_free_paths(
                self.folder / f"{media.maker_label(file.output)} stems {media._slug(result.request.prompt)}.{fmt}",
                fmt, stem_tracks=tracks)[0]
            self._mix_target = mix
        target = output_names.stem_path(self._mix_target, file.track)
        if file.index is None and not (media.worker_is_local(self.client) and Path(file.path).is_file()):
            raise AceStepError("This worker runs on another machine and does not serve stem files; "
                               "run the worker on this machine, or update acestep-dcc where the worker runs.")
        result.artifact_files[file.track] = media.fetch_file(self.client, result.job.id, file.index or 0,
                                                             file.path, target)
