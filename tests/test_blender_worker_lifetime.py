"""A worker Blender starts does not outlive it for long: real bpy starts a real worker
process with --preload and the idle times from the add-on preferences; Stop Worker ends
the process (cancelling what runs), an idle worker exits by itself, and the next
Generate starts a new one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from blender_fixtures import (  # noqa: F401  (fixtures)
    addon,
    blender_addon,
    bpy,
    draw_panels,
    strips_of,
    tick_until_idle,
)
from worker_fixtures import WORKER_PYTHON

from acestep_core.client import find_worker

PROMPT = "calm exploration, ambient, soft pads"
SKETCH_COMMAND = f'"{WORKER_PYTHON}" -m acestep_core.worker --backend sketch'


@pytest.fixture
def own_home(monkeypatch, tmp_path) -> Path:
    """A state folder of this test's own, so the add-on finds no worker and starts one;
    whatever is still running there at the end is stopped."""
    home = tmp_path / "home"
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(home))
    yield home
    running = find_worker()
    if running is not None:
        pid = running.health()["pid"]
        running.shutdown()
        _wait_until_gone(pid)


def _settings(scene, **values):
    settings = scene.acestep
    settings.prompt, settings.use_bpm, settings.bpm, settings.duration = PROMPT, True, 120.0, 4.0
    for name, value in values.items():
        setattr(settings, name, value)


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def _wait_until_gone(pid: int, timeout: float = 30.0) -> float:
    """Seconds until the process has exited (reaped here if it is this process's child)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return time.monotonic() - began
        except ChildProcessError:  # not ours to reap, or already reaped: is it gone?
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"worker process {pid} still runs after {timeout:g} s")


def _started_worker_pid(addon) -> int:
    assert addon.runtime.worker_state == "CONNECTED", addon.runtime.worker_summary
    return int(addon.link.health["pid"])


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the worker's command line from /proc")
def test_stop_worker_cancels_the_running_job_and_ends_the_process(addon, own_home):
    prefs = addon.preferences
    prefs.worker_command, prefs.idle_unload_minutes, prefs.idle_exit_minutes = SKETCH_COMMAND, 5.0, 20.0
    scene = bpy.context.scene
    _settings(scene, duration=240.0)
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    deadline = time.monotonic() + 60
    while addon.runtime.progress == 0.0:
        assert addon.tick() is not None and time.monotonic() < deadline, addon.runtime.message
        time.sleep(0.02)
    pid = _started_worker_pid(addon)
    assert _command_line(pid)[-5:] == ["--preload", "--idle-unload", "5", "--idle-exit", "20"]
    assert "[acestep.stop_worker]" in draw_panels(addon, only="ACESTEP_PT_main")

    assert bpy.ops.acestep.stop_worker() == {"FINISHED"}
    runtime = addon.runtime
    assert not runtime.busy and runtime.worker_state == "DOWN"
    assert "cancelled, nothing was placed" in runtime.message and "the worker is stopping" in runtime.message
    assert _wait_until_gone(pid) < 10
    tick_until_idle(addon)
    assert strips_of(scene) == []
    assert "[acestep.stop_worker]" not in draw_panels(addon, only="ACESTEP_PT_main")

    _settings(scene)  # the next Generate starts a new worker
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    assert _started_worker_pid(addon) != pid
    assert [s.frame_final_duration for s in strips_of(scene)] == [96]


def test_an_idle_worker_blender_started_exits_and_generate_starts_another(addon, own_home):
    prefs = addon.preferences
    prefs.worker_command, prefs.idle_exit_minutes = SKETCH_COMMAND, 0.05  # 3 s without a request
    scene = bpy.context.scene
    _settings(scene)
    assert bpy.ops.acestep.generate() == {"FINISHED"}
    tick_until_idle(addon)
    pid = _started_worker_pid(addon)
    assert len(strips_of(scene)) == 1
    assert _wait_until_gone(pid) < 20, "it exits a few seconds after the last request"
    assert find_worker() is None

    scene.frame_current = 200
    assert bpy.ops.acestep.generate() == {"FINISHED"}, addon.runtime.message
    tick_until_idle(addon)
    assert _started_worker_pid(addon) != pid
    assert len(strips_of(scene)) == 2, addon.runtime.message


def test_stop_worker_with_no_worker_says_there_is_nothing_to_stop(addon, own_home):
    assert bpy.ops.acestep.stop_worker() == {"FINISHED"}
    assert addon.runtime.message == "No worker is running, so there is nothing to stop"
    assert addon.runtime.worker_state == "DOWN"
