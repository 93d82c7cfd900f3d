"""The Library panel in real Blender against a real sketch worker: Search asks the
worker's cue library without waiting (the tick brings the answer in), results show
bpm, key, length and licence, and Place at Playhead adds the cue at the current frame
on a free channel, recorded like a generated strip, in one undo step. A missing file is
said, never placed. The Generated Strip panel shows every cue's licence."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    LayoutStandIn,
    add_blocker,
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)

from acestep_core.request import GenerationRequest


@pytest.fixture(scope="module")
def library_cues(worker) -> dict[str, object]:
    """A boss loop (150 BPM, E minor, 4 bars) and a calm cue (80 BPM), made by the worker."""
    made = {}
    for name, request in (
            ("boss", GenerationRequest(prompt="tense boss battle, synthwave", duration=4, bpm=150, key="E minor",
                                       loop=True, loop_bars=4, seed=31)),
            ("calm", GenerationRequest(prompt="calm exploration, ambient, piano", duration=3, bpm=80,
                                       key="D major", seed=32))):
        job = worker.wait(worker.submit(request).id, timeout=60)
        assert job.status == "done", job.error
        made[name] = job.outputs[0]
    return made


def search(addon, **fields) -> object:
    """Fill the panel's fields, press Search (it must return at once), tick until answered."""
    library = bpy.context.window_manager.acestep_library
    for name, value in fields.items():
        setattr(library, name, value)
    started = time.perf_counter()
    assert bpy.ops.acestep.library_search() == {"FINISHED"}, library.message
    assert time.perf_counter() - started < 1.0, "Search must not wait for the worker"
    deadline = time.monotonic() + 30
    while addon.module.library_panel.tick() is not None:
        assert time.monotonic() < deadline, "the search did not finish"
        time.sleep(0.02)
    assert not library.searching
    return library


def draw_library(addon) -> list[str]:
    labels: list[str] = []
    panel = addon.module.library_panel.ACESTEP_PT_library
    assert panel.poll(bpy.context)
    panel.draw(SimpleNamespace(layout=LayoutStandIn(labels)), bpy.context)
    return labels


def test_search_shows_bpm_key_length_and_licence(addon, library_cues):
    library = search(addon, text="boss", use_bpm=True, bpm_min=140, bpm_max=160, key="E minor", loop="LOOPS")
    assert library.message == "1 cue found" and len(library.results) == 1
    [found] = library.results
    boss = library_cues["boss"]
    assert found.path == boss.path and (found.bpm, found.key, found.loop) == (150.0, "E minor", True)
    assert found.duration == pytest.approx(boss.duration)
    assert found.licence == boss.metadata["licence"]["summary"] and found.licence.startswith("Apache-2.0")
    shown = draw_library(addon)
    assert f"150 BPM, E minor, {boss.duration:.1f} s, loop" in shown
    assert f"Licence: {found.licence}"[:40] in " ".join(shown)
    assert "[acestep.library_place]" in shown and "[acestep.library_search]" in shown
    # other fields narrow it the other way
    assert [r.path for r in search(addon, text="", use_bpm=False, key="D major", loop="NOT_LOOPS").results] == [
        library_cues["calm"].path]
    assert len(search(addon, text="boss", key="NONE", loop="NOT_LOOPS").results) == 0
    assert "0 cues found" in library.message and "acestep-dcc library add" in library.message


def test_place_at_playhead_adds_the_cue_on_a_free_channel_in_one_undo_step(addon, library_cues, tmp_path):
    scene = bpy.context.scene
    add_blocker(scene, "titles", channel=1, start=40, end=400)
    scene.frame_current = 50
    bpy.ops.ed.undo_push(message="before the library")
    search(addon, text="boss", use_bpm=False, key="NONE", loop="ANY")
    assert bpy.ops.acestep.library_place("EXEC_DEFAULT", True) == {"FINISHED"}
    [strip] = [s for s in strips_of(scene) if s.type == "SOUND"]
    boss = library_cues["boss"]
    loop = boss.metadata["loop"]
    rate = boss.metadata["format"]["sample_rate"]
    assert (strip.channel, strip.frame_final_start) == (2, 50), "at the playhead, above the titles"
    # a loop is placed one loop long, as a generated loop is (the guard frame is not heard)
    assert strip.frame_final_duration == round(loop["loop_end_exclusive"] / rate * 24)
    path = Path(bpy.path.abspath(strip.sound.filepath))
    assert path.parent == tmp_path / "tmp" / "acestep_audio", "copied beside the project's other audio"
    assert path.read_bytes() == Path(boss.path).read_bytes() and path.with_name(path.name + ".json").is_file()
    # recorded like a generated strip: the Generated Strip panel shows tempo, key and licence
    assert strip["acestep_prompt"] == "tense boss battle, synthwave" and strip["acestep_seed"] == "31"
    assert (strip["acestep_bpm"], strip["acestep_key"]) == (150.0, "E minor")
    assert strip["acestep_licence"] == boss.metadata["licence"]["summary"]
    assert json.loads(strip["acestep_request"])["prompt"] == "tense boss battle, synthwave"
    scene.sequence_editor.active_strip = strip
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    assert "Licence: Apache-2.0" in shown and "150 BPM" in shown
    assert "at frame 50" in bpy.context.window_manager.acestep_library.message
    # placed twice: a second file name, never overwriting the first
    assert bpy.ops.acestep.library_place("EXEC_DEFAULT", True) == {"FINISHED"}
    second = [s for s in strips_of(scene) if s.type == "SOUND" and s != strip][0]
    assert second.channel == 3 and Path(bpy.path.abspath(second.sound.filepath)).name.endswith("_2.wav")
    bpy.ops.ed.undo()
    bpy.ops.ed.undo()
    assert [s.type for s in strips_of(bpy.context.scene)] == ["COLOR"], "each placement is one undo step"


def test_a_missing_file_is_said_and_not_placed(addon, worker):
    job = worker.wait(worker.submit(GenerationRequest(prompt="victory fanfare, orchestral", duration=2,
                                                      seed=33)).id, timeout=60)
    Path(job.outputs[0].path).unlink()
    library = search(addon, text="fanfare", use_bpm=False, key="NONE", loop="ANY")
    [found] = library.results
    assert found.missing
    shown = draw_library(addon)
    assert "Its file is missing (moved or deleted)" in shown and any(", missing" in line for line in shown)
    with pytest.raises(RuntimeError, match="is not there any more \\(moved or deleted\\); index the folder"):
        bpy.ops.acestep.library_place()
    assert not [s for s in strips_of(bpy.context.scene) if s.type == "SOUND"]


def test_a_generated_strip_shows_its_licence(addon, worker):
    scene = bpy.context.scene
    scene.acestep.prompt, scene.acestep.duration = "calm exploration, ambient", 3.0
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    [strip] = [s for s in strips_of(scene) if s.type == "SOUND"]
    licence = worker.status(strip["acestep_job"]).outputs[0].metadata["licence"]["summary"]
    assert strip["acestep_licence"] == licence
    scene.sequence_editor.active_strip = strip
    shown = " ".join(draw_panels(addon, only="ACESTEP_PT_generated_strip"))
    assert "Licence: Apache-2.0 (acestep-dcc's own licence;" in shown


def test_a_worker_on_another_computer_sends_the_cue_before_it_is_placed(addon, worker, library_cues, tmp_path):
    """Connection 'Another Computer': the worker's paths mean nothing here, so the cue is
    downloaded (GET /v1/library/{id}/file and /sidecar) on a thread, then placed by the tick
    at the frame Place was pressed at."""
    prefs = addon.preferences
    prefs.connection, prefs.remote_url, prefs.remote_token = "REMOTE", worker.url, worker.token
    scene = bpy.context.scene
    scene.frame_current = 30
    assert len(search(addon, text="calm piano", use_bpm=False, key="NONE", loop="ANY").results) == 1
    assert bpy.ops.acestep.library_place("EXEC_DEFAULT", True) == {"CANCELLED"}  # no undo step until it lands
    library = bpy.context.window_manager.acestep_library
    assert library.message.startswith("Downloading ") and "frame 30" in library.message
    scene.frame_current = 200  # the user moves on; the cue still lands where it was asked for
    deadline = time.monotonic() + 30
    while addon.module.library_panel.tick() is not None:
        assert time.monotonic() < deadline, "the download did not finish"
        time.sleep(0.02)
    [strip] = [s for s in strips_of(scene) if s.type == "SOUND"]
    calm = library_cues["calm"]
    assert (strip.frame_final_start, strip.channel) == (30, 1), library.message
    assert strip.frame_final_duration == round(calm.duration * 24)
    path = Path(bpy.path.abspath(strip.sound.filepath))
    assert path.parent == tmp_path / "tmp" / "acestep_audio" and path.read_bytes() == Path(calm.path).read_bytes()
    assert json.loads(path.with_name(path.name + ".json").read_text())["seed"] == 32
    assert strip["acestep_licence"] == calm.metadata["licence"]["summary"]


def test_search_without_a_worker_says_why_and_what_to_do(addon):
    prefs = addon.preferences
    prefs.connection, prefs.remote_url, prefs.remote_token = "REMOTE", "http://127.0.0.1:9", "no-token"
    with pytest.raises(RuntimeError, match="is not answering"):
        bpy.ops.acestep.library_search()
    library = bpy.context.window_manager.acestep_library
    assert library.message_level == "ERROR" and not library.searching
    assert "Check the URL and token in the add-on preferences" in library.message
    assert "is not answering" in " ".join(draw_library(addon))
