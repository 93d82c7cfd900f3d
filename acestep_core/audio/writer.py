"""Writing finished audio: WAV/FLAC/OGG through soundfile, with text metadata, and the
JSON sidecar. Every write goes to a temporary name in the same folder first and is
renamed into place, so nothing half-written ever sits under a final name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

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
INFO_FIELDS = ("title", "comment", "software", "artist", "date", "genre")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: probing os.umask is not thread-safe


def temporary_path_beside(final_path: Path) -> Path:
    """A fresh hidden name in the same folder, so the final rename is atomic.

    mkstemp makes the file private (0600) and the rename keeps that; a finished cue gets
    the permissions any new file of the user's would (0644 under the usual umask).
    """
    fd, name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=".partial", dir=final_path.parent)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, where files have no mode bits to fix
            os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(name)


def write_audio(path: Path, frames: np.ndarray, sample_rate: int, output_format: str, bit_depth: int,
                info: dict[str, str] | None = None) -> None:
    """Write frames (frames, channels) to `path` as is (not atomic; see write_audio_atomic)."""
    container, subtype = FORMAT_SUBTYPES[(output_format, bit_depth)]
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=frames.shape[1],
                      format=container, subtype=subtype) as out:
        for field in INFO_FIELDS:
            value = (info or {}).get(field)
            if value:
                setattr(out, field, value)
        out.write(frames)


def write_audio_atomic(final_path: Path, frames: np.ndarray, sample_rate: int, output_format: str,
                       bit_depth: int, info: dict[str, str] | None = None) -> None:
    temp = temporary_path_beside(final_path)
    try:
        write_audio(temp, frames, sample_rate, output_format, bit_depth, info)
        os.replace(temp, final_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_json_atomic(final_path: Path, data: dict) -> None:
    temp = temporary_path_beside(final_path)
    try:
        temp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        os.replace(temp, final_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
