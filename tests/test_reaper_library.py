"""ACE-Step: Insert from library, and the licence in every item's notes. Real
python-reapy against the REAPER stand-in (inside REAPER and from outside it), a real
sketch-backend worker over HTTP whose cue library holds what it made."""

from __future__ import annotations

from pathlib import Path

import pytest

from acestep_core.request import GenerationRequest
from test_reaper_actions import SCRIPT_NAMES, PROMPT, inside, prepare, session, wait  # noqa: F401  (fixtures)

SCRIPT_NAMES["library"] = "ACE-Step - Insert from library.py"
TITLE = "ACE-Step: Insert from library"
UNDO = "ACE-Step: insert from library"


@pytest.fixture(scope="module")
def library_cues(worker) -> dict[str, object]:
    """A boss loop (150 BPM, E minor, 4 bars), a calm cue (80 BPM) and a fanfare whose file
    is then deleted, made by the module's worker (so in its library)."""
    made = {}
    for name, request in (
            ("boss", GenerationRequest(prompt="tense boss battle, synthwave", duration=4, bpm=150, key="E minor",
                                       loop=True, loop_bars=4, seed=41)),
            ("calm", GenerationRequest(prompt="calm exploration, ambient, piano", duration=3, bpm=80,
                                       key="D major", seed=42)),
            ("fanfare", GenerationRequest(prompt="victory fanfare, orchestral", duration=2, seed=43))):
        job = worker.wait(worker.submit(request).id, timeout=60)
        assert job.status == "done", job.error
        made[name] = job.outputs[0]
    Path(made["fanfare"].path).unlink()
    return made


def test_insert_from_library_puts_the_chosen_cue_at_the_edit_cursor(session, library_cues, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs(["boss", "140-160", "E minor", "yes"])
    session.answer_inputs(["1"])
    session.run("library")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == [] and state["faults"] == []
    search, pick = state["dialogs"]
    assert search["title"] == TITLE and search["captions"][:2] == ["Words (prompt or tags; empty: any)",
                                                                   "BPM (140 or 140-160; empty: any)"]
    assert pick["title"] == f"{TITLE} (1 found)" and pick["defaults"] == ["1"]
    assert "  1. " in state["console"] and "tense boss battle, synthwave" in state["console"]

    boss = library_cues["boss"]
    loop, rate = boss.metadata["loop"], boss.metadata["format"]["sample_rate"]
    [item] = state["project"]["tracks"][1]["items"]  # the selected Music track, at the edit cursor
    assert item["position"] == 4.0
    assert item["length"] == pytest.approx((loop["loop_end_exclusive"] - loop["loop_start"]) / rate)  # one loop
    [take] = item["takes"]
    source = Path(take["source"])
    assert source.parent == tmp_path / "game", "copied into the project's media folder"
    assert source.read_bytes() == Path(boss.path).read_bytes() and source.with_name(source.name + ".json").is_file()
    assert take["name"] == "tense boss battle, synthwave (seed 41)"
    notes = item["notes"].splitlines()
    assert notes[0] == "ACE-Step (from the library)" and "prompt: tense boss battle, synthwave" in notes
    assert "tempo: 150 BPM (as asked)" in notes and "key: E minor (as asked)" in notes
    assert f"licence: {boss.metadata['licence']['summary']}" in notes
    assert any(line.startswith("loop: 4 bars at 150 BPM") for line in notes)
    assert f"library: {boss.path}" in notes
    assert state["project"]["undo"][-1] == UNDO and state["project"]["undo"].count(UNDO) == 1
    # the search is offered again next time
    session.answer_inputs(None)
    session.run("library")
    wait(session)
    assert session.snapshot()["dialogs"][-1]["defaults"] == ["boss", "140-160", "E minor", "yes"]


def test_the_pick_dialog_lists_every_match_and_refuses_a_bad_number(session, library_cues, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs(["", "", "", ""])  # everything still on disk: the boss loop and the calm cue
    session.answer_inputs(["9"])
    session.answer_message_box(1)
    session.answer_inputs(["2"])
    session.run("library")
    wait(session)
    state = session.snapshot()
    assert state["dialogs"][1]["title"] == f"{TITLE} (2 found)"
    [refusal] = state["message_boxes"]
    assert "Cue number must be a whole number from 1 to 2 (the list is in the ReaScript console); got '9'" in \
        refusal["message"]
    assert "fanfare" not in state["console"], "a cue whose file is gone is not offered"
    [item] = state["project"]["tracks"][1]["items"]
    [second] = [line.strip() for line in state["console"].splitlines() if line.strip().startswith("2. ")]
    assert Path(item["takes"][0]["source"]).name == second[len("2. "):].split(": ")[0], "the cue picked"


def test_nothing_found_and_bad_values_are_said(session, library_cues, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs(["boss", "fast", "H minor", "maybe"])
    session.answer_message_box(1)
    session.answer_inputs(["fanfare", "", "", ""])  # its file was deleted: not offered
    session.answer_message_box(1)
    session.run("library")
    wait(session)
    state = session.snapshot()
    refusal, nothing = state["message_boxes"]
    assert "BPM must be a number or a range such as 140-160, got 'fast'" in refusal["message"]
    assert "key must be a note and a mode such as 'E minor' or 'Bb major', got 'H minor'" in refusal["message"]
    assert "Loop must be yes or no (or empty for either); got 'maybe'" in refusal["message"]
    assert state["dialogs"][1]["defaults"] == ["boss", "fast", "H minor", "maybe"], "the values are kept"
    assert nothing["message"].startswith("No cue in ACE-Step's library matches this search.")
    assert "acestep-dcc library add FOLDER" in nothing["message"]
    assert all(track["items"] == [] for track in state["project"]["tracks"])
    assert UNDO not in state["project"]["undo"]


def test_generated_item_notes_say_the_licence(session, worker, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "3", "1", "7"])
    session.run("generate")
    wait(session)
    [item] = session.snapshot()["project"]["tracks"][1]["items"]
    licence = worker.jobs(limit=1)[0].outputs[0].metadata["licence"]["summary"]
    assert licence.startswith("Apache-2.0 (acestep-dcc's own licence")
    assert f"\nlicence: {licence}\n" in item["notes"]


def test_with_no_track_selected_the_cue_goes_on_a_new_track(session, library_cues, tmp_path):
    prepare(session, tmp_path, select=False)
    session.answer_inputs(["calm", "", "D major", "no"])
    session.answer_inputs(["1"])
    session.run("library")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == []
    tracks = state["project"]["tracks"]
    assert [t["name"] for t in tracks] == ["Dialogue", "Music", "ACE-Step"] and tracks[1]["items"] == []
    [item] = tracks[2]["items"]
    calm = library_cues["calm"]
    assert item["position"] == 4.0 and item["length"] == pytest.approx(calm.duration)
    assert Path(item["takes"][0]["source"]).read_bytes() == Path(calm.path).read_bytes()


def _own_address() -> str | None:
    """This machine's address on its network (not loopback), or None when it has none."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet is sent, only a route chosen
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_worker_on_another_machine_sends_the_cue(inside, spawn_worker, tmp_path, monkeypatch):
    """A worker reached at a network address (as one on another machine is): its paths
    mean nothing here, so the cue is downloaded (GET /v1/library/{id}/file, /sidecar)."""
    from acestep_reaper import media

    address = _own_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback to reach a worker at")
    remote = spawn_worker("sketch", None, "--host", address)
    assert remote.client.url.startswith(f"http://{address}:") and not media.worker_is_local(remote.client)
    job = remote.client.wait(remote.client.submit(GenerationRequest(prompt="stealth infiltration, electronic",
                                                                    duration=2, seed=44)).id, timeout=60)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(remote.home))  # the REAPER action finds this worker
    prepare(inside, tmp_path)
    inside.answer_inputs(["stealth", "", "", ""])
    inside.answer_inputs(["1"])
    inside.run("library")
    wait(inside)
    state = inside.snapshot()
    assert state["message_boxes"] == [], state["message_boxes"]
    [item] = state["project"]["tracks"][1]["items"]
    source = Path(item["takes"][0]["source"])
    assert source.parent == tmp_path / "game" and source.read_bytes() == Path(job.outputs[0].path).read_bytes()
    assert source.with_name(source.name + ".json").is_file()
    assert f"licence: {job.outputs[0].metadata['licence']['summary']}" in item["notes"]
