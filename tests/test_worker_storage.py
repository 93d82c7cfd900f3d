"""The worker on a disk that fills up, and on a job database another program locks: a real
sketch worker whose data folder is a small tmpfs filled with a real file. The runner
never wedges: jobs fail with the real cause, the next job runs, submissions get 507 (or
503) with a sentence, and once space returns every end is in the job database."""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.jobs import DONE, FAILED, INTERRUPTED_MESSAGE, RUNNING
from acestep_core.request import GenerationRequest

pytestmark = pytest.mark.slow

TMPFS_MB = 32
SHORT = {"duration": 2.0, "bpm": 120.0}


@pytest.fixture
def small_disk(tmp_path: Path):
    """A TMPFS_MB tmpfs mounted for this test (root only), unmounted afterwards."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write one file until the filesystem says ENOSPC, as `dd` would."""
    filler = folder / "filler.bin"
    chunk = b"\0" * (256 * 1024)
    with open(filler, "wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    for size in (4096, 1):  # the last partial blocks, too
        try:
            with open(filler, "ab", buffering=0) as out:
                while True:
                    out.write(b"\0" * size)
        except OSError:
            pass
    return filler


def post_job(client: WorkerClient, request: dict):
    """(status, JSON body, headers: case-insensitive)."""
    import http.client
    import urllib.parse

    parsed = urllib.parse.urlsplit(client.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request("POST", "/v1/jobs", json.dumps(request), {"Authorization": f"Bearer {client.token}",
                                                              "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), response.msg
    finally:
        conn.close()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def recorded(db: Path, job_id: str) -> tuple[str, str | None]:
    """What the job database itself holds for a job (read by another connection)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as reader:
        return reader.execute("SELECT status, error FROM jobs WHERE id = ?", (job_id,)).fetchone()


def test_a_disk_that_fills_mid_job_fails_the_job_and_the_queue_goes_on(spawn_worker, small_disk):
    process = spawn_worker("sketch", None, "--data-dir", str(small_disk))
    client = process.client
    outputs = small_disk / "outputs"

    long_job = client.submit(GenerationRequest(prompt="the disk fills under this one", duration=90.0, bpm=120.0))
    next_job = client.submit(GenerationRequest(prompt="queued behind it", **SHORT))
    wait_for(lambda: client.status(long_job.id).stage.startswith("generating"), 60, "the long job to generate")
    filler = fill(small_disk)

    failed = client.wait(long_job.id, timeout=60)
    assert failed.status == FAILED
    assert f"no space left on device in {outputs}" in failed.error, failed.error
    assert not re.search(r"(^|\s)-o\b", failed.error) and "System error" not in failed.error
    # The runner lived on: the job behind it ran, and failed with the same cause.
    behind = client.wait(next_job.id, timeout=60)
    assert behind.status == FAILED and "no space left on device" in behind.error, behind.error
    assert client.health()["running_job"] is None

    # While the disk is full a submission is refused with a sentence, not queued.
    status, error, _ = post_job(client, {"prompt": "while full", **SHORT})
    assert status == 507, error
    assert error["detail"].startswith(f"no space left on device in {outputs}")

    filler.unlink()
    after = client.wait(client.submit(GenerationRequest(prompt="space is back", **SHORT)).id, timeout=60)
    assert after.status == DONE, after.error
    assert Path(after.outputs[0].path).is_file()
    # Every end reaches the job database once there is room (never 'running' for ever) ...
    db = small_disk / "jobs.sqlite3"
    for job in (failed, behind):
        status, error = wait_for(lambda: recorded(db, job.id) if recorded(db, job.id)[0] != RUNNING else None,
                                 15, "the failed ends to be written")
        assert status == FAILED and "no space left on device" in error
    # ... so a restart reports the real cause, not an interruption.
    restarted = process.restart()
    for job in (failed, behind):
        again = restarted.status(job.id)
        assert again.status == FAILED and again.error != INTERRUPTED_MESSAGE
    assert "Traceback" not in process.log_text()


def test_a_submission_that_would_not_fit_is_a_507(spawn_worker, small_disk):
    process = spawn_worker("sketch", None, "--data-dir", str(small_disk))
    # 600 s of 48 kHz 24-bit stereo is ~165 MB: more than this disk holds at all.
    status, error, _ = post_job(process.client, {"prompt": "too long for this disk", "duration": 600.0,
                                                 "sample_rate": 48000, "bit_depth": 24})
    assert status == 507
    assert error["detail"].startswith(f"no space left on device in {small_disk / 'outputs'}")
    assert "this job needs about" in error["detail"] and error["problems"] == []
    assert process.client.jobs(limit=5) == []  # nothing was queued


def test_a_job_database_another_program_locks_is_a_503_then_recovers(spawn_worker):
    process = spawn_worker("sketch")
    client = process.client
    first = client.wait(client.submit(GenerationRequest(prompt="before the lock", **SHORT)).id, timeout=60)
    assert first.status == DONE

    locker = sqlite3.connect(process.data_dir / "jobs.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        status, error, headers = post_job(client, {"prompt": "while locked", **SHORT})
        assert status == 503, error
        assert "is locked by another program" in error["detail"]
        assert int(headers["Retry-After"]) > 0
        assert client.status(first.id).status == DONE  # reads still answer
    finally:
        locker.rollback()
        locker.close()
    after = client.wait(client.submit(GenerationRequest(prompt="after the lock", **SHORT)).id, timeout=60)
    assert after.status == DONE, after.error
