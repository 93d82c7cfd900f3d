"""REAPER's side, in memory: the application, its projects and what lives in them.

This is the state the C API in capi.py reads and writes. It knows nothing about
Python ReaScript conventions (python_api.py adds those) and nothing about reapy.
Times are seconds, as everywhere in REAPER's API.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

APP_VERSION = "7.22/linux-x86_64"
FIRST_SCRIPT_COMMAND_ID = 60000  # REAPER hands out script command ids from a reserved range
EPSILON = 1e-9


class StandInFault(RuntimeError):
    """A call real REAPER would crash on or that a test did not prepare for.

    Raised from the RPR_* wrapper that made the call, and kept in ReaperApp.faults so
    the fixtures fail a test even when the caller went through _ft directly.
    """


def new_guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


# -- pointers ------------------------------------------------------------------------


class PointerTable:
    """Fake C pointers for the model's objects, in REAPER's 64-bit address space style."""

    def __init__(self) -> None:
        self._next = 0x0000000010A00000
        self.objects: dict[int, Any] = {}

    def register(self, obj: Any, ctype: str) -> None:
        self._next += 0x1F40
        obj.address = self._next
        obj.ctype = ctype
        self.objects[obj.address] = obj

    def forget(self, obj: Any) -> None:
        self.objects.pop(getattr(obj, "address", 0), None)

    def resolve(self, address: int | None, ctype: str) -> Any:
        """The object at `address`; None for NULL. A stale address is a fault: REAPER
        would dereference freed memory."""
        if not address:
            return None
        obj = self.objects.get(address)
        if obj is None:
            raise StandInFault(f"{ctype} 0x{address:016X} does not point at a live object (REAPER would crash)")
        if ctype not in ("void*", obj.ctype):
            raise StandInFault(f"pointer 0x{address:016X} is a {obj.ctype}, passed as {ctype}")
        return obj

    def is_valid(self, address: int, ctype: str) -> bool:
        obj = self.objects.get(address)
        return obj is not None and ctype in ("void*", obj.ctype)


# -- media -----------------------------------------------------------------------------


@dataclass
class MediaInfo:
    length: float
    channels: int
    sample_rate: int
    type: str  # what GetMediaSourceType reports: WAVE, FLAC, VORBIS, MP3...


def probe_media(path: str) -> MediaInfo | None:
    """Length and format of an audio file, or None when REAPER could not open it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _probe_wav(path)
    if head[:4] == b"fLaC":
        return _probe_flac(path)
    try:  # anything else REAPER reads through its own decoders; libsndfile stands in
        import soundfile
    except ImportError:
        return None
    try:
        info = soundfile.info(path)
    except Exception:
        return None
    kinds = {"OGG": "VORBIS", "MP3": "MP3", "AIFF": "AIFF", "FLAC": "FLAC", "WAV": "WAVE"}
    return MediaInfo(info.frames / info.samplerate, info.channels, info.samplerate, kinds.get(info.format, info.format))


def _probe_wav(path: str) -> MediaInfo | None:
    with open(path, "rb") as handle:
        handle.seek(12)
        fmt = None
        data_size = None
        while True:
            header = handle.read(8)
            if len(header) < 8:
                break
            chunk_id, size = struct.unpack("<4sI", header)
            if chunk_id == b"fmt ":
                fmt = struct.unpack("<HHIIHH", handle.read(16))
                handle.seek(size - 16 + (size & 1), os.SEEK_CUR)
            elif chunk_id == b"data":
                data_size = size
                handle.seek(size + (size & 1), os.SEEK_CUR)
            else:
                handle.seek(size + (size & 1), os.SEEK_CUR)
    if fmt is None or data_size is None:
        return None
    _format, channels, sample_rate, _byte_rate, block_align, _bits = fmt
    if not sample_rate or not block_align:
        return None
    return MediaInfo(data_size / block_align / sample_rate, channels, sample_rate, "WAVE")


def _probe_flac(path: str) -> MediaInfo | None:
    with open(path, "rb") as handle:
        handle.seek(4)
        block_header = handle.read(4)
        if len(block_header) < 4 or block_header[0] & 0x7F != 0:
            return None
        info = handle.read(34)
    if len(info) < 18:
        return None
    packed = int.from_bytes(info[10:18], "big")
    sample_rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total = packed & ((1 << 36) - 1)
    if not sample_rate:
        return None
    return MediaInfo(total / sample_rate, channels, sample_rate, "FLAC")


# -- project contents ------------------------------------------------------------------

TRACK_DEFAULTS = {
    "B_MUTE": 0.0, "B_PHASE": 0.0, "I_SOLO": 0.0, "I_FXEN": 1.0, "I_RECARM": 0.0,
    "I_RECINPUT": 0.0, "I_RECMODE": 0.0, "I_RECMON": 0.0, "I_FOLDERDEPTH": 0.0,
    "I_FOLDERCOMPACT": 0.0, "I_HEIGHTOVERRIDE": 0.0, "D_VOL": 1.0, "D_PAN": 0.0,
    "D_WIDTH": 1.0, "B_SHOWINMIXER": 1.0, "B_SHOWINTCP": 1.0, "B_MAINSEND": 1.0,
    "I_CUSTOMCOLOR": 0.0, "I_PERFFLAGS": 0.0, "C_BEATATTACHMODE": -1.0,
}
ITEM_DEFAULTS = {
    "B_MUTE": 0.0, "B_MUTE_ACTUAL": 0.0, "B_LOOPSRC": 1.0, "B_ALLTAKESPLAY": 0.0,
    "C_LOCK": 0.0, "D_VOL": 1.0, "D_SNAPOFFSET": 0.0, "D_FADEINLEN": 0.0,
    "D_FADEOUTLEN": 0.0, "D_FADEINDIR": 0.0, "D_FADEOUTDIR": 0.0, "D_FADEINLEN_AUTO": -1.0,
    "D_FADEOUTLEN_AUTO": -1.0, "C_FADEINSHAPE": 0.0, "C_FADEOUTSHAPE": 0.0,
    "I_GROUPID": 0.0, "I_CUSTOMCOLOR": 0.0, "C_BEATATTACHMODE": -1.0, "C_AUTOSTRETCH": 0.0,
    "F_FREEMODE_Y": 0.0, "F_FREEMODE_H": 1.0,
}
TAKE_DEFAULTS = {
    "D_STARTOFFS": 0.0, "D_VOL": 1.0, "D_PAN": 0.0, "D_PANLAW": -1.0, "D_PLAYRATE": 1.0,
    "D_PITCH": 0.0, "B_PPITCH": 1.0, "I_CHANMODE": 0.0, "I_PITCHMODE": -1.0,
    "I_CUSTOMCOLOR": 0.0,
}


class Source:
    def __init__(self, filename: str, info: MediaInfo):
        self.filename = filename
        self.info = info
        self.take: "Take | None" = None  # the take that owns this source
        self.address = 0
        self.ctype = "PCM_source*"


class Take:
    def __init__(self, item: "Item"):
        self.item = item
        self.name = ""
        self.source: Source | None = None
        self.values = dict(TAKE_DEFAULTS)
        self.ext: dict[str, str] = {}
        self.guid = new_guid()
        self.address = 0
        self.ctype = "MediaItem_Take*"


class Item:
    def __init__(self, track: "Track"):
        self.track = track
        self.position = 0.0
        self.length = 0.0
        self.selected = False
        self.takes: list[Take] = []
        self.active = -1  # index of the active take, -1 when the item has none
        self.values = dict(ITEM_DEFAULTS)
        self.notes = ""
        self.ext: dict[str, str] = {}
        self.guid = new_guid()
        self.created = 0  # creation order, to keep sorting stable
        self.address = 0
        self.ctype = "MediaItem*"

    @property
    def active_take(self) -> Take | None:
        return self.takes[self.active] if 0 <= self.active < len(self.takes) else None


class Track:
    def __init__(self, project: "Project", master: bool = False):
        self.project = project
        self.is_master = master
        self.name = ""
        self.selected = False
        self.items: list[Item] = []
        self.values = dict(TRACK_DEFAULTS)
        self.ext: dict[str, str] = {}
        self.guid = new_guid()
        self.address = 0
        self.ctype = "MediaTrack*"

    def sorted_items(self) -> list[Item]:
        # REAPER keeps a track's items in timeline order
        return sorted(self.items, key=lambda item: (item.position, item.created))


@dataclass
class Marker:
    """A marker or a region; `number` is the displayed ID (markrgnindexnumber)."""

    is_region: bool
    position: float
    end: float
    name: str
    number: int
    color: int = 0
    guid: str = field(default_factory=new_guid)
    created: int = 0


@dataclass
class TempoMarker:
    time: float
    bpm: float
    num: int = 0  # 0: the marker changes the tempo only
    denom: int = 0
    linear: bool = False


class TempoMap:
    """The project tempo (project settings) and its tempo/time signature markers.

    Tempos are quarter notes per minute, as REAPER stores them; a time signature
    marker starts a new measure. Linear ramps are kept but played as steps.
    """

    def __init__(self, bpm: float = 120.0, num: int = 4, denom: int = 4):
        self.bpm = bpm
        self.num = num
        self.denom = denom
        self.markers: list[TempoMarker] = []

    def sort(self) -> None:
        self.markers.sort(key=lambda marker: marker.time)

    def segments(self) -> list[dict]:
        """Each constant-tempo stretch: start time, start QN, bpm, time signature and the
        measure count (fractional) at its start."""
        segments = [{"time": 0.0, "qn": 0.0, "bpm": self.bpm, "num": self.num, "denom": self.denom, "measure": 0.0}]
        for marker in self.markers:
            previous = segments[-1]
            if marker.time <= EPSILON:  # a marker at the start replaces the project settings
                previous.update(bpm=marker.bpm)
                if marker.num:
                    previous.update(num=marker.num, denom=marker.denom)
                continue
            qn = previous["qn"] + (marker.time - previous["time"]) * previous["bpm"] / 60.0
            measure = previous["measure"] + (qn - previous["qn"]) / _measure_qn(previous)
            num, denom = previous["num"], previous["denom"]
            if marker.num:
                num, denom = marker.num, marker.denom
                measure = math.ceil(measure - 1e-6)
            segments.append({"time": marker.time, "qn": qn, "bpm": marker.bpm, "num": num, "denom": denom, "measure": measure})
        return segments

    def segment_at_time(self, time: float) -> dict:
        found = None
        for segment in self.segments():
            if segment["time"] <= time + EPSILON or found is None:
                found = segment
        return found

    def segment_at_qn(self, qn: float) -> dict:
        found = None
        for segment in self.segments():
            if segment["qn"] <= qn + EPSILON or found is None:
                found = segment
        return found

    def time_to_qn(self, time: float) -> float:
        segment = self.segment_at_time(time)
        return segment["qn"] + (time - segment["time"]) * segment["bpm"] / 60.0

    def qn_to_time(self, qn: float) -> float:
        segment = self.segment_at_qn(qn)
        return segment["time"] + (qn - segment["qn"]) * 60.0 / segment["bpm"]

    def time_to_beats(self, time: float) -> tuple[float, int, int, float, int]:
        """(beats since measure, measure index, measure length in beats, full beats, denominator);
        beats count the time signature's denominator notes."""
        segment = self.segment_at_time(time)
        qn = self.time_to_qn(time)
        beat_qn = 4.0 / segment["denom"]
        measures = segment["measure"] + (qn - segment["qn"]) / _measure_qn(segment)
        measure_index = math.floor(measures + 1e-9)
        beats_in_measure = (measures - measure_index) * segment["num"]
        if abs(beats_in_measure) < 1e-9:
            beats_in_measure = 0.0
        full_beats = qn / beat_qn
        return beats_in_measure, measure_index, segment["num"], full_beats, segment["denom"]

    def beats_to_time(self, beats: float, measure: int | None) -> float:
        if measure is None:
            return self.qn_to_time(beats * 4.0 / self.denom)
        # find the segment that holds the start of `measure`
        chosen = self.segments()[0]
        for segment in self.segments():
            if segment["measure"] <= measure + EPSILON:
                chosen = segment
        qn = chosen["qn"] + (measure - chosen["measure"]) * _measure_qn(chosen) + beats * 4.0 / chosen["denom"]
        return self.qn_to_time(qn)


def _measure_qn(segment: dict) -> float:
    return segment["num"] * 4.0 / segment["denom"]


@dataclass
class UndoPoint:
    """Undoing restores `before`, redoing restores `after`."""

    label: str
    before: dict
    after: dict


class Project:
    """One project tab."""

    def __init__(self, app: "ReaperApp", file_path: str | None = None):
        self.app = app
        self.file_path = file_path  # the .rpp, None while unsaved
        self.tracks: list[Track] = []
        self.master = Track(self, master=True)
        self.master.name = "MASTER"
        self.markers: list[Marker] = []
        self.tempo = TempoMap()
        self.cursor = 0.0
        self.time_selection = (0.0, 0.0)
        self.loop_points = (0.0, 0.0)
        self.repeat = False
        self.play_state = 0
        self.last_touched: Track | None = None
        self.record_path = ""  # RECORD_PATH; relative paths are under the project folder
        self.info_strings: dict[str, str] = {"PROJECT_TITLE": "", "PROJECT_AUTHOR": "", "RENDER_FILE": "", "RENDER_PATTERN": ""}
        self.info_values: dict[str, float] = {
            "PROJECT_SRATE": 48000.0, "PROJECT_SRATE_USE": 0.0, "RENDER_SETTINGS": 0.0,
            "RENDER_BOUNDSFLAG": 1.0, "RENDER_CHANNELS": 2.0, "RENDER_SRATE": 0.0,
            "RENDER_STARTPOS": 0.0, "RENDER_ENDPOS": 0.0, "RENDER_TAILFLAG": 0.0,
            "RENDER_TAILMS": 0.0, "RENDER_ADDTOPROJ": 0.0, "RENDER_DITHER": 0.0,
            "PROJECT_FRAMERATE": 30.0,
        }
        self.ext_state: dict[tuple[str, str], str] = {}
        self.notes = ""
        self.dirty = False
        self.change_count = 0
        self.undo_depth = 0
        self.undo_points: list[UndoPoint] = []
        self.redo_points: list[UndoPoint] = []
        self.base_state: dict = {}
        self._counter = itertools.count(1)
        app.pointers.register(self, "ReaProject*")
        app.pointers.register(self.master, "MediaTrack*")
        self.base_state = self.capture()

    # -- paths --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return os.path.basename(self.file_path) if self.file_path else ""

    @property
    def folder(self) -> str | None:
        return os.path.dirname(self.file_path) if self.file_path else None

    def recording_path(self) -> str:
        """GetProjectPathEx: where recorded and imported media go."""
        if not self.file_path:
            return self.app.default_record_path
        if self.record_path and os.path.isabs(self.record_path):
            return self.record_path
        return os.path.join(self.folder, self.record_path) if self.record_path else self.folder

    # -- changes and undo ---------------------------------------------------------

    def changed(self) -> None:
        self.dirty = True
        self.change_count += 1

    def next_order(self) -> int:
        return next(self._counter)

    def add_undo_point(self, label: str) -> None:
        """Record the project as it is now. Undoing it restores the state recorded last,
        so changes made with no undo point of their own go with it, as in REAPER."""
        before = self.undo_points[-1].after if self.undo_points else self.base_state
        self.undo_points.append(UndoPoint(label, before, self.capture()))
        self.redo_points.clear()
        self.dirty = True

    def undo(self) -> bool:
        if not self.undo_points:
            return False
        point = self.undo_points.pop()
        self.redo_points.append(point)
        self.restore(point.before)
        return True

    def redo(self) -> bool:
        if not self.redo_points:
            return False
        point = self.redo_points.pop()
        self.undo_points.append(point)
        self.restore(point.after)
        return True

    def capture(self) -> dict:
        """Everything an undo point restores: tracks, items, takes, markers, tempo."""
        return {
            "tracks": [_capture_track(track) for track in self.tracks],
            "master": _capture_track(self.master),
            "markers": [vars(marker).copy() for marker in self.markers],
            "tempo": {"bpm": self.tempo.bpm, "num": self.tempo.num, "denom": self.tempo.denom,
                      "markers": [vars(marker).copy() for marker in self.tempo.markers]},
        }

    def restore(self, state: dict) -> None:
        """Bring the project back to `state`, keeping the pointers of objects that still
        exist (matched by GUID) as REAPER does for tracks and items it can update."""
        pointers = self.app.pointers
        old_tracks = {track.guid: track for track in self.tracks}
        old_items = {item.guid: item for track in self.tracks for item in track.items}
        old_takes = {take.guid: take for item in old_items.values() for take in item.takes}
        kept: set[int] = set()
        tracks = []
        for track_state in state["tracks"]:
            track = old_tracks.get(track_state["guid"]) or Track(self)
            if not track.address:
                pointers.register(track, "MediaTrack*")
            _restore_track(self, track, track_state, old_items, old_takes, kept)
            tracks.append(track)
        _restore_track(self, self.master, state["master"], old_items, old_takes, kept)
        for old in [*old_tracks.values(), *old_items.values(), *old_takes.values()]:
            if id(old) not in kept:
                pointers.forget(old)
                if isinstance(old, Take) and old.source is not None:
                    pointers.forget(old.source)
        self.tracks = tracks
        self.markers = [Marker(**data) for data in state["markers"]]
        tempo = state["tempo"]
        self.tempo.bpm, self.tempo.num, self.tempo.denom = tempo["bpm"], tempo["num"], tempo["denom"]
        self.tempo.markers = [TempoMarker(**data) for data in tempo["markers"]]
        if self.last_touched is not None and id(self.last_touched) not in kept:
            self.last_touched = None
        self.changed()

    # -- lookups ------------------------------------------------------------------

    def all_items(self) -> list[Item]:
        return [item for track in self.tracks for item in track.sorted_items()]

    def selected_tracks(self, include_master: bool = False) -> list[Track]:
        tracks = ([self.master] if include_master and self.master.selected else []) + [t for t in self.tracks if t.selected]
        return tracks

    def sorted_markers(self) -> list[Marker]:
        return sorted(self.markers, key=lambda marker: (marker.position, marker.created))

    def free_marker_number(self, is_region: bool, wanted: int) -> int:
        used = {m.number for m in self.markers if m.is_region == is_region}
        if wanted >= 0 and wanted not in used:
            return wanted
        number = 1
        while number in used:
            number += 1
        return number

    def length(self) -> float:
        ends = [item.position + item.length for item in self.all_items()]
        ends += [m.end if m.is_region else m.position for m in self.markers]
        return max(ends, default=0.0)


def _capture_track(track: Track) -> dict:
    return {
        "guid": track.guid, "name": track.name, "selected": track.selected,
        "values": dict(track.values), "ext": dict(track.ext),
        "items": [
            {
                "guid": item.guid, "position": item.position, "length": item.length,
                "selected": item.selected, "active": item.active, "values": dict(item.values),
                "notes": item.notes, "ext": dict(item.ext), "created": item.created,
                "takes": [
                    {
                        "guid": take.guid, "name": take.name, "values": dict(take.values),
                        "ext": dict(take.ext),
                        "source": None if take.source is None else {
                            "filename": take.source.filename, "info": vars(take.source.info).copy(),
                        },
                    }
                    for take in item.takes
                ],
            }
            for item in track.items
        ],
    }


def _restore_track(project: Project, track: Track, state: dict, old_items: dict, old_takes: dict, kept: set) -> None:
    pointers = project.app.pointers
    kept.add(id(track))
    track.name, track.selected = state["name"], state["selected"]
    track.values, track.ext = dict(state["values"]), dict(state["ext"])
    track.guid = state["guid"]
    items = []
    for item_state in state["items"]:
        item = old_items.get(item_state["guid"]) or Item(track)
        if not item.address:
            pointers.register(item, "MediaItem*")
        kept.add(id(item))
        item.track = track
        for name in ("guid", "position", "length", "selected", "active", "notes", "created"):
            setattr(item, name, item_state[name])
        item.values, item.ext = dict(item_state["values"]), dict(item_state["ext"])
        takes = []
        for take_state in item_state["takes"]:
            take = old_takes.get(take_state["guid"]) or Take(item)
            if not take.address:
                pointers.register(take, "MediaItem_Take*")
            kept.add(id(take))
            take.item = item
            take.guid, take.name = take_state["guid"], take_state["name"]
            take.values, take.ext = dict(take_state["values"]), dict(take_state["ext"])
            source_state = take_state["source"]
            if source_state is None:
                if take.source is not None:
                    pointers.forget(take.source)
                take.source = None
            elif take.source is None or take.source.filename != source_state["filename"]:
                if take.source is not None:
                    pointers.forget(take.source)
                take.source = Source(source_state["filename"], MediaInfo(**source_state["info"]))
                take.source.take = take
                pointers.register(take.source, "PCM_source*")
            takes.append(take)
        item.takes = takes
        items.append(item)
    track.items = items


# -- the user in front of the screen ----------------------------------------------------


@dataclass
class Dialog:
    """A GetUserInputs dialog as REAPER showed it."""

    title: str
    captions: list[str]
    defaults: list[str]
    separator: str
    answer: list[str] | None = None


@dataclass
class MessageBox:
    message: str
    title: str
    type: int
    answer: int = 1


MESSAGE_BOX_DEFAULT_ANSWER = {0: 1, 1: 1, 2: 5, 3: 6, 4: 6, 5: 4}  # OK, OK, Ignore, Yes, Yes, Retry


class ScriptedUser:
    """Answers for the dialogs a test expects, and a record of every dialog shown.

    A dialog with no answer waiting is a fault: REAPER would sit there waiting for a
    person, and a test that did not plan for the dialog is wrong about the action.
    """

    def __init__(self) -> None:
        self.input_answers: list[Any] = []
        self.message_box_answers: list[int] = []
        self.dialogs: list[Dialog] = []
        self.message_boxes: list[MessageBox] = []

    def answer_inputs(self, answer: list[str] | Callable[[Dialog], list[str] | None] | None) -> None:
        """Queue the answer for the next GetUserInputs: a list of field values (OK), None
        (Cancel) or a function of the Dialog returning either."""
        self.input_answers.append(answer)

    def answer_message_box(self, button: int) -> None:
        self.message_box_answers.append(button)

    def user_inputs(self, dialog: Dialog) -> list[str] | None:
        self.dialogs.append(dialog)
        if not self.input_answers:
            raise StandInFault(f"GetUserInputs {dialog.title!r} appeared but the test queued no answer")
        answer = self.input_answers.pop(0)
        if callable(answer):
            answer = answer(dialog)
        if answer is not None:
            answer = [str(value) for value in answer]
            answer += dialog.defaults[len(answer):]
        dialog.answer = answer
        return answer

    def message_box(self, box: MessageBox) -> int:
        box.answer = self.message_box_answers.pop(0) if self.message_box_answers else MESSAGE_BOX_DEFAULT_ANSWER.get(box.type, 1)
        self.message_boxes.append(box)
        return box.answer


# -- the application ----------------------------------------------------------------------


@dataclass
class ScriptAction:
    """A ReaScript registered in the action list (reaper-kb.ini SCR line)."""

    command_id: int
    name: str  # the named command without its leading underscore, e.g. RS7f3c...
    description: str
    path: str
    section: int = 0

    @property
    def listed_name(self) -> str:
        """The name REAPER's Action list shows: a description beginning "Custom: " (what
        REAPER writes for a script loaded by hand) is shown as "Script: ...", any other as is."""
        if self.description.startswith("Custom: "):
            return "Script: " + self.description[len("Custom: "):]
        return self.description


class ReaperApp:
    """One running REAPER: resource folder, ExtState, project tabs, console, dialogs,
    actions and the scripts that run inside it."""

    def __init__(self, resource_path: str | os.PathLike, default_record_path: str | None = None):
        self.resource_path = str(resource_path)
        self.exe_path = os.path.join(self.resource_path, "reaper-exe")
        self.default_record_path = default_record_path or os.path.join(tempfile.gettempdir(), "REAPER Media")
        self.pointers = PointerTable()
        self.ext_state: dict[tuple[str, str], str] = {}
        self.persistent_ext_state: dict[tuple[str, str], str] = {}
        self.projects: list[Project] = []
        self.current: Project | None = None
        self.console: list[str] = []
        self.user = ScriptedUser()
        self.actions: dict[int, ScriptAction] = {}
        self.named_commands: dict[str, int] = {}
        self.next_command_id = FIRST_SCRIPT_COMMAND_ID
        self.faults: list[BaseException] = []
        self.unknown: list[str] = []  # parameter names and commands REAPER would ignore
        self.ui_refresh_prevented = 0
        self.arrange_updates = 0
        self.timeline_updates = 0
        self.commands_run: list[int] = []
        self.toggle_states: dict[tuple[int, int], int] = {}
        self.main_thread = threading.get_ident()
        self.scripts = None  # ScriptHost, attached by scripts.py
        self.web_ports: list[int] = []
        self.add_project()

    # -- projects ---------------------------------------------------------------------

    def add_project(self, file_path: str | None = None) -> Project:
        project = Project(self, file_path)
        self.projects.append(project)
        self.current = project
        return project

    def close_project(self, project: Project) -> None:
        self.projects.remove(project)
        for track in [*project.tracks, project.master]:
            for item in track.items:
                for take in item.takes:
                    if take.source is not None:
                        self.pointers.forget(take.source)
                    self.pointers.forget(take)
                self.pointers.forget(item)
            self.pointers.forget(track)
        self.pointers.forget(project)
        if not self.projects:
            self.add_project()
        if self.current is project:
            self.current = self.projects[-1]

    def project(self, proj: Project | None) -> Project:
        """REAPER reads a NULL ReaProject* as the current project."""
        return proj if proj is not None else self.current

    # -- ExtState ------------------------------------------------------------------

    def set_ext_state(self, section: str, key: str, value: str, persist: bool) -> None:
        self.ext_state[(section.lower(), key.lower())] = value
        if persist:
            self.persistent_ext_state[(section.lower(), key.lower())] = value
            from .config_files import write_extstate_ini
            write_extstate_ini(self)

    def get_ext_state(self, section: str, key: str) -> str | None:
        return self.ext_state.get((section.lower(), key.lower()))

    def delete_ext_state(self, section: str, key: str, persist: bool) -> None:
        self.ext_state.pop((section.lower(), key.lower()), None)
        if persist and self.persistent_ext_state.pop((section.lower(), key.lower()), None) is not None:
            from .config_files import write_extstate_ini
            write_extstate_ini(self)

    # -- actions -------------------------------------------------------------------

    def register_script(self, path: str, description: str, name: str | None = None, section: int = 0) -> ScriptAction:
        for action in self.actions.values():
            if action.path == path and action.section == section:
                return action
        name = name or "RS" + uuid.uuid4().hex[:40]
        command_id = self.next_command_id
        self.next_command_id += 1
        action = ScriptAction(command_id, name, description, path, section)
        self.actions[command_id] = action
        self.named_commands[name] = command_id
        return action

    def unregister_script(self, path: str, section: int = 0) -> bool:
        for command_id, action in list(self.actions.items()):
            if action.path == path and action.section == section:
                del self.actions[command_id]
                self.named_commands.pop(action.name, None)
                return True
        return False

    def fault(self, error: BaseException) -> None:
        self.faults.append(error)
