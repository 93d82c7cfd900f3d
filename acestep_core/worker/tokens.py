"""Per-user tokens: `acestep-dcc tokens add NAME`, `tokens revoke NAME`, `tokens list`.

Standard library only. The tokens file (tokens.json in the state folder, 0600) keeps
each user's name and the SHA-256 of their token, never the token itself, so a copied
file lets nobody in. A worker or a cluster accepts its own discovery-file token and
every token in this file; it reads the file again whenever it changes (one stat per
request), so a revocation counts from the next request without a restart. Each job
records the name of the user whose token submitted it (`requested_by`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import sys
import threading
from pathlib import Path

from acestep_core import config
from acestep_core.errors import AceStepError

TOKENS_FILE = "tokens.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class TokenProblem(AceStepError):
    """A bad name, an unknown user, or a tokens file that cannot be read or written."""


def default_tokens_path() -> Path:
    return config.state_dir() / TOKENS_FILE


def token_digest(token: str) -> str:
    # A plain hash is enough: tokens are 32 random bytes, so there is nothing to guess
    # that a slow password hash would protect.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenBook:
    """The users allowed in, read from the tokens file when it changes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_tokens_path()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_digest: dict[str, str] = {}

    # -- checking (the worker's middleware) ----------------------------------------------

    def user_for(self, token: str) -> str | None:
        """The name of the user this token belongs to, or None (unknown or revoked)."""
        if not token:
            return None
        self._reload_if_changed()
        # A dict lookup on the digest: equal digests say nothing about how much of a token matched.
        return self._by_digest.get(token_digest(token))

    def _reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        with self._lock:
            entries = self._read() if stamp is not None else []
            self._by_digest = {entry["sha256"]: entry["name"] for entry in entries}
            self._stamp = stamp

    # -- editing (the tokens command) --------------------------------------------------

    def names(self) -> list[dict]:
        return [{"name": e["name"], "created_at": e.get("created_at", "")} for e in self._read()]

    def add(self, name: str) -> str:
        """A new token for `name` (printed once; only its hash is kept). A name already
        there gets a new token and the old one stops working."""
        if not NAME_PATTERN.match(name or ""):
            raise TokenProblem(f"the user name {name!r} is not usable; use 1-64 letters, digits, '.', '_', '-' or '@', "
                               "starting with a letter or digit")
        token = secrets.token_urlsafe(32)
        entries = [e for e in self._read() if e["name"] != name]
        entries.append({"name": name, "sha256": token_digest(token),
                        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        self._write(entries)
        return token

    def revoke(self, name: str) -> None:
        entries = self._read()
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            known = ", ".join(e["name"] for e in entries) or "none"
            raise TokenProblem(f"there is no token for {name!r} in {self.path} (users: {known}); "
                               "see them with 'acestep-dcc tokens list'")
        self._write(kept)

    def _read(self) -> list[dict]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TokenProblem(f"the tokens file {self.path} cannot be read ({exc.strerror}); check its permissions")
        try:
            entries = json.loads(text)["tokens"]
            return [{"name": str(e["name"]), "sha256": str(e["sha256"]), "created_at": str(e.get("created_at", ""))}
                    for e in entries]
        except (ValueError, KeyError, TypeError):
            raise TokenProblem(f"the tokens file {self.path} is not a tokens file; move it away and add the "
                               "users again with 'acestep-dcc tokens add NAME'") from None

    def _write(self, entries: list[dict]) -> None:
        """Written 0600 under a temporary name, then renamed: a reader never sees half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"tokens": entries}, out, indent=2)
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise TokenProblem(f"the tokens file {self.path} cannot be written ({exc.strerror}); "
                               "check that folder's permissions") from None


# -- the command ----------------------------------------------------------------------------


def add_tokens_commands(commands) -> None:
    tokens = commands.add_parser("tokens", help="per-user tokens for a worker or cluster other computers use")
    tokens.add_argument("--file", help=f"the tokens file (default: {TOKENS_FILE} in acestep-dcc's state folder)")
    actions = tokens.add_subparsers(title="actions", metavar="ACTION")
    tokens.set_defaults(handler=lambda _: tokens.print_help(sys.stderr) or 2)
    add = actions.add_parser("add", help="make a token for a user (printed once) and allow it")
    add.add_argument("name", help="who the token is for, e.g. alice; recorded with each job they submit")
    add.set_defaults(handler=_run_add)
    revoke = actions.add_parser("revoke", help="stop a user's token from working (from the next request on)")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_run_revoke)
    listing = actions.add_parser("list", help="the users who have a token")
    listing.set_defaults(handler=_run_list)


def _book(args: argparse.Namespace) -> TokenBook:
    return TokenBook(args.file)


def _run_add(args: argparse.Namespace) -> int:
    book = _book(args)
    token = book.add(args.name)
    print(token)
    print(f"acestep-dcc: token for {args.name} added to {book.path}; give it to them for their host's settings "
          "(it is shown only this once)", file=sys.stderr)
    return 0


def _run_revoke(args: argparse.Namespace) -> int:
    book = _book(args)
    book.revoke(args.name)
    print(f"acestep-dcc: {args.name}'s token is revoked in {book.path}", file=sys.stderr)
    return 0


def _run_list(args: argparse.Namespace) -> int:
    book = _book(args)
    for entry in book.names():
        print(f"{entry['name']}\t{entry['created_at']}")
    return 0
