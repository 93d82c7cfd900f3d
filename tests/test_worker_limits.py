"""The worker's bounds, against real workers over HTTP: a bounded queue (429 with
Retry-After), retention of outputs and uploads by age and by total size, and the
uploads' quota (507). Ages are set by backdating real files, as time would."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.errors import WorkerRejected
from acestep_core.jobs import DONE, RUNNING
from acestep_core.request import GenerationRequest
from acestep_core.worker import flags, limits

pytestmark = pytest.mark.slow

SHORT = {"duration": 2.0, "bpm": 120.0}
DAY = 86400.0


def short(prompt: str = "retention test cue") -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **SHORT)


def tone(path: Path, seconds: float = 1.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.2 * np.sin(2 * np.pi * 220 * t)
    sf.write(path, np.stack([wave, wave], axis=1), rate, subtype="PCM_16")
    return path


def backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def wait_running(client: WorkerClient, job_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.status(job_id).status != RUNNING:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)


def wait_gone(path: Path, timeout: float = 15.0) -> None:
    """The runner prunes just after a job's end is recorded: wait for it."""
    deadline = time.monotonic() + timeout
    while path.exists():
        assert time.monotonic() < deadline, f"{path} was never pruned"
        time.sleep(0.02)


def upload_exists(client: WorkerClient, upload_id: str) -> bool:
    """Asked the worker's way: a job naming a missing upload gets a source_audio problem."""
    status, error, _ = raw_request(client, "POST", "/v1/jobs", (
        f'{{"prompt": "x", "task": "cover", "source_audio": "{upload_id}"}}').encode(),
        {"Content-Type": "application/json"})
    assert status == 422  # the sketch backend cannot cover; only which problems come back matters
    return "source_audio" not in {p["field"] for p in error["problems"]}


def test_the_flags_say_the_documented_defaults():
    from acestep_core.worker.__main__ import build_parser

    parser = build_parser()
    args = parser.parse_args([])
    assert args.max_queue == limits.DEFAULT_MAX_QUEUE == 100
    assert args.keep_days == 30 and args.max_outputs_gb == 20 and args.max_uploads_gb == 2
    assert args.max_upload_mb == 256
    text = parser.format_help()
    for flag in ("--max-queue", "--keep-days", "--max-outputs-gb", "--max-uploads-gb", "--idle-exit", "--preload"):
        assert flag in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-queue", "0"])
    assert flags.DEFAULT_MAX_UPLOADS_GB == 2


# -- a bounded queue ----------------------------------------------------------------------


def test_past_max_queue_a_submission_is_a_429_with_retry_after(spawn_worker):
    process = spawn_worker("sketch", None, "--max-queue", "2")
    client = process.client
    running = client.submit(GenerationRequest(prompt="keeps the runner busy", duration=300.0, bpm=120.0))
    wait_running(client, running.id)
    waiting = [client.submit(short(f"waiting {n}")) for n in range(2)]

    for path, body in (("/v1/jobs", b'{"prompt": "one too many", "duration": 2}'),
                       ("/v1/sets", b'{"request": {"prompt": "one too many"}}')):
        status, error, _ = raw_request(client, "POST", path, body, {"Content-Type": "application/json"})
        assert status == 429, error
        assert error["detail"] == ("the worker's queue is full (2 jobs waiting); wait for some to finish or "
                                   "cancel some, then submit again")
    with pytest.raises(WorkerRejected) as caught:
        client.submit(short("through the client"))
    assert caught.value.status_code == 429
    assert client.health()["max_queue"] == 2 and client.health()["queue_length"] == 2

    # Retry-After is a number of seconds (read with a raw connection for the header).
    import http.client
    import urllib.parse

    parsed = urllib.parse.urlsplit(client.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    conn.request("POST", "/v1/jobs", b'{"prompt": "x", "duration": 2}',
                 {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 429 and int(response.getheader("Retry-After")) > 0

    client.cancel(waiting[0].id)  # a place frees up
    assert client.submit(short("fits again")).status == "queued"
    client.cancel(running.id)


# -- retention ------------------------------------------------------------------------------


def test_old_outputs_are_pruned_and_fetching_them_says_gone(spawn_worker, tmp_path):
    process = spawn_worker("sketch", None, "--keep-days", "1")
    client = process.client
    old = client.wait(client.submit(short("made long ago")).id, timeout=60)
    recent = client.wait(client.submit(short("made yesterday")).id, timeout=60)
    backdate(process.outputs_dir / old.id, 2 * DAY)
    backdate(process.outputs_dir / recent.id, 0.5 * DAY)

    new = client.wait(client.submit(short("made now")).id, timeout=60)  # the runner prunes after each job
    wait_gone(process.outputs_dir / old.id)
    assert Path(recent.outputs[0].path).is_file() and Path(new.outputs[0].path).is_file()
    status, error, _ = raw_request(client, "GET", f"/v1/jobs/{old.id}/files/0")
    assert status == 410 and "no longer in the worker's output folder" in error["detail"]
    assert client.status(old.id).status == DONE  # the history keeps it


def test_outputs_past_their_total_size_lose_the_oldest_first(spawn_worker):
    # Each 2 s cue is ~353 KB of WAV: three pass 0.0008 GB (~839 KB), two do not.
    process = spawn_worker("sketch", None, "--max-outputs-gb", "0.0008")
    client = process.client
    jobs = [client.wait(client.submit(short(f"cue {n}")).id, timeout=60) for n in range(3)]
    assert all(job.status == DONE for job in jobs)
    wait_gone(process.outputs_dir / jobs[0].id)
    assert all(Path(job.outputs[0].path).is_file() for job in jobs[1:])


def test_old_uploads_are_pruned(spawn_worker, tmp_path):
    process = spawn_worker("sketch", None, "--keep-days", "1")
    client = process.client
    old = client.upload(tone(tmp_path / "old.wav"))
    fresh = client.upload(tone(tmp_path / "fresh.wav"))
    [old_file] = (process.data_dir / "uploads").glob(f"{old}.*")
    backdate(old_file, 2 * DAY)
    assert upload_exists(client, old)

    assert client.wait(client.submit(short()).id, timeout=60).status == DONE
    wait_gone(old_file)
    assert not upload_exists(client, old)
    assert upload_exists(client, fresh)


def test_an_upload_a_queued_job_will_read_is_never_pruned(spawn_worker, tiny_checkpoint, tmp_path):
    process = spawn_worker("acestep", tiny_checkpoint, "--keep-days", "1")
    client = process.client
    source = client.upload(tone(tmp_path / "source.wav", seconds=4.0))
    [source_file] = (process.data_dir / "uploads").glob(f"{source}.*")
    backdate(source_file, 2 * DAY)

    blocker = client.submit(GenerationRequest(prompt="runs first", duration=2.0, steps=2))
    cover = client.submit(GenerationRequest(prompt="covers the old upload", task="cover", source_audio=source,
                                            duration=2.0, steps=2))
    assert client.wait(blocker.id, timeout=120).status == DONE  # pruning ran with the cover queued
    done = client.wait(cover.id, timeout=120)
    assert done.status == DONE, done.error
    # With no job waiting for it any more, the next pruning takes it.
    assert client.wait(client.submit(GenerationRequest(prompt="after", duration=2.0, steps=2)).id, 120).status == DONE
    wait_gone(source_file)


def test_the_upload_quota_makes_room_from_old_uploads_and_is_a_507_past_it(spawn_worker, tmp_path):
    # One 1 s tone is ~188 KB; the quota (~315 KB) holds one of them.
    process = spawn_worker("sketch", None, "--max-uploads-gb", "0.0003")
    client = process.client
    first = client.upload(tone(tmp_path / "first.wav"))

    status, error, _ = raw_request(client, "POST", "/v1/uploads?name=second.wav", tone(tmp_path / "second.wav").read_bytes())
    assert status == 507, error
    assert error["detail"].startswith("the worker's uploads would pass their quota of 0.31 MB")
    assert "--max-uploads-gb" in error["detail"]
    assert upload_exists(client, first)  # uploaded just now: a client may be about to use it
    assert sorted(p.name for p in (process.data_dir / "uploads").iterdir()) == sorted(
        p.name for p in (process.data_dir / "uploads").glob(f"{first}.*"))  # nothing half-kept

    [first_file] = (process.data_dir / "uploads").glob(f"{first}.*")
    backdate(first_file, 3600)
    second = client.upload(tone(tmp_path / "second.wav"))
    assert upload_exists(client, second) and not upload_exists(client, first)

