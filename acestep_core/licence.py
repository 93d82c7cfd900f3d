"""The licence every cue carries: what the model's own files say, never a guess.

For an ACE-Step model folder it reads, in this order of authority:

1. the model card (README.md): its YAML front matter's `license`, `license_name` and
   `license_link`, and from its text the sentence that speaks of commercial use;
2. a LICENSE file (LICENSE, LICENSE.md, LICENCE.txt, COPYING ...): its title line;
3. the download record (model_folder.DOWNLOAD_RECORD): the Hub repo and revision,
   which give the model card's address.

Nothing found means "licence unknown: read the model card at <url or folder>". The
sketch backend states acestep-dcc's own licence (its package metadata).

Standard library only at import; the front matter is parsed with huggingface_hub's
model-card reader (PyYAML) when it is installed, as it is wherever a model runs.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODEL_CARD = "README.md"
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "LICENCE.txt", "COPYING")
PROJECT_NAME = "acestep-dcc"
# pyproject.toml's `license` and the LICENSE file (a test holds the three together): a
# constant, because reading the installed metadata costs a one-shot generate 80 ms.
PROJECT_LICENCE = "Apache-2.0"
HUB_URL = "https://huggingface.co"
# The longest quote kept from a card: a sentence, not the card.
MAX_QUOTE_CHARS = 300
_COMMERCIAL = re.compile(r"commercial", re.IGNORECASE)
# Sentences end at . ! ? followed by a space, or at a blank line / list item / heading.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n\s*[-*#|]")


@dataclass(frozen=True)
class Licence:
    """What the files say about a cue's licence. `summary` is the one line shown to users
    (CLI, INFO chunk, Blender, REAPER); the rest is for the sidecar."""

    summary: str
    known: bool
    id: str | None = None  # the card's `license:` (Hub ids: apache-2.0, mit, other, ...)
    name: str | None = None  # license_name, or a LICENSE file's title line
    link: str | None = None  # license_link
    source: str | None = None  # where the licence was read ("model card front matter", ...)
    licence_file: str | None = None  # the LICENSE file's name, when there is one
    commercial_use: str | None = None  # the card's own sentence about commercial use, quoted
    model_card: str | None = None  # the card's address (Hub URL) or path
    applies_to: str = "the model's output"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_licence(folder: str | Path) -> Licence:
    """The licence of a model folder's output, from its card, LICENSE file and download record."""
    folder = Path(folder).expanduser()
    record = _download_record(folder)
    card_path = folder / MODEL_CARD
    card_url = _card_url(record)
    where = card_url or str(card_path if card_path.is_file() else folder)
    meta, body = _read_card(card_path)
    licence_id = _text(meta.get("license"))
    name = _text(meta.get("license_name"))
    link = _text(meta.get("license_link"))
    source = "model card front matter (README.md)" if licence_id or name else None
    licence_file, title = _licence_file(folder)
    if source is None and title:
        name, source = title, f"{licence_file} file"
    if source is None and _text(record.get("license")):
        licence_id, source = _text(record.get("license")), "download record"
    commercial = _commercial_sentence(body)
    if source is None:
        summary = f"licence unknown: read the model card at {where}"
    else:
        shown = " ".join(dict.fromkeys(filter(None, (licence_id, name))))
        summary = f"{shown} ({source})"
        if link:
            summary += f", terms: {link}"
    if commercial:
        summary += f"; the card says: \"{commercial}\""
    return Licence(summary=summary, known=source is not None, id=licence_id, name=name, link=link, source=source,
                   licence_file=licence_file, commercial_use=commercial, model_card=where)


@functools.lru_cache(maxsize=1)
def project_licence() -> Licence:
    """acestep-dcc's own licence, which the sketch backend's output is under (its
    procedural code makes every sample; no model or data is involved)."""
    applies = "the sketch backend's output (acestep-dcc's own procedural code; no model weights)"
    return Licence(summary=f"{PROJECT_LICENCE} ({PROJECT_NAME}'s own licence; its own code made this audio, "
                           "no ML model)",
                   known=True, id=PROJECT_LICENCE, source=f"{PROJECT_NAME} package metadata", applies_to=applies)


def unknown_licence(where: str) -> Licence:
    return Licence(summary=f"licence unknown: read the model card at {where}", known=False, model_card=where)


# -- reading ---------------------------------------------------------------------------------


def _download_record(folder: Path) -> dict:
    from acestep_core.model_folder import DOWNLOAD_RECORD

    try:
        record = json.loads((folder / DOWNLOAD_RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _card_url(record: dict) -> str | None:
    repo = _text(record.get("repo_id"))
    if repo is None:
        return None
    revision = _text(record.get("revision"))
    return f"{HUB_URL}/{repo}" + (f"/blob/{revision}/{MODEL_CARD}" if revision else "")


def _read_card(path: Path) -> tuple[dict, str]:
    """(front matter, text after it); ({}, "") when there is no readable card."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}, ""
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(?:\n|$)", text, re.DOTALL)
    if match is None:
        return {}, text
    body = text[match.end():]
    try:
        from huggingface_hub.repocard import metadata_load
    except ImportError:  # a host Python: the body is still searched
        return {}, body
    try:
        meta = metadata_load(path)
    except Exception:  # malformed YAML: treated as no front matter, never a failed generation
        return {}, body
    return (meta if isinstance(meta, dict) else {}), body


def _licence_file(folder: Path) -> tuple[str | None, str | None]:
    """(file name, its first non-empty line, e.g. 'Apache License'), or (None, None)."""
    for name in LICENCE_FILES:
        path = folder / name
        if path.is_file():
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            title = next((line.strip().strip("#").strip() for line in lines if line.strip()), None)
            return name, (title[:100] if title else None)
    return None, None


def _commercial_sentence(body: str) -> str | None:
    """The card's first sentence that mentions commercial use, as written (shortened)."""
    for sentence in _SENTENCE_END.split(body):
        if sentence and _COMMERCIAL.search(sentence):
            quote = " ".join(sentence.replace("*", "").replace("`", "").split())
            return quote if len(quote) <= MAX_QUOTE_CHARS else quote[: MAX_QUOTE_CHARS - 3].rstrip() + "..."
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def backend_licence(info) -> dict[str, Any]:
    """The licence record of what a backend (its BackendInfo) makes: its own `licence`,
    else acestep-dcc's for the sketch, else unknown with where to look."""
    if getattr(info, "licence", None):
        return dict(info.licence)
    if getattr(info, "name", None) == "sketch":
        return project_licence().to_dict()
    where = getattr(info, "model_id", None) or getattr(info, "model_path", None) or "the model's folder"
    if where and "/" in where and not Path(where).exists():
        where = f"{HUB_URL}/{where}"
    return unknown_licence(where).to_dict()
