"""Compiled parts of scipy, loaded by themselves.

Finishing and the sketch use two of scipy's compiled kernels (sosfilt and pocketfft), but
the packages that hold them are slow to import: scipy.signal's __init__ pulls in
scipy.stats, scipy.interpolate and scipy.special (most of a second), scipy.fft's pulls in
scipy.special (90 ms), more than a whole short cue costs. So the extension file is loaded
on its own. Callers check what they loaded with a probe and fall back to the public API
when this scipy keeps it elsewhere.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import threading
from types import ModuleType

# Two threads loading scipy extensions at once broke scipy's import (KeyError: 'scipy'):
# loads are serialised, and each file is loaded once.
_LOCK = threading.Lock()
_LOADED: dict[str, ModuleType | None] = {}


def load_compiled(subpackage: str, name: str) -> ModuleType | None:
    """scipy/<subpackage>/<name>.<extension suffix> as a module, or None when scipy is not
    installed or has no such file, or loading it fails."""
    dotted = f"scipy.{subpackage.replace('/', '.')}.{name}"
    with _LOCK:
        if dotted not in _LOADED:
            _LOADED[dotted] = _load(subpackage, name, dotted)
        return _LOADED[dotted]


def _load(subpackage: str, name: str, dotted: str) -> ModuleType | None:
    try:
        # Where scipy is, without importing it.
        scipy_spec = importlib.util.find_spec("scipy")
        if scipy_spec is None or not scipy_spec.submodule_search_locations:
            return None
        folder = os.path.join(list(scipy_spec.submodule_search_locations)[0], *subpackage.split("/"))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, name + suffix)
            if os.path.exists(path):
                spec = importlib.util.spec_from_file_location(dotted, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
    except Exception:  # any change in scipy's layout: the caller falls back to the public API
        return None
    return None
