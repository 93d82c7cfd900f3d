"""Make Intensity Set: one worker job (base loop, layers or variants, stingers, a
manifest and Godot resources) placed at the playhead as stacked sound strips.

Base and level loops share the first free channels over the loop's span. Layers (the
default: stems of the base that stack) all play and the base, their full mix, arrives
muted: mute the upper layers to hear a lower level. Variants (one loop per level) arrive
muted but the base, to audition one at a time. A worker that could not make layers (a
turbo checkpoint) sends variants, and the message says so. The stingers follow the
loop's end on one more channel. Planning builds on cue_plans and placement on
strip_placement; the operators (operators.py) run both through the same tracker, runner
and undoable placement as Generate.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import bpy

from acestep_core import timeline
from acestep_core.errors import AceStepError, InvalidRequest

from . import compat, cue_plans, loop_options, strip_placement, strip_records
from .audio_files import resolve_output_folder
from .strip_records import PROP_LEVEL, PROP_ROLE
from .tasks import SET, CueJob, CuePlan, Task


# -- planning -----------------------------------------------------------------------------


def plan_set(context, settings, addon) -> Task:
    scene = compat.sequencer_scene(context)
    prompt = " ".join(settings.prompt.split())
    if not prompt:
        raise cue_plans.BadInput("type a prompt first, or pick words under Quick Picks and press Use Template")
    rate = cue_plans.scene_rate(scene)
    _, frames = cue_plans.target_span(scene, settings, rate)  # the length "fit" bars follow
    request = cue_plans.request_from_panel(settings, addon, prompt, cue_plans.generation_seconds(frames, rate), 1,
                                 settings.seed if settings.use_seed else None)
    loudness = loop_options.panel_loudness(settings)
    bars = int(settings.set_bars) or None  # 0 = fit the length
    # The worker makes the loops from this request: check it as one here, before sending.
    try:
        checked = dataclasses.replace(request, loop=True, loop_bars=bars, loudness=loudness).validated()
    except InvalidRequest as exc:
        raise cue_plans.BadInput(f"{exc}; change it in the Intensity Set panel and press Make Intensity Set again") from None
    request = dataclasses.replace(checked, loop=False, loop_bars=None)
    count = "variants" if getattr(settings, "set_kind", "LAYERS") == "VARIANTS" else "intensities"
    options = {count: int(settings.set_intensities), "bars": bars, "stingers": int(settings.set_stingers)}
    folder, notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    plan = CuePlan(name=prompt, frame_start=scene.frame_current, frames=frames)
    label = f"Intensity Set '{cue_plans.short_label(prompt)}'"
    return Task(SET, label, scene.name, folder, [CueJob(request, plan, set_options=options)],
                quality=settings.quality, notice=notice)


# -- placing ------------------------------------------------------------------------------


def place_set(task) -> str:
    """Strips for a finished set, all or none. Raises AceStepError."""
    scene = strip_placement.task_scene(task)
    job = task.jobs[0]
    rate = timeline.frame_rate(scene.render.fps, scene.render.fps_base)
    outputs = sorted(job.status.outputs, key=lambda o: o.index)
    if len(outputs) != len(job.files):
        raise AceStepError(f"the set came back with {len(job.files)} of {len(outputs)} files; make it again")
    items = list(zip(outputs, job.files))
    layers = [(o, p) for o, p in items if o.set_role in ("base", "layer", "intensity")]
    stacked = any(o.set_role == "layer" for o, _ in layers)
    stingers = [(o, p) for o, p in items if o.set_role == "stinger"]
    if not layers or layers[0][0].set_role != "base":
        raise AceStepError("the worker sent a set without its base loop; update the worker and make it again")
    for _, path in items:
        if not path.is_file():
            raise AceStepError(f"the audio file {path} is gone (moved or deleted before it was placed); make the set again")

    start = job.plan.frame_start
    loop_len = loop_options.loop_frames(layers[0][0], rate) or _frames(layers[0][0].duration, rate)
    stinger_lens = [_frames(o.duration, rate) for o, _ in stingers]
    editor = compat.sequence_editor(scene, create=True)
    occupied = list(compat.occupied_ranges(editor))
    channels = timeline.first_free_channels(occupied, start, start + loop_len, count=len(layers))
    stinger_channel = None
    if stingers:
        end = start + loop_len + sum(stinger_lens)
        stinger_channel = timeline.first_free_channels(occupied, start + loop_len, end, count=1,
                                                       lowest=max(channels) + 1)[0]

    made = []
    strips = compat.top_strips(editor)
    try:
        for (output, path), channel in zip(layers, channels):
            muted = output.set_role == "base" if stacked else output.set_role != "base"
            made.append(_add(strips, job, output, path, channel, start, loop_len, muted=muted))
        frame = start + loop_len
        for (output, path), length in zip(stingers, stinger_lens):
            made.append(_add(strips, job, output, path, stinger_channel, frame, length, muted=False))
            frame += length
    except Exception:
        for strip in made:
            strips.remove(strip)
        raise
    where = ", ".join(map(str, channels))
    musical = strip_records.tempo_and_key(made[0], measured=False)
    kind = "layers" if stacked else "variants"
    how = ("the layers play together, the base (their full mix) is muted: mute the upper layers for a lower "
           "level" if stacked else "variants muted: unmute one to hear it")
    text = (f"a set of {len(layers) - 1} {kind} over {loop_len} frames at frame {start} on channels {where}"
            f"{f' ({musical})' if musical else ''} ({how})")
    if stingers:
        text += f", {len(stingers)} stingers on channel {stinger_channel} after the loop"
    manifest = job.status.manifest or {}
    if manifest.get("fallback"):
        text += f". Variants, not layers: {manifest['fallback']}"
    folder = job.files[0].parent
    return text + f"; manifest and Godot resources in {folder}"


def _frames(seconds: float, rate: Fraction) -> int:
    return max(1, timeline.seconds_to_frames(Fraction(str(seconds)), rate))


def _add(strips, job, output, path, channel: int, frame_start: int, frames: int, muted: bool):
    name = strip_name(job.plan.name, output)
    strip = strips.new_sound(name=name, filepath=strip_placement.strip_file_path(path), channel=channel,
                             frame_start=frame_start)
    if strip.channel != channel:  # Blender moved it off an overlap we did not see
        strips.remove(strip)
        raise AceStepError(f"channel {channel} was not free for '{name}'; try again")
    compat.set_strip_length(strip, frames)
    strip.mute = muted
    strip.show_waveform = True
    info = output.metadata.get("set") or {}
    strip_records.record_output(strip, job, output)
    strip[PROP_ROLE] = output.set_role
    strip[PROP_LEVEL] = int(info.get("level") or info.get("number") or 0)
    return strip


def strip_name(prompt: str, output) -> str:
    """'<prompt> (base)', '<prompt> (layer 2/3: bass)', '<prompt> (intensity 2/3)', '<prompt> (stinger 1/2)'."""
    info = output.metadata.get("set") or {}
    role = output.set_role
    if role == "layer":
        parts = ", ".join(info.get("parts") or [])
        suffix = f" (layer {info.get('level')}/{info.get('levels')}{': ' + parts if parts else ''})"
    elif role == "intensity":
        suffix = f" (intensity {info.get('level')}/{info.get('levels')})"
    elif role == "stinger":
        suffix = f" (stinger {info.get('number')}/{info.get('stingers')})"
    else:
        suffix = " (base)"
    base = " ".join(prompt.split()) or "set"
    return base[: strip_placement.MAX_STRIP_NAME - len(suffix)].rstrip(" ,") + suffix
