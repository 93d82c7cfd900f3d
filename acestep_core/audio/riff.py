"""Loop points and markers in a finished WAV: the RIFF `smpl`, `cue ` and `LIST/adtl` chunks.

Hand-written because no Python library writes `smpl` (soundfile exposes no instrument
chunk, and the RIFF readers on PyPI only read). The WAV is written by soundfile first
(fmt, LIST/INFO and data from libsndfile); this module copies its chunks into a new file
with the loop chunks placed before `data`, so readers that stop at `data` (streaming
loaders) still see them, and renames the result over the original (keeping its mode). The LIST/INFO chunk
libsndfile wrote is kept byte for byte.

Loop end, and why it is one past the loop: the RIFF spec says `dwEnd` is the last sample
played (inclusive), and libsndfile, wavinfo, FMOD and Wwise read it so. Godot's WAV
importer copies `dwEnd` into AudioStreamWAV.loop_end unchanged, and its mixer wraps at
loop_end: Godot 4.0-4.3 plays [begin, end) (exclusive); 4.4-4.6 decode [begin, end]
inclusive and then wrap to begin + 1. No single dwEnd is seamless in all three readings,
so a looped WAV carries one guard frame after the loop, a copy of the loop's first frame,
and `dwEnd` = loop_end_exclusive (the guard's index):
  - Godot 4.0-4.3 plays begin .. end-1, begin ...: exact, period = loop length;
  - Godot 4.4-4.6 plays begin .. end(=copy of begin), begin+1 ...: exact, same period;
  - spec readers play begin .. end(=copy of begin), begin ...: the first frame is held
    for one extra sample per pass (no step in value; one sample longer per repeat).
The exact numbers for every engine are in the sidecar (loop_start, loop_end_exclusive).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from acestep_core.audio.writer import discard, replace_with_temporary, temporary_path_beside
from acestep_core.errors import AceStepError, GenerationCancelled

# Chunks this module writes; old copies are dropped so a rewrite never duplicates them.
_OWN_CHUNKS = (b"smpl", b"cue ")
_COPY_BUFFER = 1 << 20


class NotAWavFile(AceStepError, ValueError):
    """The file is not a RIFF/WAVE file this module can add chunks to."""


@dataclass(frozen=True)
class CueMarker:
    """A named position (in frames) shown as a marker by DAWs and read by engines."""

    frame: int
    label: str


@dataclass(frozen=True)
class WavLoop:
    """A forward loop: frames [start, end_exclusive) repeat. See the module doc for dwEnd."""

    start: int
    end_exclusive: int

    @property
    def length(self) -> int:
        return self.end_exclusive - self.start

    @property
    def smpl_end(self) -> int:
        """The value written as dwEnd: the guard frame's index (see the module doc)."""
        return self.end_exclusive


@dataclass(frozen=True)
class _Chunk:
    ident: bytes
    offset: int  # of the chunk's data in the file
    size: int


def smpl_chunk(loop: WavLoop, sample_rate: int, cue_identifier: int = 0) -> bytes:
    """The `smpl` chunk (header and data) for one forward loop that plays forever."""
    if not 0 <= loop.start < loop.end_exclusive:
        raise ValueError(f"a loop needs 0 <= start < end, got {loop.start} and {loop.end_exclusive}")
    sample_period_ns = round(1_000_000_000 / sample_rate)
    header = struct.pack(
        "<IIIIIIIII",
        0,  # manufacturer: none
        0,  # product: none
        sample_period_ns,
        60,  # MIDI unity note (middle C): the audio plays at its own pitch
        0,  # pitch fraction
        0,  # SMPTE format: none
        0,  # SMPTE offset
        1,  # one loop
        0,  # no sampler-specific data
    )
    # type 0 = forward; fraction 0; play count 0 = loop forever.
    loop_record = struct.pack("<IIIIII", cue_identifier, 0, loop.start, loop.smpl_end, 0, 0)
    data = header + loop_record
    return b"smpl" + struct.pack("<I", len(data)) + data


def cue_chunk(markers: list[CueMarker]) -> bytes:
    """The `cue ` chunk: one point per marker, identifiers 1..n in the given order."""
    points = [
        # id, position (play order), chunk 'data', chunk start, block start, sample offset
        struct.pack("<II4sIII", k, marker.frame, b"data", 0, 0, marker.frame)
        for k, marker in enumerate(markers, start=1)
    ]
    data = struct.pack("<I", len(points)) + b"".join(points)
    return b"cue " + struct.pack("<I", len(data)) + data


def adtl_list_chunk(markers: list[CueMarker]) -> bytes:
    """A `LIST/adtl` chunk of `labl` sub-chunks naming the cue points (what DAWs show)."""
    body = b"adtl"
    for k, marker in enumerate(markers, start=1):
        text = marker.label.encode("ascii", "replace") + b"\0"
        data = struct.pack("<I", k) + text
        body += b"labl" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def write_loop_chunks(path: Path, loop: WavLoop | None, markers: list[CueMarker], sample_rate: int,
                      is_cancelled: Callable[[], bool] = lambda: False) -> None:
    """Rewrite the WAV at `path` with a `smpl` loop (if any) and cue markers, atomically.

    Chunks already there (fmt, LIST/INFO, data, anything else) are kept in order; earlier
    smpl/cue/adtl chunks are replaced. The new file is written beside `path` under a
    temporary name and renamed over it, so `path` is never half-written; it keeps the
    permissions `path` had. `is_cancelled` is checked between blocks of the copy.
    """
    path = Path(path)
    new_chunks = b""
    if loop is not None:
        new_chunks += smpl_chunk(loop, sample_rate, cue_identifier=1 if markers else 0)
    if markers:
        new_chunks += cue_chunk(markers) + adtl_list_chunk(markers)
    temp = temporary_path_beside(path)
    try:
        with open(path, "rb") as source, open(temp, "wb") as out:
            if hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), stat.S_IMODE(os.fstat(source.fileno()).st_mode))
            chunks = _read_chunk_table(source, path)
            kept = [c for c in chunks if c.ident not in _OWN_CHUNKS and not _is_adtl(source, c)]
            body_size = 4 + len(new_chunks) + sum(8 + c.size + (c.size & 1) for c in kept)
            if body_size > 0xFFFFFFFF:
                raise NotAWavFile(f"{path.name} would exceed the 4 GiB RIFF limit; write a shorter cue or use FLAC")
            out.write(b"RIFF" + struct.pack("<I", body_size) + b"WAVE")
            for chunk in kept:
                if chunk.ident == b"data":
                    out.write(new_chunks)
                _copy_chunk(source, out, chunk, is_cancelled)
        replace_with_temporary(temp, path)
    except BaseException:
        discard([temp])
        raise


def _read_chunk_table(source: BinaryIO, path: Path) -> list[_Chunk]:
    header = source.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise NotAWavFile(f"{path.name} is not a RIFF/WAVE file; loop points can only be written into WAV")
    file_size = os.fstat(source.fileno()).st_size
    chunks: list[_Chunk] = []
    position = 12
    while position + 8 <= file_size:
        source.seek(position)
        ident, size = struct.unpack("<4sI", source.read(8))
        if position + 8 + size > file_size:
            raise NotAWavFile(f"{path.name} is truncated inside its {ident!r} chunk; write it again")
        chunks.append(_Chunk(ident, position + 8, size))
        position += 8 + size + (size & 1)
    if not any(c.ident == b"data" for c in chunks):
        raise NotAWavFile(f"{path.name} has no data chunk; write it again")
    return chunks


def _is_adtl(source: BinaryIO, chunk: _Chunk) -> bool:
    if chunk.ident != b"LIST" or chunk.size < 4:
        return False
    source.seek(chunk.offset)
    return source.read(4) == b"adtl"


def _copy_chunk(source: BinaryIO, out: BinaryIO, chunk: _Chunk, is_cancelled: Callable[[], bool]) -> None:
    out.write(chunk.ident + struct.pack("<I", chunk.size))
    source.seek(chunk.offset)
    remaining = chunk.size
    while remaining:
        if is_cancelled():
            raise GenerationCancelled()
        block = source.read(min(remaining, _COPY_BUFFER))
        if not block:
            raise NotAWavFile("the WAV file ended early while its chunks were being copied; write it again")
        out.write(block)
        remaining -= len(block)
    if chunk.size & 1:
        out.write(b"\0")
