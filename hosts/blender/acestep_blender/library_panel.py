"""The Library panel (ACE-Step tab of the Sequencer sidebar): search the cue library the
worker keeps (every cue made so far, and folders added with 'acestep-dcc library add'),
see each result's tempo, key, length and licence, and Place at Playhead.

Search returns at once: a LibrarySearch thread asks the worker, and `tick` (a timer;
headless Blender does not fire timers, so tests call it) copies its answer into
WindowManager.acestep_library for the panel. Placing copies the file into the audio
folder and adds a sound strip at the current frame on the first channel free over its
length, one undo step, recorded like a generated strip (the Generated Strip panel shows it).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from acestep_core import timeline
from acestep_core.errors import AceStepError
from acestep_core.library import LibraryCue, LibraryQuery
from acestep_core.request import MAX_BPM, MIN_BPM

from . import compat, loop_options, strip_records, worker_link
from .audio_files import resolve_output_folder
from .library_search import LibraryDownload, LibrarySearch, bring_cue_in, cue_output, free_target
from .panel import CATEGORY, never_raises, wrapped
from .preferences import addon_settings
from .properties import KEY_ITEMS, NONE
from .strip_placement import MAX_STRIP_NAME, strip_file_path, window_context

TICK_INTERVAL = 0.1
SEARCH_LIMIT = 50
LOOP_ITEMS = [("ANY", "Any", "Loops and cues that are not loops"), ("LOOPS", "Loops", "Only loops"),
              ("NOT_LOOPS", "Not Loops", "Only cues that are not loops")]


class _State:
    search: LibrarySearch | None = None
    download: LibraryDownload | None = None  # a cue on its way from a worker on another machine


state = _State()


class AceStepLibraryResult(bpy.types.PropertyGroup):
    """One cue found (what the list and Place at Playhead need)."""

    cue_id: IntProperty()
    path: StringProperty(subtype="FILE_PATH")
    prompt: StringProperty()
    bpm: FloatProperty()
    has_bpm: BoolProperty()
    key: StringProperty()
    duration: FloatProperty()
    loop: BoolProperty()
    licence: StringProperty()
    missing: BoolProperty()
    flagged: BoolProperty()
    data: StringProperty()  # the LibraryCue as JSON


class AceStepLibrary(bpy.types.PropertyGroup):
    """Search fields and results: per window manager (never saved, never undone)."""

    text: StringProperty(name="Search", description="Words of the prompt or its tags, for example: boss")
    use_bpm: BoolProperty(name="BPM", description="Only cues in this tempo range")
    bpm_min: FloatProperty(name="From", default=100.0, min=MIN_BPM, max=MAX_BPM)
    bpm_max: FloatProperty(name="To", default=140.0, min=MIN_BPM, max=MAX_BPM)
    key: EnumProperty(name="Key", items=KEY_ITEMS)
    loop: EnumProperty(name="Loop", items=LOOP_ITEMS, default="ANY")
    results: CollectionProperty(type=AceStepLibraryResult)
    index: IntProperty(name="Cue", default=0)
    searching: BoolProperty()
    message: StringProperty()
    message_level: StringProperty(default="INFO")


def _library(context):
    return getattr(context.window_manager, "acestep_library", None)


def query_from(fields) -> LibraryQuery:
    return LibraryQuery(
        text=fields.text.strip(), bpm_min=fields.bpm_min if fields.use_bpm else None,
        bpm_max=fields.bpm_max if fields.use_bpm else None, key=None if fields.key == NONE else fields.key,
        loop={"LOOPS": True, "NOT_LOOPS": False}.get(fields.loop), limit=SEARCH_LIMIT)


def result_line(result) -> str:
    """'150 BPM, E minor, 6.4 s, loop' for the list and the report."""
    parts = [f"{result.bpm:g} BPM" if result.has_bpm else "? BPM", result.key or "? key", f"{result.duration:.1f} s"]
    if result.loop:
        parts.append("loop")
    if result.missing:
        parts.append("missing")
    return ", ".join(parts)


# -- the tick --------------------------------------------------------------------------------


def tick() -> float | None:
    """Copy a finished search into the panel's list, and place a finished download.
    Never raises."""
    wm = bpy.context.window_manager
    fields = getattr(wm, "acestep_library", None) if wm else None
    if fields is None:
        return None
    download = state.download
    if download is not None and download.done.is_set():
        state.download = None
        _place_download(fields, download)
    search = state.search
    if search is not None and search.done.is_set():
        state.search = None
        _show_search(fields, search)
    compat.tag_sequencer_redraw()
    return TICK_INTERVAL if state.search is not None or state.download is not None else None


def _place_download(fields, download: LibraryDownload) -> None:
    if download.error:
        _say(fields, f"Downloading {download.cue.name} failed: {download.error}", "ERROR")
        return
    try:
        with window_context():  # undo and the operator want a window, as a click has
            bpy.ops.acestep.library_place("EXEC_DEFAULT", True, cue=json.dumps(download.cue.to_dict()),
                                          downloaded=str(download.path), frame=download.frame)
    except RuntimeError as exc:  # the operator reported why, in the panel too
        _say(fields, str(exc).removeprefix("Error: ").strip(), "ERROR")


def _show_search(fields, search: LibrarySearch) -> None:
    try:
        fields.searching = False
        if search.error:
            _say(fields, f"Search failed: {search.error}", "ERROR")
        else:
            _fill(fields, search.cues or [])
    except Exception as exc:  # a bug of ours: say so rather than break the timer
        traceback.print_exc()
        _say(fields, f"unexpected error ({type(exc).__name__}: {exc})", "ERROR")


def _fill(fields, cues: list[LibraryCue]) -> None:
    fields.results.clear()
    for cue in cues:
        item = fields.results.add()
        item.cue_id, item.path, item.prompt = cue.id, cue.path, cue.prompt
        item.has_bpm, item.bpm = cue.bpm is not None, cue.bpm or 0.0
        item.key, item.duration, item.loop = cue.key or "", cue.duration or 0.0, cue.loop
        item.licence, item.missing = cue.licence or "", cue.missing
        item.flagged = bool(cue.originality_flagged)
        item.data = json.dumps(cue.to_dict())
    fields.index = 0
    found = f"{len(cues)} cue{'s' if len(cues) != 1 else ''} found"
    _say(fields, found if cues else f"{found}; make some, or index a folder with 'acestep-dcc library add FOLDER'")


def _say(fields, message: str, level: str = "INFO") -> None:
    fields.message, fields.message_level = message, level


def forget() -> None:
    if state.search is not None:
        state.search.stop()
    state.search = state.download = None
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_INTERVAL)


# -- operators -------------------------------------------------------------------------------


class ACESTEP_OT_library_search(bpy.types.Operator):
    """Search the cue library (every cue made so far, and folders added with 'acestep-dcc library add')"""

    bl_idname = "acestep.library_search"
    bl_label = "Search Library"
    bl_options = {"REGISTER"}

    def execute(self, context):
        fields = _library(context)
        try:
            query = query_from(fields).validated()
        except AceStepError as exc:
            _say(fields, str(exc), "ERROR")
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        link = worker_link.link
        link.connect(addon_settings(context))
        if link.state == worker_link.DOWN:
            message = f"{link.summary}. {link.fix}"
            _say(fields, message, "ERROR")
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        if state.search is not None:
            state.search.stop()
        state.search = LibrarySearch(query, link)
        state.search.start()
        fields.searching = True
        _say(fields, "Searching...")
        ensure_timer()
        return {"FINISHED"}


class ACESTEP_OT_library_place(bpy.types.Operator):
    """Add the chosen cue as a sound strip at the playhead, on the first channel free over its length"""

    bl_idname = "acestep.library_place"
    bl_label = "Place at Playhead"
    bl_options = {"REGISTER", "UNDO"}

    # Set by the tick once a cue from a worker on another machine has arrived.
    cue: StringProperty(options={"HIDDEN", "SKIP_SAVE"})
    downloaded: StringProperty(options={"HIDDEN", "SKIP_SAVE"})
    frame: IntProperty(default=-1, options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        try:
            return compat.sequencer_scene(context) is not None and _library(context) is not None
        except Exception:
            return False

    def execute(self, context):
        fields = _library(context)
        try:
            if not self.cue and not 0 <= fields.index < len(fields.results):
                raise AceStepError("no cue is chosen; search the library and pick one in the list first")
            cue = LibraryCue.from_dict(json.loads(self.cue or fields.results[fields.index].data))
            if not self.downloaded and addon_settings(context).connection == "REMOTE":
                return self._download(context, fields, cue)
            strip = place_at_playhead(context, cue, Path(self.downloaded) if self.downloaded else None,
                                      self.frame if self.frame >= 0 else None)
        except AceStepError as exc:
            _say(fields, str(exc), "ERROR")
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        start, end = compat.strip_span(strip)
        message = f"'{strip.name}' at frame {start}, {end - start} frames, on channel {strip.channel}"
        _say(fields, message)
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def _download(self, context, fields, cue: LibraryCue):
        """A worker on another machine: fetch the cue first (a thread); the tick places it."""
        link = worker_link.link
        if link.client is None:
            raise AceStepError("the worker is not connected; press Search Library again, then Place at Playhead")
        if state.download is not None:
            raise AceStepError(f"{state.download.cue.name} is still downloading; place this one when it is in")
        folder, _ = resolve_output_folder(addon_settings(context).output_folder, bpy.data.filepath)
        state.download = LibraryDownload(link.client, cue, free_target(cue, folder),
                                         compat.sequencer_scene(context).frame_current)
        state.download.start()
        ensure_timer()
        _say(fields, f"Downloading {cue.name} from the worker; it lands at frame {state.download.frame}")
        return {"CANCELLED"}  # nothing changed yet: the placing, when it is in, is the undo step


def place_at_playhead(context, cue: LibraryCue, local: Path | None = None, frame: int | None = None):
    """The strip for `cue` at `frame` (default: the current one), from `local` (a file
    already here) or the cue's own file; raises AceStepError with the fix."""
    scene = compat.sequencer_scene(context)
    folder, _ = resolve_output_folder(addon_settings(context).output_folder, bpy.data.filepath)
    path = local if local is not None else bring_cue_in(Path(cue.path), folder)
    job, output = cue_output(path, cue)
    rate = timeline.frame_rate(scene.render.fps, scene.render.fps_base)
    # A loop is placed one loop long (after its intro), as a generated loop is; else the whole file.
    frames = loop_options.loop_frames(output, rate) or max(1, timeline.seconds_to_frames(cue.duration or 0.0, rate))
    start = scene.frame_current if frame is None else frame
    editor = compat.sequence_editor(scene, create=True)
    [channel] = timeline.first_free_channels(compat.occupied_ranges(editor), start, start + frames)
    name = (" ".join(cue.prompt.split()) or path.stem)[:MAX_STRIP_NAME]
    strip = compat.top_strips(editor).new_sound(name=name, filepath=strip_file_path(path), channel=channel,
                                               frame_start=start)
    compat.set_strip_length(strip, frames)
    strip.show_waveform = True
    strip_records.record_output(strip, job, output)
    strip[strip_records.PROP_GROUP] = job.job_id
    strip[strip_records.PROP_CANDIDATE] = 1
    strip[strip_records.PROP_REQUEST] = json.dumps(job.request.to_dict(), sort_keys=True)
    if cue.licence and strip_records.PROP_LICENCE not in strip:
        strip[strip_records.PROP_LICENCE] = cue.licence
    editor.active_strip = strip
    return strip


# -- the panel -------------------------------------------------------------------------------


class ACESTEP_UL_library_results(bpy.types.UIList):
    # Blender checks draw_item's argument count, so no decorator here.
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        try:
            row = layout.row(align=True)
            row.label(text=Path(item.path).name, icon="ERROR" if item.missing or item.flagged else "FILE_SOUND")
            row.label(text=result_line(item))
        except Exception as exc:
            layout.label(text=f"{type(exc).__name__}: {exc}", icon="ERROR")


class ACESTEP_PT_library(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Library"
    bl_parent_id = "ACESTEP_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        try:
            return _library(context) is not None and compat.sequencer_scene(context) is not None
        except Exception:
            return False

    @never_raises
    def draw(self, context):
        layout = self.layout
        fields = _library(context)
        layout.prop(fields, "text", text="", icon="VIEWZOOM")
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(fields, "use_bpm", text="BPM")
        sub = row.row(align=True)
        sub.active = fields.use_bpm
        sub.prop(fields, "bpm_min")
        sub.prop(fields, "bpm_max")
        col.prop(fields, "key")
        col.row(align=True).prop(fields, "loop", expand=True)
        row = layout.row()
        row.enabled = not fields.searching
        row.operator("acestep.library_search", icon="VIEWZOOM")
        if fields.message:
            wrapped(layout, fields.message, icon="ERROR" if fields.message_level == "ERROR" else "INFO")
        if not len(fields.results):
            return
        layout.template_list("ACESTEP_UL_library_results", "", fields, "results", fields, "index", rows=4)
        if 0 <= fields.index < len(fields.results):
            chosen = fields.results[fields.index]
            box = layout.box()
            wrapped(box, chosen.prompt or Path(chosen.path).name, icon="TEXT")
            box.label(text=result_line(chosen), icon="SOUND")
            wrapped(box, f"Licence: {chosen.licence or 'not recorded'}", icon="INFO")
            if chosen.flagged:
                wrapped(box, "The originality check flagged this cue", icon="ERROR")
            if chosen.missing:
                wrapped(box, "Its file is missing (moved or deleted)", icon="ERROR")
            row = box.row()
            row.enabled = not chosen.missing
            row.operator("acestep.library_place", icon="IMPORT")


CLASSES = (AceStepLibraryResult, AceStepLibrary, ACESTEP_OT_library_search, ACESTEP_OT_library_place,
           ACESTEP_UL_library_results, ACESTEP_PT_library)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.WindowManager.acestep_library = PointerProperty(type=AceStepLibrary)


def unregister():
    forget()
    del bpy.types.WindowManager.acestep_library
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
