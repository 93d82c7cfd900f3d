"""The worker on the tiny random ACE-Step checkpoint: the real diffusers code path
behind real HTTP. Submit and poll, cancel queued and running jobs, source audio by
upload, a failing backend, idle unload."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.client import WorkerClient
from acestep_core.errors import WorkerRejected
from acestep_core.jobs import CANCELLED, DONE, FAILED, RUNNING
from acestep_core.request import GenerationRequest

pytestmark = pytest.mark.slow

# Enough denoising steps on a long cue that the job is still running when the test acts.
LONG = {"duration": 60.0, "steps": 200}


def tone(path: Path, seconds: float = 4.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.2 * np.sin(2 * np.pi * 330 * t)
    sf.write(path, np.stack([wave, wave], axis=1), rate)
    return path


def wait_until(predicate, timeout: float = 60.0, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")


def test_tiny_checkpoint_submit_poll_done(acestep_worker: WorkerClient, acestep_worker_process, tmp_path):
    job = acestep_worker.submit(GenerationRequest(prompt="boss battle, synthwave", duration=4.0, seed=7))
    stages = []
    done = acestep_worker.wait(job.id, timeout=120, poll=0.02, on_status=lambda s: stages.append(s.stage))
    assert done.status == DONE, done.error
    assert any(stage.startswith("generating") for stage in stages) or "loading model" in stages
    [output] = done.outputs
    assert Path(output.path).resolve().is_relative_to(acestep_worker_process.outputs_dir.resolve())
    assert output.seed == 7 and abs(output.duration - 4.0) < 0.01
    assert output.metadata["backend"]["name"] == "acestep"
    health = acestep_worker.health()
    assert health["backend"] == "acestep" and health["loaded"] is True and health["device"] == "cpu"
    assert health["model"] and Path(health["model"]).name == "acestep-v15-tiny-turbo"
    downloaded = acestep_worker.download(job.id, 0, tmp_path)
    assert downloaded.read_bytes() == Path(output.path).read_bytes()


def test_running_job_reports_steps_and_time_left_then_cancels_within_a_step(acestep_worker, acestep_worker_process):
    job = acestep_worker.submit(GenerationRequest(prompt="long ambient drone", **LONG))
    step_times: list[float] = []
    last_stage = None

    def generating_for_a_while():
        nonlocal last_stage
        status = acestep_worker.status(job.id)
        if status.stage != last_stage and status.stage.startswith("generating"):
            step_times.append(time.monotonic())
            last_stage = status.stage
        return status if len(step_times) >= 4 and status.eta_seconds is not None else None

    running = wait_until(generating_for_a_while, timeout=120)
    assert running.status == "running" and 0.1 < running.progress < 0.9
    assert running.eta_seconds > 0
    assert running.stage.startswith("generating ") and running.stage.endswith("/200")
    step = max(b - a for a, b in zip(step_times, step_times[1:]))

    asked = time.monotonic()
    assert acestep_worker.cancel(job.id).stage == "cancelling"
    cancelled = wait_until(lambda: (s := acestep_worker.status(job.id)).finished and s, timeout=30, poll=0.01)
    took = time.monotonic() - asked
    assert cancelled.status == CANCELLED and cancelled.outputs == []
    assert took < 2 * step + 1.0, f"cancel took {took:.2f} s with steps of {step:.2f} s"
    assert not (acestep_worker_process.outputs_dir / job.id).exists()
    # The worker is free again at once.
    assert acestep_worker.wait(acestep_worker.submit(GenerationRequest(prompt="x", duration=2.0)).id, 120).status == DONE


def test_cancelled_queued_job_never_runs(acestep_worker: WorkerClient, acestep_worker_process):
    blocker = acestep_worker.submit(GenerationRequest(prompt="blocker", **LONG))
    # Positions count from the running job: let the blocker start before queueing the others.
    deadline = time.monotonic() + 60
    while acestep_worker.status(blocker.id).status != RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = acestep_worker.submit(GenerationRequest(prompt="never", duration=2.0))
    after = acestep_worker.submit(GenerationRequest(prompt="after", duration=2.0))
    assert waiting.status == "queued" and waiting.position == 0
    cancelled = acestep_worker.cancel(waiting.id)
    assert cancelled.status == CANCELLED
    assert acestep_worker.status(after.id).position == waiting.position  # moved up one place
    acestep_worker.cancel(blocker.id)
    assert acestep_worker.wait(after.id, timeout=120).status == DONE
    never = acestep_worker.status(waiting.id)
    assert never.status == CANCELLED and never.outputs == [] and never.progress == 0.0
    assert not (acestep_worker_process.outputs_dir / waiting.id).exists()


@pytest.mark.parametrize("task,extra", [("repaint", {"repaint_start": 1.0, "repaint_end": 2.0}),
                                        ("cover", {"cover_strength": 0.5})])
def test_source_audio_goes_through_an_upload(acestep_worker: WorkerClient, tmp_path, task, extra):
    upload_id = acestep_worker.upload(tone(tmp_path / "source.wav"))
    job = acestep_worker.submit(GenerationRequest(prompt="rework", task=task, source_audio=upload_id,
                                                  duration=4.0, **extra))
    done = acestep_worker.wait(job.id, timeout=120)
    assert done.status == DONE, done.error
    assert done.request["source_audio"] == upload_id  # the record keeps the id, not the worker's path
    assert abs(done.outputs[0].duration - 4.0) < 0.05


def test_a_repaint_over_http_is_the_source_outside_its_range(acestep_worker: WorkerClient, tmp_path):
    from acestep_core.audio.splice import CROSSFADE_S

    source = tone(tmp_path / "source.wav")
    job = acestep_worker.submit_with_files(GenerationRequest(
        prompt="rework", task="repaint", source_audio=str(source), repaint_start=1.0, repaint_end=2.0,
        sample_rate=48000, bit_depth=16))
    done = acestep_worker.wait(job.id, timeout=120)
    assert done.status == DONE, done.error
    got = acestep_worker.download(job.id, 0, tmp_path / "repainted.wav")
    before, _ = sf.read(source, dtype="int16")
    after, _ = sf.read(got, dtype="int16")
    assert after.shape == before.shape  # the source's length, though the request left duration alone
    differs = np.nonzero(np.abs(after.astype(int) - before).max(axis=1))[0] / 48000
    assert 1.0 - CROSSFADE_S <= differs[0] and differs[-1] <= 2.0 + CROSSFADE_S


def test_unknown_upload_id_is_refused(acestep_worker: WorkerClient):
    with pytest.raises(WorkerRejected) as caught:
        acestep_worker.submit({"prompt": "x", "task": "cover", "source_audio": "upload-" + "a" * 32})
    assert caught.value.problems[0].field == "source_audio"
    assert "upload the audio first" in caught.value.problems[0].message


def test_backend_failure_fails_the_job_and_the_worker_keeps_serving(spawn_worker, tiny_checkpoint, tmp_path):
    model = Path(shutil.copytree(tiny_checkpoint, tmp_path / "acestep-v15-tiny-turbo"))
    process = spawn_worker("acestep", model)
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\x00" * 64)  # a damaged download

    failed = process.client.wait(process.client.submit(GenerationRequest(prompt="x", duration=2.0)).id, 120)
    assert failed.status == FAILED
    assert "re-run 'acestep-dcc download-model'" in failed.error or "download" in failed.error
    assert process.client.health()["loaded"] is False

    weights.write_bytes(good)
    again = process.client.wait(process.client.submit(GenerationRequest(prompt="x", duration=2.0)).id, 120)
    assert again.status == DONE, again.error


def test_model_unloads_when_idle_and_loads_again_for_the_next_job(spawn_worker, tiny_checkpoint):
    process = spawn_worker("acestep", tiny_checkpoint, "--idle-unload", "0.02")  # 1.2 s
    client = process.client
    assert client.wait(client.submit(GenerationRequest(prompt="x", duration=2.0)).id, 120).status == DONE
    wait_until(lambda: client.health()["loaded"] is False, timeout=30, poll=0.2)
    assert client.wait(client.submit(GenerationRequest(prompt="y", duration=2.0)).id, 120).status == DONE
    assert "unloading the model" in process.log_text()


def test_long_poll_answers_the_moment_a_job_finishes(acestep_worker: WorkerClient):
    job = acestep_worker.submit(GenerationRequest(prompt="short", duration=2.0))
    began = time.monotonic()
    status = acestep_worker.status(job.id, wait=10.0)
    assert status.finished and status.status == DONE
    assert time.monotonic() - began < 9.0  # it did not sit out the window
    began = time.monotonic()
    assert acestep_worker.status(job.id, wait=10.0).status == DONE  # already finished: no wait at all
    assert time.monotonic() - began < 0.5


def test_long_poll_on_a_running_job_returns_after_its_window(acestep_worker: WorkerClient):
    job = acestep_worker.submit(GenerationRequest(prompt="long", **LONG))
    began = time.monotonic()
    status = acestep_worker.status(job.id, wait=0.5)
    assert not status.finished and 0.4 < time.monotonic() - began < 2.0
    acestep_worker.cancel(job.id)
    assert acestep_worker.wait(job.id, timeout=60).status == CANCELLED


def test_a_set_on_the_tiny_checkpoint_covers_the_base_loop(acestep_worker: WorkerClient, acestep_worker_process, tmp_path):
    # The acestep backend can cover, so each level is a cover of the base loop (the sketch
    # backend re-arranges instead); this runs that path through the worker.
    request = GenerationRequest(prompt="boss battle, synthwave", bpm=120.0, key="E minor", seed=3, steps=2)
    done = acestep_worker.wait(acestep_worker.submit_set(request, intensities=1, bars=2, stingers=1).id, timeout=300)
    assert done.status == DONE, done.error
    # Layers were asked for (intensities); a turbo checkpoint cannot make stems, so the set
    # holds cover variants, and its manifest says so.
    assert [o.set_role for o in done.outputs] == ["base", "intensity", "stinger"]
    assert done.manifest["layers"] is None and "cannot make stems" in done.manifest["fallback"]
    assert done.manifest["arrangement"] == "cover of the base cue per level"
    assert done.outputs[1].metadata["request"]["task"] == "cover"
    assert done.outputs[1].metadata["loop"]["loop_end_exclusive"] == done.outputs[0].metadata["loop"]["loop_end_exclusive"]
    job_folder = acestep_worker_process.outputs_dir / done.id
    assert sorted(p.name for p in job_folder.iterdir()) == sorted(
        [Path(o.path).name for o in done.outputs] + [Path(o.sidecar_path).name for o in done.outputs]
        + [Path(a.path).name for a in done.artifacts])  # the cover source is gone again
    manifest = acestep_worker.download(done.id, done.artifact("manifest").index, tmp_path)
    assert json.loads(manifest.read_text())["bars"] == 2
