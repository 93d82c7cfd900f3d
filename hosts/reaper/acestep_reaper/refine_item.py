"""The action "ACE-Step: Refine selected item".

The active take's file and its sidecar say how it was made (acestep_core.refine); a
dialog opens with that request filled in (prompt, seconds, candidates, the take's own
seed, BPM, key) and an optional cover strength. Only what the user changes differs:
the new takes keep the parent's seed and settings. They are added to the item as new
takes (the first one active), and the item's notes say where they came from and what
changed, in one undo block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acestep_core.client import find_worker
from acestep_core.errors import AceStepError, FieldProblem, InvalidRequest, WorkerError
from acestep_core.refine import ParentCue, lineage_lines, read_parent, refine_request

from . import generation, media, project
from .generation import Generation, Result
from .loops import default_loop
from .placements import NewTakes, describe, takes_for

TITLE = "ACE-Step: Refine selected item"
# Captions hold no commas: REAPER splits GetUserInputs' captions on them.
CAPTIONS = ("Prompt", "Seconds", "Candidates (one take each)", "Seed (the parent's; empty: random)",
            "BPM (empty: the music's own)", "Key (empty: any)", "Cover strength 0-1 (empty: no cover)")
_JOB_LINE = re.compile(r"^job: ([0-9a-f]{8,64})$", re.MULTILINE)


def _fmt(value: float) -> str:
    return f"{round(value, 3):g}"


def dialog_fields(parent: ParentCue) -> list[tuple[str, str]]:
    """The dialog, filled in with how the parent was made."""
    request = parent.request
    values = (request.prompt, _fmt(request.duration), str(request.candidates),
              "" if parent.seed is None else str(parent.seed),
              "" if request.bpm is None else _fmt(request.bpm), request.key or "", "")
    return list(zip(CAPTIONS, values))


def parse_dialog(values: list[str], parent: ParentCue, can_cover: bool, source: str):
    """The dialog's answer as the refined request; InvalidRequest names every bad value."""
    problems: list[FieldProblem] = []

    def number(text: str, field: str, caption: str, kind=float):
        text = text.strip()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            problems.append(FieldProblem(field, f"{caption} must be a {'whole ' if kind is int else ''}number; "
                                                f"got {text!r}"))
            return None

    changes = {"prompt": " ".join(values[0].split()), "key": values[5].strip() or None,
               "duration": number(values[1], "duration", "Seconds"),
               "candidates": number(values[2], "candidates", "Candidates", int),
               "seed": number(values[3], "seed", "Seed", int), "bpm": number(values[4], "bpm", "BPM")}
    for field in ("duration", "candidates"):  # empty: the parent's
        if changes[field] is None:
            del changes[field]
    strength = number(values[6], "cover_strength", "Cover strength")
    if strength is not None and not can_cover and 0.0 <= strength <= 1.0:  # out of range: refine_request says so
        problems.append(FieldProblem("cover_strength", (
            "This worker's model cannot make covers (the sketch backend cannot): leave Cover strength empty to make "
            "the item again with its seed and your changes")))
    if problems:
        raise InvalidRequest(problems)
    if strength is not None:
        changes.pop("duration", None)  # a cover is as long as the parent
    return refine_request(parent, changes, strength, cover_source=source)


def refine_selected_item(loop=None) -> Generation | None:
    context = project.read_edit_context()
    item = project.read_selected_item(context.project)
    if item is None:
        raise AceStepError("Select the item to refine (click it), then run this action again.")
    if not item.active_source:
        raise AceStepError("The selected item has no audio file in its active take, so there is nothing to refine. "
                           "Select an item ACE-Step made (or make its ACE-Step take active), then try again.")
    job = _JOB_LINE.findall(item.notes or "")
    parent = read_parent(item.active_source, job[-1] if job else None)  # ParentUnreadable: a message box
    can_cover = "cover" in _worker_tasks()
    request = project.ask_until_valid(TITLE, dialog_fields(parent),
                               lambda values: parse_dialog(values, parent, can_cover, item.active_source))
    if request is None:
        return None
    uploads = [None]
    if request.task == "cover":
        request.source_audio, uploads = None, [item.active_source]  # the worker reads no path: upload it
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    run = Generation([request], RefinedTakes(context.project, item), folder, notice, uploads)
    (loop or default_loop()).start(run)
    return run


def _worker_tasks() -> list[str]:
    client = find_worker(timeout=generation.PROBE_TIMEOUT)
    if client is None:
        return ["text2music"]  # a run starts the worker and checks the task then
    try:
        return list(client.health().get("supports_tasks") or ["text2music"])
    except WorkerError:
        return ["text2music"]


@dataclass
class RefinedTakes(NewTakes):
    """The refinement's candidates as new takes on the item; its notes gain the lineage."""

    undo_label: str = "ACE-Step: refine"

    def place(self, results: list[Result]) -> None:
        result = results[0]
        self._restore_label()
        lineage = result.request.lineage or {}
        notes = ((self.item.notes + "\n\n" if self.item.notes else "") + "refined:\n"
                 + "".join(f"{line}\n" for line in lineage_lines(lineage)) + describe(result.request, result))
        project.add_takes_to_item(self.project, self.item.item, takes_for(result), notes, self.undo_label)
