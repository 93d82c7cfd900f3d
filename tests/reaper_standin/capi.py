"""REAPER's C API over the in-memory model, one function per documented prototype.

Each function takes the app and the call's arguments as the C side sees them
(prototypes.py): REAPER objects as model objects (None for NULL), strings as str,
char* as Buffer, out-pointers as Ref. Behaviour follows the API documentation
(reaper.fm/sdk/reascript/reascripthelp.html); where it is silent the choice is
commented. Unknown parameter names get what REAPER gives them: 0 / false.
"""

from __future__ import annotations

import os
import time

from .model import (
    APP_VERSION, EPSILON, Item, Marker, MessageBox, Dialog, Project, ReaperApp, Source,
    StandInFault, Take, TempoMarker, Track, probe_media,
)
from .prototypes import Prototype, parse

FUNCTIONS: list[tuple[Prototype, object]] = []


def c_function(text: str, raw_pointers: bool = False):
    """Register `function` as REAPER's `text`. raw_pointers: the function gets addresses,
    not objects (for the validation functions, which must take any address)."""
    prototype = parse(text)

    def register(function):
        function.raw_pointers = raw_pointers
        FUNCTIONS.append((prototype, function))
        return function

    return register


def _proj(app: ReaperApp, proj: Project | None) -> Project:
    return app.project(proj)


# -- application ------------------------------------------------------------------------


@c_function("const char* GetAppVersion()")
def GetAppVersion(app):
    return APP_VERSION


@c_function("const char* GetResourcePath()")
def GetResourcePath(app):
    return app.resource_path


@c_function("const char* GetExePath()")
def GetExePath(app):
    return app.exe_path


@c_function("const char* get_ini_file()")
def get_ini_file(app):
    return os.path.join(app.resource_path, "reaper.ini")


@c_function("const char* GetOS()")
def GetOS(app):
    return "Other"  # what REAPER reports on Linux


@c_function("double time_precise()")
def time_precise(app):
    return time.perf_counter()


@c_function("HWND GetMainHwnd()")
def GetMainHwnd(app):
    return 0x00000000DEAD0000


@c_function("bool file_exists(const char* path)")
def file_exists(app, path):
    return bool(path) and os.path.isfile(path)


@c_function("void ShowConsoleMsg(const char* msg)")
def ShowConsoleMsg(app, msg):
    app.console.append(msg or "")


@c_function("void ClearConsole()")
def ClearConsole(app):
    app.console.clear()


@c_function("int ShowMessageBox(const char* msg, const char* title, int type)")
def ShowMessageBox(app, msg, title, type):
    return app.user.message_box(MessageBox(msg or "", title or "", type))


@c_function("int MB(const char* msg, const char* title, int type)")
def MB(app, msg, title, type):
    return ShowMessageBox(app, msg, title, type)


@c_function("bool GetUserInputs(const char* title, int num_inputs, const char* captions_csv, char* retvals_csv, int retvals_csv_sz)")
def GetUserInputs(app, title, num_inputs, captions_csv, retvals_csv, retvals_csv_sz):
    """Up to 16 fields; extra caption fields `extrawidth=N` and `separator=X` tune the
    dialog; values come back joined by the separator (a comma by default)."""
    if not 1 <= num_inputs <= 16:
        return False
    fields = (captions_csv or "").split(",")
    captions = fields[:num_inputs]
    captions += [""] * (num_inputs - len(captions))
    separator = ","
    for extra in fields[num_inputs:]:
        if extra.startswith("separator="):
            separator = extra[len("separator="):] or ","
    defaults = retvals_csv.read().split(separator) if retvals_csv is not None else []
    defaults = (defaults + [""] * num_inputs)[:num_inputs]
    answer = app.user.user_inputs(Dialog(title or "", captions, defaults, separator))
    if answer is None:
        return False
    if retvals_csv is not None:
        retvals_csv.write(separator.join(answer[:num_inputs]))
    return True


# -- ExtState -----------------------------------------------------------------------------


@c_function("void SetExtState(const char* section, const char* key, const char* value, bool persist)")
def SetExtState(app, section, key, value, persist):
    app.set_ext_state(section or "", key or "", value or "", persist)


@c_function("const char* GetExtState(const char* section, const char* key)")
def GetExtState(app, section, key):
    return app.get_ext_state(section or "", key or "") or ""


@c_function("bool HasExtState(const char* section, const char* key)")
def HasExtState(app, section, key):
    return app.get_ext_state(section or "", key or "") is not None


@c_function("void DeleteExtState(const char* section, const char* key, bool persist)")
def DeleteExtState(app, section, key, persist):
    app.delete_ext_state(section or "", key or "", persist)


@c_function("int SetProjExtState(ReaProject* proj, const char* extname, const char* key, const char* value)")
def SetProjExtState(app, proj, extname, key, value):
    """Empty key clears the whole extname; empty value deletes the key. Returns the
    size of the state kept for extname."""
    project = _proj(app, proj)
    section = (extname or "").upper()
    if not key:
        for stored in [k for k in project.ext_state if k[0] == section]:
            del project.ext_state[stored]
    elif not value:
        project.ext_state.pop((section, key.upper()), None)
    else:
        project.ext_state[(section, key.upper())] = value
    project.changed()
    return sum(len(k[1]) + len(v) for k, v in project.ext_state.items() if k[0] == section)


@c_function("int GetProjExtState(ReaProject* proj, const char* extname, const char* key, char* valOutNeedBig, int valOutNeedBig_sz)")
def GetProjExtState(app, proj, extname, key, valOutNeedBig, valOutNeedBig_sz):
    value = _proj(app, proj).ext_state.get(((extname or "").upper(), (key or "").upper()), "")
    if valOutNeedBig is not None:
        valOutNeedBig.write(value)
    return len(value)


@c_function("bool EnumProjExtState(ReaProject* proj, const char* extname, int idx, char* keyOutOptional, int keyOutOptional_sz, char* valOutOptional, int valOutOptional_sz)")
def EnumProjExtState(app, proj, extname, idx, keyOut, keyOut_sz, valOut, valOut_sz):
    entries = [(k[1], v) for k, v in _proj(app, proj).ext_state.items() if k[0] == (extname or "").upper()]
    if not 0 <= idx < len(entries):
        return False
    if keyOut is not None:
        keyOut.write(entries[idx][0])
    if valOut is not None:
        valOut.write(entries[idx][1])
    return True


# -- undo ---------------------------------------------------------------------------------


def _begin_block(project: Project) -> None:
    project.undo_depth += 1


def _end_block(project: Project, description: str) -> None:
    """The outermost end adds one undo point."""
    if project.undo_depth == 0:
        return  # an unmatched end block does nothing
    project.undo_depth -= 1
    if project.undo_depth == 0:
        project.add_undo_point(description or "")


@c_function("void Undo_BeginBlock()")
def Undo_BeginBlock(app):
    _begin_block(app.current)


@c_function("void Undo_BeginBlock2(ReaProject* proj)")
def Undo_BeginBlock2(app, proj):
    _begin_block(_proj(app, proj))


@c_function("void Undo_EndBlock(const char* descchange, int extraflags)")
def Undo_EndBlock(app, descchange, extraflags):
    _end_block(app.current, descchange)


@c_function("void Undo_EndBlock2(ReaProject* proj, const char* descchange, int extraflags)")
def Undo_EndBlock2(app, proj, descchange, extraflags):
    _end_block(_proj(app, proj), descchange)


def _state_change(project: Project, description: str) -> None:
    if project.undo_depth == 0:  # inside a block the change joins the block's point
        project.add_undo_point(description or "")


@c_function("void Undo_OnStateChange(const char* descchange)")
def Undo_OnStateChange(app, descchange):
    _state_change(app.current, descchange)


@c_function("void Undo_OnStateChange2(ReaProject* proj, const char* descchange)")
def Undo_OnStateChange2(app, proj, descchange):
    _state_change(_proj(app, proj), descchange)


@c_function("void Undo_OnStateChangeEx(const char* descchange, int whichStates, int trackparm)")
def Undo_OnStateChangeEx(app, descchange, whichStates, trackparm):
    _state_change(app.current, descchange)


@c_function("void Undo_OnStateChangeEx2(ReaProject* proj, const char* descchange, int whichStates, int trackparm)")
def Undo_OnStateChangeEx2(app, proj, descchange, whichStates, trackparm):
    _state_change(_proj(app, proj), descchange)


@c_function("const char* Undo_CanUndo2(ReaProject* proj)")
def Undo_CanUndo2(app, proj):
    points = _proj(app, proj).undo_points
    return points[-1].label if points else None  # NULL when there is nothing to undo


@c_function("const char* Undo_CanRedo2(ReaProject* proj)")
def Undo_CanRedo2(app, proj):
    points = _proj(app, proj).redo_points
    return points[-1].label if points else None


@c_function("int Undo_DoUndo2(ReaProject* proj)")
def Undo_DoUndo2(app, proj):
    return 1 if _proj(app, proj).undo() else 0


@c_function("int Undo_DoRedo2(ReaProject* proj)")
def Undo_DoRedo2(app, proj):
    return 1 if _proj(app, proj).redo() else 0


# -- refresh --------------------------------------------------------------------------------


@c_function("void PreventUIRefresh(int prevent_count)")
def PreventUIRefresh(app, prevent_count):
    app.ui_refresh_prevented += prevent_count


@c_function("void UpdateArrange()")
def UpdateArrange(app):
    app.arrange_updates += 1


@c_function("void UpdateTimeline()")
def UpdateTimeline(app):
    app.timeline_updates += 1


@c_function("void TrackList_AdjustWindows(bool isMinor)")
def TrackList_AdjustWindows(app, isMinor):
    app.arrange_updates += 1


@c_function("void UpdateItemInProject(MediaItem* item)")
def UpdateItemInProject(app, item):
    app.arrange_updates += 1


# -- actions ---------------------------------------------------------------------------------

NATIVE_COMMANDS = {
    40296: "Track: Select all tracks",
    40297: "Track: Unselect (clear selection of) all tracks",
    40182: "Item: Select all items",
    40289: "Item: Unselect (clear selection of) all items",
    40635: "Time selection: Remove (unselect) time selection",
    40020: "Time selection: Remove (unselect) time selection and loop points",
    40029: "Edit: Undo",
    40030: "Edit: Redo",
    40047: "Peaks: Build any missing peaks",
    40125: "Take: Switch items to next take",
    40126: "Take: Switch items to previous take",
    40042: "Transport: Go to start of project",
    1007: "Transport: Play",
    1016: "Transport: Stop",
    1008: "Transport: Pause",
}


def run_command(app: ReaperApp, command: int, project: Project) -> None:
    app.commands_run.append(command)
    if command in app.actions:
        app.scripts.run_action(app.actions[command])
    elif command == 40296:
        for track in project.tracks:
            track.selected = True
    elif command == 40297:
        for track in [*project.tracks, project.master]:
            track.selected = False
    elif command in (40182, 40289):
        for item in project.all_items():
            item.selected = command == 40182
    elif command == 40635:
        project.time_selection = (0.0, 0.0)
    elif command == 40020:
        project.time_selection = project.loop_points = (0.0, 0.0)
    elif command == 40029:
        project.undo()
    elif command == 40030:
        project.redo()
    elif command in (40125, 40126):
        step = 1 if command == 40125 else -1
        switched = False
        for item in project.all_items():
            if item.selected and len(item.takes) > 1:
                item.active = (item.active + step) % len(item.takes)
                switched = True
        if switched:
            project.add_undo_point("Change active take")
    elif command == 40042:
        project.cursor = 0.0
    elif command == 1007:
        project.play_state = 1
    elif command == 1016:
        project.play_state = 0
    elif command == 1008:
        project.play_state = 2 if project.play_state == 1 else project.play_state
    elif command == 40047:
        pass
    else:
        app.unknown.append(f"command {command}")


@c_function("void Main_OnCommand(int command, int flag)")
def Main_OnCommand(app, command, flag):
    run_command(app, command, app.current)


@c_function("void Main_OnCommandEx(int command, int flag, ReaProject* proj)")
def Main_OnCommandEx(app, command, flag, proj):
    run_command(app, command, _proj(app, proj))


@c_function("int NamedCommandLookup(const char* command_name)")
def NamedCommandLookup(app, command_name):
    name = command_name or ""
    if name.isdigit():
        return int(name)
    return app.named_commands.get(name[1:] if name.startswith("_") else name, 0)


@c_function("const char* ReverseNamedCommandLookup(int command_id)")
def ReverseNamedCommandLookup(app, command_id):
    action = app.actions.get(command_id)
    return action.name if action else None  # NULL for native actions


@c_function("const char* kbd_getTextFromCmd(int cmd, KbdSectionInfo* section)")
def kbd_getTextFromCmd(app, cmd, section):
    """The action's name as the Action list shows it (REAPER's prototype has DWORD cmd;
    a NULL section is the main one). Only scripts are modelled: other ids give ""."""
    action = app.actions.get(cmd)
    return action.listed_name if action else ""


@c_function("int AddRemoveReaScript(bool add, int sectionID, const char* scriptfn, bool commit)")
def AddRemoveReaScript(app, add, sectionID, scriptfn, commit):
    """Adding returns the new command id (0 on failure); removing returns >0 on success.
    commit writes reaper-kb.ini."""
    from .config_files import write_kb_script_lines

    path = scriptfn or ""
    if add:
        if not os.path.isfile(path):
            return 0
        action = app.register_script(path, "Custom: " + os.path.basename(path), section=sectionID)
        result = action.command_id
    else:
        result = 1 if app.unregister_script(path, sectionID) else 0
    if commit:
        write_kb_script_lines(app)
    return result


@c_function("int GetToggleCommandStateEx(int section_id, int command_id)")
def GetToggleCommandStateEx(app, section_id, command_id):
    return app.toggle_states.get((section_id, command_id), -1)


@c_function("int GetToggleCommandState(int command_id)")
def GetToggleCommandState(app, command_id):
    return GetToggleCommandStateEx(app, 0, command_id)


@c_function("bool SetToggleCommandState(int section_id, int command_id, int state)")
def SetToggleCommandState(app, section_id, command_id, state):
    if command_id not in app.actions:
        return False  # only extension and script actions have a settable state
    app.toggle_states[(section_id, command_id)] = state
    return True


@c_function("void RefreshToolbar2(int section_id, int command_id)")
def RefreshToolbar2(app, section_id, command_id):
    pass


@c_function("void set_action_options(int flag)")
def set_action_options(app, flag):
    """1: on rerun, terminate the running instance; 2: on rerun, start a new instance;
    4: set the action's toggle state on; 8: set it off."""
    app.scripts.set_action_options(flag)


# -- pointers ---------------------------------------------------------------------------------

OBJECT_TYPES = ("ReaProject*", "MediaTrack*", "MediaItem*", "MediaItem_Take*", "PCM_source*", "TrackEnvelope*")


@c_function("bool ValidatePtr(void* pointer, const char* ctypename)", raw_pointers=True)
def ValidatePtr(app, pointer, ctypename):
    return app.pointers.is_valid(pointer or 0, ctypename or "")


@c_function("bool ValidatePtr2(ReaProject* proj, void* pointer, const char* ctypename)", raw_pointers=True)
def ValidatePtr2(app, proj, pointer, ctypename):
    """True when the pointer is a live object of that type in proj (proj is ignored
    when the pointer is itself a project; NULL proj is the current project)."""
    if not app.pointers.is_valid(pointer or 0, ctypename or ""):
        return False
    obj = app.pointers.objects[pointer]
    if isinstance(obj, Project):
        return True
    if not proj:
        project = app.current
    elif app.pointers.is_valid(proj, "ReaProject*"):
        project = app.pointers.objects[proj]
    else:
        return False
    return _owner(obj) is project


def _owner(obj) -> Project | None:
    if isinstance(obj, Track):
        return obj.project if (obj in obj.project.tracks or obj is obj.project.master) else None
    if isinstance(obj, Item):
        return _owner(obj.track) if obj in obj.track.items else None
    if isinstance(obj, Take):
        return _owner(obj.item) if obj in obj.item.takes else None
    if isinstance(obj, Source):
        return _owner(obj.take) if obj.take is not None and obj.take.source is obj else None
    return None


# -- projects ---------------------------------------------------------------------------------


@c_function("ReaProject* EnumProjects(int idx, char* projfnOutOptional, int projfnOutOptional_sz)")
def EnumProjects(app, idx, projfnOutOptional, projfnOutOptional_sz):
    """idx -1 is the current project, 0.. the project tabs; the .rpp path (empty while
    unsaved) goes to the buffer."""
    if idx == -1:
        project = app.current
    elif 0 <= idx < len(app.projects):
        project = app.projects[idx]
    else:
        return None
    if projfnOutOptional is not None:
        projfnOutOptional.write(project.file_path or "")
    return project


@c_function("void SelectProjectInstance(ReaProject* proj)")
def SelectProjectInstance(app, proj):
    if proj is not None:
        app.current = proj


@c_function("ReaProject* GetCurrentProjectInLoadSave()")
def GetCurrentProjectInLoadSave(app):
    return None


@c_function("void GetProjectName(ReaProject* proj, char* buf, int buf_sz)")
def GetProjectName(app, proj, buf, buf_sz):
    if buf is not None:
        buf.write(_proj(app, proj).name)


@c_function("void GetProjectPath(char* buf, int buf_sz)")
def GetProjectPath(app, buf, buf_sz):
    if buf is not None:
        buf.write(app.current.recording_path())


@c_function("void GetProjectPathEx(ReaProject* proj, char* buf, int buf_sz)")
def GetProjectPathEx(app, proj, buf, buf_sz):
    if buf is not None:
        buf.write(_proj(app, proj).recording_path())


@c_function("double GetSetProjectInfo(ReaProject* project, const char* desc, double value, bool is_set)")
def GetSetProjectInfo(app, project, desc, value, is_set):
    project = _proj(app, project)
    if desc not in project.info_values:
        app.unknown.append(f"project info {desc}")
        return 0.0
    if is_set:
        project.info_values[desc] = value
        project.changed()
    return project.info_values[desc]


@c_function("bool GetSetProjectInfo_String(ReaProject* project, const char* desc, char* valuestrNeedBig, bool is_set)")
def GetSetProjectInfo_String(app, project, desc, valuestrNeedBig, is_set):
    project = _proj(app, project)
    desc = desc or ""
    if desc.startswith("MARKER_GUID:"):
        markers = project.sorted_markers()
        index = int(desc.split(":", 1)[1]) if desc.split(":", 1)[1].isdigit() else -1
        if is_set or not 0 <= index < len(markers):
            return False
        valuestrNeedBig.write(markers[index].guid)
        return True
    if desc == "RECORD_PATH":
        if is_set:
            project.record_path = valuestrNeedBig.read()
            project.changed()
        else:
            valuestrNeedBig.write(project.record_path)
        return True
    if desc == "PROJECT_NAME":
        if is_set:
            return False
        valuestrNeedBig.write(os.path.splitext(project.name)[0])
        return True
    if desc in project.info_strings:
        if is_set:
            project.info_strings[desc] = valuestrNeedBig.read()
            project.changed()
        else:
            valuestrNeedBig.write(project.info_strings[desc])
        return True
    app.unknown.append(f"project info string {desc}")
    return False


@c_function("void GetSetProjectNotes(ReaProject* proj, bool set, char* notesNeedBig, int notesNeedBig_sz)")
def GetSetProjectNotes(app, proj, set, notesNeedBig, notesNeedBig_sz):
    project = _proj(app, proj)
    if set:
        project.notes = notesNeedBig.read()
        project.changed()
    else:
        notesNeedBig.write(project.notes)


@c_function("double GetProjectLength(ReaProject* proj)")
def GetProjectLength(app, proj):
    return _proj(app, proj).length()


@c_function("int IsProjectDirty(ReaProject* proj)")
def IsProjectDirty(app, proj):
    return 1 if _proj(app, proj).dirty else 0


@c_function("void MarkProjectDirty(ReaProject* proj)")
def MarkProjectDirty(app, proj):
    _proj(app, proj).dirty = True


@c_function("int GetProjectStateChangeCount(ReaProject* proj)")
def GetProjectStateChangeCount(app, proj):
    return _proj(app, proj).change_count


@c_function("void Main_SaveProject(ReaProject* proj, bool forceSaveAsInOptional)")
def Main_SaveProject(app, proj, forceSaveAsInOptional):
    """Saves to the project's .rpp; an unsaved project would open the Save As dialog."""
    from .rpp import write_rpp

    project = _proj(app, proj)
    if forceSaveAsInOptional or not project.file_path:
        raise StandInFault("Main_SaveProject would open the Save As dialog: the test should give the project a file first")
    write_rpp(project, project.file_path)
    project.dirty = False


# -- transport, cursor, time selection ---------------------------------------------------------


@c_function("int GetPlayState()")
def GetPlayState(app):
    return app.current.play_state


@c_function("int GetPlayStateEx(ReaProject* proj)")
def GetPlayStateEx(app, proj):
    return _proj(app, proj).play_state


@c_function("void OnPlayButton()")
def OnPlayButton(app):
    app.current.play_state = 1


@c_function("void OnPlayButtonEx(ReaProject* proj)")
def OnPlayButtonEx(app, proj):
    _proj(app, proj).play_state = 1


@c_function("void OnStopButton()")
def OnStopButton(app):
    app.current.play_state = 0


@c_function("void OnStopButtonEx(ReaProject* proj)")
def OnStopButtonEx(app, proj):
    _proj(app, proj).play_state = 0


@c_function("void OnPauseButton()")
def OnPauseButton(app):
    app.current.play_state = 2


@c_function("void OnPauseButtonEx(ReaProject* proj)")
def OnPauseButtonEx(app, proj):
    _proj(app, proj).play_state = 2


# Nothing plays here, so the play position is the edit cursor.
@c_function("double GetPlayPosition()")
def GetPlayPosition(app):
    return app.current.cursor


@c_function("double GetPlayPosition2()")
def GetPlayPosition2(app):
    return app.current.cursor


@c_function("double GetPlayPositionEx(ReaProject* proj)")
def GetPlayPositionEx(app, proj):
    return _proj(app, proj).cursor


@c_function("double GetPlayPosition2Ex(ReaProject* proj)")
def GetPlayPosition2Ex(app, proj):
    return _proj(app, proj).cursor


@c_function("double GetCursorPosition()")
def GetCursorPosition(app):
    return app.current.cursor


@c_function("double GetCursorPositionEx(ReaProject* proj)")
def GetCursorPositionEx(app, proj):
    return _proj(app, proj).cursor


@c_function("void SetEditCurPos(double time, bool moveview, bool seekplay)")
def SetEditCurPos(app, time, moveview, seekplay):
    app.current.cursor = max(0.0, time)


@c_function("void SetEditCurPos2(ReaProject* proj, double time, bool moveview, bool seekplay)")
def SetEditCurPos2(app, proj, time, moveview, seekplay):
    _proj(app, proj).cursor = max(0.0, time)


def _loop_time_range(project: Project, is_set, is_loop, startOut, endOut):
    """Time selection (isLoop false) or loop points (true); with REAPER's default
    preference the two are linked, so setting one sets both."""
    if is_set:
        start, end = sorted((max(0.0, startOut.value), max(0.0, endOut.value)))
        project.time_selection = project.loop_points = (start, end)
    else:
        start, end = project.loop_points if is_loop else project.time_selection
        startOut.value, endOut.value = start, end


@c_function("void GetSet_LoopTimeRange(bool isSet, bool isLoop, double* startOut, double* endOut, bool allowautoseek)")
def GetSet_LoopTimeRange(app, isSet, isLoop, startOut, endOut, allowautoseek):
    _loop_time_range(app.current, isSet, isLoop, startOut, endOut)


@c_function("void GetSet_LoopTimeRange2(ReaProject* proj, bool isSet, bool isLoop, double* startOut, double* endOut, bool allowautoseek)")
def GetSet_LoopTimeRange2(app, proj, isSet, isLoop, startOut, endOut, allowautoseek):
    _loop_time_range(_proj(app, proj), isSet, isLoop, startOut, endOut)


def _repeat(project: Project, val: int) -> int:
    """-1 queries, 0 clears, 1 sets, >1 toggles."""
    if val == 0 or val == 1:
        project.repeat = bool(val)
    elif val > 1:
        project.repeat = not project.repeat
    return 1 if project.repeat else 0


@c_function("int GetSetRepeat(int val)")
def GetSetRepeat(app, val):
    return _repeat(app.current, val)


@c_function("int GetSetRepeatEx(ReaProject* proj, int val)")
def GetSetRepeatEx(app, proj, val):
    return _repeat(_proj(app, proj), val)


# -- tracks -----------------------------------------------------------------------------------


def _track_number(track: Track) -> int:
    if track.is_master:
        return -1
    tracks = track.project.tracks
    return tracks.index(track) + 1 if track in tracks else 0


def _folder_parents(project: Project) -> dict[int, Track | None]:
    """Each track's parent from the I_FOLDERDEPTH chain (1 opens a folder, -n closes n)."""
    parents: dict[int, Track | None] = {}
    stack: list[Track] = []
    for track in project.tracks:
        parents[id(track)] = stack[-1] if stack else None
        depth = int(track.values.get("I_FOLDERDEPTH", 0))
        if depth > 0:
            stack.append(track)
        elif depth < 0:
            del stack[max(0, len(stack) + depth):]
    return parents


@c_function("int CountTracks(ReaProject* proj)")
def CountTracks(app, proj):
    return len(_proj(app, proj).tracks)


@c_function("int GetNumTracks()")
def GetNumTracks(app):
    return len(app.current.tracks)


@c_function("MediaTrack* GetTrack(ReaProject* proj, int trackidx)")
def GetTrack(app, proj, trackidx):
    tracks = _proj(app, proj).tracks
    return tracks[trackidx] if 0 <= trackidx < len(tracks) else None


@c_function("MediaTrack* GetMasterTrack(ReaProject* proj)")
def GetMasterTrack(app, proj):
    return _proj(app, proj).master


@c_function("void InsertTrackAtIndex(int idx, bool wantDefaults)")
def InsertTrackAtIndex(app, idx, wantDefaults):
    """Inserts into the current project; idx is clamped to 0..track count."""
    project = app.current
    track = Track(project)
    app.pointers.register(track, "MediaTrack*")
    project.tracks.insert(max(0, min(idx, len(project.tracks))), track)
    project.changed()


@c_function("void DeleteTrack(MediaTrack* tr)")
def DeleteTrack(app, tr):
    if tr is None or tr.is_master or tr not in tr.project.tracks:
        return
    tr.project.tracks.remove(tr)
    for item in tr.items:
        _forget_item(app, item)
    app.pointers.forget(tr)
    if tr.project.last_touched is tr:
        tr.project.last_touched = None
    tr.project.changed()


@c_function("int CountSelectedTracks(ReaProject* proj)")
def CountSelectedTracks(app, proj):
    return len(_proj(app, proj).selected_tracks())


@c_function("int CountSelectedTracks2(ReaProject* proj, bool wantmaster)")
def CountSelectedTracks2(app, proj, wantmaster):
    return len(_proj(app, proj).selected_tracks(wantmaster))


@c_function("MediaTrack* GetSelectedTrack(ReaProject* proj, int seltrackidx)")
def GetSelectedTrack(app, proj, seltrackidx):
    tracks = _proj(app, proj).selected_tracks()
    return tracks[seltrackidx] if 0 <= seltrackidx < len(tracks) else None


@c_function("MediaTrack* GetSelectedTrack2(ReaProject* proj, int seltrackidx, bool wantmaster)")
def GetSelectedTrack2(app, proj, seltrackidx, wantmaster):
    tracks = _proj(app, proj).selected_tracks(wantmaster)
    return tracks[seltrackidx] if 0 <= seltrackidx < len(tracks) else None


@c_function("void SetTrackSelected(MediaTrack* track, bool selected)")
def SetTrackSelected(app, track, selected):
    if track is not None:
        track.selected = selected
        if selected:
            track.project.last_touched = track


@c_function("void SetOnlyTrackSelected(MediaTrack* track)")
def SetOnlyTrackSelected(app, track):
    if track is None:
        return
    for other in [*track.project.tracks, track.project.master]:
        other.selected = other is track
    track.project.last_touched = track


@c_function("bool IsTrackSelected(MediaTrack* track)")
def IsTrackSelected(app, track):
    return bool(track and track.selected)


@c_function("MediaTrack* GetLastTouchedTrack()")
def GetLastTouchedTrack(app):
    return app.current.last_touched


@c_function("bool GetTrackName(MediaTrack* track, char* buf, int buf_sz)")
def GetTrackName(app, track, buf, buf_sz):
    """"MASTER" for the master track, "Track N" for a track with no name."""
    if track is None:
        return False
    if track.is_master:
        name = "MASTER"
    else:
        name = track.name or f"Track {_track_number(track)}"
    if buf is not None:
        buf.write(name)
    return True


def _get_set_ext(ext: dict, parmname: str, buffer, set_new) -> bool:
    key = parmname[len("P_EXT:"):]
    if not key:
        return False
    if set_new:
        value = buffer.read()
        if value:
            ext[key] = value
        else:
            ext.pop(key, None)
        return True
    if key not in ext:
        return False
    buffer.write(ext[key])
    return True


@c_function("bool GetSetMediaTrackInfo_String(MediaTrack* tr, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaTrackInfo_String(app, tr, parmname, stringNeedBig, setNewValue):
    if tr is None:
        return False
    parmname = parmname or ""
    if parmname == "P_NAME":
        if tr.is_master:
            return False  # the master track has no P_NAME
        if setNewValue:
            tr.name = stringNeedBig.read()
            tr.project.changed()
        else:
            stringNeedBig.write(tr.name)
        return True
    if parmname.startswith("P_EXT:"):
        done = _get_set_ext(tr.ext, parmname, stringNeedBig, setNewValue)
        if done and setNewValue:
            tr.project.changed()
        return done
    if parmname == "GUID":
        if setNewValue:
            tr.guid = stringNeedBig.read()
        else:
            stringNeedBig.write(tr.guid)
        return True
    app.unknown.append(f"track string {parmname}")
    return False


@c_function("double GetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname)")
def GetMediaTrackInfo_Value(app, tr, parmname):
    if tr is None:
        return 0.0
    if parmname == "IP_TRACKNUMBER":
        return float(_track_number(tr))
    if parmname == "I_SELECTED":
        return 1.0 if tr.selected else 0.0
    if parmname == "P_PROJECT":
        return float(tr.project.address)
    if parmname == "P_PARTRACK":
        parent = _folder_parents(tr.project).get(id(tr))
        return float(parent.address) if parent else 0.0
    if parmname in tr.values:
        return float(tr.values[parmname])
    app.unknown.append(f"track value {parmname}")
    return 0.0


@c_function("bool SetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname, double newvalue)")
def SetMediaTrackInfo_Value(app, tr, parmname, newvalue):
    if tr is None:
        return False
    if parmname == "I_SELECTED":
        SetTrackSelected(app, tr, bool(newvalue))
        return True
    if parmname in tr.values:
        tr.values[parmname] = newvalue
        tr.project.changed()
        return True
    app.unknown.append(f"track value {parmname}")
    return False


@c_function("int GetTrackColor(MediaTrack* track)")
def GetTrackColor(app, track):
    return int(track.values["I_CUSTOMCOLOR"]) if track else 0


@c_function("void SetTrackColor(MediaTrack* track, int color)")
def SetTrackColor(app, track, color):
    if track is not None:
        track.values["I_CUSTOMCOLOR"] = float(color | 0x1000000)
        track.project.changed()


@c_function("int GetTrackDepth(MediaTrack* track)")
def GetTrackDepth(app, track):
    if track is None or track.is_master:
        return 0
    parents = _folder_parents(track.project)
    depth, parent = 0, parents.get(id(track))
    while parent is not None:
        depth += 1
        parent = parents.get(id(parent))
    return depth


@c_function("MediaTrack* GetParentTrack(MediaTrack* track)")
def GetParentTrack(app, track):
    return _folder_parents(track.project).get(id(track)) if track is not None and not track.is_master else None


@c_function("int CountTrackMediaItems(MediaTrack* track)")
def CountTrackMediaItems(app, track):
    return len(track.items) if track else 0


@c_function("int GetTrackNumMediaItems(MediaTrack* tr)")
def GetTrackNumMediaItems(app, tr):
    return len(tr.items) if tr else 0


@c_function("MediaItem* GetTrackMediaItem(MediaTrack* tr, int itemidx)")
def GetTrackMediaItem(app, tr, itemidx):
    items = tr.sorted_items() if tr else []
    return items[itemidx] if 0 <= itemidx < len(items) else None


# -- items ------------------------------------------------------------------------------------


def _forget_item(app: ReaperApp, item: Item) -> None:
    for take in item.takes:
        if take.source is not None:
            app.pointers.forget(take.source)
        app.pointers.forget(take)
    app.pointers.forget(item)


@c_function("MediaItem* AddMediaItemToTrack(MediaTrack* tr)")
def AddMediaItemToTrack(app, tr):
    """A new empty item (no takes) at 0 s, 0 s long, not selected."""
    if tr is None:
        return None
    item = Item(tr)
    item.created = tr.project.next_order()
    app.pointers.register(item, "MediaItem*")
    tr.items.append(item)
    tr.project.changed()
    return item


@c_function("bool DeleteTrackMediaItem(MediaTrack* tr, MediaItem* it)")
def DeleteTrackMediaItem(app, tr, it):
    if tr is None or it is None or it not in tr.items:
        return False
    tr.items.remove(it)
    _forget_item(app, it)
    tr.project.changed()
    return True


@c_function("int CountMediaItems(ReaProject* proj)")
def CountMediaItems(app, proj):
    return len(_proj(app, proj).all_items())


@c_function("MediaItem* GetMediaItem(ReaProject* proj, int itemidx)")
def GetMediaItem(app, proj, itemidx):
    items = _proj(app, proj).all_items()
    return items[itemidx] if 0 <= itemidx < len(items) else None


@c_function("int CountSelectedMediaItems(ReaProject* proj)")
def CountSelectedMediaItems(app, proj):
    return sum(item.selected for item in _proj(app, proj).all_items())


@c_function("MediaItem* GetSelectedMediaItem(ReaProject* proj, int selitem)")
def GetSelectedMediaItem(app, proj, selitem):
    items = [item for item in _proj(app, proj).all_items() if item.selected]
    return items[selitem] if 0 <= selitem < len(items) else None


@c_function("void SelectAllMediaItems(ReaProject* proj, bool selected)")
def SelectAllMediaItems(app, proj, selected):
    for item in _proj(app, proj).all_items():
        item.selected = selected


@c_function("void SetMediaItemSelected(MediaItem* item, bool selected)")
def SetMediaItemSelected(app, item, selected):
    if item is not None:
        item.selected = selected


@c_function("bool IsMediaItemSelected(MediaItem* item)")
def IsMediaItemSelected(app, item):
    return bool(item and item.selected)


ITEM_READ_ONLY = ("IP_ITEMNUMBER", "P_TRACK")


@c_function("double GetMediaItemInfo_Value(MediaItem* item, const char* parmname)")
def GetMediaItemInfo_Value(app, item, parmname):
    if item is None:
        return 0.0
    if parmname == "D_POSITION":
        return item.position
    if parmname == "D_LENGTH":
        return item.length
    if parmname == "B_UISEL":
        return 1.0 if item.selected else 0.0
    if parmname == "I_CURTAKE":
        return float(max(item.active, 0))
    if parmname == "IP_ITEMNUMBER":
        items = item.track.sorted_items()
        return float(items.index(item)) if item in items else -1.0
    if parmname == "P_TRACK":
        return float(item.track.address)
    if parmname in item.values:
        return float(item.values[parmname])
    app.unknown.append(f"item value {parmname}")
    return 0.0


@c_function("bool SetMediaItemInfo_Value(MediaItem* item, const char* parmname, double newvalue)")
def SetMediaItemInfo_Value(app, item, parmname, newvalue):
    if item is None:
        return False
    project = item.track.project
    if parmname == "D_POSITION":
        item.position = newvalue
    elif parmname == "D_LENGTH":
        item.length = max(0.0, newvalue)
    elif parmname == "B_UISEL":
        item.selected = bool(newvalue)
        return True
    elif parmname == "I_CURTAKE":
        index = int(newvalue)
        if not 0 <= index < len(item.takes):
            return False
        item.active = index
    elif parmname in ITEM_READ_ONLY:
        return False
    elif parmname in item.values:
        item.values[parmname] = newvalue
    else:
        app.unknown.append(f"item value {parmname}")
        return False
    project.changed()
    return True


@c_function("bool SetMediaItemPosition(MediaItem* item, double position, bool refreshUI)")
def SetMediaItemPosition(app, item, position, refreshUI):
    return SetMediaItemInfo_Value(app, item, "D_POSITION", position)


@c_function("bool SetMediaItemLength(MediaItem* item, double length, bool refreshUI)")
def SetMediaItemLength(app, item, length, refreshUI):
    return SetMediaItemInfo_Value(app, item, "D_LENGTH", length)


@c_function("MediaTrack* GetMediaItem_Track(MediaItem* item)")
def GetMediaItem_Track(app, item):
    return item.track if item else None


@c_function("MediaTrack* GetMediaItemTrack(MediaItem* item)")
def GetMediaItemTrack(app, item):
    return item.track if item else None


@c_function("ReaProject* GetItemProjectContext(MediaItem* item)")
def GetItemProjectContext(app, item):
    return item.track.project if item else None


@c_function("bool MoveMediaItemToTrack(MediaItem* item, MediaTrack* desttr)")
def MoveMediaItemToTrack(app, item, desttr):
    if item is None or desttr is None or desttr.is_master:
        return False
    item.track.items.remove(item)
    desttr.items.append(item)
    item.track = desttr
    desttr.project.changed()
    return True


@c_function("bool GetSetMediaItemInfo_String(MediaItem* item, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaItemInfo_String(app, item, parmname, stringNeedBig, setNewValue):
    if item is None:
        return False
    parmname = parmname or ""
    if parmname == "P_NOTES":
        if setNewValue:
            item.notes = stringNeedBig.read()
            item.track.project.changed()
        else:
            stringNeedBig.write(item.notes)
        return True
    if parmname.startswith("P_EXT:"):
        done = _get_set_ext(item.ext, parmname, stringNeedBig, setNewValue)
        if done and setNewValue:
            item.track.project.changed()
        return done
    if parmname == "GUID":
        if setNewValue:
            item.guid = stringNeedBig.read()
        else:
            stringNeedBig.write(item.guid)
        return True
    app.unknown.append(f"item string {parmname}")
    return False


@c_function("MediaItem* SplitMediaItem(MediaItem* item, double position)")
def SplitMediaItem(app, item, position):
    """The item keeps the left part; the right part is a new item (NULL when the
    position is not inside the item)."""
    if item is None or not item.position + EPSILON < position < item.position + item.length - EPSILON:
        return None
    right = AddMediaItemToTrack(app, item.track)
    offset = position - item.position
    right.position, right.length = position, item.position + item.length - position
    right.values = dict(item.values)
    right.notes, right.selected = item.notes, item.selected
    for take in item.takes:
        copy = Take(right)
        app.pointers.register(copy, "MediaItem_Take*")
        copy.name, copy.values = take.name, dict(take.values)
        copy.values["D_STARTOFFS"] = take.values["D_STARTOFFS"] + offset * take.values["D_PLAYRATE"]
        if take.source is not None:
            copy.source = Source(take.source.filename, take.source.info)
            copy.source.take = copy
            app.pointers.register(copy.source, "PCM_source*")
        right.takes.append(copy)
    right.active = item.active
    item.length = offset
    return right


# -- takes ------------------------------------------------------------------------------------


@c_function("int GetMediaItemNumTakes(MediaItem* item)")
def GetMediaItemNumTakes(app, item):
    return len(item.takes) if item else 0


@c_function("int CountTakes(MediaItem* item)")
def CountTakes(app, item):
    return len(item.takes) if item else 0


@c_function("MediaItem_Take* GetMediaItemTake(MediaItem* item, int tk)")
def GetMediaItemTake(app, item, tk):
    return item.takes[tk] if item is not None and 0 <= tk < len(item.takes) else None


@c_function("MediaItem_Take* GetTake(MediaItem* item, int takeidx)")
def GetTake(app, item, takeidx):
    return GetMediaItemTake(app, item, takeidx)


@c_function("MediaItem_Take* GetActiveTake(MediaItem* item)")
def GetActiveTake(app, item):
    return item.active_take if item else None


@c_function("void SetActiveTake(MediaItem_Take* take)")
def SetActiveTake(app, take):
    if take is not None and take in take.item.takes:
        take.item.active = take.item.takes.index(take)
        take.item.track.project.changed()


@c_function("MediaItem_Take* AddTakeToMediaItem(MediaItem* item)")
def AddTakeToMediaItem(app, item):
    """A new empty take at the end of the item's takes. The new take becomes the
    active one, as when REAPER adds a take; set the active take after adding."""
    if item is None:
        return None
    take = Take(item)
    app.pointers.register(take, "MediaItem_Take*")
    item.takes.append(take)
    item.active = len(item.takes) - 1
    item.track.project.changed()
    return take


@c_function("MediaItem* GetMediaItemTake_Item(MediaItem_Take* take)")
def GetMediaItemTake_Item(app, take):
    return take.item if take else None


@c_function("MediaTrack* GetMediaItemTake_Track(MediaItem_Take* take)")
def GetMediaItemTake_Track(app, take):
    return take.item.track if take else None


@c_function("PCM_source* GetMediaItemTake_Source(MediaItem_Take* take)")
def GetMediaItemTake_Source(app, take):
    return take.source if take else None


@c_function("bool SetMediaItemTake_Source(MediaItem_Take* take, PCM_source* source)")
def SetMediaItemTake_Source(app, take, source):
    """The take owns the new source; the old one is left to the caller."""
    if take is None or source is None:
        return False
    other = source.take
    if other is not None and other is not take and other.source is source:
        raise StandInFault("one PCM_source set on two takes: REAPER would free it twice")
    if take.source is not None and take.source is not source:
        take.source.take = None
    take.source = source
    source.take = take
    take.item.track.project.changed()
    return True


@c_function("const char* GetTakeName(MediaItem_Take* take)")
def GetTakeName(app, take):
    return take.name if take is not None else None  # NULL for an invalid take


@c_function("bool GetSetMediaItemTakeInfo_String(MediaItem_Take* tk, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaItemTakeInfo_String(app, tk, parmname, stringNeedBig, setNewValue):
    if tk is None:
        return False
    parmname = parmname or ""
    if parmname == "P_NAME":
        if setNewValue:
            tk.name = stringNeedBig.read()
            tk.item.track.project.changed()
        else:
            stringNeedBig.write(tk.name)
        return True
    if parmname.startswith("P_EXT:"):
        done = _get_set_ext(tk.ext, parmname, stringNeedBig, setNewValue)
        if done and setNewValue:
            tk.item.track.project.changed()
        return done
    if parmname == "GUID":
        if setNewValue:
            tk.guid = stringNeedBig.read()
        else:
            stringNeedBig.write(tk.guid)
        return True
    app.unknown.append(f"take string {parmname}")
    return False


@c_function("double GetMediaItemTakeInfo_Value(MediaItem_Take* take, const char* parmname)")
def GetMediaItemTakeInfo_Value(app, take, parmname):
    if take is None:
        return 0.0
    if parmname == "IP_TAKENUMBER":
        return float(take.item.takes.index(take)) if take in take.item.takes else -1.0
    if parmname == "P_ITEM":
        return float(take.item.address)
    if parmname == "P_TRACK":
        return float(take.item.track.address)
    if parmname == "P_SOURCE":
        return float(take.source.address) if take.source else 0.0
    if parmname in take.values:
        return float(take.values[parmname])
    app.unknown.append(f"take value {parmname}")
    return 0.0


@c_function("bool SetMediaItemTakeInfo_Value(MediaItem_Take* take, const char* parmname, double newvalue)")
def SetMediaItemTakeInfo_Value(app, take, parmname, newvalue):
    if take is None or parmname not in take.values:
        if take is not None:
            app.unknown.append(f"take value {parmname}")
        return False
    take.values[parmname] = newvalue
    take.item.track.project.changed()
    return True


@c_function("bool TakeIsMIDI(MediaItem_Take* take)")
def TakeIsMIDI(app, take):
    return bool(take and take.source and take.source.info.type == "MIDI")


# -- sources ----------------------------------------------------------------------------------


@c_function("PCM_source* PCM_Source_CreateFromFile(const char* filename)")
def PCM_Source_CreateFromFile(app, filename):
    return PCM_Source_CreateFromFileEx(app, filename, False)


@c_function("PCM_source* PCM_Source_CreateFromFileEx(const char* filename, bool forcenoMidiImp)")
def PCM_Source_CreateFromFileEx(app, filename, forcenoMidiImp):
    """The documentation does not say what a missing or unreadable file gives; the
    stand-in returns NULL so callers that skip the check fail here."""
    if not filename:
        return None
    info = probe_media(filename)
    if info is None:
        return None
    source = Source(filename, info)
    app.pointers.register(source, "PCM_source*")
    return source


@c_function("void PCM_Source_Destroy(PCM_source* src)")
def PCM_Source_Destroy(app, src):
    if src is None:
        return
    owner = src.take
    if owner is not None and owner.source is src and app.pointers.is_valid(owner.address, "MediaItem_Take*"):
        raise StandInFault("PCM_Source_Destroy on a source a take still plays: REAPER would crash later")
    app.pointers.forget(src)


@c_function("void GetMediaSourceFileName(PCM_source* source, char* filenamebuf, int filenamebuf_sz)")
def GetMediaSourceFileName(app, source, filenamebuf, filenamebuf_sz):
    if source is not None and filenamebuf is not None:
        filenamebuf.write(source.filename)


@c_function("double GetMediaSourceLength(PCM_source* source, bool* lengthIsQNOut)")
def GetMediaSourceLength(app, source, lengthIsQNOut):
    if lengthIsQNOut is not None:
        lengthIsQNOut.value = False
    return source.info.length if source else 0.0


@c_function("int GetMediaSourceNumChannels(PCM_source* source)")
def GetMediaSourceNumChannels(app, source):
    return source.info.channels if source else 0


@c_function("int GetMediaSourceSampleRate(PCM_source* source)")
def GetMediaSourceSampleRate(app, source):
    return source.info.sample_rate if source else 0


@c_function("void GetMediaSourceType(PCM_source* source, char* typebuf, int typebuf_sz)")
def GetMediaSourceType(app, source, typebuf, typebuf_sz):
    if source is not None and typebuf is not None:
        typebuf.write(source.info.type)


@c_function("PCM_source* GetMediaSourceParent(PCM_source* src)")
def GetMediaSourceParent(app, src):
    return None


# -- markers and regions ------------------------------------------------------------------------


def _add_marker(app, proj, isrgn, pos, rgnend, name, wantidx, color):
    """Returns the marker's displayed number, -1 on failure. A wanted number that is
    taken gives another one."""
    project = _proj(app, proj)
    if isrgn and rgnend < pos:
        pos, rgnend = rgnend, pos
    number = project.free_marker_number(bool(isrgn), wantidx)
    project.markers.append(Marker(bool(isrgn), pos, rgnend if isrgn else 0.0, name or "", number, color, created=project.next_order()))
    project.changed()
    return number


@c_function("int AddProjectMarker(ReaProject* proj, bool isrgn, double pos, double rgnend, const char* name, int wantidx)")
def AddProjectMarker(app, proj, isrgn, pos, rgnend, name, wantidx):
    return _add_marker(app, proj, isrgn, pos, rgnend, name, wantidx, 0)


@c_function("int AddProjectMarker2(ReaProject* proj, bool isrgn, double pos, double rgnend, const char* name, int wantidx, int color)")
def AddProjectMarker2(app, proj, isrgn, pos, rgnend, name, wantidx, color):
    return _add_marker(app, proj, isrgn, pos, rgnend, name, wantidx, color)


@c_function("int CountProjectMarkers(ReaProject* proj, int* num_markersOut, int* num_regionsOut)")
def CountProjectMarkers(app, proj, num_markersOut, num_regionsOut):
    markers = _proj(app, proj).markers
    regions = sum(m.is_region for m in markers)
    if num_markersOut is not None:
        num_markersOut.value = len(markers) - regions
    if num_regionsOut is not None:
        num_regionsOut.value = regions
    return len(markers)


def _enum_markers(project, idx, isrgnOut, posOut, rgnendOut, nameOut, numberOut, colorOut=None):
    """Markers and regions in timeline order; returns idx+1, or 0 past the end."""
    markers = project.sorted_markers()
    if not 0 <= idx < len(markers):
        return 0
    marker = markers[idx]
    for ref, value in ((isrgnOut, marker.is_region), (posOut, marker.position), (rgnendOut, marker.end),
                       (nameOut, marker.name), (numberOut, marker.number), (colorOut, marker.color)):
        if ref is not None:
            ref.value = value
    return idx + 1


@c_function("int EnumProjectMarkers(int idx, bool* isrgnOut, double* posOut, double* rgnendOut, const char** nameOut, int* markrgnindexnumberOut)")
def EnumProjectMarkers(app, idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut):
    return _enum_markers(app.current, idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut)


@c_function("int EnumProjectMarkers2(ReaProject* proj, int idx, bool* isrgnOut, double* posOut, double* rgnendOut, const char** nameOut, int* markrgnindexnumberOut)")
def EnumProjectMarkers2(app, proj, idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut):
    return _enum_markers(_proj(app, proj), idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut)


@c_function("int EnumProjectMarkers3(ReaProject* proj, int idx, bool* isrgnOut, double* posOut, double* rgnendOut, const char** nameOut, int* markrgnindexnumberOut, int* colorOut)")
def EnumProjectMarkers3(app, proj, idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut, colorOut):
    return _enum_markers(_proj(app, proj), idx, isrgnOut, posOut, rgnendOut, nameOut, markrgnindexnumberOut, colorOut)


def _find_marker(project: Project, number: int, isrgn: bool) -> Marker | None:
    for marker in project.markers:
        if marker.number == number and marker.is_region == bool(isrgn):
            return marker
    return None


def _set_marker(app, proj, number, isrgn, pos, rgnend, name, color, flags):
    """An empty name leaves the name as it is unless flags&1 (SetProjectMarker4)."""
    project = _proj(app, proj)
    marker = _find_marker(project, number, isrgn)
    if marker is None:
        return False
    marker.position = pos
    marker.end = rgnend if isrgn else 0.0
    if name or flags & 1:
        marker.name = "" if flags & 1 else name
    if color is not None:
        marker.color = color
    project.changed()
    return True


@c_function("bool SetProjectMarker(int markrgnindexnumber, bool isrgn, double pos, double rgnend, const char* name)")
def SetProjectMarker(app, markrgnindexnumber, isrgn, pos, rgnend, name):
    return _set_marker(app, None, markrgnindexnumber, isrgn, pos, rgnend, name, None, 0)


@c_function("bool SetProjectMarker2(ReaProject* proj, int markrgnindexnumber, bool isrgn, double pos, double rgnend, const char* name)")
def SetProjectMarker2(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name):
    return _set_marker(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name, None, 0)


@c_function("bool SetProjectMarker3(ReaProject* proj, int markrgnindexnumber, bool isrgn, double pos, double rgnend, const char* name, int color)")
def SetProjectMarker3(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name, color):
    return _set_marker(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name, color, 0)


@c_function("bool SetProjectMarker4(ReaProject* proj, int markrgnindexnumber, bool isrgn, double pos, double rgnend, const char* name, int color, int flags)")
def SetProjectMarker4(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name, color, flags):
    return _set_marker(app, proj, markrgnindexnumber, isrgn, pos, rgnend, name, color, flags)


@c_function("bool SetProjectMarkerByIndex2(ReaProject* proj, int markrgn_idx, bool isrgn, double pos, double rgnend, int IDnumber, const char* name, int color, int flags)")
def SetProjectMarkerByIndex2(app, proj, markrgn_idx, isrgn, pos, rgnend, IDnumber, name, color, flags):
    project = _proj(app, proj)
    markers = project.sorted_markers()
    if not 0 <= markrgn_idx < len(markers):
        return False
    marker = markers[markrgn_idx]
    marker.is_region, marker.position, marker.end = bool(isrgn), pos, rgnend if isrgn else 0.0
    if IDnumber >= 0:
        marker.number = IDnumber
    if name or flags & 1:
        marker.name = "" if flags & 1 else name
    marker.color = color
    project.changed()
    return True


@c_function("bool SetProjectMarkerByIndex(ReaProject* proj, int markrgnidx, bool isrgn, double pos, double rgnend, int IDnumber, const char* name, int color)")
def SetProjectMarkerByIndex(app, proj, markrgnidx, isrgn, pos, rgnend, IDnumber, name, color):
    return SetProjectMarkerByIndex2(app, proj, markrgnidx, isrgn, pos, rgnend, IDnumber, name, color, 0)


@c_function("bool DeleteProjectMarker(ReaProject* proj, int markrgnindexnumber, bool isrgn)")
def DeleteProjectMarker(app, proj, markrgnindexnumber, isrgn):
    project = _proj(app, proj)
    marker = _find_marker(project, markrgnindexnumber, isrgn)
    if marker is None:
        return False
    project.markers.remove(marker)
    project.changed()
    return True


@c_function("bool DeleteProjectMarkerByIndex(ReaProject* proj, int markrgnidx)")
def DeleteProjectMarkerByIndex(app, proj, markrgnidx):
    project = _proj(app, proj)
    markers = project.sorted_markers()
    if not 0 <= markrgnidx < len(markers):
        return False
    project.markers.remove(markers[markrgnidx])
    project.changed()
    return True


@c_function("void GetLastMarkerAndCurRegion(ReaProject* proj, double time, int* markeridxOut, int* regionidxOut)")
def GetLastMarkerAndCurRegion(app, proj, time, markeridxOut, regionidxOut):
    """Enumeration indices of the last marker at or before `time` and of the region
    containing it, -1 for none."""
    markers = _proj(app, proj).sorted_markers()
    last_marker = current_region = -1
    for index, marker in enumerate(markers):
        if not marker.is_region and marker.position <= time + EPSILON:
            last_marker = index
        if marker.is_region and marker.position <= time + EPSILON and time < marker.end - EPSILON:
            current_region = index
    if markeridxOut is not None:
        markeridxOut.value = last_marker
    if regionidxOut is not None:
        regionidxOut.value = current_region


@c_function("void GoToMarker(ReaProject* proj, int marker_index, bool use_timeline_order)")
def GoToMarker(app, proj, marker_index, use_timeline_order):
    project = _proj(app, proj)
    markers = [m for m in project.sorted_markers() if not m.is_region]
    if use_timeline_order:
        target = markers[marker_index - 1] if 1 <= marker_index <= len(markers) else None
    else:
        target = next((m for m in markers if m.number == marker_index), None)
    if target is not None:
        project.cursor = target.position


@c_function("void GoToRegion(ReaProject* proj, int region_index, bool use_timeline_order)")
def GoToRegion(app, proj, region_index, use_timeline_order):
    project = _proj(app, proj)
    regions = [m for m in project.sorted_markers() if m.is_region]
    if use_timeline_order:
        target = regions[region_index - 1] if 1 <= region_index <= len(regions) else None
    else:
        target = next((m for m in regions if m.number == region_index), None)
    if target is not None:
        project.cursor = target.position


# -- tempo and time signature --------------------------------------------------------------------


@c_function("double Master_GetTempo()")
def Master_GetTempo(app):
    """The tempo at the edit cursor (nothing plays here)."""
    project = app.current
    return project.tempo.segment_at_time(project.cursor)["bpm"]


@c_function("void SetCurrentBPM(ReaProject* __proj, double bpm, bool wantUndo)")
def SetCurrentBPM(app, __proj, bpm, wantUndo):
    """Changes the tempo in effect at the edit cursor: the project tempo, or the tempo
    marker in force there."""
    project = _proj(app, __proj)
    markers = [m for m in project.tempo.markers if m.time <= project.cursor + EPSILON]
    if markers:
        markers[-1].bpm = bpm
    else:
        project.tempo.bpm = bpm
    project.changed()
    if wantUndo:
        project.add_undo_point("Change tempo")


@c_function("void GetProjectTimeSignature2(ReaProject* proj, double* bpmOut, double* bpiOut)")
def GetProjectTimeSignature2(app, proj, bpmOut, bpiOut):
    """The project settings' tempo and numerator, not the tempo map's."""
    tempo = _proj(app, proj).tempo
    if bpmOut is not None:
        bpmOut.value = tempo.bpm
    if bpiOut is not None:
        bpiOut.value = float(tempo.num)


@c_function("void GetProjectTimeSignature(double* bpmOut, double* bpiOut)")
def GetProjectTimeSignature(app, bpmOut, bpiOut):
    GetProjectTimeSignature2(app, None, bpmOut, bpiOut)


@c_function("double TimeMap2_GetDividedBpmAtTime(ReaProject* proj, double time)")
def TimeMap2_GetDividedBpmAtTime(app, proj, time):
    """The effective BPM, i.e. twice the quarter-note tempo in /8 signatures."""
    segment = _proj(app, proj).tempo.segment_at_time(time)
    return segment["bpm"] * segment["denom"] / 4.0


@c_function("double TimeMap_GetDividedBpmAtTime(double time)")
def TimeMap_GetDividedBpmAtTime(app, time):
    return TimeMap2_GetDividedBpmAtTime(app, None, time)


@c_function("void TimeMap_GetTimeSigAtTime(ReaProject* proj, double time, int* timesig_numOut, int* timesig_denomOut, double* tempoOut)")
def TimeMap_GetTimeSigAtTime(app, proj, time, timesig_numOut, timesig_denomOut, tempoOut):
    segment = _proj(app, proj).tempo.segment_at_time(time)
    if timesig_numOut is not None:
        timesig_numOut.value = segment["num"]
    if timesig_denomOut is not None:
        timesig_denomOut.value = segment["denom"]
    if tempoOut is not None:
        tempoOut.value = segment["bpm"]


@c_function("double TimeMap2_timeToBeats(ReaProject* proj, double tpos, int* measuresOutOptional, int* cmlOutOptional, double* fullbeatsOutOptional, int* cdenomOutOptional)")
def TimeMap2_timeToBeats(app, proj, tpos, measuresOut, cmlOut, fullbeatsOut, cdenomOut):
    """Beats since the measure start when measures is asked for, else the full beat count."""
    beats, measure, cml, full_beats, denom = _proj(app, proj).tempo.time_to_beats(tpos)
    if measuresOut is not None:
        measuresOut.value = measure
    if cmlOut is not None:
        cmlOut.value = cml
    if fullbeatsOut is not None:
        fullbeatsOut.value = full_beats
    if cdenomOut is not None:
        cdenomOut.value = denom
    return beats if measuresOut is not None else full_beats


@c_function("double TimeMap2_beatsToTime(ReaProject* proj, double tpos, const int* measuresInOptional)")
def TimeMap2_beatsToTime(app, proj, tpos, measuresInOptional):
    measure = measuresInOptional.value if measuresInOptional is not None else None
    return _proj(app, proj).tempo.beats_to_time(tpos, measure)


@c_function("double TimeMap2_timeToQN(ReaProject* proj, double tpos)")
def TimeMap2_timeToQN(app, proj, tpos):
    return _proj(app, proj).tempo.time_to_qn(tpos)


@c_function("double TimeMap2_QNToTime(ReaProject* proj, double qn)")
def TimeMap2_QNToTime(app, proj, qn):
    return _proj(app, proj).tempo.qn_to_time(qn)


@c_function("double TimeMap_timeToQN(double tpos)")
def TimeMap_timeToQN(app, tpos):
    return app.current.tempo.time_to_qn(tpos)


@c_function("double TimeMap_QNToTime(double qn)")
def TimeMap_QNToTime(app, qn):
    return app.current.tempo.qn_to_time(qn)


@c_function("double TimeMap_timeToQN_abs(ReaProject* proj, double tpos)")
def TimeMap_timeToQN_abs(app, proj, tpos):
    return _proj(app, proj).tempo.time_to_qn(tpos)


@c_function("double TimeMap_QNToTime_abs(ReaProject* proj, double qn)")
def TimeMap_QNToTime_abs(app, proj, qn):
    return _proj(app, proj).tempo.qn_to_time(qn)


@c_function("double TimeMap_GetMeasureInfo(ReaProject* proj, int measure, double* qn_startOut, double* qn_endOut, int* timesig_numOut, int* timesig_denomOut, double* tempoOut)")
def TimeMap_GetMeasureInfo(app, proj, measure, qn_startOut, qn_endOut, timesig_numOut, timesig_denomOut, tempoOut):
    """Start time of 0-based `measure`, with its QN span, time signature and tempo."""
    tempo = _proj(app, proj).tempo
    start = tempo.beats_to_time(0.0, measure)
    segment = tempo.segment_at_time(start)
    qn_start = tempo.time_to_qn(start)
    for ref, value in ((qn_startOut, qn_start), (qn_endOut, qn_start + segment["num"] * 4.0 / segment["denom"]),
                       (timesig_numOut, segment["num"]), (timesig_denomOut, segment["denom"]), (tempoOut, segment["bpm"])):
        if ref is not None:
            ref.value = value
    return start


@c_function("int CountTempoTimeSigMarkers(ReaProject* proj)")
def CountTempoTimeSigMarkers(app, proj):
    return len(_proj(app, proj).tempo.markers)


@c_function("bool GetTempoTimeSigMarker(ReaProject* proj, int ptidx, double* timeposOut, int* measureposOut, double* beatposOut, double* bpmOut, int* timesig_numOut, int* timesig_denomOut, bool* lineartempoOut)")
def GetTempoTimeSigMarker(app, proj, ptidx, timeposOut, measureposOut, beatposOut, bpmOut, timesig_numOut, timesig_denomOut, lineartempoOut):
    """timesig_num and timesig_denom are 0 for a marker that changes only the tempo."""
    tempo = _proj(app, proj).tempo
    if not 0 <= ptidx < len(tempo.markers):
        return False
    marker = tempo.markers[ptidx]
    beats, measure, _cml, _full, _denom = tempo.time_to_beats(marker.time)
    for ref, value in ((timeposOut, marker.time), (measureposOut, measure), (beatposOut, beats), (bpmOut, marker.bpm),
                       (timesig_numOut, marker.num), (timesig_denomOut, marker.denom), (lineartempoOut, marker.linear)):
        if ref is not None:
            ref.value = value
    return True


@c_function("bool SetTempoTimeSigMarker(ReaProject* proj, int ptidx, double timepos, int measurepos, double beatpos, double bpm, int timesig_num, int timesig_denom, bool lineartempo)")
def SetTempoTimeSigMarker(app, proj, ptidx, timepos, measurepos, beatpos, bpm, timesig_num, timesig_denom, lineartempo):
    """Give timepos (measurepos = beatpos = -1) or measurepos and beatpos (timepos = -1);
    ptidx -1 inserts a marker."""
    project = _proj(app, proj)
    tempo = project.tempo
    if timepos < 0:
        timepos = tempo.beats_to_time(beatpos, measurepos)
    marker = TempoMarker(timepos, bpm, timesig_num, timesig_denom, bool(lineartempo))
    if ptidx == -1:
        tempo.markers.append(marker)
    elif 0 <= ptidx < len(tempo.markers):
        tempo.markers[ptidx] = marker
    else:
        return False
    tempo.sort()
    project.changed()
    return True


@c_function("bool AddTempoTimeSigMarker(ReaProject* proj, double timepos, double bpm, int timesig_num, int timesig_denom, bool lineartempochange)")
def AddTempoTimeSigMarker(app, proj, timepos, bpm, timesig_num, timesig_denom, lineartempochange):
    return SetTempoTimeSigMarker(app, proj, -1, timepos, -1, -1.0, bpm, timesig_num, timesig_denom, lineartempochange)


@c_function("bool DeleteTempoTimeSigMarker(ReaProject* project, int markerindex)")
def DeleteTempoTimeSigMarker(app, project, markerindex):
    project = _proj(app, project)
    if not 0 <= markerindex < len(project.tempo.markers):
        return False
    del project.tempo.markers[markerindex]
    project.changed()
    return True


@c_function("int FindTempoTimeSigMarker(ReaProject* project, double time)")
def FindTempoTimeSigMarker(app, project, time):
    """Index of the marker in force at `time`, -1 before the first."""
    found = -1
    for index, marker in enumerate(_proj(app, project).tempo.markers):
        if marker.time <= time + EPSILON:
            found = index
    return found


# -- colors ------------------------------------------------------------------------------------
# Native colors on Linux (SWELL) are 0xRRGGBB; on Windows they are 0xBBGGRR.


@c_function("int ColorToNative(int r, int g, int b)")
def ColorToNative(app, r, g, b):
    return ((r & 0xFF) << 16) | ((g & 0xFF) << 8) | (b & 0xFF)


@c_function("void ColorFromNative(int col, int* rOut, int* gOut, int* bOut)")
def ColorFromNative(app, col, rOut, gOut, bOut):
    rOut.value, gOut.value, bOut.value = (col >> 16) & 0xFF, (col >> 8) & 0xFF, col & 0xFF


@c_function("void format_timestr(double tpos, char* buf, int buf_sz)")
def format_timestr(app, tpos, buf, buf_sz):
    """Time as the ruler shows it by default: m:ss.mmm."""
    minutes, seconds = divmod(max(0.0, tpos), 60.0)
    buf.write(f"{int(minutes)}:{seconds:06.3f}")
