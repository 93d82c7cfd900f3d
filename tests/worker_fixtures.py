"""Real worker processes for tests: a subprocess on 127.0.0.1, spoken to over real HTTP.

Loaded from tests/conftest.py with `pytest_plugins = ["worker_fixtures"]`, so the
worker, Blender and REAPER tests all share them:

- `worker` / `worker_process`: one sketch-backend worker per test module.
- `acestep_worker` / `acestep_worker_process`: the same on the tiny ACE-Step checkpoint.
- `spawn_worker`: a factory for tests that need their own worker (kill -9, restart,
  small upload limit, idle unload); every worker it starts is stopped afterwards.

Each worker lives in its own temporary ACESTEP_DCC_HOME. The module fixtures also
point ACESTEP_DCC_HOME at it while the module runs, so code under test that calls
`WorkerClient.connect()` or `find_worker()` finds that worker (when one module uses
both module workers, the one set up last wins).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from acestep_core.client import WorkerClient
from acestep_core.worker.discovery import read_discovery

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0  # the acestep backend imports torch at start
# The Python that runs test workers: this one, or ACESTEP_TEST_WORKER_PYTHON (the bpy 5.2
# tests run on Python 3.13, which has no torch here, and start their workers with .venv's).
WORKER_PYTHON = os.environ.get("ACESTEP_TEST_WORKER_PYTHON") or sys.executable


class WorkerProcess:
    """One real worker subprocess in its own home folder; can be killed and restarted."""

    def __init__(self, home: Path, backend: str = "sketch", model: Path | None = None, args: tuple[str, ...] = ()):
        self.home = Path(home)
        self.backend = backend
        self.model = model
        self.args = tuple(args)
        self.process: subprocess.Popen | None = None
        self.client: WorkerClient | None = None

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def data_dir(self) -> Path:
        return self.home / "worker"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def log_file(self) -> Path:
        return self.home / "worker-test.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        command = [WORKER_PYTHON, "-m", "acestep_core.worker", "--backend", self.backend]
        if self.model is not None:
            command += ["--model", str(self.model)]
        return command + list(self.args)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ACESTEP_DCC_HOME"] = str(self.home)
        env.pop("ACESTEP_DCC_MODEL", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = START_TIMEOUT) -> WorkerClient:
        """Start the worker and wait until its discovery file names it and it answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=self.env(),
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = read_discovery(self.state_dir)
            if info is not None and info.pid == self.process.pid:
                client = WorkerClient(info.url, info.token)
                client.log_path = info.log_path
                if client.alive():
                    self.client = client
                    return client
            if self.process.poll() is not None:
                raise RuntimeError(f"the test worker exited with {self.process.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the test worker did not start within {timeout:g} s:\n{self.log_text()}")

    def kill(self) -> None:
        """kill -9: no cleanup runs in the worker."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """A clean stop (SIGTERM, as a service manager or Ctrl+C would); kill -9 if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def restart(self) -> WorkerClient:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@pytest.fixture
def spawn_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., WorkerProcess]]:
    """spawn(backend="sketch", model=None, *args, home=None, start=True) -> WorkerProcess."""
    started: list[WorkerProcess] = []

    def spawn(backend: str = "sketch", model: Path | None = None, *args: str, home: Path | None = None,
              start: bool = True) -> WorkerProcess:
        process = WorkerProcess(home or tmp_path_factory.mktemp("worker-home"), backend, model, args)
        started.append(process)
        if start:
            process.start()
        return process

    yield spawn
    for process in started:
        process.stop(timeout=10)


def _module_worker(tmp_path_factory: pytest.TempPathFactory, backend: str, model: Path | None) -> Iterator[WorkerProcess]:
    process = WorkerProcess(tmp_path_factory.mktemp(f"{backend}-worker-home"), backend, model)
    process.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(process.home))
        yield process
    process.stop(timeout=10)


@pytest.fixture(scope="module")
def worker_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A sketch-backend worker shared by the tests of one module."""
    yield from _module_worker(tmp_path_factory, "sketch", None)


@pytest.fixture(scope="module")
def worker(worker_process: WorkerProcess) -> WorkerClient:
    """A connected client of the module's sketch-backend worker."""
    assert worker_process.client is not None
    return worker_process.client


@pytest.fixture(scope="module")
def acestep_worker_process(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[WorkerProcess]:
    """A worker on the tiny random ACE-Step checkpoint, shared by the tests of one module."""
    yield from _module_worker(tmp_path_factory, "acestep", tiny_checkpoint)


@pytest.fixture(scope="module")
def acestep_worker(acestep_worker_process: WorkerProcess) -> WorkerClient:
    """A connected client of the module's tiny-checkpoint worker."""
    assert acestep_worker_process.client is not None
    return acestep_worker_process.client


def raw_request(client: WorkerClient, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, token: str | None = "client") -> tuple[int, dict, bytes]:
    """One real HTTP request to a worker, bypassing the client's own checks (for tests of
    what the worker does with bad input). token="client" sends the client's token,
    None sends no Authorization header, any other string sends that token."""
    import http.client
    import json
    import urllib.parse

    parsed = urllib.parse.urlsplit(client.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {client.token if token == 'client' else token}"
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        decoded = json.loads(data) if data and response.getheader("content-type", "").startswith("application/json") else {}
    except ValueError:
        decoded = {}
    return response.status, decoded, data
