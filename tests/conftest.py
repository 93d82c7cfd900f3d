"""Shared fixtures. Each block is self-contained; add new fixtures below the existing ones."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

# Real worker processes shared by the worker, Blender and REAPER tests.
pytest_plugins = ["worker_fixtures", "reaper_standin.fixtures"]

# -- isolation and the tiny ACE-Step checkpoint (tests/tiny_checkpoint.py) -----------------


@pytest.fixture(scope="session", autouse=True)
def acestep_dcc_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ACESTEP_DCC_HOME points at a temporary folder for the whole session, so no test
    reads or writes the real config, state or models folders."""
    home = tmp_path_factory.mktemp("acestep-dcc-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(home))
        patch.delenv("ACESTEP_DCC_MODEL", raising=False)
        yield home


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ACE-Step 1.5 turbo checkpoint, built once per session in the real
    Hub layout (model_index.json + one folder per component). Treat it as read-only;
    tests that change files use tiny_checkpoint_factory."""
    from tiny_checkpoint import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("models") / "acestep-v15-tiny-turbo")


@pytest.fixture
def tiny_checkpoint_factory(tmp_path: Path) -> Callable[..., Path]:
    """make(name="acestep-v15-tiny", *, seed=0, variant="turbo", with_audio_tokenizer=True,
    **sizes) -> Path of a fresh checkpoint in this test's tmp_path (sizes: TinySizes fields)."""
    from tiny_checkpoint import build_tiny_checkpoint

    def make(name: str = "acestep-v15-tiny", **options) -> Path:
        return build_tiny_checkpoint(tmp_path / name, **options)

    return make


# -- a Python without acestep-dcc's worker packages (the Worker Python error tests) ----------


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Python with nothing installed: a fresh venv without pip."""
    import os
    import subprocess
    import sys

    env = tmp_path_factory.mktemp("bare-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    return env / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")
