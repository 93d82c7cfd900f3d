"""ACE-Step: Insert from library. A search dialog, the cues the worker's library finds
(listed in the ReaScript console), a dialog to pick one, and the cue as a new item at
the edit cursor on the selected track (a new "ACE-Step" track when none is), in one
undo block, its file copied into the project's media folder like a generated one.

A run like a Generation (tick, abandon), so starting a worker never blocks REAPER: the
steps are find or start the worker, search, pick, place. Every failure ends in a message
box that says what to do.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path

from acestep_core import client as worker_client
from acestep_core import output_names
from acestep_core.errors import AceStepError, FieldProblem, InvalidRequest, WorkerError, WorkerNotRunning
from acestep_core.jobs import CueOutput
from acestep_core.library import LibraryCue, LibraryQuery, parse_range

from . import media, project, settings
from .generation import PROBE_TIMEOUT, WORKER_START_TIMEOUT
from .placements import NEW_TRACK_NAME, key_text, licence_text, loop_fit, loop_note, tempo_text

TITLE = "ACE-Step: Insert from library"
UNDO_LABEL = "ACE-Step: insert from library"
LAST_SEARCH_KEY = "last_library_search"
MAX_LISTED = 30  # one dialog number per cue; more than this is a search to narrow
# Captions hold no commas: REAPER splits GetUserInputs' captions on them.
SEARCH_FIELDS = ("Words (prompt or tags; empty: any)", "BPM (140 or 140-160; empty: any)", "Key (empty: any)",
                 "Loop (yes or no; empty: either)")


def parse_search(values: list[str]) -> LibraryQuery:
    """The dialog's four fields as a query; InvalidRequest names each bad one."""
    problems = []
    try:
        bpm_min, bpm_max = parse_range(values[1], "BPM", "bpm")
    except InvalidRequest as error:
        problems += error.problems
        bpm_min = bpm_max = None
    loop_text = values[3].strip().lower()
    loop = {"": None, "yes": True, "y": True, "no": False, "n": False}.get(loop_text, "bad")
    if loop == "bad":
        problems.append(FieldProblem("loop", f"Loop must be yes or no (or empty for either); "
                                             f"got {values[3].strip()!r}"))
        loop = None
    query = LibraryQuery(text=values[0].strip(), bpm_min=bpm_min, bpm_max=bpm_max, key=values[2].strip() or None,
                         loop=loop, include_missing=False, limit=MAX_LISTED)
    try:
        query = query.validated()
    except InvalidRequest as error:
        problems += error.problems
    if problems:
        raise InvalidRequest(problems)
    return query


def insert_from_library(loop=None) -> "LibraryInsert | None":
    """The action: the search dialog now, the rest on the loop's ticks."""
    from .loops import default_loop

    context = project.read_edit_context()
    last = project.get_state(LAST_SEARCH_KEY, settings.EXT_SECTION)
    try:
        previous = json.loads(last) if last else []
    except ValueError:
        previous = []
    previous = (previous + [""] * len(SEARCH_FIELDS))[: len(SEARCH_FIELDS)] if isinstance(previous, list) else []
    fields = [(caption, str(value)) for caption, value in zip(SEARCH_FIELDS, previous or [""] * len(SEARCH_FIELDS))]
    query_and_values = project.ask_until_valid(TITLE, fields, lambda values: (parse_search(values), values))
    if query_and_values is None:
        return None
    query, values = query_and_values
    project.set_state(LAST_SEARCH_KEY, json.dumps(values), settings.EXT_SECTION, persist=True)
    run = LibraryInsert(query, context)
    (loop or default_loop()).start(run)
    return run


class LibraryInsert:
    """One search and insert, a step per tick."""

    def __init__(self, query: LibraryQuery, context: project.EditContext):
        self.query = query
        self.context = context
        self.client: worker_client.WorkerClient | None = None
        self.launch = None
        self.launched_at = 0.0
        self.phase = "connect"
        self.cues: list[LibraryCue] = []
        self.placed: Path | None = None
        self.finished = False
        self.outcome = ""

    def tick(self) -> bool:
        if self.finished:
            return False
        try:
            getattr(self, "_" + self.phase)()
        except WorkerNotRunning as error:
            self._end(f"ACE-Step's worker could not be started: {error}", show=True)
        except (AceStepError, WorkerError) as error:
            self._end(str(error), show=True)
        except Exception as error:  # shown, not only printed: users do not watch the console
            project.console(traceback.format_exc())
            self._end(f"ACE-Step stopped because of an unexpected error: {error}\n\nThe details are in the "
                      "ReaScript console; please include them when you report it.", show=True)
        return not self.finished

    def abandon(self) -> None:
        """The user stopped the script: nothing is half-made, so nothing to undo."""
        if not self.finished:
            self._end("cancelled")

    # -- the steps ---------------------------------------------------------------------------

    def _connect(self) -> None:
        self.client = settings.find_worker(timeout=PROBE_TIMEOUT)
        if self.client is not None:
            self.phase = "search"
            return
        command = settings.host_worker_command()
        if not command:
            raise WorkerNotRunning(settings.NO_WORKER_MESSAGE)
        self.launch = worker_client.start_worker(command, setting=settings.WORKER_PYTHON,
                                                 fix=settings.worker_python_fix(command[0]))
        self.launched_at = time.monotonic()
        self.phase = "starting"

    def _starting(self) -> None:
        self.client = worker_client.check_started(self.launch, timeout=PROBE_TIMEOUT)
        if self.client is not None:
            self.phase = "search"
        elif time.monotonic() - self.launched_at > WORKER_START_TIMEOUT:
            raise WorkerNotRunning(f"the worker did not start within {WORKER_START_TIMEOUT:g} s")

    def _search(self) -> None:
        self.cues = self.client.library_search(self.query)
        if not self.cues:
            self._end("No cue in ACE-Step's library matches this search. Widen it (fewer words or a wider BPM "
                      "range), generate some cues, or index a folder of cues with 'acestep-dcc library add "
                      "FOLDER'.", show=True)
            return
        self.phase = "choose"

    def _choose(self) -> None:
        lines = [f"ACE-Step library: {len(self.cues)} cue{'s' if len(self.cues) != 1 else ''} found"]
        for number, cue in enumerate(self.cues, 1):
            lines.append(f"{number:3d}. {cue.summary()}\n     {cue.prompt}")
        project.console("\n".join(lines))
        count = len(self.cues)

        def parse(values: list[str]) -> LibraryCue:
            text = values[0].strip()
            if not text.isdigit() or not 1 <= int(text) <= count:
                raise InvalidRequest([FieldProblem("cue", f"Cue number must be a whole number from 1 to {count} "
                                                          f"(the list is in the ReaScript console); got {text!r}")])
            return self.cues[int(text) - 1]

        caption = f"Cue number (1-{count}: the list is in the ReaScript console)"
        chosen = project.ask_until_valid(f"{TITLE} ({count} found)", [(caption, "1")], parse)
        if chosen is None:
            self._end("cancelled")
            return
        self._place(chosen)

    def _place(self, cue: LibraryCue) -> None:
        context = self.context
        folder, notice = media.media_folder(context.rpp_path, context.media_folder)
        path = self._bring_in(cue, folder)
        metadata = _sidecar(path)
        output = CueOutput(index=0, path=str(path), seed=cue.seed or 0, duration=cue.duration or 0.0,
                           sample_rate=int((metadata.get("format") or {}).get("sample_rate") or 0), metadata=metadata)
        item = project.Cue(context.cursor, cue.duration or 0.0,
                           [project.TakeFile(str(path), media.take_name(cue.prompt or path.stem, cue.seed or 0))],
                           library_notes(cue, metadata), _stored_request(metadata))
        fit = loop_fit(output) if metadata.get("loop") else None
        if fit is not None:  # one loop long, as a generated loop is
            item.length, item.start_offset, item.loop_source = fit.length, fit.start_offset, fit.loop_source
        project.place_cues(context.project, context.track, NEW_TRACK_NAME, [item], UNDO_LABEL)
        if notice:
            project.console(notice)
        self.placed = path
        self._end("placed")

    def _bring_in(self, cue: LibraryCue, folder: Path) -> Path:
        """The cue's file (and sidecar) copied into the media folder under a free name;
        downloaded from a worker on another machine (a remote path is never opened here)."""
        source = Path(cue.path.replace("\\", "/"))
        audio_format = output_names.audio_extension(source.name) or "wav"
        if not media.worker_is_local(self.client):
            folder.mkdir(parents=True, exist_ok=True)
            [target] = output_names.first_free_paths(folder / source.name, audio_format)
            return self.client.library_download(cue.id, target)[0]
        if not source.is_file():
            raise AceStepError(f"{source} is not there any more (moved or deleted). Index the folder it is in now "
                               "with 'acestep-dcc library add FOLDER', then search again.")
        folder.mkdir(parents=True, exist_ok=True)
        if source.parent.resolve() == folder.resolve():
            return source
        [target] = output_names.first_free_paths(folder / source.name, audio_format)
        shutil.copyfile(source, target)
        sidecar = output_names.sidecar_path(source)
        if sidecar.is_file():
            shutil.copyfile(sidecar, output_names.sidecar_path(target))
        return target

    def _end(self, outcome: str, show: bool = False) -> None:
        self.finished = True
        self.outcome = outcome
        if show:
            project.message(outcome)


def library_notes(cue: LibraryCue, metadata: dict) -> str:
    """Item notes: what the cue is, the tempo and key it has, its licence, where it came from."""
    backend = metadata.get("backend") or {}
    lines = ["ACE-Step (from the library)", f"prompt: {cue.prompt}", f"seed: {cue.seed}",
             f"model: {backend.get('model_id') or backend.get('label') or cue.model or 'unknown'}",
             f"tempo: {tempo_text(metadata.get('tempo'))}", f"key: {key_text(metadata.get('key'))}",
             f"licence: {licence_text(metadata) or cue.licence or 'not recorded'}"]
    output = CueOutput(index=0, path=cue.path, seed=cue.seed or 0, duration=cue.duration or 0.0,
                       sample_rate=int((metadata.get("format") or {}).get("sample_rate") or 0), metadata=metadata)
    fit = loop_fit(output) if metadata.get("loop") else None
    if fit is not None:
        lines.append(loop_note(fit))
    if cue.originality_flagged:
        lines.append("warning: the originality check flagged this cue")
    lines.append(f"library: {cue.path}")
    return "\n".join(lines)


def _sidecar(path: Path) -> dict:
    try:
        data = json.loads(output_names.sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stored_request(metadata: dict) -> str:
    """The cue's request kept on the item (P_EXT), so Generate variations works on it."""
    request = metadata.get("request")
    if not isinstance(request, dict):
        return ""
    return json.dumps(dict(request, seed=None, source_audio=None, task="text2music", candidates=1), sort_keys=True)
