"""A stand-in for REAPER's side of Python ReaScript, for tests.

REAPER cannot run here, so this package plays it: an in-memory REAPER (model.py)
behind its documented C API (capi.py), exposed as the `reaper_python` module REAPER
gives Python scripts (python_api.py), with scripts, defer and atexit run the way
REAPER runs them (scripts.py), its web interface (web_interface.py) and a process
that hosts it all so python-reapy's real server can run "inside" it (host.py).
fixtures.py has the pytest fixtures.
"""

from .model import ReaperApp, StandInFault
from .python_api import build_reaper_python, main_namespace
from .scripts import ScriptHost

__all__ = ["ReaperApp", "StandInFault", "build_reaper_python", "main_namespace", "ScriptHost", "start_reaper"]


def start_reaper(resource_path, default_record_path=None):
    """A booted REAPER: the app, its `reaper_python` module and the `__main__` its
    scripts run in. Reads reaper-kb.ini, reaper-extstate.ini and reaper.ini."""
    from .config_files import boot

    app = ReaperApp(resource_path, default_record_path)
    boot(app)
    module = build_reaper_python(app)
    ScriptHost(app, main_namespace(module))
    return app, module
