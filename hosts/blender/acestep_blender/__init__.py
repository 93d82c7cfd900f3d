"""ACE-Step music for Blender's Video Sequencer.

Generate a cue from a prompt into the sequencer at the playhead, or score a cutscene
from its markers, through the shared local worker process. Blender's Python needs
nothing beyond the standard library: the core this add-on uses ships inside it.
"""

from . import vendored_core

vendored_core.ensure_core_importable()

import bpy  # noqa: E402

from . import job_tracking, library_panel, operators, panel, preferences, properties, refine_strip, worker_link  # noqa: E402

_MODULES = (preferences, properties, operators, refine_strip, panel, library_panel)


@bpy.app.handlers.persistent
def _forget_task_on_load(_filepath=None, *_):
    """A task belongs to the timeline it was started in; a new file has other timelines."""
    if job_tracking.tracker.busy:
        job_tracking.cancel_task()
    job_tracking.forget_everything()


def register():
    for module in _MODULES:
        module.register()
    bpy.app.handlers.load_pre.append(_forget_task_on_load)


def unregister():
    if _forget_task_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_forget_task_on_load)
    job_tracking.forget_everything()
    worker_link.link.reset()
    for module in reversed(_MODULES):
        module.unregister()
