"""Backends behind one protocol (see base.py). Each backend module imports its heavy
dependencies itself, so importing this package stays cheap."""

from __future__ import annotations

import os

from acestep_core.backends.base import Backend, BackendInfo, RawAudio
from acestep_core.config import configured_model
from acestep_core.errors import BackendUnavailable

BACKEND_NAMES = ("auto", "acestep", "sketch")

SKETCH_NOTICE = (
    "using the sketch backend (procedural, no ML model); for real ACE-Step music run "
    "'acestep-dcc download-model' and pass --model or set ACESTEP_DCC_MODEL"
)


def resolve_backend_name(name: str, model: str | os.PathLike | None) -> str:
    """auto -> acestep when a model folder is given or configured, else sketch."""
    if name not in BACKEND_NAMES:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        return name
    return "acestep" if configured_model(model) is not None else "sketch"


def create_backend(name: str = "auto", model: str | os.PathLike | None = None, device: str | None = None) -> Backend:
    resolved = resolve_backend_name(name, model)
    if resolved == "sketch":
        from acestep_core.backends.sketch import SketchBackend

        return SketchBackend()
    model_dir = configured_model(model)
    if model_dir is None:
        raise BackendUnavailable(
            "the acestep backend needs a model folder: pass --model DIR, set ACESTEP_DCC_MODEL, "
            "or run 'acestep-dcc download-model' first"
        )
    from acestep_core.backends.acestep import AceStepBackend

    return AceStepBackend(model_dir, device=device)


__all__ = ["Backend", "BackendInfo", "RawAudio", "create_backend", "resolve_backend_name", "BACKEND_NAMES", "SKETCH_NOTICE"]
