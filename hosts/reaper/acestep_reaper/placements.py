"""What each action does with the finished files, and how it shows progress meanwhile.

- NewItem: one item at the edit cursor, one take per candidate (the first active).
- NewTakes: variations added as takes to an existing item.
- ScoreCues: one item per region on a "Score" track, with crossfades.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from acestep_core.request import GenerationRequest

from . import media, project
from .generation import Result

NEW_TRACK_NAME = "ACE-Step"
SCORE_TRACK_NAME = "Score"


def describe(request: GenerationRequest, result: Result) -> str:
    """Item notes: what made this audio, so it can be made again."""
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
    details = [f"{request.duration:g} s"]
    bpm = request.bpm or played.get("bpm")
    if bpm:
        details.append(f"{bpm:g} bpm")
    if request.time_signature or played.get("time_signature"):
        details.append(request.time_signature or played["time_signature"])
    if request.key or played.get("key"):
        details.append(request.key or played["key"])
    if request.task != "text2music":
        details.append(f"{request.task} (strength {request.cover_strength:g})")
    lines.append("settings: " + ", ".join(details))
    lines.append(f"job: {result.job.id}")
    return "\n".join(lines)


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
