"""REAPER shows the originality check's warning on a flagged cue: the real python-reapy
client, the REAPER stand-in, and a real sketch worker started with --against
(tests/originality_fixtures.py); the action runs inside REAPER and through reapy's
distant API."""

from __future__ import annotations

from pathlib import Path

import pytest

from originality_fixtures import FLAGGED_PROMPT, FLAGGED_SEED, checking_worker
from test_reaper_actions import prepare, session, wait  # noqa: F401  (session is a fixture)

SECONDS = 6.0


@pytest.fixture(scope="module")
def worker_process(tmp_path_factory):
    yield from checking_worker(tmp_path_factory, SECONDS, "--bpm", "96")  # prepare()'s project tempo


def _generate(session, tmp_path, seed: int):
    prepare(session, tmp_path)
    session.answer_inputs([FLAGGED_PROMPT, f"{SECONDS:g}", "1", str(seed)])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    [item] = state["project"]["tracks"][1]["items"]
    return state, item


def test_a_flagged_cue_says_so_in_its_item_notes_and_the_console(session, worker, worker_process, tmp_path):
    state, item = _generate(session, tmp_path, FLAGGED_SEED)
    [output] = worker.jobs(limit=1)[0].outputs
    record = output.metadata["originality"]
    assert record["flagged"] is True
    assert record["checked_against"] == [str(worker_process.library.resolve()), "cue library"]
    # the distant run's cue is also flagged against the inside run's, now in the cue library
    assert "protected.wav" in {Path(m["reference"]).name for m in record["matches"] if m["flagged"]}
    [warning] = [w for w in output.metadata["warnings"] if w.startswith("originality check:")]
    assert f"\nwarning: {warning}\n" in item["notes"]
    assert f"ACE-Step warning: '{FLAGGED_PROMPT}' (seed {FLAGGED_SEED}): {warning}" in state["console"]


def test_a_cue_that_passes_has_no_originality_warning(session, worker, tmp_path):
    # a seed per run: the second run's cue would be flagged against the first's in the cue library
    state, item = _generate(session, tmp_path, FLAGGED_SEED + 100 + (session.mode == "distant"))
    [output] = worker.jobs(limit=1)[0].outputs
    assert output.metadata["originality"]["flagged"] is False
    assert "originality" not in item["notes"] and "originality" not in state.get("console", "")
