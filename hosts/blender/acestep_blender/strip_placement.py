"""Put finished audio on the timeline: sound strips on free channels, exact lengths,
candidates stacked and muted, crossfade keyframes, and what made each cue.

Placement runs inside one of the placement operators (operators.py), called with undo on,
so a whole Generate or Score Cutscene is one step in Edit > Undo History. Channels are all
chosen before the first strip is made, and a failure while making them removes the
ones already made: the timeline never keeps half a result.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import bpy

from acestep_core import timeline
from acestep_core.errors import AceStepError

from . import compat, loop_options, strip_records
from .strip_records import PROP_CANDIDATE, PROP_GROUP, PROP_REQUEST, PROP_SECTION

MAX_STRIP_NAME = 60


@dataclass
class _Handoff:
    """How the tick passes a finished task to the placement operator and gets the result."""

    task: object = None
    summary: str = ""
    error: str = ""


handoff = _Handoff()


def place_task_with_undo(task) -> str:
    """Place `task` through the undoable operator; returns a summary, raises AceStepError."""
    handoff.task, handoff.summary, handoff.error = task, "", ""
    try:
        # One operator per kind only so Undo History names the step for what the user pressed.
        place = {"SCORE": bpy.ops.acestep.place_score, "SET": bpy.ops.acestep.place_set,
                 "STEMS": bpy.ops.acestep.place_stems, "REPAINT": bpy.ops.acestep.place_repaint,
                 "LAYER": bpy.ops.acestep.place_layer, "REFINE": bpy.ops.acestep.place_refine}.get(task.kind, bpy.ops.acestep.place_cue)
        with window_context():
            result = place("EXEC_DEFAULT", True)
    finally:
        handoff.task = None
    if "FINISHED" not in result:
        raise AceStepError(handoff.error or "the audio could not be placed")
    return handoff.summary


def window_context():
    """Timers run without a window; undo and the operator want one like a click has."""
    context = bpy.context
    windows = context.window_manager.windows if context.window_manager else ()
    if context.window is None and len(windows):
        return context.temp_override(window=windows[0])
    return contextlib.nullcontext()


# -- placing ------------------------------------------------------------------------------


@dataclass
class _Placement:
    job: object
    candidate: int  # 0-based
    path: Path
    channel: int


def task_scene(task):
    """The scene the task was started in. Raises AceStepError when it is gone."""
    scene = bpy.data.scenes.get(task.scene_name)
    if scene is None:
        raise AceStepError(f"the scene '{task.scene_name}' is gone; the audio is in {task.output_folder}")
    return scene


def place_task(task) -> str:
    """Create the strips for every job of a finished Generate, Score or Variation task.
    Raises AceStepError."""
    scene = task_scene(task)
    loop_options.fit_plans_to_loops(task, timeline.frame_rate(scene.render.fps, scene.render.fps_base))
    editor = compat.sequence_editor(scene, create=True)
    occupied = compat.occupied_ranges(editor)
    placements = _plan_channels(task, occupied)
    for placement in placements:
        # Blender would make a one-frame strip of a missing file without a word.
        if not placement.path.is_file():
            raise AceStepError(f"the audio file {placement.path} is gone (moved or deleted before it was placed); "
                               "generate again")
    made = []
    try:
        for placement in placements:
            made.append(_add_strip(scene, editor, task, placement))
    except Exception:
        strips = compat.top_strips(editor)
        for strip in made:
            strips.remove(strip)
        raise
    return _summary(task, made, placements)


def _plan_channels(task, occupied) -> list[_Placement]:
    occupied = list(occupied)
    placements: list[_Placement] = []
    if task.kind == "SCORE":
        start = min(j.plan.frame_start for j in task.jobs)
        end = max(j.plan.frame_start + j.plan.frames for j in task.jobs)
        # Consecutive cues overlap by the crossfade, so they alternate on a channel pair.
        pair = timeline.first_free_channels(occupied, start, end, count=2, adjacent=True)
        for i, job in enumerate(task.jobs):
            placements.append(_Placement(job, 0, job.files[0], pair[i % 2]))
        return placements
    for job in task.jobs:
        start, end = job.plan.frame_start, job.plan.frame_start + job.plan.frames
        channels = timeline.first_free_channels(
            occupied, start, end, count=len(job.files), lowest=job.plan.lowest_channel)
        for k, (path, channel) in enumerate(zip(job.files, channels)):
            placements.append(_Placement(job, k, path, channel))
            occupied.append((channel, start, end))
    return placements


def _add_strip(scene, editor, task, placement: _Placement):
    job, plan, k = placement.job, placement.job.plan, placement.candidate
    output = sorted(job.status.outputs, key=lambda o: o.index)[k]
    name = _strip_name(plan.name, k)
    strip = compat.top_strips(editor).new_sound(
        name=name, filepath=strip_file_path(placement.path), channel=placement.channel,
        frame_start=plan.frame_start)
    if strip.channel != placement.channel:  # Blender moved it off an overlap we did not see
        compat.top_strips(editor).remove(strip)
        raise AceStepError(f"channel {placement.channel} was not free for '{name}'; try again")
    compat.set_strip_length(strip, plan.frames)
    strip.mute = plan.muted or k > 0
    strip.show_waveform = True
    _record_origin(strip, job, output, plan, k)
    _keyframe_fades(strip, plan)
    return strip


def strip_file_path(path: Path) -> str:
    """Relative to the .blend when it is saved, so the project moves with its audio."""
    if not bpy.data.filepath:
        return str(path)
    try:
        return bpy.path.relpath(str(path))
    except ValueError:  # another drive on Windows: no relative path exists
        return str(path)


def _strip_name(base: str, candidate: int) -> str:
    base = " ".join(base.split()) or "cue"
    suffix = f" #{candidate + 1}" if candidate else ""
    return base[: MAX_STRIP_NAME - len(suffix)].rstrip(" ,") + suffix


def _record_origin(strip, job, output, plan, candidate: int) -> None:
    # The lineage is the strip's own (PROP_LINEAGE): a variation of it is no refinement.
    request = dict(job.request.to_dict(), seed=int(output.seed), candidates=1, lineage=None)
    strip_records.record_output(strip, job, output)
    strip[PROP_GROUP] = plan.group or job.job_id
    strip[PROP_CANDIDATE] = candidate + 1
    strip[PROP_REQUEST] = json.dumps(request, sort_keys=True)
    if plan.section:
        strip[PROP_SECTION] = plan.section


def _keyframe_fades(strip, plan) -> None:
    """Volume ramps: 0 -> 1 over the first fade_in frames, 1 -> 0 over the last fade_out.
    Blender's default eased keys make each pair of ramps sum to full volume."""
    start = plan.frame_start
    end = plan.frame_start + plan.frames
    keys: list[tuple[int, float]] = []
    if plan.fade_in:
        keys += [(start, 0.0), (start + plan.fade_in, 1.0)]
    if plan.fade_out:
        keys += [(end - plan.fade_out, 1.0), (end, 0.0)]
    for frame, volume in keys:
        strip.volume = volume
        strip.keyframe_insert("volume", frame=frame)


def _summary(task, strips, placements) -> str:
    channels = sorted({s.channel for s in strips})
    where = f"channel{'s' if len(channels) > 1 else ''} {', '.join(map(str, channels))}"
    if task.kind == "SCORE":
        text = f"{len(strips)} cues on {where}, crossfaded"
    else:
        muted = sum(1 for s in strips if s.mute)
        first = strips[0]
        start, end = compat.strip_span(first)
        text = f"'{first.name}' at frame {start}, {end - start} frames, on {where}"
        musical = strip_records.tempo_and_key(first, measured=False)
        if musical:
            text += f" ({musical})"
        if len(strips) > 1:
            text += f" ({len(strips)} takes, {muted} muted: pick one with Use This Take)"
    # The strip keeps the asked length (silence after the file ends): say so if the worker sent less.
    short = [(s.name, p.job.plan.frames - compat.content_length(s))
             for s, p in zip(strips, placements) if compat.content_length(s) < p.job.plan.frames]
    if short:
        text += "; " + ", ".join(f"'{name}' is {frames} frames shorter than asked" for name, frames in short)
    return text


# -- candidates ---------------------------------------------------------------------------


def group_members(editor, group: str) -> list:
    return [s for s in compat.top_strips(editor) if s.get(PROP_GROUP) == group]


def use_candidate(editor, chosen) -> int:
    """Keep `chosen`, unmuted, on the lowest channel its group used (when free there);
    remove the other takes. Returns how many were removed."""
    group = chosen.get(PROP_GROUP)
    others = [s for s in group_members(editor, group) if s != chosen] if group else []
    lowest = min([chosen.channel] + [s.channel for s in others])
    strips = compat.top_strips(editor)
    for strip in others:
        strips.remove(strip)
    chosen.mute = False
    if lowest < chosen.channel and timeline.channel_is_free(
        compat.occupied_ranges(editor, exclude=[chosen]), lowest, *compat.strip_span(chosen)
    ):
        chosen.channel = lowest
    return len(others)
