"""Folders follow the XDG base directory spec on Linux (config, state and data apart),
ACESTEP_DCC_HOME still moves everything, and a config.json where older versions kept
it is still read. The worker and the client that finds it agree on the state folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acestep_core import config
from acestep_core.client import find_worker
from acestep_core.worker.discovery import discovery_path, read_discovery

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG folders are Linux's")
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """No ACESTEP_DCC_HOME; each XDG base folder its own temporary folder."""
    monkeypatch.delenv(config.HOME_ENV, raising=False)
    monkeypatch.delenv(config.MODEL_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folders = {name: tmp_path / name.lower() for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}
    for name, folder in folders.items():
        monkeypatch.setenv(name, str(folder))
    return folders


def test_config_state_and_data_live_in_their_own_xdg_folders(xdg):
    assert config.config_path() == xdg["XDG_CONFIG_HOME"] / "acestep-dcc" / "config.json"
    assert config.state_dir() == xdg["XDG_STATE_HOME"] / "acestep-dcc"
    assert config.worker_data_dir() == xdg["XDG_DATA_HOME"] / "acestep-dcc" / "worker"
    assert config.models_dir() == xdg["XDG_DATA_HOME"] / "acestep-dcc" / "models"
    assert discovery_path() == xdg["XDG_STATE_HOME"] / "acestep-dcc" / "worker.json"


def test_unset_empty_or_relative_xdg_values_fall_back_to_the_spec_defaults(xdg, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", "")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the spec: ignore a relative path
    assert config.config_path() == home / ".config" / "acestep-dcc" / "config.json"
    assert config.state_dir() == home / ".local" / "state" / "acestep-dcc"
    assert config.app_home() == home / ".local" / "share" / "acestep-dcc"


def test_acestep_dcc_home_still_moves_everything(xdg, tmp_path, monkeypatch):
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path / "one"))
    assert config.config_path() == tmp_path / "one" / "config.json"
    assert config.state_dir() == tmp_path / "one" / "state"
    assert config.worker_data_dir() == tmp_path / "one" / "worker"


def test_a_config_in_the_old_place_is_still_read_and_kept_on_save(xdg, tmp_path):
    old = xdg["XDG_DATA_HOME"] / "acestep-dcc" / "config.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"model": str(tmp_path / "old-model"), "worker_command": ["python"]}))
    assert config.configured_model() == tmp_path / "old-model"

    config.save_config({"model": str(tmp_path / "new-model")})
    assert json.loads(config.config_path().read_text()) == {"model": str(tmp_path / "new-model"),
                                                            "worker_command": ["python"]}
    assert config.configured_model() == tmp_path / "new-model"  # the new place wins from now on


def test_the_worker_and_the_client_meet_in_the_xdg_state_folder(xdg):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    log = xdg["XDG_DATA_HOME"].parent / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "acestep_core.worker", "--backend", "sketch"], env=env,
                                   cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (client := find_worker()) is None:  # the client looks where config.state_dir() says
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        state = xdg["XDG_STATE_HOME"] / "acestep-dcc"
        assert read_discovery(state).pid == process.pid == client.health()["pid"]
        assert client.health()["log_path"] == str(state / "worker.log")
        assert (xdg["XDG_DATA_HOME"] / "acestep-dcc" / "worker" / "jobs.sqlite3").is_file()
        assert not (xdg["XDG_DATA_HOME"] / "acestep-dcc" / "state").exists()
        client.shutdown()
        assert process.wait(30) == 0
        assert not (state / "worker.json").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
