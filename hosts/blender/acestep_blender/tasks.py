"""What one press of Generate, Score Cutscene or Regenerate is: jobs for the worker and
where each one's audio goes. Plain data only (ids, requests, frame numbers), never a
bpy object, so an undo or a file load meanwhile cannot leave a dangling reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from acestep_core.jobs import DONE, JobStatus
from acestep_core.request import GenerationRequest

GENERATE, SCORE, VARIATION, SET = "GENERATE", "SCORE", "VARIATION", "SET"
# Edits of the active sound strip (edit_plans.py, edit_placement.py).
STEMS, REPAINT, LAYER = "STEMS", "REPAINT", "LAYER"


@dataclass
class CuePlan:
    """Where one job's audio goes. `channel` is chosen at placement time (the timeline
    may change while the job runs): the first free one from `lowest_channel` up."""

    name: str
    frame_start: int
    frames: int
    fade_in: int = 0
    fade_out: int = 0
    lowest_channel: int = 1
    group: str | None = None  # join an existing group of takes (variations)
    muted: bool = False  # variations arrive muted, so what plays now keeps playing
    section: str | None = None


@dataclass
class EditSource:
    """The sound strip an edit works on, as it was when the edit was asked for: its name,
    channel, where its file's first frame sits (`content_start`, Blender's frame_start) and
    the span it shows ([span_start, span_end), its handles). Results are placed on this
    grid, so they line up with the source whatever its offsets."""

    strip_name: str
    channel: int
    content_start: float
    span_start: int
    span_end: int
    track: str | None = None  # the instrument a layer adds


@dataclass
class CueJob:
    request: GenerationRequest
    plan: CuePlan
    job_id: str | None = None
    status: JobStatus | None = None
    files: list[Path] = field(default_factory=list)  # local copies, candidate order
    source_audio: Path | None = None  # uploaded by the runner for a cover, before submitting
    set_options: dict | None = None  # {"intensities", "bars", "stingers"}: submitted as a set (submit_set)
    artifact_files: list[Path] = field(default_factory=list)  # a set's manifest and Godot resource, local
    edit: EditSource | None = None  # an edit of a strip: where its results go
    stems: bool = False  # bring in the job's stems (a split) instead of its mix
    stem_files: dict[str, Path] = field(default_factory=dict)  # track -> local stem file, the worker's order

    @property
    def finished(self) -> bool:
        return self.status is not None and self.status.finished

    @property
    def progress(self) -> float:
        status = self.status
        if status is None:
            return 0.0
        return 1.0 if status.status == DONE else float(status.progress or 0.0)


@dataclass
class Task:
    kind: str
    label: str
    scene_name: str
    output_folder: Path
    jobs: list[CueJob]
    quality: str = "FAST"
    remote: bool = False  # the worker is on another machine: download, never copy
    notice: str = ""  # said when it is done (audio in a temporary folder, say)
    runner: object = None  # the TaskRunner doing its talking to the worker
