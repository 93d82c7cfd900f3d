"""Put the results of an edit of a sound strip on the timeline, lined up with it.

Every result file has the source file's length and sample grid, so each new strip starts
where the source's file starts (its frame_start) and shows the span the source showed
when the edit was asked for: the same frames play the same moment of the music.

- Split into Stems: one strip per stem on the first free channels above the source (one
  consecutive run when there is one), named '<source> (<track>)', tied together by a shared
  acestep_stem_group; the source is muted, since the stems sum to it.
- Repaint Selection: a new take on the first free channel above, the same position and
  length, playing; the source is muted and both are takes of one group, so Use This Take
  keeps one (Undo, or unmuting, brings the source back).
- Add Layer: the new instrument alone (silent outside its range) on the first free channel
  above; the source keeps playing under it.

Runs inside a placement operator with undo on (operators.py): one step in Undo History.
All channels are chosen before the first strip is made, and a failure removes what was
made: the timeline never keeps half a result.
"""

from __future__ import annotations

from acestep_core import timeline
from acestep_core.errors import AceStepError

from . import compat, strip_placement, strip_records
from .strip_records import (PROP_CANDIDATE, PROP_EDIT, PROP_GROUP, PROP_JOB, PROP_MODEL, PROP_SEED, PROP_SOURCE,
                            PROP_STEM_GROUP, PROP_TRACK)
from .tasks import LAYER, REPAINT, STEMS


def place_edit(task) -> str:
    """Strips for a finished Split into Stems, Repaint Selection or Add Layer. Raises AceStepError."""
    scene = strip_placement.task_scene(task)
    job = task.jobs[0]
    source = job.edit
    editor = compat.sequence_editor(scene, create=True)
    strips = compat.top_strips(editor)
    output = sorted(job.status.outputs, key=lambda o: o.index)[0] if job.status.outputs else None
    if output is None:
        raise AceStepError("the worker sent no audio back; try again, or see the worker log")
    if task.kind == STEMS:
        if not job.stem_files:
            raise AceStepError("the worker made no stems of it (the model played none of the asked tracks); "
                               "pick other tracks, or leave Tracks empty for every part")
        files = [(f"{_base(source.strip_name)} ({track})", track, path) for track, path in job.stem_files.items()]
    else:
        name = f"{_base(source.strip_name)} ({source.track})" if task.kind == LAYER else f"{_base(source.strip_name)} repaint"
        files = [(name, source.track, job.files[0])]
    for _, _, path in files:
        if not path.is_file():
            raise AceStepError(f"the audio file {path} is gone (moved or deleted before it was placed); try again")
    original = strips.get(source.strip_name)
    occupied = compat.occupied_ranges(editor)
    channels = _free_channels(occupied, source, len(files))

    made = []
    try:
        for (name, track, path), channel in zip(files, channels):
            strip = _add_aligned(strips, name, path, channel, source)
            made.append(strip)
            strip[PROP_EDIT] = {STEMS: "stem", REPAINT: "repaint", LAYER: "layer"}[task.kind]
            strip[PROP_SOURCE] = source.strip_name
            if track:
                strip[PROP_TRACK] = track
            if task.kind == REPAINT:
                strip_records.record_output(strip, job, output)
            else:
                strip[PROP_JOB], strip[PROP_SEED] = job.job_id, str(output.seed)
                strip[PROP_MODEL] = strip_records.model_label((output.metadata or {}).get("backend") or {})
            if task.kind == STEMS:
                strip[PROP_STEM_GROUP] = job.job_id
        if task.kind == REPAINT:
            group = (original.get(PROP_GROUP) if original is not None else None) or job.job_id
            made[0][PROP_GROUP] = group
            made[0][PROP_CANDIDATE] = _next_take(strips, group)
            if original is not None:
                if PROP_GROUP not in original:
                    original[PROP_GROUP], original[PROP_CANDIDATE] = group, 1
        if task.kind in (STEMS, REPAINT) and original is not None:
            original.mute = True
    except Exception:
        for strip in made:
            strips.remove(strip)
        raise
    return _summary(task, source, made, original)


def _free_channels(occupied, source, count: int) -> list[int]:
    lowest = source.channel + 1
    span = (source.span_start, source.span_end)
    try:
        return timeline.first_free_channels(occupied, *span, count=count, lowest=lowest, adjacent=True)
    except timeline.NoFreeChannel:  # no run of `count` free channels: any free ones above
        return timeline.first_free_channels(occupied, *span, count=count, lowest=lowest)


def _add_aligned(strips, name: str, path, channel: int, source):
    """A sound strip of `path` whose file starts at the source's frame_start, showing the
    source's span, on `channel`."""
    strip = strips.new_sound(name=name, filepath=strip_placement.strip_file_path(path), channel=channel,
                             frame_start=int(source.content_start))
    try:
        if compat.content_start(strip) != source.content_start:  # a sub-frame start (5.x keeps them)
            compat.set_content_start(strip, source.content_start)
        # The whole file may overlap a strip beside the span on this channel, and Blender
        # moves a new strip off an overlap: trim it to the span first, then put it back.
        compat.set_strip_span(strip, source.span_start, source.span_end)
        if strip.channel != channel:
            strip.channel = channel
        if strip.channel != channel or compat.strip_span(strip) != (source.span_start, source.span_end):
            raise AceStepError(f"channel {channel} was not free for '{name}' over frames "
                               f"{source.span_start}-{source.span_end}; try again")
    except Exception:
        strips.remove(strip)
        raise
    strip.show_waveform = True
    return strip


def _next_take(strips, group: str) -> int:
    numbers = [int(s.get(PROP_CANDIDATE, 1)) for s in strips if s.get(PROP_GROUP) == group]
    return max(numbers, default=1) + 1


def _base(name: str) -> str:
    return " ".join(name.split())[: strip_placement.MAX_STRIP_NAME - 18].rstrip(" ,") or "sound"


def _summary(task, source, made, original) -> str:
    channels = [s.channel for s in made]
    where = (f"channels {channels[0]}-{channels[-1]}" if channels == list(range(channels[0], channels[-1] + 1))
             else f"channels {', '.join(map(str, channels))}") if len(channels) > 1 else f"channel {channels[0]}"
    span = f"frames {source.span_start}-{source.span_end}"
    gone = f"; '{source.strip_name}' is gone, so nothing was muted" if original is None and task.kind != LAYER else ""
    if task.kind == STEMS:
        tracks = ", ".join(str(s[PROP_TRACK]) for s in made)
        text = f"{len(made)} stem{'s' if len(made) > 1 else ''} ({tracks}) on {where}, aligned with '{source.strip_name}' over {span}"
        return text + (f"; '{source.strip_name}' muted (the stems sum to it)" if original is not None else gone)
    if task.kind == REPAINT:
        text = f"'{made[0].name}' on {where} over {span}"
        return text + (f"; '{source.strip_name}' muted: Use This Take keeps one" if original is not None else gone)
    return f"'{made[0].name}' on {where}, aligned with '{source.strip_name}' over {span}"
