"""The Loop, Intro and Loudness options of Generate, and how long a looped cue's strip is.

A looped WAV carries one guard frame after the loop end (so players that read past the
end still hear the seam right), so the file's length is not the loop's: the strip length
comes from the output's loop record, loop_end_exclusive samples, in scene frames. A
loop with an intro starts at loop_start (the intro's frames): its strip is the intro
and one loop, from the file's first frame.
No bpy calls here: the arithmetic is tested directly.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from acestep_core import timeline
from acestep_core.request import GenerationRequest, auto_intro_bars

from .properties import NONE


LOUDNESS_TARGET = "TARGET"  # the Loudness choice that reads the LUFS field


def panel_loudness(settings) -> str | float | None:
    """The request's loudness from the panel: None, a preset name, or a target in LUFS."""
    if settings.loudness == NONE:
        return None
    return float(settings.loudness_lufs) if settings.loudness == LOUDNESS_TARGET else settings.loudness


def with_loop_options(request: GenerationRequest, settings) -> GenerationRequest:
    """`request` with the panel's Loop, Bars, Intro Bars and Loudness (not yet validated).
    Bars and Intro Bars only count with Loop on, as the panel shows them."""
    loudness = panel_loudness(settings)
    if not settings.loop:
        return dataclasses.replace(request, loudness=loudness)
    bars = int(settings.loop_bars) or None  # 0 = fit the length
    intro = auto_intro_bars(bars) if settings.intro_auto else int(settings.intro_bars)
    return dataclasses.replace(request, loop=True, loop_bars=bars, intro_bars=intro, loudness=loudness)


def loop_record(output) -> dict | None:
    record = (output.metadata or {}).get("loop") if output is not None else None
    return record if isinstance(record, dict) and "loop_end_exclusive" in record else None


def loop_frames(output, rate: Fraction) -> int | None:
    """Scene frames from the file's start to the loop's end, or None for a cue that is no
    loop. Rounded to the nearest frame, as every other cue length is."""
    record = loop_record(output)
    if record is None or not output.sample_rate:
        return None
    seconds = Fraction(int(record["loop_end_exclusive"]), int(output.sample_rate))
    return max(1, timeline.seconds_to_frames(seconds, rate))


def fit_plans_to_loops(task, rate: Fraction) -> None:
    """A looped job's strips are one loop long (after the intro, if any), whatever span
    was asked: the worker chose the whole bars. Called at placement, before channels are
    chosen."""
    for job in task.jobs:
        outputs = job.status.outputs if job.status is not None else []
        lengths = [n for n in (loop_frames(o, rate) for o in outputs) if n]
        if lengths:
            job.plan.frames = max(lengths)


def loop_start_seconds(output) -> float | None:
    """Seconds from the file's start to the loop's first frame (the intro's length; 0
    without one), or None for a cue that is no loop."""
    record = loop_record(output)
    if record is None or not output.sample_rate:
        return None
    return round(int(record.get("loop_start") or 0) / int(output.sample_rate), 6)
