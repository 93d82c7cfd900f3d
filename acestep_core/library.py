"""The cue library: every cue the CLI or the worker makes, searchable by what it is.

One SQLite database per user (`library.sqlite3` in acestep-dcc's data folder, see
config.py), shared by the CLI and the worker. Each cue is one row with what its sidecar
says (prompt, bpm, key, duration, loop, backend and model, licence, seed, originality
result, file path) and the prompt's library words (keywords.parse_prompt: moods,
scenes, styles, instruments); an FTS5 table over the prompt and those words answers
the free-text part of a search. Files that were moved or deleted are marked missing
when a search or `library add` finds them gone; nothing here raises for a missing file.

    library = CueLibrary()                       # opens (and creates) the user's library
    library.add_folder("cues/")                  # index existing cues from their sidecars
    cues = library.search(LibraryQuery(text="boss", bpm_min=140, bpm_max=160, key="E minor", loop=True))

Standard library only; sqlite3 is imported when a library is opened, so hosts can
import LibraryQuery and LibraryCue (what crosses the worker's API) without it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from acestep_core import config
from acestep_core.errors import AceStepError, FieldProblem, InvalidRequest

log = logging.getLogger("acestep_core.library")

LIBRARY_FILE = "library.sqlite3"
SIDECAR_SUFFIXES = (".wav.json", ".flac.json", ".ogg.json")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_TEXT_CHARS = 200
MAX_BPM_FILTER = 10000.0
MAX_DURATION_FILTER = 100000.0
_BUSY_TIMEOUT_S = 5.0  # the CLI and the worker may write at the same moment
_WORD = re.compile(r"\w+", re.UNICODE)
TAG_FIELDS = ("mood", "scene", "style", "instrument")  # each a category of acestep_core.keywords
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*(?:(-)\s*(\d+(?:\.\d+)?)?)?\s*$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cues (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    identity TEXT NOT NULL,
    sidecar_path TEXT,
    prompt TEXT NOT NULL DEFAULT '',
    moods TEXT NOT NULL DEFAULT '[]',
    scenes TEXT NOT NULL DEFAULT '[]',
    styles TEXT NOT NULL DEFAULT '[]',
    instruments TEXT NOT NULL DEFAULT '[]',
    bpm REAL,
    key TEXT,
    duration REAL,
    loop INTEGER NOT NULL DEFAULT 0,
    loop_bars INTEGER,
    backend TEXT,
    model TEXT,
    licence TEXT,
    seed INTEGER,
    originality_flagged INTEGER,
    originality TEXT,
    track TEXT,
    created TEXT,
    indexed_at TEXT NOT NULL,
    missing INTEGER NOT NULL DEFAULT 0,
    sidecar_stamp TEXT
);
CREATE INDEX IF NOT EXISTS cues_identity ON cues (identity);
CREATE INDEX IF NOT EXISTS cues_newest ON cues (indexed_at DESC, id DESC);
CREATE VIRTUAL TABLE IF NOT EXISTS cues_text USING fts5(prompt, tags, tokenize = 'unicode61 remove_diacritics 2');
"""


# -- what crosses the API ----------------------------------------------------------------------


@dataclass
class LibraryQuery:
    """A search. Every field is optional; the ones given must all match. `text` is free
    words matched (as prefixes) against the prompt and its tags; the tag fields match
    one library word each; `licence`, `model` match part of the text, any case."""

    text: str = ""
    bpm_min: float | None = None
    bpm_max: float | None = None
    key: str | None = None
    loop: bool | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    mood: str | None = None
    scene: str | None = None
    style: str | None = None
    instrument: str | None = None
    backend: str | None = None
    model: str | None = None
    licence: str | None = None
    seed: int | None = None
    flagged: bool | None = None  # the originality check's result; None: either, or unchecked
    include_missing: bool = True
    limit: int = DEFAULT_LIMIT

    def validated(self) -> "LibraryQuery":
        """The query with its key spelled canonically; InvalidRequest names every bad field."""
        from acestep_core.request import normalize_key

        problems = []
        key = self.key.strip() if isinstance(self.key, str) and self.key.strip() else None
        if key is not None:
            try:
                key = normalize_key(key)
            except ValueError as exc:
                problems.append(FieldProblem("key", str(exc)))
        if len(self.text or "") > MAX_TEXT_CHARS:
            problems.append(FieldProblem("text", f"the search words are {len(self.text)} characters; use at most "
                                                 f"{MAX_TEXT_CHARS}"))
        if not 1 <= int(self.limit) <= MAX_LIMIT:
            problems.append(FieldProblem("limit", f"limit must be from 1 to {MAX_LIMIT}, got {self.limit}"))
        if problems:
            raise InvalidRequest(problems)
        tags = {name: _library_word(getattr(self, name), name) or getattr(self, name) for name in TAG_FIELDS}
        return LibraryQuery(**{**asdict(self), "key": key, "text": self.text or "", **tags})

    def tag_problems(self) -> list[FieldProblem]:
        """A sentence for each tag field whose word the keyword library does not know (with
        the nearest words): the CLI refuses them; the worker just finds nothing."""
        import difflib

        from acestep_core.keywords import WORDS_BY_CATEGORY

        problems = []
        for name in TAG_FIELDS:
            value = getattr(self, name)
            if value and _library_word(value, name) is None:
                near = difflib.get_close_matches(value.lower(), WORDS_BY_CATEGORY[name], n=3, cutoff=0.6)
                hint = f"; did you mean {' or '.join(repr(w) for w in near)}?" if near else (
                    f"; the {name} words are: {', '.join(WORDS_BY_CATEGORY[name])}")
                problems.append(FieldProblem(name, f"{value!r} is not a {name} word of the keyword library{hint}"))
        return problems

    def to_params(self) -> dict[str, str]:
        """The worker's query parameters for this search (GET /v1/library)."""
        params = {}
        for name, value in asdict(self).items():
            if value is None or value == "" or (name == "include_missing" and value) or (
                    name == "limit" and value == DEFAULT_LIMIT):
                continue
            params["q" if name == "text" else name] = ("true" if value else "false") if isinstance(value, bool) \
                else repr(value) if isinstance(value, float) else str(value)
        return params


@dataclass
class LibraryCue:
    """One indexed cue, as a search returns it. `missing`: the file is not at `path`
    (moved or deleted since it was indexed)."""

    id: int
    path: str
    prompt: str
    moods: list[str] = field(default_factory=list)
    scenes: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    bpm: float | None = None
    key: str | None = None
    duration: float | None = None
    loop: bool = False
    loop_bars: int | None = None
    backend: str | None = None
    model: str | None = None
    licence: str | None = None
    seed: int | None = None
    originality_flagged: bool | None = None
    track: str | None = None  # the stem's part, for a stem
    created: str | None = None
    indexed_at: str = ""
    missing: bool = False
    sidecar_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LibraryCue":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def summary(self) -> str:
        """'boss.wav: 150 BPM, E minor, 12.0 s, loop 8 bars; Apache-2.0 (...)' for lists."""
        parts = [f"{self.bpm:g} BPM" if self.bpm is not None else "tempo unknown", self.key or "key unknown",
                 f"{self.duration:.1f} s" if self.duration is not None else "length unknown"]
        if self.loop:
            parts.append(f"loop {self.loop_bars} bars" if self.loop_bars else "loop")
        if self.originality_flagged:
            parts.append("FLAGGED by the originality check")
        text = f"{self.name}{' (missing)' if self.missing else ''}: {', '.join(parts)}"
        return text + (f"; {self.licence}" if self.licence else "")


def parse_range(text: str | None, what: str, field_name: str) -> tuple[float | None, float | None]:
    """'140-160' -> (140, 160); '140' -> (140, 140); '140-' -> (140, None); '-160' ->
    (None, 160); None or '' -> (None, None). InvalidRequest for anything else."""
    if text is None or not str(text).strip():
        return None, None
    match = _RANGE.match(str(text))
    if match is None or (match.group(1) is None and match.group(3) is None):
        raise InvalidRequest([FieldProblem(field_name, f"{what} must be a number or a range such as 140-160, "
                                                       f"got {text!r}")])
    low = float(match.group(1)) if match.group(1) else None
    high = float(match.group(3)) if match.group(3) else None
    if match.group(2) is None:
        high = low
    if low is not None and high is not None and low > high:
        raise InvalidRequest([FieldProblem(field_name, f"{what} {text!r} runs backwards; put the lower number "
                                                       f"first, such as {high:g}-{low:g}")])
    return low, high


def default_library_path() -> Path:
    return config.app_home() / LIBRARY_FILE


# -- the library -------------------------------------------------------------------------------


class LibraryUnavailable(AceStepError):
    """The library's database cannot be opened or used now; the sentence says why and what to do."""


@dataclass
class AddReport:
    """What `add_folder` did: sidecars indexed, files marked missing, sidecars skipped (why)."""

    indexed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class CueLibrary:
    """The SQLite index. Each call opens its own connection, so one CueLibrary serves
    every thread of the worker."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_library_path()
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(cues)")}
            if "sidecar_stamp" not in columns:  # a library made before add_folder skipped unchanged sidecars
                db.execute("ALTER TABLE cues ADD COLUMN sidecar_stamp TEXT")

    def _connect(self):
        import sqlite3

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")  # a search never waits for a writer
        except (sqlite3.Error, OSError) as exc:
            raise LibraryUnavailable(_unavailable(self.path, exc)) from exc
        return _Closing(db, self.path)

    # -- indexing ------------------------------------------------------------------------

    def index_file(self, audio_path: str | os.PathLike, sidecar: dict | None = None) -> int:
        """Index (or update) one cue from its sidecar (read from NAME.wav.json unless
        given); returns its id. ValueError when there is no sidecar of ours."""
        audio = Path(audio_path).resolve()
        sidecar_file = audio.with_name(audio.name + ".json")
        if sidecar is None:
            sidecar = _read_sidecar(sidecar_file)
        if not _is_cue_sidecar(sidecar):
            raise ValueError(f"{sidecar_file} is not an acestep-dcc cue sidecar")
        with self._connect() as db:
            return _index(db, audio, sidecar_file, sidecar)

    def index_outputs(self, outputs: Iterable[Any]) -> list[int]:
        """Index finished CueOutputs (generation.generate_cues, a set's cues) and their
        stems; each from its own sidecar on disk, else the output's metadata."""
        ids = []
        for output in outputs:
            ids.append(self.index_file(output.path, _read_sidecar_or(output.path, output.metadata)))
            for stem in (getattr(output, "stems", None) or {}).values():
                sidecar = _read_sidecar(Path(str(stem) + ".json"))
                if _is_cue_sidecar(sidecar):
                    ids.append(self.index_file(stem, sidecar))
        return ids

    def add_folder(self, folder: str | os.PathLike) -> AddReport:
        """Index every cue under `folder` (recursively) from its sidecar, and mark the
        cues indexed there before whose files are gone as missing."""
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise InvalidRequest([FieldProblem("folder", f"{root} is not a folder; give the folder that holds the "
                                                         "cues and their .wav.json sidecars")])
        report = AddReport()
        prefix = str(root.resolve()).rstrip(os.sep) + os.sep
        with self._connect() as db:  # one transaction: a folder of thousands is indexed in seconds
            known = {row["path"]: row["sidecar_stamp"] for row in db.execute(
                "SELECT path, sidecar_stamp FROM cues WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))}
            for sidecar_file in sorted(root.rglob("*.json")):
                if not sidecar_file.name.lower().endswith(SIDECAR_SUFFIXES):
                    continue
                audio = sidecar_file.with_name(sidecar_file.name[: -len(".json")]).resolve()
                stamp = _stamp(sidecar_file)
                if stamp is not None and known.get(str(audio)) == stamp and audio.is_file():
                    report.indexed.append(str(audio))  # unchanged since it was indexed
                    continue
                sidecar = _read_sidecar(sidecar_file)
                if not _is_cue_sidecar(sidecar):
                    report.skipped.append((str(sidecar_file), "not an acestep-dcc cue sidecar"))
                elif not audio.is_file():
                    report.skipped.append((str(sidecar_file), f"its audio file {audio.name} is not there"))
                else:
                    _index(db, audio, sidecar_file, sidecar)
                    report.indexed.append(str(audio))
            rows = db.execute("SELECT id, path, missing FROM cues WHERE substr(path, 1, ?) = ?",
                              (len(prefix), prefix)).fetchall()
            states = [(int(not os.path.exists(row["path"])), row["id"], row["path"], row["missing"]) for row in rows]
            db.executemany("UPDATE cues SET missing = ? WHERE id = ?",
                           [(missing, cue_id) for missing, cue_id, _, was in states if missing != was])
            gone = [(cue_id, path) for missing, cue_id, path, _ in states if missing]
        report.missing = [path for _, path in gone]
        return report

    # -- searching -----------------------------------------------------------------------

    def search(self, query: LibraryQuery | None = None) -> list[LibraryCue]:
        """The cues that match, best text match first, then newest. Files found gone are
        marked missing (and found again, present) as they are listed."""
        query = (query or LibraryQuery()).validated()
        where, values = [], []
        words = _WORD.findall(query.text.lower())
        if words:
            # Each word a quoted prefix: no FTS5 syntax a user types can break the query.
            where.append("cues_text MATCH ?")
            values.append(" ".join(f'"{word}"*' for word in words))
        for column, low, high in (("bpm", query.bpm_min, query.bpm_max),
                                  ("duration", query.duration_min, query.duration_max)):
            if low is not None:
                where.append(f"c.{column} >= ?")
                values.append(low - 0.05)  # a cue at 139.97 BPM is a 140 BPM cue
            if high is not None:
                where.append(f"c.{column} <= ?")
                values.append(high + 0.05)
        for column, value in (("key", query.key), ("seed", query.seed), ("backend", query.backend)):
            if value is not None and value != "":
                where.append(f"c.{column} = ? COLLATE NOCASE" if isinstance(value, str) else f"c.{column} = ?")
                values.append(value)
        for column, value in (("model", query.model), ("licence", query.licence)):
            if value:
                where.append(f"instr(lower(c.{column}), ?) > 0")
                values.append(value.lower())
        for column, value in (("moods", query.mood), ("scenes", query.scene), ("styles", query.style),
                              ("instruments", query.instrument)):
            if value:
                where.append(f"EXISTS (SELECT 1 FROM json_each(c.{column}) WHERE lower(json_each.value) = ?)")
                values.append(" ".join(value.lower().split()))
        if query.loop is not None:
            where.append("c.loop = ?")
            values.append(int(query.loop))
        if query.flagged is not None:
            where.append("c.originality_flagged = ?")
            values.append(int(query.flagged))
        order = ("bm25(cues_text), " if words else "") + "c.indexed_at DESC, c.id DESC"
        joined = " JOIN cues_text ON cues_text.rowid = c.id" if words else ""
        sql = (f"SELECT c.* FROM cues c{joined} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order} LIMIT ?")
        params = values + [MAX_LIMIT * 4]
        with self._connect() as db:
            cues, changed = [], []
            for row in db.execute(sql, params):  # read only as far as the answer needs
                missing = not os.path.exists(row["path"])
                if missing != bool(row["missing"]):
                    changed.append((int(missing), row["id"]))
                if missing and not query.include_missing:
                    continue
                cues.append(_cue_from_row(row, missing))
                if len(cues) >= query.limit:
                    break
            if changed:
                db.executemany("UPDATE cues SET missing = ? WHERE id = ?", changed)
        cues.sort(key=lambda cue: cue.missing)  # present files first, each part in its order
        return cues

    def present_files(self) -> list[Path]:
        """Every indexed file that is where it was indexed, oldest first (for the
        originality check, which compares new cues with the library's)."""
        with self._connect() as db:
            paths = [Path(row["path"]) for row in db.execute("SELECT path FROM cues ORDER BY id")]
        return [path for path in paths if path.is_file()]

    def get(self, cue_id: int) -> LibraryCue | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM cues WHERE id = ?", (int(cue_id),)).fetchone()
        return None if row is None else _cue_from_row(row, not os.path.exists(row["path"]))


def _index(db, audio: Path, sidecar_file: Path, sidecar: dict) -> int:
    """Insert or update one cue's row and its text; a cue moved since (same identity, old
    file gone) keeps its row."""
    row = _row_from_sidecar(audio, sidecar_file if sidecar_file.is_file() else None, sidecar)
    found = db.execute("SELECT id FROM cues WHERE path = ?", (row["path"],)).fetchone()
    if found is None:
        for moved in db.execute("SELECT id, path FROM cues WHERE identity = ?", (row["identity"],)).fetchall():
            if not os.path.exists(moved["path"]):
                found = moved
                break
    names = list(row)
    if found is None:
        cue_id = db.execute(f"INSERT INTO cues ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                            [row[n] for n in names]).lastrowid
    else:
        cue_id = found["id"]
        db.execute(f"UPDATE cues SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                   [row[n] for n in names] + [cue_id])
        db.execute("DELETE FROM cues_text WHERE rowid = ?", (cue_id,))
    db.execute("INSERT INTO cues_text (rowid, prompt, tags) VALUES (?, ?, ?)", (cue_id, row["prompt"], _tags_text(row)))
    return cue_id


def _stamp(path: Path) -> str | None:
    """Size and modification time: a sidecar with the same stamp is not read again."""
    try:
        info = path.stat()
    except OSError:
        return None
    return f"{info.st_size}:{info.st_mtime_ns}"


def index_outputs_safely(outputs: Iterable[Any], warn=None) -> list[int]:
    """index_outputs on the user's library, never raising: a library that cannot be
    written must not fail a generation. `warn(sentence)` hears why (default: the log)."""
    outputs = list(outputs)
    try:
        return CueLibrary().index_outputs(outputs)
    except Exception as exc:  # noqa: BLE001 - any failure here is only a warning
        names = ", ".join(os.path.basename(str(o.path)) for o in outputs) or "the cues"
        reason = str(exc) if isinstance(exc, LibraryUnavailable) else f"{type(exc).__name__}: {exc}"
        sentence = (f"{names} could not be added to the cue library ({reason}); add them later with "
                    "'acestep-dcc library add FOLDER'")
        (warn or log.warning)(sentence)
        return []


# -- rows --------------------------------------------------------------------------------------


class _Closing:
    """`with` commits (or rolls back) and closes, and turns SQLite's errors into one
    LibraryUnavailable sentence; sqlite3's own context manager only commits."""

    def __init__(self, db, path: Path):
        self.db, self.path = db, path

    def __enter__(self):
        return self.db

    def __exit__(self, kind, error, _traceback):
        import sqlite3

        try:
            if kind is None:
                self.db.commit()
            else:
                self.db.rollback()
        except sqlite3.Error as exc:
            error = error or exc
        finally:
            self.db.close()
        if isinstance(error, sqlite3.Error):
            raise LibraryUnavailable(_unavailable(self.path, error)) from error
        return False


def _unavailable(path: Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if "locked" in reason or "busy" in reason:
        return f"the cue library {path} is busy (another program holds it); try again in a moment"
    if "fts5" in reason.lower():
        return ("this Python's SQLite has no FTS5, which the cue library needs; use a Python built with it "
                "(python.org's and most Linux distributions' are)")
    return (f"the cue library {path} cannot be used ({reason}); free some disk space or fix its folder's "
            "permissions, or move the file away to start a new library")


def _read_sidecar(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_sidecar_or(audio_path: str, metadata: dict | None) -> dict | None:
    on_disk = _read_sidecar(Path(str(audio_path) + ".json"))
    return on_disk if _is_cue_sidecar(on_disk) else metadata


def _is_cue_sidecar(sidecar: Any) -> bool:
    return isinstance(sidecar, dict) and isinstance(sidecar.get("request"), dict) and (
        str(sidecar.get("software", "")).startswith("acestep-dcc") or "backend" in sidecar)


def _library_word(value: str | None, category: str) -> str | None:
    """The keyword library's own word for `value` (an alias gives its word), or None."""
    from acestep_core.keywords import keyword

    if not value or not value.strip():
        return None
    try:
        entry = keyword(value)
    except KeyError:
        return None
    return entry.word if entry.category == category else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flagged(originality: Any) -> bool | None:
    """The originality check's verdict (sidecar key `originality`), None when unchecked."""
    if not isinstance(originality, dict):
        return None
    if isinstance(originality.get("flagged"), bool):
        return originality["flagged"]
    matches = originality.get("matches")
    if isinstance(matches, list):
        return any(isinstance(m, dict) and m.get("flagged") is True for m in matches)
    return None


def _row_from_sidecar(audio: Path, sidecar_file: Path | None, sidecar: dict) -> dict[str, Any]:
    from acestep_core.keywords import parse_prompt

    request = sidecar.get("request") or {}
    prompt = _text(request.get("prompt")) or ""
    tags = parse_prompt(prompt)
    backend = sidecar.get("backend") if isinstance(sidecar.get("backend"), dict) else {}
    folder = _text(backend.get("model_path"))
    model = (_text(backend.get("model_id")) or (os.path.basename(folder.rstrip("/\\")) if folder else None)
             or _text(backend.get("label")))
    licence = sidecar.get("licence")
    loop = sidecar.get("loop") if isinstance(sidecar.get("loop"), dict) else None
    tempo = sidecar.get("tempo") if isinstance(sidecar.get("tempo"), dict) else {}
    key = sidecar.get("key") if isinstance(sidecar.get("key"), dict) else {}
    seed = sidecar.get("seed")
    originality = sidecar.get("originality")
    identity = "|".join(str(sidecar.get(name)) for name in ("created", "seed", "candidate", "track")) + "|" + \
        str(sidecar.get("file") or audio.name)
    return {
        "path": str(audio),
        "identity": hashlib.sha1(identity.encode("utf-8")).hexdigest(),
        "sidecar_path": str(sidecar_file) if sidecar_file else None,
        "prompt": prompt,
        "moods": json.dumps(list(tags.moods)),
        "scenes": json.dumps(list(tags.scenes)),
        "styles": json.dumps(list(tags.styles)),
        "instruments": json.dumps(list(tags.instruments)),
        "bpm": _number(tempo.get("used")) if tempo.get("used") is not None else _number(request.get("bpm")),
        "key": _text(key.get("used")) or _text(request.get("key")),
        "duration": _number(sidecar.get("duration_written")) or _number(sidecar.get("duration_requested")),
        "loop": int(loop is not None),
        "loop_bars": int(loop["bars"]) if loop and isinstance(loop.get("bars"), int) else None,
        "backend": _text(backend.get("name")),
        "model": model,
        "licence": _text(licence.get("summary")) if isinstance(licence, dict) else _text(licence),
        "seed": int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "originality_flagged": None if _flagged(originality) is None else int(_flagged(originality)),
        "originality": json.dumps(originality) if originality is not None else None,
        "track": _text(sidecar.get("track")),
        "created": _text(sidecar.get("created")),
        "indexed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
        "missing": 0,
        "sidecar_stamp": _stamp(sidecar_file) if sidecar_file else None,
    }


def _tags_text(row: dict[str, Any]) -> str:
    """What the free text matches besides the prompt: tags, key, backend, model, file name."""
    words = []
    for column in ("moods", "scenes", "styles", "instruments"):
        words += json.loads(row[column])
    words += [row[name] for name in ("key", "backend", "model", "track") if row[name]]
    words.append(os.path.basename(row["path"]))
    return " ".join(words)


def _cue_from_row(row, missing: bool) -> LibraryCue:
    flagged = row["originality_flagged"]
    return LibraryCue(
        id=row["id"], path=row["path"], prompt=row["prompt"], moods=json.loads(row["moods"]),
        scenes=json.loads(row["scenes"]), styles=json.loads(row["styles"]), instruments=json.loads(row["instruments"]),
        bpm=row["bpm"], key=row["key"], duration=row["duration"], loop=bool(row["loop"]), loop_bars=row["loop_bars"],
        backend=row["backend"], model=row["model"], licence=row["licence"], seed=row["seed"],
        originality_flagged=None if flagged is None else bool(flagged), track=row["track"], created=row["created"],
        indexed_at=row["indexed_at"], missing=missing, sidecar_path=row["sidecar_path"])
