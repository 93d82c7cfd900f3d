"""Helpers for the style pack tests of the hosts (no tests here): music to learn from, and
a tiny checkpoint and a trained pack made by the worker's Python, so a host Python
without torch (bpy 5.2 on Python 3.13) can test with a real pack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
WORKER_PYTHON = os.environ.get("ACESTEP_TEST_WORKER_PYTHON") or sys.executable
RATE = 48000


def write_music(folder: Path) -> Path:
    """Two short square-wave tracks, one with a sidecar caption."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * RATE) / RATE
    for name, pitch in (("boss_tune.wav", 220.0), ("town_loop.wav", 330.0)):
        tone = 0.3 * np.sign(np.sin(2 * np.pi * pitch * t))
        soundfile.write(folder / name, np.stack([tone, tone], axis=1).astype(np.float32), RATE)
    (folder / "boss_tune.wav.json").write_text(json.dumps({"request": {"prompt": "8-bit boss battle"}}))
    return folder


def _run(arguments: list[str], home: Path) -> None:
    env = {**os.environ, "ACESTEP_DCC_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), str(HERE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([WORKER_PYTHON, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def build_checkpoint(path: Path) -> Path:
    """The tiny random checkpoint (tests/tiny_checkpoint.py), built by the worker's Python."""
    _run(["-c", f"from tiny_checkpoint import build_tiny_checkpoint; build_tiny_checkpoint({str(path)!r})"],
         path.parent)
    return path


def train_and_install(music: Path, checkpoint: Path, home: Path, name: str, seed: int = 0) -> Path:
    """`acestep-dcc packs train` run by the worker's Python; the pack lands in home's packs/."""
    _run(["-m", "acestep_core", "packs", "train", str(music), "--name", name, "--model", str(checkpoint),
          "--device", "cpu", "--steps", "3", "--seconds", "2", "--learning-rate", "0.01", "--seed", str(seed),
          "--licence", "CC-BY-4.0", "-o", str(home / "trained" / name)], home)
    return home / "packs" / name
