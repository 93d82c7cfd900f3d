"""Make `import acestep_core` work inside Blender from the copy built into the extension.

The extension zip carries acestep_core under `_vendor/` (copied at build time from the
repository, never committed twice). It is loaded under its own name, so the core's
absolute imports (`from acestep_core.errors import ...`) resolve inside that copy, and
nothing is added to sys.path for other add-ons to trip over. In a development checkout
there is no `_vendor/` and the repository's acestep_core is used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

CORE_PACKAGE = "acestep_core"
VENDOR_FOLDER = Path(__file__).resolve().parent / "_vendor"
INSTALL_RECORD = VENDOR_FOLDER / "install.json"  # written by acestep_core.install.blender


def ensure_core_importable() -> None:
    if CORE_PACKAGE in sys.modules:
        return
    init = VENDOR_FOLDER / CORE_PACKAGE / "__init__.py"
    if not init.is_file():
        return
    spec = importlib.util.spec_from_file_location(
        CORE_PACKAGE, init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[CORE_PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[CORE_PACKAGE]
        raise


def installed_worker_python() -> str | None:
    """The Python that built this zip ('acestep-dcc install blender' prints it) when it
    can run the worker and exists on this machine; None otherwise."""
    try:
        python = json.loads(INSTALL_RECORD.read_text(encoding="utf-8")).get("worker_python")
    except (OSError, ValueError, AttributeError):
        return None
    return python if isinstance(python, str) and os.path.isfile(python) else None
