"""`acestep-dcc doctor`: each line is ok, or says what to fix."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from acestep_core import config

MIN_DIFFUSERS = (0, 42)


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 11):
        return Check(False, f"Python {version}: acestep-dcc needs 3.11 or newer; create the venv with python3.11")
    return Check(True, f"Python {version}")


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check(False, "torch is not installed: run 'pip install torch' for your machine (see README)")
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps (Apple GPU)"
    else:
        device = "cpu (no GPU found: generation with the ACE-Step model will be slow)"
    return Check(True, f"torch {torch.__version__}, device {device}")


def check_diffusers() -> Check:
    try:
        version = importlib.metadata.version("diffusers")
    except importlib.metadata.PackageNotFoundError:
        return Check(False, "diffusers is not installed: run 'pip install -e .[worker]' in the checkout")
    if _version_tuple(version) < MIN_DIFFUSERS:
        return Check(False, f"diffusers {version} has no AceStepPipeline: run 'pip install -U \"diffusers>=0.42\"'")
    return Check(True, f"diffusers {version}")


def check_soundfile() -> Check:
    try:
        import soundfile
    except (ImportError, OSError) as exc:
        return Check(False, f"soundfile cannot load libsndfile ({exc}): run 'pip install -U soundfile'")
    return Check(True, f"soundfile {soundfile.__version__} ({soundfile.__libsndfile_version__ and 'libsndfile ' + soundfile.__libsndfile_version__})")


def check_model(model: str | None) -> Check:
    folder = config.configured_model(model)
    if folder is None:
        return Check(False, "no ACE-Step model configured (the sketch backend will be used: text2music with "
                            "stems, no editing of existing audio): run 'acestep-dcc download-model', or pass "
                            "--model / set ACESTEP_DCC_MODEL")
    from acestep_core.errors import AceStepError
    from acestep_core.model_folder import check_model_folder

    try:
        check_model_folder(folder)
    except AceStepError as exc:
        return Check(False, str(exc))
    return Check(True, f"model folder {folder} is a complete ACE-Step checkpoint; {model_tasks(folder)}")


def model_tasks(folder: str | Path) -> str:
    """Which tasks the checkpoint runs, and how to get the ones it cannot."""
    from acestep_core.backends.base import BASE_REPO_ID
    from acestep_core.model_folder import inspect_model_folder
    from acestep_core.request import BASE_ONLY_TASKS

    report = inspect_model_folder(Path(folder))
    said = [f"{report.variant or 'unknown'} variant, runs {', '.join(report.supported_tasks)}"]
    if not report.supports_cover:
        said.append("not cover (the folder has no audio_tokenizer)")
    if report.is_turbo:
        said.append(f"{', '.join(BASE_ONLY_TASKS)} need a base or sft checkpoint: run "
                    f"'acestep-dcc download-model {BASE_REPO_ID}'")
    return "; ".join(said)


def check_output(folder: Path) -> Check:
    folder = folder.expanduser().resolve()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return Check(False, f"output folder {folder} is not writable: pick another with -o or fix its permissions")
    return Check(True, f"output folder {folder} is writable")


def check_threads() -> Check:
    """The thread settings the CLI and the worker use (acestep_core.threads)."""
    from acestep_core import threads

    return Check(True, threads.describe())


def run_checks(model: str | None = None, output: Path = Path(".")) -> list[Check]:
    return [check_python(), check_threads(), check_torch(), check_diffusers(), check_soundfile(), check_model(model),
            check_output(output)]
