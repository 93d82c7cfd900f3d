"""Where generated files go and what they are called.

A saved project's files go to its media folder (REAPER's recording path for the
project: next to the .rpp, or its media subfolder). An unsaved project has none, so
they go to a temporary folder and the user is told to save the project with its
media. Worker outputs are copied when the worker shares this machine's files, and
downloaded over HTTP when it does not.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from acestep_core.client import WorkerClient
from acestep_core.jobs import CueOutput

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


def target_path(folder: Path, prompt: str, seed: int, suffix: str) -> Path:
    """A new file name in `folder` that names the prompt and seed and overwrites nothing."""
    stem = f"ACE-Step {_slug(prompt)} seed{seed}"
    candidate = folder / f"{stem}{suffix}"
    counter = 2
    while candidate.exists():
        candidate = folder / f"{stem} ({counter}){suffix}"
        counter += 1
    return candidate


def bring_home(client: WorkerClient, job_id: str, output: CueOutput, folder: Path, prompt: str) -> Path:
    """The output's file in `folder`: copied when the worker's path is on this machine,
    else downloaded from the worker."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(output.path).suffix or ".wav"
    target = target_path(folder, prompt, output.seed, suffix)
    if os.path.isfile(output.path):
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(output.path, partial)
        os.replace(partial, target)
        return target
    return client.download(job_id, output.index, target)
