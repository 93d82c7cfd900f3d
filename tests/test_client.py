"""The host-side client: standard library only, finds or starts a worker without
blocking a UI thread, and turns every failure into a typed error with a sentence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from acestep_core.client import (
    NO_COMMAND_MESSAGE,
    JobWatcher,
    WorkerClient,
    check_started,
    find_worker,
    start_worker,
    worker_command_for_python,
)
from acestep_core.errors import JobNotFound, WorkerError, WorkerNotRunning, WorkerUnreachable
from acestep_core.jobs import DONE
from acestep_core.request import GenerationRequest
from acestep_core.worker.discovery import WorkerInfo, read_discovery, write_discovery

REPO_ROOT = Path(__file__).resolve().parent.parent
SKETCH_WORKER = worker_command_for_python(sys.executable) + ["--backend", "sketch"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty ACESTEP_DCC_HOME for this test; any worker started in it is stopped after."""
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path))
    yield tmp_path
    info = read_discovery(tmp_path / "state")
    if info is not None:
        try:
            WorkerClient(info.url, info.token).shutdown()
        except WorkerError:
            pass
        _wait_for_exit(info.pid)


def _wait_for_exit(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    os.kill(pid, 9)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- standard library only ---------------------------------------------------------------


def test_client_imports_with_the_standard_library_alone(tmp_path):
    """In a Python with no site-packages at all (like Blender's or REAPER's, as far as
    we are concerned), the client imports, and connect() says what to configure."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        os.environ["ACESTEP_DCC_HOME"] = {str(tmp_path)!r}
        import acestep_core.client as client
        from acestep_core.errors import WorkerNotRunning
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       ("numpy", "torch", "fastapi", "uvicorn", "pydantic", "starlette", "soundfile", "diffusers"))
        assert not heavy, heavy
        assert "acestep_core.worker.app" not in sys.modules
        assert client.default_worker_command() is None
        assert client.find_worker() is None
        try:
            client.WorkerClient.connect()
        except WorkerNotRunning as exc:
            print("MESSAGE:", exc)
    """)
    out = subprocess.run([sys.executable, "-S", "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"MESSAGE: {NO_COMMAND_MESSAGE}" in out.stdout
    assert "add-on preferences" in NO_COMMAND_MESSAGE


def test_the_set_limits_hosts_see_are_the_cores():
    from acestep_core import client, dynamic_sets

    assert client.MAX_SET_INTENSITIES == dynamic_sets.MAX_INTENSITIES
    assert client.MAX_SET_STINGERS == dynamic_sets.MAX_STINGERS


# -- finding and starting a worker ------------------------------------------------------------


def test_connect_without_a_worker_and_without_starting_one(home):
    with pytest.raises(WorkerNotRunning, match="acestep-dcc worker"):
        WorkerClient.connect(start=False)


def test_connect_starts_a_detached_worker_and_then_reuses_it(home):
    client = WorkerClient.connect(worker_command=SKETCH_WORKER, wait=60)
    assert client.health()["backend"] == "sketch"
    assert client.log_path and Path(client.log_path).is_file()
    again = WorkerClient.connect(worker_command=SKETCH_WORKER, wait=60)
    assert (again.url, again.token) == (client.url, client.token)
    # Detached: its own session, so a host's Ctrl+C or exit does not take it down.
    pid = client.health()["pid"]
    assert os.getsid(pid) == pid


def test_start_worker_returns_at_once_and_check_started_finds_it(home):
    began = time.monotonic()
    launches = [start_worker(SKETCH_WORKER), start_worker(SKETCH_WORKER)]  # two hosts at once
    assert time.monotonic() - began < 1.0
    clients = []
    deadline = time.monotonic() + 60
    while len(clients) < 2 and time.monotonic() < deadline:
        clients = [c for c in (check_started(launch) for launch in launches) if c is not None]
        time.sleep(0.05)
    assert len(clients) == 2 and clients[0].url == clients[1].url  # one worker serves both
    winner = clients[0].health()["pid"]
    [loser] = [launch for launch in launches if launch.pid != winner]
    assert loser.wait(30) == 3  # the second one found the lock taken and left


def test_worker_that_dies_while_starting_is_reported_with_its_log(home):
    failing = [sys.executable, "-c",
               "import sys; print('acestep-dcc worker: the acestep backend needs a model folder'); sys.exit(2)"]
    with pytest.raises(WorkerNotRunning, match="needs a model folder"):
        WorkerClient.connect(worker_command=failing, wait=30)


def test_a_worker_command_that_cannot_run_says_so(home):
    with pytest.raises(WorkerNotRunning, match="add-on preferences"):
        start_worker([str(home / "no-such-python"), "-m", "acestep_core.worker"])


def test_stale_discovery_files_are_ignored(home):
    state = home / "state"
    write_discovery(WorkerInfo(url=f"http://127.0.0.1:{_free_port()}", token="t", pid=_dead_pid(), version="0"), state)
    assert find_worker() is None
    # A live pid (ours) with nothing listening: still no worker, and quickly.
    write_discovery(WorkerInfo(url=f"http://127.0.0.1:{_free_port()}", token="t", pid=os.getpid(), version="0"), state)
    began = time.monotonic()
    assert find_worker() is None
    assert time.monotonic() - began < 1.5
    (state / "worker.json").write_text("{not json")
    assert find_worker() is None


# -- every failure is typed and quick -------------------------------------------------------------


def test_nothing_listening_is_unreachable_at_once():
    client = WorkerClient(f"http://127.0.0.1:{_free_port()}", "token")
    began = time.monotonic()
    with pytest.raises(WorkerUnreachable, match="nothing is listening"):
        client.health()
    assert time.monotonic() - began < 1.0
    assert client.alive() is False


def test_a_worker_that_never_answers_times_out():
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = WorkerClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "token", timeout=0.3)
        began = time.monotonic()
        with pytest.raises(WorkerUnreachable, match="did not answer within 0.3 s"):
            client.status("0" * 32)
        assert time.monotonic() - began < 1.0


def test_bad_url_and_unreadable_upload_are_worker_errors(tmp_path):
    with pytest.raises(WorkerError, match="not like http://127.0.0.1:PORT"):
        WorkerClient("ftp://example", "token")
    client = WorkerClient(f"http://127.0.0.1:{_free_port()}", "token")
    with pytest.raises(WorkerError, match="cannot read the source audio"):
        client.upload(tmp_path / "missing.wav")


def test_discovery_round_trip(tmp_path):
    info = WorkerInfo(url="http://127.0.0.1:1234", token="abc", pid=42, version="9", log_path="/x/worker.log")
    path = write_discovery(info, tmp_path / "state")
    assert read_discovery(tmp_path / "state") == info
    assert json.loads(path.read_text())["token"] == "abc"


# -- JobWatcher: following a job without waiting on the network ------------------------------------


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"condition not met within {timeout:g} s")


def test_job_watcher_answers_at_once_while_the_worker_works_and_reports_done(worker: WorkerClient):
    job = worker.submit(GenerationRequest(prompt="long watch", duration=240.0, bpm=120.0, candidates=2))
    watcher = JobWatcher(worker, job.id)
    reads_us, seen = [], []
    while watcher.watching:
        began = time.perf_counter()
        status = watcher.latest()
        reads_us.append((time.perf_counter() - began) * 1e6)
        if status is not None and (not seen or seen[-1] is not status):
            seen.append(status)
        time.sleep(1 / 60)  # a UI tick
    done = watcher.latest()
    assert done.status == DONE and len(done.outputs) == 2
    assert any(status.status == "running" for status in seen)
    progress = [status.progress for status in seen]
    assert progress == sorted(progress) and len(seen) >= 3
    reads_us.sort()
    # A read takes the lock and nothing else: microseconds, where a status call over HTTP
    # takes milliseconds. The tail allows for the GIL, which the watcher holds while it
    # decodes an answer.
    assert len(reads_us) > 50
    assert reads_us[len(reads_us) // 2] < 50.0, reads_us[len(reads_us) // 2]
    assert reads_us[int(len(reads_us) * 0.99)] < 10_000.0


def test_job_watcher_reports_a_killed_worker_as_unreachable(spawn_worker):
    process = spawn_worker("sketch")
    job = process.client.submit(GenerationRequest(prompt="cut short", duration=600.0, bpm=120.0))
    watcher = JobWatcher(process.client, job.id)
    _wait_for(lambda: (status := watcher.latest()) is not None and status.status == "running")
    process.kill()
    _wait_for(lambda: not watcher.watching, timeout=5.0)  # a refused connection is reported at once
    with pytest.raises(WorkerUnreachable, match="not answering"):
        watcher.latest()


def test_job_watcher_stops_when_asked_and_keeps_its_last_answer(worker: WorkerClient):
    job = worker.submit(GenerationRequest(prompt="stopped watch", duration=240.0, bpm=120.0))
    watcher = JobWatcher(worker, job.id, interval=0.1)
    last = _wait_for(watcher.latest)
    began = time.perf_counter()
    watcher.stop()
    assert time.perf_counter() - began < 0.01  # stop() alone never waits
    watcher.stop(timeout=5.0)
    assert not watcher.watching and not watcher.latest().finished
    assert watcher.latest().id == last.id
    worker.cancel(job.id)


def test_job_watcher_of_an_unknown_job_says_so(worker: WorkerClient):
    watcher = JobWatcher(worker, "0" * 32)
    _wait_for(lambda: not watcher.watching, timeout=5.0)
    with pytest.raises(JobNotFound):
        watcher.latest()
