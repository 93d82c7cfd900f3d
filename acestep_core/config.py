"""Where acestep-dcc keeps things, and which model folder is the default.

Standard library only. On Linux the folders follow the XDG base directory spec:

- config (config.json) in $XDG_CONFIG_HOME/acestep-dcc (default ~/.config/acestep-dcc);
- state (the worker's discovery file, lock and log) in $XDG_STATE_HOME/acestep-dcc
  (default ~/.local/state/acestep-dcc);
- data (the worker's job database, outputs and uploads; models) in
  $XDG_DATA_HOME/acestep-dcc (default ~/.local/share/acestep-dcc).

Windows keeps all three under %LOCALAPPDATA%\\acestep-dcc and macOS under
~/Library/Application Support/acestep-dcc. ACESTEP_DCC_HOME moves everything under one
folder (tests use it to stay out of the user's home). A config.json in the data folder,
where versions before XDG kept it, is still read when the config folder has none.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODEL_ENV = "ACESTEP_DCC_MODEL"
# The originality check's reference library (a folder of music no cue may copy).
REFERENCE_LIBRARY_ENV = "ACESTEP_DCC_REFERENCE_LIBRARY"
REFERENCE_LIBRARY_KEY = "reference_library"
HOME_ENV = "ACESTEP_DCC_HOME"
DEFAULT_REPO_ID = "ACE-Step/acestep-v15-xl-turbo-diffusers"
APP_FOLDER = "acestep-dcc"
CONFIG_FILE = "config.json"


def _home_override() -> Path | None:
    override = os.environ.get(HOME_ENV)
    return Path(override).expanduser() if override else None


def _uses_xdg() -> bool:
    return sys.platform not in ("win32", "darwin")


def _xdg_base(variable: str, default: str) -> Path:
    """An XDG base folder; the spec says to ignore a value that is empty or not absolute."""
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / default


def app_home() -> Path:
    """The data folder: the worker's database, outputs and uploads, and models."""
    override = _home_override()
    if override is not None:
        return override
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP_FOLDER
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_FOLDER
    return _xdg_base("XDG_DATA_HOME", ".local/share") / APP_FOLDER


def config_dir() -> Path:
    """Where config.json lives."""
    if _home_override() is None and _uses_xdg():
        return _xdg_base("XDG_CONFIG_HOME", ".config") / APP_FOLDER
    return app_home()


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def legacy_config_path() -> Path:
    """Where config.json was before the XDG folders (read only when config_path has none)."""
    return app_home() / CONFIG_FILE


def state_dir() -> Path:
    """Discovery file, lock and worker log: the worker and every host find each other here."""
    if _home_override() is None and _uses_xdg():
        return _xdg_base("XDG_STATE_HOME", ".local/state") / APP_FOLDER
    return app_home() / "state"


def worker_data_dir() -> Path:
    """The worker's job database, outputs and uploads."""
    return app_home() / "worker"


def models_dir() -> Path:
    return app_home() / "models"


def load_config() -> dict:
    for path in dict.fromkeys((config_path(), legacy_config_path())):
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return {}
        return values if isinstance(values, dict) else {}
    return {}


def save_config(values: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**load_config(), **values}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def default_model_dir(repo_id: str = DEFAULT_REPO_ID) -> Path:
    """Where download-model puts a repo by default."""
    return models_dir() / repo_id.split("/")[-1]


def configured_model(explicit: str | os.PathLike | None = None) -> Path | None:
    """The model folder to use: --model, else $ACESTEP_DCC_MODEL, else the configured default."""
    for candidate in (explicit, os.environ.get(MODEL_ENV), load_config().get("model")):
        if candidate:
            return Path(candidate).expanduser()
    return None


def configured_reference_library(explicit: str | os.PathLike | None = None) -> Path | None:
    """The originality check's reference folder: --against, else $ACESTEP_DCC_REFERENCE_LIBRARY,
    else config.json's "reference_library"; None when none is set (no check)."""
    for candidate in (explicit, os.environ.get(REFERENCE_LIBRARY_ENV), load_config().get(REFERENCE_LIBRARY_KEY)):
        if candidate:
            return Path(candidate).expanduser()
    return None
