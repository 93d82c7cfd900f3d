"""acestep-dcc core: ACE-Step music generation for the tools games and cutscenes are made in.

This package and its top-level modules import with the standard library alone, so
Blender's and REAPER's Pythons can use the request types, the worker client and the
timeline arithmetic. The heavy parts (backends, audio, worker) import numpy/torch
only when they are imported themselves.
"""

__version__ = "0.1.0"

from acestep_core.errors import AceStepError, InvalidRequest  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402

__all__ = ["__version__", "AceStepError", "InvalidRequest", "GenerationRequest"]
