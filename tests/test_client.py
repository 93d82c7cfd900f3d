"""The host-side client: standard library only, finds or starts a worker without
blocking a UI thread, and turns every failure into a typed error with a sentence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from acestep_core.client import (
    NO_COMMAND_MESSAGE,
    JobWatcher,
    StatusPoll,
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
    assert loser.wait(30) == 2  # the second one found the lock taken and left


def test_worker_that_dies_while_starting_is_reported_with_its_log(home):
    failing = [sys.executable, "-c",
               "import sys; print('acestep-dcc worker: the acestep backend needs a model folder'); sys.exit(2)"]
    with pytest.raises(WorkerNotRunning, match="needs a model folder"):
        WorkerClient.connect(worker_command=failing, wait=30)


def test_a_worker_command_that_cannot_run_says_so(home):
    with pytest.raises(WorkerNotRunning, match="add-on preferences"):
        start_worker([str(home / "no-such-python"), "-m", "acestep_core.worker"])


def test_a_python_that_does_not_exist_is_said_as_such(home):
    missing = home / "no-such-env" / "bin" / "python"
    with pytest.raises(WorkerNotRunning) as raised:
        start_worker([str(missing), "-m", "acestep_core.worker"], setting="Worker Python",
                     fix="set Worker Python to /opt/env/bin/python")
    assert str(raised.value) == f"Worker Python {missing} does not exist; set Worker Python to /opt/env/bin/python"


def test_a_python_without_the_worker_packages_is_one_sentence_naming_it(home, bare_python):
    launch = start_worker([str(bare_python), "-m", "acestep_core.worker"], setting="Worker Python",
                          fix="set Worker Python to /opt/env/bin/python")
    assert launch.wait(30) != 0
    with pytest.raises(WorkerNotRunning) as raised:
        check_started(launch)
    message = str(raised.value)
    assert message.startswith(f"Worker Python {bare_python} lacks acestep-dcc's worker packages (it has no ")
    assert message.endswith("); set Worker Python to /opt/env/bin/python")
    assert not any(fragment in message for fragment in ("|", "Traceback", "Error", "import ")), message


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
    assert len(reads_us) >= 20  # how many depends on how fast the job runs
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


# -- StatusPoll: following a job with no thread, from a defer loop -----------------------------------


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def test_status_poll_never_waits_starts_no_thread_and_reports_done(worker: WorkerClient):
    job = worker.submit(GenerationRequest(prompt="long poll", duration=240.0, bpm=120.0, candidates=2))
    threads = set(threading.enumerate())  # a thread of an earlier test may still end, none may start
    poll = StatusPoll(worker, job.id)
    waiting_us, seen = [], []
    began = time.monotonic()
    while True:
        was_in_flight = poll.in_flight
        started = time.perf_counter()
        status = poll.poll()
        took_us = (time.perf_counter() - started) * 1e6
        if was_in_flight and poll.in_flight:  # a request out, its answer not yet here
            waiting_us.append(took_us)
        assert set(threading.enumerate()) <= threads, set(threading.enumerate()) - threads
        if status is not None and (not seen or seen[-1] is not status):
            seen.append(status)
        if status is not None and status.finished:
            break
        assert time.monotonic() - began < 60, "the job did not finish"
        # A host ticking far faster than REAPER's 30 Hz; while an answer is on its way it
        # ticks flat out, so every request is looked at in flight several times however
        # fast the worker answers.
        if not poll.in_flight:
            time.sleep(0.001)
    elapsed = time.monotonic() - began
    assert status.status == DONE and len(status.outputs) == 2
    assert any(s.status == "running" for s in seen), seen
    progress = [s.progress for s in seen]
    assert progress == sorted(progress) and len(seen) >= 3, progress
    # Once an answer is in, the next request waits for the interval, and goes on the same connection.
    assert poll.requests_sent <= elapsed / poll.interval + 2, (poll.requests_sent, elapsed)
    assert poll.connections_opened == 1
    # A poll while the answer is still on its way is a non-blocking recv: tens of
    # microseconds; the tail allows for a machine shared with other work.
    assert len(waiting_us) >= 5, waiting_us
    assert _quantile(waiting_us, 0.5) < 200.0, sorted(waiting_us)
    assert _quantile(waiting_us, 0.9) < 1000.0, sorted(waiting_us)
    # Finished: no more requests, the last answer stays.
    sent = poll.requests_sent
    time.sleep(poll.interval * 1.5)
    assert poll.poll() is status and poll.requests_sent == sent


def test_status_poll_reports_a_killed_worker_as_unreachable_within_two_seconds(spawn_worker):
    process = spawn_worker("sketch")
    job = process.client.submit(GenerationRequest(prompt="cut short", duration=600.0, bpm=120.0))
    poll = StatusPoll(process.client, job.id)
    while (status := poll.poll()) is None or status.status != "running":
        time.sleep(1 / 30)
    process.kill()
    killed = time.monotonic()
    with pytest.raises(WorkerUnreachable, match="is not answering: nothing is listening there") as raised:
        while time.monotonic() - killed < 5.0:
            poll.poll()
            time.sleep(1 / 30)  # REAPER's defer rate
    assert time.monotonic() - killed < 2.0
    with pytest.raises(WorkerUnreachable) as again:  # every later poll says the same
        poll.poll()
    assert again.value is raised.value


def test_status_poll_of_a_silent_worker_never_waits_and_times_out():
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = WorkerClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "token", timeout=0.3)
        poll = StatusPoll(client, "0" * 32)
        calls_ms = []
        began = time.monotonic()
        with pytest.raises(WorkerUnreachable, match="did not answer within 0.3 s"):
            while time.monotonic() - began < 5.0:
                started = time.perf_counter()
                try:
                    assert poll.poll() is None
                finally:
                    calls_ms.append((time.perf_counter() - started) * 1000.0)
                time.sleep(0.01)
        assert 0.3 <= time.monotonic() - began < 2.0  # the timeout, plus a loaded machine's scheduling
        # a blocking read would take the whole 300 ms; a loaded machine may add a few ms to one call
        assert len(calls_ms) > 10 and max(calls_ms) < 100.0, max(calls_ms)


def test_status_poll_takes_an_answer_in_pieces_and_keeps_the_connection_alive():
    """Played by hand from this thread: a worker that answers slowly, in two writes."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(5.0)
        client = WorkerClient(f"http://127.0.0.1:{server.getsockname()[1]}", "the-token")
        poll = StatusPoll(client, "job/1", interval=0.05)

        def answer(conn, progress: float, close: bool = False) -> None:
            request = _read_request(conn)
            assert request.startswith(b"GET /v1/jobs/job%2F1 HTTP/1.1\r\n")
            assert b"\r\nAuthorization: Bearer the-token\r\n" in request
            body = json.dumps({"id": "job/1", "status": "running", "progress": progress}).encode()
            head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    + ("connection: close\r\n" if close else "") + "\r\n").encode()
            conn.sendall(head + body[:10])
            known = poll.latest
            for _ in range(3):  # the rest has not come: the poll returns what it knew, without waiting
                assert poll.poll() is known and poll.in_flight
            conn.sendall(body[10:])

        assert poll.poll() is None  # connects and sends (or starts to)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5.0)
            poll.poll()  # finishes a pending connect and sends
            answer(conn, 0.25)
            assert _poll_until(poll, lambda s: s is not None).progress == 0.25
            time.sleep(poll.interval)
            poll.poll()  # the next request, on the same connection
            answer(conn, 0.5, close=True)
            assert _poll_until(poll, lambda s: s.progress == 0.5).status == "running"
        time.sleep(poll.interval)
        poll.poll()  # the worker closed it: a new connection
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5.0)
            poll.poll()
            answer(conn, 0.75)
            assert _poll_until(poll, lambda s: s.progress == 0.75).progress == 0.75
        assert poll.connections_opened == 2 and poll.requests_sent == 3
        poll.close()
        time.sleep(poll.interval)
        assert poll.poll().progress == 0.75 and poll.requests_sent == 3  # closed: nothing more is sent


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "the poll closed the connection"
        data += chunk
    return data


def _poll_until(poll: StatusPoll, condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = poll.poll()
        if status is not None and condition(status):
            return status
        time.sleep(0.001)
    raise AssertionError(f"no status like that within {timeout:g} s")


def test_status_poll_with_nothing_listening_or_an_unknown_job_says_so(worker: WorkerClient):
    nobody = StatusPoll(WorkerClient(f"http://127.0.0.1:{_free_port()}", "token"), "0" * 32)
    began = time.monotonic()
    with pytest.raises(WorkerUnreachable, match="nothing is listening"):
        _poll_until(nobody, lambda s: True)
    assert time.monotonic() - began < 1.0
    unknown = StatusPoll(worker, "0" * 32)
    with pytest.raises(JobNotFound, match="has no job 0000"):
        _poll_until(unknown, lambda s: True)
