"""What a generated strip remembers of how it was made, as custom properties on the
strip (saved in the .blend). Placement writes them; Regenerate, Use This Take and the
Generated Strip panel read them. No bpy import: a strip is used like a dict."""

from __future__ import annotations

import json
from fractions import Fraction

from acestep_core import timeline
from acestep_core.keywords import not_rendered_note

from . import loop_options
from .worker_link import model_label

PROP_JOB = "acestep_job"
PROP_SEED = "acestep_seed"  # text: seeds reach 2**32-1, past Blender's 32-bit int properties
PROP_PROMPT = "acestep_prompt"
PROP_MODEL = "acestep_model"
PROP_GROUP = "acestep_group"  # candidates of one generation share it
PROP_CANDIDATE = "acestep_candidate"
PROP_REQUEST = "acestep_request"  # the request as JSON, to regenerate faithfully
PROP_SECTION = "acestep_section"
PROP_LOOP = "acestep_loop"  # the output's loop record as JSON (loop_start, loop_end_exclusive, bars, bpm...)
PROP_LOOP_START = "acestep_loop_start"  # seconds into the file where the loop starts (after the intro; 0 without one)
PROP_INTRO_BARS = "acestep_intro_bars"  # bars of one-time intro before the loop (0: none)
PROP_BPM = "acestep_bpm"  # the tempo the cue was made at (asked, the model's, or measured)
PROP_BPM_MEASURED = "acestep_bpm_measured"  # what analysis of the audio found
PROP_KEY = "acestep_key"
PROP_KEY_MEASURED = "acestep_key_measured"
# A planned tempo's or key's measurement is a check: "agrees" or "disagrees" (half or
# double tempo agrees); the measurement is never used.
PROP_BPM_CHECK = "acestep_bpm_check"
PROP_KEY_CHECK = "acestep_key_check"
PROP_WARNINGS = "acestep_warnings"  # the worker's warnings about this file, one per line
PROP_LICENCE = "acestep_licence"  # the sidecar's licence summary (the model card's, or acestep-dcc's for the sketch)
PROP_LINEAGE = "acestep_lineage"  # a refinement's lineage as JSON (parent file, job, seed, what changed)
PROP_ROLE = "acestep_role"  # a set's "base", "intensity" or "stinger"
PROP_LEVEL = "acestep_level"
# Edits of a strip (edit_placement.py): what the strip is ("stem", "repaint", "layer"), the
# strip it was made from, its instrument, and the id the stems of one split share.
PROP_EDIT = "acestep_edit"
PROP_SOURCE = "acestep_source"
PROP_TRACK = "acestep_track"
PROP_STEM_GROUP = "acestep_stem_group"


def record_output(strip, job, output) -> None:
    """What every generated strip keeps: job, seed, prompt, model, loop, tempo and key."""
    metadata = output.metadata or {}
    strip[PROP_JOB] = job.job_id
    strip[PROP_SEED] = str(output.seed)
    strip[PROP_PROMPT] = job.request.prompt
    strip[PROP_MODEL] = model_label(metadata.get("backend") or {})
    record = loop_options.loop_record(output)
    if record is not None:
        strip[PROP_LOOP] = json.dumps(record, sort_keys=True)
        strip[PROP_LOOP_START] = loop_options.loop_start_seconds(output)
        strip[PROP_INTRO_BARS] = int(record.get("intro_bars") or 0)
    tempo, key = metadata.get("tempo") or {}, metadata.get("key") or {}
    for prop, value in ((PROP_BPM, _number(tempo.get("used"))), (PROP_BPM_MEASURED, _number(tempo.get("measured"))),
                        (PROP_KEY, _text(key.get("used"))), (PROP_KEY_MEASURED, _text(key.get("measured"))),
                        (PROP_BPM_CHECK, _text(tempo.get("check"))), (PROP_KEY_CHECK, _text(key.get("check")))):
        if value is not None:
            strip[prop] = value
    warnings = output_warnings(output)
    if warnings:
        strip[PROP_WARNINGS] = "\n".join(warnings)
    licence = metadata.get("licence")
    if isinstance(licence, dict) and _text(licence.get("summary")):
        strip[PROP_LICENCE] = licence["summary"]
    if isinstance(metadata.get("lineage"), dict):
        strip[PROP_LINEAGE] = json.dumps(metadata["lineage"], sort_keys=True)


def output_warnings(output) -> list[str]:
    """The worker's sentences about what it could not do for this file (a missed loudness target)."""
    found = (output.metadata or {}).get("warnings") if output is not None else None
    unplayed = not_rendered_note(output.metadata) if output is not None else ""  # words the backend did not play
    return ([str(w) for w in found if str(w).strip()] if isinstance(found, list) else []) + ([unplayed] if unplayed else [])


def tempo_and_key(strip, measured: bool = True) -> str:
    """'75 BPM (measured 75.3), D major (measured D major)' ('75 BPM, D major' without
    `measured`), or '' when the strip records neither. A planned value's measurement says
    whether it agrees: '155 BPM (measured 77.5, agrees)'."""
    parts = []
    for used_prop, measured_prop, check_prop, unit in ((PROP_BPM, PROP_BPM_MEASURED, PROP_BPM_CHECK, " BPM"),
                                                       (PROP_KEY, PROP_KEY_MEASURED, PROP_KEY_CHECK, "")):
        used, found, check = strip.get(used_prop), strip.get(measured_prop), strip.get(check_prop)
        if used is not None:
            said = f"measured {_shown(found)}" + (f", {check}" if check else "")
            parts.append(f"{_shown(used)}{unit}" + (f" ({said})" if measured and found is not None else ""))
        elif measured and found is not None:
            parts.append(f"measured {_shown(found)}{unit}")
    return ", ".join(parts)


def loop_text(strip, content_start: float, rate: Fraction) -> str:
    """'Loop: 2 bars at 240 BPM; the strip is one loop' or 'Intro 2 bars, then the loop
    (8 bars at 120 BPM) from 4 s, frame 106; the strip is the intro and one loop', or ''
    for a strip that is no loop. `content_start` is the scene frame of the file's start."""
    try:
        record = json.loads(strip[PROP_LOOP])
    except (KeyError, ValueError, TypeError):
        return ""
    if not isinstance(record, dict):
        return ""
    bars, bpm = record.get("bars"), _number(record.get("bpm"))
    loop = f"{bars} bars" + (f" at {_shown(bpm)} BPM" if bpm is not None else "")
    intro = int(strip.get(PROP_INTRO_BARS, record.get("intro_bars") or 0) or 0)
    start = strip.get(PROP_LOOP_START)
    if not intro or not isinstance(start, (int, float)):
        return f"Loop: {loop}; the strip is one loop"
    frame = round(content_start) + timeline.seconds_to_frames(Fraction(start).limit_denominator(10**6), rate)
    return (f"Intro {intro} bar{'s' if intro != 1 else ''}, then the loop ({loop}) from {round(start, 3):g} s, "
            f"frame {frame}; the strip is the intro and one loop")


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(value) -> float | None:
    return round(float(value), 2) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None
