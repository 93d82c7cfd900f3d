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


@pytest.mark.slow
def test_a_worker_reaper_starts_shows_loading_model_until_the_model_is_ready(reaper_inside, tiny_checkpoint, tmp_path,
                                                                             monkeypatch):
    """REAPER starts the worker with --preload, so the model loads while the request is on
    its way; the placeholder says "loading model" meanwhile, then the progress."""
    import json
    import sys
    import time

    from acestep_core.client import find_worker

    home = tmp_path / "host-worker-home"
    home.mkdir()
    command = [sys.executable, "-m", "acestep_core.worker", "--model", str(tiny_checkpoint), "--device", "cpu"]
    (home / "config.json").write_text(json.dumps({"worker_command": command}))
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    session = InsideReaperSession(reaper_inside)
    try:
        prepare(session, tmp_path)
        session.answer_inputs([PROMPT, "2", "1", "5"])
        session.run("generate")
        labels = []
        deadline = time.monotonic() + 300
        while session.busy():
            assert time.monotonic() < deadline, "the ACE-Step action did not finish"
            session.step()
            items = session.snapshot()["project"]["tracks"][1]["items"]
            label = items[0]["takes"][0]["name"] if items else None
            if label and (not labels or labels[-1] != label):
                labels.append(label)
            time.sleep(0.01)
        state = session.snapshot()
        assert state["message_boxes"] == [] and state["script_errors"] == []
        assert "ACE-Step: loading model" in labels, labels
        loading = labels.index("ACE-Step: loading model")
        assert labels[:loading] == ["ACE-Step: starting the worker"][:loading]
        assert not any(label.startswith("ACE-Step queued") for label in labels[loading:]), labels
        assert labels[-1] == f"{PROMPT} (seed 5)"  # the placed take
    finally:
        client = find_worker(home / "state")
        if client is not None:
            client.shutdown()
