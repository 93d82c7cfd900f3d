"""When things go wrong in real Blender: no worker, a worker that dies or fails a job,
Cancel mid-job, a remote worker. The panel says what happened and what to do, and the
timeline never keeps half a result."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    LayoutStandIn,
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)

from acestep_core.client import find_worker
from acestep_core.install.blender import installing_worker_python
from worker_fixtures import WORKER_PYTHON
from acestep_core.jobs import CANCELLED

PROMPT = "tense boss battle, synthwave, fast drums"


def _settings(scene, **values):
    settings = scene.acestep
    settings.prompt = PROMPT
    settings.use_bpm, settings.bpm = True, 120.0
    settings.duration = 8.0
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


def _tick_until(addon, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert addon.tick() is not None, f"the task ended early: {addon.runtime.message}"
        assert time.monotonic() < deadline, f"timed out at: {addon.runtime.stage}"
        time.sleep(0.02)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.wav")) if folder.exists() else []


def _worker_python_fix() -> str:
    """What the add-on says to set Worker Python to: the Python that built its zip (as
    'acestep-dcc install blender' does, and prints)."""
    python = installing_worker_python()
    assert python is not None, "the test's Python runs the worker, so the zip records it"
    return f"set Worker Python to {python}, the Python 'acestep-dcc install blender' printed"


def test_a_worker_python_that_does_not_exist_is_said_as_such(addon, monkeypatch, tmp_path):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "empty-home"))
    missing = tmp_path / "no-such-env" / "bin" / "python"
    addon.preferences.worker_python = str(missing)
    _settings(bpy.context.scene)
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.acestep.generate()
    runtime = addon.runtime
    assert runtime.worker_state == "DOWN" and not runtime.busy and runtime.message_level == "ERROR"
    sentence = f"Worker Python {missing} does not exist; {_worker_python_fix()}"
    assert runtime.worker_summary == sentence and runtime.message.startswith(sentence)
    assert runtime.worker_fix == ("Change Worker Python in Edit > Preferences > Add-ons > ACE-Step Music, "
                                  "then press Connect")
    assert strips_of(bpy.context.scene) == []
    assert bpy.ops.acestep.generate.poll(), "Generate stays available to try again"


def test_a_worker_python_without_the_worker_packages_names_the_one_to_use(addon, monkeypatch, tmp_path,
                                                                         bare_python):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "home"))
    addon.preferences.worker_python = str(bare_python)
    _settings(bpy.context.scene)
    assert bpy.ops.acestep.generate() == {"FINISHED"}  # the start returns at once; the worker then dies
    tick_until_idle(addon)
    runtime = addon.runtime
    assert runtime.worker_state == "DOWN" and runtime.message_level == "ERROR"
    summary = runtime.worker_summary
    assert summary.startswith(f"Worker Python {bare_python} lacks acestep-dcc's worker packages (it has no ")
    assert summary.endswith(f"); {_worker_python_fix()}")
    assert not any(fragment in runtime.message for fragment in ("|", "Traceback", "Error", "import ")), runtime.message
    assert "Change Worker Python" in runtime.worker_fix
    assert strips_of(bpy.context.scene) == []


def test_generate_starts_the_worker_without_blocking_and_connect_shows_it(addon, monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    addon.preferences.worker_command = f'"{WORKER_PYTHON}" -m acestep_core.worker --backend sketch'
    scene = bpy.context.scene
    _settings(scene, duration=4.0)
    try:
        started = time.perf_counter()
        assert bpy.ops.acestep.generate() == {"FINISHED"}
        assert time.perf_counter() - started < 1.0, "starting the worker must not block Blender"
        assert addon.runtime.worker_state == "STARTING" and addon.runtime.stage == "starting the worker"
        tick_until_idle(addon)
        assert addon.runtime.worker_state == "CONNECTED"
        assert "sketch (procedural, no ML model) on cpu" in addon.runtime.worker_summary
        assert [s.frame_final_duration for s in strips_of(scene)] == [96]

        addon.link.reset()  # as after a Blender restart: Connect finds the running worker
        assert bpy.ops.acestep.connect() == {"FINISHED"}
        assert addon.runtime.worker_state == "CONNECTED" and "sketch" in addon.runtime.worker_summary
    finally:
        running = find_worker()
        if running is not None:
            running.shutdown()


def test_a_worker_that_dies_mid_job_leaves_no_strip(addon, spawn_worker, monkeypatch):
    process = spawn_worker("sketch")
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(process.home))
    _settings(bpy.context.scene, duration=240.0)
    bpy.ops.acestep.generate()
    _tick_until(addon, lambda: addon.runtime.progress > 0.0)
    process.kill()
    tick_until_idle(addon)
    runtime = addon.runtime
    assert not runtime.busy and runtime.worker_state == "DOWN"
    assert "is not answering" in runtime.message and "Nothing was placed" in runtime.message
    assert "find or start the worker again" in runtime.worker_fix
    assert strips_of(bpy.context.scene) == []


def test_a_failed_job_shows_the_workers_reason(addon, spawn_worker, monkeypatch, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "model_index.json").write_text("{}")
    process = spawn_worker("acestep", not_a_model)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(process.home))
    _settings(bpy.context.scene)
    bpy.ops.acestep.generate()
    tick_until_idle(addon)
    runtime = addon.runtime
    assert runtime.message_level == "ERROR" and not runtime.busy
    assert "failed on the worker" in runtime.message and "not ACE-Step 1.5" in runtime.message
    assert "Nothing was placed" in runtime.message
    assert runtime.worker_state == "CONNECTED", "the worker itself is fine"
    assert strips_of(bpy.context.scene) == []


def test_cancel_mid_job_cancels_on_the_worker_and_places_nothing(addon, worker, tmp_path):
    _settings(bpy.context.scene, duration=240.0, candidates=2)
    bpy.ops.acestep.generate()
    _tick_until(addon, lambda: addon.runtime.progress > 0.0)
    assert addon.runtime.stage.startswith(("generating", "finishing")), addon.runtime.stage
    job_id = addon.tracker.task.jobs[0].job_id
    assert bpy.ops.acestep.cancel() == {"FINISHED"}
    runtime = addon.runtime
    assert not runtime.busy and "cancelled, nothing was placed" in runtime.message
    assert addon.tick() is None, "the tick stops with nothing to follow"
    assert worker.wait(job_id, timeout=60).status == CANCELLED
    assert strips_of(bpy.context.scene) == []
    assert _audio_files(tmp_path / "tmp") == []
    assert bpy.ops.acestep.generate.poll()


def test_cancel_mid_score_cancels_every_section(addon, worker):
    scene = bpy.context.scene
    # A short first section, then two long ones that cannot finish before Cancel.
    for name, frame in (("calm", 1), ("boss", 97), ("victory", 97 + 24 * 120)):
        scene.timeline_markers.new(name, frame=frame)
    scene.frame_end = 96 + 2 * 24 * 120
    _settings(scene)
    bpy.ops.acestep.score_cutscene()
    task = addon.tracker.task
    _tick_until(addon, lambda: task.jobs[0].finished)  # one section done, the others queued or running
    job_ids = [job.job_id for job in task.jobs]
    bpy.ops.acestep.cancel()
    finals = [worker.wait(job_id, timeout=60).status for job_id in job_ids]
    assert finals[0] == "done" and finals[1:] == [CANCELLED, CANCELLED]
    assert strips_of(scene) == [] and not addon.runtime.busy


def test_a_worker_on_another_machine_by_url_and_token(addon, worker, monkeypatch, tmp_path):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "no-discovery-here"))
    prefs = addon.preferences
    prefs.connection, prefs.remote_url, prefs.remote_token = "REMOTE", worker.url, "wrong token"
    _settings(bpy.context.scene, duration=4.0)
    with pytest.raises(RuntimeError, match="refused our token"):
        bpy.ops.acestep.generate()
    assert addon.runtime.worker_state == "DOWN" and "URL and token" in addon.runtime.worker_fix

    prefs.remote_token = worker.token
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    cue = strips_of(bpy.context.scene)[0]
    local = Path(bpy.path.abspath(cue.sound.filepath))
    assert local.is_file() and cue.frame_final_duration == 96
    # Downloaded over HTTP, not copied from the worker's disk: no sidecar comes with it.
    assert not local.with_suffix(".json").exists()


# -- draw and poll never raise ------------------------------------------------------------


def test_panels_draw_in_every_state_without_raising(addon, worker):
    scene = bpy.context.scene
    _settings(scene, duration=4.0, candidates=2, duration_source="MARKERS")
    scene.acestep.section_prompts.add().marker = "intro"
    labels = draw_panels(addon)
    assert "Worker not checked" in labels and not any(l.startswith("Panel error") for l in labels)

    scene.acestep.duration_source = "SECONDS"
    bpy.ops.acestep.generate()
    busy_labels = draw_panels(addon)
    assert any(l.startswith("0%") for l in busy_labels) and addon.runtime.task_label in busy_labels
    tick_until_idle(addon)
    editor = scene.sequence_editor
    editor.active_strip = strips_of(scene)[0]
    done_labels = draw_panels(addon)
    assert any(l.startswith("Seed ") for l in done_labels), "the Generated Strip panel shows its origin"

    addon.tracker.say("x " * 200, "ERROR")  # a long message wraps instead of running off the panel
    addon.module.job_tracking.sync_ui()
    assert all(len(l) <= 48 for l in draw_panels(addon) if l.startswith("x"))


def test_a_broken_panel_shows_a_line_instead_of_raising(addon):
    broken = SimpleNamespace(layout=LayoutStandIn())
    bpy.context.window_manager.acestep.worker_state = "CONNECTED"
    original = addon.module.panel.draw_worker_status
    addon.module.panel.draw_worker_status = lambda layout, runtime: 1 / 0
    try:
        addon.module.panel.ACESTEP_PT_main.draw(broken, bpy.context)
    finally:
        addon.module.panel.draw_worker_status = original
    assert broken.layout.labels == ["Panel error: ZeroDivisionError: division by zero"]
    assert addon.module.panel.ACESTEP_PT_generated_strip.poll(SimpleNamespace()) is False
    assert addon.module.operators.ACESTEP_OT_generate.poll(SimpleNamespace()) is False
