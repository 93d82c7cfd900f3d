"""Writing finished audio: WAV/FLAC/OGG through soundfile, with text metadata, and the
JSON sidecar. Every write goes to a temporary name in the same folder first and is
renamed into place, so nothing half-written ever sits under a final name.

PCM files are quantised here, not by libsndfile: `quantized` rounds to the file's
integer grid and `as_written` gives back the very samples a reader will decode, so
what the sidecar says about the file is measured on the file's own samples.

Every temporary (and every final file of a run still under way) is listed in one
process-wide register; an exit at once (a second Ctrl-C, SIGTERM) calls
discard_files_in_progress() so no half-made run is left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

from acestep_core.errors import GenerationCancelled

FORMAT_SUBTYPES = {
    ("wav", 16): ("WAV", "PCM_16"),
    ("wav", 24): ("WAV", "PCM_24"),
    ("flac", 16): ("FLAC", "PCM_16"),
    ("flac", 24): ("FLAC", "PCM_24"),
    # Vorbis has no bit depth; the request's depth is recorded but not used.
    ("ogg", 16): ("OGG", "VORBIS"),
    ("ogg", 24): ("OGG", "VORBIS"),
}

# Text fields libsndfile writes as RIFF LIST/INFO (WAV) or Vorbis comments (FLAC/OGG).
INFO_FIELDS = ("title", "comment", "software", "artist", "date", "genre", "copyright")
# Frames handed to libsndfile at a time: a few seconds, so a cancel is seen between blocks.
WRITE_BLOCK_FRAMES = 1 << 17
# Samples quantised (and decoded back) at a time.
_CONVERT_BLOCK = 1 << 16


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: probing os.umask is not thread-safe


def new_file_mode() -> int:
    """The permissions any new file of the user's gets (0644 under the usual umask 022)."""
    return 0o666 & ~_UMASK


# -- the register of files in progress -------------------------------------------------------

_register_lock = threading.RLock()
_in_progress: set[Path] = set()
_stopped = False  # set by discard_files_in_progress: the process is about to exit
_runs = threading.local()


def temporary_path_beside(final_path: Path, suffix: str = ".partial") -> Path:
    """A fresh hidden name in the same folder, so the final rename is atomic; listed as in progress.

    mkstemp makes the file private (0600) and a rename keeps that; a finished cue gets
    the permissions any new file of the user's would (new_file_mode).
    """
    final_path = Path(final_path)
    with _register_lock:
        if _stopped:
            raise GenerationCancelled()
        fd, name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=suffix, dir=final_path.parent)
        try:
            if hasattr(os, "fchmod"):  # not on Windows, where files have no mode bits to fix
                os.fchmod(fd, new_file_mode())
        finally:
            os.close(fd)
        _in_progress.add(Path(name))
    return Path(name)


def replace_with_temporary(temporary: Path, destination: Path) -> None:
    """Rename a temporary over an existing file (a rewrite); the destination stays listed
    as in progress only if it was (a staged temporary itself)."""
    with _register_lock:
        if _stopped:
            raise GenerationCancelled()
        os.replace(temporary, destination)
        _in_progress.discard(Path(temporary))


def put_in_place(temporary: Path, final_path: Path) -> None:
    """Rename a finished temporary to its final name. Inside output_run, the final file
    stays listed as in progress until the outermost run ends."""
    final_path = Path(final_path)
    with _register_lock:
        if _stopped:
            raise GenerationCancelled()
        os.replace(temporary, final_path)
        _in_progress.discard(Path(temporary))
        run = getattr(_runs, "files", None)
        if run is not None:
            _in_progress.add(final_path)
            run.append(final_path)


def discard(paths: list[Path]) -> None:
    """Remove these files (those that exist) and stop listing them."""
    with _register_lock:
        for path in paths:
            Path(path).unlink(missing_ok=True)
            _in_progress.discard(Path(path))


@contextmanager
def output_run() -> Iterator[None]:
    """Groups the final files one run puts in place (on this thread): they are removed if
    the outermost output_run ends with an exception and kept when it returns. Nested
    runs (a set's cues) belong to the outermost one."""
    if getattr(_runs, "files", None) is not None:
        yield
        return
    _runs.files = files = []
    try:
        yield
    except BaseException:
        discard(files)
        raise
    else:
        with _register_lock:
            _in_progress.difference_update(files)
    finally:
        _runs.files = None


def discard_files_in_progress() -> list[Path]:
    """Remove every temporary and every final file of an unfinished run, and refuse new ones:
    for a process about to exit at once. Returns what was removed."""
    global _stopped
    with _register_lock:
        _stopped = True
        removed = []
        for path in sorted(_in_progress):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
            except OSError:
                pass  # exiting anyway; nothing better to do with a file that will not go
        _in_progress.clear()
        return removed


# -- audio ----------------------------------------------------------------------------------


def pcm_scale(output_format: str, bit_depth: int) -> int | None:
    """Integer full scale of the file's samples (32768 for 16-bit), None for Vorbis."""
    if FORMAT_SUBTYPES[(output_format, bit_depth)][1] == "VORBIS":
        return None
    return 1 << (bit_depth - 1)


def quantized(frames: np.ndarray, output_format: str, bit_depth: int) -> np.ndarray:
    """The samples the file will hold: round to nearest on the file's integer grid, clipped.

    16-bit as int16; 24-bit as int32 with the 24 bits at the top (how libsndfile takes
    ints for PCM_24), so libsndfile stores them unchanged. Vorbis keeps float32.
    """
    scale = pcm_scale(output_format, bit_depth)
    if scale is None:
        return np.asarray(frames, dtype=np.float32)
    data = np.ascontiguousarray(frames, dtype=np.float32)
    out = np.empty(data.shape, dtype=np.int16 if bit_depth == 16 else np.int32)
    source, target = data.reshape(-1), out.reshape(-1)
    # A block at a time through one scratch buffer: no float copy of a long cue, and each
    # block stays in the cache.
    scratch = np.empty(min(_CONVERT_BLOCK, source.size), dtype=np.float32)
    low, high = np.float32(-scale), np.float32(scale - 1)
    for start in range(0, source.size, _CONVERT_BLOCK):
        block = source[start : start + _CONVERT_BLOCK]
        scaled = scratch[: block.size]
        np.multiply(block, np.float32(scale), out=scaled)
        np.rint(scaled, out=scaled)
        np.clip(scaled, low, high, out=scaled)
        if bit_depth == 16:
            target[start : start + block.size] = scaled
        else:
            np.left_shift(scaled.astype(np.int32), 32 - bit_depth, out=target[start : start + block.size])
    return out


def as_written(samples: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 audio exactly as readers decode `quantized` samples (int / full scale).

    `out` (float32, contiguous, the same shape) receives them, block by block, instead of a
    new array: the finished frames they were quantised from, no longer needed.
    """
    if samples.dtype not in (np.int16, np.int32):
        return samples
    if out is None or out.shape != samples.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        out = np.empty(samples.shape, dtype=np.float32)
    source, target = samples.reshape(-1), out.reshape(-1)
    for start in range(0, source.size, _CONVERT_BLOCK):
        block = source[start : start + _CONVERT_BLOCK]
        if samples.dtype == np.int16:
            target[start : start + _CONVERT_BLOCK] = block.astype(np.float32) * np.float32(1.0 / 32768)
        else:
            target[start : start + _CONVERT_BLOCK] = block.astype(np.float64) * (1.0 / 2147483648)
    return out


def write_audio(path: Path, frames: np.ndarray, sample_rate: int, output_format: str, bit_depth: int,
                info: dict[str, str] | None = None, is_cancelled: Callable[[], bool] = lambda: False) -> None:
    """Write frames (frames, channels) to `path` as is (not atomic; see write_audio_atomic).

    Integer frames (from `quantized`) are stored unchanged; float frames are converted by
    libsndfile. Written a block at a time; `is_cancelled` is checked between blocks.
    """
    container, subtype = FORMAT_SUBTYPES[(output_format, bit_depth)]
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=frames.shape[1],
                      format=container, subtype=subtype) as out:
        for field in INFO_FIELDS:
            value = (info or {}).get(field)
            if value:
                setattr(out, field, value)
        for start in range(0, frames.shape[0], WRITE_BLOCK_FRAMES):
            if is_cancelled():
                raise GenerationCancelled()
            out.write(frames[start : start + WRITE_BLOCK_FRAMES])


def write_audio_atomic(final_path: Path, frames: np.ndarray, sample_rate: int, output_format: str,
                       bit_depth: int, info: dict[str, str] | None = None) -> None:
    temp = temporary_path_beside(final_path)
    try:
        write_audio(temp, frames, sample_rate, output_format, bit_depth, info)
        put_in_place(temp, final_path)
    except BaseException:
        discard([temp])
        raise


def write_json_atomic(final_path: Path, data: dict) -> None:
    write_text_atomic(final_path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(final_path: Path, text: str) -> None:
    temp = temporary_path_beside(final_path)
    try:
        temp.write_text(text, encoding="utf-8")
        put_in_place(temp, final_path)
    except BaseException:
        discard([temp])
        raise
