"""The REAPER edit actions on an item already on the timeline: Split selected item into
stems, Repaint time selection and Add layer to selected item. Real python-reapy against
the REAPER stand-in (inside REAPER and, for the split, also from outside it), a real
sketch-backend worker over HTTP. The sketch makes only new music, so here repaint and
lego are refused in one sentence; test_reaper_edit_acestep.py runs them on the tiny
ACE-Step checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.request import TRACK_NAMES
from test_reaper_actions import (SCRIPT_NAMES, PROMPT, inside, prepare, session,  # noqa: F401  (fixtures)
                                 step_until, wait)

SCRIPT_NAMES.update({  # the scripts REAPER runs for these actions (the sessions look them up here)
    "stems": "ACE-Step - Split selected item into stems.py",
    "repaint": "ACE-Step - Repaint time selection.py",
    "layer": "ACE-Step - Add layer to selected item.py",
})
SPLIT_UNDO = "ACE-Step: split into stems"


def make_item(session, project, seconds: str = "4", seed: str = "3") -> str:
    """A sketch-made item on the Music track at 4 s, selected; returns its pointer."""
    session.answer_inputs([PROMPT, seconds, "1", seed])
    session.run("generate")
    wait(session)
    rpr = session.reapy.reascript_api
    item = rpr.GetTrackMediaItem(project.tracks[1].id, 0)
    rpr.SetMediaItemSelected(item, True)
    rpr.Undo_OnStateChange2(project.id, "select item")
    return item


def recorded_item(session, project, path: Path, seconds: float = 4.0, rate: int = 44100, position: float = 4.0,
                  offset: float = 0.0, length: float | None = None) -> str:
    """Audio the user recorded (a chord of sines, 16-bit stereo WAV, no sidecar) as an
    item on the Music track, selected; its take starts `offset` s into the file."""
    frames = np.arange(int(seconds * rate)) / rate
    tone = sum(0.2 * np.sin(2 * np.pi * f * frames) for f in (220.0, 277.2, 329.6))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([tone, 0.8 * tone], axis=1), rate, subtype="PCM_16")
    rpr = session.reapy.reascript_api
    item = rpr.AddMediaItemToTrack(project.tracks[1].id)
    rpr.SetMediaItemInfo_Value(item, "D_POSITION", position)
    rpr.SetMediaItemInfo_Value(item, "D_LENGTH", seconds - offset if length is None else length)
    take = rpr.AddTakeToMediaItem(item)
    rpr.SetMediaItemTake_Source(take, rpr.PCM_Source_CreateFromFile(str(path)))
    rpr.GetSetMediaItemTakeInfo_String(take, "P_NAME", path.stem, True)
    rpr.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", offset)
    rpr.SetMediaItemSelected(item, True)
    rpr.Undo_OnStateChange2(project.id, "add recorded item")
    return item


def folder_depths(session, project) -> list[int]:
    rpr = session.reapy.reascript_api
    return [int(rpr.GetMediaTrackInfo_Value(rpr.GetTrack(project.id, i), "I_FOLDERDEPTH"))
            for i in range(rpr.CountTracks(project.id))]


def trim(session, project, item: str, position: float, offset: float, length: float) -> None:
    """The user trims the item's start (the take now starts `offset` s into its file) and moves it."""
    rpr = session.reapy.reascript_api
    rpr.SetMediaItemInfo_Value(item, "D_POSITION", position)
    rpr.SetMediaItemInfo_Value(item, "D_LENGTH", length)
    rpr.SetMediaItemTakeInfo_Value(rpr.GetActiveTake(item), "D_STARTOFFS", offset)
    rpr.SetMediaItemInfo_Value(item, "B_LOOPSRC", 0.0)  # Loop source off (new items have it on)
    rpr.Undo_OnStateChange2(project.id, "trim item")


# -- Split selected item into stems ---------------------------------------------------------------


def test_split_puts_each_stem_on_a_child_of_a_folder_track_aligned_with_the_item(session, tmp_path):
    project = prepare(session, tmp_path)
    item = make_item(session, project)
    trim(session, project, item, position=5.25, offset=0.5, length=3.0)
    undo_before = session.snapshot()["project"]["undo"]
    session.run("stems")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == [] and state["faults"] == []
    tracks = state["project"]["tracks"]
    source = tracks[1]["items"][0]
    name = source["takes"][0]["name"]
    assert name == f"{PROMPT} (seed 3)"  # the progress label put back
    assert source["mute"] is True and len(source["takes"]) == 1
    folder, stems = tracks[2], tracks[3:]
    assert [t["name"] for t in tracks[:3]] == ["Dialogue", "Music", f"{name} (stems)"]
    assert len(stems) >= 2 and all(t["name"].startswith(f"{name} (") for t in stems)
    rpr = session.reapy.reascript_api
    assert [rpr.GetMediaItemInfo_Value(rpr.GetTrackMediaItem(rpr.GetTrack(project.id, 3 + k), 0), "B_LOOPSRC")
            for k in range(len(stems))] == [0.0] * len(stems)
    assert folder_depths(session, project) == [0, 0, 1] + [0] * (len(stems) - 1) + [-1]
    for track in stems:
        [stem] = track["items"]
        assert (stem["position"], stem["length"], stem["mute"]) == (5.25, 3.0, False)
        [take] = stem["takes"]
        assert take["start_offset"] == 0.5 and take["playrate"] == 1.0
        assert take["name"] == track["name"]
    # One undo point, and it takes everything back.
    assert state["project"]["undo"] == undo_before + [SPLIT_UNDO]
    # The stems are the item's own parts: the same frames, and together the source file.
    mix, rate = sf.read(source["takes"][0]["source"], dtype="float64")
    parts = [sf.read(t["items"][0]["takes"][0]["source"], dtype="float64") for t in stems]
    assert all(r == rate and p.shape == mix.shape for p, r in parts)
    assert np.max(np.abs(sum(p for p, _ in parts) - mix)) <= len(parts) / 32768 + 1e-9
    assert {Path(t["items"][0]["takes"][0]["source"]).suffixes[-2][1:] for t in stems} <= set(TRACK_NAMES)


def test_split_is_one_undo_point_that_takes_it_all_back(inside, tmp_path):
    project = prepare(inside, tmp_path)
    item = make_item(inside, project)
    before = inside.snapshot()["project"]
    inside.run("stems")
    wait(inside)
    after = inside.snapshot()["project"]
    assert len(after["tracks"]) > len(before["tracks"]) and after["undo"][-1] == SPLIT_UNDO
    rpr = inside.reapy.reascript_api
    assert rpr.Undo_DoUndo2(project.id)
    undone = inside.snapshot()["project"]
    assert undone["tracks"] == before["tracks"]
    assert rpr.GetMediaItemInfo_Value(item, "B_MUTE") == 0.0


def test_split_of_an_item_inside_a_folder_keeps_the_folder_closed_after_the_stems(inside, tmp_path):
    """The Music track is the last child of a folder (it closes it, depth -1): the stem
    folder goes inside that folder and its last stem closes both."""
    project = prepare(inside, tmp_path)
    rpr = inside.reapy.reascript_api
    rpr.SetMediaTrackInfo_Value(project.tracks[0].id, "I_FOLDERDEPTH", 1.0)
    rpr.SetMediaTrackInfo_Value(project.tracks[1].id, "I_FOLDERDEPTH", -1.0)
    project.add_track(index=2, name="After")
    make_item(inside, project)
    inside.run("stems")
    wait(inside)
    tracks = inside.snapshot()["project"]["tracks"]
    assert folder_depths(inside, project) == [1, 0, 1] + [0] * (len(tracks) - 5) + [-2, 0]
    assert tracks[-1]["name"] == "After"
    assert rpr.GetParentTrack(rpr.GetTrack(project.id, 2)) == project.tracks[0].id


def test_split_shows_progress_on_the_item_and_a_cancel_leaves_the_project_as_it_was(inside, tmp_path):
    project = prepare(inside, tmp_path)
    item = make_item(inside, project, seconds="20")
    rpr = inside.reapy.reascript_api
    before = inside.snapshot()["project"]
    inside.run("stems")
    step_until(inside, lambda: "[ACE-Step" in rpr.GetSetMediaItemTakeInfo_String(
        rpr.GetActiveTake(item), "P_NAME", "", False)[3])
    inside.run("cancel")
    wait(inside)
    state = inside.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    assert state["project"]["tracks"] == before["tracks"]  # the take's name put back, nothing added or muted
    assert state["project"]["undo"] == before["undo"]


def test_split_needs_a_selected_item(inside, tmp_path):
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    inside.run("stems")
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("Select the item to split into stems")
    assert state["project"]["tracks"] == before["tracks"] and state["project"]["undo"] == before["undo"]


def test_split_of_a_file_the_sketch_did_not_make_says_which_model_can(inside, tmp_path):
    """Audio the user recorded: only the model's extract (base or sft) can split it."""
    project = prepare(inside, tmp_path)
    recorded_item(inside, project, tmp_path / "game" / "recorded.wav", seconds=2.0)
    before = inside.snapshot()["project"]
    inside.run("stems")
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("The loaded model cannot extract stems: "), box["message"]
    assert "acestep-dcc worker --backend acestep --model" in box["message"]
    assert state["project"]["tracks"] == before["tracks"] and state["script_errors"] == []


def test_an_item_played_at_another_rate_is_refused_in_one_sentence(inside, tmp_path):
    project = prepare(inside, tmp_path)
    item = make_item(inside, project)
    rpr = inside.reapy.reascript_api
    rpr.SetMediaItemTakeInfo_Value(rpr.GetActiveTake(item), "D_PLAYRATE", 1.5)
    before = inside.snapshot()["project"]
    inside.run("stems")
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("The selected item plays its take at rate 1.5; ACE-Step can split into stems "
                                     "only takes played at rate 1."), box["message"]
    assert state["project"]["tracks"] == before["tracks"]


# -- Repaint time selection and Add layer on the sketch: refused -------------------------------------


def test_repaint_needs_a_time_selection_over_the_item(inside, tmp_path):
    project = prepare(inside, tmp_path)
    make_item(inside, project)  # at 4-8 s
    rpr = inside.reapy.reascript_api
    rpr.GetSet_LoopTimeRange2(project.id, True, False, 0.0, 0.0, False)
    inside.run("repaint")
    project.time_selection = 9, 12
    inside.run("repaint")
    boxes = [box["message"] for box in inside.snapshot()["message_boxes"]]
    assert boxes[0].startswith("Make a time selection over the part of the item to repaint"), boxes
    assert boxes[1].startswith("The time selection (9-12 s) does not overlap the selected item (4-8 s)."), boxes
    assert inside.snapshot()["dialogs"][1:] == []  # no prompt was asked for


@pytest.mark.parametrize("action, sentence", [
    ("repaint", "The loaded model cannot repaint part of an item: "),
    ("layer", "The loaded model cannot add a layer (lego): "),
])
def test_repaint_and_layer_say_the_sketch_cannot_before_asking_anything(inside, tmp_path, action, sentence):
    project = prepare(inside, tmp_path)
    make_item(inside, project)
    project.time_selection = 5, 6
    before = inside.snapshot()
    inside.run(action)
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith(sentence + "sketch (procedural"), box["message"]
    assert "can do: text2music." in box["message"] and "--backend acestep --model" in box["message"]
    assert len(state["dialogs"]) == len(before["dialogs"])  # refused before the prompt dialog
    assert state["project"]["tracks"] == before["project"]["tracks"]


def test_worker_settings_say_what_the_running_model_can_do(inside, tmp_path, worker):
    prepare(inside, tmp_path)
    inside.answer_inputs(None)
    inside.run("worker_settings")
    inside.answer_inputs(["", "10", "30"])
    inside.run("worker_settings")
    [box] = inside.snapshot()["message_boxes"]
    label = worker.health()["label"]
    assert box["message"].endswith(f"Its model, {label} can do: text2music."), box["message"]


def test_a_worker_reaper_starts_for_a_repaint_says_its_model_cannot_before_sending_anything(
        reaper_inside, tmp_path, monkeypatch):
    """No worker runs yet, so the action cannot ask one what it can do: the run starts the
    worker (the sketch, as configured), reads its health and refuses there, uploading nothing."""
    import json
    import sys

    from acestep_core.client import find_worker
    from test_reaper_actions import InsideReaperSession

    home = tmp_path / "host-worker-home"
    home.mkdir()
    command = [sys.executable, "-m", "acestep_core.worker", "--backend", "sketch"]
    (home / "config.json").write_text(json.dumps({"worker_command": command}))
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    session = InsideReaperSession(reaper_inside)
    try:
        project = prepare(session, tmp_path)
        recorded_item(session, project, tmp_path / "game" / "take.wav")
        project.time_selection = 5, 6
        before = session.snapshot()["project"]
        session.answer_inputs(["soft piano", ""])
        session.run("repaint")
        wait(session, timeout=120)
        state = session.snapshot()
        [box] = state["message_boxes"]
        assert box["message"].startswith("The loaded model cannot repaint part of an item: sketch (procedural"), box
        assert state["project"]["tracks"] == before["tracks"] and state["project"]["undo"] == before["undo"]
        client = find_worker(home / "state")
        assert client is not None and client.jobs() == []  # nothing was submitted
    finally:
        client = find_worker(home / "state")
        if client is not None:
            client.shutdown()
