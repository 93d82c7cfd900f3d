"""The worker's SQLite record of jobs and uploads, so a restart loses nothing that finished.

One connection shared by the request handlers and the job runner, guarded by a lock
(every statement is short). WAL with synchronous=NORMAL survives a killed process:
what was committed is on disk even after kill -9. Every SQLite failure (a full disk,
an I/O error, a database another program locked) is raised as StorageProblem, one
sentence that names the folder, so the runner and the API can say it and go on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acestep_core.errors import AceStepError
from acestep_core.jobs import (
    CANCELLED, CUE_JOB, DONE, FAILED, INTERRUPTED_MESSAGE, QUEUED, RUNNING, SET_JOB, CueOutput, JobArtifact, JobStatus,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT '',
    error TEXT,
    request TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    kind TEXT NOT NULL DEFAULT 'cue',
    set_options TEXT,
    manifest TEXT,
    artifacts TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    original_name TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    duration REAL NOT NULL,
    created_at TEXT NOT NULL
);
"""

# Columns added since the first release, with their definitions: a store written by an
# older worker gets them on open, so its history stays readable.
ADDED_JOB_COLUMNS = {
    "kind": "TEXT NOT NULL DEFAULT 'cue'",
    "set_options": "TEXT",
    "manifest": "TEXT",
    "artifacts": "TEXT NOT NULL DEFAULT '[]'",
    "requested_by": "TEXT",
}


# How long a statement waits for a lock another program holds: request handlers wait
# with it, so not long (only a foreign program ever holds one; the worker has one connection).
BUSY_TIMEOUT_S = 2.0
# Below this many free bytes a failed write is taken for a full disk (libsndfile and some
# SQLite errors do not say ENOSPC themselves).
NEARLY_FULL_BYTES = 1024 * 1024


class StorageProblem(AceStepError):
    """The worker cannot write (or read) its files or its job database. `disk_full`: the
    API answers 507 Insufficient Storage, else 503 (try again later)."""

    def __init__(self, message: str, disk_full: bool = False):
        self.disk_full = disk_full
        super().__init__(message)


def no_space_message(folder: str | os.PathLike) -> str:
    return f"no space left on device in {folder}; free some space there and try again"


def free_bytes(folder: str | os.PathLike) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def nearly_full(folder: str | os.PathLike) -> bool:
    free = free_bytes(folder)
    return free is not None and free < NEARLY_FULL_BYTES


def storage_problem_from_os_error(exc: OSError, folder: str | os.PathLike) -> StorageProblem:
    """An OSError from writing under `folder`, as one sentence."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or nearly_full(folder):
        return StorageProblem(no_space_message(folder), disk_full=True)
    return StorageProblem(f"writing in {folder} failed ({exc.strerror or exc}); check that folder and its disk")


def storage_problem_from_sqlite(exc: sqlite3.Error, path: Path) -> StorageProblem:
    """A SQLite failure as one sentence that names what to fix."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and nearly_full(path.parent)):
        return StorageProblem(no_space_message(path.parent), disk_full=True)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageProblem(f"the job database {path} is locked by another program; close that program "
                              "and try again")
    if name.startswith("SQLITE_READONLY"):
        return StorageProblem(f"the job database {path} cannot be written (read-only); give the worker "
                              "write access to its data folder")
    if name.startswith("SQLITE_IOERR"):
        return StorageProblem(f"the disk holding {path.parent} failed to read or write (disk I/O error); "
                              "check that disk")
    return StorageProblem(f"the job database {path} failed ({exc}); see the worker log")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class UploadRecord:
    id: str
    path: str
    original_name: str
    size: int
    format: str
    duration: float
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        # The path stays on the worker: clients only ever see the id.
        return {"id": self.id, "original_name": self.original_name, "size": self.size,
                "format": self.format, "duration": self.duration, "created_at": self.created_at}


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                       timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise storage_problem_from_sqlite(exc, self.path) from exc
        self._db.row_factory = sqlite3.Row
        with self._sql() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, definition in ADDED_JOB_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")

    @contextlib.contextmanager
    def _sql(self):
        """The connection, lock held; a SQLite failure becomes a StorageProblem."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise storage_problem_from_sqlite(exc, self.path) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- jobs -----------------------------------------------------------------------

    def add_job(self, job_id: str, request: dict[str, Any], set_options: dict[str, Any] | None = None,
                requested_by: str | None = None) -> JobStatus:
        """A queued job: a cue job, or a set job when set_options is given."""
        created = utc_now()
        kind = CUE_JOB if set_options is None else SET_JOB
        with self._sql() as db:
            db.execute(
                "INSERT INTO jobs (id, status, request, created_at, kind, set_options, requested_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, QUEUED, json.dumps(request), created, kind,
                 None if set_options is None else json.dumps(set_options), requested_by),
            )
        return JobStatus(id=job_id, status=QUEUED, request=request, created_at=created, kind=kind,
                         set_options=set_options, requested_by=requested_by)

    def mark_running(self, job_id: str) -> None:
        with self._sql() as db:
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ? WHERE id = ?", (RUNNING, utc_now(), job_id)
            )

    def finish(self, job_id: str, status: str, *, outputs: list[CueOutput] | None = None,
               error: str | None = None, stage: str = "", manifest: dict[str, Any] | None = None,
               artifacts: list[JobArtifact] | None = None) -> None:
        progress = 1.0 if status == DONE else None
        outputs_json = json.dumps([o.__dict__ for o in outputs or []])
        artifacts_json = json.dumps([a.__dict__ for a in artifacts or []])
        manifest_json = None if manifest is None else json.dumps(manifest)
        with self._sql() as db:
            db.execute(
                "UPDATE jobs SET status = ?, outputs = ?, error = ?, stage = ?, finished_at = ?,"
                " progress = COALESCE(?, progress), manifest = ?, artifacts = ? WHERE id = ?",
                (status, outputs_json, error, stage or status, utc_now(), progress, manifest_json,
                 artifacts_json, job_id),
            )

    def save_progress(self, job_id: str, progress: float, stage: str) -> None:
        with self._sql() as db:
            db.execute("UPDATE jobs SET progress = ?, stage = ? WHERE id = ?", (progress, stage, job_id))

    def get(self, job_id: str) -> JobStatus | None:
        with self._sql() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _status_from_row(row) if row else None

    def recent(self, limit: int) -> list[JobStatus]:
        """Newest first (submission order, which is also run order)."""
        with self._sql() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [_status_from_row(row) for row in rows]

    def queued_ids(self) -> list[str]:
        """Jobs still waiting, oldest first (the queue to rebuild after a restart)."""
        with self._sql() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status = ? ORDER BY seq", (QUEUED,)).fetchall()
        return [row["id"] for row in rows]

    def mark_interrupted(self) -> list[str]:
        """Jobs that were running when the worker last stopped: failed, so a host can resubmit."""
        with self._sql() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,)).fetchall()
            db.execute(
                "UPDATE jobs SET status = ?, error = ?, stage = ?, finished_at = ? WHERE status = ?",
                (FAILED, INTERRUPTED_MESSAGE, FAILED, utc_now(), RUNNING),
            )
        return [row["id"] for row in rows]

    def requeue_running(self) -> list[str]:
        """Jobs that were running when the last process stopped: queued again, oldest first
        (a cluster's ingress restarting while replicas ran them; they run again)."""
        with self._sql() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status = ? ORDER BY seq", (RUNNING,)).fetchall()
            db.execute("UPDATE jobs SET status = ?, stage = '', progress = 0 WHERE status = ?", (QUEUED, RUNNING))
        return [row["id"] for row in rows]

    def counts(self) -> dict[str, int]:
        with self._sql() as db:
            rows = db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        found = {row["status"]: row["n"] for row in rows}
        return {state: found.get(state, 0) for state in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}

    # -- uploads --------------------------------------------------------------------

    def add_upload(self, record: UploadRecord) -> None:
        with self._sql() as db:
            db.execute(
                "INSERT INTO uploads (id, path, original_name, size, format, duration, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.path, record.original_name, record.size, record.format,
                 record.duration, record.created_at),
            )

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        with self._sql() as db:
            row = db.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return UploadRecord(**dict(row)) if row else None

    def uploads(self) -> list[UploadRecord]:
        """Every kept upload, oldest first."""
        with self._sql() as db:
            rows = db.execute("SELECT * FROM uploads ORDER BY created_at, id").fetchall()
        return [UploadRecord(**dict(row)) for row in rows]

    def delete_upload(self, upload_id: str) -> None:
        with self._sql() as db:
            db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))


def _status_from_row(row: sqlite3.Row) -> JobStatus:
    return JobStatus(
        id=row["id"],
        status=row["status"],
        progress=row["progress"],
        stage=row["stage"],
        error=row["error"],
        outputs=[CueOutput.from_dict(o) for o in json.loads(row["outputs"])],
        request=json.loads(row["request"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        kind=row["kind"],
        set_options=json.loads(row["set_options"]) if row["set_options"] else None,
        manifest=json.loads(row["manifest"]) if row["manifest"] else None,
        artifacts=[JobArtifact.from_dict(a) for a in json.loads(row["artifacts"])],
        requested_by=row["requested_by"],
    )
