"""How long a worker lives and what its model is doing, over real HTTP: --idle-exit ends
a worker nobody talks to (never one with a job), /v1/health's model_state, and --preload
loading in the background while the server already answers."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from acestep_core.jobs import DONE, MODEL_FAILED, MODEL_LOADED, MODEL_LOADING, MODEL_STATES
from acestep_core.request import GenerationRequest
from acestep_core.worker.discovery import discovery_path

pytestmark = pytest.mark.slow

IDLE_EXIT_MIN = "0.02"  # 1.2 s


def test_idle_exit_waits_while_clients_talk_and_jobs_run_then_exits_cleanly(spawn_worker):
    process = spawn_worker("sketch", None, "--idle-exit", IDLE_EXIT_MIN)
    client = process.client

    # Talking to it keeps it up well past the idle time.
    for _ in range(5):
        assert client.health()["queue_length"] == 0
        time.sleep(0.4)
    assert process.process.poll() is None

    # So does a job: ~3 s of sketch work here, with nobody asking in between.
    job = client.submit(GenerationRequest(prompt="outlasts the idle time", duration=200.0, bpm=120.0))
    began = time.monotonic()
    assert process.process.wait(60) == 0  # then it goes by itself, cleanly
    assert time.monotonic() - began > 1.2
    assert not discovery_path(process.state_dir).exists()
    log = process.log_text()
    assert "(--idle-exit): stopping" in log and "worker stopped" in log
    assert log.index(f"job {job.id} done") < log.index("(--idle-exit): stopping")

    # It exited after the job, not through it: the job is done, not interrupted.
    assert process.start().status(job.id).status == DONE


def test_health_says_the_model_state(spawn_worker):
    process = spawn_worker("sketch")
    health = process.client.health()
    assert health["model_state"] == MODEL_LOADED and health["model_error"] is None
    assert set(MODEL_STATES) == {"unloaded", "loading", "loaded", "failed"}


def test_preload_answers_at_once_with_loading_then_loaded(spawn_worker, tiny_checkpoint):
    process = spawn_worker("acestep", tiny_checkpoint, "--preload")
    client = process.client
    began = time.monotonic()
    first = client.health()
    assert time.monotonic() - began < 1.0  # the load runs beside the server, not in front of it
    assert first["model_state"] == MODEL_LOADING and first["loaded"] is False

    states = [first["model_state"]]
    deadline = time.monotonic() + 120
    while states[-1] == MODEL_LOADING and time.monotonic() < deadline:
        time.sleep(0.1)
        states.append(client.health()["model_state"])
    assert states[-1] == MODEL_LOADED and client.health()["loaded"] is True
    assert set(states) == {MODEL_LOADING, MODEL_LOADED}


def test_a_model_that_fails_to_load_says_failed_and_why(spawn_worker, tiny_checkpoint, tmp_path):
    model = Path(shutil.copytree(tiny_checkpoint, tmp_path / "acestep-v15-tiny-turbo"))
    (model / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)  # damaged
    process = spawn_worker("acestep", model, "--preload")
    client = process.client
    deadline = time.monotonic() + 120
    while (health := client.health())["model_state"] == MODEL_LOADING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert health["model_state"] == MODEL_FAILED
    assert str(model) in health["model_error"] and "download-model" in health["model_error"]
