"""The REAPER Generate dialog's style pack field, against the REAPER stand-in with the real
python-reapy client (inside REAPER and distant) and a real worker on the tiny ACE-Step
checkpoint with two packs trained by 'acestep-dcc packs train'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_packs_support import build_checkpoint, train_and_install, write_music
from test_reaper_actions import PROMPT, DistantSession, InsideReaperSession, prepare, wait
from worker_fixtures import WorkerProcess

pytestmark = pytest.mark.slow
STYLE_FIELD = 10  # after Loudness: the dialog's eleventh field


@pytest.fixture(scope="module")
def styled_worker(tmp_path_factory):
    checkpoint = build_checkpoint(tmp_path_factory.mktemp("models") / "acestep-v15-tiny-turbo")
    process = WorkerProcess(tmp_path_factory.mktemp("packs-worker-home"), "acestep", checkpoint)
    music = write_music(tmp_path_factory.mktemp("music"))
    for name, seed in (("chip", 0), ("town", 1)):
        train_and_install(music, checkpoint, process.home, name, seed)
    process.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(process.home))  # the actions find this worker
        yield process.client
    process.stop(timeout=10)


@pytest.fixture(params=["inside", "distant"])
def session(request, styled_worker):
    if request.param == "inside":
        session = InsideReaperSession(request.getfixturevalue("reaper_inside"))
    else:
        session = DistantSession(request.getfixturevalue("reapy_distant"))
    session.reapy.delete_ext_state("acestep-dcc", "last_style", persist=True)
    return session


def test_the_generate_dialog_offers_the_workers_packs_and_sends_the_chosen_one(session, styled_worker, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "2", "1", "7", "", "", "", "", "", "", "town:0.5"])
    session.run("generate")
    wait(session, timeout=300)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    caption = state["dialogs"][0]["captions"][STYLE_FIELD]
    assert caption.startswith("Style pack (chip | town;") and "," not in caption
    job = styled_worker.jobs(limit=1)[0]
    assert (job.request["style"], job.request["style_scale"]) == ("town", 0.5)
    sidecar = json.loads(Path(job.outputs[0].sidecar_path).read_text())
    assert sidecar["style"]["name"] == "town" and sidecar["style"]["scale"] == 0.5
    [item] = state["project"]["tracks"][1]["items"]
    assert len(item["takes"]) == 1

    # The next Generate offers the same pack again.
    session.answer_inputs(None)
    session.run("generate")
    wait(session)
    assert session.snapshot()["dialogs"][1]["defaults"][STYLE_FIELD] == "town:0.5"


def test_a_pack_the_worker_cannot_use_is_explained_and_the_dialog_comes_back(session, styled_worker, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "2", "1", "7", "", "", "", "", "", "", "nope"])
    session.answer_inputs(None)  # the dialog comes back: the user cancels
    session.run("generate")
    wait(session)
    state = session.snapshot()
    [box] = state["message_boxes"]
    assert "Style pack 'nope' is not one the worker can use; it has chip, town" in box["message"]
    assert state["dialogs"][1]["defaults"][STYLE_FIELD] == "nope"  # as the user typed it
    assert state["project"]["tracks"][1]["items"] == []
