"""Where acestep-dcc keeps things, and which model folder is the default.

Standard library only. Folders follow the platform's conventions and can all be
moved with ACESTEP_DCC_HOME (tests use it to stay out of the user's home).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODEL_ENV = "ACESTEP_DCC_MODEL"
HOME_ENV = "ACESTEP_DCC_HOME"
DEFAULT_REPO_ID = "ACE-Step/acestep-v15-xl-turbo-diffusers"


def app_home() -> Path:
    """The root folder for config, state, data and models."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "acestep-dcc"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "acestep-dcc"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "acestep-dcc"


def config_path() -> Path:
    return app_home() / "config.json"


def state_dir() -> Path:
    """Discovery file, lock and worker log."""
    return app_home() / "state"


def models_dir() -> Path:
    return app_home() / "models"


def load_config() -> dict:
    try:
        return json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
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
