"""The host-side client of the local model worker. Standard library only.

Blender's and REAPER's Pythons import this; it never imports numpy, torch or
FastAPI. Every call has a short timeout, because hosts call it from their UI thread,
and every failure is a WorkerError subclass whose message says what to do.

Blocking use (scripts, tests, the CLI):

    client = WorkerClient.connect(worker_command=[python, "-m", "acestep_core.worker"])
    job = client.submit(GenerationRequest(prompt="tense boss battle, synthwave"))
    job = client.wait(job.id)

Non-blocking use from a UI thread (a timer or defer loop calls `tick` repeatedly):

    client = find_worker()                       # None: no worker answers yet
    if client is None and launch is None:
        launch = start_worker(command)           # returns at once, worker detached
    ...
    client = check_started(launch)               # None while it starts; raises if it died
    ...
    poll = StatusPoll(client, job.id)            # no thread: each tick drives it
    status = poll.poll()                         # each tick: never waits, microseconds

StatusPoll is for hosts whose Python must not rely on threads (REAPER runs Python
threads only while a script runs); JobWatcher, a thread that long-polls, suits hosts
that run add-on threads well (Blender).
"""

from __future__ import annotations

import dataclasses
import errno
import http.client
import importlib.util
import io
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from acestep_core.errors import (
    FieldProblem,
    JobNotFound,
    WorkerAuthFailed,
    WorkerError,
    WorkerNotRunning,
    WorkerRejected,
    WorkerUnreachable,
)
from acestep_core.jobs import JobStatus
# A set's limits, re-exported for host dialogs (request.py is the one definition).
from acestep_core.request import MAX_SET_INTENSITIES, MAX_SET_STINGERS, GenerationRequest  # noqa: F401
from acestep_core.worker import discovery

DEFAULT_TIMEOUT = 2.0
PROBE_TIMEOUT = 1.0  # find_worker runs on UI ticks: a hung worker must not freeze the host
MAX_WAIT_S = 10.0  # the worker holds a status request at most this long
TRANSFER_TIMEOUT = 60.0  # uploads and downloads move megabytes; this bounds each socket wait
WATCH_INTERVAL = 0.25  # how long a JobWatcher's request waits at the worker: progress this fresh
MIN_WATCH_INTERVAL = 0.05  # never a busy loop of requests
POLL_INTERVAL = 0.2  # a StatusPoll asks at most this often, however fast its host ticks
CA_FILE_ENV = "ACESTEP_DCC_CA_FILE"  # a cluster's own CA (PEM) for https urls; else the system's
EXIT_ALREADY_RUNNING = 2  # the worker's exit status when another one holds the lock (also 'cannot start')

NO_COMMAND_MESSAGE = (
    "the worker is not running and no worker command is configured: set it in the add-on "
    "preferences (the Python of the environment where acestep-dcc's worker is installed), "
    "or start one with 'acestep-dcc worker'"
)
NOT_RUNNING_MESSAGE = "no worker is running: start one with 'acestep-dcc worker', or let the add-on start it"
# Where a worker command comes from and how to mend it, unless the host says (start_worker).
DEFAULT_START_SETTING = "the worker program"
DEFAULT_START_FIX = "check the worker command in the add-on preferences"
WORKER_DEPENDENCIES = ("fastapi", "uvicorn", "numpy", "soundfile")


class WorkerClient:
    """One worker, addressed by url and token (both from its discovery file)."""

    def __init__(self, url: str, token: str, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not parsed.port:
            raise WorkerError(f"the worker url {url!r} is not like http://127.0.0.1:PORT (or https://HOST:PORT for "
                              "a cluster); reconnect to read it again")
        # https (a studio cluster): the system's CAs, or the cluster's own from ca_file / $ACESTEP_DCC_CA_FILE.
        self.tls: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            self.tls = ssl.create_default_context(cafile=ca_file or os.environ.get(CA_FILE_ENV) or None)
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.log_path = ""  # where the worker logs, when the discovery file says
        self._host = parsed.hostname
        self._port = parsed.port

    def __repr__(self) -> str:
        return f"WorkerClient({self.url!r})"

    # -- finding or starting a worker ------------------------------------------------

    @classmethod
    def connect(cls, *, start: bool = True, worker_command: list[str] | None = None, wait: float = 30.0,
                timeout: float = DEFAULT_TIMEOUT) -> "WorkerClient":
        """The running worker, or a new one started with worker_command (or the default
        command when this Python can run the worker). Blocks up to `wait` seconds while a
        worker starts; raises WorkerNotRunning with a sentence when none can be had."""
        client = find_worker(timeout=timeout)
        if client is not None:
            return client
        if not start:
            raise WorkerNotRunning(NOT_RUNNING_MESSAGE)
        launch = start_worker(worker_command)
        deadline = time.monotonic() + wait
        while True:
            client = check_started(launch, timeout=timeout)
            if client is not None:
                return client
            if time.monotonic() >= deadline:
                raise WorkerNotRunning(_why_no_worker(wait))
            time.sleep(0.05)

    # -- the API ----------------------------------------------------------------------

    def alive(self, timeout: float | None = None) -> bool:
        """True when the worker answers its liveness probe (no token needed)."""
        try:
            status, _, _ = self._call("GET", "/v1/alive", timeout=timeout or PROBE_TIMEOUT)
        except WorkerError:
            return False
        return status == 200

    def health(self) -> dict:
        """version, backend, label, model, device, loaded, queue_length, running_job, ..."""
        return self._json("GET", "/v1/health")

    def packs(self) -> list[dict]:
        """The installed style packs (GET /v1/packs), each with 'usable' and, if not, 'reason'."""
        return self._json("GET", "/v1/packs")["packs"]

    def submit(self, request: GenerationRequest | dict) -> JobStatus:
        """Queue a request; returns at once with the job's id and queue position.
        Raises WorkerRejected with .problems (field-by-field sentences) for a bad request."""
        payload = request.to_dict() if isinstance(request, GenerationRequest) else request
        return JobStatus.from_dict(self._json("POST", "/v1/jobs", payload))

    def refine(self, parent: str | os.PathLike, changes: dict | None = None, cover_strength: float | None = None,
               job: str | None = None) -> JobStatus:
        """Queue new candidates of the cue at `parent` (a file on this machine with its
        sidecar): its request and seed with `changes`, the lineage recorded (acestep_core.refine).
        With `cover_strength` (0-1) the parent is uploaded and covered. `job`: the job that
        made the parent, when known. Raises ParentUnreadable, InvalidRequest, WorkerRejected."""
        from acestep_core.refine import read_parent, refine_request

        cue = read_parent(parent, job)
        request = refine_request(cue, changes, cover_strength)  # the lineage names the parent's path
        if cover_strength is not None:  # the worker reads no client path: it covers the upload
            request = dataclasses.replace(request, source_audio=self.upload(cue.path))
        return self.submit(request)

    def submit_set(self, request: GenerationRequest | dict, intensities: int | None = None,
                   bars: int | str | None = 16, stingers: int = 2, *, variants: int | None = None) -> JobStatus:
        """Queue a dynamic-music set as one job: a base loop of `bars` bars (None or "fit":
        the whole bars nearest request.duration), then `intensities` layers (stems of the
        base that stack, sparsest first; 3 when neither count is given) or `variants` loops
        at rising intensity (to switch between), and `stingers` short cues, all in one tempo
        and key. Returns at once. When done, job.outputs are the cues in that order
        (output.set_role says which: "layer" or "intensity"), job.manifest the set's
        manifest, job.artifacts the manifest and Godot resources; every file is fetched with
        download(job.id, n). Raises WorkerRejected with .problems for bad values."""
        payload: dict = {"request": request.to_dict() if isinstance(request, GenerationRequest) else request}
        if variants is not None:
            payload["variants"] = variants
            if intensities is not None:
                payload["intensities"] = intensities  # refused by the worker, with a sentence
        else:
            payload["intensities"] = 3 if intensities is None else intensities
        payload.update({"bars": "fit" if bars is None else bars, "stingers": stingers})
        return JobStatus.from_dict(self._json("POST", "/v1/sets", payload))

    def status(self, job_id: str, wait: float = 0.0) -> JobStatus:
        """The job's status now; with wait > 0 (at most 10 s) the worker holds the answer
        until the job finishes or `wait` passes (long polling: not for UI threads)."""
        if wait <= 0:
            return JobStatus.from_dict(self._json("GET", f"/v1/jobs/{_quote(job_id)}"))
        wait = min(wait, MAX_WAIT_S)
        return JobStatus.from_dict(self._json("GET", f"/v1/jobs/{_quote(job_id)}?wait={wait:g}",
                                              timeout=wait + self.timeout))

    def cancel(self, job_id: str) -> JobStatus:
        """A queued job is cancelled at once; a running one stops at its next step
        (its status says 'cancelling' until then)."""
        return JobStatus.from_dict(self._json("DELETE", f"/v1/jobs/{_quote(job_id)}"))

    def jobs(self, limit: int = 20) -> list[JobStatus]:
        """History, newest first."""
        data = self._json("GET", f"/v1/jobs?limit={int(limit)}")
        return [JobStatus.from_dict(job) for job in data["jobs"]]

    def upload(self, path: str | os.PathLike) -> str:
        """Send a source audio file to the worker; returns the id to put in
        request.source_audio (the worker reads no path a client names)."""
        path = Path(path)
        try:
            size = path.stat().st_size
            handle = open(path, "rb")
        except OSError as exc:
            raise WorkerError(f"cannot read the source audio {path}: {exc.strerror}; choose another file") from None
        with handle:
            query = urllib.parse.urlencode({"name": path.name})
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            status, _, body = self._call("POST", f"/v1/uploads?{query}", handle, headers,
                                         timeout=max(self.timeout, TRANSFER_TIMEOUT))
        return self._decode(status, body)["id"]

    def download(self, job_id: str, index: int, dest: str | os.PathLike) -> Path:
        """Fetch file `index` (0-based: an output's or an artifact's index) of a done job. `dest` is a folder (the
        worker's file name is kept) or a file path. Written atomically; returns the path."""
        return self._fetch(f"/v1/jobs/{_quote(job_id)}/files/{int(index)}", Path(dest), f"{job_id}-{index}.wav",
                           job_id)

    def _fetch(self, path: str, dest: Path, fallback_name: str, job_id: str | None = None) -> Path:
        """GET `path` into `dest` (a folder: the served file name is kept), atomically."""
        conn = self._connection(max(self.timeout, TRANSFER_TIMEOUT))
        try:
            response = self._send(conn, "GET", path)
            if response.status != 200:
                self._decode(response.status, response.read(), job_id)
            target = dest / _served_file_name(response, fallback_name) if dest.is_dir() else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                with open(temp, "wb") as out:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                os.replace(temp, target)
            except (OSError, http.client.HTTPException) as exc:
                temp.unlink(missing_ok=True)
                if isinstance(exc, OSError) and not isinstance(exc, (socket.timeout, ConnectionError)):
                    raise WorkerError(f"cannot write {target}: {exc.strerror or exc}; choose another folder") from None
                raise self._unreachable(exc, conn.timeout) from None
            return target
        finally:
            conn.close()

    def download_outputs(self, job_id: str, folder: str | os.PathLike) -> list[dict[str, Any]]:
        """Fetch every cue of a done job with its stems into `folder` (the worker's file
        names kept), each mix with its sidecar (`x.wav.json`, the job's record of it, so
        acestep_core.stems can split the file later). One dict per output, in order:
        {"index", "path", "stems": {track: path}, "output": the CueOutput}."""
        job = self.status(job_id)
        if job.status != "done":
            raise WorkerError(f"job {job_id} is {job.status}; its files can be fetched once it is done")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fetched = []
        for output in job.outputs:
            mix = self.download(job_id, output.index, folder)
            if output.metadata:
                sidecar = mix.with_name(mix.name + ".json")
                temp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.partial")
                temp.write_text(json.dumps(output.metadata, indent=2) + "\n", encoding="utf-8")
                os.replace(temp, sidecar)
            stems = {stem["track"]: self.download(job_id, stem["index"], folder) for stem in output.stem_files}
            fetched.append({"index": output.index, "path": mix, "stems": stems, "output": output})
        return fetched

    def submit_with_files(self, request: GenerationRequest) -> JobStatus:
        """submit() for a request whose source_audio / reference_audio are local files
        (repaint, cover, extract, lego, complete, a reference): uploads them first."""
        changes = {name: self.upload(value) for name in ("source_audio", "reference_audio")
                   if isinstance(value := getattr(request, name), str) and not value.startswith("upload-")}
        return self.submit(dataclasses.replace(request, **changes) if changes else request)

    def submit_split(self, audio_path: str | os.PathLike, tracks: list[str] | str | None = None) -> JobStatus:
        """Queue a split of a file into stems: the sketch renders a file it made again with
        its parts; any other file is extracted track by track (acestep base/sft). The request
        is acestep_core.stems.split_request's; raises InvalidRequest when the file cannot be split."""
        from acestep_core.stems import split_request

        return self.submit_with_files(split_request(audio_path, tracks))

    def library_search(self, query: "LibraryQuery | None" = None, **fields: Any) -> "list[LibraryCue]":
        """Search the worker's cue library: a LibraryQuery, or its fields as keywords
        (text="boss", bpm_min=140, bpm_max=160, key="E minor", loop=True, ...).
        Raises WorkerRejected with .problems for a bad value."""
        from acestep_core.library import LibraryCue, LibraryQuery

        query = query or LibraryQuery(**fields)
        data = self._json("GET", "/v1/library?" + urllib.parse.urlencode(query.to_params()))
        return [LibraryCue.from_dict(cue) for cue in data["cues"]]

    def library_download(self, cue_id: int, dest: str | os.PathLike) -> tuple[Path, Path | None]:
        """Fetch a library cue's audio file to `dest` (a file path) and its sidecar beside
        it (`dest.json`; None when the worker has none), for a worker on another machine."""
        audio = self._fetch(f"/v1/library/{int(cue_id)}/file", Path(dest), f"library-{int(cue_id)}.wav")
        sidecar = Path(str(audio) + ".json")
        try:
            self._fetch(f"/v1/library/{int(cue_id)}/sidecar", sidecar, sidecar.name)
        except WorkerRejected as exc:
            if exc.status_code != 410:
                raise
            return audio, None
        return audio, sidecar

    # -- additions for hosts, scripts and tests ------------------------------------------

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.5,
             on_status: Callable[[JobStatus], None] | None = None) -> JobStatus:
        """Block until the job finishes (scripts and tests, not UI threads). The worker
        answers the moment it finishes; on_status sees the job at least every `poll` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            window = poll if deadline is None else min(poll, max(deadline - time.monotonic(), 0.0))
            job = self.status(job_id, wait=window)
            if on_status is not None:
                on_status(job)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WorkerError(f"job {job_id} is still {job.status} ({job.stage}) after {timeout:g} s")

    def shutdown(self) -> None:
        """Ask the worker to stop cleanly (a running job is recorded as interrupted)."""
        self._json("POST", "/v1/shutdown")

    # -- HTTP ----------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        # http.client rather than urllib: no proxy settings can reroute 127.0.0.1.
        if self.tls is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout or self.timeout, context=self.tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout or self.timeout)

    def _send(self, conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        all_headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", **(headers or {})}
        try:
            try:
                conn.request(method, path, body=body, headers=all_headers)
            except (BrokenPipeError, ConnectionResetError):
                # The worker may refuse a large body early (413) and close while we send:
                # its answer is still there to read.
                if conn.sock is None:
                    raise
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc, conn.timeout) from None

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = self._connection(timeout)
        try:
            response = self._send(conn, method, path, body, headers)
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc, conn.timeout) from None
            return response.status, response.headers, data
        finally:
            conn.close()

    def _json(self, method: str, path: str, payload: Any = None, timeout: float | None = None) -> Any:
        body = headers = None
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
            headers = {"Content-Type": "application/json"}
        elif method == "POST":
            body, headers = b"", {"Content-Length": "0"}
        status, _, data = self._call(method, path, body, headers, timeout)
        job_id = path.split("?")[0].split("/")[3] if path.startswith("/v1/jobs/") else None
        return self._decode(status, data, job_id)

    def _decode(self, status: int, data: bytes, job_id: str | None = None) -> Any:
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"detail": data[:200].decode("utf-8", "replace")}
        if 200 <= status < 300:
            return decoded
        detail = decoded.get("detail") if isinstance(decoded, dict) else None
        detail = str(detail or f"HTTP {status}")
        if status == 401:
            raise WorkerAuthFailed(
                "the worker refused our token: it has restarted since we connected, or the token is wrong; "
                "reconnect (the discovery file has the current token)")
        if status == 404 and job_id is not None and "no job" in detail:
            raise JobNotFound(f"the worker has no job {urllib.parse.unquote(job_id)}; it may come from another "
                              "worker folder, or its history was cleared")
        if 400 <= status < 500:
            problems = [FieldProblem(str(p.get("field", "")), str(p.get("message", "")))
                        for p in (decoded.get("problems") or []) if isinstance(p, dict)]
            raise WorkerRejected(detail, status, problems)
        raise WorkerError(f"the worker failed ({status}): {detail}{self._log_hint()}")

    def _unreachable(self, exc: BaseException, timeout: float | None = None) -> WorkerUnreachable:
        if isinstance(exc, ConnectionRefusedError):
            reason = "nothing is listening there: it has stopped or crashed; reconnect to start a new one"
        elif isinstance(exc, (socket.timeout, TimeoutError)):
            reason = f"it did not answer within {timeout or self.timeout:g} s (stuck, or the machine is overloaded)"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            reason = (f"its certificate is not trusted ({exc.verify_message}); give the cluster's CA file in "
                      f"${CA_FILE_ENV}, or use its name as the certificate says")
        else:
            reason = f"the connection failed ({type(exc).__name__}: {exc}); it may have crashed, reconnect"
        return WorkerUnreachable(f"the worker at {self.url} is not answering: {reason}{self._log_hint()}")

    def _log_hint(self) -> str:
        return f"; its log is at {self.log_path}" if self.log_path else ""


# -- following a job without blocking ----------------------------------------------------


class JobWatcher:
    """Follows one job from a background thread, so a host's UI tick never waits on the
    network: the thread asks the worker (long polling: each request waits up to
    `interval` at the worker and returns the moment the job ends) and keeps the newest
    answer; latest() only reads it.

    The thread does HTTP and nothing else: it never calls bpy or REAPER, whose APIs
    belong to their main threads. It ends by itself once the job is finished, when the
    worker cannot be reached, or after stop(); it is a daemon, so it never holds up a
    host that quits.
    """

    def __init__(self, client: WorkerClient, job_id: str, interval: float = WATCH_INTERVAL):
        self.client = client
        self.job_id = job_id
        self.interval = min(max(interval, MIN_WATCH_INTERVAL), MAX_WAIT_S)
        self._lock = threading.Lock()
        self._status: JobStatus | None = None
        self._error: WorkerError | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"acestep-job-watcher-{job_id[:8]}", daemon=True)
        self._thread.start()

    def latest(self) -> JobStatus | None:
        """The newest status (None until the worker first answers). Raises the WorkerError
        that ended the watching: WorkerUnreachable when the worker stopped or crashed,
        JobNotFound when it has no such job."""
        with self._lock:
            if self._error is not None:
                raise self._error
            return self._status

    @property
    def watching(self) -> bool:
        """True while the thread still asks the worker."""
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end; it does after the request in flight (at most `interval`
        plus the client's timeout). Waits up to `timeout` seconds for it; by default not at
        all, so a UI thread can call this."""
        self._stopped.set()
        if timeout:
            self._thread.join(timeout)

    def _watch(self) -> None:
        wait = 0.0  # the first answer at once, so a host shows the queue place without delay
        while not self._stopped.is_set():
            try:
                status = self.client.status(self.job_id, wait=wait)
            except WorkerError as error:
                self._keep(error=error)
                return
            except Exception as error:  # a bug here must reach the host, not die with the thread
                self._keep(error=WorkerError(f"watching job {self.job_id} failed ({type(error).__name__}: {error}); "
                                             "this is a bug in acestep-dcc, please report it"))
                return
            if self._stopped.is_set():
                return
            self._keep(status=status)
            if status.finished:
                return
            wait = self.interval

    def _keep(self, status: JobStatus | None = None, error: WorkerError | None = None) -> None:
        with self._lock:
            if status is not None:
                self._status = status
            self._error = error


class StatusPoll:
    """Follows one job without a thread and without ever waiting: each poll() takes one
    non-blocking step and returns the newest status (None until the worker first answers).

    For defer and timer loops in hosts whose Python must not depend on threads (REAPER
    runs a script's threads only while its own code runs). A call with no request in
    flight, once `interval` has passed since the last one, sends GET /v1/jobs/{id} (a
    plain status request, no long polling) on a keep-alive connection; later calls take
    whatever part of the answer has arrived, and the one that completes it updates the
    status. Nothing waits: the socket is non-blocking from connect() on, so a call costs
    a few system calls (tens of microseconds).

    poll() raises the client's errors: WorkerUnreachable when nothing listens, the
    connection breaks (a killed worker) or no answer comes within the client's timeout,
    JobNotFound, WorkerAuthFailed. Once raised, the same error is raised by every later
    call. Once the job is finished, poll() only returns the final status.

    A worker url with a host name (not an address) is resolved once, on the first poll,
    and that may block; the worker's discovery file always names 127.0.0.1.
    """

    def __init__(self, client: WorkerClient, job_id: str, interval: float = POLL_INTERVAL):
        self.client = client
        self.job_id = job_id
        self.interval = max(interval, MIN_WATCH_INTERVAL)
        self.requests_sent = 0
        self.connections_opened = 0
        self.closed = False
        self._status: JobStatus | None = None
        self._error: WorkerError | None = None
        self._address: tuple | None = None
        self._sock: socket.socket | None = None
        self._connected = False  # False while a non-blocking connect is still under way
        self._reused = False  # the request in flight went on a connection an earlier answer used
        self._outgoing = b""  # the part of the request not yet sent
        self._incoming = bytearray()
        self._in_flight = False
        self._sent_at = 0.0
        self._next_at = 0.0
        netloc = urllib.parse.urlsplit(client.url).netloc
        self._request = (f"GET /v1/jobs/{_quote(job_id)} HTTP/1.1\r\nHost: {netloc}\r\n"
                         f"Authorization: Bearer {client.token}\r\nAccept: application/json\r\n"
                         "Connection: keep-alive\r\n\r\n").encode("latin-1")

    def __repr__(self) -> str:
        return f"StatusPoll({self.client.url!r}, {self.job_id!r})"

    @property
    def latest(self) -> JobStatus | None:
        """The newest status, without any network step."""
        return self._status

    @property
    def in_flight(self) -> bool:
        """True while a request waits for its answer."""
        return self._in_flight

    def poll(self) -> JobStatus | None:
        """One non-blocking step; the newest status. Raises the error that ended the polling."""
        if self._error is not None:
            raise self._error
        if self.closed or (self._status is not None and self._status.finished):
            return self._status
        try:
            self._step()
            return self._status
        except WorkerError as error:
            self._error = error
        except (OSError, http.client.HTTPException) as exc:
            self._error = self.client._unreachable(exc)
        except Exception as exc:  # a bug here must reach the host as a sentence, not a traceback
            self._error = WorkerError(f"polling job {self.job_id} failed ({type(exc).__name__}: {exc}); "
                                      "this is a bug in acestep-dcc, please report it")
        self._drop()
        self._in_flight = False
        raise self._error

    def close(self) -> None:
        """Drop the connection and send nothing more; poll() then returns the last status."""
        self.closed = True
        self._drop()

    def __enter__(self) -> "StatusPoll":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the steps ---------------------------------------------------------------------------

    def _step(self) -> None:
        now = time.monotonic()
        if self._in_flight:
            if (not self._connected and not self._finish_connect()) or not self._handshake():
                self._check_deadline(now)
                return
            if self._outgoing and not self._send():
                self._check_deadline(now)
                return
            answer = self._receive()
            if answer is None:
                self._check_deadline(now)
                return
            self._take(*answer)
            now = time.monotonic()
        if not self._in_flight and now >= self._next_at and not (self._status and self._status.finished):
            self._start_request(now)

    def _start_request(self, now: float) -> None:
        if self._sock is not None and not self._idle_connection_usable():
            self._drop()
        self._reused = self._sock is not None
        if self._sock is None:
            self._open()
        self._outgoing = self._request
        self._incoming.clear()
        self._in_flight = True
        self._sent_at = now
        self._next_at = now + self.interval
        self.requests_sent += 1
        if self._connected and self._handshake():
            self._send()

    def _open(self) -> None:
        if self._address is None:
            family, kind, proto, _, address = socket.getaddrinfo(self.client._host, self.client._port,
                                                                 type=socket.SOCK_STREAM)[0]
            self._address = (family, kind, proto, address)
        family, kind, proto, address = self._address
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the request goes out whole, at once
        except OSError:
            pass
        self._sock = sock
        self.connections_opened += 1
        code = sock.connect_ex(address)
        if code == 0:
            self._connected = True
        elif code in _CONNECT_PENDING:
            self._connected = False
        else:
            raise OSError(code, os.strerror(code))  # OSError picks the subclass: ConnectionRefusedError

    def _handshake(self) -> bool:
        """https only: the TLS handshake, one non-blocking step at a time; True once done."""
        if self.client.tls is None:
            return True
        if not isinstance(self._sock, ssl.SSLSocket):
            self._sock = self.client.tls.wrap_socket(self._sock, server_hostname=self.client._host,
                                                     do_handshake_on_connect=False)
        try:
            self._sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        return True

    def _finish_connect(self) -> bool:
        _, writable, failed = select.select([], [self._sock], [self._sock], 0)  # Windows reports failures in the third list
        if not writable and not failed:
            return False
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
        self._connected = True
        return True

    def _send(self) -> bool:
        try:
            # An SSLSocket takes no flags (and raises no SIGPIPE).
            sent = self._sock.send(self._outgoing, 0 if self.client.tls else _SEND_FLAGS)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except (BrokenPipeError, ConnectionResetError):
            if self._retry_on_new_connection():
                return False
            raise
        self._outgoing = self._outgoing[sent:]
        return not self._outgoing

    def _receive(self) -> tuple[int, bytes, bool] | None:
        """The answer once all of it has arrived: (status, body, whether the worker closes)."""
        eof = False
        while True:
            try:
                chunk = self._sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except ConnectionResetError:
                if self._retry_on_new_connection():
                    return None
                raise
            if not chunk:
                eof = True
                break
            self._incoming += chunk
        if eof and not self._incoming and self._retry_on_new_connection():
            return None  # the worker had closed the kept-alive connection: ask again on a new one
        return _parse_answer(bytes(self._incoming), eof)

    def _retry_on_new_connection(self) -> bool:
        """A kept-alive connection can be closed by the worker just as we reuse it: send
        once more on a new one. A new connection that fails means the worker is gone."""
        if not self._reused:
            return False
        self._drop()
        self._reused = False
        self._open()
        self._outgoing = self._request
        self._incoming.clear()
        if self._connected and self._handshake():
            self._send()
        return True

    def _take(self, status: int, body: bytes, will_close: bool) -> None:
        self._in_flight = False
        if will_close:
            self._drop()
        self._status = JobStatus.from_dict(self.client._decode(status, body, _quote(self.job_id)))
        if self._status.finished:
            self._drop()

    def _idle_connection_usable(self) -> bool:
        """False when the worker closed the idle kept-alive connection (or sent something unasked)."""
        try:
            return not self._sock.recv(1)  # any byte, or the end, means this connection is done
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except OSError:
            return False

    def _check_deadline(self, now: float) -> None:
        if now - self._sent_at > self.client.timeout:
            raise socket.timeout("timed out")

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._connected = False
        self._outgoing = b""


_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)  # Linux: a closed connection is an error, not a SIGPIPE to the host
_CONNECT_PENDING = {code for code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY,
                                      getattr(errno, "WSAEWOULDBLOCK", None)) if code is not None}


class _Received:
    """Bytes already read from a socket, in the shape http.client's parser reads from."""

    def __init__(self, data: bytes):
        self._data = data

    def makefile(self, mode: str):
        return io.BytesIO(self._data)


def _parse_answer(data: bytes, eof: bool) -> tuple[int, bytes, bool] | None:
    """(status, body, will_close) when `data` holds a whole HTTP answer; None while more
    is to come. http.client parses it, from memory, so a partial answer never blocks."""
    if b"\r\n\r\n" not in data:
        if eof:
            raise http.client.RemoteDisconnected("the worker closed the connection without answering")
        return None
    response = http.client.HTTPResponse(_Received(data), method="GET")
    response.begin()
    if response.length is None and not response.chunked and not eof:
        return None  # the body runs until the worker closes the connection
    try:
        body = response.read()
    except http.client.IncompleteRead:
        if eof:
            raise
        return None
    return response.status, body, response.will_close or eof


# -- finding and starting workers without blocking --------------------------------------


def find_worker(state_dir: str | os.PathLike | None = None, timeout: float = PROBE_TIMEOUT) -> WorkerClient | None:
    """The worker named by the discovery file when its process is alive and it answers;
    None when there is none (or only a stale file). Takes at most `timeout` seconds."""
    info = discovery.read_discovery(state_dir)
    if info is None or not discovery.pid_alive(info.pid):
        return None
    try:
        client = WorkerClient(info.url, info.token, timeout=max(timeout, DEFAULT_TIMEOUT))
    except WorkerError:
        return None
    client.log_path = info.log_path
    return client if client.alive(timeout) else None


def default_worker_command() -> list[str] | None:
    """[this Python, -m, acestep_core.worker] when this Python has the worker's
    dependencies; None inside Blender or REAPER, whose Pythons do not."""
    if all(importlib.util.find_spec(name) is not None for name in WORKER_DEPENDENCIES):
        return worker_command_for_python(sys.executable)
    return None


def worker_command_for_python(python: str | os.PathLike) -> list[str]:
    """The command that runs the worker with a given Python (a host preference)."""
    return [str(python), "-m", "acestep_core.worker"]


def start_worker(worker_command: list[str] | None = None, *, setting: str = DEFAULT_START_SETTING,
                 fix: str = DEFAULT_START_FIX) -> subprocess.Popen:
    """Start a worker detached from this process and return at once (safe on a UI thread).

    Its output goes to the worker log in the state folder. The child gets this
    acestep_core on its PYTHONPATH, so a worker environment without acestep-dcc
    installed still runs the same version as the host (when this copy of the core is
    complete: an installed host-side subset is left out). A second worker started while
    one runs exits by itself (the lock); check_started then finds the running one.

    `setting` names where the host got the command's program ("Worker Python") and
    `fix` says what to set it to: a program that does not exist, or a Python without
    the worker's packages (check_started), is then said in one sentence with them.
    """
    command = list(worker_command or default_worker_command() or [])
    if not command:
        raise WorkerNotRunning(NO_COMMAND_MESSAGE)
    program = command[0]
    if (os.sep in program or (os.altsep and os.altsep in program)) and not os.path.exists(program):
        raise WorkerNotRunning(f"{setting} {program} does not exist; {fix}")
    state = discovery.make_private_folder(discovery.state_folder())
    log_file = discovery.log_path()
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)  # a host's own Python home would break the worker's Python
    package_root = Path(__file__).resolve().parent.parent
    # Only a complete core may go first: REAPER's lib/ holds just the host-side modules,
    # and putting that copy first would hide the worker's own acestep_core from it.
    if (package_root / "acestep_core" / "worker" / "serve.py").is_file():
        env["PYTHONPATH"] = os.pathsep.join([str(package_root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    options: dict[str, Any] = {}
    if sys.platform == "win32":
        options["creationflags"] = (subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
                                    | subprocess.CREATE_NO_WINDOW)
    else:
        options["start_new_session"] = True  # the worker outlives the host and its Ctrl+C
    with open(log_file, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=state, env=env, close_fds=True, **options)
        except OSError as exc:
            reason = "it does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
            raise WorkerNotRunning(f"cannot start the worker with {setting} {program}: {reason}; {fix}") from None
    process.log_path = str(log_file)  # type: ignore[attr-defined]
    process.start_setting, process.start_fix = setting, fix  # type: ignore[attr-defined]
    return process


def check_started(process: subprocess.Popen, timeout: float = PROBE_TIMEOUT) -> WorkerClient | None:
    """One non-blocking look at a worker start_worker began: the client once a worker
    answers, None while it is still starting. Raises WorkerNotRunning with the end of
    its log when it exited without a worker to show for it."""
    client = find_worker(timeout=timeout)
    if client is not None:
        return client
    code = process.poll()
    if code is None or code == 0 or (code == EXIT_ALREADY_RUNNING and _lock_held_by_another_worker()):
        # Still starting; or a wrapper that exited 0 after forking; or it lost the race
        # to another worker that is about to write its discovery file.
        return None
    log_file = getattr(process, "log_path", str(discovery.log_path()))
    missing = _missing_module(Path(log_file))
    if missing is not None:
        setting = getattr(process, "start_setting", DEFAULT_START_SETTING)
        fix = getattr(process, "start_fix", DEFAULT_START_FIX)
        raise WorkerNotRunning(f"{setting} {_program(process)} lacks acestep-dcc's worker packages "
                               f"(it has no {missing}); {fix}")
    raise WorkerNotRunning(f"the worker stopped while starting (exit status {code}): {_log_tail(Path(log_file))}; "
                           f"full log at {log_file}")


def _program(process: subprocess.Popen) -> str:
    args = process.args
    return str(args[0] if isinstance(args, (list, tuple)) and args else args)


def _missing_module(log_file: Path) -> str | None:
    """The module a worker that just died could not import, from its part of the log."""
    match = None
    for match in re.finditer(r"No module named '?([\w.]+)'?", _last_start_output(log_file)):
        pass
    return match.group(1).split(".")[0] if match else None


def _last_start_output(log_file: Path) -> str:
    """What the log holds since the last "--- ... starting:" line start_worker wrote."""
    try:
        with open(log_file, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16384))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    marker = text.rfind("\n--- ")
    return text[marker:] if marker >= 0 else text


def _lock_held_by_another_worker() -> bool:
    """Status 2 also means 'cannot start'; a held lock tells 'lost the race' apart."""
    lock = discovery.WorkerLock(discovery.state_folder() / discovery.LOCK_FILE)
    if lock.acquire():
        lock.release()
        return False
    return True


def _why_no_worker(waited: float) -> str:
    info = discovery.read_discovery()
    if info is not None and discovery.pid_alive(info.pid):
        # It holds the lock (so ours could not start) but does not answer its probe.
        return (f"a worker is running (pid {info.pid}, {info.url}) but does not answer; end that process "
                f"and try again (its log is at {info.log_path or discovery.log_path()})")
    return f"the worker did not start within {waited:g} s; see its log at {discovery.log_path()}"


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return "no log"
    kept = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("---")]
    return " | ".join(kept[-lines:]) or "the log is empty"


def _quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _served_file_name(response: http.client.HTTPResponse, fallback: str) -> str:
    """The worker's name for the file, reduced to a bare safe name (never a path)."""
    header = response.getheader("Content-Disposition") or ""
    match = re.search(r"filename\*=utf-8''([^;]+)", header, re.IGNORECASE) or re.search(r'filename="?([^";]+)"?', header)
    name = urllib.parse.unquote(match.group(1)) if match else ""
    name = re.split(r"[\\/]", name)[-1].lstrip(".")
    name = re.sub(r"[^A-Za-z0-9 _\-.()]", "_", name)[:120]
    return name or fallback
