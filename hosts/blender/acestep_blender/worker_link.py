"""The add-on's one connection to the worker: found, started without blocking, or remote.

Plain Python, no bpy: operators ask it to connect (one short probe, or a start that
returns at once), background threads wait on a start through it, and the panel shows
what it says (state, a summary of the worker, and the fix when there is none).
"""

from __future__ import annotations

import subprocess
import threading
import time

from acestep_core import client as worker_client
from acestep_core.errors import WorkerError, WorkerNotRunning

from . import vendored_core
from .preferences import AddonSettings

UNKNOWN, STARTING, CONNECTED, DOWN = "UNKNOWN", "STARTING", "CONNECTED", "DOWN"
# Calls made from Blender's UI thread give up quickly: a stuck worker must not freeze Blender.
UI_CALL_TIMEOUT = 1.0
START_POLL_INTERVAL = 0.1
MODEL_POLL_INTERVAL = 0.5  # how often health is asked while the worker loads its model
STOP_REAP_S = 30.0  # how long a stopped worker this link started is waited for
MODEL_LOADING, MODEL_LOADED, MODEL_FAILED = "loading", "loaded", "failed"  # health's model_state
START_FIX = (
    "Start one with 'acestep-dcc worker', or set Worker Python (or Worker Command) in the "
    "add-on preferences so Generate starts it"
)
REMOTE_FIX = "Check the URL and token in the add-on preferences, and that the worker there is running"
PREFERENCES_PLACE = "Edit > Preferences > Add-ons > ACE-Step Music"


class WorkerLink:
    def __init__(self) -> None:
        self.client: worker_client.WorkerClient | None = None
        self.launch: subprocess.Popen | None = None
        self.health: dict | None = None
        self.state = UNKNOWN
        self.summary = ""
        self.fix = ""
        self.reached_by: tuple = ()  # the preferences it was connected with
        self.start_fix = START_FIX  # what to change when the worker it starts fails
        self.started: subprocess.Popen | None = None  # the worker process this link started, if any
        self.packs: list[dict] | None = None  # the worker's style packs (GET /v1/packs); None: not asked yet

    # -- getting a client ----------------------------------------------------------------

    def connect(self, settings: AddonSettings, start: bool = True) -> None:
        """Find the worker (one probe), or start one and return at once (state STARTING).
        Never raises: a failure leaves state DOWN with the fix to show."""
        reached_by = (settings.connection, settings.remote_url.strip(), settings.remote_token.strip())
        if self.reached_by != reached_by:  # the preferences changed: drop the old worker
            self.__init__()
            self.reached_by = reached_by
        if self.state == STARTING:
            return
        if self.client is not None:
            if self.client.alive(UI_CALL_TIMEOUT):
                return
            # Gone since (idle exit, Stop worker, a crash): find or start another.
            self.client, self.health = None, None
        try:
            if settings.connection == "REMOTE":
                self._connect_remote(settings)
                return
            found = worker_client.find_worker(timeout=UI_CALL_TIMEOUT)
            if found is not None:
                self._connected(found)
                self.refresh_health()
            elif start:
                self.start_fix = _start_fix(settings)
                self.launch = worker_client.start_worker(settings.start_command(), setting=settings.start_setting(),
                                                         fix=worker_python_fix(settings))
                self.started = self.launch
                self.state, self.summary, self.fix = STARTING, "starting the worker...", ""
            else:
                self.down(worker_client.NOT_RUNNING_MESSAGE, START_FIX)
        except WorkerError as exc:
            self.down(str(exc), self.start_fix if settings.connection == "LOCAL" else REMOTE_FIX)

    def _connect_remote(self, settings: AddonSettings) -> None:
        if not settings.remote_url.strip():
            self.down("no worker URL is set for Another Computer", REMOTE_FIX)
            return
        self._connected(worker_client.WorkerClient(settings.remote_url.strip(), settings.remote_token.strip()))
        self.refresh_health()

    def poll_start(self) -> None:
        """One look at a worker being started; raises WorkerNotRunning if it died."""
        if self.launch is None:
            return
        try:
            found = worker_client.check_started(self.launch, timeout=UI_CALL_TIMEOUT)
        except WorkerNotRunning as exc:
            self.launch = None
            self.down(str(exc), self.start_fix)
            raise
        if found is not None:
            # Health first, then CONNECTED: the panel goes from "starting" straight to what
            # the worker says ("loading model"), never through a moment of knowing nothing.
            found.timeout = UI_CALL_TIMEOUT
            try:
                health = found.health()
            except WorkerError as exc:
                self.launch = None
                self.lost(exc)
                raise
            self.launch = None
            self._connected(found)
            self.health, self.summary = health, describe_health(health)

    def wait_until_started(self, should_stop) -> worker_client.WorkerClient | None:
        """On a background thread: block until a worker being started answers, then
        read its health. None when `should_stop()` turns true first; raises WorkerError
        when there is no worker to be had."""
        while self.state == STARTING:
            if should_stop():
                return None
            self.poll_start()
            if self.state == STARTING:
                time.sleep(START_POLL_INTERVAL)
        client = self.client
        if client is None:
            raise WorkerNotRunning(f"{self.summary or 'the worker is not connected'}; {self.fix or START_FIX}")
        if self.health is None:
            self.refresh_health()
        return client

    def watch_start(self) -> None:
        """Follow a start, then the model's loading, on a thread of its own (Connect
        pressed, nothing to generate), so the status line says when the model is ready."""
        def follow():
            try:
                self.wait_until_started(lambda: False)
                while self.model_loading:
                    time.sleep(MODEL_POLL_INTERVAL)
                    self.refresh_health()
            except WorkerError:
                pass  # the link says why and what to do
        threading.Thread(target=follow, name="acestep worker start", daemon=True).start()

    @property
    def model_loading(self) -> bool:
        """The worker says it is loading its model (--preload does at start)."""
        return self.client is not None and (self.health or {}).get("model_state") == MODEL_LOADING

    def refresh_health(self) -> None:
        """One health call: what the status line shows. Raises WorkerError."""
        if self.client is None:
            return
        try:
            self.health = self.client.health()
        except WorkerError as exc:
            self.lost(exc)
            raise
        self.state = CONNECTED
        self.summary = describe_health(self.health)
        self.fix = ""
        if self.packs is None:
            self.refresh_packs()

    def refresh_packs(self) -> None:
        """Read the worker's style packs; a worker without them (older, or the call fails) has none."""
        if self.client is None:
            self.packs = None
            return
        try:
            self.packs = self.client.packs()
        except WorkerError:
            self.packs = []

    def _connected(self, client: worker_client.WorkerClient) -> None:
        client.timeout = UI_CALL_TIMEOUT
        self.client, self.state, self.fix = client, CONNECTED, ""
        self.summary = "connected"

    # -- losing it -----------------------------------------------------------------------

    def lost(self, error: Exception) -> None:
        """The worker stopped answering: forget it, so the next Generate finds or starts one."""
        self.client = None
        self.health = None
        self.packs = None
        self.down(str(error), "Press Connect or Generate to find or start the worker again")

    def down(self, reason: str, fix: str) -> None:
        self.client = None
        self.state, self.summary, self.fix = DOWN, reason, fix

    def reset(self) -> None:
        self.__init__()

    def stop(self) -> str:
        """Ask the worker to exit now (whoever started it) and say what happened. The
        next Generate or Connect starts another. Never raises."""
        client = self.client or worker_client.find_worker(timeout=UI_CALL_TIMEOUT)
        if client is None:
            self.down("no worker is running", START_FIX)
            return "no worker is running, so there is nothing to stop"
        started, reached_by = self.started, self.reached_by
        try:
            client.shutdown()
        except WorkerError as exc:
            self.lost(exc)
            return f"the worker did not take the stop request ({exc})"
        self.__init__()
        self.reached_by = reached_by
        self.down("stopped, the model's memory is free", "Generate or Connect starts the worker again")
        if started is not None:  # reap it once it has exited, so no zombie is left behind
            threading.Thread(target=started.wait, args=(STOP_REAP_S,), name="acestep worker exit", daemon=True).start()
        return "the worker is stopping and frees the model's memory; Generate or Connect starts it again"

    # -- what the worker can do ----------------------------------------------------------

    def supports(self, task: str) -> bool:
        return task in ((self.health or {}).get("supports_tasks") or ())

    def default_steps(self) -> int | None:
        steps = ((self.health or {}).get("defaults") or {}).get("steps")
        return int(steps) if isinstance(steps, (int, float)) else None

    def model_label(self) -> str:
        return model_label((self.health or {}))


def worker_python_fix(settings: AddonSettings) -> str:
    """What to set Worker Python to: the Python 'acestep-dcc install blender' printed
    (recorded in the zip it built), when this machine has it."""
    python = vendored_core.installed_worker_python()
    if python is not None:
        fix = f"set Worker Python to {python}, the Python 'acestep-dcc install blender' printed"
    else:
        fix = ("set Worker Python to the Python 'acestep-dcc install blender' prints (the one in the "
               "environment where acestep-dcc's worker is installed)")
    return f"correct Worker Command, or clear it and {fix}" if settings.worker_command.strip() else fix


def _start_fix(settings: AddonSettings) -> str:
    """The line under a failed start: where the setting that started it is."""
    if settings.start_command() is None:
        return START_FIX
    field = "Worker Command" if settings.worker_command.strip() else "Worker Python"
    return f"Change {field} in {PREFERENCES_PLACE}, then press Connect"


def describe_health(health: dict) -> str:
    """'sketch (procedural, no ML model) on cpu, v0.1.0', or for a model
    '..., loading model' / 'model loaded' / 'model loads on the first job'."""
    label = health.get("label") or health.get("backend") or "unknown backend"
    parts = [f"{label} on {health.get('device') or 'unknown device'}"]
    if health.get("version"):
        parts.append(f"v{health['version']}")
    state = health.get("model_state") or (MODEL_LOADED if health.get("loaded") else None)
    if state == MODEL_LOADING:
        parts.append("loading model")
    elif state == MODEL_FAILED:
        parts.append(f"the model failed to load ({health.get('model_error') or 'see the worker log'})")
    elif health.get("backend") != "sketch":
        parts.append("model loaded" if state == MODEL_LOADED else "model loads on the first job")
    return ", ".join(parts)


def model_label(backend_info: dict) -> str:
    """The model a cue came from, as short as is still clear: an id, a folder name, or the backend."""
    model_id = backend_info.get("model_id")
    path = backend_info.get("model_path") or backend_info.get("model")
    if model_id:
        return str(model_id)
    if path:
        return str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return str(backend_info.get("name") or backend_info.get("backend") or "unknown")


link = WorkerLink()
