"""What a generated strip remembers of how it was made, as custom properties on the
strip (saved in the .blend). Placement writes them; Regenerate, Use This Take and the
Generated Strip panel read them. No bpy import: a strip is used like a dict."""

from __future__ import annotations

import json

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
PROP_ROLE = "acestep_role"  # a set's "base", "intensity" or "stinger"
PROP_LEVEL = "acestep_level"


def record_output(strip, job, output) -> None:
    """What every generated strip keeps: job, seed, prompt, model and loop."""
    metadata = output.metadata or {}
    strip[PROP_JOB] = job.job_id
    strip[PROP_SEED] = str(output.seed)
    strip[PROP_PROMPT] = job.request.prompt
    strip[PROP_MODEL] = model_label(metadata.get("backend") or {})
    record = loop_options.loop_record(output)
    if record is not None:
        strip[PROP_LOOP] = json.dumps(record, sort_keys=True)
