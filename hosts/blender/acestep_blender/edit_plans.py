"""Edits of the active sound strip: Split into Stems, Repaint Selection, Add Layer.

Each plan checks everything before anything is sent (the strip, its file, the range, and
that the worker's model can do the task, from /v1/health's supports_tasks), and fails
with a BadInput that says what to change. The results are placed by edit_placement.py,
on the source strip's own grid: a result file has the source file's length, so a strip
that starts where the source's file starts (Blender's frame_start) and shows the same
span lines up with it, whatever the source's offsets.

Time inside the source file: a timeline frame f is (f - frame_start) / fps seconds into
the file, plus the strip's sound_offset (seconds the sound is shifted by), as Blender
plays it. (frame_start is content_start from 5.2 on: compat.content_start.)
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import bpy

from acestep_core.errors import InvalidRequest
from acestep_core.request import OUTPUT_FORMATS, SAMPLE_RATES, GenerationRequest
from acestep_core.stems import file_format, split_request

from . import compat, worker_link
from .audio_files import resolve_output_folder
from .cue_plans import BadInput, scene_rate, short_label
from .strip_records import PROP_PROMPT, PROP_REQUEST
from .tasks import LAYER, REPAINT, STEMS, CueJob, CuePlan, EditSource, Task

# What each action needs from the worker's model, and what to do when it cannot.
ACTION_TASKS = {"STEMS": "stems", "REPAINT": "repaint", "LAYER": "lego"}
MODEL_FIX = "start the worker on an ACE-Step checkpoint (Worker Command, or 'acestep-dcc worker --backend acestep --model FOLDER')"
RANGE_FIX = ("turn on the preview range over the part to change (View > Range > Set Preview Range, or P), "
             "or put a marker on each side of the playhead (M)")
UPLOAD_STAND_IN = "pending upload"  # checked in place of the upload id the runner gets back
# acestep_core.backends.base.BASE_REPO_ID: that module imports numpy for type checks, which
# the extension's import check refuses, so its sentence (needs_base_checkpoint) is repeated here.
BASE_REPO_ID = "ACE-Step/acestep-v15-xl-base-diffusers"


def needs_base_checkpoint(task: str) -> str:
    """The worker's own refusal of a base-only task on a turbo checkpoint, said before sending."""
    return (f"{task} needs a base or sft checkpoint; ACE-Step's turbo checkpoints were not trained for it: "
            f"run 'acestep-dcc download-model {BASE_REPO_ID}' and pass --model")


# -- what the model can do --------------------------------------------------------------


def task_support(health: dict | None, task: str) -> tuple[bool | None, str]:
    """(can, why not) for "stems", "repaint" or "lego" on the worker `health` describes.
    can is None when nothing is known yet (not connected): the action then asks the worker."""
    if not health:
        return None, "connect to see what the worker's model can do"
    tasks = health.get("supports_tasks") or ()
    label = health.get("label") or health.get("backend") or "this worker's model"
    if task == "stems":
        if health.get("supports_stems") or "extract" in tasks:
            return True, ""
        if health.get("backend") == "acestep":
            return False, needs_base_checkpoint("extract")
        return False, f"{label} cannot make stems; {MODEL_FIX}"
    if task in tasks:
        return True, ""
    if health.get("backend") == "acestep" and task in ("lego", "extract", "complete"):
        return False, needs_base_checkpoint(task)
    verb = {"repaint": "repaint", "lego": "add a layer (lego)"}.get(task, f"run {task}")
    return False, f"{label} cannot {verb}; {MODEL_FIX}"


def _worker_health(addon) -> dict:
    """Connect (one probe, like Regenerate's cover) and read health; {} when it is still starting."""
    link = worker_link.link
    link.connect(addon)
    if link.client is not None and link.health is None:
        link.refresh_health()
    return link.health or {}


def _require(addon, task: str) -> dict:
    health = _worker_health(addon)
    can, why = task_support(health, task)
    if can is False:
        raise BadInput(why)
    return health


# -- the strip --------------------------------------------------------------------------


def active_sound_strip(context):
    editor = compat.sequence_editor(compat.sequencer_scene(context))
    strip = editor.active_strip if editor is not None else None
    if strip is None or strip.type != "SOUND":
        raise BadInput("make a sound strip active first (click it in the Sequencer)")
    return strip


def source_file(strip) -> Path:
    sound = strip.sound
    if sound is None:
        raise BadInput(f"'{strip.name}' has no sound")
    if len(getattr(strip, "retiming_keys", ()) or ()):
        raise BadInput(f"'{strip.name}' is retimed (its speed was changed); edits line up with a strip played at "
                       "its own speed: clear its retiming first (Strip > Retiming), or edit an unretimed copy")
    path = Path(bpy.path.abspath(sound.filepath, library=sound.library))
    if not path.is_file():
        raise BadInput(f"the audio of '{strip.name}' is missing ({path}); find it (File > External Data) first")
    return path


def edit_source(strip, track: str | None = None) -> EditSource:
    start, end = compat.strip_span(strip)
    return EditSource(strip.name, strip.channel, float(compat.content_start(strip)), int(start), int(end), track)


def file_seconds(frame: float, strip, rate: Fraction) -> Fraction:
    """Seconds into the strip's file at timeline `frame`."""
    offset = Fraction(getattr(strip, "sound_offset", 0.0) or 0.0)
    return (Fraction(frame) - Fraction(compat.content_start(strip))) / rate + offset


def edit_range(scene, strip) -> tuple[int, int]:
    """[first, end) frames to change: the preview range when it is on, else the two markers
    around the playhead; clipped to what the strip shows."""
    if scene.use_preview_range:
        first, end = scene.frame_preview_start, scene.frame_preview_end + 1  # the end frame is shown
        where = f"the preview range (frames {first}-{end - 1})"
    else:
        frames = sorted({m.frame for m in scene.timeline_markers})
        before = [f for f in frames if f <= scene.frame_current]
        after = [f for f in frames if f > scene.frame_current]
        if not before or not after:
            raise BadInput(f"no range to change: {RANGE_FIX}")
        first, end = before[-1], after[0]
        where = f"the markers around the playhead (frames {first}-{end})"
    span_start, span_end = compat.strip_span(strip)
    first, end = max(first, span_start), min(end, span_end)
    if first >= end:
        raise BadInput(f"{where} is outside '{strip.name}' (frames {span_start}-{span_end - 1}); "
                       f"move it over the strip, or {RANGE_FIX}")
    return int(first), int(end)


def range_seconds(strip, first: int, end: int, rate: Fraction, file_length: float) -> tuple[float, float]:
    start_s = max(Fraction(0), file_seconds(first, strip, rate))
    end_s = min(Fraction(file_length), file_seconds(end, strip, rate))
    if start_s >= end_s:
        raise BadInput(f"frames {first}-{end} are past the end of '{strip.name}''s audio; {RANGE_FIX}")
    return round(float(start_s), 6), round(float(end_s), 6)


# -- the plans --------------------------------------------------------------------------


def plan_stems(context, settings, addon, strip) -> Task:
    """Split the strip's file into stems: the sketch renders a file it made again with its
    parts alone; any other file is the model's extract, one run per track."""
    scene = compat.sequencer_scene(context)
    path = source_file(strip)
    health = _require(addon, "stems")
    tracks = sorted(settings.stem_tracks, key=_track_order) or None
    try:
        request = split_request(path, tracks, by_model=bool(health) and health.get("backend") != "sketch")
    except InvalidRequest as exc:
        raise BadInput(str(exc)) from None
    if request.task == "extract" and health and "extract" not in (health.get("supports_tasks") or ()):
        raise BadInput(f"{path.name} was not made by the sketch backend, and other audio is split by ACE-Step's "
                       f"extract, which needs a base or sft checkpoint: run 'acestep-dcc download-model "
                       f"{BASE_REPO_ID}' and {MODEL_FIX}")
    upload = None
    if request.source_audio:  # the runner uploads it; the id it gets back becomes source_audio
        upload, request = Path(request.source_audio), dataclasses.replace(request, source_audio=None)
    source = edit_source(strip)
    job = CueJob(request, _plan(source, strip.name), source_audio=upload, edit=source, stems=True)
    return _task(STEMS, f"Split '{short_label(strip.name)}' into stems", scene, addon, job)


def plan_repaint(context, settings, addon, strip) -> Task:
    """Regenerate the part of the strip inside the range from the prompt; the rest is the source."""
    scene = compat.sequencer_scene(context)
    path = source_file(strip)
    first, end = edit_range(scene, strip)
    _require(addon, "repaint")
    request, seconds = _source_request(strip, settings, addon, path, "repaint")
    start_s, end_s = range_seconds(strip, first, end, scene_rate(scene), seconds)
    request = _checked(dataclasses.replace(request, repaint_start=start_s, repaint_end=end_s))
    source = edit_source(strip)
    job = CueJob(request, _plan(source, f"{strip.name} repaint"), source_audio=path, edit=source)
    return _task(REPAINT, f"Repaint '{short_label(strip.name)}' frames {first}-{end}", scene, addon, job)


def plan_layer(context, settings, addon, strip, track: str, prompt: str, use_range: bool) -> Task:
    """A new instrument over the strip (lego), over the whole strip or only the range."""
    scene = compat.sequencer_scene(context)
    path = source_file(strip)
    first_end = edit_range(scene, strip) if use_range else None
    _require(addon, "lego")
    request, seconds = _source_request(strip, settings, addon, path, "lego", prompt)
    request = dataclasses.replace(request, track=track)
    if first_end is not None:
        start_s, end_s = range_seconds(strip, *first_end, scene_rate(scene), seconds)
        request = dataclasses.replace(request, repaint_start=start_s, repaint_end=end_s)
    request = _checked(request)
    source = edit_source(strip, track)
    job = CueJob(request, _plan(source, f"{strip.name} ({track})"), source_audio=path, edit=source)
    where = f" frames {first_end[0]}-{first_end[1]}" if first_end else ""
    return _task(LAYER, f"Add {track} to '{short_label(strip.name)}'{where}", scene, addon, job)


def _source_request(strip, settings, addon, path: Path, task: str, prompt: str | None = None):
    """The request for an edit of `path`: the prompt, the tempo/key/meter the strip was
    made with (when ACE-Step made it), and the file's own length, rate, bit depth and
    format, so the source can be put back sample for sample outside the range."""
    prompt = " ".join((prompt if prompt is not None else settings.edit_prompt).split()) \
        or str(strip.get(PROP_PROMPT, "")).strip() or " ".join(settings.prompt.split())
    if not prompt:
        raise BadInput("type a prompt for the new music (Edit Prompt), or make a generated strip active")
    fmt, rate, bits, seconds = source_format(path)
    recorded = {}
    if PROP_REQUEST in strip:
        try:
            recorded = json.loads(strip[PROP_REQUEST])
        except (TypeError, ValueError):
            recorded = {}
    request = GenerationRequest(
        prompt=prompt, task=task, source_audio=None, duration=round(seconds, 6),
        output_format=fmt if fmt in OUTPUT_FORMATS else addon.output_format, sample_rate=rate, bit_depth=bits,
        bpm=recorded.get("bpm"), key=recorded.get("key"), time_signature=recorded.get("time_signature"),
        seed=settings.seed if settings.use_seed else None)
    return request, seconds


def source_format(path: Path) -> tuple[str, int, int, float]:
    """(format, rate, bit depth, seconds) to write an edit of `path` in: its own. Blender's
    Python has no soundfile, so the core reads WAV with the standard library; other files
    (FLAC, Ogg, MP3) are read with Blender's own audio module, as 16-bit."""
    try:
        return file_format(path)
    except InvalidRequest as exc:
        problem = str(exc)
    try:
        import aud

        sound = aud.Sound(str(path))
        file_rate, frames = int(sound.specs[0]), int(sound.length)
    except Exception:
        raise BadInput(problem) from None
    if file_rate <= 0 or frames <= 0:
        raise BadInput(problem)
    fmt = path.suffix.lstrip(".").lower()
    return (fmt if fmt in OUTPUT_FORMATS else "wav", file_rate if file_rate in SAMPLE_RATES else 48000, 16,
            frames / file_rate)


def _checked(request: GenerationRequest) -> GenerationRequest:
    """Validated with a stand-in for the upload id; source_audio stays empty for the runner."""
    try:
        checked = dataclasses.replace(request, source_audio=UPLOAD_STAND_IN).validated()
    except InvalidRequest as exc:
        raise BadInput(f"{exc}; change it and try again") from None
    return dataclasses.replace(checked, source_audio=None)


def _plan(source: EditSource, name: str) -> CuePlan:
    return CuePlan(name=name, frame_start=source.span_start, frames=source.span_end - source.span_start,
                   lowest_channel=source.channel + 1)


def _task(kind: str, label: str, scene, addon, job: CueJob) -> Task:
    folder, notice = resolve_output_folder(addon.output_folder, bpy.data.filepath)
    return Task(kind, label, scene.name, folder, [job], quality=scene.acestep.quality, notice=notice)


def _track_order(name: str) -> int:
    from acestep_core.request import TRACK_NAMES

    return TRACK_NAMES.index(name) if name in TRACK_NAMES else len(TRACK_NAMES)
