"""pytest fixtures for the REAPER stand-in (load with pytest_plugins = ["reaper_standin.fixtures"]).

- `reaper_standin`: a fresh in-memory REAPER and its `reaper_python` module, installed
  nowhere; call RPR_* on `.rpr` directly.
- `reaper_inside`: "inside REAPER" in this process: `reaper_python` importable,
  `__main__` holding RPR_* and `obj`, and a fresh python-reapy imported in its inside
  mode (`.reapy`). Scripts run with `.run_script(path)`, deferred code with `.pump()`.
  Everything swapped in is put back afterwards.
- `reaper_process` (session): a REAPER stand-in process booted from a resource folder
  that reapy's own configure functions wrote (web interface on a free port, the
  activate_reapy_server action), running reapy's real server loop.
- `reapy_distant`: this process's python-reapy in its normal (outside) mode, connected
  over TCP to `reaper_process`, with a fresh project each test.

Each fixture fails the test if the stand-in saw a call real REAPER would crash on or
a dialog the test did not answer (StandInFault).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

from . import control, start_reaper

PACKAGE = __package__
# the sys.path entry that makes PACKAGE importable (tests/ or the repository root)
IMPORT_ROOT = Path(__file__).resolve().parents[len(PACKAGE.split("."))]
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_faults(found: list[str]) -> None:
    if found:
        pytest.fail("the REAPER stand-in saw calls REAPER would not survive or dialogs nobody answered:\n" + "\n".join(found))


# -- in memory ---------------------------------------------------------------------------------


class StandIn:
    """A REAPER in memory: `.app` (model), `.rpr` (its reaper_python module)."""

    def __init__(self, resource_path: Path, record_path: Path | None = None):
        resource_path.mkdir(parents=True, exist_ok=True)
        self.app, self.rpr = start_reaper(str(resource_path), str(record_path) if record_path else None)

    @property
    def user(self):
        return self.app.user

    def snapshot(self) -> dict[str, Any]:
        previous, control.APP = control.APP, self.app
        try:
            return control.snapshot()
        finally:
            control.APP = previous


@pytest.fixture
def reaper_standin(tmp_path: Path) -> StandIn:
    standin = StandIn(tmp_path / "REAPER", tmp_path / "REAPER Media")
    yield standin
    _check_faults([f"{type(e).__name__}: {e}" for e in standin.app.faults])


# -- inside mode, in this process -------------------------------------------------------------

SWAPPED_PACKAGES = ("reapy", "acestep_reaper", "reaper_python")


def _swapped(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in SWAPPED_PACKAGES)


class InsideReaper(StandIn):
    """This process made into REAPER's Python, for the length of one test."""

    def __init__(self, resource_path: Path, record_path: Path, extra_paths: list[str]):
        super().__init__(resource_path, record_path)
        self.main = self.app.scripts.main
        self._extra_paths = extra_paths
        self._saved_modules: dict[str, Any] = {}
        self._saved_main = None
        self._saved_path: list[str] = []
        self._saved_control = None
        self.reapy = None

    def __enter__(self) -> "InsideReaper":
        self._saved_path = list(sys.path)
        self._saved_modules = {n: m for n, m in sys.modules.items() if _swapped(n)}
        for name in self._saved_modules:
            del sys.modules[name]
        self._saved_main = sys.modules["__main__"]
        sys.modules["reaper_python"] = self.rpr
        sys.modules["__main__"] = self.main
        sys.path[:0] = [p for p in self._extra_paths if p not in sys.path]
        self._saved_control, control.APP = control.APP, self.app
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.reapy = importlib.import_module("reapy")
        assert self.reapy.is_inside_reaper()
        return self

    def __exit__(self, *exc) -> None:
        self.app.scripts.shutdown()
        for name in [n for n in sys.modules if _swapped(n)]:
            del sys.modules[name]
        sys.modules.update(self._saved_modules)
        sys.modules["__main__"] = self._saved_main
        sys.path[:] = self._saved_path
        control.APP = self._saved_control

    def import_module(self, name: str):
        """Import `name` fresh, as REAPER's Python would (it sees reaper_python)."""
        return importlib.import_module(name)

    def run_script(self, path: str | os.PathLike):
        """Run a ReaScript file as REAPER does when its action is run."""
        return self.app.scripts.run_file(str(path))

    def run_action(self, command: str | int) -> bool:
        return control.run_action(command)

    def pump(self, cycles: int = 1) -> None:
        for _ in range(cycles):
            self.app.scripts.cycle()

    def run_until_idle(self, max_cycles: int = 1000) -> int:
        return self.app.scripts.run_until_idle(max_cycles)

    def answer_inputs(self, values: list[str] | Callable | None) -> None:
        self.app.user.answer_inputs(values)

    def answer_message_box(self, button: int) -> None:
        self.app.user.answer_message_box(button)

    def answer_task_control(self, choice: str) -> None:
        self.app.scripts.answer_task_control(choice)

    def open_saved_project(self, file_path: str | os.PathLike, record_path: str = "") -> None:
        previous, control.APP = control.APP, self.app
        try:
            control.open_saved_project(str(file_path), record_path)
        finally:
            control.APP = previous


@pytest.fixture
def reaper_inside(tmp_path: Path) -> InsideReaper:
    inside = InsideReaper(tmp_path / "REAPER", tmp_path / "REAPER Media", [str(REPO_ROOT / "hosts" / "reaper"), str(REPO_ROOT)])
    with inside:
        yield inside
    _check_faults([f"{type(e).__name__}: {e}" for e in inside.app.faults])


# -- a REAPER process and reapy's distant API ---------------------------------------------------


def _outside_reapy():
    """This process's python-reapy in its outside mode (warns once that no REAPER answers
    on its default port, which is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import reapy
    assert not reapy.is_inside_reaper()
    return reapy


class ReaperProcess:
    """REAPER (the stand-in) in its own process, configured the way reapy configures a
    real REAPER for its distant API."""

    def __init__(self, root: Path, interval: float = 0.002):
        self.root = root
        self.resource_path = root / "REAPER"
        self.record_path = root / "REAPER Media"
        self.log_path = root / "reaper-standin.log"
        self.interval = interval
        self.web_port = free_port()
        self.server_port = free_port()
        self.process: subprocess.Popen | None = None

    def configure(self) -> None:
        """reapy.config.configure_reaper's steps, minus the Python library lookup (REAPER
        is not going to load one): a web interface and the activate_reapy_server action."""
        reapy = _outside_reapy()
        self.resource_path.mkdir(parents=True, exist_ok=True)
        ini = self.resource_path / "reaper.ini"
        if not ini.exists():  # a fresh REAPER writes its main section on first start
            ini.write_text("[REAPER]\nlastproject=\n")
        config = reapy.config.config
        config.add_web_interface(str(self.resource_path), self.web_port)
        action = config.add_reascript(str(self.resource_path), config.get_activate_reapy_server_path())
        config.set_ext_state("reapy", "activate_reapy_server", action, str(self.resource_path))

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"{PACKAGE}.host", "--resource", str(self.resource_path),
                "--record-path", str(self.record_path), "--reapy-server-port", str(self.server_port),
                "--interval", str(self.interval)]

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, env=env, cwd=str(self.root))
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the REAPER stand-in did not start: {line!r}\n{self.log_path.read_text()}")
        self.info = json.loads(line[len("READY "):])

    def connect(self):
        """Point this process's reapy at the stand-in's web interface and connect; returns
        the reapy module."""
        from reapy.tools.network import machines

        reapy = _outside_reapy()
        client = machines.get_selected_client()
        if client is not None and client.port == self.server_port:
            return reapy
        reapy.config.WEB_INTERFACE_PORT = self.web_port
        reapy.reconnect()
        if not reapy.dist_api_is_enabled():
            raise RuntimeError(f"reapy could not reach the stand-in on port {self.web_port}\n{self.log_path.read_text()}")
        return reapy

    def call(self, function: Callable, *args, **kwargs):
        """Run `function` inside the REAPER process through reapy's own channel."""
        from reapy.tools.network import machines

        return machines.get_selected_client().request(function, {"args": args, "kwargs": kwargs})

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._log.close()
        self.process = None


@pytest.fixture(scope="session")
def reaper_process(tmp_path_factory: pytest.TempPathFactory) -> ReaperProcess:
    process = ReaperProcess(tmp_path_factory.mktemp("reaper-standin"))
    process.configure()
    process.start()
    process.connect()
    yield process
    process.stop()


class DistantReaper:
    """python-reapy outside REAPER, connected to the stand-in process."""

    def __init__(self, process: ReaperProcess, reapy):
        self.process = process
        self.reapy = reapy

    def call(self, function: Callable, *args, **kwargs):
        return self.process.call(function, *args, **kwargs)

    def snapshot(self) -> dict[str, Any]:
        return self.call(control.snapshot)

    def answer_inputs(self, values: list[str] | None) -> None:
        self.call(control.answer_inputs, values)

    def answer_message_box(self, button: int) -> None:
        self.call(control.answer_message_box, button)

    def answer_task_control(self, choice: str) -> None:
        self.call(control.answer_task_control, choice)

    def run_action(self, command: str | int) -> bool:
        return self.call(control.run_action, command)

    def open_saved_project(self, file_path: str | os.PathLike, record_path: str = "") -> None:
        self.call(control.open_saved_project, str(file_path), record_path)

    def faults(self) -> list[str]:
        return self.call(control.faults)


@pytest.fixture
def reapy_distant(reaper_process: ReaperProcess) -> DistantReaper:
    reapy = reaper_process.connect()
    reaper_process.call(control.reset)
    distant = DistantReaper(reaper_process, reapy)
    yield distant
    _check_faults(distant.faults())
