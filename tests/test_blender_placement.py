"""Placement on its own, in real Blender, with audio files written here: a missing file
stops it before any strip is made, a short file is reported, a full timeline is explained."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from blender_fixtures import addon, add_blocker, blender_addon, bpy, strips_of  # noqa: F401  (fixtures)

from acestep_core.errors import AceStepError
from acestep_core.jobs import DONE, CueOutput, JobStatus
from acestep_core.request import GenerationRequest


def _wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\0\0\0\0" * round(seconds * 44100))
    return path


def _task(addon, files: list[Path], frames: int, frame_start: int = 10):
    tasks = addon.module.tasks
    outputs = [CueOutput(index=i, path=str(f), seed=7 + i, duration=1.0, sample_rate=44100,
                         metadata={"backend": {"name": "sketch"}}) for i, f in enumerate(files)]
    job = tasks.CueJob(GenerationRequest(prompt="rain on a tin roof"), tasks.CuePlan("rain on a tin roof", frame_start, frames),
                       job_id="job-1", status=JobStatus(id="job-1", status=DONE, outputs=outputs), files=files)
    return tasks.Task(tasks.GENERATE, "Generate 'rain'", bpy.context.scene.name, files[0].parent, [job])


def test_a_missing_file_stops_placement_before_any_strip_is_made(addon, tmp_path):
    first = _wav(tmp_path / "take-1.wav", 2.0)
    task = _task(addon, [first, tmp_path / "take-2-missing.wav"], frames=48)
    with pytest.raises(AceStepError, match="take-2-missing.wav is gone .*; generate again"):
        addon.module.strip_placement.place_task(task)
    assert strips_of(bpy.context.scene) == []


def test_audio_shorter_than_asked_is_reported(addon, tmp_path):
    task = _task(addon, [_wav(tmp_path / "short.wav", 1.5)], frames=48)
    summary = addon.module.strip_placement.place_task(task)
    [strip] = strips_of(bpy.context.scene)
    assert (strip.frame_final_duration, strip.frame_duration) == (48, 36)
    assert "'rain on a tin roof' is 12 frames shorter than asked" in summary


def test_a_full_timeline_is_explained_and_left_alone(addon, tmp_path):
    scene = bpy.context.scene
    for channel in range(1, 129):
        add_blocker(scene, f"busy {channel}", channel=channel, start=1, end=100)
    task = _task(addon, [_wav(tmp_path / "take.wav", 2.0)], frames=48)
    with pytest.raises(AceStepError, match="free channel between 1 and 128 not found from 10 to 58"):
        addon.module.strip_placement.place_task(task)
    assert all(s.type == "COLOR" for s in strips_of(scene))
