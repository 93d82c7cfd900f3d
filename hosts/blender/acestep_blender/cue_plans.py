"""Turn what the panel says into tasks: requests for the worker and where each cue goes.

Every check happens here, before anything is sent, and fails with an AceStepError that
says what to change. The frame arithmetic is acestep_core.timeline's, shared with REAPER.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import bpy

from acestep_core import timeline
from acestep_core.errors import AceStepError, InvalidRequest
from acestep_core.request import MAX_DURATION_S, MIN_DURATION_S, GenerationRequest

from . import compat, loop_options, worker_link
from .audio_files import resolve_output_folder
from .tasks import GENERATE, SCORE, VARIATION, CueJob, CuePlan, Task
from .preferences import AddonSettings
from .properties import NONE
from .strip_records import PROP_GROUP, PROP_PROMPT, PROP_REQUEST

LABEL_PROMPT_CHARS = 40


class BadInput(AceStepError):
    """Panel input that cannot be generated; the message says what to change."""


def scene_rate(scene) -> Fraction:
    return timeline.frame_rate(scene.render.fps, scene.render.fps_base)


def generation_seconds(frames: int, rate: Fraction) -> float:
    """Seconds to ask for: exactly the frames, but at least what the model makes (the
    strip is then trimmed to the frames)."""
    seconds = timeline.frames_to_seconds(frames, rate)
    if seconds > MAX_DURATION_S:
        raise BadInput(f"{float(seconds):.1f} s is longer than the {MAX_DURATION_S:g} s a cue can be; "
                       "choose a shorter span, or score it in sections with markers")
    return float(max(seconds, Fraction(MIN_DURATION_S)))


# -- Generate -----------------------------------------------------------------------------


def plan_generate(context, settings, addon: AddonSettings) -> Task:
    scene = compat.sequencer_scene(context)
    prompt = " ".join(settings.prompt.split())
    if not prompt:
        raise BadInput("type a prompt first, or pick words under Quick Picks and press Use Template")
    rate = scene_rate(scene)
    frame_start, frames = target_span(scene, settings, rate)
    request = request_from_panel(settings, addon, prompt, generation_seconds(frames, rate), settings.candidates,
                       settings.seed if settings.use_seed else None)
    request = _validated(loop_options.with_loop_options(request, settings))
    folder, notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    plan = CuePlan(name=prompt, frame_start=frame_start, frames=frames)
    return Task(GENERATE, f"Generate '{short_label(prompt)}'", scene.name, folder, [CueJob(request, plan)],
                quality=settings.quality, notice=notice)


def target_span(scene, settings, rate: Fraction) -> tuple[int, int]:
    """(first frame, length in frames) the cue must fill."""
    source = settings.duration_source
    if source == "SECONDS":
        return scene.frame_current, max(1, timeline.seconds_to_frames(settings.duration, rate))
    if source == "SELECTED":
        strips = compat.selected_strips(scene)
        if not strips:
            raise BadInput("no strips are selected: select the strips the music should fit, or set Length to Seconds")
        spans = [compat.strip_span(s) for s in strips]
        start = min(first for first, _ in spans)
        return start, max(end for _, end in spans) - start
    if source == "PREVIEW":
        if not scene.use_preview_range:
            raise BadInput("the preview range is off: turn it on (View > Range > Set Preview Range, or P) "
                           "or choose another Length")
        return scene.frame_preview_start, scene.frame_preview_end - scene.frame_preview_start + 1
    if source == "MARKERS":
        first, second = (_marker_frame(scene, n) for n in (settings.marker_from, settings.marker_to))
        if first == second:
            raise BadInput(f"markers '{settings.marker_from}' and '{settings.marker_to}' are on the same frame; "
                           "pick two markers with time between them")
        return min(first, second), abs(second - first)
    raise BadInput(f"unknown Length setting {source!r}")


def _marker_frame(scene, name: str) -> int:
    marker = scene.timeline_markers.get(name) if name else None
    if marker is None:
        raise BadInput(f"pick two markers for Between Markers ({'no marker named ' + repr(name) if name else 'one is empty'})")
    return marker.frame


# -- Score Cutscene -----------------------------------------------------------------------


def plan_score(context, settings, addon: AddonSettings) -> Task:
    scene = compat.sequencer_scene(context)
    rate = scene_rate(scene)
    markers = sorted(scene.timeline_markers, key=lambda m: m.frame)
    sheet = timeline.CueSheet.from_markers(
        [(m.name, timeline.frames_to_seconds(m.frame, rate)) for m in markers],
        end=timeline.frames_to_seconds(scene.frame_end + 1, rate),  # frame_end is the last frame shown
        crossfade=settings.crossfade,
        rate=rate,
    )
    prompts = {item.marker: " ".join(item.prompt.split()) for item in settings.section_prompts}
    style = " ".join(settings.score_style.split()).strip(", ")
    jobs = []
    for section in sheet:
        frames = section.frames(rate)
        prompt = prompts.get(section.name) or " ".join(section.name.split())
        if not prompt:
            raise BadInput(f"the marker at frame {frames.start} has no name: name it for its music (select it, "
                           "F2) or give it a prompt in Section Prompts")
        if style:
            prompt = f"{prompt}, {style}"
        seed = (settings.seed + section.index) if settings.use_seed else None
        request = request_from_panel(settings, addon, prompt, generation_seconds(frames.duration, rate), 1, seed)
        plan = CuePlan(name=section.name or prompt, frame_start=frames.start, frames=frames.duration,
                       fade_in=frames.fade_in, fade_out=frames.fade_out, section=section.name or prompt)
        jobs.append(CueJob(request, plan))
    folder, notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    return Task(SCORE, f"Score Cutscene ({len(jobs)} section{'s' if len(jobs) > 1 else ''})", scene.name,
                folder, jobs, quality=settings.quality, notice=notice)


# -- Regenerate ---------------------------------------------------------------------------


def plan_variation(context, settings, addon: AddonSettings, strip) -> Task:
    """A new take of a generated strip: same request and span, a new seed (or a cover of
    the strip's audio), stacked above it, muted, in the same group of takes."""
    scene = compat.sequencer_scene(context)
    if strip is None or PROP_PROMPT not in strip:
        raise BadInput("select a strip that ACE-Step generated to make a variation of it")
    rate = scene_rate(scene)
    strip_start, strip_end = compat.strip_span(strip)
    frames = strip_end - strip_start
    base = _stored_request(strip)
    request = GenerationRequest(**{**base.to_dict(), "seed": None, "candidates": 1,
                                   "duration": generation_seconds(frames, rate),
                                   "output_format": addon.output_format})
    notice, source = "", None
    if settings.variation == "COVER":
        link = worker_link.link
        link.connect(addon)
        if link.client is not None and link.health is None:
            link.refresh_health()
        if link.client is not None and link.supports("cover"):
            # The runner uploads it; the id it gets back becomes source_audio.
            source = Path(_absolute_sound_path(strip))
            if not source.is_file():
                raise BadInput(f"the audio of '{strip.name}' is missing ({source}); find it, or use New Seed")
            request = GenerationRequest(**{**request.to_dict(), "task": "cover", "source_audio": None,
                                           "loop": False, "loop_bars": None, "intro_bars": 0})
        else:
            notice = "this worker's model cannot make covers (the sketch backend cannot), so this is a new seed"
    if source is None:
        request = _validated(request)
    else:  # checked with a stand-in for the upload id the runner will get
        checked = _validated(dataclasses.replace(request, source_audio="pending upload"))
        request = dataclasses.replace(checked, source_audio=None)
    folder, folder_notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    plan = CuePlan(name=f"{_take_name(strip.name)} variation", frame_start=strip_start, frames=frames,
                   lowest_channel=strip.channel + 1, group=strip.get(PROP_GROUP), muted=True)
    job = CueJob(request, plan, source_audio=source)
    return Task(VARIATION, f"Variation of '{short_label(strip.name)}'", scene.name, folder, [job],
                quality=settings.quality, notice=" ".join(filter(None, [notice, folder_notice])))


def _stored_request(strip) -> GenerationRequest:
    try:
        return GenerationRequest.from_dict(json.loads(strip[PROP_REQUEST]))
    except (KeyError, ValueError, TypeError, InvalidRequest):
        # Made by another version: its prompt is enough to go on.
        return GenerationRequest(prompt=str(strip[PROP_PROMPT]))


def _absolute_sound_path(strip) -> str:
    sound = getattr(strip, "sound", None)
    if sound is None:
        raise BadInput(f"'{strip.name}' has no sound to make a cover of")
    return bpy.path.abspath(sound.filepath, library=sound.library)


def _take_name(name: str) -> str:
    """'calm exploration #2' -> 'calm exploration' (Blender's .001 suffixes too)."""
    base = name.rsplit(" #", 1)[0] if " #" in name else name
    return base.rsplit(".", 1)[0] if base[-4:-3] == "." and base[-3:].isdigit() else base


# -- shared -------------------------------------------------------------------------------


def request_from_panel(settings, addon: AddonSettings, prompt: str, seconds: float, candidates: int,
             seed: int | None) -> GenerationRequest:
    return _validated(GenerationRequest(
        prompt=prompt,
        duration=seconds,
        candidates=candidates,
        seed=seed,
        bpm=float(settings.bpm) if settings.use_bpm else None,
        key=None if settings.key == NONE else settings.key,
        time_signature=None if settings.time_signature == NONE else settings.time_signature,
        output_format=addon.output_format,
        style=settings.style_pack.strip() or None,
        style_scale=float(settings.style_scale) if settings.style_pack.strip() else 1.0,
    ))


def _validated(request: GenerationRequest) -> GenerationRequest:
    try:
        return request.validated()
    except InvalidRequest as exc:
        raise BadInput(f"{exc}; change it in the panel and press Generate again") from None


def short_label(text: str) -> str:
    return text if len(text) <= LABEL_PROMPT_CHARS else text[: LABEL_PROMPT_CHARS - 1].rstrip() + "…"
