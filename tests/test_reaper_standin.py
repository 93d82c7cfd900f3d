"""The REAPER stand-in behaves as REAPER's documentation says, seen through the same
doors the actions use: Python ReaScript's RPR_* conventions, and python-reapy both in
its distant mode (over TCP to reapy's real server loop in the stand-in process) and
in its inside mode (in this process)."""

from __future__ import annotations

import ctypes
import json
import urllib.request
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from reaper_standin import StandInFault
from reaper_standin.model import TempoMap, TempoMarker


def write_wav(path: Path, seconds: float, rate: int = 44100, channels: int = 2) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\0\0" * channels * int(round(seconds * rate)))
    return path


# -- Python ReaScript conventions (reaper_python itself) ---------------------------------------


def test_a_function_without_outputs_returns_its_bare_value(reaper_standin):
    rpr = reaper_standin.rpr
    assert rpr.RPR_CountTracks(0) == 0
    assert isinstance(rpr.RPR_GetCursorPositionEx(0), float)
    assert rpr.RPR_GetAppVersion().startswith("7.")
    assert rpr.RPR_InsertTrackAtIndex(0, True) is None  # void, no outputs


def test_a_function_with_outputs_returns_every_argument_with_outputs_filled(reaper_standin):
    rpr = reaper_standin.rpr
    # void: the tuple is the arguments; double* outputs are filled (and read on set)
    assert rpr.RPR_GetSet_LoopTimeRange2(0, True, False, 2.0, 6.5, False) == (0, True, False, 2.0, 6.5, False)
    assert rpr.RPR_GetSet_LoopTimeRange2(0, False, False, 0, 0, False) == (0, False, False, 2.0, 6.5, False)
    # with a return value: (retval, *args)
    rpr.RPR_AddProjectMarker2(0, True, 1.0, 3.0, "intro", -1, 0)
    rpr.RPR_AddProjectMarker2(0, False, 2.0, 0.0, "hit", -1, 0)
    assert rpr.RPR_CountProjectMarkers(0, 0, 0) == (2, 0, 1, 1)
    rpr.RPR_InsertTrackAtIndex(0, False)
    track = rpr.RPR_GetTrack(0, 0)
    assert rpr.RPR_GetTrackName(track, "", 64) == (1, track, "Track 1", 64)  # bools come back as 1/0


def test_pointers_are_typed_strings_and_anything_else_packs_to_null(reaper_standin):
    rpr = reaper_standin.rpr
    rpr.RPR_InsertTrackAtIndex(0, False)
    track = rpr.RPR_GetTrack(0, 0)
    assert track.startswith("(MediaTrack*)0x") and len(track) == len("(MediaTrack*)0x") + 16
    assert rpr.RPR_GetTrack(0, 5) == "(MediaTrack*)0x0000000000000000"
    item = rpr.RPR_AddMediaItemToTrack(track)
    assert item.startswith("(MediaItem*)0x")
    # a MediaItem* where a MediaTrack* is expected is NULL to REAPER
    assert rpr.RPR_GetTrackName(item, "", 64)[0] == 0
    # REAPER's wrapper validates pointers, so a deleted track becomes NULL, not a crash
    rpr.RPR_DeleteTrack(track)
    assert rpr.RPR_ValidatePtr2(0, track, "MediaTrack*") == 0
    assert rpr.RPR_GetTrackName(track, "", 64)[0] == 0
    assert reaper_standin.app.faults == []


def test_string_buffers_are_cut_to_their_size(reaper_standin):
    rpr = reaper_standin.rpr
    rpr.RPR_InsertTrackAtIndex(0, False)
    track = rpr.RPR_GetTrack(0, 0)
    rpr.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "Orchestra", True)
    assert rpr.RPR_GetTrackName(track, "", 4)[2] == "Orc"
    # size 0: REAPER writes nothing, so the buffer keeps what the caller passed in
    assert rpr.RPR_EnumProjects(-1, None, 0) == (rpr.RPR_EnumProjects(-1, "", 0)[0], -1, "None", 0)


def test_marker_names_do_not_come_back_through_python_but_do_through_the_function_table(reaper_standin):
    rpr = reaper_standin.rpr
    rpr.RPR_AddProjectMarker2(0, True, 4.0, 8.0, "boss battle", -1, 0)
    # const char** outputs are packed as pointers by REAPER's Python wrapper: the name
    # argument comes back as it went in
    assert rpr.RPR_EnumProjectMarkers3(0, 0, 0, 0, 0, "", 0, 0) == (1, 0, 0, 1, 4.0, 8.0, "", 1, 0)
    enum = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_int, *[ctypes.c_void_p] * 6)(rpr._ft["EnumProjectMarkers3"])
    name = ctypes.c_char_p()
    assert enum(0, 0, None, None, None, ctypes.addressof(name), None, None) == 1
    assert name.value == b"boss battle"


def test_arguments_are_converted_by_ctypes_as_in_reaper(reaper_standin):
    rpr = reaper_standin.rpr
    with pytest.raises(TypeError):
        rpr.RPR_GetTrack(0, 1.5)  # c_int(1.5)
    with pytest.raises(TypeError):
        rpr.RPR_CountTracks()  # wrong argument count
    # a NULL const char* return is REAPER's Python bug reapy works around
    with pytest.raises(AttributeError):
        rpr.RPR_Undo_CanUndo2(0)


def test_get_user_inputs_shows_defaults_and_returns_the_answer(reaper_standin):
    rpr, user = reaper_standin.rpr, reaper_standin.user
    user.answer_inputs(["tense boss battle", "45"])
    result = rpr.RPR_GetUserInputs("ACE-Step", 3, "Prompt,Seconds,Seed,extrawidth=200", "calm,30,", 1024)
    assert result == (1, "ACE-Step", 3, "Prompt,Seconds,Seed,extrawidth=200", "tense boss battle,45,", 1024)
    dialog = user.dialogs[-1]
    assert (dialog.captions, dialog.defaults) == (["Prompt", "Seconds", "Seed"], ["calm", "30", ""])
    user.answer_inputs(["a|b", "1"])
    assert rpr.RPR_GetUserInputs("t", 2, "x,y,separator=|", "", 64)[4] == "a|b|1"
    user.answer_inputs(None)  # Cancel
    assert rpr.RPR_GetUserInputs("t", 1, "x", "kept", 64)[0:5:4] == (0, "kept")


def test_message_boxes_are_recorded_and_answered(reaper_standin):
    rpr, user = reaper_standin.rpr, reaper_standin.user
    assert rpr.RPR_ShowMessageBox("Start the worker", "ACE-Step", 0) == 1
    user.answer_message_box(7)
    assert rpr.RPR_ShowMessageBox("Replace?", "ACE-Step", 4) == 7
    assert [(m.message, m.answer) for m in user.message_boxes] == [("Start the worker", 1), ("Replace?", 7)]


def test_a_dialog_nobody_answers_is_a_fault(reaper_standin):
    with pytest.raises(StandInFault, match="queued no answer"):
        reaper_standin.rpr.RPR_GetUserInputs("t", 1, "x", "", 64)
    reaper_standin.app.faults.clear()


# -- through python-reapy, distant and inside ----------------------------------------------------


@pytest.fixture(params=["distant", "inside"])
def reaper(request):
    """The same REAPER seen through reapy's distant API or from inside."""
    return request.getfixturevalue("reapy_distant" if request.param == "distant" else "reaper_inside")


def test_tracks(reaper):
    reapy = reaper.reapy
    project = reapy.Project()
    project.add_track(name="Drums")
    project.add_track(index=0, name="Score")
    unnamed = project.add_track(index=2)
    assert [t.name for t in project.tracks] == ["Score", "Drums", "Track 3"]
    assert unnamed.index == 2
    project.tracks[1].select()
    project.master_track.select()
    assert [t.name for t in project.selected_tracks] == ["Drums"]  # the master is not counted
    assert reapy.reascript_api.CountSelectedTracks2(project.id, True) == 2
    assert reaper.snapshot()["project"]["tracks"][1] == {"name": "Drums", "selected": True, "items": []}


def test_edit_cursor_and_time_selection(reaper):
    project = reaper.reapy.Project()
    project.cursor_position = 12.5
    assert project.cursor_position == 12.5
    project.time_selection = 4, 10
    selection = project.time_selection
    assert (selection.start, selection.end, selection.length) == (4, 10, 6)
    del project.time_selection
    assert project.time_selection.length == 0
    project.cursor_position = -3
    assert project.cursor_position == 0.0


def test_regions_and_markers(reaper):
    reapy = reaper.reapy
    project = reapy.Project()
    project.add_region(20.0, 35.0, name="chase")
    project.add_region(0.0, 12.0, name="calm intro")
    project.add_marker(15.0, name="door slam")
    assert (project.n_regions, project.n_markers) == (2, 1)
    rpr = reapy.reascript_api
    listed = [rpr.EnumProjectMarkers3(project.id, i, 0, 0, 0, "", 0, 0) for i in range(3)]
    assert [(r[0], r[3], r[4], r[5], r[7]) for r in listed] == [(1, 1, 0.0, 12.0, 2), (2, 0, 15.0, 0.0, 1), (3, 1, 20.0, 35.0, 1)]
    assert rpr.EnumProjectMarkers3(project.id, 3, 0, 0, 0, "", 0, 0)[0] == 0
    assert [m["name"] for m in reaper.snapshot()["project"]["markers"]] == ["calm intro", "door slam", "chase"]
    # SetProjectMarker leaves an empty name alone; SetProjectMarker4 with flags&1 clears it
    assert rpr.SetProjectMarker2(project.id, 1, True, 20.0, 36.0, "")
    assert reaper.snapshot()["project"]["markers"][2]["name"] == "chase"
    assert rpr.SetProjectMarker4(project.id, 1, True, 20.0, 36.0, "", 0, 1)
    assert reaper.snapshot()["project"]["markers"][2] == {"is_region": True, "position": 20.0, "end": 36.0, "name": "", "number": 1, "color": 0}
    assert rpr.DeleteProjectMarker(project.id, 1, False)
    assert project.n_markers == 0


def test_tempo_and_time_signature(reaper):
    reapy = reaper.reapy
    rpr = reapy.reascript_api
    project = reapy.Project()
    assert project.bpm == 120.0 and project.time_signature == (120.0, 4.0)
    project.bpm = 96
    assert rpr.Master_GetTempo() == 96.0
    # a 6/8 section at 90 quarter notes per minute from 20 s
    assert rpr.AddTempoTimeSigMarker(project.id, 20.0, 90.0, 6, 8, False)
    # distant calls come back as JSON lists, inside calls as tuples
    assert tuple(rpr.TimeMap_GetTimeSigAtTime(project.id, 25.0, 0, 0, 0)) == (project.id, 25.0, 6, 8, 90.0)
    assert tuple(rpr.TimeMap_GetTimeSigAtTime(project.id, 5.0, 0, 0, 0)[2:]) == (4, 4, 96.0)
    assert rpr.TimeMap2_GetDividedBpmAtTime(project.id, 25.0) == 180.0  # 2x in /8
    assert project.time_signature == (96.0, 4.0)  # project settings, not the tempo map
    # 20 s at 96 bpm = 32 quarter notes = 8 bars of 4/4; the 6/8 bar starts there
    beats, _, _, measures, cml, full, denom = rpr.TimeMap2_timeToBeats(project.id, 20.0, 0, 0, 0, 0)
    assert (beats, measures, cml, denom) == (0.0, 8, 6, 8)
    assert rpr.TimeMap2_beatsToTime(project.id, 0.0, 8)[0] == pytest.approx(20.0)
    assert project.beats_to_time(32.0) == pytest.approx(20.0)
    assert project.time_to_beats(20.0 + 60 / 90) == pytest.approx(33.0)
    assert rpr.CountTempoTimeSigMarkers(project.id) == 1
    assert tuple(rpr.GetTempoTimeSigMarker(project.id, 0, 0, 0, 0, 0, 0, 0, 0)[3:]) == (20.0, 8, 0.0, 90.0, 6, 8, 0)


def test_items_takes_sources_and_notes(reaper, tmp_path):
    reapy = reaper.reapy
    rpr = reapy.reascript_api
    wav = write_wav(tmp_path / "cue.wav", 1.5, rate=48000)
    project = reapy.Project()
    track = project.add_track(name="ACE-Step")
    item = track.add_item(start=8.0, length=1.5)
    assert (item.position, item.length, item.n_takes) == (8.0, 1.5, 0)
    first = item.add_take()
    second = item.add_take()
    assert item.n_takes == 2
    rpr.SetActiveTake(first.id)
    assert item.active_take == first
    source = rpr.PCM_Source_CreateFromFile(str(wav))
    assert rpr.SetMediaItemTake_Source(first.id, source)
    assert rpr.PCM_Source_CreateFromFile(str(tmp_path / "missing.wav")) == "(PCM_source*)0x0000000000000000"
    assert first.source.filename == str(wav)
    assert first.source.length() == pytest.approx(1.5)
    assert (first.source.n_channels, first.source.sample_rate, first.source.type) == (2, 48000, "WAVE")
    assert not first.is_midi and second.source.id.endswith("0x0000000000000000")
    rpr.GetSetMediaItemTakeInfo_String(first.id, "P_NAME", "calm - seed 7", True)
    assert first.name == "calm - seed 7"
    rpr.GetSetMediaItemInfo_String(item.id, "P_NOTES", "prompt: calm\nseed: 7", True)
    assert rpr.GetSetMediaItemInfo_String(item.id, "P_NOTES", "", False)[3] == "prompt: calm\nseed: 7"
    state = reaper.snapshot()["project"]["tracks"][0]["items"][0]
    assert state["notes"] == "prompt: calm\nseed: 7" and state["active_take"] == 0
    assert [(t["name"], t["source"]) for t in state["takes"]] == [("calm - seed 7", str(wav)), ("", None)]
    assert item.has_valid_id
    # reapy's ValidatePtr2 calls the C function table directly, with the raw address
    pointer, kind = item._get_pointer_and_name()
    item.delete()
    assert rpr.ValidatePtr2(project.id, pointer, kind) == 0


def test_an_undo_block_is_one_step(reaper):
    reapy = reaper.reapy
    project = reapy.Project()
    track = project.add_track(name="Music")
    reapy.reascript_api.Undo_OnStateChange2(project.id, "Add track")
    project.begin_undo_block()
    item = track.add_item(start=2.0, length=4.0)
    item.add_take()
    reapy.reascript_api.GetSetMediaItemInfo_String(item.id, "P_NOTES", "seed 1", True)
    project.end_undo_block("ACE-Step: generate")
    assert reaper.snapshot()["project"]["undo"] == ["Add track", "ACE-Step: generate"]
    assert reapy.reascript_api.Undo_CanUndo2(project.id) == "ACE-Step: generate"
    project.undo()
    assert reaper.snapshot()["project"]["tracks"][0]["items"] == []
    project.redo()
    restored = reaper.snapshot()["project"]["tracks"][0]["items"]
    assert [(i["position"], i["length"], i["notes"], len(i["takes"])) for i in restored] == [(2.0, 4.0, "seed 1", 1)]
    # undo restores the state recorded last: a change made with no undo point goes too
    project.add_track(name="Unrecorded")
    project.undo()
    assert [t["name"] for t in reaper.snapshot()["project"]["tracks"]] == ["Music"]


def test_ext_state(reaper):
    reapy = reaper.reapy
    reapy.set_ext_state("acestep-dcc", "job", "abc123")
    assert reapy.get_ext_state("acestep-dcc", "job") == "abc123"
    assert reapy.has_ext_state("ACESTEP-DCC", "Job")  # sections and keys ignore case
    reapy.delete_ext_state("acestep-dcc", "job")
    assert not reapy.has_ext_state("acestep-dcc", "job")
    assert reapy.get_ext_state("acestep-dcc", "job") == ""
    reapy.set_ext_state("acestep-dcc", "last_prompt", "calm", persist=True)
    ini = Path(reapy.get_resource_path()) / "reaper-extstate.ini"
    assert "last_prompt=calm" in ini.read_text()


def test_project_name_and_media_path_follow_the_rpp(reaper, tmp_path):
    reapy = reaper.reapy
    rpr = reapy.reascript_api
    project = reapy.Project()
    assert project.name == ""
    assert rpr.EnumProjects(-1, "", 4096)[2] == ""
    unsaved_media = project.path  # GetProjectPathEx: the default recording path
    assert unsaved_media and Path(unsaved_media).name == "REAPER Media"
    reaper.open_saved_project(tmp_path / "game" / "level1.rpp", record_path="Media")
    project = reapy.Project()
    assert project.name == "level1.rpp"
    assert rpr.EnumProjects(-1, "", 4096)[2] == str(tmp_path / "game" / "level1.rpp")
    assert project.path == str(tmp_path / "game" / "Media")
    assert rpr.GetProjectPath("", 4096)[0] == str(tmp_path / "game" / "Media")


def test_the_switch_take_action_cycles_the_active_take(reaper):
    reapy = reaper.reapy
    project = reapy.Project()
    item = project.add_track().add_item(start=0, length=2)
    takes = [item.add_take() for _ in range(3)]
    reapy.reascript_api.SetActiveTake(takes[0].id)
    reapy.reascript_api.SetMediaItemSelected(item.id, True)
    project.perform_action(40125)  # Take: Switch items to next take (T)
    assert item.active_take == takes[1]
    project.perform_action(40126)
    project.perform_action(40126)
    assert item.active_take == takes[2]


def test_resource_path_and_version(reaper):
    reapy = reaper.reapy
    assert Path(reapy.get_resource_path()).name == "REAPER"
    assert reapy.get_reaper_version() == reapy.reascript_api.GetAppVersion()


def test_user_dialogs_through_reapy(reaper):
    reapy = reaper.reapy
    reaper.answer_inputs(["tense", "20"])
    assert reapy.get_user_inputs("ACE-Step", ["Prompt", "Seconds"]) == {"Prompt": "tense", "Seconds": "20"}
    reaper.answer_inputs(None)
    with pytest.raises(Exception, match="Cancel"):
        reapy.get_user_inputs("ACE-Step", ["Prompt"])
    assert reapy.show_message_box("Worker not running", "ACE-Step") == "ok"
    boxes = reaper.snapshot()["message_boxes"]
    assert boxes == [{"message": "Worker not running", "title": "ACE-Step", "type": 0, "answer": 1}]


# -- scripts, defer and atexit (inside REAPER's Python) -------------------------------------------


def test_deferred_code_runs_once_per_cycle_and_atexit_runs_when_the_script_ends(reaper_inside, tmp_path):
    log = tmp_path / "log.txt"
    script = tmp_path / "counter.py"
    script.write_text(
        "import reapy\n"
        f"LOG = {str(log)!r}\n"
        "def tick(n):\n"
        "    open(LOG, 'a').write(f'tick {n}\\n')\n"
        "    if n < 3:\n"
        "        reapy.defer(tick, n + 1)\n"
        "reapy.at_exit(lambda: open(LOG, 'a').write('exit\\n'))\n"
        "tick(1)\n"
    )
    reaper_inside.run_script(script)
    assert log.read_text() == "tick 1\n"
    reaper_inside.pump()
    assert log.read_text() == "tick 1\ntick 2\n"
    assert reaper_inside.run_until_idle() == 1
    assert log.read_text() == "tick 1\ntick 2\ntick 3\nexit\n"
    assert reaper_inside.snapshot()["running_scripts"] == []


def test_a_script_that_changes_the_project_without_an_undo_block_gets_an_undo_point(reaper_inside, tmp_path):
    plain = tmp_path / "Add track.py"
    plain.write_text("RPR_InsertTrackAtIndex(0, True)\n")
    deferred = tmp_path / "Deferred.py"
    deferred.write_text("RPR_InsertTrackAtIndex(0, True)\nRPR_defer('pass')\n")
    reaper_inside.run_script(plain)
    reaper_inside.run_script(deferred)
    reaper_inside.run_until_idle()
    assert reaper_inside.snapshot()["project"]["undo"] == ["Add track.py"]


def test_an_exception_ends_the_script_in_the_console(reaper_inside, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("RPR_defer('1/0')\n")
    reaper_inside.run_script(script)
    reaper_inside.pump()
    state = reaper_inside.snapshot()
    assert "ZeroDivisionError" in state["console"] and state["running_scripts"] == []
    assert state["script_errors"][0]["path"] == str(script)


def test_rerunning_a_running_script_asks_unless_action_options_say(reaper_inside, tmp_path):
    script = tmp_path / "Loop.py"
    script.write_text("def loop():\n    RPR_defer('loop()')\nloop()\n")
    action = reaper_inside.app.register_script(str(script), "Custom: Loop.py")
    reaper_inside.run_action(action.command_id)
    with pytest.raises(StandInFault, match="still running"):
        reaper_inside.run_action(action.command_id)
    reaper_inside.app.faults.clear()
    reaper_inside.answer_task_control("terminate")
    reaper_inside.run_action(action.command_id)
    assert reaper_inside.snapshot()["running_scripts"] == []
    script.write_text("RPR_set_action_options(1)\ndef loop():\n    RPR_defer('loop()')\nloop()\n")
    reaper_inside.run_action(action.command_id)
    reaper_inside.run_action(action.command_id)  # the second run ends the first
    assert reaper_inside.snapshot()["running_scripts"] == []


# -- the REAPER process: resource folder and web interface ---------------------------------------


def test_the_process_booted_from_the_files_reapy_configured(reapy_distant):
    process = reapy_distant.process
    kb = (process.resource_path / "reaper-kb.ini").read_text()
    assert kb.startswith("SCR 4 0 RS") and "activate_reapy_server.py" in kb
    rpr = reapy_distant.reapy.reascript_api
    named = json.loads(reapy_distant.reapy.get_ext_state("reapy", "activate_reapy_server"))
    assert rpr.NamedCommandLookup(named) >= 60000
    assert rpr.ReverseNamedCommandLookup(rpr.NamedCommandLookup(named)) == named[1:]
    assert reapy_distant.reapy.get_ext_state("reapy", "server_port") == str(process.server_port)


def test_the_web_interface_answers_as_reaper_does(reapy_distant):
    port = reapy_distant.process.web_port
    reapy_distant.reapy.set_ext_state("acestep-dcc", "job", "a\tb")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_/GET/EXTSTATE/acestep-dcc/job;NTRACK", timeout=5) as reply:
        assert reply.read().decode() == "EXTSTATE\tacestep-dcc\tjob\ta\\tb\nNTRACK\t0\n"


# -- tempo map arithmetic -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    bpm=st.floats(40, 240),
    changes=st.lists(st.tuples(st.floats(0.5, 300), st.floats(40, 240), st.sampled_from([(0, 0), (3, 4), (6, 8), (4, 4)])), max_size=4),
    time=st.floats(0, 600),
)
def test_time_and_quarter_notes_convert_both_ways(bpm, changes, time):
    tempo = TempoMap(bpm)
    tempo.markers = [TempoMarker(t, b, n, d) for t, b, (n, d) in changes]
    tempo.sort()
    assert tempo.qn_to_time(tempo.time_to_qn(time)) == pytest.approx(time, abs=1e-6)
