"""Where generated audio is kept: the output folder, and bringing a job's files into it.

The default folder is `//acestep_audio/` beside the .blend, so the project moves with
its audio and strips point at it by relative path. An unsaved .blend has no "beside":
its audio goes to a temporary folder and the user is told so. No bpy here: `bring_in`
runs on the task runner's thread.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from acestep_core.errors import OutputNotWritable
from acestep_core.jobs import JobStatus

UNSAVED_FOLDER_NAME = "acestep_audio"
BLEND_RELATIVE = "//"


def resolve_output_folder(setting: str, blend_filepath: str) -> tuple[Path, str]:
    """(absolute folder, notice for the user or ""). `blend_filepath` is bpy.data.filepath."""
    setting = setting or f"{BLEND_RELATIVE}acestep_audio/"
    if setting.startswith(BLEND_RELATIVE):
        if not blend_filepath:
            folder = Path(tempfile.gettempdir()) / UNSAVED_FOLDER_NAME
            notice = (f"This .blend is not saved, so the audio is in the temporary folder {folder}; "
                      "save the .blend before generating to keep the audio beside it")
            return folder, notice
        setting = os.path.join(os.path.dirname(blend_filepath), setting[len(BLEND_RELATIVE):])
    # normpath, not resolve: symlinks kept, so paths relative to the .blend stay short.
    return Path(os.path.normpath(os.path.expanduser(setting))), ""


def bring_in(client, status: JobStatus, folder: Path, remote: bool = False) -> list[Path]:
    """Copy (same machine) or download (a worker on another machine, whose paths mean
    nothing here) every output of a done job into `folder`, candidate order kept;
    returns the local paths."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritable(
            f"cannot create the audio folder {folder}: {exc.strerror}; choose another Audio Folder "
            "in the add-on preferences") from None
    local: list[Path] = []
    for output in sorted(status.outputs, key=lambda o: o.index):
        source = Path(output.path)
        target = _free_name(folder / _local_name(source.name, status.id))
        if not remote and source.is_file():
            _copy(source, target)
            if output.sidecar_path and Path(output.sidecar_path).is_file():
                _copy(Path(output.sidecar_path), target.with_suffix(".json"))
        else:
            client.download(status.id, output.index, target)
        local.append(target)
    return local


def bring_in_set(client, status: JobStatus, folder: Path, remote: bool = False) -> tuple[list[Path], list[Path]]:
    """A done set into a folder of its own (`<name>-set-<job>`), the worker's file names
    kept, since its manifest and Godot resource name the files. Returns (audio in output
    order, [manifest, Godot resource])."""
    outputs = sorted(status.outputs, key=lambda o: o.index)
    first = Path(outputs[0].path).stem if outputs else "set"
    stem = first[: -len("-base")] if first.endswith("-base") else first
    short_id = re.sub(r"[^A-Za-z0-9]", "", status.id)[:8]
    target_folder = _free_name(folder / f"{stem}-set-{short_id}")
    try:
        target_folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritable(
            f"cannot create the audio folder {target_folder}: {exc.strerror}; choose another Audio Folder "
            "in the add-on preferences") from None

    def fetch(index: int, source: Path) -> Path:
        target = target_folder / source.name
        if not remote and source.is_file():
            _copy(source, target)
        else:
            client.download(status.id, index, target)
        return target

    audio = []
    for output in outputs:
        audio.append(fetch(output.index, Path(output.path)))
        if not remote and output.sidecar_path and Path(output.sidecar_path).is_file():
            _copy(Path(output.sidecar_path), audio[-1].with_suffix(".json"))
    artifacts = [fetch(a.index, Path(a.path)) for a in sorted(status.artifacts, key=lambda a: a.index)]
    return audio, artifacts


def _copy(source: Path, target: Path) -> None:
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise OutputNotWritable(
            f"cannot write {target}: {exc.strerror}; free some space or choose another Audio Folder") from None


def _local_name(worker_name: str, job_id: str) -> str:
    """'calm-exploration-1.wav' of job 4ca09ebf... -> 'calm-exploration-1-4ca09ebf.wav':
    the same prompt twice must not overwrite the first take."""
    stem, dot, suffix = worker_name.rpartition(".")
    if not dot:
        stem, suffix = worker_name, "wav"
    short_id = re.sub(r"[^A-Za-z0-9]", "", job_id)[:8]
    return f"{stem}-{short_id}.{suffix}"


def _free_name(path: Path) -> Path:
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
