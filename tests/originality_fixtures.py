"""A sketch worker whose originality check is on (`acestep-dcc worker --against DIR`), for
the host tests: its reference library holds the sketch's own cue of one prompt and seed,
so a host that asks the worker for that prompt and seed gets a flagged cue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from worker_fixtures import WORKER_PYTHON, WorkerProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
FLAGGED_PROMPT = "tense boss battle, synthwave"
FLAGGED_SEED = 7


def make_reference_library(folder: Path, home: Path, seconds: float, *options: str) -> Path:
    """The sketch's cue of FLAGGED_PROMPT at FLAGGED_SEED (and the generate `options` the
    host will send, such as the project's tempo), made by the real CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ACESTEP_DCC_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-m", "acestep_core.cli", "generate", FLAGGED_PROMPT, "--seconds", f"{seconds:g}",
                    "--seed", str(FLAGGED_SEED), "--backend", "sketch", *options, "-o", str(folder / "protected.wav")],
                   check=True, capture_output=True, env=env, cwd=REPO_ROOT)
    return folder


def checking_worker(tmp_path_factory: pytest.TempPathFactory, seconds: float, *options: str) -> Iterator[WorkerProcess]:
    # The worker's Python analyses (the host's may lack librosa, and needs none).
    if subprocess.run([WORKER_PYTHON, "-c", "import librosa"], capture_output=True).returncode != 0:
        pytest.skip(f"the worker's Python ({WORKER_PYTHON}) has no librosa for the originality check "
                    "(pip install -e '.[originality]')")
    root = tmp_path_factory.mktemp("originality-worker")
    library = make_reference_library(root / "references", root / "cli-home", seconds, *options)
    process = WorkerProcess(root / "home", "sketch", None, ("--against", str(library)))
    process.library = library
    process.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(process.home))
        yield process
    process.stop(timeout=10)
