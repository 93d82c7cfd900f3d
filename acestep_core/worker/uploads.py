"""Source audio that clients upload for repaint and cover.

The worker reads no path a client names: a client uploads the bytes, gets an id, and
puts the id in request.source_audio. Files land under <data>/uploads/ with names the
worker draws; the client's file name is kept only as a label.

All uploads together have a quota (--max-uploads-gb). A new upload that would pass it
first makes room by deleting the oldest uploads that no queued or running job will read
and that are older than UPLOAD_GRACE_S (a client may be about to submit with a fresh
one); if it still does not fit, it is refused (UploadQuotaFull, 507).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import AsyncIterator, Callable

from acestep_core.worker.limits import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_UPLOADS_TOTAL_BYTES, UPLOAD_GRACE_S
from acestep_core.worker.store import JobStore, StorageProblem, UploadRecord, storage_problem_from_os_error, utc_now

UPLOAD_ID_PATTERN = re.compile(r"^upload-[0-9a-f]{32}$")

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


class UploadQuotaFull(StorageProblem):
    def __init__(self, quota: int, held: int):
        super().__init__(f"the worker's uploads would pass their quota of {_mb(quota)} MB ({_mb(held)} MB are "
                         "held by waiting jobs or were uploaded in the last 10 minutes); wait for those jobs to "
                         "finish, or start the worker with a larger --max-uploads-gb", disk_full=True)


class UploadFolder:
    def __init__(self, folder: Path, store: JobStore, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, *,
                 max_total_bytes: int | None = DEFAULT_MAX_UPLOADS_TOTAL_BYTES,
                 in_use: Callable[[], set[str]] = set):
        self.folder = Path(folder)
        self.store = store
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes or None  # 0: no quota
        self.in_use = in_use  # upload ids that queued or running jobs will read
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
            self._make_room(size)
            final = self.folder / f"{upload_id}.{_EXTENSIONS.get(info.format, 'audio')}"
            os.replace(temp, final)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise storage_problem_from_os_error(exc, self.folder) from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        record = UploadRecord(id=upload_id, path=str(final), original_name=_label(original_name), size=size,
                              format=info.format, duration=float(info.duration), created_at=utc_now())
        try:
            self.store.add_upload(record)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return record

    def _make_room(self, size: int) -> None:
        """Delete the oldest unused uploads until `size` more bytes fit in the quota."""
        if self.max_total_bytes is None:
            return
        records = self.store.uploads()
        total = sum(r.size for r in records)
        if total + size <= self.max_total_bytes:
            return
        in_use, fresh_after = self.in_use(), time.time() - UPLOAD_GRACE_S
        for record in sorted(records, key=_age_key):
            if total + size <= self.max_total_bytes:
                return
            if record.id not in in_use and _modified(record) < fresh_after:
                self.delete(record)
                total -= record.size
        if total + size > self.max_total_bytes:
            raise UploadQuotaFull(self.max_total_bytes, total)

    def prune(self, older_than: float, protected: set[str]) -> list[str]:
        """Delete uploads last written before `older_than` (a time.time()) that no job
        in `protected` will read; returns their ids."""
        removed = []
        for record in self.store.uploads():
            if record.id not in protected and _modified(record) < older_than:
                self.delete(record)
                removed.append(record.id)
        return removed

    def delete(self, record: UploadRecord) -> None:
        Path(record.path).unlink(missing_ok=True)
        self.store.delete_upload(record.id)

    def path_for(self, upload_id: str) -> Path | None:
        """The stored file for an id this worker issued, else None."""
        if not isinstance(upload_id, str) or not UPLOAD_ID_PATTERN.match(upload_id):
            return None
        record = self.store.get_upload(upload_id)
        if record is None:
            return None
        path = Path(record.path)
        return path if path.is_file() else None


def _modified(record: UploadRecord) -> float:
    """When the upload's file was last written (its age for retention); 0 when it is gone."""
    try:
        return os.stat(record.path).st_mtime
    except OSError:
        return 0.0


def _age_key(record: UploadRecord) -> float:
    return _modified(record)


def _mb(count: int) -> str:
    return f"{count / (1024 * 1024):.0f}" if count >= 1024 * 1024 else f"{count / (1024 * 1024):.2f}"


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
