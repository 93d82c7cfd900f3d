"""The reference index: every reference's features in one SQLite file, computed once and
again only for files whose path, size or modification time changed."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acestep_core.originality.errors import OriginalityError, UnreadableAudio
from acestep_core.originality.features import AUDIO_SUFFIXES, FEATURE_VERSION, PATCH_WIDTH, AudioFeatures, features_of_file

INDEX_FILE = "originality-index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reference (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    version INTEGER NOT NULL,
    duration REAL NOT NULL,
    chroma BLOB NOT NULL,
    patches BLOB NOT NULL
)
"""


def default_index_path() -> Path:
    from acestep_core.config import app_home

    return app_home() / INDEX_FILE


@dataclass
class IndexUpdate:
    """What update() did: paths added or computed again, unchanged, removed, and
    (path, sentence) for files that could not be read."""

    computed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ReferenceSet:
    """The references of one folder, ready to search: chroma per reference, and every
    patch of every reference in one matrix with the reference each row belongs to."""

    paths: list[str]
    chroma: list[np.ndarray]
    durations: list[float]
    patches: np.ndarray  # (total patches, d) float32
    owners: np.ndarray  # (total patches,) index into paths


def audio_files(folder: Path) -> list[Path]:
    """Every audio file under `folder` (recursively), sorted; sidecars and others skipped."""
    found = []
    for root, _dirs, names in os.walk(folder):
        found += [Path(root) / name for name in names if Path(name).suffix.lower() in AUDIO_SUFFIXES]
    return sorted(found)


class ReferenceIndex:
    """One SQLite file; any number of reference folders share it (rows are keyed by
    absolute path). Safe to use from several threads; several processes share it
    through SQLite's own locking."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else default_index_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OriginalityError(f"cannot open the originality index {self.path} ({exc}); choose another file "
                                   "with --index") from None
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self):
        """A connection that commits on success and is closed either way."""
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def update(self, folder: Path, is_cancelled=None, workers: int = 1) -> IndexUpdate:
        """Bring the folder's entries up to date: new and changed files (path, size,
        mtime) are analysed, entries of files no longer there are dropped. is_cancelled
        is asked before each file (GenerationCancelled; what was done is kept).
        workers > 1 analyses in that many processes (a first index of a large library)."""
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise OriginalityError(f"the reference library {folder} is not a folder; give a folder of WAV, FLAC, "
                                   "Ogg or MP3 files")
        return self._update(audio_files(folder), "path >= ? AND path < ?", _prefix_range(folder), is_cancelled,
                            workers)

    def update_files(self, files: list[Path], is_cancelled=None, workers: int = 1) -> IndexUpdate:
        """update() for a list of files (the cue library's) instead of a folder; nothing is dropped."""
        paths = [Path(f).expanduser().resolve() for f in files]
        return self._update(paths, None, (), is_cancelled, workers)

    def _update(self, paths: list[Path], where: str | None, values: tuple, is_cancelled, workers: int) -> IndexUpdate:
        report = IndexUpdate()
        files = {str(path): path for path in paths}
        with self._lock, self._connect() as db:
            if where is None:
                known = {}
                for name in files:
                    row = db.execute("SELECT size, mtime_ns, version FROM reference WHERE path = ?", (name,)).fetchone()
                    if row is not None:
                        known[name] = tuple(row)
            else:
                known = {row[0]: row[1:] for row in db.execute(
                    f"SELECT path, size, mtime_ns, version FROM reference WHERE {where}", values)}
                for gone in sorted(set(known) - set(files)):
                    db.execute("DELETE FROM reference WHERE path = ?", (gone,))
                    report.removed.append(gone)
            todo = []
            for name, path in files.items():
                try:
                    stat = path.stat()
                except OSError as exc:
                    report.unreadable.append((name, f"{name} cannot be read ({exc.strerror})"))
                    continue
                if known.get(name) == (stat.st_size, stat.st_mtime_ns, FEATURE_VERSION):
                    report.unchanged += 1
                else:
                    todo.append((name, stat))
            for name, stat, features in _analysed(todo, workers, is_cancelled):
                if isinstance(features, UnreadableAudio):
                    report.unreadable.append((name, str(features)))
                    db.execute("DELETE FROM reference WHERE path = ?", (name,))
                    continue
                db.execute("INSERT OR REPLACE INTO reference VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (name, stat.st_size, stat.st_mtime_ns, FEATURE_VERSION, features.duration,
                            features.chroma.astype(np.float16).tobytes(),
                            features.patches.astype(np.float16).tobytes()))
                report.computed.append(name)
                db.commit()  # each file as it is done: an interrupted update keeps its work
        return report

    def references(self, folder: Path) -> ReferenceSet:
        """The indexed references under `folder` (call update first)."""
        folder = Path(folder).expanduser().resolve()
        with self._lock, self._connect() as db:
            rows = db.execute("SELECT path, duration, chroma, patches FROM reference WHERE path >= ? AND path < ? "
                              "AND version = ? ORDER BY path", (*_prefix_range(folder), FEATURE_VERSION)).fetchall()
        return reference_set([_entry(*row) for row in rows])

    def references_of(self, files: list[Path]) -> ReferenceSet:
        """The indexed references among `files` (call update_files first), in their order."""
        entries = []
        with self._lock, self._connect() as db:
            for path in files:
                row = db.execute("SELECT path, duration, chroma, patches FROM reference WHERE path = ? AND "
                                 "version = ?", (str(Path(path).expanduser().resolve()), FEATURE_VERSION)).fetchone()
                if row is not None:
                    entries.append(_entry(*row))
        return reference_set(entries)


def _entry(path: str, duration: float, chroma: bytes, patches: bytes) -> tuple[str, float, AudioFeatures]:
    return path, duration, AudioFeatures(
        chroma=np.frombuffer(chroma, np.float16).reshape(-1, 12).astype(np.float32),
        patches=np.frombuffer(patches, np.float16).reshape(-1, PATCH_WIDTH).astype(np.float32), duration=duration)


def merged(*sets: ReferenceSet) -> ReferenceSet:
    """One searchable set of several (a folder's and the cue library's); a path in two counts once."""
    entries, seen = [], set()
    for group in sets:
        for k, path in enumerate(group.paths):
            if path not in seen:
                seen.add(path)
                entries.append((path, group.durations[k], AudioFeatures(
                    chroma=group.chroma[k], patches=group.patches[group.owners == k], duration=group.durations[k])))
    return reference_set(entries)


def _features_or_error(name: str):
    try:
        return features_of_file(Path(name))
    except UnreadableAudio as exc:
        return exc


def _analysed(todo: list, workers: int, is_cancelled):
    """(name, stat, features or UnreadableAudio) for each (name, stat), in order."""
    def check_cancel():
        if is_cancelled is not None and is_cancelled():
            from acestep_core.errors import GenerationCancelled

            raise GenerationCancelled()

    if workers <= 1 or len(todo) < 2:
        for name, stat in todo:
            check_cancel()
            yield name, stat, _features_or_error(name)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (name, stat), features in zip(todo, pool.map(_features_or_error, [n for n, _ in todo], chunksize=4)):
            check_cancel()
            yield name, stat, features


def reference_set(entries: list[tuple[str, float, AudioFeatures]]) -> ReferenceSet:
    """A searchable set from (name, duration, features) entries."""
    if not entries:
        return ReferenceSet([], [], [], np.zeros((0, PATCH_WIDTH), np.float32), np.zeros(0, int))
    blocks = [features.patches for _, _, features in entries]
    return ReferenceSet(
        paths=[name for name, _, _ in entries],
        chroma=[features.chroma for _, _, features in entries],
        durations=[duration for _, duration, _ in entries],
        patches=np.vstack(blocks).astype(np.float32),
        owners=np.concatenate([np.full(len(block), k) for k, block in enumerate(blocks)]))


def _prefix_range(folder: Path) -> tuple[str, str]:
    """Paths under `folder`: [folder/, folder0) in string order ('0' follows '/')."""
    base = str(folder).rstrip(os.sep) + os.sep
    return base, base[:-1] + chr(ord(os.sep) + 1)
