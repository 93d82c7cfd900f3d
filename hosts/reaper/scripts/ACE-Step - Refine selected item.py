"""ACE-Step: Refine selected item (REAPER action).

Opens the request the selected item's active take was made with, filled in; the new
takes keep its seed and settings wherever you leave them alone (or are a cover of it).
Runs in REAPER's Python (Options > Preferences > Plug-ins > ReaScript) and returns
to REAPER at once; the music arrives a few seconds later.
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
    run_action("refine")
