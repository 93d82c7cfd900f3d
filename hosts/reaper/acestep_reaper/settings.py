"""Where the REAPER actions keep their settings and how they find the worker.

- ExtState section "acestep-dcc": "runs" (the generations in flight, for Cancel),
  "cancel" (runs the user cancelled), "last_prompt" (persisted), and the worker
  settings the "ACE-Step: Worker settings" action writes (persisted): "worker_python",
  "idle_unload_minutes" and "idle_exit_minutes".
- The worker command: the Worker Python set in REAPER, else lib/acestep-dcc.json written
  by `acestep-dcc install reaper` next to the installed packages, else "worker_command"
  in acestep-dcc's config.json, else this Python when it can run the worker itself.
- A remote worker or studio cluster (persisted, "remote_url" and "remote_token"): when
  its URL is set, every action uses it and never starts a worker on this computer.
- A worker REAPER starts loads the model at once (--preload), unloads it after
  idle_unload_minutes without a job and exits after idle_exit_minutes without a request
  (0: never), so it gives the model's memory back when REAPER is done with it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from acestep_core import config
from acestep_core import client as worker_client
from acestep_core.client import default_worker_command, worker_command_for_python
from acestep_core.errors import WorkerUnreachable

from . import project

EXT_SECTION = "acestep-dcc"
INSTALL_SETTINGS = Path(__file__).resolve().parent.parent / "acestep-dcc.json"
WORKER_PYTHON_KEY = "worker_python"
IDLE_UNLOAD_KEY = "idle_unload_minutes"
IDLE_EXIT_KEY = "idle_exit_minutes"
REMOTE_URL_KEY = "remote_url"
REMOTE_TOKEN_KEY = "remote_token"
DEFAULT_IDLE_UNLOAD_MINUTES = 10.0
DEFAULT_IDLE_EXIT_MINUTES = 30.0
SETTINGS_ACTION = "ACE-Step: Worker settings"

NO_WORKER_MESSAGE = (
    "ACE-Step's worker is not running, and REAPER does not know how to start it.\n\n"
    "Start it in a terminal with:  acestep-dcc worker\n"
    "then run the action again. Or run 'acestep-dcc install reaper' from the environment "
    f"where acestep-dcc is installed, or set Worker Python with the '{SETTINGS_ACTION}' action, "
    "so the actions can start the worker themselves."
)


@dataclass(frozen=True)
class WorkerLifetime:
    """How long a worker REAPER starts keeps the model and itself when nothing happens (0: forever)."""

    idle_unload_minutes: float = DEFAULT_IDLE_UNLOAD_MINUTES
    idle_exit_minutes: float = DEFAULT_IDLE_EXIT_MINUTES

    def worker_arguments(self) -> list[str]:
        """--preload, and the idle flags of those that are not 0."""
        arguments = ["--preload"]
        if self.idle_unload_minutes > 0:
            arguments += ["--idle-unload", f"{self.idle_unload_minutes:g}"]
        if self.idle_exit_minutes > 0:
            arguments += ["--idle-exit", f"{self.idle_exit_minutes:g}"]
        return arguments


def minutes(text: str) -> float | None:
    """A number of minutes, 0 or more; None for anything else."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def worker_lifetime() -> WorkerLifetime:
    """The idle settings (a missing or unreadable one keeps its default)."""
    unload = minutes(project.get_state(IDLE_UNLOAD_KEY, EXT_SECTION) or "")
    exit_after = minutes(project.get_state(IDLE_EXIT_KEY, EXT_SECTION) or "")
    return WorkerLifetime(DEFAULT_IDLE_UNLOAD_MINUTES if unload is None else unload,
                          DEFAULT_IDLE_EXIT_MINUTES if exit_after is None else exit_after)


def save_worker_settings(worker_python: str, lifetime: WorkerLifetime) -> None:
    """Persist the settings; an empty Worker Python goes back to what the install set."""
    project.set_state(WORKER_PYTHON_KEY, worker_python.strip(), EXT_SECTION, persist=True)
    project.set_state(IDLE_UNLOAD_KEY, f"{lifetime.idle_unload_minutes:g}", EXT_SECTION, persist=True)
    project.set_state(IDLE_EXIT_KEY, f"{lifetime.idle_exit_minutes:g}", EXT_SECTION, persist=True)


def remote_worker_setting() -> tuple[str, str]:
    """(url, token) of the remote worker or cluster; an empty url: this computer's worker."""
    return ((project.get_state(REMOTE_URL_KEY, EXT_SECTION) or "").strip(),
            (project.get_state(REMOTE_TOKEN_KEY, EXT_SECTION) or "").strip())


def save_remote_worker(url: str, token: str) -> None:
    project.set_state(REMOTE_URL_KEY, url.strip(), EXT_SECTION, persist=True)
    project.set_state(REMOTE_TOKEN_KEY, token.strip() if url.strip() else "", EXT_SECTION, persist=True)


def find_worker(timeout: float) -> worker_client.WorkerClient | None:
    """The remote worker when one is set (it must answer), else this computer's running
    worker, or None (then an action may start one)."""
    url, token = remote_worker_setting()
    if not url:
        return worker_client.find_worker(timeout=timeout)
    remote = worker_client.WorkerClient(url, token)
    if not remote.alive(timeout=timeout):
        raise WorkerUnreachable(f"the remote worker at {url} (set in '{SETTINGS_ACTION}') is not answering; check "
                                "that it runs and its URL, or empty the URL to use a worker on this computer")
    return remote


def worker_python_setting() -> str:
    return (project.get_state(WORKER_PYTHON_KEY, EXT_SECTION) or "").strip()


WORKER_PYTHON = "Worker Python"  # the setting's name, as sentences about it say


def worker_python_fix(python: str) -> str:
    """What to do when `python` cannot run the worker: name the Python acestep-dcc is
    installed in when that is another one and it is there."""
    installed = installed_worker_command()
    suggestion = installed[0] if installed and installed[0] != python and os.path.isfile(installed[0]) else None
    if suggestion:
        return f"set {WORKER_PYTHON} in '{SETTINGS_ACTION}' to {suggestion}, the Python acestep-dcc is installed in"
    return (f"set {WORKER_PYTHON} in '{SETTINGS_ACTION}' to the Python of the environment where acestep-dcc is "
            "installed (the one 'acestep-dcc install reaper' prints), or run that install again")


def worker_python_problem(python: str) -> str | None:
    """A sentence when `python` is not there to run (a path that does not exist, or a
    bare name not on PATH)."""
    if os.path.isfile(python) if os.path.dirname(python) else shutil.which(python):
        return None
    return f"{WORKER_PYTHON} {python} does not exist; {worker_python_fix(python)}"


def install_settings() -> dict:
    try:
        return json.loads(INSTALL_SETTINGS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def installed_worker_command() -> list[str] | None:
    """The command the install (or acestep-dcc's config) gives, else this Python's when it can."""
    for found in (install_settings().get("worker_command"), config.load_config().get("worker_command")):
        if isinstance(found, list) and found and all(isinstance(part, str) for part in found):
            return found
    return default_worker_command()


def worker_command() -> list[str] | None:
    """The command that starts the worker, without the lifetime flags."""
    python = worker_python_setting()
    return worker_command_for_python(python) if python else installed_worker_command()


def host_worker_command() -> list[str] | None:
    """The command REAPER starts the worker with: worker_command() and the lifetime flags."""
    command = worker_command()
    return None if command is None else [*command, *worker_lifetime().worker_arguments()]
