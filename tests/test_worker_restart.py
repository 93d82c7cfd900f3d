"""Losing nothing: kill -9 mid-job, restart, the discovery file and the one-worker lock.
Real worker processes, real signals."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acestep_core.client import WorkerClient, find_worker
from acestep_core.errors import WorkerUnreachable
from acestep_core.jobs import DONE, FAILED, INTERRUPTED_MESSAGE
from acestep_core.request import GenerationRequest
from acestep_core.worker.discovery import discovery_path, read_discovery

pytestmark = pytest.mark.slow

LONG = {"duration": 60.0, "steps": 200}


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def wait_for_stage(client: WorkerClient, job_id: str, prefix: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(job_id)
        if status.stage.startswith(prefix):
            return status
        assert not status.finished, status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {prefix!r}")


def test_kill_9_mid_job_is_reported_fast_and_a_restart_loses_nothing(spawn_worker, tiny_checkpoint, monkeypatch):
    process = spawn_worker("acestep", tiny_checkpoint)
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(process.home))
    client = process.client

    finished = [client.wait(client.submit(GenerationRequest(prompt=f"cue {n}", duration=2.0, candidates=n)).id, 120)
                for n in (1, 2)]
    assert all(job.status == DONE for job in finished)
    hashes = {o.path: sha256(o.path) for job in finished for o in job.outputs}

    running = client.submit(GenerationRequest(prompt="cut short", **LONG))
    waiting = client.submit(GenerationRequest(prompt="still waiting", duration=2.0))
    wait_for_stage(client, running.id, "generating")

    process.kill()
    started = time.monotonic()
    with pytest.raises(WorkerUnreachable, match="not answering"):
        client.status(running.id)
    assert time.monotonic() - started < 2.0
    assert find_worker() is None  # the discovery file is stale: its pid is gone
    assert discovery_path(process.state_dir).exists()

    restarted = process.start()
    assert restarted.token != client.token
    history = {job.id: job for job in restarted.jobs(limit=100)}
    for job in finished:
        assert history[job.id].status == DONE
        assert [o.path for o in history[job.id].outputs] == [o.path for o in job.outputs]
    for path, digest in hashes.items():
        assert sha256(path) == digest
    assert history[running.id].status == FAILED
    assert history[running.id].error == INTERRUPTED_MESSAGE
    assert not (process.outputs_dir / running.id).exists()  # no half-written leftovers
    # The job that never began runs after the restart instead of being lost.
    assert restarted.wait(waiting.id, timeout=120).status == DONE
    assert find_worker().url == restarted.url


def test_clean_stop_records_the_running_job_as_interrupted(spawn_worker, tiny_checkpoint):
    process = spawn_worker("acestep", tiny_checkpoint)
    client = process.client
    job = client.submit(GenerationRequest(prompt="interrupted", **LONG))
    wait_for_stage(client, job.id, "generating")
    client.shutdown()
    assert process.process.wait(30) == 0
    assert not discovery_path(process.state_dir).exists()
    restarted = process.start()
    status = restarted.status(job.id)
    assert status.status == FAILED and status.error == INTERRUPTED_MESSAGE


def test_discovery_file_is_private_complete_and_removed_on_clean_exit(spawn_worker):
    process = spawn_worker("sketch")
    path = discovery_path(process.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(process.state_dir.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert set(data) >= {"url", "token", "pid", "version"}
    assert data["pid"] == process.pid and data["url"].startswith("http://127.0.0.1:")
    assert len(data["token"]) >= 32
    assert not list(process.state_dir.glob(".*.tmp"))
    assert data["log_path"] == str(process.state_dir / "worker.log")
    assert "serving" in Path(data["log_path"]).read_text()

    assert process.stop() == 0  # SIGTERM
    assert not path.exists()
    second = process.start()  # the lock was released; a fresh token
    assert second.token != data["token"]


def test_only_one_worker_per_state_folder(spawn_worker):
    first = spawn_worker("sketch")
    second = spawn_worker("sketch", home=first.home, start=False)
    with open(second.log_file, "ab") as log:
        late = subprocess.Popen(second.command(), env=second.env(), stdout=log, stderr=subprocess.STDOUT)
    assert late.wait(60) == 2  # the README's status for every expected failure
    assert "already running" in second.log_text()
    assert str(first.pid) in second.log_text()
    assert read_discovery(first.state_dir).pid == first.pid
    assert first.client.health()["pid"] == first.pid


def test_a_non_local_host_needs_the_flag_and_warns(spawn_worker):
    process = spawn_worker("sketch", None, "--host", "0.0.0.0")
    assert "warning" in process.log_text() and "0.0.0.0" in process.log_text()
    assert process.client.url.startswith("http://127.0.0.1:")
    assert process.client.health()["backend"] == "sketch"


def test_entry_points_run_the_worker():
    # `python -m acestep_core worker` (the CLI) and `python -m acestep_core.worker` both parse.
    for module in (["acestep_core", "worker"], ["acestep_core.worker"]):
        out = subprocess.run([sys.executable, "-m", *module, "--help"], capture_output=True, text=True, timeout=60,
                             cwd=Path(__file__).resolve().parent.parent)
        assert out.returncode == 0 and "--idle-unload" in out.stdout
