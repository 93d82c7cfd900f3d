"""The "ACE-Step" tab in the Sequencer sidebar.

`draw` and `poll` never raise: a broken panel would hide the Cancel button. Anything
unexpected is drawn as a line of text instead (see `_never_raises`).
"""

from __future__ import annotations

import functools

import bpy

from acestep_core import timeline

from . import compat, edit_plans, refine_strip, strip_records, style_packs, worker_link
from .properties import INSTRUMENT_PROPS

CATEGORY = "ACE-Step"
LEVEL_ICONS = {"INFO": "INFO", "WARNING": "ERROR", "ERROR": "CANCEL"}
WORKER_ICONS = {"CONNECTED": "CHECKMARK", "STARTING": "SORTTIME", "DOWN": "ERROR", "UNKNOWN": "QUESTION"}


def _never_raises(draw):
    @functools.wraps(draw)
    def safe_draw(self, context):
        try:
            draw(self, context)
        except Exception as exc:  # show it, never break the sidebar
            self.layout.label(text=f"Panel error: {type(exc).__name__}: {exc}", icon="ERROR")
    return safe_draw


def _settings(context):
    return getattr(compat.sequencer_scene(context), "acestep", None)


def _runtime(context):
    return getattr(context.window_manager, "acestep", None)


class _SequencerSidebar:
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = CATEGORY

    @classmethod
    def poll(cls, context):
        try:
            return _settings(context) is not None and _runtime(context) is not None
        except Exception:
            return False


class ACESTEP_PT_main(_SequencerSidebar, bpy.types.Panel):
    bl_label = "ACE-Step Music"

    @_never_raises
    def draw(self, context):
        layout = self.layout
        settings, runtime = _settings(context), _runtime(context)
        draw_worker_status(layout, runtime)
        layout.prop(settings, "prompt", text="")
        col = layout.column(align=True)
        col.prop(settings, "duration_source")
        if settings.duration_source == "SECONDS":
            col.prop(settings, "duration")
        elif settings.duration_source == "MARKERS":
            scene = compat.sequencer_scene(context)
            col.prop_search(settings, "marker_from", scene, "timeline_markers", text="From")
            col.prop_search(settings, "marker_to", scene, "timeline_markers", text="To")
        col = layout.column(align=True)
        col.prop(settings, "candidates")
        row = col.row(align=True)
        row.prop(settings, "use_seed", text="")
        sub = row.row(align=True)
        sub.active = settings.use_seed
        sub.prop(settings, "seed")
        row = col.row(align=True)
        row.prop(settings, "use_bpm", text="")
        sub = row.row(align=True)
        sub.active = settings.use_bpm
        sub.prop(settings, "bpm")
        col.prop(settings, "key", text="Key")
        col.prop(settings, "time_signature", text="Meter")
        layout.row().prop(settings, "quality", expand=True)
        draw_style_pack(layout, settings)
        draw_loop_options(layout, settings)
        draw_run_controls(layout, runtime, "acestep.generate", "Generate", "PLAY_SOUND")


def draw_style_pack(layout, settings) -> None:
    row = layout.row(align=True)
    row.prop(settings, "style_pack", icon="BRUSH_DATA")
    row.operator("acestep.refresh_packs", text="", icon="FILE_REFRESH")
    if settings.style_pack.strip():
        layout.prop(settings, "style_scale", slider=True)
        problem = style_packs.pack_problem(settings.style_pack)
        if problem:
            layout.label(text=problem, icon="ERROR")


def draw_loop_options(layout, settings) -> None:
    col = layout.column(align=True)
    row = col.row(align=True)
    row.prop(settings, "loop")
    sub = row.row(align=True)
    sub.active = settings.loop
    sub.prop(settings, "loop_bars", text="Bars (0 = fit)")
    if settings.loop:
        row = col.row(align=True)
        row.prop(settings, "intro_auto", text="Auto Intro")
        sub = row.row(align=True)
        sub.active = not settings.intro_auto
        sub.prop(settings, "intro_bars", text="Intro Bars (0 = none)")
    row = col.row(align=True)
    row.prop(settings, "loudness")
    if settings.loudness == "TARGET":
        row.prop(settings, "loudness_lufs", text="")


def draw_worker_status(layout, runtime) -> None:
    box = layout.box()
    row = box.row()
    state = runtime.worker_state
    text = {"CONNECTED": "Worker", "STARTING": "Worker starting", "DOWN": "Worker not running",
            "UNKNOWN": "Worker not checked"}.get(state, state)
    row.label(text=f"{text}: {runtime.worker_summary}" if runtime.worker_summary else text,
              icon=WORKER_ICONS.get(state, "QUESTION"))
    row.operator("acestep.connect", text="", icon="FILE_REFRESH")
    if state == "CONNECTED":
        row.operator("acestep.stop_worker", text="", icon="QUIT")
    if runtime.worker_fix:
        _wrapped(box, runtime.worker_fix, icon="INFO")


def draw_run_controls(layout, runtime, operator: str, text: str, icon: str) -> None:
    """The one busy flag: Generate while idle; progress, stage and Cancel while busy."""
    if runtime.busy:
        col = layout.column()
        if hasattr(col, "progress"):  # UILayout.progress is 4.0+
            col.progress(factor=runtime.progress, type="BAR", text=f"{runtime.progress:.0%} {runtime.stage}")
        else:
            col.label(text=f"{runtime.progress:.0%} {runtime.stage}")
        col.label(text=runtime.task_label)
        col.operator("acestep.cancel", icon="CANCEL")
    else:
        layout.operator(operator, text=text, icon=icon)
    if runtime.message:
        _wrapped(layout.box(), runtime.message, icon=LEVEL_ICONS.get(runtime.message_level, "INFO"))


def _wrapped(layout, text: str, icon: str = "NONE", width: int = 48) -> None:
    """Labels do not wrap; long messages are split on words so the fix stays readable."""
    words, line, first = text.split(), "", True
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            layout.label(text=line, icon=icon if first else "BLANK1")
            line, first = word, False
        else:
            line = f"{line} {word}" if line else word
    if line:
        layout.label(text=line, icon=icon if first else "BLANK1")


class ACESTEP_PT_quick_picks(_SequencerSidebar, bpy.types.Panel):
    bl_label = "Quick Picks"
    bl_parent_id = "ACESTEP_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @_never_raises
    def draw(self, context):
        layout = self.layout
        settings = _settings(context)
        col = layout.column(align=True)
        for name in ("mood", "scene_word", "style", "tempo_word"):
            col.prop(settings, name)
        layout.label(text="Instruments")
        grid = layout.grid_flow(columns=2, even_columns=True, align=True)
        for name in INSTRUMENT_PROPS:
            grid.prop(settings, name)
        layout.label(text="[mood] [scene], [style], [tempo] [instruments]", icon="INFO")
        layout.operator("acestep.use_template", icon="TEXT")


class ACESTEP_UL_section_prompts(bpy.types.UIList):
    # Blender checks draw_item's argument count, so no decorator here.
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        try:
            row = layout.row(align=True)
            row.label(text=item.marker or "(unnamed)", icon="MARKER")
            row.prop(item, "prompt", text="", emboss=True)
        except Exception as exc:
            layout.label(text=f"{type(exc).__name__}: {exc}", icon="ERROR")


class ACESTEP_PT_score(_SequencerSidebar, bpy.types.Panel):
    bl_label = "Score Cutscene"
    bl_parent_id = "ACESTEP_PT_main"

    @_never_raises
    def draw(self, context):
        layout = self.layout
        settings, runtime = _settings(context), _runtime(context)
        scene = compat.sequencer_scene(context)
        layout.label(text=f"{len(scene.timeline_markers)} markers: one cue per section", icon="MARKER_HLT")
        layout.prop(settings, "crossfade")
        layout.prop(settings, "score_style")
        row = layout.row()
        row.label(text="Section Prompts (empty: the marker's name)")
        row.operator("acestep.fill_section_prompts", text="", icon="FILE_REFRESH")
        if len(settings.section_prompts):
            layout.template_list("ACESTEP_UL_section_prompts", "", settings, "section_prompts",
                                 settings, "section_prompt_index", rows=3)
        if not runtime.busy:
            layout.operator("acestep.score_cutscene", icon="SEQ_STRIP_DUPLICATE")


class ACESTEP_PT_generated_strip(_SequencerSidebar, bpy.types.Panel):
    bl_label = "Generated Strip"
    bl_parent_id = "ACESTEP_PT_main"

    @classmethod
    def poll(cls, context):
        try:
            return strip_records.PROP_PROMPT in _active_strip(context)
        except Exception:
            return False

    @_never_raises
    def draw(self, context):
        layout = self.layout
        strip = _active_strip(context)
        col = layout.column(align=True)
        _wrapped(col, str(strip.get(strip_records.PROP_PROMPT, "")), icon="TEXT")
        col.label(text=f"Seed {strip.get(strip_records.PROP_SEED, '?')}, model {strip.get(strip_records.PROP_MODEL, '?')}")
        col.label(text=f"Take {strip.get(strip_records.PROP_CANDIDATE, 1)}, job {str(strip.get(strip_records.PROP_JOB, ''))[:8]}")
        musical = strip_records.tempo_and_key(strip)
        if musical:
            _wrapped(col, musical, icon="SOUND")
        render = compat.sequencer_scene(context).render
        looped = strip_records.loop_text(strip, compat.content_start(strip),
                                         timeline.frame_rate(render.fps, render.fps_base))
        if looped:
            _wrapped(col, looped, icon="LOOP_FORWARDS")
        for warning in str(strip.get(strip_records.PROP_WARNINGS, "")).splitlines():
            _wrapped(col, warning, icon="ERROR")
        if strip.get(strip_records.PROP_LICENCE):
            _wrapped(col, f"Licence: {strip[strip_records.PROP_LICENCE]}", icon="INFO")
        for line in refine_strip.lineage_of(strip):
            _wrapped(col, line, icon="LINKED")
        layout.operator("acestep.use_candidate", icon="CHECKMARK")
        row = layout.row(align=True)
        row.prop(_settings(context), "variation", text="")
        row.operator("acestep.regenerate", icon="FILE_REFRESH")
        layout.operator("acestep.refine", text="Refine...", icon="GREASEPENCIL")


class ACESTEP_PT_intensity_set(_SequencerSidebar, bpy.types.Panel):
    bl_label = "Intensity Set"
    bl_parent_id = "ACESTEP_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @_never_raises
    def draw(self, context):
        layout = self.layout
        settings, runtime = _settings(context), _runtime(context)
        col = layout.column(align=True)
        col.prop(settings, "set_kind", expand=True)
        col.prop(settings, "set_intensities", text="Layers" if settings.set_kind == "LAYERS" else "Variants")
        col.prop(settings, "set_bars", text="Bars (0 = fit)")
        col.prop(settings, "set_stingers")
        layout.label(text="Stacked at the playhead; " + ("layers play together" if settings.set_kind == "LAYERS"
                                                         else "variants muted"), icon="INFO")
        if not runtime.busy:
            layout.operator("acestep.make_intensity_set", icon="NLA_PUSHDOWN")


class ACESTEP_PT_edit_strip(_SequencerSidebar, bpy.types.Panel):
    """Split into Stems, Repaint Selection and Add Layer on the active sound strip, each
    greyed out with the reason when the worker's model cannot do it."""

    bl_label = "Edit Sound Strip"
    bl_parent_id = "ACESTEP_PT_main"

    @classmethod
    def poll(cls, context):
        try:
            return _SequencerSidebar.poll.__func__(cls, context) and _active_strip(context).type == "SOUND"
        except Exception:
            return False

    @_never_raises
    def draw(self, context):
        layout = self.layout
        settings, runtime = _settings(context), _runtime(context)
        strip = _active_strip(context)
        link = worker_link.link
        health = link.health if link.client is not None else None
        if runtime.worker_tasks:
            _wrapped(layout, f"This model can: {runtime.worker_tasks}", icon="INFO")
        else:
            _wrapped(layout, "Connect to see what the worker's model can do", icon="QUESTION")
        layout.label(text=f"On '{strip.name}'", icon="SOUND")
        scene = compat.sequencer_scene(context)
        where = ("the preview range" if scene.use_preview_range else "the markers around the playhead")
        layout.prop(settings, "edit_prompt", text="")

        col = layout.column(align=True)
        col.label(text="Stems (none picked: every part)")
        col.grid_flow(columns=3, even_columns=True, align=True).prop(settings, "stem_tracks")
        _action(layout, runtime, health, "STEMS", "acestep.split_stems", "SEQ_STRIP_DUPLICATE")

        layout.label(text=f"Repaints {where}", icon="PREVIEW_RANGE")
        _action(layout, runtime, health, "REPAINT", "acestep.repaint_selection", "BRUSH_DATA")

        row = layout.row(align=True)
        row.prop(settings, "layer_track", text="")
        row.prop(settings, "layer_use_range", text="Only in Range")
        _action(layout, runtime, health, "LAYER", "acestep.add_layer", "ADD")


def _action(layout, runtime, health, action: str, operator: str, icon: str) -> None:
    """The action's button, greyed out with the reason under it when the model cannot do it."""
    can, why = edit_plans.task_support(health, edit_plans.ACTION_TASKS[action])
    row = layout.row()
    row.enabled = can is not False and not runtime.busy
    row.operator(operator, icon=icon)
    if can is False:
        _wrapped(layout, why, icon="ERROR")


def _active_strip(context):
    editor = compat.sequence_editor(compat.sequencer_scene(context))
    strip = editor.active_strip if editor is not None else None
    return strip if strip is not None else {}


# The Library panel (library_panel.py) draws with the same two helpers.
never_raises, wrapped = _never_raises, _wrapped

CLASSES = (ACESTEP_UL_section_prompts, ACESTEP_PT_main, ACESTEP_PT_quick_picks, ACESTEP_PT_score,
           ACESTEP_PT_intensity_set, ACESTEP_PT_generated_strip, ACESTEP_PT_edit_strip)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
