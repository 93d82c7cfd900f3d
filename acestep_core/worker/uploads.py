"""Source audio that clients upload for repaint and cover.

The worker reads no path a client names: a client uploads the bytes, gets an id, and
puts the id in request.source_audio. Files land under <data>/uploads/ with names the
worker draws; the client's file name is kept only as a label.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import AsyncIterator

from acestep_core.worker.store import JobStore, UploadRecord, utc_now

UPLOAD_ID_PATTERN = re.compile(r"^upload-[0-9a-f]{32}$")
DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # 10 minutes of 48 kHz 24-bit stereo WAV is ~173 MB

# soundfile's format names -> the extension the worker gives the stored file.
_EXTENSIONS = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "w64", "FLAC": "flac",
               "OGG": "ogg", "MP3": "mp3", "AIFF": "aiff", "CAF": "caf"}


class UploadTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"the upload is larger than the worker's limit of {limit // (1024 * 1024)} MB; "
                         "trim or compress the source audio (FLAC) and upload again")


class NotAudio(Exception):
    pass


class UploadFolder:
    def __init__(self, folder: Path, store: JobStore, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES):
        self.folder = Path(folder)
        self.store = store
        self.max_bytes = max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)

    async def save(self, chunks: AsyncIterator[bytes], original_name: str) -> UploadRecord:
        """Stream the body to a private temporary file, check it is audio, keep it.
        Raises UploadTooLarge or NotAudio and leaves nothing behind."""
        upload_id = f"upload-{secrets.token_hex(16)}"
        temp = self.folder / f".{upload_id}.partial"
        size = 0
        try:
            with open(temp, "xb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadTooLarge(self.max_bytes)
                    out.write(chunk)
            if size == 0:
                raise NotAudio("the upload is empty; send the audio file's bytes as the request body")
            info = _audio_info(temp)
            final = self.folder / f"{upload_id}.{_EXTENSIONS.get(info.format, 'audio')}"
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        record = UploadRecord(id=upload_id, path=str(final), original_name=_label(original_name), size=size,
                              format=info.format, duration=float(info.duration), created_at=utc_now())
        self.store.add_upload(record)
        return record

    def path_for(self, upload_id: str) -> Path | None:
        """The stored file for an id this worker issued, else None."""
        if not isinstance(upload_id, str) or not UPLOAD_ID_PATTERN.match(upload_id):
            return None
        record = self.store.get_upload(upload_id)
        if record is None:
            return None
        path = Path(record.path)
        return path if path.is_file() else None


def _audio_info(path: Path):
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception:  # libsndfile says "Format not recognised" and similar
        raise NotAudio("the upload is not audio the worker can read; upload WAV, FLAC, OGG or MP3") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise NotAudio("the upload holds no audio frames; upload a file with sound in it")
    return info


def _label(name: str) -> str:
    """The client's file name, kept only to show back to users."""
    base = re.split(r"[\\/]", name or "")[-1]
    return "".join(ch for ch in base if ch.isprintable())[:120]
