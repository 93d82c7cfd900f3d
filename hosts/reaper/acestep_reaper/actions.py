"""The REAPER actions. The generating ones ask what they need, start a Generation and
return to REAPER at once; errors end in a message box that says what to do.

    Generate at edit cursor      generate_at_edit_cursor()   (optionally a seamless loop, after an intro)
    Generate variations          generate_variations()
    Score regions                score_regions()
    Make intensity set           make_intensity_set()
    Split selected item into stems  split_into_stems()     (a folder track, one child per stem)
    Repaint time selection       repaint_time_selection()   (a new take on the selected item)
    Add layer to selected item   add_layer()                (lego: a new part on a track below)
    Cancel                       cancel()
    Stop worker                  stop_worker()               (frees the model's memory now)
    Worker settings              worker_settings()           (Worker Python, idle unload and exit)
    Insert from library          insert_from_library()       (library_insert.py: search, pick, place)
    Refine selected item         refine_selected_item()      (refine_item.py: its request again, your changes)

`run_action(name)` is what the action scripts call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import traceback
from pathlib import Path

from acestep_core.client import MAX_SET_INTENSITIES, MAX_SET_STINGERS, WorkerClient
from acestep_core.worker import discovery
from acestep_core.errors import AceStepError, FieldProblem, InvalidRequest, WorkerError
from acestep_core.keywords import compose_prompt
from acestep_core.request import (AUTO_INTRO, MAX_INTRO_BARS, TRACK_NAMES, GenerationRequest, auto_intro_bars,
                                  beats_per_bar)
from acestep_core.stems import file_format, split_request
from acestep_core.timeline import CueSheet

from . import generation, media, project, settings, style_packs
from .generation import Generation, SetGeneration, StemsGeneration
from .library_insert import insert_from_library
from .refine_item import refine_selected_item
from .loops import default_loop
from .settings import find_worker  # a remote worker when one is set
from .placements import (SCORE_TRACK_NAME, IntensitySetTracks, LayerTrack, NewItem, NewTakes, RepaintTake,
                         ScoreCues, StemTracks)

# The keyword library's template with its slots showing, as the prompt's default text.
PROMPT_TEMPLATE = compose_prompt("[mood]", "[scene]", "[style]", ["[instruments]"], "[tempo]")
DEFAULT_SECONDS = 30.0
DEFAULT_CANDIDATES = 2
DEFAULT_CROSSFADE = 2.0
DEFAULT_SET_BARS = 16
DEFAULT_INTENSITIES = 3
DEFAULT_STINGERS = 2
PROMPT_EXAMPLE = "tense boss battle, synthwave, fast drums"
FIT = "fit"
# Captions hold no commas: REAPER splits GetUserInputs' captions on them.
LOUDNESS_CAPTION = "Loudness (console or mobile or LUFS; empty: as made)"
INTRO_CAPTION = f"Intro bars (0-{MAX_INTRO_BARS} or {AUTO_INTRO} before the loop; empty: none)"


# -- reading the dialog ----------------------------------------------------------------------


def clean_prompt(text: str) -> str:
    """The prompt without the template's unfilled [slots] and the commas they leave."""
    text = re.sub(r"\[[^\]]*\]", " ", text)
    parts = [" ".join(part.split()) for part in text.split(",")]
    return ", ".join(part for part in parts if part)


def _number(text: str, field: str, caption: str, kind=float, optional: bool = False):
    text = text.strip()
    if not text and optional:
        return None
    try:
        return kind(text)
    except ValueError:
        example = "30" if kind is float else "2"
        raise InvalidRequest([FieldProblem(field, f"{caption} must be a {'number' if kind is float else 'whole number'}, like {example}; got {text!r}")]) from None


def _loop_bars(text: str, field: str, caption: str, optional: bool) -> tuple[bool, int | None]:
    """'' -> no loop (when optional); 'fit' -> a loop of the whole bars nearest the seconds;
    '8' -> a loop of 8 bars."""
    text = text.strip().lower()
    if not text and optional:
        return False, None
    if text == FIT:
        return True, None
    try:
        return True, int(text)
    except ValueError:
        empty = ", or empty for no loop" if optional else ""
        raise InvalidRequest([FieldProblem(field, f"{caption} must be a number of bars such as 8, or '{FIT}' for the "
                                                  f"whole bars nearest the seconds{empty}; got {text!r}")]) from None


def _intro_bars(text: str, loop: bool, loop_bars: int | None = None) -> int:
    """'' or '0' -> no intro; '2' -> two bars that play once before the loop (only with one);
    'auto' -> the intro `acestep-dcc generate --intro auto` makes."""
    text = text.strip()
    if not text:
        return 0
    try:
        bars = auto_intro_bars(loop_bars) if text.lower() == AUTO_INTRO else int(text)
    except ValueError:
        bars = None
    if bars is None or not 0 <= bars <= MAX_INTRO_BARS:
        raise InvalidRequest([FieldProblem("intro_bars", f"Intro bars must be a whole number of bars from 0 to "
                                                         f"{MAX_INTRO_BARS}, '{AUTO_INTRO}', or empty for no intro; "
                                                         f"got {text!r}")])
    if bars and not loop:
        raise InvalidRequest([FieldProblem("intro_bars", "Intro bars come before a loop: fill in Loop bars (a number "
                                                         f"or '{FIT}'), or leave Intro bars empty")])
    return bars


def _loudness(text: str) -> str | float | None:
    """'' -> as generated; 'console' or 'mobile' -> that preset; '-14' -> a target in LUFS
    (the request's validation explains any other value)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _fmt(value: float) -> str:
    return f"{round(value, 3):g}"


def generate_at_edit_cursor(loop=None) -> Generation | None:
    context = project.read_edit_context()
    seconds = context.selection[1] - context.selection[0] if context.selection else DEFAULT_SECONDS
    last_prompt = project.get_state("last_prompt", settings.EXT_SECTION)
    fields = [
        ("Prompt", last_prompt or PROMPT_TEMPLATE),
        ("Seconds", _fmt(seconds)),
        ("Candidates (one take each)", str(DEFAULT_CANDIDATES)),
        ("Seed (empty: random)", ""),
        ("BPM", _fmt(context.bpm)),
        ("Time signature", context.time_signature or ""),
        ("Key (empty: any)", ""),
        (f"Loop bars ({FIT}: nearest Seconds; empty: no loop)", ""),
        (INTRO_CAPTION, ""),
        (LOUDNESS_CAPTION, ""),
    ]
    packs = style_packs.usable_packs()  # the field shows only when the worker has packs to use
    if packs:
        fields.append((style_packs.caption(packs), project.get_state("last_style", settings.EXT_SECTION) or ""))

    def parse(values: list[str]) -> GenerationRequest:
        style, style_scale = style_packs.parse(values[10], packs) if packs else (None, 1.0)
        prompt = clean_prompt(values[0])
        if not prompt:
            raise InvalidRequest([FieldProblem("prompt", f"Type a prompt: replace the [words] in brackets, for example '{PROMPT_EXAMPLE}'")])
        loop, loop_bars = _loop_bars(values[7], "loop_bars", "Loop bars", optional=True)
        intro_bars = _intro_bars(values[8], loop, loop_bars)
        return GenerationRequest(
            prompt=prompt,
            duration=_number(values[1], "duration", "Seconds"),
            candidates=_number(values[2], "candidates", "Candidates", int),
            seed=_number(values[3], "seed", "Seed", int, optional=True),
            bpm=_number(values[4], "bpm", "BPM", float, optional=True),
            time_signature=values[5].strip() or None,
            key=values[6].strip() or None,
            loop=loop,
            loop_bars=loop_bars,
            intro_bars=intro_bars,
            loudness=_loudness(values[9]),
            style=style,
            style_scale=style_scale,
        ).validated()

    request = project.ask_until_valid("ACE-Step: Generate at edit cursor", fields, parse)
    if request is None:
        return None
    project.set_state("last_prompt", request.prompt, settings.EXT_SECTION, persist=True)
    if packs:
        style_text = "" if request.style is None else f"{request.style}:{request.style_scale:g}"
        project.set_state("last_style", style_text, settings.EXT_SECTION, persist=True)
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    placement = NewItem(context.project, context.track, context.cursor, request.duration).start()
    run = Generation([request], placement, folder, notice)
    (loop or default_loop()).start(run)
    return run


# -- Generate variations of the selected item ----------------------------------------------------


def _worker_tasks() -> list[str]:
    """The tasks the running worker's backend supports; text2music when none answers yet."""
    client = find_worker(timeout=generation.PROBE_TIMEOUT)
    if client is None:
        return ["text2music"]
    try:
        return list(client.health().get("supports_tasks") or ["text2music"])
    except WorkerError:
        return ["text2music"]


def generate_variations(loop=None) -> Generation | None:
    context = project.read_edit_context()
    item = project.read_selected_item(context.project)
    if item is None:
        raise AceStepError("Select the item to make variations of (click it), then run this action again.")
    try:
        base = GenerationRequest.from_dict(json.loads(item.request_json)) if item.request_json else None
    except (ValueError, AceStepError):
        base = None
    can_cover = "cover" in _worker_tasks() and bool(item.active_source)
    fields = [
        ("Prompt", base.prompt if base else (item.active_take_name or PROMPT_TEMPLATE)),
        ("Variations (one take each)", str(DEFAULT_CANDIDATES)),
        ("Seed (empty: random)", ""),
    ]
    if can_cover:
        fields.append(("Cover strength 0-1 (empty: new seeds)", ""))

    def parse(values: list[str]) -> GenerationRequest:
        prompt = clean_prompt(values[0])
        if not prompt:
            raise InvalidRequest([FieldProblem("prompt", f"Type a prompt, for example '{PROMPT_EXAMPLE}'")])
        data = base.to_dict() if base else {}
        data.update(prompt=prompt, duration=max(1.0, round(item.length, 3)),
                    candidates=_number(values[1], "candidates", "Variations", int),
                    seed=_number(values[2], "seed", "Seed", int, optional=True))
        if data.get("bpm") is None:
            data["bpm"], data["time_signature"] = project.tempo_at(context.project, item.position)
        strength = _number(values[3], "cover_strength", "Cover strength", float, optional=True) if can_cover else None
        if strength is not None:
            data.update(task="cover", cover_strength=strength, source_audio="upload pending")
        request = GenerationRequest(**data).validated()
        if request.task == "cover":
            request.source_audio = None  # replaced by the upload's id before submitting
        return request

    request = project.ask_until_valid("ACE-Step: Generate variations", fields, parse)
    if request is None:
        return None
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    uploads = [item.active_source if request.task == "cover" else None]
    run = Generation([request], NewTakes(context.project, item), folder, notice, uploads)
    (loop or default_loop()).start(run)
    return run


# -- Score regions ----------------------------------------------------------------------------------


def score_regions(loop=None) -> Generation | None:
    context = project.read_edit_context()
    regions = project.read_regions(context.project)
    if not regions:
        raise AceStepError("This project has no regions. Add a region over each part that needs music "
                           "(Markers > Insert region from time selection) and name it for the music, "
                           f"for example '{PROMPT_EXAMPLE}'; then run this action again.")
    unnamed = [r.number for r in regions if not clean_prompt(r.name)]
    if unnamed:
        numbers = ", ".join(str(n) for n in unnamed)
        raise AceStepError(f"Region {numbers} {'has' if len(unnamed) == 1 else 'have'} no name. Each region's name is "
                           f"its prompt: double-click the region and name it for its music, for example '{PROMPT_EXAMPLE}'.")
    fields = [("Crossfade (seconds)", _fmt(DEFAULT_CROSSFADE)), ("Seed (empty: random)", "")]

    def parse(values: list[str]):
        crossfade = _number(values[0], "crossfade", "Crossfade", float)
        seed = _number(values[1], "seed", "Seed", int, optional=True)
        sheet = CueSheet.from_regions([(clean_prompt(r.name), r.start, r.end) for r in regions], crossfade=crossfade)
        requests = []
        problems = []
        for section in sheet.sections:
            bpm, signature = project.tempo_at(context.project, float(section.start))
            request = GenerationRequest(prompt=section.name, duration=round(float(section.duration), 3), candidates=1,
                                        seed=None if seed is None else seed + section.index, bpm=bpm,
                                        time_signature=signature)
            problems += [FieldProblem(p.field, f"region '{section.name}': {p.message}") for p in request.problems()]
            requests.append(request)
        if problems:
            raise InvalidRequest(problems)
        return sheet, requests

    parsed = project.ask_until_valid("ACE-Step: Score regions", fields, parse)
    if parsed is None:
        return None
    sheet, requests = parsed
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    track = project.find_track(context.project, SCORE_TRACK_NAME)
    placement = ScoreCues(context.project, track, list(sheet.sections)).start()
    run = Generation(requests, placement, folder, notice)
    (loop or default_loop()).start(run)
    return run


# -- Make intensity set -------------------------------------------------------------------------------


def _count(text: str, field: str, caption: str, lowest: int, highest: int) -> int:
    value = _number(text, field, caption, int)
    if not lowest <= value <= highest:
        raise InvalidRequest([FieldProblem(field, f"{caption} must be from {lowest} to {highest}, got {value}")])
    return value


SET_KINDS = ("layers", "variants")


def _set_kind(text: str) -> str:
    kind = text.strip().lower() or SET_KINDS[0]
    if kind not in SET_KINDS:
        raise InvalidRequest([FieldProblem("kind", (
            f"Set kind must be layers (stems that stack) or variants (loops to switch between), got {text.strip()!r}"))])
    return kind


def make_intensity_set(loop=None) -> Generation | None:
    """A dynamic-music set at the edit cursor: the base loop and each level on stacked new
    tracks, layers (stems that stack, the default) or variants, the stingers after the loop
    on their own track (placements.set_lanes), and the set's files with its manifest and
    Godot resources in a folder of the media folder."""
    context = project.read_edit_context()
    seconds = context.selection[1] - context.selection[0] if context.selection else DEFAULT_SECONDS
    last_prompt = project.get_state("last_prompt", settings.EXT_SECTION)
    fields = [
        ("Prompt", last_prompt or PROMPT_TEMPLATE),
        (f"Loop bars ({FIT}: nearest Seconds)", FIT if context.selection else str(DEFAULT_SET_BARS)),
        ("Seconds", _fmt(seconds)),
        (f"Intensity levels (1-{MAX_SET_INTENSITIES})", str(DEFAULT_INTENSITIES)),
        (f"Stingers (0-{MAX_SET_STINGERS})", str(DEFAULT_STINGERS)),
        ("Seed (empty: random)", ""),
        ("BPM", _fmt(context.bpm)),
        ("Time signature", context.time_signature or ""),
        ("Key (empty: any)", ""),
        (LOUDNESS_CAPTION, ""),
        ("Set kind (layers or variants)", SET_KINDS[0]),
    ]

    def parse(values: list[str]) -> tuple[GenerationRequest, dict]:
        prompt = clean_prompt(values[0])
        problems = [] if prompt else [FieldProblem("prompt", f"Type a prompt: replace the [words] in brackets, for example '{PROMPT_EXAMPLE}'")]
        options = {}
        for name, check in (("bars", lambda: _loop_bars(values[1], "bars", "Loop bars", optional=False)[1]),
                            ("intensities", lambda: _count(values[3], "intensities", "Intensity levels", 1, MAX_SET_INTENSITIES)),
                            ("stingers", lambda: _count(values[4], "stingers", "Stingers", 0, MAX_SET_STINGERS)),
                            ("kind", lambda: _set_kind(values[10] if len(values) > 10 else ""))):
            try:
                options[name] = check()
            except InvalidRequest as error:
                problems += error.problems
        if problems:
            raise InvalidRequest(problems)
        request = GenerationRequest(
            prompt=prompt,
            duration=_number(values[2], "duration", "Seconds"),
            seed=_number(values[5], "seed", "Seed", int, optional=True),
            bpm=_number(values[6], "bpm", "BPM", float, optional=True),
            time_signature=values[7].strip() or None,
            key=values[8].strip() or None,
            loudness=_loudness(values[9]),
        )
        # Checked as the base loop the worker makes (bars at this tempo, for one) ...
        dataclasses.replace(request, loop=True, loop_bars=options["bars"]).validated()
        # ... and sent with the bars beside it, as the worker takes a set.
        kind = options.pop("kind")
        if kind == "variants":
            options["variants"] = options.pop("intensities")
        return dataclasses.replace(request.validated(), loop=True), {**options, "bars": options["bars"] or FIT}

    parsed = project.ask_until_valid("ACE-Step: Make intensity set", fields, parse)
    if parsed is None:
        return None
    request, options = parsed
    project.set_state("last_prompt", request.prompt, settings.EXT_SECTION, persist=True)
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    bars = options["bars"]
    estimate = request.duration
    if bars != FIT and request.bpm:
        estimate = bars * beats_per_bar(request.time_signature) * 60.0 / request.bpm
    placement = IntensitySetTracks(context.project, context.cursor, estimate, request.prompt).start()
    run = SetGeneration(request, options, placement, folder, notice)
    (loop or default_loop()).start(run)
    return run


# -- editing the selected item: stems, repaint, a layer ----------------------------------------------

PLAYRATE_TOLERANCE = 1e-9


def _worker_health() -> dict | None:
    """The running worker's health, or None when none answers yet (a run starts one and
    checks its tasks then)."""
    client = find_worker(timeout=generation.PROBE_TIMEOUT)
    if client is None:
        return None
    try:
        return client.health()
    except WorkerError:
        return None


def _refuse_unsupported(task: str, health: dict | None) -> None:
    if health is not None and isinstance(health.get("supports_tasks"), list) and task not in health["supports_tasks"]:
        raise AceStepError(generation.unsupported_task_message(task, health))


def _audio_item(context: project.EditContext, verb: str) -> project.SelectedItem:
    """The selected item, with an audio file in its active take, played at rate 1."""
    item = project.read_selected_item(context.project)
    if item is None:
        raise AceStepError(f"Select the item to {verb} (click it), then run this action again.")
    if not item.active_source or not os.path.isfile(item.active_source):
        raise AceStepError(f"The selected item has no audio file in its active take, so there is nothing to {verb}. "
                           "Select an item with audio in it (or make its audio take active), then try again.")
    if abs(item.playrate - 1.0) > PLAYRATE_TOLERANCE:
        raise AceStepError(f"The selected item plays its take at rate {item.playrate:g}; ACE-Step can {verb} only "
                           "takes played at rate 1. Set the take's playback rate to 1.0 (Item properties), or "
                           "glue the item (Item > Glue items) and run this action on the glued item.")
    return item


def _source_span(item: project.SelectedItem, selection: tuple[float, float]) -> tuple[float, float, float, float]:
    """The time selection inside the item: (project start, end, source start, end) in seconds."""
    start, end = max(selection[0], item.position), min(selection[1], item.end)
    source_start = max(0.0, item.source_time(start))
    source_end = min(item.source_length or item.source_time(end), item.source_time(end))
    return start, end, round(source_start, 6), round(source_end, 6)


def _overlap_or_refuse(item: project.SelectedItem, selection: tuple[float, float] | None, verb: str):
    if selection is None:
        raise AceStepError(f"Make a time selection over the part of the item to {verb} (drag in the timeline "
                           "above the tracks), then run this action again.")
    start, end, source_start, source_end = _source_span(item, selection)
    if end - start <= 0 or source_end <= source_start:
        raise AceStepError(f"The time selection ({_fmt(selection[0])}-{_fmt(selection[1])} s) does not overlap the "
                           f"selected item ({_fmt(item.position)}-{_fmt(item.end)} s). Make the time selection over "
                           f"the part of the item to {verb}, then try again.")
    return start, end, source_start, source_end


def _source_request_fields(item: project.SelectedItem, context: project.EditContext) -> dict:
    """The fields a task on the item's file shares: the file's own length, format, rate and
    bit depth (so the result lines up with it), the tempo it was made at, no loudness change."""
    fmt, rate, bits, seconds = file_format(Path(item.active_source))
    try:
        made = GenerationRequest.from_dict(json.loads(item.request_json)) if item.request_json else None
    except (ValueError, AceStepError):
        made = None
    bpm, signature = (made.bpm, made.time_signature) if made and made.bpm else project.tempo_at(context.project, item.position)
    return dict(duration=round(seconds, 6), output_format=fmt, sample_rate=rate, bit_depth=bits, loudness=None,
                bpm=bpm, time_signature=signature, key=made.key if made else None)


def _default_prompt(item: project.SelectedItem) -> str:
    try:
        return GenerationRequest.from_dict(json.loads(item.request_json)).prompt if item.request_json else (
            item.active_take_name or PROMPT_TEMPLATE)
    except (ValueError, AceStepError):
        return item.active_take_name or PROMPT_TEMPLATE


def split_into_stems(loop=None) -> Generation | None:
    """The selected item's stems on a folder track below it (placements.StemTracks). A file
    the sketch made is rendered again with its parts; any other is extracted by the model."""
    context = project.read_edit_context()
    item = _audio_item(context, "split into stems")
    health = _worker_health()
    try:
        request = split_request(item.active_source)
    except InvalidRequest as error:
        raise AceStepError("ACE-Step cannot split this item: " + "; ".join(p.message for p in error.problems) + ".") from None
    if request.task == "extract":
        _refuse_unsupported("extract", health)
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    uploads = [request.source_audio]  # the worker reads no client path: the run uploads it
    run = StemsGeneration([request], StemTracks(context.project, item), folder, notice, uploads)
    (loop or default_loop()).start(run)
    return run


def repaint_time_selection(loop=None) -> Generation | None:
    """The part of the selected item inside the time selection made again from a prompt,
    as a new take on the item (placements.RepaintTake); the rest is the source, unchanged."""
    context = project.read_edit_context()
    item = _audio_item(context, "repaint")
    _, _, source_start, source_end = _overlap_or_refuse(item, context.selection, "repaint")
    _refuse_unsupported("repaint", _worker_health())
    shared = _source_request_fields(item, context)
    fields = [("Prompt for the repainted part", _default_prompt(item)), ("Seed (empty: random)", "")]

    def parse(values: list[str]) -> GenerationRequest:
        prompt = clean_prompt(values[0])
        if not prompt:
            raise InvalidRequest([FieldProblem("prompt", f"Type a prompt for the repainted part, for example '{PROMPT_EXAMPLE}'")])
        return GenerationRequest(prompt=prompt, task="repaint", source_audio=item.active_source,
                                 repaint_start=source_start, repaint_end=source_end,
                                 seed=_number(values[1], "seed", "Seed", int, optional=True), **shared).validated()

    request = project.ask_until_valid("ACE-Step: Repaint time selection", fields, parse)
    if request is None:
        return None
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    run = Generation([request], RepaintTake(context.project, item), folder, notice, [item.active_source])
    (loop or default_loop()).start(run)
    return run


DEFAULT_LAYER = "guitar"


def add_layer(loop=None) -> Generation | None:
    """A new instrument over the selected item (lego), on a new track right below it
    (placements.LayerTrack): over the part inside the time selection, or the whole item."""
    context = project.read_edit_context()
    item = _audio_item(context, "add a layer to")
    span = None
    if context.selection is not None:
        start, end, source_start, source_end = _source_span(item, context.selection)
        if end > start and source_end > source_start:
            span = (start, end, source_start, source_end)
    _refuse_unsupported("lego", _worker_health())
    shared = _source_request_fields(item, context)
    fields = [("Instrument (an ACE-Step track name)", DEFAULT_LAYER),
              ("Prompt for the new part", _default_prompt(item)),
              ("Seed (empty: random)", "")]

    def parse(values: list[str]) -> GenerationRequest:
        problems = []
        track = values[0].strip().lower().replace(" ", "_")
        if track not in TRACK_NAMES:
            problems.append(FieldProblem("track", f"Instrument must be one of {', '.join(TRACK_NAMES)}; got {values[0].strip()!r}"))
        prompt = clean_prompt(values[1])
        if not prompt:
            problems.append(FieldProblem("prompt", f"Type a prompt for the new part, for example '{PROMPT_EXAMPLE}'"))
        if problems:
            raise InvalidRequest(problems)
        return GenerationRequest(prompt=prompt, task="lego", track=track, source_audio=item.active_source,
                                 repaint_start=span[2] if span else None, repaint_end=span[3] if span else None,
                                 seed=_number(values[2], "seed", "Seed", int, optional=True), **shared).validated()

    request = project.ask_until_valid("ACE-Step: Add layer to selected item", fields, parse)
    if request is None:
        return None
    folder, notice = media.media_folder(context.rpp_path, context.media_folder)
    placement = LayerTrack(context.project, item)
    run = Generation([request], placement, folder, notice, [item.active_source])
    (loop or default_loop()).start(run)
    return run


# -- Cancel ----------------------------------------------------------------------------------------


def cancel() -> int:
    """Cancel every run in flight: their jobs stop at the worker, and each run removes
    its placeholders on its next tick. Returns how many runs were asked to stop."""
    runs = generation.running_runs()
    if not runs:
        project.message("ACE-Step is not generating anything right now.")
        return 0
    _cancel_runs(runs, find_worker(timeout=generation.PROBE_TIMEOUT))
    return len(runs)


def _cancel_runs(runs: dict[str, list[str]], client) -> None:
    for job_ids in runs.values():
        for job_id in job_ids:
            if client is not None:
                try:
                    client.cancel(job_id)
                except WorkerError:
                    pass  # finished or gone: the run sees the cancel request anyway
    generation.request_cancel(list(runs))


# -- Stop worker and Worker settings ------------------------------------------------------------

STOP_WAIT = 5.0  # seconds Stop worker waits to say the worker is gone


def stop_worker() -> bool:
    """Stop the worker now (whoever started it), cancelling ACE-Step's runs first so
    nothing is left half-made; the next generating action starts a new one."""
    client = find_worker(timeout=generation.PROBE_TIMEOUT)
    if client is None:
        project.message("ACE-Step's worker is not running, so there is nothing to stop.")
        return False
    runs = generation.running_runs()
    if runs:
        _cancel_runs(runs, client)
    info = discovery.read_discovery()
    try:
        client.shutdown()
    except WorkerError as error:
        raise AceStepError(f"ACE-Step's worker did not take the stop request ({error}); end it yourself "
                           f"(process {info.pid if info else 'acestep_core.worker'})") from None
    deadline = time.monotonic() + STOP_WAIT
    while info is not None and not _stopped(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    cancelled = f" ({len(runs)} generation{'s' if len(runs) != 1 else ''} cancelled)" if runs else ""
    if info is not None and not _stopped(info.pid):
        project.message(f"ACE-Step's worker is stopping{cancelled}; it frees the model's memory as it exits.")
    else:
        project.message(f"ACE-Step's worker has stopped{cancelled}, and the model's memory is free. "
                        "The next ACE-Step action starts it again.")
    return True


def _stopped(pid: int) -> bool:
    """The worker has stopped serving and removed its discovery file on its way out (a
    worker REAPER started stays in the process table, without memory, until REAPER reaps it)."""
    info = discovery.read_discovery()
    return not discovery.pid_alive(pid) or info is None or info.pid != pid


def _minutes(text: str, field: str, caption: str) -> float:
    value = settings.minutes(text)
    if value is None:
        raise InvalidRequest([FieldProblem(field, f"{caption} must be a number of minutes, 0 or more (0: never), "
                                                  f"got {text.strip()!r}")])
    return value


def _remote_problems(url: str, token: str) -> list[FieldProblem]:
    """A remote worker's URL must be one the client can use, and it needs a token."""
    if not url:
        return []
    try:
        WorkerClient(url, token)
    except WorkerError as error:
        return [FieldProblem("remote_url", f"Remote worker URL: {error}")]
    if not token:
        return [FieldProblem("remote_token", "Remote worker token is empty; a remote worker needs one (its discovery "
                                             "file's or yours from 'acestep-dcc tokens add NAME')")]
    return []


def worker_settings() -> bool:
    """Worker Python and the idle times of a worker REAPER starts, or a remote worker (a
    studio cluster) by URL and token; persisted in REAPER."""
    lifetime = settings.worker_lifetime()
    installed = settings.installed_worker_command()
    installed_python = installed[0] if installed else ""
    fields = [
        ("Worker Python (empty: as installed)", settings.worker_python_setting() or installed_python),
        ("Unload the model after idle minutes (0: never)", _fmt(lifetime.idle_unload_minutes)),
        ("Stop the worker after idle minutes (0: never)", _fmt(lifetime.idle_exit_minutes)),
        ("Remote worker URL (empty: this computer)", settings.remote_worker_setting()[0]),
        ("Remote worker token", settings.remote_worker_setting()[1]),
    ]

    def parse(values: list[str]) -> tuple[str, settings.WorkerLifetime, tuple[str, str]]:
        python, problems, times = values[0].strip(), [], {}
        remote = (values[3].strip(), values[4].strip())
        problems += _remote_problems(*remote)
        problem = settings.worker_python_problem(python) if python else None
        if problem:
            problems.append(FieldProblem("worker_python", problem))
        for index, field, caption in ((1, "idle_unload_minutes", "Unload the model after"),
                                      (2, "idle_exit_minutes", "Stop the worker after")):
            try:
                times[field] = _minutes(values[index], field, caption)
            except InvalidRequest as error:
                problems += error.problems
        if problems:
            raise InvalidRequest(problems)
        return python, settings.WorkerLifetime(**times), remote

    parsed = project.ask_until_valid(settings.SETTINGS_ACTION, fields, parse)
    if parsed is None:
        return False
    python, lifetime, remote = parsed
    settings.save_worker_settings("" if python == installed_python else python, lifetime)
    settings.save_remote_worker(*remote)
    health = _worker_health()
    running = (" A worker already running keeps its old settings until it stops (ACE-Step: Stop worker). "
               f"Its model, {generation.supported_tasks_text(health)}.") if health is not None else ""
    if remote[0]:
        project.message(f"Saved: the ACE-Step actions now use the worker at {remote[0]}." + running)
        return True
    project.message("Saved: workers REAPER starts from now on use them." + running)
    return True


# -- running an action ----------------------------------------------------------------------------

ACTIONS = {
    "generate": generate_at_edit_cursor,
    "variations": generate_variations,
    "refine": refine_selected_item,
    "score": score_regions,
    "intensity_set": make_intensity_set,
    "stems": split_into_stems,
    "repaint": repaint_time_selection,
    "layer": add_layer,
    "cancel": cancel,
    "stop_worker": stop_worker,
    "worker_settings": worker_settings,
    "library": insert_from_library,
}
NOT_GENERATING = ("cancel", "stop_worker", "worker_settings")  # these take no loop


def run_action(name: str, loop=None):
    """Run an action; every error ends in a message box (and, when unexpected, the
    traceback in the ReaScript console as well)."""
    try:
        action = ACTIONS[name]
        return action() if name in NOT_GENERATING else action(loop)
    except AceStepError as error:
        project.message(str(error))
    except Exception as error:
        project.console(traceback.format_exc())
        project.message(f"ACE-Step stopped because of an unexpected error: {error}\n\n"
                        "The details are in the ReaScript console; please include them when you report it.")
    return None
