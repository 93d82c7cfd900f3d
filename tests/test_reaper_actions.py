"""The REAPER actions end to end: a real sketch-backend worker, python-reapy, and the
REAPER stand-in, both with the actions running inside REAPER (the action scripts run
as REAPER runs them, deferred ticks pumped like REAPER's main loop) and from outside
it through reapy's distant API over TCP."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import pytest

from acestep_core.timeline import CueSheet

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "hosts" / "reaper" / "scripts"
SCRIPT_NAMES = {
    "generate": "ACE-Step - Generate at edit cursor.py",
    "variations": "ACE-Step - Generate variations of selected item.py",
    "score": "ACE-Step - Score regions.py",
    "intensity_set": "ACE-Step - Make intensity set.py",
    "cancel": "ACE-Step - Cancel.py",
    "stop_worker": "ACE-Step - Stop worker.py",
    "worker_settings": "ACE-Step - Worker settings.py",
}
if str(REPO / "hosts" / "reaper") not in sys.path:
    sys.path.insert(0, str(REPO / "hosts" / "reaper"))  # for the distant runs, made in this process

PROMPT = "tense boss battle, synthwave"


class InsideReaperSession:
    """The actions as REAPER runs them: the action script, then REAPER's defer cycles."""

    mode = "inside"

    def __init__(self, reaper):
        self.reaper = reaper
        self.reapy = reaper.reapy

    def run(self, action: str) -> None:
        self.reaper.run_script(SCRIPTS / SCRIPT_NAMES[action])

    def busy(self) -> bool:
        return bool(self.reaper.app.scripts.running())

    def step(self) -> None:
        self.reaper.pump()

    def __getattr__(self, name):
        return getattr(self.reaper, name)


class DistantSession:
    """The actions run in this process, outside REAPER, through reapy's distant API."""

    mode = "distant"

    def __init__(self, reaper):
        from acestep_reaper.loops import ManualLoop

        self.reaper = reaper
        self.reapy = reaper.reapy
        self.loop = ManualLoop()

    def run(self, action: str) -> None:
        from acestep_reaper.actions import run_action

        run_action(action, self.loop)

    def busy(self) -> bool:
        return any(not run.finished for run in self.loop.runs)

    def step(self) -> None:
        self.loop.tick()

    def __getattr__(self, name):
        return getattr(self.reaper, name)


def wait(session, timeout: float = 60.0) -> None:
    """Tick until the action's runs are over, as REAPER's main loop would."""
    deadline = time.monotonic() + timeout
    while session.busy():
        assert time.monotonic() < deadline, "the ACE-Step action did not finish"
        session.step()
        time.sleep(0.01)


def step_until(session, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the action"
        session.step()
        time.sleep(0.01)


@pytest.fixture(params=["inside", "distant"])
def session(request, worker):
    if request.param == "inside":
        return InsideReaperSession(request.getfixturevalue("reaper_inside"))
    return DistantSession(request.getfixturevalue("reapy_distant"))


@pytest.fixture
def inside(worker, reaper_inside):
    return InsideReaperSession(reaper_inside)


def prepare(session, tmp_path: Path, saved: bool = True, select: bool = True, bpm: float = 96.0):
    """A project the way a user leaves it: saved, a Dialogue and a Music track (Music
    selected), a time selection 4-10 s with the edit cursor at its start, all recorded
    in one undo point."""
    if saved:
        session.open_saved_project(tmp_path / "game" / "level1.rpp")
    reapy = session.reapy
    reapy.delete_ext_state("acestep-dcc", "last_prompt", persist=True)  # a first use of ACE-Step
    project = reapy.Project()
    project.add_track(name="Dialogue")
    music = project.add_track(index=1, name="Music")
    if select:
        music.select()
    reapy.reascript_api.SetCurrentBPM(project.id, bpm, False)
    project.time_selection = 4, 10
    project.cursor_position = 4
    reapy.reascript_api.Undo_OnStateChange2(project.id, "test setup")
    return project


def wav_seconds(path: str) -> float:
    with wave.open(path) as handle:
        return handle.getnframes() / handle.getframerate()


# -- Generate at edit cursor ------------------------------------------------------------------------


def test_generate_puts_one_item_at_the_edit_cursor_with_every_candidate_as_a_take(session, tmp_path):
    project = prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "2", "7"])  # BPM, signature and key keep their defaults
    session.run("generate")
    wait(session)

    state = session.snapshot()
    dialog = state["dialogs"][0]
    assert dialog["defaults"][1:] == ["6", "2", "", "96", "4/4", "", "", "", ""]  # seconds = time selection; no loop
    assert dialog["defaults"][0] == "[mood] [scene], [style], [tempo] [instruments]"
    assert state["message_boxes"] == [] and state["script_errors"] == []
    music = state["project"]["tracks"][1]
    assert music["name"] == "Music" and state["project"]["tracks"][0]["items"] == []
    [item] = music["items"]
    assert (item["position"], item["length"], item["active_take"]) == (4.0, 6.0, 0)
    assert [take["name"] for take in item["takes"]] == [f"{PROMPT} (seed 7)", f"{PROMPT} (seed 8)"]
    media_folder = tmp_path / "game"
    for take in item["takes"]:
        assert Path(take["source"]).parent == media_folder and Path(take["source"]).is_file()
        assert Path(take["source"]).name.startswith("sketch ")  # never named as ACE-Step's work
        assert wav_seconds(take["source"]) == pytest.approx(6.0, abs=0.01)
    assert item["notes"].startswith("ACE-Step\n")
    assert f"prompt: {PROMPT}" in item["notes"] and "seed: 7 (take 1), 8 (take 2)" in item["notes"]
    assert "model: sketch" in item["notes"] and "\ntempo: 96 BPM (as asked)\n" in item["notes"]
    assert json.loads(item["ext"]["acestep-dcc"])["bpm"] == 96.0  # the request had the project tempo
    assert state["project"]["undo"] == ["test setup", "ACE-Step: generate at edit cursor"]
    assert "acestep-dcc/runs" not in state["ext_state"]
    assert "loop:" not in item["notes"]

    # T (Take: Switch items to next take) switches between the candidates
    reapy = session.reapy
    item_id = reapy.reascript_api.GetTrackMediaItem(project.tracks[1].id, 0)
    reapy.reascript_api.SetMediaItemSelected(item_id, True)
    project.perform_action(40125)
    assert session.snapshot()["project"]["tracks"][1]["items"][0]["active_take"] == 1
    # and one undo takes the whole generation away
    project.undo()
    project.undo()
    assert session.snapshot()["project"]["tracks"][1]["items"] == []


def test_item_notes_say_the_tempo_and_key_in_use_and_what_was_measured(session, worker, tmp_path):
    """An ordinary cue (not a set) with the tempo and key left open: the notes say what
    each take has, where it came from, and what analysis of the audio measured."""
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "2", "7", ""])  # BPM empty: planned from the prompt
    session.run("generate")
    wait(session)
    [item] = session.snapshot()["project"]["tracks"][1]["items"]
    notes = item["notes"].splitlines()
    outputs = worker.jobs(limit=1)[0].outputs
    tempos = [o.metadata["tempo"] for o in outputs]
    keys = [o.metadata["key"] for o in outputs]
    # Planned from the prompt before generating; the measurement is a check.
    assert all(t["source"] == "plan" and t["measured"] is not None for t in tempos)
    tempo = [f"{t['used']:g} BPM (planned from the {t['planned_from']}), measured {round(t['measured'], 1):g} BPM "
             f"({t['check']})" for t in tempos]
    key = [f"{k['used']} (planned from the {k['planned_from']}), measured {k['measured']} ({k['check']})" for k in keys]
    assert ("tempo: " + tempo[0] if tempo[0] == tempo[1] else f"tempo: take 1: {tempo[0]}; take 2: {tempo[1]}") in notes
    assert ("key: " + key[0] if key[0] == key[1] else f"key: take 1: {key[0]}; take 2: {key[1]}") in notes
    assert not any(line.startswith(("warning", "loudness")) for line in notes)


def test_files_in_the_media_folder_are_never_overwritten(session, tmp_path):
    """The name a cue would get is taken (a file of the user's) and so is the next one's
    sidecar: the cue takes the first number whose audio and sidecar are both free, as the
    CLI and the worker do (boss_2.wav), and both files are left as they were."""
    prepare(session, tmp_path)
    media = tmp_path / "game"
    stem = "sketch tense-boss-battle-synthwave seed7"
    (media / f"{stem}.wav").write_bytes(b"the user's own take")
    (media / f"{stem}_2.wav.json").write_text("{}")
    session.answer_inputs([PROMPT, "3", "1", "7"])
    session.run("generate")
    wait(session)
    [item] = session.snapshot()["project"]["tracks"][1]["items"]
    assert Path(item["takes"][0]["source"]) == media / f"{stem}_3.wav"
    assert wav_seconds(str(media / f"{stem}_3.wav")) == pytest.approx(3.0, abs=0.01)
    assert (media / f"{stem}.wav").read_bytes() == b"the user's own take"
    assert (media / f"{stem}_2.wav.json").read_text() == "{}" and not (media / f"{stem}_2.wav").exists()


def test_a_missed_loudness_target_is_said_in_the_notes_and_the_console(session, worker, tmp_path):
    """-5 LUFS under a -1 dBTP ceiling cannot be reached without crushing the music: the
    worker says so, and REAPER shows it in the item notes and the ReaScript console."""
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "1", "7", "", "", "", "", "", "-5"])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == []
    [item] = state["project"]["tracks"][1]["items"]
    [output] = worker.jobs(limit=1)[0].outputs
    assert output.metadata["request"]["loudness"] == -5
    [warning] = output.metadata["warnings"]
    assert "LUFS" in warning
    assert f"\nwarning: {warning}\n" in item["notes"]
    loudness = output.metadata["loudness"]
    assert f"loudness: {round(loudness['integrated_lufs'], 1):g} LUFS (aimed for -5)" in item["notes"]
    assert f"ACE-Step warning: '{PROMPT}' (seed 7): {warning}" in state["console"]


def item_value(session, track_index: int, item_index: int, name: str) -> float:
    rpr = session.reapy.reascript_api
    track = rpr.GetTrack(session.reapy.Project().id, track_index)
    return rpr.GetMediaItemInfo_Value(rpr.GetTrackMediaItem(track, item_index), name)


def track_value(session, track_index: int, name: str) -> float:
    rpr = session.reapy.reascript_api
    return rpr.GetMediaTrackInfo_Value(rpr.GetTrack(session.reapy.Project().id, track_index), name)


def wav_frames(path: str) -> int:
    with wave.open(path) as handle:
        return handle.getnframes()


@pytest.mark.parametrize("loop_field,bars", [("2", 2), ("fit", 2)])  # 6 s at 96 BPM: 2.4 bars, so 2
def test_generate_a_loop_places_an_item_exactly_one_loop_long(session, tmp_path, loop_field, bars):
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "2", "7", "96", "4/4", "", loop_field])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    [item] = state["project"]["tracks"][1]["items"]
    loop_seconds = bars * 4 * 60 / 96  # 2.5 s a bar
    assert item["position"] == 4.0 and item["length"] == pytest.approx(loop_seconds, abs=1e-9)
    for take in item["takes"]:
        frames = wav_frames(take["source"])
        assert frames == round(loop_seconds * 44100) + 1  # the loop and its guard frame
        assert take["start_offset"] == 0.0
    # The file is one frame longer than the loop, so REAPER's Loop source (which repeats the
    # whole file) is off; the item ends exactly on the loop end.
    assert item_value(session, 1, 0, "B_LOOPSRC") == 0.0
    assert f"loop: {bars} bars at 96 BPM, frames 0-{round(loop_seconds * 44100)} of" in item["notes"]
    assert "Loop source is off" in item["notes"]
    assert json.loads(item["ext"]["acestep-dcc"])["loop"] is True
    assert state["project"]["undo"][-1] == "ACE-Step: generate at edit cursor"


def test_a_loop_after_an_intro_is_one_item_of_the_intro_and_one_loop_that_does_not_loop_its_source(
        session, worker, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "1", "7", "96", "4/4", "", "2", "1"])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    assert "Intro bars" in state["dialogs"][0]["captions"][8]
    [item] = state["project"]["tracks"][1]["items"]
    intro_seconds, loop_seconds = 4 * 60 / 96, 2 * 4 * 60 / 96  # 2.5 s a bar
    request = worker.jobs(limit=1)[0].request
    assert request["loop"] is True and request["loop_bars"] == 2 and request["intro_bars"] == 1
    [output] = worker.jobs(limit=1)[0].outputs
    record = output.metadata["loop"]
    assert record["intro_bars"] == 1 and record["intro_frames"] == record["loop_start"] == round(intro_seconds * 44100)
    # From the file's first frame (the intro plays), the intro and one loop long.
    assert item["position"] == 4.0 and item["length"] == pytest.approx(intro_seconds + loop_seconds, abs=1e-9)
    [take] = item["takes"]
    assert take["start_offset"] == 0.0
    assert wav_frames(take["source"]) == record["loop_end_exclusive"] + 1 == round((intro_seconds + loop_seconds) * 44100) + 1
    # Loop source would repeat the whole file, intro and all: it is off, and the notes say why.
    assert item_value(session, 1, 0, "B_LOOPSRC") == 0.0
    assert "\nintro 1 bar, then the loop from 2.5 s: " in item["notes"] and "Loop source is off" in item["notes"]
    assert json.loads(item["ext"]["acestep-dcc"])["intro_bars"] == 1


def test_an_auto_intro_is_the_one_the_cli_makes(session, worker, tmp_path):
    """'auto' before a 2-bar loop is a 2-bar intro, as `generate --intro auto` makes it."""
    from acestep_core.cli import intro_from_text

    prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "6", "1", "7", "96", "4/4", "", "2", "auto"])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    request = worker.jobs(limit=1)[0].request
    assert request["intro_bars"] == intro_from_text("auto", 2) == 2
    [item] = state["project"]["tracks"][1]["items"]
    assert "\nintro 2 bars, then the loop from 5 s: " in item["notes"]


def test_an_intro_in_a_file_of_exactly_intro_and_loop_still_does_not_loop_its_source(worker, tmp_path):
    """FLAC and Ogg hold exactly the intro and the loop (no guard frame): a loop without an
    intro gets Loop source there, an intro never does (it would play again on every pass)."""
    from acestep_core.request import GenerationRequest
    from acestep_reaper.placements import loop_fit, loop_note

    def made(intro: int):
        request = GenerationRequest(prompt=PROMPT, duration=6, seed=3, bpm=96, time_signature="4/4", loop=True,
                                    loop_bars=2, intro_bars=intro, output_format="flac")
        [output] = worker.wait(worker.submit(request).id, timeout=60).outputs
        return loop_fit(output)

    plain, intro = made(0), made(2)
    assert plain.loop_source is True and plain.start_offset == 0.0 and plain.length == pytest.approx(5.0)
    assert intro.frames[1] == intro.frames[2]  # the file is exactly intro + loop
    assert intro.loop_source is False and intro.start_offset == 0.0 and intro.length == pytest.approx(10.0)
    assert intro.loop_start == pytest.approx(5.0)
    assert "intro 2 bars, then the loop from 5 s" in loop_note(intro)


@pytest.mark.parametrize("loop_field,intro_field,message", [
    ("2", "two", "Intro bars must be a whole number of bars from 0 to 16, 'auto', or empty for no intro; got 'two'"),
    ("2", "17", "Intro bars must be a whole number of bars from 0 to 16, 'auto', or empty for no intro; got '17'"),
    ("2", "1.5", "Intro bars must be a whole number of bars from 0 to 16, 'auto', or empty for no intro; got '1.5'"),
    ("", "2", "Intro bars come before a loop: fill in Loop bars (a number or 'fit'), or leave Intro bars empty"),
])
def test_an_intro_that_is_not_a_whole_number_or_has_no_loop_is_refused_before_anything_is_sent(
        inside, worker, tmp_path, loop_field, intro_field, message):
    prepare(inside, tmp_path)
    before = [job.id for job in worker.jobs(limit=5)]
    inside.answer_inputs([PROMPT, "6", "1", "", "96", "4/4", "", loop_field, intro_field])
    inside.answer_inputs(None)  # the dialog comes back filled in; the user gives up
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert message in box["message"]
    assert state["dialogs"][1]["defaults"][7:9] == [loop_field, intro_field]
    assert state["project"]["tracks"][1]["items"] == [] and state["project"]["undo"] == ["test setup"]
    assert [job.id for job in worker.jobs(limit=5)] == before  # nothing was sent


def test_an_intro_of_0_is_no_intro(inside, worker, tmp_path):
    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "6", "1", "", "96", "4/4", "", "2", "0"])
    inside.run("generate")
    wait(inside)
    [item] = inside.snapshot()["project"]["tracks"][1]["items"]
    assert worker.jobs(limit=1)[0].request["intro_bars"] == 0
    assert item["length"] == pytest.approx(5.0) and "intro" not in item["notes"]


def test_a_loop_that_does_not_parse_is_explained(inside, tmp_path):
    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "6", "1", "", "96", "4/4", "", "forever"])
    inside.answer_inputs(lambda dialog: dialog.defaults[:7] + ["4"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert "Loop bars must be a number of bars such as 8, or 'fit'" in box["message"]
    assert state["project"]["tracks"][1]["items"][0]["length"] == pytest.approx(10.0)  # 4 bars


def test_generate_returns_to_reaper_at_once_and_shows_progress(inside, tmp_path):
    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "20", "3"])
    started = time.perf_counter()
    inside.run("generate")
    assert time.perf_counter() - started < 0.5
    labels = set()

    def placeholder_labels():
        items = inside.snapshot()["project"]["tracks"][1]["items"]
        labels.update(take["name"] for item in items for take in item["takes"] if take["source"] is None)
        return not inside.busy()

    step_until(inside, placeholder_labels)
    assert "ACE-Step queued" in labels or any(label.endswith("%") for label in labels)
    assert all(label.startswith("ACE-Step") for label in labels)
    items = inside.snapshot()["project"]["tracks"][1]["items"]
    assert len(items) == 1 and len(items[0]["takes"]) == 3  # the placeholder is gone


def test_following_the_job_starts_no_thread(session, tmp_path):
    """REAPER runs a script's Python threads only while its own code runs (python-reapy
    issue #45): the ticks follow the job themselves, with a StatusPoll."""
    prepare(session, tmp_path)
    threads = set(threading.enumerate())
    session.answer_inputs([PROMPT, "20", "1"])
    session.run("generate")
    generation = importlib.import_module("acestep_reaper.generation")  # the one the action runs
    updates = 0
    while session.busy():
        session.step()
        assert set(threading.enumerate()) == threads
        updates = max([updates] + [run.status_updates for run in generation.RUNNING.values()])
        time.sleep(0.01)
    assert updates >= 2  # it did follow the job: queued or running, then done
    assert [len(t["items"]) for t in session.snapshot()["project"]["tracks"]] == [0, 1]


def test_with_no_track_selected_the_item_goes_on_a_new_ace_step_track(inside, tmp_path):
    prepare(inside, tmp_path, select=False)
    inside.answer_inputs([PROMPT, "3", "1"])
    inside.run("generate")
    wait(inside)
    tracks = inside.snapshot()["project"]["tracks"]
    assert [t["name"] for t in tracks] == ["Dialogue", "Music", "ACE-Step"]
    assert len(tracks[2]["items"]) == 1 and tracks[2]["items"][0]["position"] == 4.0


def test_an_unsaved_project_gets_a_temporary_folder_and_a_notice(inside, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    prepare(inside, tmp_path, saved=False)
    inside.answer_inputs([PROMPT, "3", "1"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    [take] = state["project"]["tracks"][1]["items"][0]["takes"]
    assert Path(take["source"]).parent == tmp_path / "temp" / "acestep-dcc" / "unsaved-projects"
    assert "not saved yet" in state["console"] and "Save project as" in state["console"]


def test_cancelling_the_dialog_changes_nothing(inside, tmp_path):
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    inside.answer_inputs(None)
    inside.run("generate")
    assert not inside.busy()
    assert inside.snapshot()["project"] == before


def test_refused_values_are_explained_and_the_dialog_comes_back(inside, tmp_path):
    prepare(inside, tmp_path)
    inside.answer_inputs(["[mood] [scene], [style], [tempo] [instruments]", "900", "2"])
    inside.answer_inputs(lambda dialog: ["calm exploration, ambient", "900", "2"])
    inside.answer_inputs(lambda dialog: [dialog.defaults[0], "4", "1"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    first, second = [box["message"] for box in state["message_boxes"]]
    assert "Type a prompt" in first
    assert "duration must be between 1 and 600 seconds" in second
    # the dialog came back with what the user had typed
    assert state["dialogs"][2]["defaults"][:2] == ["calm exploration, ambient", "900"]
    assert state["project"]["tracks"][1]["items"][0]["length"] == 4.0


# -- Cancel and failures ------------------------------------------------------------------------------


def test_cancel_leaves_nothing_half_made(session, worker, tmp_path):
    prepare(session, tmp_path)
    before = session.snapshot()["project"]
    session.answer_inputs([PROMPT, "120", "4"])
    session.run("generate")
    step_until(session, lambda: any(json.loads(session.snapshot()["ext_state"].get("acestep-dcc/runs", "{}")).values()))
    assert len(session.snapshot()["project"]["tracks"][1]["items"]) == 1  # the placeholder
    session.run("cancel")
    wait(session)
    state = session.snapshot()
    assert state["project"]["tracks"] == before["tracks"]
    assert state["project"]["undo"] == before["undo"]
    assert state["message_boxes"] == [] and state["script_errors"] == []
    assert not any(key in state["ext_state"] for key in ("acestep-dcc/runs", "acestep-dcc/cancel"))
    job = worker.jobs(limit=1)[0]
    assert worker.wait(job.id, timeout=60).status == "cancelled"  # the worker stops too


def test_cancel_with_nothing_running_says_so(inside):
    inside.run("cancel")
    assert [box["message"] for box in inside.snapshot()["message_boxes"]] == ["ACE-Step is not generating anything right now."]


def test_a_worker_that_cannot_start_gives_a_message_that_says_what_to_do(session, tmp_path, monkeypatch):
    home = tmp_path / "no-worker-home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"worker_command": [sys.executable, "-c", "raise SystemExit(2)"]}))
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    prepare(session, tmp_path, select=False)
    before = session.snapshot()["project"]
    session.answer_inputs([PROMPT, "5", "1"])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    [box] = state["message_boxes"]
    assert "worker could not be started" in box["message"] and "exit status 2" in box["message"]
    assert "acestep-dcc worker" in box["message"]
    assert state["project"]["tracks"] == before["tracks"]  # no placeholder, no new track
    assert state["script_errors"] == []


def test_a_worker_that_dies_mid_job_gives_a_message_and_leaves_nothing(reaper_inside, spawn_worker, tmp_path, monkeypatch):
    dying = spawn_worker()
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(dying.home))
    inside = InsideReaperSession(reaper_inside)
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    inside.answer_inputs([PROMPT, "120", "4"])
    inside.run("generate")
    step_until(inside, lambda: any(json.loads(inside.snapshot()["ext_state"].get("acestep-dcc/runs", "{}")).values()))
    dying.kill()
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("ACE-Step lost its worker") and "Run the action again" in box["message"]
    assert state["project"]["tracks"] == before["tracks"] and state["script_errors"] == []


# -- the worker's lifetime: how REAPER starts it, Stop worker, Worker settings --------------------------


def host_worker_home(tmp_path: Path, *extra: str) -> Path:
    """An acestep-dcc home with no worker running whose config starts a sketch worker."""
    home = tmp_path / "host-worker-home"
    home.mkdir()
    command = [sys.executable, "-m", "acestep_core.worker", "--backend", "sketch", *extra]
    (home / "config.json").write_text(json.dumps({"worker_command": command}))
    return home


def stop_any_worker(home: Path) -> None:
    from acestep_core.client import find_worker

    client = find_worker(home / "state")
    if client is not None:
        client.shutdown()


def exited(pid: int) -> bool:
    """True once the process has ended. A worker the in-process REAPER started is this
    process's child: reap it, or it would stay a zombie that looks alive."""
    from acestep_core.worker.discovery import pid_alive

    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child, or reaped already
        return not pid_alive(pid)
    return done == pid


def process_arguments(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the worker's command line from /proc")
def test_a_worker_reaper_starts_preloads_and_exits_when_idle(inside, tmp_path, monkeypatch):
    """REAPER starts the worker with --preload and the idle times from its settings, and
    the worker exits when REAPER has not talked to it for the idle-exit time."""
    from acestep_core.worker.discovery import read_discovery

    home = host_worker_home(tmp_path)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    try:
        prepare(inside, tmp_path)
        inside.reapy.set_ext_state("acestep-dcc", "idle_unload_minutes", "0.02", persist=True)  # 1.2 s
        inside.reapy.set_ext_state("acestep-dcc", "idle_exit_minutes", "0.03", persist=True)  # 1.8 s
        inside.answer_inputs([PROMPT, "2", "1"])
        inside.run("generate")
        wait(inside)
        state = inside.snapshot()
        assert state["message_boxes"] == [] and len(state["project"]["tracks"][1]["items"]) == 1
        info = read_discovery(home / "state")
        arguments = process_arguments(info.pid)
        assert arguments[arguments.index("--preload"):] == ["--preload", "--idle-unload", "0.02", "--idle-exit", "0.03"]
        # (the sketch backend has no model to unload: the worker tests check --idle-unload)
        deadline = time.monotonic() + 30
        while not exited(info.pid):
            assert time.monotonic() < deadline, "the idle worker did not exit"
            time.sleep(0.1)
    finally:
        stop_any_worker(home)


def test_stop_worker_cancels_what_runs_and_stops_the_worker(reaper_inside, spawn_worker, tmp_path, monkeypatch):
    running = spawn_worker()
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(running.home))
    inside = InsideReaperSession(reaper_inside)
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    inside.answer_inputs([PROMPT, "120", "4"])
    inside.run("generate")
    step_until(inside, lambda: any(json.loads(inside.snapshot()["ext_state"].get("acestep-dcc/runs", "{}")).values()))
    inside.run("stop_worker")
    running.process.wait(timeout=10)  # gone, and its model's memory with it
    wait(inside)
    state = inside.snapshot()
    [box] = state["message_boxes"]
    assert box["message"].startswith("ACE-Step's worker has stopped (1 generation cancelled)")
    assert state["project"]["tracks"] == before["tracks"] and state["script_errors"] == []
    assert "acestep-dcc/runs" not in state["ext_state"]


def test_stop_worker_with_no_worker_says_so(inside, tmp_path, monkeypatch):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "empty-home"))
    inside.run("stop_worker")
    assert [b["message"] for b in inside.snapshot()["message_boxes"]] == [
        "ACE-Step's worker is not running, so there is nothing to stop."]


def test_worker_settings_are_checked_kept_in_reaper_and_used_to_start_the_worker(inside, tmp_path, monkeypatch):
    home = host_worker_home(tmp_path)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    missing = str(tmp_path / "nowhere" / "bin" / "python")
    inside.answer_inputs([missing, "soon", "-1"])
    inside.answer_inputs(["", "2.5", "0"])  # empty: the installed Python; 0: never exit
    inside.run("worker_settings")
    state = inside.snapshot()
    first, second = state["dialogs"]
    assert first["title"] == "ACE-Step: Worker settings"
    assert first["defaults"] == [sys.executable, "10", "30", "", ""]  # the configured Python; the defaults; no remote
    assert second["defaults"] == [missing, "soon", "-1", "", ""]  # the dialog comes back as filled in
    problems, saved = [b["message"] for b in state["message_boxes"]]
    assert f"Worker Python {missing} does not exist; set Worker Python in 'ACE-Step: Worker settings' to " \
           f"{sys.executable}, the Python acestep-dcc is installed in" in problems
    assert "Unload the model after must be a number of minutes, 0 or more (0: never), got 'soon'" in problems
    assert "Stop the worker after must be a number of minutes, 0 or more (0: never), got '-1'" in problems
    assert saved.startswith("Saved")
    assert state["ext_state"]["acestep-dcc/idle_unload_minutes"] == "2.5"
    assert state["ext_state"]["acestep-dcc/idle_exit_minutes"] == "0"
    assert "acestep-dcc/worker_python" not in state["ext_state"]
    ini = (Path(inside.app.resource_path) / "reaper-extstate.ini").read_text()
    assert "idle_unload_minutes=2.5" in ini  # kept when REAPER restarts

    from acestep_reaper import settings

    assert settings.host_worker_command()[-3:] == ["--preload", "--idle-unload", "2.5"]  # no --idle-exit: never


def bare_python(folder: Path) -> str:
    """A real Python without acestep-dcc's worker packages: a fresh venv with nothing in it."""
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(folder)
    return str(folder / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python"))


@pytest.mark.parametrize("case", ["does not exist", "lacks the packages"])
def test_a_worker_python_that_cannot_run_the_worker_is_told_to_set_worker_python(inside, tmp_path, monkeypatch, case):
    home = host_worker_home(tmp_path)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    if case == "does not exist":
        python = str(tmp_path / "moved-venv" / "bin" / "python")
        problem = f"Worker Python {python} does not exist"
    else:
        python = bare_python(tmp_path / "bare-venv")
        problem = f"Worker Python {python} lacks acestep-dcc's worker packages (it has no "
    inside.reapy.set_ext_state("acestep-dcc", "worker_python", python, persist=True)
    prepare(inside, tmp_path, select=False)
    before = inside.snapshot()["project"]
    inside.answer_inputs([PROMPT, "2", "1"])
    inside.run("generate")
    wait(inside)
    state = inside.snapshot()
    [message] = [b["message"] for b in state["message_boxes"]]
    assert message.startswith(f"ACE-Step's worker could not be started: {problem}"), message
    assert message.endswith(f"; set Worker Python in 'ACE-Step: Worker settings' to {sys.executable}, the Python "
                            "acestep-dcc is installed in."), message
    assert "Traceback" not in message and "|" not in message  # no fragments of the worker's log
    assert state["project"]["tracks"] == before["tracks"]


# -- Variations ----------------------------------------------------------------------------------------


def test_variations_add_new_takes_to_the_selected_item(session, tmp_path):
    project = prepare(session, tmp_path)
    session.answer_inputs([PROMPT, "4", "1", "3"])
    session.run("generate")
    wait(session)
    rpr = session.reapy.reascript_api
    item_id = rpr.GetTrackMediaItem(project.tracks[1].id, 0)
    rpr.SetMediaItemSelected(item_id, True)
    session.answer_inputs([PROMPT, "2", "40"])
    session.run("variations")
    wait(session)
    state = session.snapshot()
    dialog = state["dialogs"][1]
    assert dialog["defaults"][0] == PROMPT  # from the request kept on the item
    assert len(dialog["captions"]) == 3  # the sketch backend cannot cover
    [item] = state["project"]["tracks"][1]["items"]
    assert [t["name"] for t in item["takes"]] == [f"{PROMPT} (seed {s})" for s in (3, 40, 41)]
    assert item["active_take"] == 1 and item["length"] == 4.0
    assert all(wav_seconds(t["source"]) == pytest.approx(4.0, abs=0.01) for t in item["takes"])
    assert "variations:" in item["notes"]
    assert state["project"]["undo"][-2:] == ["ACE-Step: generate at edit cursor", "ACE-Step: variations"]


def test_variations_need_a_selected_item(inside, tmp_path):
    prepare(inside, tmp_path)
    inside.run("variations")
    [box] = inside.snapshot()["message_boxes"]
    assert box["message"].startswith("Select the item")


# -- Score regions ---------------------------------------------------------------------------------------


def test_score_regions_puts_one_cue_per_region_on_a_score_track_with_crossfades(session, tmp_path):
    project = prepare(session, tmp_path)
    regions = [("calm exploration, ambient", 0.0, 8.0), ("tense boss battle, synthwave", 8.0, 14.0),
               ("victory, orchestral", 20.0, 25.0)]
    for name, start, end in reversed(regions):
        project.add_region(start, end, name=name)
    session.reapy.reascript_api.Undo_OnStateChange2(project.id, "regions")
    session.answer_inputs(["1.5", "11"])
    session.run("score")
    wait(session)

    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    score = state["project"]["tracks"][2]
    assert score["name"] == "Score"
    sheet = CueSheet.from_regions(regions, crossfade=1.5)
    placed = [(i["position"], i["length"], i["fade_in"], i["fade_out"]) for i in score["items"]]
    assert placed == [(float(s.start), float(s.duration), float(s.fade_in), float(s.fade_out)) for s in sheet]
    assert placed == [(0.0, 9.5, 0.0, 1.5), (8.0, 6.0, 1.5, 0.0), (20.0, 5.0, 0.0, 0.0)]
    assert [i["takes"][0]["name"] for i in score["items"]] == [f"{name} (seed {11 + n})" for n, (name, _, _) in enumerate(regions)]
    for item in score["items"]:
        assert wav_seconds(item["takes"][0]["source"]) == pytest.approx(item["length"], abs=0.01)
    assert state["project"]["markers"] == [
        {"is_region": True, "position": s, "end": e, "name": n, "number": 3 - i, "color": 0} for i, (n, s, e) in enumerate(regions)
    ]
    assert state["project"]["undo"] == ["test setup", "regions", "ACE-Step: score regions"]


def test_score_regions_explains_missing_and_unnamed_regions(inside, tmp_path):
    project = prepare(inside, tmp_path)
    inside.run("score")
    project.add_region(2.0, 6.0, name="")
    inside.run("score")
    first, second = [box["message"] for box in inside.snapshot()["message_boxes"]]
    assert first.startswith("This project has no regions")
    assert second.startswith("Region 1 has no name")


# -- Make intensity set -------------------------------------------------------------------------------------

SET_PROMPT = "boss battle, rock"
SET_TRACKS = [f"ACE-Step set: {SET_PROMPT} ({part})"
              for part in ("base", "layer 1/3", "layer 2/3", "layer 3/3", "stingers")]
VARIANT_TRACKS = [f"ACE-Step set: {SET_PROMPT} ({part})"
                  for part in ("base", "intensity 1/3", "intensity 2/3", "intensity 3/3", "stingers")]


def test_make_intensity_set_stacks_the_layers_on_new_tracks_in_one_undo_step(session, worker, tmp_path):
    project = prepare(session, tmp_path)
    before = session.snapshot()["project"]
    earlier_set = tmp_path / "game" / "sketch set boss-battle-rock"  # a set made before: left alone
    earlier_set.mkdir()
    (earlier_set / "notes.txt").write_text("mine")
    # 2 bars, 3 levels, 2 stingers, seed 5; the project's 96 BPM and 4/4
    session.answer_inputs([SET_PROMPT, "2", "6", "3", "2", "5"])
    session.run("intensity_set")
    wait(session)

    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    dialog = state["dialogs"][0]
    assert dialog["defaults"][1:] == ["fit", "6", "3", "2", "", "96", "4/4", "", "", "layers"]  # a time selection: fit it
    tracks = state["project"]["tracks"]
    assert [t["name"] for t in tracks] == ["Dialogue", "Music", *SET_TRACKS]
    assert tracks[1]["items"] == []  # the selected track is left alone

    loop_seconds = 2 * 4 * 60 / 96  # 5 s
    for index in range(2, 6):  # base and levels: one loop each at the edit cursor
        [item] = tracks[index]["items"]
        assert item["position"] == 4.0 and item["length"] == pytest.approx(loop_seconds, abs=1e-9)
        assert wav_frames(item["takes"][0]["source"]) == round(loop_seconds * 44100) + 1
        assert item_value(session, index, 0, "B_LOOPSRC") == 0.0
        assert "set: " in item["notes"] and "loop: 2 bars at 96 BPM" in item["notes"]
    # The layers stack: they all play (together they are the base), and the base is muted.
    assert [track_value(session, index, "B_MUTE") for index in range(2, 7)] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert [t["items"][0]["takes"][0]["name"] for t in tracks[2:6]] == [
        f"{SET_PROMPT} (base, seed 5)", *[f"{SET_PROMPT} (layer {k}/3, seed 5)" for k in (1, 2, 3)]]
    assert "set: layer 1/3 (keyboard: plays with the layers below it)" in tracks[3]["items"][0]["notes"]
    # Stingers follow the loop, each from a bar line: 2 bars and 2 beats long, so 3 bars apart.
    stingers = tracks[6]["items"]
    assert [(i["position"], i["length"]) for i in stingers] == [
        (pytest.approx(9.0), pytest.approx(6.25)), (pytest.approx(16.5), pytest.approx(6.25))]

    # The set's folder in the media folder is the set as a game engine takes it.
    [folder] = [p for p in (tmp_path / "game").iterdir() if p.is_dir() and p.name.startswith("sketch set")
                and p != earlier_set]
    assert folder.name == "sketch set boss-battle-rock_2"  # numbered like files (output_names)
    assert [p.name for p in earlier_set.iterdir()] == ["notes.txt"]
    manifest = json.loads(next(folder.glob("*-set.json")).read_text())
    sources = [Path(t["items"][0]["takes"][0]["source"]) for t in tracks[2:6]] + [Path(i["takes"][0]["source"]) for i in stingers]
    assert all(source.parent == folder for source in sources)
    assert manifest["intensity_order"] == [s.name for s in sources[1:4]]
    assert manifest["base"]["file"] == sources[0].name and manifest["bpm"] == 96.0
    for entry in [manifest["base"], *manifest["layers"], *manifest["stingers"]]:
        assert (folder / entry["file"]).is_file() and (folder / entry["sidecar"]).is_file()
    assert [layer["parts"] for layer in manifest["layers"]] == [["keyboard"], ["guitar"], ["bass", "drums"]]
    tres = next(folder.glob("*-layers.tres")).read_text()
    assert 'type="AudioStreamSynchronized"' in tres and all(f'path="{s.name}"' in tres for s in sources[1:4])
    assert all(f'path="{s.name}"' in next(folder.glob("*-set.tres")).read_text() for s in sources[4:])
    job = worker.jobs(limit=1)[0]
    assert job.kind == "set" and job.manifest["key"] == manifest["key"]

    # One undo takes the whole set away.
    assert state["project"]["undo"] == ["test setup", "ACE-Step: make intensity set"]
    project.undo()
    assert session.snapshot()["project"]["tracks"] == before["tracks"]


def test_make_intensity_set_of_variants_mutes_the_levels(session, worker, tmp_path):
    prepare(session, tmp_path)
    session.answer_inputs([SET_PROMPT, "2", "6", "3", "0", "5", "", "", "", "", "variants"])
    session.run("intensity_set")
    wait(session)
    state = session.snapshot()
    assert state["message_boxes"] == [] and state["script_errors"] == []
    tracks = state["project"]["tracks"]
    assert [t["name"] for t in tracks] == ["Dialogue", "Music", *VARIANT_TRACKS[:4]]
    # The levels are alternatives: the project plays the base, a level plays when soloed.
    assert [track_value(session, index, "B_MUTE") for index in range(2, 6)] == [0.0, 1.0, 1.0, 1.0]
    assert [t["items"][0]["takes"][0]["name"] for t in tracks[2:6]] == [
        f"{SET_PROMPT} (base, seed 5)", *[f"{SET_PROMPT} (intensity {k}/3, seed 5)" for k in (1, 2, 3)]]
    assert [json.loads(t["items"][0]["ext"]["acestep-dcc"])["intensity"] for t in tracks[3:6]] == [0.0, 0.5, 1.0]
    job = worker.jobs(limit=1)[0]
    assert job.set_options == {"variants": 3, "bars": 2, "stingers": 0} and job.manifest["mode"] == "variants"


def test_make_intensity_set_shows_progress_and_cancels_cleanly(inside, worker, tmp_path):
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    # long loops: still running when cancelled, once the variants have begun (the base cue is written by then)
    inside.answer_inputs([SET_PROMPT, "48", "6", "4", "0", "", "60", "", "", "", "variants"])
    inside.run("intensity_set")
    labels = set()

    def placeholder_label():
        tracks = inside.snapshot()["project"]["tracks"]
        labels.update(take["name"] for track in tracks[2:] for item in track["items"] for take in item["takes"])
        return any("(intensity" in label for label in labels)

    step_until(inside, placeholder_label, timeout=60)
    assert [t["name"] for t in inside.snapshot()["project"]["tracks"]][2:] == [SET_TRACKS[0]]  # the placeholder's track
    inside.run("cancel")
    wait(inside)
    state = inside.snapshot()
    assert state["project"]["tracks"] == before["tracks"] and state["message_boxes"] == []
    assert any(label.startswith("ACE-Step ") and label.endswith("(base cue)") for label in labels)
    job = worker.jobs(limit=1)[0]
    assert job.kind == "set" and worker.wait(job.id, timeout=60).status == "cancelled"
    assert not [p for p in (tmp_path / "game").iterdir() if p.is_dir()]  # no set folder


def test_make_intensity_set_explains_refused_values_and_asks_again(inside, tmp_path):
    prepare(inside, tmp_path, select=False)
    inside.answer_inputs([SET_PROMPT, "many", "6", "9", "-1", "", "", "", "", "", "stacked"])
    inside.answer_inputs(lambda dialog: [SET_PROMPT, "256", "6", "1", "0", "", "30", "", "", "", "layers"])  # 256 bars at 30 BPM
    inside.answer_inputs(None)
    inside.run("intensity_set")
    state = inside.snapshot()
    first, second = [box["message"] for box in state["message_boxes"]]
    assert "Loop bars must be a number of bars" in first
    assert "Intensity levels must be from 1 to 8, got 9" in first and "Stingers must be from 0 to 8, got -1" in first
    assert "Set kind must be layers (stems that stack) or variants (loops to switch between), got 'stacked'" in first
    assert "ask for fewer bars" in second
    assert state["dialogs"][1]["defaults"][1] == "many"  # what the user typed comes back
    assert [t["name"] for t in state["project"]["tracks"]] == ["Dialogue", "Music"]


# -- running from outside REAPER and from the Actions list -------------------------------------------------


def test_from_outside_reaper_an_action_runs_to_the_end(worker, reapy_distant, tmp_path):
    from acestep_reaper.actions import run_action

    prepare(DistantSession(reapy_distant), tmp_path)
    reapy_distant.answer_inputs([PROMPT, "3", "1"])
    run = run_action("generate")  # the default outside REAPER: loop here until placed
    assert run.finished and run.outcome == "placed"
    assert len(reapy_distant.snapshot()["project"]["tracks"][1]["items"]) == 1


def test_installed_actions_run_from_the_actions_list(inside, tmp_path):
    from acestep_core.install.reaper import command_name, install_reaper
    from reaper_standin.config_files import load_actions

    resource = Path(inside.app.resource_path)
    install_reaper(resource)
    load_actions(inside.app)  # what REAPER does when it starts
    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "3", "1"])
    assert inside.run_action("_" + command_name("acestep-dcc/ACE-Step - Generate at edit cursor.py"))
    wait(inside)
    import acestep_reaper

    assert Path(acestep_reaper.__file__).is_relative_to(resource / "Scripts" / "acestep-dcc" / "lib")
    assert len(inside.snapshot()["project"]["tracks"][1]["items"]) == 1


def test_acestep_reaper_imports_with_the_standard_library_and_reapy_only():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "import acestep_reaper.actions, acestep_reaper.loops\n"
        "heavy = {'numpy', 'torch', 'diffusers', 'fastapi', 'uvicorn', 'soundfile', 'pydantic', 'soxr'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "hosts" / "reaper"), str(REPO)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- REAPER's task control: the action run again while it is still running ------------------------------


def test_a_second_generate_while_one_runs_can_be_a_new_instance(inside, tmp_path):
    prepare(inside, tmp_path)
    inside.answer_inputs([PROMPT, "3", "1"])
    inside.run("generate")
    inside.answer_task_control("new")  # REAPER asks: terminate, new instance or abort
    inside.answer_inputs(["calm exploration, ambient", "4", "1"])
    inside.reapy.Project().cursor_position = 12
    inside.run_action(inside.app.register_script(str(SCRIPTS / SCRIPT_NAMES["generate"]), "Custom: generate").command_id)
    wait(inside)
    state = inside.snapshot()
    assert state["message_boxes"] == []
    assert state["dialogs"][1]["defaults"][0] == PROMPT  # the last prompt comes back
    assert [(i["position"], i["length"]) for i in state["project"]["tracks"][1]["items"]] == [(4.0, 3.0), (12.0, 4.0)]


def test_terminating_the_running_script_cleans_up_and_stops_the_job(inside, worker, tmp_path):
    prepare(inside, tmp_path)
    before = inside.snapshot()["project"]
    inside.answer_inputs([PROMPT, "120", "4"])
    inside.run("generate")
    step_until(inside, lambda: any(json.loads(inside.snapshot()["ext_state"].get("acestep-dcc/runs", "{}")).values()))
    inside.answer_task_control("terminate")
    action = inside.app.register_script(str(SCRIPTS / SCRIPT_NAMES["generate"]), "Custom: generate")
    inside.run_action(action.command_id)  # REAPER's task control: terminate the running one (atexit runs)
    assert not inside.busy()
    state = inside.snapshot()
    assert state["project"]["tracks"] == before["tracks"] and state["message_boxes"] == []
    assert "acestep-dcc/runs" not in state["ext_state"]
    job = worker.jobs(limit=1)[0]
    assert worker.wait(job.id, timeout=60).status == "cancelled"


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:8765", True), ("http://localhost:8765", True), ("http://[::1]:8765", True),
    ("http://studio-pc.lan:8765", False), ("http://192.168.1.20:8765", False),
])
def test_only_a_worker_on_this_machine_may_have_its_paths_copied(url, local):
    """A remote worker names paths on its own machine; opening them here could copy any
    local file into the project, so those files are always downloaded instead."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hosts" / "reaper"))
    try:
        from acestep_reaper.media import worker_is_local
    finally:
        sys.path.pop(0)
    from acestep_core.client import WorkerClient

    assert worker_is_local(WorkerClient(url, "token")) is local


def test_prompt_words_the_backend_did_not_play_are_said_in_the_notes(session, worker, tmp_path):
    """The sketch plays no 808: the item notes and the console say so."""
    prepare(session, tmp_path)
    session.answer_inputs(["calm exploration, 808", "4", "1", "7"])
    session.run("generate")
    wait(session)
    state = session.snapshot()
    [item] = state["project"]["tracks"][1]["items"]
    [output] = worker.jobs(limit=1)[0].outputs
    assert output.metadata["not_rendered"] == ["808"]
    note = "the sketch backend does not play these words of the prompt: 808"
    assert f"\nwarning: {note}\n" in item["notes"] and note in state["console"]
