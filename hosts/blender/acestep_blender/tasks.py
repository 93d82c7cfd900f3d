"""What one press of Generate, Score Cutscene or Regenerate is: jobs for the worker and
where each one's audio goes. Plain data only (ids, requests, frame numbers), never a
bpy object, so an undo or a file load meanwhile cannot leave a dangling reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from acestep_core.jobs import DONE, JobStatus
from acestep_core.request import GenerationRequest

GENERATE, SCORE, VARIATION, SET = "GENERATE", "SCORE", "VARIATION", "SET"


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
class CueJob:
    request: GenerationRequest
    plan: CuePlan
    job_id: str | None = None
    status: JobStatus | None = None
    files: list[Path] = field(default_factory=list)  # local copies, candidate order
    source_audio: Path | None = None  # uploaded by the runner for a cover, before submitting
    set_options: dict | None = None  # {"intensities", "bars", "stingers"}: submitted as a set (submit_set)
    artifact_files: list[Path] = field(default_factory=list)  # a set's manifest and Godot resource, local

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
