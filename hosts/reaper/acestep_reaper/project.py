"""Everything the actions read from or write to REAPER, through python-reapy.

The calls are REAPER's API (reapy.reascript_api), so they run inside REAPER and, via
reapy's distant API, from outside it; `reapy.inside_reaper()` batches a group of
calls into one round trip when distant. Pointers are REAPER's strings
("(MediaItem*)0x..."); reapy passes them on unchecked, so every pointer kept across
ticks is validated before use (the user may delete a track or close the project).
"""

from __future__ import annotations

import ctypes
import urllib.request
from dataclasses import dataclass

import reapy
from reapy import reascript_api as RPR

from acestep_core.errors import InvalidRequest
from acestep_core.request import TIME_SIGNATURES

TITLE = "ACE-Step"
BUFFER = 4096
UNDO_ALL = -1  # Undo_EndBlock's extraflags: every kind of state may have changed
BUILD_MISSING_PEAKS = 40047  # "Peaks: Build any missing peaks", so new takes draw


def is_null(pointer: str | None) -> bool:
    return not pointer or pointer.endswith("0x0000000000000000")


def _address(pointer: str) -> tuple[int, str]:
    kind, digits = pointer.split(")0x")
    return int(digits, 16), kind[1:]


def is_alive(project: str, pointer: str | None) -> bool:
    """True when `pointer` still names a live object of `project` (and the project is open)."""
    if is_null(pointer) or is_null(project):
        return False
    project_address, _ = _address(project)
    if not RPR.ValidatePtr(project_address, "ReaProject*"):
        return False
    address, kind = _address(pointer)
    return bool(RPR.ValidatePtr2(project, address, kind))


# -- reading the edit context --------------------------------------------------------------


@dataclass
class EditContext:
    project: str
    rpp_path: str  # "" while the project is unsaved
    media_folder: str  # REAPER's recording path for the project (GetProjectPathEx)
    track: str | None  # the first selected track
    cursor: float
    selection: tuple[float, float] | None
    bpm: float  # quarter notes per minute at the cursor
    time_signature: str | None  # "4/4" when the model knows the project's signature

    @property
    def saved(self) -> bool:
        return bool(self.rpp_path)


def read_edit_context() -> EditContext:
    with reapy.inside_reaper():
        found = RPR.EnumProjects(-1, "", BUFFER)
        project, rpp_path = found[0], found[2]
        track = RPR.GetSelectedTrack(project, 0)
        cursor = RPR.GetCursorPositionEx(project)
        loop = RPR.GetSet_LoopTimeRange2(project, False, False, 0.0, 0.0, False)
        signature = RPR.TimeMap_GetTimeSigAtTime(project, cursor, 0, 0, 0.0)
        media_folder = RPR.GetProjectPathEx(project, "", BUFFER)[1]
    start, end = loop[3], loop[4]
    time_signature = f"{signature[2]}/{signature[3]}"
    return EditContext(
        project=project,
        rpp_path=rpp_path,
        media_folder=media_folder,
        track=None if is_null(track) else track,
        cursor=cursor,
        selection=(start, end) if end > start else None,
        bpm=signature[4],
        time_signature=time_signature if time_signature in TIME_SIGNATURES else None,
    )


def tempo_at(project: str, time: float) -> tuple[float, str | None]:
    signature = RPR.TimeMap_GetTimeSigAtTime(project, float(time), 0, 0, 0.0)
    time_signature = f"{signature[2]}/{signature[3]}"
    return signature[4], time_signature if time_signature in TIME_SIGNATURES else None


# -- dialogs -----------------------------------------------------------------------------------


def ask(title: str, fields: list[tuple[str, str]]) -> list[str] | None:
    """GetUserInputs with one field per (caption, default); None when the user cancels.
    Fields are separated by newlines, which a field cannot hold, so prompts keep commas."""
    captions = ",".join([caption for caption, _ in fields] + ["extrawidth=250", "separator=\n"])
    defaults = "\n".join(default.replace("\n", " ") for _, default in fields)
    result = RPR.GetUserInputs(title, len(fields), captions, defaults, BUFFER)
    if not result[0]:
        return None
    values = result[4].split("\n")
    return (values + [""] * len(fields))[: len(fields)]


def message(text: str, title: str = TITLE) -> None:
    RPR.ShowMessageBox(text, title, 0)


def ask_until_valid(title: str, fields: list[tuple[str, str]], parse):
    """Show the dialog until `parse(values)` accepts it; None when the user cancels.
    A refused value is explained in a message box and the dialog comes back filled in."""
    while True:
        values = ask(title, fields)
        if values is None:
            return None
        try:
            return parse(values)
        except InvalidRequest as error:
            lines = [f"- {p.message}" for p in error.problems]
            message("Some values need changing:\n\n" + "\n".join(lines) + "\n\nChange them and try again.")
            fields = [(caption, value) for (caption, _), value in zip(fields, values)]


def console(text: str) -> None:
    RPR.ShowConsoleMsg(text if text.endswith("\n") else text + "\n")


def get_state(key: str, section: str) -> str:
    return RPR.GetExtState(section, key)


def set_state(key: str, value: str, section: str, persist: bool = False) -> None:
    if value:
        RPR.SetExtState(section, key, value, persist)
    else:
        RPR.DeleteExtState(section, key, persist)


# -- tracks and progress placeholders ----------------------------------------------------------


def find_track(project: str, name: str) -> str | None:
    with reapy.inside_reaper():
        for index in range(RPR.CountTracks(project)):
            track = RPR.GetTrack(project, index)
            if RPR.GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3].strip().lower() == name.lower():
                return track
    return None


def add_track(project: str, name: str) -> str:
    """A new track at the end of `project`."""
    with reapy.inside_reaper():
        return insert_track(project, RPR.CountTracks(project), name)


def insert_track(project: str, index: int, name: str) -> str:
    """A new track at 0-based `index` of `project` (InsertTrackAtIndex works on the current
    project, so the target project is made current for the call)."""
    with reapy.inside_reaper():
        current = RPR.EnumProjects(-1, "", 0)[0]
        if current != project:
            RPR.SelectProjectInstance(project)
        RPR.InsertTrackAtIndex(index, True)
        track = RPR.GetTrack(project, index)
        RPR.GetSetMediaTrackInfo_String(track, "P_NAME", name, True)
        if current != project:
            RPR.SelectProjectInstance(current)
        RPR.TrackList_AdjustWindows(False)
    return track


def delete_track_if_empty(project: str, track: str | None) -> None:
    with reapy.inside_reaper():
        if is_alive(project, track) and RPR.CountTrackMediaItems(track) == 0:
            RPR.DeleteTrack(track)


@dataclass
class Placeholder:
    """An empty item whose take name shows progress ("ACE-Step 40%") where the music will go."""

    item: str
    take: str
    label: str = ""


def add_placeholder(project: str, track: str, position: float, length: float, label: str) -> Placeholder:
    with reapy.inside_reaper():
        item = RPR.AddMediaItemToTrack(track)
        RPR.SetMediaItemInfo_Value(item, "D_POSITION", float(position))
        RPR.SetMediaItemInfo_Value(item, "D_LENGTH", float(length))
        take = RPR.AddTakeToMediaItem(item)
        RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", label, True)
        RPR.UpdateArrange()
    return Placeholder(item, take, label)


def label_placeholder(project: str, placeholder: Placeholder, label: str) -> None:
    """Rename the placeholder's take when the text changed (a deleted placeholder is left alone)."""
    if label == placeholder.label:
        return
    placeholder.label = label
    with reapy.inside_reaper():
        if is_alive(project, placeholder.item):
            RPR.GetSetMediaItemTakeInfo_String(placeholder.take, "P_NAME", label, True)
            RPR.UpdateArrange()


def remove_placeholder(project: str, placeholder: Placeholder) -> None:
    with reapy.inside_reaper():
        if is_alive(project, placeholder.item):
            RPR.DeleteTrackMediaItem(RPR.GetMediaItem_Track(placeholder.item), placeholder.item)
            RPR.UpdateArrange()


# -- placing results ---------------------------------------------------------------------------


@dataclass
class TakeFile:
    path: str
    name: str


@dataclass
class Cue:
    """One item to put on the timeline. `loop_source` sets the item's Loop source
    (B_LOOPSRC; None leaves REAPER's default for new items); `start_offset` is where in
    its file each take starts (D_STARTOFFS), in seconds."""

    position: float
    length: float
    takes: list[TakeFile]
    notes: str
    request_json: str = ""
    fade_in: float = 0.0
    fade_out: float = 0.0
    loop_source: bool | None = None
    start_offset: float = 0.0
    playrate: float = 1.0  # each take's D_PLAYRATE (an aligned copy of an item keeps its rate)


@dataclass
class TrackLane:
    """A track to make, and the cues on it."""

    name: str
    cues: list[Cue]
    muted: bool = False


class UndoBlock:
    """Undo_BeginBlock2/Undo_EndBlock2 around a batch of edits, with UI refresh held."""

    def __init__(self, project: str, label: str):
        self.project, self.label = project, label

    def __enter__(self):
        RPR.Undo_BeginBlock2(self.project)
        RPR.PreventUIRefresh(1)
        return self

    def __exit__(self, *exc):
        RPR.PreventUIRefresh(-1)
        RPR.Undo_EndBlock2(self.project, self.label, UNDO_ALL)
        RPR.UpdateArrange()
        return False


def _add_takes(item: str, takes: list[TakeFile]) -> list[str]:
    added = []
    for take_file in takes:
        source = RPR.PCM_Source_CreateFromFile(take_file.path)
        if is_null(source):
            raise OSError(f"REAPER could not open {take_file.path}")
        take = RPR.AddTakeToMediaItem(item)
        RPR.SetMediaItemTake_Source(take, source)
        RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", take_file.name, True)
        added.append(take)
    return added


def _write_cue(track: str, cue: Cue) -> str:
    item = RPR.AddMediaItemToTrack(track)
    try:
        RPR.SetMediaItemInfo_Value(item, "D_POSITION", float(cue.position))
        RPR.SetMediaItemInfo_Value(item, "D_LENGTH", float(cue.length))
        RPR.SetMediaItemInfo_Value(item, "D_FADEINLEN", float(cue.fade_in))
        RPR.SetMediaItemInfo_Value(item, "D_FADEOUTLEN", float(cue.fade_out))
        if cue.loop_source is not None:
            RPR.SetMediaItemInfo_Value(item, "B_LOOPSRC", 1.0 if cue.loop_source else 0.0)
        takes = _add_takes(item, cue.takes)
        for take in takes:
            if cue.start_offset:
                RPR.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", float(cue.start_offset))
            if cue.playrate != 1.0:
                RPR.SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", float(cue.playrate))
        RPR.SetActiveTake(takes[0])
        RPR.GetSetMediaItemInfo_String(item, "P_NOTES", cue.notes, True)
        if cue.request_json:
            RPR.GetSetMediaItemInfo_String(item, "P_EXT:acestep-dcc", cue.request_json, True)
    except Exception:
        RPR.DeleteTrackMediaItem(track, item)  # nothing half-made
        raise
    return item


def place_cues(project: str, track: str | None, new_track_name: str, cues: list[Cue], undo_label: str) -> tuple[str, list[str]]:
    """Put every cue on `track` (a new track named new_track_name when it is gone), in
    one undo block. Returns the track and the new items."""
    with reapy.inside_reaper():
        with UndoBlock(project, undo_label):
            if not is_alive(project, track):
                track = add_track(project, new_track_name)
            items = []
            try:
                for cue in cues:
                    items.append(_write_cue(track, cue))
            except Exception:
                for item in items:
                    RPR.DeleteTrackMediaItem(track, item)
                raise
            RPR.Main_OnCommandEx(BUILD_MISSING_PEAKS, 0, project)
    return track, items


def place_lanes(project: str, first_track: str | None, lanes: list[TrackLane], undo_label: str) -> list[str]:
    """Each lane on its own track, stacked: the first on `first_track` (renamed; a new
    track at the end when it is gone), the others new tracks right below it; in one undo
    block. Returns the tracks, in lane order."""
    with reapy.inside_reaper():
        with UndoBlock(project, undo_label):
            if is_alive(project, first_track):
                RPR.GetSetMediaTrackInfo_String(first_track, "P_NAME", lanes[0].name, True)
            else:
                first_track = add_track(project, lanes[0].name)
            below = int(RPR.GetMediaTrackInfo_Value(first_track, "IP_TRACKNUMBER"))  # 1-based: the next index
            tracks = [first_track] + [insert_track(project, below + k, lane.name) for k, lane in enumerate(lanes[1:])]
            items: list[tuple[str, str]] = []
            try:
                for track, lane in zip(tracks, lanes):
                    RPR.SetMediaTrackInfo_Value(track, "B_MUTE", 1.0 if lane.muted else 0.0)
                    items += [(track, _write_cue(track, cue)) for cue in lane.cues]
            except Exception:  # nothing half-made
                for track, item in items:
                    RPR.DeleteTrackMediaItem(track, item)
                for track in tracks[1:]:
                    RPR.DeleteTrack(track)
                raise
            RPR.Main_OnCommandEx(BUILD_MISSING_PEAKS, 0, project)
    return tracks


def place_stem_folder(project: str, item: str, folder_name: str, lanes: list[TrackLane], undo_label: str) -> list[str]:
    """A folder track named `folder_name` right below `item`'s track, one child track per
    lane, and `item` muted, in one undo block. The item's track keeps its place in any
    folder it closes: the new folder closes it instead. Returns [folder, *children]."""
    with reapy.inside_reaper():
        if not is_alive(project, item):
            raise LookupError("the item was deleted")
        with UndoBlock(project, undo_label):
            source_track = RPR.GetMediaItem_Track(item)
            below = int(RPR.GetMediaTrackInfo_Value(source_track, "IP_TRACKNUMBER"))  # 1-based: the next index
            depth = int(RPR.GetMediaTrackInfo_Value(source_track, "I_FOLDERDEPTH"))
            names = [folder_name] + [lane.name for lane in lanes]
            tracks = [insert_track(project, below + k, name) for k, name in enumerate(names)]
            items: list[tuple[str, str]] = []
            try:
                for track, lane in zip(tracks[1:], lanes):
                    items += [(track, _write_cue(track, cue)) for cue in lane.cues]
            except Exception:  # nothing half-made
                for track, new_item in items:
                    RPR.DeleteTrackMediaItem(track, new_item)
                for track in tracks:
                    RPR.DeleteTrack(track)
                raise
            closes = min(depth, 0)  # folders the source track closed, now closed by the last stem
            if closes:
                RPR.SetMediaTrackInfo_Value(source_track, "I_FOLDERDEPTH", 0.0)
            RPR.SetMediaTrackInfo_Value(tracks[0], "I_FOLDERDEPTH", 1.0)
            for track in tracks[1:-1]:
                RPR.SetMediaTrackInfo_Value(track, "I_FOLDERDEPTH", 0.0)
            RPR.SetMediaTrackInfo_Value(tracks[-1], "I_FOLDERDEPTH", float(-1 + closes))
            RPR.SetMediaItemInfo_Value(item, "B_MUTE", 1.0)
            RPR.Main_OnCommandEx(BUILD_MISSING_PEAKS, 0, project)
    return tracks


def place_track_below(project: str, item: str, lane: TrackLane, undo_label: str) -> str:
    """A new track right below `item`'s track holding `lane`'s cues, in one undo block. The
    item's track keeps its place in any folder it closes: the new track closes it instead.
    Returns the new track."""
    with reapy.inside_reaper():
        if not is_alive(project, item):
            raise LookupError("the item was deleted")
        with UndoBlock(project, undo_label):
            source_track = RPR.GetMediaItem_Track(item)
            below = int(RPR.GetMediaTrackInfo_Value(source_track, "IP_TRACKNUMBER"))  # 1-based: the next index
            depth = int(RPR.GetMediaTrackInfo_Value(source_track, "I_FOLDERDEPTH"))
            track = insert_track(project, below, lane.name)
            items: list[str] = []
            try:
                items += [_write_cue(track, cue) for cue in lane.cues]
            except Exception:  # nothing half-made
                for new_item in items:
                    RPR.DeleteTrackMediaItem(track, new_item)
                RPR.DeleteTrack(track)
                raise
            if depth < 0:  # the folders the source track closed, now closed by the new one
                RPR.SetMediaTrackInfo_Value(source_track, "I_FOLDERDEPTH", 0.0)
                RPR.SetMediaTrackInfo_Value(track, "I_FOLDERDEPTH", float(depth))
            RPR.Main_OnCommandEx(BUILD_MISSING_PEAKS, 0, project)
    return track


def add_takes_to_item(project: str, item: str, takes: list[TakeFile], notes: str, undo_label: str,
                      start_offset: float = 0.0) -> list[str]:
    """New takes at the end of `item`, the first of them active, notes replaced; each new
    take starts `start_offset` seconds into its file (D_STARTOFFS)."""
    with reapy.inside_reaper():
        if not is_alive(project, item):
            raise LookupError("the item was deleted")
        with UndoBlock(project, undo_label):
            added = _add_takes(item, takes)
            if start_offset:
                for take in added:
                    RPR.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", float(start_offset))
            RPR.SetActiveTake(added[0])
            RPR.GetSetMediaItemInfo_String(item, "P_NOTES", notes, True)
            RPR.Main_OnCommandEx(BUILD_MISSING_PEAKS, 0, project)
    return added


# -- the selected item -------------------------------------------------------------------------


@dataclass
class SelectedItem:
    item: str
    track: str
    position: float
    length: float
    notes: str
    request_json: str
    active_take_name: str
    active_source: str  # file of the active take, "" when it has none
    start_offset: float = 0.0  # where in that file the item starts (the take's D_STARTOFFS)
    playrate: float = 1.0  # the active take's D_PLAYRATE
    source_length: float = 0.0  # seconds in the active take's file (GetMediaSourceLength)
    loop_source: bool = False  # the item's B_LOOPSRC: its file repeats when the item is longer

    @property
    def end(self) -> float:
        return self.position + self.length

    def source_time(self, time: float) -> float:
        """Seconds into the active take's file that play at project time `time`."""
        return self.start_offset + (time - self.position) * self.playrate


def read_selected_item(project: str) -> SelectedItem | None:
    with reapy.inside_reaper():
        item = RPR.GetSelectedMediaItem(project, 0)
        if is_null(item):
            return None
        take = RPR.GetActiveTake(item)
        source = "" if is_null(take) else RPR.GetMediaItemTake_Source(take)
        return SelectedItem(
            item=item,
            track=RPR.GetMediaItem_Track(item),
            position=RPR.GetMediaItemInfo_Value(item, "D_POSITION"),
            length=RPR.GetMediaItemInfo_Value(item, "D_LENGTH"),
            notes=RPR.GetSetMediaItemInfo_String(item, "P_NOTES", "", False)[3],
            request_json=RPR.GetSetMediaItemInfo_String(item, "P_EXT:acestep-dcc", "", False)[3],
            active_take_name="" if is_null(take) else RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", "", False)[3],
            active_source="" if is_null(source) else RPR.GetMediaSourceFileName(source, "", BUFFER)[1],
            start_offset=0.0 if is_null(take) else RPR.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
            playrate=1.0 if is_null(take) else RPR.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
            source_length=0.0 if is_null(source) else RPR.GetMediaSourceLength(source, False)[0],
            loop_source=bool(RPR.GetMediaItemInfo_Value(item, "B_LOOPSRC")),
        )


# -- regions -----------------------------------------------------------------------------------


@dataclass
class Region:
    number: int
    name: str
    start: float
    end: float


def read_regions(project: str) -> list[Region]:
    """The project's regions with their names.

    REAPER's Python wrapper does not return EnumProjectMarkers' name (it packs the
    const char** as a pointer and hands the argument back), so inside REAPER the name
    is read by calling the C function with a real char** through reaper_python's
    function table; from outside, it comes from REAPER's web interface (the one
    reapy talks to), which lists regions by name.
    """
    if reapy.is_inside_reaper():
        return _regions_from_function_table(project)
    return _regions_from_web_interface(project)


def _regions_from_function_table(project: str) -> list[Region]:
    rpr = RPR._RPR  # the reaper_python module
    enum = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_int, *[ctypes.c_void_p] * 6)(rpr._ft["EnumProjectMarkers3"])
    project_address, _ = _address(project)
    is_region, start, end = ctypes.c_byte(), ctypes.c_double(), ctypes.c_double()
    name, number, color = ctypes.c_char_p(), ctypes.c_int(), ctypes.c_int()
    regions, index = [], 0
    while enum(project_address, index, ctypes.byref(is_region), ctypes.byref(start), ctypes.byref(end),
               ctypes.byref(name), ctypes.byref(number), ctypes.byref(color)):
        if is_region.value:
            regions.append(Region(number.value, (name.value or b"").decode("utf-8", "replace"), start.value, end.value))
        index += 1
    return regions


def _regions_from_web_interface(project: str) -> list[Region]:
    from reapy.tools.network import machines

    with reapy.inside_reaper():
        spans = []
        index = 0
        while True:
            found = RPR.EnumProjectMarkers3(project, index, 0, 0.0, 0.0, "", 0, 0)
            if not found[0]:
                break
            if found[3]:
                spans.append((found[7], found[4], found[5]))
            index += 1
    host = machines.get_selected_machine_host() or "localhost"
    url = f"http://{host}:{reapy.config.WEB_INTERFACE_PORT}/_/REGION"
    with urllib.request.urlopen(url, timeout=5) as reply:
        lines = reply.read().decode("utf-8", "replace").splitlines()
    names = {}
    for line in lines:
        fields = line.split("\t")
        if fields[0] == "REGION" and len(fields) >= 3:
            names[int(fields[2])] = _unescape(fields[1])
    return [Region(number, names.get(number, ""), start, end) for number, start, end in spans]


def _unescape(text: str) -> str:
    """The web interface writes \\, newline and tab as \\\\, \\n and \\t."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"n": "\n", "t": "\t"}.get(following, following))
        else:
            out.append(char)
    return "".join(out)
