"""Retention: old outputs and uploads are deleted, so the worker's data folder does not
grow for ever. The defaults, and the `acestep-dcc worker` flags that change them:

- `--keep-days 30`: a finished job's files and an upload older than this are deleted
  (0 keeps them for ever);
- `--max-outputs-gb 20`: past this total the oldest finished jobs' files go first
  (0: no limit);
- `--max-uploads-gb 2`: the quota of all uploads together (see uploads.py; 0: no quota).

A job's age is its folder's last change (when it finished); an upload's is its file's.
The files of queued and running jobs, and uploads they will read, are never deleted. A
pruned job stays in the history; fetching its files answers 410 Gone. The runner prunes
between jobs: at start, after every job and hourly while idle.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from acestep_core.worker.limits import DEFAULT_KEEP_DAYS, DEFAULT_MAX_OUTPUTS_BYTES, DEFAULT_MAX_UPLOADS_TOTAL_BYTES
from acestep_core.worker.uploads import UploadFolder

log = logging.getLogger("acestep_core.worker")


@dataclass(frozen=True)
class RetentionPolicy:
    keep_days: float = DEFAULT_KEEP_DAYS  # 0: for ever
    max_outputs_bytes: int = DEFAULT_MAX_OUTPUTS_BYTES  # 0: no limit
    max_uploads_bytes: int = DEFAULT_MAX_UPLOADS_TOTAL_BYTES  # 0: no quota

    def cutoff(self, now: float) -> float:
        """Files last written before this time.time() are too old."""
        return now - self.keep_days * 86400.0 if self.keep_days > 0 else float("-inf")


class Retention:
    def __init__(self, policy: RetentionPolicy, outputs_dir: Path, uploads: UploadFolder):
        self.policy = policy
        self.outputs_dir = Path(outputs_dir)
        self.uploads = uploads

    def prune(self, protected_jobs: set[str], protected_uploads: set[str]) -> None:
        now = time.time()
        jobs = prune_outputs(self.outputs_dir, self.policy, protected_jobs, now)
        uploads = self.uploads.prune(self.policy.cutoff(now), protected_uploads)
        if jobs or uploads:
            log.info("retention: deleted the files of %d old job(s) and %d old upload(s)", len(jobs), len(uploads))


def prune_outputs(outputs_dir: Path, policy: RetentionPolicy, protected: set[str], now: float) -> list[str]:
    """Delete job folders that are too old, then the oldest until the total fits; never
    the folders named in `protected`. Returns the job ids whose folders went."""
    folders = []
    total = 0
    for entry in _scandir(outputs_dir):
        if not entry.is_dir(follow_symlinks=False):
            continue
        size = _folder_size(Path(entry.path))
        total += size
        if entry.name not in protected:
            folders.append((entry.stat(follow_symlinks=False).st_mtime, size, Path(entry.path)))
    cutoff = policy.cutoff(now)
    removed = []
    for modified, size, folder in sorted(folders):
        too_big = policy.max_outputs_bytes > 0 and total > policy.max_outputs_bytes
        if modified >= cutoff and not too_big:
            break  # oldest first: every folder after this one is newer still
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        removed.append(folder.name)
    return removed


def _scandir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _folder_size(folder: Path) -> int:
    size = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return size
