"""The REAPER variations action making a cover of the active take, on a worker whose
backend can (the tiny random ACE-Step checkpoint; its audio is noise, its path real)."""

from __future__ import annotations

import pytest

from test_reaper_actions import PROMPT, InsideReaperSession, prepare, wait


@pytest.mark.slow
def test_variations_make_a_cover_of_the_active_take(acestep_worker, reaper_inside, tmp_path):
    assert "cover" in acestep_worker.health()["supports_tasks"]
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "2", "1", "5"])
    session.run("generate")
    wait(session, timeout=300)
    rpr = session.reapy.reascript_api
    rpr.SetMediaItemSelected(rpr.GetTrackMediaItem(project.tracks[1].id, 0), True)
    session.answer_inputs([PROMPT, "1", "9", "0.6"])
    session.run("variations")
    wait(session, timeout=300)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    assert state["dialogs"][1]["captions"][3].startswith("Cover strength")
    [item] = state["project"]["tracks"][1]["items"]
    assert [t["name"] for t in item["takes"]] == [f"{PROMPT} (seed 5)", f"{PROMPT} (seed 9)"]
    assert item["active_take"] == 1 and "cover (strength 0.6)" in item["notes"]
    [job] = [j for j in acestep_worker.jobs(limit=5) if j.request.get("task") == "cover"]
    assert job.request["source_audio"].startswith("upload")
