"""ACE-Step: Insert from library (REAPER action).

Searches ACE-Step's cue library (every cue made so far, and folders added with
'acestep-dcc library add') and inserts the chosen cue at the edit cursor on the
selected track.
Runs in REAPER's Python (Options > Preferences > Plug-ins > ReaScript).
"""

import os
import sys


def _library_paths():
    # installed: <Scripts>/acestep-dcc/lib; in a checkout: hosts/reaper and the repository root
    here = os.path.dirname(os.path.abspath(globals().get("__file__") or sys.argv[0]))
    lib = os.path.join(here, "lib")
    if os.path.isdir(lib):
        return [lib]
    return [os.path.dirname(here), os.path.dirname(os.path.dirname(os.path.dirname(here)))]


for _path in reversed(_library_paths()):
    if _path not in sys.path:
        sys.path.insert(0, _path)

try:
    from acestep_reaper.actions import run_action
except ImportError as error:
    RPR_ShowMessageBox(
        f"ACE-Step's files could not be loaded ({error}).\n\nInstall python-reapy for REAPER's Python "
        "(pip install python-reapy), then run 'acestep-dcc install reaper' again.", "ACE-Step", 0)
else:
    run_action("library")
