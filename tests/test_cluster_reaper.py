"""REAPER with a remote worker (a studio cluster speaks the same API): its URL and
token set in 'ACE-Step: Worker settings', the actions use it and start nothing on this
computer; a remote that does not answer, a bad URL and a missing token are said.
The REAPER stand-in with python-reapy, against the real sketch worker over HTTP."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from test_reaper_actions import PROMPT, InsideReaperSession, prepare, wait

from acestep_core.cluster.up import free_port


def home_that_would_start_a_worker(tmp_path: Path) -> Path:
    """No worker runs here, and config.json would start one: a remote setting must win."""
    home = tmp_path / "artist-home"
    home.mkdir()
    command = [sys.executable, "-m", "acestep_core.worker", "--backend", "sketch"]
    (home / "config.json").write_text(json.dumps({"worker_command": command}))
    return home


def set_remote(inside: InsideReaperSession, url: str, token: str) -> None:
    inside.answer_inputs(["", "10", "30", url, token])
    inside.run("worker_settings")


def test_the_actions_use_the_remote_worker_set_in_worker_settings(reaper_inside, worker, tmp_path, monkeypatch):
    home = home_that_would_start_a_worker(tmp_path)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    inside = InsideReaperSession(reaper_inside)
    set_remote(inside, worker.url, worker.token)
    state = inside.snapshot()
    assert state["message_boxes"][-1]["message"].startswith(f"Saved: the ACE-Step actions now use the worker at "
                                                             f"{worker.url}.")
    assert state["ext_state"]["acestep-dcc/remote_url"] == worker.url
    assert "remote_token=" in (Path(inside.app.resource_path) / "reaper-extstate.ini").read_text()  # kept

    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "4", "1", "7"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    assert state["script_errors"] == [] and [b for b in state["message_boxes"][1:]] == []
    [item] = state["project"]["tracks"][1]["items"]
    assert Path(item["takes"][0]["source"]).is_file()
    assert worker.jobs(limit=1)[0].request["prompt"] == PROMPT  # made by the remote worker
    assert not (home / "state" / "worker.json").exists()  # nothing started on this computer


def test_a_remote_worker_that_does_not_answer_is_said_and_nothing_starts(reaper_inside, tmp_path, monkeypatch):
    home = home_that_would_start_a_worker(tmp_path)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    inside = InsideReaperSession(reaper_inside)
    url = f"http://127.0.0.1:{free_port()}"
    set_remote(inside, url, "some-token")
    prepare(inside, tmp_path)
    before = inside.snapshot()
    inside.answer_inputs([PROMPT, "4", "1"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    message = state["message_boxes"][-1]["message"]
    assert f"the remote worker at {url}" in message and "is not answering" in message
    assert "empty the URL" in message
    assert state["project"]["tracks"] == before["project"]["tracks"]
    assert not (home / "state" / "worker.json").exists()


def test_a_bad_remote_url_or_a_missing_token_is_refused_in_the_dialog(reaper_inside, tmp_path):
    inside = InsideReaperSession(reaper_inside)
    inside.answer_inputs(["", "10", "30", "ftp://studio:21", "x"])
    inside.answer_inputs(["", "10", "30", "http://192.0.2.10:8765", ""])
    inside.answer_inputs(None)  # then the user gives up
    inside.run("worker_settings")
    state = inside.snapshot()
    url_problem, token_problem = [box["message"] for box in state["message_boxes"]]
    assert "Remote worker URL: the worker url 'ftp://studio:21' is not like http://" in url_problem
    assert "Remote worker token is empty" in token_problem
    assert "acestep-dcc/remote_url" not in state["ext_state"]
