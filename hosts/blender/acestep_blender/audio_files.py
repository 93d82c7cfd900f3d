"""Where generated audio is kept: the output folder, and bringing a job's files into it.

The default folder is `//acestep_audio/` beside the .blend, so the project moves with
its audio and strips point at it by relative path. An unsaved .blend has no "beside":
its audio goes to a temporary folder and the user is told so. Files there are never
overwritten (acestep_core.output_names numbers a taken name). No bpy here: `bring_in`
runs on the task runner's thread.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from acestep_core import output_names
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
    nothing here) every output of a done job into `folder`, candidate order kept, each
    with its sidecar (`x.wav.json`); returns the local paths. Nothing there is
    overwritten: a taken name gets the next number (`boss_2.wav`)."""
    _make_folder(folder)
    outputs = sorted(status.outputs, key=lambda o: o.index)
    if not outputs:
        return []
    audio_format = output_names.audio_extension(outputs[0].path) or "wav"
    targets = output_names.first_free_paths(folder / f"{_job_stem(outputs)}.{audio_format}", audio_format,
                                            len(outputs))
    for output, target in zip(outputs, targets):
        source = Path(output.path)
        if not remote and source.is_file():
            _copy(source, target)
            if output.sidecar_path and Path(output.sidecar_path).is_file():
                _copy(Path(output.sidecar_path), output_names.sidecar_path(target))
        else:
            client.download(status.id, output.index, target)
    return targets


def _job_stem(outputs) -> str:
    """The worker's name for the job's files, without the candidate number
    ('calm-exploration' of calm-exploration-1.wav, calm-exploration-2.wav)."""
    stem = output_names.file_stem(Path(outputs[0].path).name)
    if len(outputs) > 1 and stem.endswith("-1"):
        stem = stem[:-2]
    return stem or "cue"


def bring_in_set(client, status: JobStatus, folder: Path, remote: bool = False) -> tuple[list[Path], list[Path]]:
    """A done set into a folder of its own (`<name>-set-<job>`), the worker's file names
    kept, since its manifest and Godot resource name the files. Returns (audio in output
    order, [manifest, Godot resource])."""
    outputs = sorted(status.outputs, key=lambda o: o.index)
    first = Path(outputs[0].path).stem if outputs else "set"
    stem = first[: -len("-base")] if first.endswith("-base") else first
    short_id = re.sub(r"[^A-Za-z0-9]", "", status.id)[:8]
    target_folder = _free_name(folder / f"{stem}-set-{short_id}")
    _make_folder(target_folder)

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
            # Under the worker's own name: the set's manifest names each sidecar.
            _copy(Path(output.sidecar_path), target_folder / Path(output.sidecar_path).name)
    artifacts = [fetch(a.index, Path(a.path)) for a in sorted(status.artifacts, key=lambda a: a.index)]
    return audio, artifacts


def bring_in_stems(client, status: JobStatus, folder: Path, remote: bool = False) -> tuple[list[Path], dict[str, Path]]:
    """A done split into a folder of its own (`<name>-stems-<job>`), downloaded through the
    worker (a local one too: the stems are files of the job, served like its mix), the mix
    with its sidecar; a local worker's stem sidecars (which say whose stem it is) are copied
    beside them. Returns ([the mix], {track: stem file}) in the worker's order of the stems."""
    outputs = sorted(status.outputs, key=lambda o: o.index)
    first = Path(outputs[0].path).stem if outputs else "stems"
    short_id = re.sub(r"[^A-Za-z0-9]", "", status.id)[:8]
    target_folder = _free_name(folder / f"{first}-stems-{short_id}")
    _make_folder(target_folder)
    fetched = client.download_outputs(status.id, target_folder)
    if not fetched:
        return [], {}
    if not remote:
        for track, path in fetched[0]["stems"].items():
            worker_sidecar = output_names.sidecar_path(Path(outputs[0].stems.get(track) or ""))
            if outputs[0].stems.get(track) and worker_sidecar.is_file():
                _copy(worker_sidecar, output_names.sidecar_path(Path(path)))
    return [Path(fetched[0]["path"])], {track: Path(path) for track, path in fetched[0]["stems"].items()}


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritable(
            f"cannot create the audio folder {folder}: {exc.strerror}; choose another Audio Folder "
            "in the add-on preferences") from None


def _copy(source: Path, target: Path) -> None:
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise OutputNotWritable(
            f"cannot write {target}: {exc.strerror}; free some space or choose another Audio Folder") from None


def _free_name(path: Path) -> Path:
    """A folder name nothing occupies yet: path, path-2, path-3..."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
