"""What each action does with the finished files, and how it shows progress meanwhile.

- NewItem: one item at the edit cursor, one take per candidate (the first active); a
  loop's item is exactly one loop long (the intro and one loop, with an intro).
- NewTakes: variations added as takes to an existing item.
- ScoreCues: one item per region on a "Score" track, with crossfades.
- IntensitySetTracks: a dynamic-music set on stacked new tracks at the edit cursor.

Loops and REAPER's "Loop source" (the item's B_LOOPSRC): REAPER repeats the take's
whole source file, from its first frame to its last, whenever the item is longer than
the file; a WAV's smpl loop is not consulted, and the take's start offset only moves
where the first pass begins. A looped FLAC or Ogg file is exactly the loop, so Loop
source repeats it sample-exactly and is turned on. A looped WAV carries one guard frame
after the loop's end (a copy of its first frame, which Godot needs for a seamless
wrap), so Loop source would replay that frame on every pass and drift a sample per
repeat: it is turned off, and the item, exactly one loop long, is duplicated to repeat
the loop instead (Item > Copy/Duplicate, or Ctrl+D, which puts the copy right after it).
A loop with an intro (the file is intro + loop, the loop from loop_start) gets an item of
the intro and one loop from the file's first frame, with Loop source off whatever the
format: repeating the whole file would replay the intro. Its notes say where the loop
starts, for copies that repeat only the loop.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from acestep_core.errors import AceStepError
from acestep_core.jobs import CueOutput, JobStatus
from acestep_core.request import GenerationRequest

from . import media, project
from .generation import Result

NEW_TRACK_NAME = "ACE-Step"
SCORE_TRACK_NAME = "Score"
SET_TRACK_PREFIX = "ACE-Step set"


@dataclass(frozen=True)
class LoopFit:
    """How a looped cue sits in an item, from its sidecar's loop record."""

    length: float  # seconds: exactly the loop (the intro and one loop when there is an intro)
    start_offset: float  # seconds into the file where the item starts (the loop's start; 0 with an intro)
    loop_source: bool  # whether REAPER's Loop source repeats exactly the loop (see the module doc)
    bars: int
    bpm: float
    frames: tuple[int, int, int]  # loop start, loop end (exclusive), frames in the file
    intro_bars: int = 0  # bars of one-time intro before the loop, from the file's first frame
    loop_start: float = 0.0  # seconds into the file where the loop starts (the intro's length)


def loop_fit(output: CueOutput) -> LoopFit | None:
    """The item for a looped output; None for one that is not a loop."""
    loop = output.metadata.get("loop")
    if not loop:
        return None
    rate = (output.metadata.get("format") or {}).get("sample_rate") or output.sample_rate
    start, end = int(loop["loop_start"]), int(loop["loop_end_exclusive"])
    in_file = int(loop.get("frames_in_file") or output.metadata.get("frames_written") or end)
    fields = dict(bars=int(loop["bars"]), bpm=float(loop["bpm"]), frames=(start, end, in_file))
    intro = int(loop.get("intro_bars") or 0)
    if intro:  # the intro and one loop, from the file's start; Loop source would replay the intro
        return LoopFit(length=end / rate, start_offset=0.0, loop_source=False, intro_bars=intro,
                       loop_start=start / rate, **fields)
    return LoopFit(length=(end - start) / rate, start_offset=start / rate, loop_source=start == 0 and in_file == end,
                   loop_start=start / rate, **fields)


def loop_note(fit: LoopFit) -> str:
    start, end, in_file = fit.frames
    text = f"loop: {fit.bars} bars at {fit.bpm:g} BPM, frames {start}-{end} of {in_file}"
    if fit.intro_bars:
        at = f"{round(fit.loop_start, 6):g} s"
        bars = f"{fit.intro_bars} bar{'s' if fit.intro_bars != 1 else ''}"
        return (f"{text}\nintro {bars}, then the loop from {at}: the item is the intro and one loop, and Loop source "
                f"is off so the intro plays once; to repeat the loop, duplicate the item (Ctrl+D) and trim the "
                f"copy's start by {at}")
    if fit.loop_source:
        return text + "; Loop source repeats it exactly"
    return (text + "; the file keeps a guard frame after the loop for game engines, so Loop source is off: "
            "duplicate the item (Ctrl+D) to repeat the loop")


# How the sidecar's tempo and key records say where the value in use came from.
_SOURCES = {"request": "as asked", "backend": "from the model", "measured": "measured"}


def _source_text(record: dict) -> str:
    """Where the value in use came from; a planned one says what it was planned from."""
    source = record.get("source")
    if source == "plan":
        return f"planned from the {record.get('planned_from') or 'prompt'}"
    return _SOURCES.get(source, source or "unknown")


def _check_text(record: dict) -> str:
    """A planned value's measurement is a check: say whether it agrees."""
    return f" ({record['check']})" if record.get("check") else ""


def _amount(value: float) -> str:
    return f"{round(float(value), 1):g}"


def tempo_text(record: dict | None) -> str:
    """'96 BPM (as asked)', '117.2 BPM (measured)', '120 BPM (from the model), measured 118.4 BPM',
    '155 BPM (planned from the prompt (mood and scene)), measured 77.5 BPM (agrees)'."""
    record = record or {}
    used, measured = record.get("used"), record.get("measured")
    if used is None:
        return "not set, and none could be measured"
    text = f"{_amount(used)} BPM ({_source_text(record)})"
    if measured is not None and record.get("source") != "measured":
        text += f", measured {_amount(measured)} BPM{_check_text(record)}"
    return text


def key_text(record: dict | None) -> str:
    """'A minor (measured)', 'C major (as asked)', 'D major (from the model), measured B minor'."""
    record = record or {}
    used, measured = record.get("used"), record.get("measured")
    if not used:
        return "not set, and none could be measured"
    text = f"{used} ({_source_text(record)})"
    if measured and record.get("source") != "measured":
        text += f", measured {measured}{_check_text(record)}"
    return text


def loudness_text(record: dict | None) -> str | None:
    """'-14.1 LUFS (aimed for -14), true peak -1.2 dBTP'; None when no target was set."""
    record = record or {}
    if record.get("target_lufs") is None:
        return None
    reached, peak = record.get("integrated_lufs"), record.get("true_peak_dbtp")
    text = f"{_amount(reached)} LUFS" if reached is not None else "not measurable"
    text += f" (aimed for {_amount(record['target_lufs'])})"
    if peak is not None:
        text += f", true peak {_amount(peak)} dBTP"
    return text


def licence_text(metadata: dict | None) -> str | None:
    """The sidecar's licence line (the model card's, acestep-dcc's for the sketch, or
    'licence unknown: read the model card at ...'); None when the cue records none."""
    licence = (metadata or {}).get("licence")
    summary = licence.get("summary") if isinstance(licence, dict) else None
    return summary if isinstance(summary, str) and summary.strip() else None


def _per_take(texts: list[str]) -> str:
    """One text when every take agrees, else each take's."""
    if len(set(texts)) <= 1:
        return texts[0] if texts else ""
    return "; ".join(f"take {i + 1}: {text}" for i, text in enumerate(texts))


def warning_lines(outputs: list[CueOutput]) -> list[str]:
    """'warning: ...' once per warning, naming the takes when not all of them have it."""
    takes: dict[str, list[int]] = {}
    for number, output in enumerate(outputs, 1):
        for text in media.output_warnings(output):
            takes.setdefault(text, []).append(number)
    lines = []
    for text, numbers in takes.items():
        if len(numbers) == len(outputs):
            lines.append(f"warning: {text}")
        else:
            label = "take" if len(numbers) == 1 else "takes"
            lines.append(f"warning ({label} {', '.join(map(str, numbers))}): {text}")
    return lines


def describe(request: GenerationRequest, result: Result) -> str:
    """Item notes: what made this audio, so it can be made again, the tempo and key it
    has (as asked, or measured), and anything the worker warned about."""
    outputs = result.job.outputs
    metadata = outputs[0].metadata if outputs else {}
    backend = metadata.get("backend") or {}
    played = metadata.get("settings") or {}
    seeds = ", ".join(f"{o.seed} (take {i + 1})" for i, o in enumerate(outputs))
    lines = [
        "ACE-Step",
        f"prompt: {request.prompt}",
        f"seed: {seeds}",
        f"model: {backend.get('model_id') or backend.get('label') or backend.get('name') or 'unknown'}",
    ]
    if licence_text(metadata):
        lines.append(f"licence: {licence_text(metadata)}")
    details = [f"{request.duration:g} s"]
    if request.time_signature or played.get("time_signature"):
        details.append(request.time_signature or played["time_signature"])
    if request.task != "text2music":
        details.append(task_text(request))
    lines.append("settings: " + ", ".join(details))
    if outputs:
        lines.append("tempo: " + _per_take([tempo_text(o.metadata.get("tempo")) for o in outputs]))
        lines.append("key: " + _per_take([key_text(o.metadata.get("key")) for o in outputs]))
        loudness = [loudness_text(o.metadata.get("loudness")) for o in outputs]
        if any(loudness):
            lines.append("loudness: " + _per_take([text or "as made" for text in loudness]))
    fit = loop_fit(outputs[0]) if outputs else None
    if fit is not None:
        lines.append(loop_note(fit))
    lines += warning_lines(outputs)
    lines.append(f"job: {result.job.id}")
    return "\n".join(lines)


def task_text(request: GenerationRequest) -> str:
    """'cover (strength 0.6)', 'repaint 2-4.5 s of the source', 'lego guitar over 0-8 s', 'extract stems'."""
    span = (f"{request.repaint_start:g}-{request.repaint_end:g} s of the source"
            if request.repaint_start is not None and request.repaint_end is not None else "the whole source")
    if request.task == "cover":
        return f"cover (strength {request.cover_strength:g})"
    if request.task == "repaint":
        return f"repaint {span}"
    if request.task == "lego":
        return f"lego {request.track} over {span}"
    if request.task == "extract" and request.stems:
        return f"extract stems ({', '.join(request.tracks or [])})"
    return request.task


def takes_for(result: Result) -> list[project.TakeFile]:
    return [project.TakeFile(str(path), media.take_name(result.request.prompt, output.seed))
            for path, output in zip(result.files, result.job.outputs)]


def stored_request(request: GenerationRequest) -> str:
    """The request as kept on the item (P_EXT), for variations; seeds are drawn anew."""
    data = request.to_dict()
    data.update(seed=None, source_audio=None, task="text2music", candidates=1)
    return json.dumps(data, sort_keys=True)


@dataclass
class NewItem:
    project: str
    track: str | None
    position: float
    length: float
    undo_label: str = "ACE-Step: generate at edit cursor"
    created_track: bool = False
    placeholder: project.Placeholder | None = None

    def start(self) -> "NewItem":
        """Put a placeholder where the item will go (on a new track when none is selected)."""
        if self.track is None:
            self.track = project.add_track(self.project, NEW_TRACK_NAME)
            self.created_track = True
        self.placeholder = project.add_placeholder(self.project, self.track, self.position, self.length, "ACE-Step queued")
        return self

    def progress(self, index: int, text: str) -> None:
        project.label_placeholder(self.project, self.placeholder, text)

    def place(self, results: list[Result]) -> None:
        result = results[0]
        project.remove_placeholder(self.project, self.placeholder)
        cue = project.Cue(self.position, self.length, takes_for(result), describe(result.request, result),
                          stored_request(result.request))
        fit = loop_fit(result.job.outputs[0])
        if fit is not None:  # the first take's loop: candidates share it when the tempo was given
            cue.length, cue.start_offset, cue.loop_source = fit.length, fit.start_offset, fit.loop_source
        self.track, _ = project.place_cues(self.project, self.track, NEW_TRACK_NAME, [cue], self.undo_label)

    def discard(self) -> None:
        if self.placeholder is not None:
            project.remove_placeholder(self.project, self.placeholder)
        if self.created_track:
            project.delete_track_if_empty(self.project, self.track)


@dataclass
class NewTakes:
    """Variations as new takes on the selected item; progress shows in the item's
    active take name, which is put back afterwards."""

    project: str
    item: project.SelectedItem
    undo_label: str = "ACE-Step: variations"
    original_label: str = ""

    def __post_init__(self):
        self.original_label = self.item.active_take_name
        self.shown_label = self.original_label

    def progress(self, index: int, text: str) -> None:
        from reapy import reascript_api as RPR

        label = f"{self.original_label} [{text}]" if self.original_label else f"[{text}]"
        if label == self.shown_label or not project.is_alive(self.project, self.item.item):
            return
        self.shown_label = label
        take = RPR.GetActiveTake(self.item.item)
        if not project.is_null(take):
            RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", label, True)
            RPR.UpdateArrange()

    def _restore_label(self) -> None:
        from reapy import reascript_api as RPR

        if self.shown_label != self.original_label and project.is_alive(self.project, self.item.item):
            take = RPR.GetActiveTake(self.item.item)
            if not project.is_null(take):
                RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", self.original_label, True)
                RPR.UpdateArrange()
        self.shown_label = self.original_label

    def place(self, results: list[Result]) -> None:
        result = results[0]
        self._restore_label()
        notes = (self.item.notes + "\n\n" if self.item.notes else "") + "variations:\n" + describe(result.request, result)
        project.add_takes_to_item(self.project, self.item.item, takes_for(result), notes, self.undo_label)

    def discard(self) -> None:
        self._restore_label()


@dataclass
class ScoreCues:
    """One cue per cue-sheet section on the Score track."""

    project: str
    track: str | None
    sections: list  # acestep_core.timeline.CueSection
    undo_label: str = "ACE-Step: score regions"
    created_track: bool = False
    placeholders: list[project.Placeholder] = field(default_factory=list)

    def start(self) -> "ScoreCues":
        if self.track is None:
            self.track = project.add_track(self.project, SCORE_TRACK_NAME)
            self.created_track = True
        self.placeholders = [
            project.add_placeholder(self.project, self.track, float(s.start), float(s.duration), "ACE-Step queued")
            for s in self.sections
        ]
        return self

    def progress(self, index: int, text: str) -> None:
        project.label_placeholder(self.project, self.placeholders[index], text)

    def place(self, results: list[Result]) -> None:
        for placeholder in self.placeholders:
            project.remove_placeholder(self.project, placeholder)
        cues = [
            project.Cue(float(section.start), float(section.duration), takes_for(result),
                        describe(result.request, result) + f"\nregion: {section.name}",
                        stored_request(result.request), float(section.fade_in), float(section.fade_out))
            for section, result in zip(self.sections, results)
        ]
        self.track, _ = project.place_cues(self.project, self.track, SCORE_TRACK_NAME, cues, self.undo_label)

    def discard(self) -> None:
        for placeholder in self.placeholders:
            project.remove_placeholder(self.project, placeholder)
        if self.created_track:
            project.delete_track_if_empty(self.project, self.track)


# -- a dynamic-music set ------------------------------------------------------------------------------


def set_track_name(prompt: str, part: str) -> str:
    """'ACE-Step set: boss battle, rock (layer 2/3)' or '... (intensity 2/3)'."""
    return f"{SET_TRACK_PREFIX}: {media.short_prompt(prompt)} ({part})"


def _set_part(output: CueOutput) -> str:
    place = output.metadata.get("set") or {}
    if output.set_role == "layer":
        return f"layer {place['level']}/{place['levels']}"
    if output.set_role == "intensity":
        return f"intensity {place['level']}/{place['levels']}"
    if output.set_role == "stinger":
        return f"stinger {place['number']}/{place['stingers']}"
    return "base"


def _parts_note(output: CueOutput) -> str:
    """' (keyboard, bass: plays with the layers below it)' for a layer, else ''."""
    if output.set_role != "layer":
        return ""
    parts = ", ".join((output.metadata.get("set") or {}).get("parts") or [])
    return f" ({parts}: plays with the layers below it)" if parts else " (plays with the layers below it)"


def _own_request(output: CueOutput, fallback: GenerationRequest) -> GenerationRequest:
    """The request that made this file (a level's has its intensity), for variations."""
    try:
        return GenerationRequest.from_dict(output.metadata["request"])
    except (KeyError, AceStepError):
        return fallback


def set_lanes(result: Result, position: float) -> list[project.TrackLane]:
    """A finished set as stacked tracks from `position`: the base loop, then one track per
    level, then the stingers on one track, each starting on a bar line after the loop's end.
    Layers (stems that stack) all play and the base, their full mix, is muted: mute the
    upper layers to hear a lower level. Variants are alternative arrangements of the same
    music, to be switched between, so they are muted and the base plays: solo one to hear it."""
    job, manifest = result.job, result.job.manifest or {}
    cues: dict[str, list[tuple[CueOutput, project.Cue]]] = {"base": [], "layer": [], "intensity": [], "stinger": []}
    loop_end = position
    for output, path in zip(job.outputs, result.files):
        part, own_request = _set_part(output), _own_request(output, result.request)
        notes = describe(own_request, Result(own_request, _one_output(job, output))) + (
            f"\nset: {part}{_parts_note(output)} of {len(job.outputs)} files; "
            f"manifest {result.artifact_files.get('manifest', 'not fetched')}")
        take = project.TakeFile(str(path), f"{media.short_prompt(result.request.prompt)} ({part}, seed {output.seed})")
        cue = project.Cue(position, output.duration, [take], notes, stored_request(own_request))
        fit = loop_fit(output)
        if fit is not None:
            cue.length, cue.start_offset, cue.loop_source = fit.length, fit.start_offset, fit.loop_source
            loop_end = max(loop_end, position + fit.length)
        cues[output.set_role or "base"].append((output, cue))
    bar_s = float(manifest.get("beats_per_bar") or 4) * 60.0 / float(manifest.get("bpm") or 120.0)
    start = loop_end
    for _, cue in cues["stinger"]:
        cue.position = start
        start += math.ceil(cue.length / bar_s - 1e-9) * bar_s
    prompt = result.request.prompt
    stacked = bool(cues["layer"])
    lanes = [project.TrackLane(set_track_name(prompt, "base"), [cue for _, cue in cues["base"]], muted=stacked)]
    lanes += [project.TrackLane(set_track_name(prompt, _set_part(output)), [cue], muted=not stacked)
              for output, cue in cues["layer"] + cues["intensity"]]
    if cues["stinger"]:
        lanes.append(project.TrackLane(set_track_name(prompt, "stingers"), [cue for _, cue in cues["stinger"]]))
    return lanes


def _one_output(job: JobStatus, output: CueOutput) -> JobStatus:
    """The job as if `output` were its only file (describe() reads the first output)."""
    return dataclasses.replace(job, outputs=[output])


@dataclass
class IntensitySetTracks:
    """A set at the edit cursor on stacked new tracks (see set_lanes). Until it arrives,
    the first of those tracks holds a placeholder that shows the progress."""

    project: str
    position: float
    length: float  # the placeholder's, until the set says how long its loop is
    prompt: str
    undo_label: str = "ACE-Step: make intensity set"
    track: str | None = None
    placeholder: project.Placeholder | None = None
    tracks: list[str] = field(default_factory=list)

    def start(self) -> "IntensitySetTracks":
        self.track = project.add_track(self.project, set_track_name(self.prompt, "base"))
        self.placeholder = project.add_placeholder(self.project, self.track, self.position, self.length,
                                                   "ACE-Step queued")
        return self

    def progress(self, index: int, text: str) -> None:
        project.label_placeholder(self.project, self.placeholder, text)

    def place(self, results: list[Result]) -> None:
        project.remove_placeholder(self.project, self.placeholder)
        self.tracks = project.place_lanes(self.project, self.track, set_lanes(results[0], self.position),
                                          self.undo_label)

    def discard(self) -> None:
        if self.placeholder is not None:
            project.remove_placeholder(self.project, self.placeholder)
        project.delete_track_if_empty(self.project, self.track)


# -- editing the selected item: stems, repaint, a layer ------------------------------------------


def item_label(item: project.SelectedItem) -> str:
    """What the item is called: its active take's name, else its file's name."""
    import os

    return item.active_take_name.strip() or os.path.splitext(os.path.basename(item.active_source))[0] or "item"


@dataclass
class StemTracks(NewTakes):
    """A split into stems: a folder track named after the item right below its track, one
    child track per stem, each item exactly where the source item is (position, length,
    take start offset, rate and Loop source), and the source item muted; in one undo block."""

    undo_label: str = "ACE-Step: split into stems"
    tracks: list[str] = field(default_factory=list)

    def place(self, results: list[Result]) -> None:
        result = results[0]
        self._restore_label()
        name, item = item_label(self.item), self.item
        notes = f"stems of {name}\n" + describe(result.request, result)
        lanes = [project.TrackLane(f"{name} ({track})", [project.Cue(
                    item.position, item.length, [project.TakeFile(str(path), f"{name} ({track})")], notes,
                    start_offset=item.start_offset, playrate=item.playrate, loop_source=item.loop_source)])
                 for track, path in result.artifact_files.items()]
        self.tracks = project.place_stem_folder(self.project, item.item, f"{name} (stems)", lanes, self.undo_label)


@dataclass
class RepaintTake(NewTakes):
    """A repaint as a new take on the selected item, active, starting where the item's
    active take starts in its file (the repaint is the whole file, changed only in its range)."""

    undo_label: str = "ACE-Step: repaint time selection"

    def place(self, results: list[Result]) -> None:
        result = results[0]
        self._restore_label()
        request, output = result.request, result.job.outputs[0]
        take = project.TakeFile(str(result.files[0]), f"{media.short_prompt(request.prompt)} "
                                f"(repaint {request.repaint_start:g}-{request.repaint_end:g} s, seed {output.seed})")
        notes = (self.item.notes + "\n\n" if self.item.notes else "") + "repaint:\n" + describe(request, result)
        project.add_takes_to_item(self.project, self.item.item, [take], notes, self.undo_label,
                                  start_offset=self.item.start_offset)


@dataclass
class LayerTrack(NewTakes):
    """A lego layer on a new track right below the item's track, its item exactly where
    the source item is (position, length, take start offset): the layer is as long as the
    source file, and silent outside the range it was asked for but for short fades."""

    undo_label: str = "ACE-Step: add layer"
    track: str | None = None

    def place(self, results: list[Result]) -> None:
        result = results[0]
        self._restore_label()
        request, output, item = result.request, result.job.outputs[0], self.item
        name = f"{item_label(item)} ({request.track})"
        cue = project.Cue(item.position, item.length,
                          [project.TakeFile(str(result.files[0]), f"{media.short_prompt(request.prompt)} "
                                                                  f"({request.track}, seed {output.seed})")],
                          f"layer of {item_label(item)}\n" + describe(request, result),
                          start_offset=item.start_offset, playrate=item.playrate, loop_source=item.loop_source)
        self.track = project.place_track_below(self.project, item.item, project.TrackLane(name, [cue]),
                                               self.undo_label)
