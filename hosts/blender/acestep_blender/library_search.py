"""A cue-library search on a background thread, and what Place at Playhead needs that
is not bpy: the cue's file copied into the audio folder, and what the strip records.

The thread finds (or waits for) the worker through the add-on's one WorkerLink and asks
it once (GET /v1/library); the Library panel's timer tick reads what it published. No
bpy here.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from acestep_core import output_names
from acestep_core.errors import AceStepError, OutputNotWritable, WorkerError
from acestep_core.jobs import CueOutput
from acestep_core.library import LibraryCue, LibraryQuery
from acestep_core.request import GenerationRequest

from . import worker_link


class LibrarySearch(threading.Thread):
    """One search. `cues` (a list) or `error` (a sentence) is set before `done`."""

    def __init__(self, query: LibraryQuery, link: worker_link.WorkerLink):
        super().__init__(name="acestep library search", daemon=True)
        self.query = query
        self.link = link
        self.cues: list[LibraryCue] | None = None
        self.error = ""
        self.done = threading.Event()
        self._stop_asked = threading.Event()

    def stop(self) -> None:
        self._stop_asked.set()

    def run(self) -> None:
        try:
            client = self.link.wait_until_started(self._stop_asked.is_set)
            if client is not None:
                self.cues = client.library_search(self.query)
        except WorkerError as exc:
            if self.link.state != worker_link.DOWN:
                self.link.lost(exc)
            self.error = str(exc)
        except AceStepError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug of ours: a sentence in the panel, not a dead thread
            self.error = f"unexpected error ({type(exc).__name__}: {exc})"
        finally:
            self.done.set()


class LibraryDownload(threading.Thread):
    """A library cue fetched from a worker on another machine (its paths mean nothing here)
    into `target`, with its sidecar. `path` or `error` is set before `done`."""

    def __init__(self, client, cue: LibraryCue, target: Path, frame: int):
        super().__init__(name="acestep library download", daemon=True)
        self.client, self.cue, self.target, self.frame = client, cue, target, frame
        self.path: Path | None = None
        self.error = ""
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.path, _ = self.client.library_download(self.cue.id, self.target)
        except AceStepError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug of ours: a sentence in the panel, not a dead thread
            self.error = f"unexpected error ({type(exc).__name__}: {exc})"
        finally:
            self.done.set()


def free_target(cue: LibraryCue, folder: Path) -> Path:
    """Where a downloaded cue goes: its own name in the audio folder, numbered when taken."""
    name = Path(cue.path.replace("\\", "/")).name or f"library-{cue.id}.wav"
    audio_format = output_names.audio_extension(name) or "wav"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritable(f"cannot create the audio folder {folder}: {exc.strerror}; choose another Audio "
                                "Folder in the add-on preferences") from None
    return output_names.first_free_paths(folder / name, audio_format, 1)[0]


@dataclass
class LibraryJob:
    """What strip_records.record_output reads of a job, for a cue from the library."""

    job_id: str
    request: GenerationRequest


def bring_cue_in(path: Path, folder: Path) -> Path:
    """The cue's file (and sidecar) copied into the audio folder under a free name, so the
    project keeps its audio (the worker prunes its own outputs); a file already in the
    folder is used where it is. Raises AceStepError when the file is gone."""
    if not path.is_file():
        raise AceStepError(f"{path} is not there any more (moved or deleted); index the folder it is in now with "
                           "'acestep-dcc library add FOLDER', then search again")
    if path.parent.resolve() == folder.resolve():
        return path
    audio_format = output_names.audio_extension(str(path)) or "wav"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        [target] = output_names.first_free_paths(folder / path.name, audio_format, 1)
        shutil.copyfile(path, target)
        sidecar = output_names.sidecar_path(path)
        if sidecar.is_file():
            shutil.copyfile(sidecar, output_names.sidecar_path(target))
    except OSError as exc:
        raise OutputNotWritable(f"cannot copy {path.name} into the audio folder {folder}: {exc.strerror}; free some "
                                "space or choose another Audio Folder in the add-on preferences") from None
    return target


def cue_output(path: Path, cue: LibraryCue) -> tuple[LibraryJob, CueOutput]:
    """The placed file as a job's output, from its sidecar, for strip_records."""
    try:
        sidecar = json.loads(output_names.sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sidecar = {}
    sidecar = sidecar if isinstance(sidecar, dict) else {}
    rate = ((sidecar.get("format") or {}).get("sample_rate")) or 0
    request_data = dict(sidecar.get("request") or {}, seed=cue.seed, candidates=1)
    try:
        request = GenerationRequest.from_dict(request_data)
    except (AceStepError, TypeError, ValueError):  # an older sidecar: the prompt is what matters
        request = GenerationRequest(prompt=cue.prompt or path.stem)
    output = CueOutput(index=0, path=str(path), seed=cue.seed or 0, duration=cue.duration or 0.0,
                       sample_rate=int(rate), metadata=sidecar)
    return LibraryJob(job_id=f"library-{cue.id}", request=request), output
