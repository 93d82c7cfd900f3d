"""Where generated files go and what they are called.

A saved project's files go to its media folder (REAPER's recording path for the
project: next to the .rpp, or its media subfolder). An unsaved project has none, so
they go to a temporary folder and the user is told to save the project with its
media. Worker outputs are copied when the worker shares this machine's files, and
downloaded over HTTP when it does not. A dynamic-music set keeps the worker's file
names in a folder of its own, so its manifest and Godot resource still name its files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from acestep_core import output_names
from acestep_core.client import WorkerClient
from acestep_core.errors import AceStepError
from acestep_core.jobs import CueOutput
from acestep_core.keywords import not_rendered_note

NAME_LIMIT = 48


def unsaved_folder() -> Path:
    return Path(tempfile.gettempdir()) / "acestep-dcc" / "unsaved-projects"


def unsaved_notice(folder: Path) -> str:
    return (
        f"ACE-Step: this project is not saved yet, so the generated audio is in a temporary folder:\n"
        f"  {folder}\n"
        "Save the project with File > Save project as... and tick 'Copy all media into project "
        "directory', or the files may be lost when the temporary folder is cleaned.\n"
    )


def media_folder(rpp_path: str, recording_path: str) -> tuple[Path, str | None]:
    """The folder for new files and, for an unsaved project, the notice to show."""
    if rpp_path:
        folder = Path(recording_path or os.path.dirname(rpp_path))
        return folder, None
    folder = unsaved_folder()
    return folder, unsaved_notice(folder)


def short_prompt(prompt: str, limit: int = NAME_LIMIT) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,") + "…"


def take_name(prompt: str, seed: int) -> str:
    return f"{short_prompt(prompt)} (seed {seed})"


def _slug(prompt: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", " ", prompt).split()
    return "-".join(words)[:40].strip("-").lower() or "cue"


def maker_label(output: CueOutput | None) -> str:
    """"ACE-Step" only for files the model made; the procedural backend says what it is."""
    backend = ((output.metadata or {}).get("backend") or {}).get("name") if output is not None else None
    return "ACE-Step" if backend == "acestep" else (backend or "ACE-Step")


def target_path(folder: Path, prompt: str, seed: int, audio_format: str, label: str = "ACE-Step") -> Path:
    """A new file name in `folder` that names the maker, prompt and seed and overwrites
    nothing: numbered (_2, _3, ...) while the name or its sidecar's is taken, as everywhere
    in acestep-dcc (output_names)."""
    return output_names.first_free_paths(folder / f"{label} {_slug(prompt)} seed{seed}.{audio_format}", audio_format)[0]


def bring_home(client: WorkerClient, job_id: str, output: CueOutput, folder: Path, prompt: str) -> Path:
    """The output's file in `folder`, under a name that says its prompt and seed."""
    folder.mkdir(parents=True, exist_ok=True)
    audio_format = output_names.audio_extension(output.path) or "wav"
    target = target_path(folder, prompt, output.seed, audio_format, maker_label(output))
    path = fetch_file(client, job_id, output.index, output.path, target)
    if output.metadata:  # its sidecar beside it, so the file can be split into stems later
        write_sidecar(output, folder, output_names.sidecar_path(path).name)
    return path


def output_warnings(output: CueOutput) -> list[str]:
    """What the worker warned about this file (a missed loudness target, say): the result's
    list, else the sidecar's."""
    found = getattr(output, "warnings", None) or output.metadata.get("warnings") or []
    unplayed = not_rendered_note(output.metadata)  # words of the prompt the backend did not play
    return [str(text) for text in found if str(text).strip()] + ([unplayed] if unplayed else [])


def worker_is_local(client: WorkerClient) -> bool:
    host = urlsplit(client.url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def fetch_file(client: WorkerClient, job_id: str, index: int, worker_path: str, target: Path) -> Path:
    """Job file `index` at `target`: copied when the worker runs on this machine, else
    downloaded. A remote worker's path is never opened here: it could name any local file."""
    if worker_is_local(client) and os.path.isfile(worker_path):
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(worker_path, partial)
        os.replace(partial, target)
        return target
    return client.download(job_id, index, target)


def new_set_folder(folder: Path, prompt: str, label: str = "ACE-Step") -> Path:
    """A new folder in `folder` for a set's files, named for its maker and prompt (numbered
    _2, _3, ... when taken, like files); never one that already exists."""
    stem = f"{label} set {_slug(prompt)}"
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, output_names.MAX_NUMBER + 1):
        candidate = folder / (stem if number == 1 else f"{stem}_{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise AceStepError(f"{folder} already holds {output_names.MAX_NUMBER} sets named {stem}; "
                       "move some of them, then try again")


def write_sidecar(output: CueOutput, folder: Path, name: str | None = None) -> Path:
    """The output's JSON sidecar in `folder`, written from the metadata the worker sent
    (the files API serves audio, manifests and resources; a sidecar is its metadata).
    The worker's own "set" entry is left out, as in the sidecar it wrote."""
    metadata = {key: value for key, value in output.metadata.items() if key != "set"}
    path = folder / (name or Path(output.sidecar_path or output_names.sidecar_path(output.path)).name)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(metadata, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
