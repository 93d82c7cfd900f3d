"""Starting and stopping the worker: lock, backend, store, runner, HTTP server, discovery file.

Order matters. The lock comes first (a second worker exits before touching
anything); the socket is bound before the discovery file is written, and the file is
written only once the server accepts connections, so a host that reads it can
connect at once. On a clean exit (Ctrl+C, SIGTERM, POST /v1/shutdown, --idle-exit)
the running job is recorded as interrupted, the discovery file removed and the locks
released.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import uvicorn

from acestep_core import __version__, config
from acestep_core.backends import create_backend
from acestep_core.errors import AceStepError
from acestep_core.worker.app import FinishSignal, WorkerContext, create_app
from acestep_core.worker.discovery import (
    LOCK_FILE,
    LOG_FILE,
    WorkerInfo,
    WorkerLock,
    make_private_folder,
    read_discovery,
    remove_discovery,
    write_discovery,
)
from acestep_core.worker.retention import Retention, RetentionPolicy
from acestep_core.worker.limits import DEFAULT_MAX_QUEUE, DEFAULT_MAX_UPLOAD_BYTES
from acestep_core.worker.runner import JobRunner
from acestep_core.worker.store import JobStore, StorageProblem, storage_problem_from_os_error
from acestep_core.worker.tokens import TOKENS_FILE, TokenBook
from acestep_core.worker.uploads import UploadFolder

log = logging.getLogger("acestep_core.worker")

EXIT_OK = 0
# The CLI's status for every expected failure (README): "already running" is one of them.
EXIT_ALREADY_RUNNING = 2
EXIT_CANNOT_START = 2
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_data_dir() -> Path:
    """Job database, outputs and uploads."""
    return config.worker_data_dir()


def run_worker(host: str = "127.0.0.1", port: int = 0, model: str | os.PathLike | None = None,
               backend: str = "auto", idle_unload_minutes: float | None = None,
               state_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None, *,
               device: str | None = None, max_upload_bytes: int | None = None,
               preload: bool = False, idle_exit_minutes: float | None = None,
               max_queue: int = DEFAULT_MAX_QUEUE, retention: RetentionPolicy | None = None) -> int:
    """Run the worker until it is stopped; returns the process exit status.

    0 after a clean stop (also after --idle-exit); 2 when it cannot start: another worker
    already holds this state folder, an unknown backend, no model, the port taken.
    Messages go to stderr.
    """
    state = make_private_folder(Path(state_dir) if state_dir is not None else config.state_dir())
    _configure_logging(state / LOG_FILE)
    data = make_private_folder(Path(data_dir) if data_dir is not None else default_data_dir())
    if host not in LOCAL_HOSTS:
        print(f"acestep-dcc worker: warning: listening on {host}, not only this machine; anyone who can reach "
              f"it and has the token (in {state / 'worker.json'}) can use the worker", file=sys.stderr)

    state_lock = WorkerLock(state / LOCK_FILE)
    if not state_lock.acquire():
        running = read_discovery(state)
        where = f" at {running.url} (pid {running.pid})" if running else ""
        print(f"acestep-dcc worker: a worker is already running for {state}{where}; use it, or stop it first",
              file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    # Two state folders must not share one job database either.
    data_lock = WorkerLock(data / LOCK_FILE)
    if not data_lock.acquire():
        state_lock.release()
        print(f"acestep-dcc worker: another worker is using the data folder {data}; give this one its own",
              file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    options = _Options(idle_unload_minutes, idle_exit_minutes, max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES,
                       preload, max_queue, retention or RetentionPolicy())
    try:
        return _serve(host, port, model, backend, device, state, data, options)
    except StorageProblem as exc:  # the data folder cannot even be opened (full, read-only)
        print(f"acestep-dcc worker: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    finally:
        data_lock.release()
        state_lock.release()


class _Options:
    def __init__(self, idle_unload_minutes, idle_exit_minutes, max_upload_bytes, preload, max_queue, retention):
        self.idle_unload_seconds = idle_unload_minutes * 60.0 if idle_unload_minutes else None
        self.idle_exit_seconds = idle_exit_minutes * 60.0 if idle_exit_minutes else None
        self.max_upload_bytes = max_upload_bytes
        self.preload = preload
        self.max_queue = max_queue
        self.retention: RetentionPolicy = retention


def _serve(host, port, model, backend_name, device, state: Path, data: Path, options: _Options) -> int:
    try:
        backend = create_backend(backend_name, model, device)
    except AceStepError as exc:
        print(f"acestep-dcc worker: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"acestep-dcc worker: cannot listen on {host}:{port} ({exc.strerror}); "
              "choose another --port or leave it at 0 for a free one", file=sys.stderr)
        return EXIT_CANNOT_START

    try:
        outputs_dir = make_private_folder(data / "outputs")
    except OSError as exc:
        raise storage_problem_from_os_error(exc, data) from None
    store = JobStore(data / "jobs.sqlite3")
    runner_box: list[JobRunner] = []  # the uploads ask the runner which uploads are in use
    uploads = UploadFolder(data / "uploads", store, options.max_upload_bytes,
                           max_total_bytes=options.retention.max_uploads_bytes,
                           in_use=lambda: runner_box[0].uploads_in_use() if runner_box else set())
    retention = Retention(options.retention, outputs_dir, uploads)
    finish_signal = FinishSignal()
    runner = JobRunner(store, backend, outputs_dir, resolve_upload=uploads.path_for,
                       idle_unload_seconds=options.idle_unload_seconds, on_finished=finish_signal.notify,
                       max_queue=options.max_queue, prune=retention.prune)
    runner_box.append(runner)
    token = secrets.token_urlsafe(32)  # fresh on every start: an old discovery file is useless
    url = _url(host, sock.getsockname()[1])
    log_file = str(state / LOG_FILE)
    info = WorkerInfo(url=url, token=token, pid=os.getpid(), version=__version__,
                      started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      log_path=log_file)

    context = WorkerContext(runner=runner, uploads=uploads, backend=backend, token=token,
                            outputs_dir=outputs_dir, log_path=log_file,
                            supported_tasks=tuple(backend.describe().supports_tasks),
                            supports_reference=backend.describe().supports_reference, finish_signal=finish_signal,
                            user_tokens=TokenBook(state / TOKENS_FILE))
    app = create_app(context)
    server = WorkerServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                          http="h11", loop="asyncio", timeout_graceful_shutdown=5),
                           on_started=lambda: write_discovery(info, state))
    context.request_shutdown = server.request_exit
    server.on_exit = finish_signal.close  # held status requests answer at once on the way out
    if options.idle_exit_seconds is not None:
        server.should_idle_exit = lambda: _idle_long_enough(context, runner, options.idle_exit_seconds)

    runner.start()
    if runner.interrupted_on_start:
        log.warning("marked %d job(s) interrupted by the last stop", len(runner.interrupted_on_start))
    if options.preload:
        runner.preload()  # in the runner thread: the server answers at once, model_state "loading"
    log.info("worker %s serving %s with the %s backend", __version__, url, backend.name)
    try:
        server.run(sockets=[sock])
    finally:
        remove_discovery(os.getpid(), state)
        if runner.stop():
            store.close()
        else:  # the runner thread still holds the store; the process exit closes it
            log.warning("the running job did not stop in time; it will show as interrupted")
        sock.close()
    log.info("worker stopped")
    return EXIT_OK


def _idle_long_enough(context: WorkerContext, runner: JobRunner, idle_exit_seconds: float) -> bool:
    """No request for idle_exit_seconds, and no job queued or running (or ended) meanwhile."""
    quiet_for = min(time.monotonic() - context.last_request, runner.idle_for())
    if quiet_for < idle_exit_seconds:
        return False
    log.info("no request and no job for %.0f s (--idle-exit): stopping", quiet_for)
    return True


class WorkerServer(uvicorn.Server):
    """uvicorn's Server, made to write the discovery file once it accepts connections, to
    stop through run_worker's cleanup instead of re-raising the signal it caught, and to
    stop by itself when should_idle_exit says so (checked once a second)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]):
        super().__init__(config)
        self.on_started = on_started
        self.on_exit: Callable[[], None] = lambda: None
        self.should_idle_exit: Callable[[], bool] = lambda: False

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self.on_started()

    async def on_tick(self, counter: int) -> bool:
        # uvicorn ticks every 0.1 s.
        if counter % 10 == 0 and not self.should_exit and self.should_idle_exit():
            self.request_exit()
        return await super().on_tick(counter)

    def handle_exit(self, sig, frame):
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl+C stops without waiting for connections
        self.request_exit()

    def request_exit(self) -> None:
        self.should_exit = True
        self.on_exit()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET
    try:
        if ipaddress.ip_address(host).version == 6:
            family = socket.AF_INET6
    except ValueError:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    if sys.platform != "win32":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def _url(host: str, port: int) -> str:
    # A worker bound to every address is still reached on this machine through 127.0.0.1.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _configure_logging(log_file: Path) -> None:
    """Log to stderr, and to the state folder's worker.log unless stderr already is that
    file (a worker that start_worker spawned), so the discovery file's log_path is true."""
    root = logging.getLogger()
    if root.handlers:
        return
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if not _is_same_file(sys.stderr, log_file):
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def _is_same_file(stream, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, AttributeError, ValueError):
        return False
