"""The REAPER edit actions on a worker running the tiny random ACE-Step checkpoint (its
audio is noise, its code path real): Repaint time selection on the turbo variant, Add
layer (lego) and Split into stems (extract) on a base variant, and the turbo variant
refusing lego before anything is asked. Real python-reapy inside the REAPER stand-in,
the real worker over HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from acestep_core.client import find_worker

from test_reaper_actions import InsideReaperSession, prepare, wait
from test_reaper_edit import SCRIPT_NAMES, folder_depths, recorded_item  # noqa: F401  (registers the scripts)

CROSSFADE_S = 0.03  # acestep_core.audio.splice's, at each edge of the range


def jobs_of(client, task: str):
    return [job for job in client.jobs(limit=20) if job.request.get("task") == task]


def trimmed_recording(session, project, tmp_path):
    """A 4 s recording, its take starting 0.5 s into the file, the item at 5-8.5 s; the
    time selection 6-7 s is 1.5-2.5 s of the file."""
    item = recorded_item(session, project, tmp_path / "game" / "take.wav", seconds=4.0, position=5.0, offset=0.5)
    project.time_selection = 6, 7
    return item


@pytest.mark.slow
def test_repaint_adds_a_take_that_is_the_source_outside_the_selection(acestep_worker, reaper_inside, tmp_path):
    assert "repaint" in acestep_worker.health()["supports_tasks"]
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    trimmed_recording(session, project, tmp_path)
    undo_before = session.snapshot()["project"]["undo"]
    session.answer_inputs(["soft piano", "7"])
    session.run("repaint")
    wait(session, timeout=300)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    assert state["dialogs"][-1]["title"] == "ACE-Step: Repaint time selection"
    [item] = state["project"]["tracks"][1]["items"]
    assert (item["position"], item["length"], item["active_take"]) == (5.0, 3.5, 1)
    source, repaint = item["takes"]
    assert repaint["start_offset"] == source["start_offset"] == 0.5
    assert repaint["name"] == "soft piano (repaint 1.5-2.5 s, seed 7)"
    assert "repaint 1.5-2.5 s of the source" in item["notes"]
    assert state["project"]["undo"] == undo_before + ["ACE-Step: repaint time selection"]
    [job] = jobs_of(acestep_worker, "repaint")[:1]
    assert (job.request["repaint_start"], job.request["repaint_end"]) == (1.5, 2.5)
    assert job.request["source_audio"].startswith("upload")
    # As long as the source, and the source sample for sample outside the range and its crossfades.
    before, rate = sf.read(source["source"], dtype="int16")
    after, after_rate = sf.read(repaint["source"], dtype="int16")
    assert after_rate == rate and after.shape == before.shape
    outside = np.ones(len(before), bool)
    outside[int((1.5 - CROSSFADE_S) * rate) - 1:int((2.5 + CROSSFADE_S) * rate) + 1] = False
    assert np.array_equal(after[outside], before[outside])
    assert not np.array_equal(after[~outside], before[~outside])  # the range was made again


@pytest.mark.slow
def test_turbo_refuses_a_layer_in_one_sentence_naming_the_base_checkpoint(acestep_worker, reaper_inside, tmp_path):
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    trimmed_recording(session, project, tmp_path)
    before = session.snapshot()
    session.run("layer")
    state = session.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("The loaded model cannot add a layer (lego): ACE-Step 1.5 ("), box["message"]
    assert "lego needs a base or sft checkpoint" in box["message"]
    assert "acestep-dcc download-model ACE-Step/acestep-v15-xl-base-diffusers" in box["message"]
    assert len(state["dialogs"]) == len(before["dialogs"]) and state["project"]["tracks"] == before["project"]["tracks"]


@pytest.fixture
def base_worker(spawn_worker, tiny_checkpoint_factory, monkeypatch):
    process = spawn_worker("acestep", tiny_checkpoint_factory("acestep-v15-tiny-base", variant="base"), "--device", "cpu")
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(process.home))  # the actions find this worker
    client = find_worker()
    assert client is not None and "lego" in client.health()["supports_tasks"]
    return client


@pytest.mark.slow
def test_a_layer_lands_aligned_on_a_new_track_under_the_item(base_worker, reaper_inside, tmp_path):
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    trimmed_recording(session, project, tmp_path)
    undo_before = session.snapshot()["project"]["undo"]
    session.answer_inputs(["Piano", "bright arpeggios", "4"])  # not a track name: asked again
    session.answer_inputs(["guitar", "bright arpeggios", "4"])
    session.run("layer")
    wait(session, timeout=300)
    state = session.snapshot()
    assert state["script_errors"] == []
    [box] = state["message_boxes"]
    assert "Instrument must be one of vocals, backing_vocals, drums" in box["message"]
    assert state["dialogs"][-1]["defaults"][0] == "Piano"  # the dialog came back filled in
    tracks = state["project"]["tracks"]
    assert [t["name"] for t in tracks] == ["Dialogue", "Music", "take (guitar)"]
    [source] = tracks[1]["items"]
    [layer] = tracks[2]["items"]
    assert (layer["position"], layer["length"]) == (source["position"], source["length"]) == (5.0, 3.5)
    assert layer["takes"][0]["start_offset"] == 0.5 and source["mute"] is False
    assert layer["takes"][0]["name"] == "bright arpeggios (guitar, seed 4)"
    assert folder_depths(session, project) == [0, 0, 0]
    assert state["project"]["undo"] == undo_before + ["ACE-Step: add layer"]
    [job] = jobs_of(base_worker, "lego")[:1]
    assert job.request["track"] == "guitar"
    assert (job.request["repaint_start"], job.request["repaint_end"]) == (1.5, 2.5)
    written, rate = sf.read(layer["takes"][0]["source"], dtype="int16")
    original, original_rate = sf.read(source["takes"][0]["source"], dtype="int16")
    assert rate == original_rate and written.shape == original.shape
    # The layer alone: silent outside the range and its fades.
    outside = np.ones(len(written), bool)
    outside[int((1.5 - CROSSFADE_S) * rate) - 1:int((2.5 + CROSSFADE_S) * rate) + 1] = False
    assert not written[outside].any()


@pytest.mark.slow
def test_a_recording_splits_into_stems_by_extract_on_a_base_checkpoint(base_worker, reaper_inside, tmp_path):
    session = InsideReaperSession(reaper_inside)
    project = prepare(session, tmp_path)
    trimmed_recording(session, project, tmp_path)
    undo_before = session.snapshot()["project"]["undo"]
    session.run("stems")
    wait(session, timeout=600)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    tracks = state["project"]["tracks"]
    assert tracks[2]["name"] == "take (stems)" and tracks[1]["items"][0]["mute"] is True
    stems = tracks[3:]
    assert len(stems) >= 1
    for track in stems:
        [stem] = track["items"]
        assert (stem["position"], stem["length"], stem["takes"][0]["start_offset"]) == (5.0, 3.5, 0.5)
        data, _ = sf.read(stem["takes"][0]["source"], dtype="int16")
        assert len(data) == 4 * 44100
    assert folder_depths(session, project) == [0, 0, 1] + [0] * (len(stems) - 1) + [-1]
    assert state["project"]["undo"] == undo_before + ["ACE-Step: split into stems"]
