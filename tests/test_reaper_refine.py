"""ACE-Step: Refine selected item. Real python-reapy against the REAPER stand-in (inside
REAPER and from outside it), a real sketch-backend worker over HTTP: the dialog opens
filled in from the active take's sidecar, the new take keeps the take's own seed, and
the item's notes and the new sidecar carry the lineage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_reaper_actions import (  # noqa: F401  (fixtures)
    PROMPT, SCRIPT_NAMES, InsideReaperSession, inside, prepare, session, wait)

SCRIPT_NAMES["refine"] = "ACE-Step - Refine selected item.py"
TITLE = "ACE-Step: Refine selected item"
REFINED = f"{PROMPT}, faster, more double kick"


def _generated_item(session, tmp_path: Path):
    """An item of two takes (seeds 30 and 31, 4 s at the project's 96 BPM), selected, its
    second take active."""
    project = prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "4", "2", "30"])
    session.run("generate")
    wait(session)
    rpr = session.reapy.reascript_api
    item = rpr.GetTrackMediaItem(project.tracks[1].id, 0)
    rpr.SetMediaItemSelected(item, True)
    rpr.SetActiveTake(rpr.GetTake(item, 1))
    return project


def test_refine_keeps_the_seed_and_the_notes_say_the_lineage(session, tmp_path):
    _generated_item(session, tmp_path)
    session.answer_inputs([REFINED, "4", "1", "31", "140"])
    session.run("refine")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    dialog = state["dialogs"][1]
    assert dialog["title"] == TITLE and all("," not in caption for caption in dialog["captions"])
    assert dialog["defaults"] == [PROMPT, "4", "2", "31", "96", "", ""]  # the second take's request and seed
    [item] = state["project"]["tracks"][1]["items"]
    from acestep_reaper.media import take_name

    assert [t["name"] for t in item["takes"]] == [f"{PROMPT} (seed 30)", f"{PROMPT} (seed 31)", take_name(REFINED, 31)]
    assert item["active_take"] == 2
    parent_file = Path(item["takes"][1]["source"]).name
    job = re.findall(r"^job: (\w+)$", item["notes"], re.MULTILINE)[0]  # the job that made the parent
    assert f"refined:\nRefined from {parent_file} (seed 31, take 2, job {job[:8]})\n" in item["notes"]
    assert f"Changed: prompt '{PROMPT}' -> '{REFINED}'; candidates 2 -> 1; bpm 96 -> 140\n" in item["notes"]
    sidecar = json.loads(Path(item["takes"][2]["source"] + ".json").read_text())
    assert sidecar["seed"] == 31 and sidecar["tempo"]["used"] == 140.0
    assert (sidecar["lineage"]["parent_file"], sidecar["lineage"]["parent_job"]) == (parent_file, job)
    assert state["project"]["undo"][-1] == "ACE-Step: refine"


def test_a_missing_sidecar_is_one_sentence(inside, tmp_path):
    _generated_item(inside, tmp_path)
    [item] = inside.snapshot()["project"]["tracks"][1]["items"]
    source = Path(item["takes"][1]["source"])
    Path(f"{source}.json").unlink()
    inside.run("refine")
    [box] = inside.snapshot()["message_boxes"]
    assert box["message"] == (f"{source.name} has no sidecar {source.name}.json, so how it was made is not known; "
                              "refine a cue acestep-dcc made, with its .json beside it")


def test_a_cover_strength_out_of_range_or_on_the_sketch_is_refused(inside, tmp_path):
    _generated_item(inside, tmp_path)
    inside.answer_inputs([PROMPT, "4", "1", "31", "96", "", "1.5"])
    inside.answer_inputs([PROMPT, "4", "1", "31", "96", "", "0.5"])
    inside.answer_inputs(None)  # then the user cancels
    inside.run("refine")
    first, second = [box["message"] for box in inside.snapshot()["message_boxes"]]
    assert "the cover strength must be between 0 (loosely after the parent) and 1 (closely), got 1.5" in first
    assert "This worker's model cannot make covers (the sketch backend cannot)" in second
    [item] = inside.snapshot()["project"]["tracks"][1]["items"]
    assert len(item["takes"]) == 2  # nothing was made


@pytest.mark.slow
def test_a_cover_refinement_on_acestep(acestep_worker, reaper_inside, tmp_path):
    """The tiny checkpoint covers: the action uploads the active take and the lineage says so."""
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "2", "1", "5"])
    session.run("generate")
    wait(session, timeout=300)
    rpr = session.reapy.reascript_api
    rpr.SetMediaItemSelected(rpr.GetTrackMediaItem(project.tracks[1].id, 0), True)
    session.answer_inputs([REFINED, "2", "1", "5", "96", "", "0.6"])
    session.run("refine")
    wait(session, timeout=300)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    [item] = state["project"]["tracks"][1]["items"]
    assert len(item["takes"]) == 2 and item["active_take"] == 1
    assert f"Cover of {Path(item['takes'][0]['source']).name} (seed 5, take 1, job " in item["notes"]
    assert "strength 0.6)" in item["notes"] and "cover (strength 0.6)" in item["notes"]
    [job] = [j for j in acestep_worker.jobs(limit=5) if j.request.get("task") == "cover"]
    assert job.request["source_audio"].startswith("upload") and job.request["lineage"]["cover_strength"] == 0.6
