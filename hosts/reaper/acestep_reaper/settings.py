"""Where the REAPER actions keep their settings and how they find the worker.

- ExtState section "acestep-dcc": "runs" (the generations in flight, for Cancel),
  "cancel" (runs the user cancelled), "last_prompt" (persisted).
- The worker command: lib/acestep-dcc.json written by `acestep-dcc install reaper`
  next to the installed packages, else "worker_command" in acestep-dcc's config.json,
  else this Python when it can run the worker itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from acestep_core import config
from acestep_core.client import default_worker_command

EXT_SECTION = "acestep-dcc"
INSTALL_SETTINGS = Path(__file__).resolve().parent.parent / "acestep-dcc.json"

NO_WORKER_MESSAGE = (
    "ACE-Step's worker is not running, and REAPER does not know how to start it.\n\n"
    "Start it in a terminal with:  acestep-dcc worker\n"
    "then run the action again. Or run 'acestep-dcc install reaper' from the environment "
    "where acestep-dcc is installed, so the actions can start the worker themselves."
)


def install_settings() -> dict:
    try:
        return json.loads(INSTALL_SETTINGS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def worker_command() -> list[str] | None:
    for found in (install_settings().get("worker_command"), config.load_config().get("worker_command")):
        if isinstance(found, list) and found and all(isinstance(part, str) for part in found):
            return found
    return default_worker_command()
