"""How hosts find the worker, and how the worker makes sure it is the only one.

Standard library only: the host-side client reads the discovery file with this module.

Worker and hosts meet in one state folder, config.state_dir() ($XDG_STATE_HOME/acestep-dcc
on Linux, or $ACESTEP_DCC_HOME/state), unless --state-dir names another.
The discovery file (worker.json there) holds url, token, pid and version. It is
readable by the user alone (0600), replaced atomically, and removed when the worker
exits cleanly. A worker killed with -9 leaves it behind; clients treat it as stale
when the pid is gone or the url does not answer. The lock (worker.lock) is an
OS file lock held for the worker's whole life, so the OS drops it even on kill -9
and the next worker can start.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from acestep_core import config

DISCOVERY_FILE = "worker.json"
LOCK_FILE = "worker.lock"
LOG_FILE = "worker.log"


@dataclass(frozen=True)
class WorkerInfo:
    url: str
    token: str
    pid: int
    version: str
    started_at: str = ""
    log_path: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def state_folder(state_dir: str | os.PathLike | None = None) -> Path:
    return Path(state_dir) if state_dir is not None else config.state_dir()


def discovery_path(state_dir: str | os.PathLike | None = None) -> Path:
    return state_folder(state_dir) / DISCOVERY_FILE


def log_path(state_dir: str | os.PathLike | None = None) -> Path:
    return state_folder(state_dir) / LOG_FILE


def read_discovery(state_dir: str | os.PathLike | None = None) -> WorkerInfo | None:
    """The discovery file's contents, or None when it is missing or unreadable."""
    try:
        data = json.loads(discovery_path(state_dir).read_text(encoding="utf-8"))
        return WorkerInfo(
            url=str(data["url"]), token=str(data["token"]), pid=int(data["pid"]),
            version=str(data.get("version", "")), started_at=str(data.get("started_at", "")),
            log_path=str(data.get("log_path", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_discovery(info: WorkerInfo, state_dir: str | os.PathLike | None = None) -> Path:
    """Write the file under a temporary name created 0600, then rename it into place,
    so no reader ever sees a half-written file or a moment of wider permissions."""
    folder = make_private_folder(state_folder(state_dir))
    final = folder / DISCOVERY_FILE
    temp = folder / f".{DISCOVERY_FILE}.{os.getpid()}.tmp"
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(info.to_dict(), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def remove_discovery(pid: int, state_dir: str | os.PathLike | None = None) -> None:
    """Remove the discovery file if it still names this pid (never another worker's)."""
    info = read_discovery(state_dir)
    if info is not None and info.pid == pid:
        discovery_path(state_dir).unlink(missing_ok=True)


def make_private_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (best effort; True when unknown)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    except OSError:
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


class WorkerLock:
    """An exclusive, non-blocking OS lock on one file, held until release() or exit."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        make_private_folder(self.path.parent)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            if sys.platform == "win32":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        # The pid inside is only for messages; the OS lock is what counts.
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def holder_pid(self) -> int | None:
        try:
            return int(self.path.read_text(encoding="utf-8").strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._file is None:
            return
        try:
            if sys.platform == "win32":
                import msvcrt

                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None
