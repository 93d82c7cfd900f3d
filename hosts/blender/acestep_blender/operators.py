"""Operators: each one checks, hands work to the tracker or the placement code, and
returns at once. Failures become a report and a panel message that say what to do;
none of them raises into a traceback dialog."""

from __future__ import annotations

import traceback

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from acestep_core import keywords
from acestep_core.errors import AceStepError, WorkerError

from . import (compat, cue_plans, edit_placement, edit_plans, intensity_sets, job_tracking, strip_placement,
               worker_link)
from . import style_packs
from .job_tracking import tracker
from .preferences import addon_settings
from .properties import INSTRUMENT_PROPS, NONE, TRACK_ITEMS
from .strip_records import PROP_GROUP, PROP_PROMPT


def _settings(context):
    scene = compat.sequencer_scene(context)
    return getattr(scene, "acestep", None)


def _not_busy(context) -> bool:
    """Whether a new task may start; never raises, so every poll can call it as it is."""
    try:
        return not tracker.busy and _settings(context) is not None
    except Exception:  # a poll that raised would fill the console on every redraw
        return False


def _fail(operator, context, message: str) -> set[str]:
    tracker.say(message, "ERROR")
    job_tracking.sync_ui(context)
    operator.report({"ERROR"}, message)
    return {"CANCELLED"}


def _unexpected(operator, context, exc: Exception) -> set[str]:
    traceback.print_exc()
    return _fail(operator, context, f"unexpected error ({type(exc).__name__}: {exc}); the system console has "
                                    "details, please report them")


def _start(operator, context, make_task) -> set[str]:
    """Plan (every check before any request), connect without blocking, hand over."""
    addon = addon_settings(context)
    try:
        task = make_task(addon)
    except WorkerError as exc:
        worker_link.link.lost(exc)
        return _fail(operator, context, str(exc))
    except AceStepError as exc:
        return _fail(operator, context, str(exc))
    except Exception as exc:  # a bug of ours: a sentence in the panel, not a traceback dialog
        return _unexpected(operator, context, exc)
    task.remote = addon.connection == "REMOTE"
    link = worker_link.link
    link.connect(addon)
    if link.state == worker_link.DOWN:
        return _fail(operator, context, f"{link.summary}. {link.fix}")
    job_tracking.start_task(task, context)
    operator.report({"INFO"}, f"{task.label}: started; keep working, the music lands when it is ready")
    return {"FINISHED"}


class ACESTEP_OT_refresh_packs(bpy.types.Operator):
    """Ask the worker again which style packs it has (after 'acestep-dcc packs install')"""

    bl_idname = "acestep.refresh_packs"
    bl_label = "Refresh Style Packs"
    bl_options = {"REGISTER"}

    def execute(self, context):
        link = worker_link.link
        link.connect(addon_settings(context))
        try:
            link.refresh_packs()
        except WorkerError as exc:
            self.report({"WARNING"}, str(exc))
        job_tracking.sync_ui(context)
        self.report({"INFO"}, f"{len(style_packs.known_packs())} style pack(s) on the worker")
        return {"FINISHED"}


class ACESTEP_OT_generate(bpy.types.Operator):
    """Generate music from the prompt and place it at the playhead (or over the span chosen in Length)"""

    bl_idname = "acestep.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return _not_busy(context)

    def execute(self, context):
        settings = _settings(context)
        return _start(self, context, lambda addon: cue_plans.plan_generate(context, settings, addon))


class ACESTEP_OT_score_cutscene(bpy.types.Operator):
    """One cue per marker section, crossfaded on a pair of channels, placed in one undo step"""

    bl_idname = "acestep.score_cutscene"
    bl_label = "Score Cutscene"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return _not_busy(context)

    def execute(self, context):
        settings = _settings(context)
        return _start(self, context, lambda addon: cue_plans.plan_score(context, settings, addon))


class ACESTEP_OT_regenerate(bpy.types.Operator):
    """Make another take of the active generated strip: same prompt, new seed (or a cover of it)"""

    bl_idname = "acestep.regenerate"
    bl_label = "Regenerate Variation"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        try:
            return _not_busy(context) and PROP_PROMPT in _active_strip(context)
        except Exception:
            return False

    def execute(self, context):
        settings, strip = _settings(context), _active_strip(context)
        return _start(self, context, lambda addon: cue_plans.plan_variation(context, settings, addon, strip))


class ACESTEP_OT_make_intensity_set(bpy.types.Operator):
    """Layers of one loop that stack (or variants at rising intensity), plus stingers, stacked at
    the playhead, with a manifest and Godot resources beside the audio"""

    bl_idname = "acestep.make_intensity_set"
    bl_label = "Make Intensity Set"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return _not_busy(context)

    def execute(self, context):
        settings = _settings(context)
        return _start(self, context, lambda addon: intensity_sets.plan_set(context, settings, addon))


def _edit_poll(cls, context, action: str) -> bool:
    """An edit of the active sound strip may start: nothing runs, a sound strip is active,
    and the worker's model can do it (when that is known; otherwise the plan asks it)."""
    try:
        if not _not_busy(context):
            return False
        strip = _active_strip(context)
        if getattr(strip, "type", None) != "SOUND":
            cls.poll_message_set("make a sound strip active first")
            return False
        can, why = edit_plans.task_support(worker_link.link.health if worker_link.link.client else None,
                                           edit_plans.ACTION_TASKS[action])
        if can is False:
            cls.poll_message_set(why)
            return False
        return True
    except Exception:
        return False


def _start_edit(operator, context, plan) -> set[str]:
    """_start for an edit: the plan gets the active sound strip (BadInput when there is none)."""
    settings = _settings(context)
    return _start(operator, context,
                  lambda addon: plan(context, settings, addon, edit_plans.active_sound_strip(context)))


class ACESTEP_OT_split_stems(bpy.types.Operator):
    """Split the active sound strip into stems, on free channels above it, aligned with it and
    tied together; the strip is muted (its stems sum to it)"""

    bl_idname = "acestep.split_stems"
    bl_label = "Split into Stems"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return _edit_poll(cls, context, "STEMS")

    def execute(self, context):
        return _start_edit(self, context, edit_plans.plan_stems)


class ACESTEP_OT_repaint_selection(bpy.types.Operator):
    """Regenerate the part of the active sound strip inside the preview range (or between the
    markers around the playhead) from the prompt, as a new take above it; the rest stays the same"""

    bl_idname = "acestep.repaint_selection"
    bl_label = "Repaint Selection"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return _edit_poll(cls, context, "REPAINT")

    def execute(self, context):
        return _start_edit(self, context, edit_plans.plan_repaint)


class ACESTEP_OT_add_layer(bpy.types.Operator):
    """Play a new instrument over the active sound strip (ACE-Step's lego task), on a strip above it"""

    bl_idname = "acestep.add_layer"
    bl_label = "Add Layer"
    bl_options = {"REGISTER"}

    track: EnumProperty(name="Instrument", items=TRACK_ITEMS, default="guitar")
    prompt: StringProperty(name="Prompt", description="What the new part plays; empty uses the Edit Prompt, "
                                                      "then the strip's own prompt")
    use_range: BoolProperty(name="Only in Range", description="Only in the preview range, or between the markers "
                                                              "around the playhead")

    @classmethod
    def poll(cls, context):
        return _edit_poll(cls, context, "LAYER")

    def invoke(self, context, event):
        settings = _settings(context)
        if settings is not None:
            self.track, self.prompt, self.use_range = settings.layer_track, settings.edit_prompt, settings.layer_use_range
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        settings = _settings(context)
        if settings is not None:  # remembered for the next time
            settings.layer_track, settings.layer_use_range = self.track, self.use_range
        prompt = self.prompt if self.prompt.strip() else (settings.edit_prompt if settings is not None else "")
        return _start_edit(self, context, lambda c, s, addon, strip: edit_plans.plan_layer(
            c, s, addon, strip, self.track, prompt, self.use_range))


class ACESTEP_OT_cancel(bpy.types.Operator):
    """Stop the running generation; nothing is placed"""

    bl_idname = "acestep.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return tracker.busy

    def execute(self, context):
        self.report({"WARNING"}, job_tracking.cancel_task(context))
        return {"FINISHED"}


class ACESTEP_OT_connect(bpy.types.Operator):
    """Find the worker, or start it, and show what it runs"""

    bl_idname = "acestep.connect"
    bl_label = "Connect"
    bl_options = {"REGISTER"}

    def execute(self, context):
        link = worker_link.link
        if link.client is not None:
            try:
                link.refresh_health()
            except WorkerError:
                pass  # lost: connect again below
        link.connect(addon_settings(context))
        if link.state == worker_link.STARTING:
            link.watch_start()
            job_tracking.ensure_timer()  # refreshes the panel until it answers
        job_tracking.sync_ui(context)
        if link.state == worker_link.DOWN:
            self.report({"WARNING"}, f"{link.summary}. {link.fix}")
        return {"FINISHED"}


class ACESTEP_OT_stop_worker(bpy.types.Operator):
    """Stop the worker now and free the model's memory (a running generation is cancelled
    first); the next Generate or Connect starts it again"""

    bl_idname = "acestep.stop_worker"
    bl_label = "Stop Worker"
    bl_options = {"REGISTER"}

    def execute(self, context):
        cancelled = job_tracking.cancel_task(context) if tracker.busy else ""
        message = worker_link.link.stop()
        if cancelled:
            message = f"{cancelled}; {message}"
        tracker.say(message[0].upper() + message[1:], "INFO")
        job_tracking.sync_ui(context)
        self.report({"INFO"}, tracker.message)
        return {"FINISHED"}


class ACESTEP_OT_use_template(bpy.types.Operator):
    """Write the prompt from the picked words: [mood] [scene], [style], [tempo] [instruments]"""

    bl_idname = "acestep.use_template"
    bl_label = "Use Template"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = _settings(context)
        if s is None:
            return {"CANCELLED"}
        word = lambda value: None if value == NONE else value  # noqa: E731
        prompt = keywords.compose_prompt(
            mood=word(s.mood), scene=word(s.scene_word), style=word(s.style),
            instruments=[w for w in keywords.WORDS_BY_CATEGORY["instrument"]
                         if any(w in getattr(s, name) for name in INSTRUMENT_PROPS)],
            tempo=word(s.tempo_word))
        if not prompt:
            self.report({"WARNING"}, "pick at least one word first")
            return {"CANCELLED"}
        s.prompt = prompt
        return {"FINISHED"}


class ACESTEP_OT_use_candidate(bpy.types.Operator):
    """Keep the active take: unmute it and remove the other takes of the same generation"""

    bl_idname = "acestep.use_candidate"
    bl_label = "Use This Take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        try:
            return PROP_GROUP in _active_strip(context)
        except Exception:
            return False

    def execute(self, context):
        try:
            editor = compat.sequence_editor(compat.sequencer_scene(context))
            removed = strip_placement.use_candidate(editor, editor.active_strip)
        except Exception as exc:
            return _unexpected(self, context, exc)
        self.report({"INFO"}, f"kept '{editor.active_strip.name}', removed {removed} other take(s)")
        return {"FINISHED"}


class ACESTEP_OT_fill_section_prompts(bpy.types.Operator):
    """List the scene's markers so each section can get its own prompt (typed prompts are kept)"""

    bl_idname = "acestep.fill_section_prompts"
    bl_label = "List Markers"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        settings = scene.acestep
        typed = {item.marker: item.prompt for item in settings.section_prompts}
        settings.section_prompts.clear()
        names = []
        for marker in sorted(scene.timeline_markers, key=lambda m: m.frame):
            if marker.name not in names:
                names.append(marker.name)
        for name in names:
            item = settings.section_prompts.add()
            item.marker, item.prompt = name, typed.get(name, "")
        if not names:
            self.report({"WARNING"}, "the scene has no markers: add one where each section starts (M)")
        return {"FINISHED"}


class _PlaceResults:
    """Creates the strips of a finished task (called by the tick, with undo on), with
    `place(task) -> summary`."""

    bl_options = {"REGISTER", "UNDO", "INTERNAL"}
    place = staticmethod(strip_placement.place_task)

    def execute(self, context):
        task = strip_placement.handoff.task
        if task is None:
            return {"CANCELLED"}
        try:
            strip_placement.handoff.summary = self.place(task)
        except AceStepError as exc:
            strip_placement.handoff.error = str(exc)
            return {"CANCELLED"}
        except Exception as exc:
            traceback.print_exc()
            strip_placement.handoff.error = f"placing failed ({type(exc).__name__}: {exc}); the system console has details"
            return {"CANCELLED"}
        return {"FINISHED"}


class ACESTEP_OT_place_cue(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_cue"
    bl_label = "Generate Music"


class ACESTEP_OT_place_score(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_score"
    bl_label = "Score Cutscene"


class ACESTEP_OT_place_set(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_set"
    bl_label = "Make Intensity Set"
    place = staticmethod(intensity_sets.place_set)


class ACESTEP_OT_place_stems(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_stems"
    bl_label = "Split into Stems"
    place = staticmethod(edit_placement.place_edit)


class ACESTEP_OT_place_repaint(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_repaint"
    bl_label = "Repaint Selection"
    place = staticmethod(edit_placement.place_edit)


class ACESTEP_OT_place_layer(_PlaceResults, bpy.types.Operator):
    bl_idname = "acestep.place_layer"
    bl_label = "Add Layer"
    place = staticmethod(edit_placement.place_edit)


class ACESTEP_OT_notify(bpy.types.Operator):
    """Report a message from the timer to the status bar"""

    bl_idname = "acestep.notify"
    bl_label = "ACE-Step Message"
    bl_options = {"INTERNAL"}

    message: StringProperty()
    level: EnumProperty(items=[("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")])

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


def _active_strip(context):
    editor = compat.sequence_editor(compat.sequencer_scene(context))
    strip = editor.active_strip if editor is not None else None
    return strip if strip is not None else {}


CLASSES = (
    ACESTEP_OT_refresh_packs,
    ACESTEP_OT_generate,
    ACESTEP_OT_score_cutscene,
    ACESTEP_OT_regenerate,
    ACESTEP_OT_make_intensity_set,
    ACESTEP_OT_split_stems,
    ACESTEP_OT_repaint_selection,
    ACESTEP_OT_add_layer,
    ACESTEP_OT_cancel,
    ACESTEP_OT_connect,
    ACESTEP_OT_stop_worker,
    ACESTEP_OT_use_template,
    ACESTEP_OT_use_candidate,
    ACESTEP_OT_fill_section_prompts,
    ACESTEP_OT_place_cue,
    ACESTEP_OT_place_score,
    ACESTEP_OT_place_set,
    ACESTEP_OT_place_stems,
    ACESTEP_OT_place_repaint,
    ACESTEP_OT_place_layer,
    ACESTEP_OT_notify,
)


# Refine (refine_strip.py) checks, starts, fails and places like the operators here.
start, fail, active_strip, not_busy, PlaceResults = _start, _fail, _active_strip, _not_busy, _PlaceResults

register, unregister = bpy.utils.register_classes_factory(CLASSES)
