"""What generated files are called, and the rules that keep them from clobbering each other.

Standard library only: the CLI, the worker and both hosts name files with these, so a
cue is named the same way wherever it is made.

- A cue's sidecar is the audio file's whole name plus ".json" (`boss-1.wav.json`), the
  convention of Godot's `.import` and Unity's `.meta` files: every audio file has its
  own sidecar, so `x.ogg` and `x.flac` in one folder never share one.
- Only WAV, FLAC and Ogg are written; any other extension on an output name is refused
  with a sentence, never silently turned into `x.mp3.wav`.
- Nothing is overwritten unless the caller says so: the CLI refuses without
  --overwrite, and hosts and the worker take the next free number (`boss_2.wav`).
"""

from __future__ import annotations

import re
from pathlib import Path

from acestep_core.errors import FieldProblem, InvalidRequest
from acestep_core.request import OUTPUT_FORMATS

SIDECAR_SUFFIX = ".json"
# A suffix that looks like a file extension (".mp3", ".aiff"), not a numbered name ("scene.1").
_EXTENSION_PATTERN = re.compile(r"^\.[A-Za-z][A-Za-z0-9]{0,4}$")
MAX_NUMBER = 9999


def sidecar_path(audio_path: str | Path) -> Path:
    """boss-1.wav -> boss-1.wav.json"""
    audio_path = Path(audio_path)
    return audio_path.with_name(audio_path.name + SIDECAR_SUFFIX)


def audio_extension(path: str | Path) -> str | None:
    """'wav', 'flac' or 'ogg' when the name ends in one of them (any case), else None."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in OUTPUT_FORMATS else None


def output_format_for(path: str | Path, explicit_format: str | None = None, field: str = "output") -> str:
    """The format a file name and an explicit --format agree on (default wav).

    Raises InvalidRequest when the name ends in an extension acestep-dcc does not write
    (x.mp3), or in one that contradicts `explicit_format` (x.wav with --format flac).
    """
    path = Path(path)
    named = audio_extension(path)
    if named is None and _EXTENSION_PATTERN.match(path.suffix):
        raise InvalidRequest([FieldProblem(field, (
            f"{path.name} ends in {path.suffix}, and acestep-dcc writes only WAV, FLAC and Ogg: "
            f"name the file {path.stem}.wav, {path.stem}.flac or {path.stem}.ogg"))])
    if named is not None and explicit_format is not None and named != explicit_format:
        raise InvalidRequest([FieldProblem(field, (
            f"{path.name} is named as {named.upper()} but --format asks for {explicit_format.upper()}: "
            f"name it {path.stem}.{explicit_format}, or leave --format out"))])
    return named or explicit_format or "wav"


def file_stem(path: str | Path) -> str:
    """The name without its audio extension: boss.wav -> boss, scene.1 -> scene.1."""
    path = Path(path)
    return path.stem if audio_extension(path) else path.name


def stem_path(audio_path: str | Path, track: str) -> Path:
    """boss.wav -> boss.drums.wav, boss-2.flac -> boss-2.drums.flac: a stem beside its mix."""
    audio_path = Path(audio_path)
    extension = audio_extension(audio_path)
    name = f"{file_stem(audio_path)}.{track}" + (f".{extension}" if extension else "")
    return audio_path.with_name(name)


def with_stems(audio_paths: list[Path], tracks: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """Every audio path followed by its stems' paths for `tracks`."""
    return [p for audio in audio_paths for p in (Path(audio), *(stem_path(audio, t) for t in tracks))]


def candidate_paths(output_path: str | Path, output_format: str, candidates: int) -> list[Path]:
    """boss.wav -> [boss.wav] for one candidate, [boss-1.wav, boss-2.wav, ...] for more."""
    output_path = Path(output_path)
    stem, folder = file_stem(output_path), output_path.parent
    if candidates == 1:
        return [folder / f"{stem}.{output_format}"]
    return [folder / f"{stem}-{k}.{output_format}" for k in range(1, candidates + 1)]


def with_sidecars(audio_paths: list[Path]) -> list[Path]:
    """Every audio path followed by its sidecar's."""
    return [p for audio in audio_paths for p in (Path(audio), sidecar_path(audio))]


def existing(paths: list[Path]) -> list[Path]:
    """The paths among `paths` that something already occupies (a file, a folder, a link)."""
    return [p for p in paths if p.exists() or p.is_symlink()]


def refuse_existing(audio_paths: list[Path], overwrite_hint: str = "--overwrite") -> None:
    """Raise InvalidRequest naming every file (audio or sidecar) that writing would replace."""
    taken = existing(with_sidecars(audio_paths))
    if taken:
        names = ", ".join(str(p) for p in taken[:4]) + (f" and {len(taken) - 4} more" if len(taken) > 4 else "")
        raise InvalidRequest([FieldProblem("output", (
            f"{names} already exist{'s' if len(taken) == 1 else ''}; choose another name, or pass "
            f"{overwrite_hint} to replace {'it' if len(taken) == 1 else 'them'}"))])


def first_free_paths(output_path: str | Path, output_format: str, candidates: int = 1,
                     stem_tracks: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """candidate_paths for the first of boss, boss_2, boss_3, ... whose files and sidecars
    (and the stems for `stem_tracks`, boss.drums.wav ...) are all free: what the worker and
    the hosts write when a name is taken."""
    output_path = Path(output_path)
    stem, folder = file_stem(output_path), output_path.parent
    for number in range(1, MAX_NUMBER + 1):
        name = stem if number == 1 else f"{stem}_{number}"
        paths = candidate_paths(folder / name, output_format, candidates)
        if not existing(with_sidecars(with_stems(paths, stem_tracks))):
            return paths
    raise InvalidRequest([FieldProblem("output", (
        f"{folder} already holds {MAX_NUMBER} cues named {stem}; choose another name or folder"))])
