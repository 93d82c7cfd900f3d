"""Blender shows the originality check's warning on a flagged cue: real bpy, a real
sketch worker started with --against (tests/originality_fixtures.py) over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)
from originality_fixtures import FLAGGED_PROMPT, FLAGGED_SEED, checking_worker

SECONDS = 6.0


@pytest.fixture(scope="module")
def worker_process(tmp_path_factory):
    yield from checking_worker(tmp_path_factory, SECONDS)


def _generate(addon, seed: int):
    scene = bpy.context.scene
    settings = scene.acestep
    settings.prompt, settings.duration = FLAGGED_PROMPT, SECONDS
    settings.use_seed, settings.seed = True, seed
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    [cue] = [s for s in strips_of(scene) if s.type == "SOUND"]
    scene.sequence_editor.active_strip = cue
    return cue, " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))


def test_a_flagged_cue_shows_the_warning_on_its_strip_and_in_the_panel(addon, worker, worker_process):
    cue, shown = _generate(addon, FLAGGED_SEED)
    [output] = worker.jobs(limit=1)[0].outputs
    record = output.metadata["originality"]
    assert record["flagged"] is True
    assert record["checked_against"] == [str(worker_process.library.resolve()), "cue library"]
    assert Path(record["matches"][0]["reference"]).name == "protected.wav"
    [warning] = [w for w in output.metadata["warnings"] if w.startswith("originality check:")]
    assert "protected.wav" in warning
    assert warning in cue["acestep_warnings"]
    assert " ".join(warning.split()) in shown, "the Generated Strip panel says it"
    assert "protected.wav" in addon.runtime.message, "and so does the report"


def test_a_cue_that_passes_shows_no_originality_warning(addon, worker):
    cue, shown = _generate(addon, FLAGGED_SEED + 100)
    [output] = worker.jobs(limit=1)[0].outputs
    assert output.metadata["originality"]["flagged"] is False
    assert "originality" not in str(cue.get("acestep_warnings", "")) and "originality check" not in shown
