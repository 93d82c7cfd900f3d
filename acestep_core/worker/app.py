"""The worker's HTTP API (FastAPI). See the worker protocol in DESIGN.md.

Every route but the liveness probe needs `Authorization: Bearer <token>`. Request
bodies are read as raw JSON and validated by GenerationRequest.from_dict, the one
definition of the rules; the OpenAPI schema describes the same dataclass so tools
and fuzzers see the real fields. Every error is JSON: {"detail": sentence,
"problems": [{"field", "message"}]}.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from acestep_core import __version__
from acestep_core.backends.base import Backend
from acestep_core.errors import FieldProblem, InvalidRequest
from acestep_core.dynamic_sets import MAX_INTENSITIES, MAX_STINGERS
from acestep_core.jobs import DONE, MODEL_STATES, CueOutput, JobStatus
from acestep_core.library import (DEFAULT_LIMIT as LIBRARY_LIMIT, MAX_BPM_FILTER, MAX_DURATION_FILTER,
                                  MAX_LIMIT as MAX_LIBRARY_LIMIT, MAX_TEXT_CHARS, CueLibrary, LibraryCue, LibraryQuery,
                                  LibraryUnavailable)
from acestep_core.request import (
    BIT_DEPTHS, FILE_NAME_PATTERN, KEY_PATTERN, LOOP_TASKS, LOUDNESS_PRESETS, MAX_BPM, MAX_CANDIDATES, MAX_DURATION_S,
    MAX_GUIDANCE, MAX_LOOP_BARS, MAX_INTRO_BARS, MAX_LOUDNESS_LUFS, MAX_LYRICS_CHARS, MAX_PROMPT_CHARS, MAX_SEED, MAX_SHIFT, MAX_STEPS,
    MAX_TRUE_PEAK_DB, MIN_BPM, MIN_DURATION_S, MIN_LOUDNESS_LUFS, MIN_TRUE_PEAK_DB, OUTPUT_FORMATS, SAMPLE_RATES, TASKS,
    REFERENCE_TASKS, TIME_SIGNATURES, TRACK_NAMES, TRACK_TASKS, GenerationRequest,
)
from acestep_core.worker.runner import JOB_ID_PATTERN, JobRunner, QueueFull
from acestep_core.worker.sets import DEFAULT_BARS, DEFAULT_INTENSITIES, DEFAULT_STINGERS, FIT, parse_set_body
from acestep_core.worker.store import StorageProblem
from acestep_core.worker.tokens import TokenBook
from acestep_core.worker.uploads import UPLOAD_ID_PATTERN, NotAudio, UploadFolder, UploadTooLarge

log = logging.getLogger("acestep_core.worker")

ALIVE_PATH = "/v1/alive"
REQUESTED_BY = "acestep_requested_by"  # the request state key the guard fills with the user's name
UPLOADS_PATH = "/v1/uploads"
DEFAULT_MAX_BODY_BYTES = 256 * 1024  # a request is at most ~10 k characters of prompt and lyrics
MAX_HISTORY = 1000
MAX_WAIT_S = 10.0  # longest a status request may be held open for a job to finish
STORAGE_RETRY_AFTER_S = 10  # a locked database or an I/O error may pass: try again this soon
MAX_SQLITE_INTEGER = 2**63 - 1  # a library cue's id is an SQLite rowid


class FinishSignal:
    """Wakes status requests that wait for a job to finish (long polling), so a script
    learns of the end at once without polling fast. notify() is called from the
    runner thread; waiters live on the server's event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future] = set()
        self.closing = False

    def register(self) -> asyncio.Future:
        self._loop = asyncio.get_running_loop()
        future = self._loop.create_future()
        self._waiters.add(future)
        return future

    def discard(self, future: asyncio.Future) -> None:
        self._waiters.discard(future)

    def notify(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed in between: nobody is waiting
                pass

    def close(self) -> None:
        """Release every waiter now (the server is stopping)."""
        self.closing = True
        self.notify()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for future in waiters:
            if not future.done():
                future.set_result(None)


@dataclass
class WorkerContext:
    """Everything the routes need, built once by run_worker."""

    runner: JobRunner
    uploads: UploadFolder
    backend: Backend
    token: str
    outputs_dir: Path
    log_path: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_shutdown: Callable[[], None] = lambda: None
    started: float = field(default_factory=time.monotonic)
    supported_tasks: tuple[str, ...] = ()
    supports_reference: bool = False  # whether the backend follows reference_audio
    finish_signal: FinishSignal = field(default_factory=FinishSignal)
    # When a client last talked to the worker (monotonic): --idle-exit counts from here.
    last_request: float = field(default_factory=time.monotonic)
    # Per-user tokens (acestep-dcc tokens add NAME), accepted besides `token`.
    user_tokens: TokenBook | None = None


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, problems: list[FieldProblem] | None = None,
                 headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.detail = detail
        self.problems = list(problems or [])
        self.headers = headers
        super().__init__(detail)


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    # allow_nan: a metadata value must never turn a status poll into a 500.
    body = json.dumps(data, allow_nan=True, separators=(",", ":")).encode()
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def error_body(detail: str, problems: list[FieldProblem] | None = None) -> dict:
    return {"detail": detail, "problems": [p.to_dict() for p in problems or []]}


# -- middleware: token and size caps before any route runs -----------------------------


class GuardMiddleware:
    """Pure ASGI, so the check costs microseconds on every poll and covers unknown paths
    too (no route list leaks to a caller without the token)."""

    def __init__(self, app, context: WorkerContext):
        self.app = app
        self.context = context
        self.expected = f"Bearer {context.token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == ALIVE_PATH:
            self.context.last_request = time.monotonic()
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        # compare_digest: the time taken says nothing about how much of the token matched.
        sent = headers.get(b"authorization", b"")
        user = "" if hmac.compare_digest(sent, self.expected) else self._user(sent)  # "": the discovery token
        if user is None:
            return await _send_error(send, 401, (
                "the worker needs its token: send 'Authorization: Bearer <token>' with the token "
                "from the worker's discovery file (reconnect to read it again), or a user token from "
                "'acestep-dcc tokens add NAME' (a revoked one no longer works)"), {"www-authenticate": "Bearer"})
        scope.setdefault("state", {})[REQUESTED_BY] = user or None
        self.context.last_request = time.monotonic()
        limit = self.context.uploads.max_bytes if scope["path"] == UPLOADS_PATH else self.context.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _send_error(send, 413, _too_large_message(scope["path"], limit))
        return await self.app(scope, receive, send)

    def _user(self, sent: bytes) -> str | None:
        """The name of the user a per-user token belongs to; None when it is no one's."""
        book = self.context.user_tokens
        if book is None or not sent.startswith(b"Bearer "):
            return None
        return book.user_for(sent[len(b"Bearer "):].decode("latin-1")) or None


async def _send_error(send, status_code: int, detail: str, extra_headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_large_message(path: str, limit: int) -> str:
    if path == UPLOADS_PATH:
        return UploadTooLarge(limit).args[0]
    return f"the request body is larger than {limit // 1024} KB; a generation request is a small JSON object"


# -- the app --------------------------------------------------------------------------


def create_app(context: WorkerContext) -> FastAPI:
    app = FastAPI(title="acestep-dcc worker", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.add_middleware(GuardMiddleware, context=context)
    _add_error_handlers(app, context)
    runner, uploads = context.runner, context.uploads

    @app.get(ALIVE_PATH, summary="Liveness probe (no token needed, says nothing else)")
    async def alive() -> Response:
        return json_response({"alive": True})

    @app.get("/v1/health", summary="Version, backend, model, device, model state, queue length",
             description=("model_state is unloaded, loading, loaded or failed (model_error then says why); "
                          "a worker started with --preload answers at once with loading."),
             responses=_responses(200, "Health"))
    async def health() -> Response:
        info = context.backend.describe()
        model_state, model_error = runner.model_state()
        return json_response({
            "version": __version__,
            "backend": info.name,
            "label": info.label,
            "model": info.model_path,
            "model_id": info.model_id,
            "device": info.device,
            "dtype": info.dtype,
            "loaded": context.backend.loaded,
            "model_state": model_state,
            "model_error": model_error,
            "defaults": info.defaults,
            "supports_tasks": list(info.supports_tasks),
            "supports_reference": info.supports_reference,
            "supports_stems": info.supports_stems or "extract" in info.supports_tasks,
            "queue_length": runner.queue_length,
            "max_queue": runner.max_queue,
            "running_job": runner.running_job_id,
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - context.started, 1),
            "max_upload_bytes": uploads.max_bytes,
            "log_path": context.log_path,
        })

    @app.post("/v1/jobs", status_code=202, summary="Queue a generation request; returns its id and place at once",
              openapi_extra=_body_schema("GenerationRequest"),
              responses=_responses(202, "JobStatus", 400, 413, 422, 429, 503, 507))
    async def submit_job(request: Request) -> Response:
        body = await _read_capped(request, context.max_body_bytes)
        data = _parse_json(body)
        generation = _validate_request(data)
        problems = []
        if generation.source_audio is not None and uploads.path_for(generation.source_audio) is None:
            problems.append(FieldProblem("source_audio", (
                f"source_audio must be the id of an upload to this worker (upload-...), got "
                f"{generation.source_audio!r}; the worker reads no file paths: upload the audio first")))
        if generation.reference_audio is not None and not context.supports_reference:
            problems.append(FieldProblem("reference_audio", (
                f"the {context.backend.name} backend cannot follow a reference clip; leave reference_audio empty "
                "(null), or start the worker with an ACE-Step model")))
        elif generation.reference_audio is not None and uploads.path_for(generation.reference_audio) is None:
            problems.append(FieldProblem("reference_audio", (
                f"reference_audio must be the id of an upload to this worker (upload-...), got "
                f"{generation.reference_audio!r}; the worker reads no file paths: upload the clip first")))
        if context.supported_tasks and generation.task not in context.supported_tasks:
            problems.append(FieldProblem("task", (
                f"the {context.backend.name} backend cannot do {generation.task}; it does "
                f"{', '.join(context.supported_tasks)} (start the worker with an ACE-Step model for more)")))
        from acestep_core.packs.worker import style_problems

        problems += style_problems(generation, context.backend)  # an unknown pack or one for another model
        if problems:
            raise ApiError(422, _problems_sentence(problems), problems)
        status = runner.submit(generation, requested_by=_requested_by(request))
        return json_response(status.to_dict(), 202)

    @app.post("/v1/sets", status_code=202,
              summary="Queue a dynamic-music set (base loop, layers or variants, stingers, manifest) as one job",
              description=("Runs in the same queue as other jobs. intensities: layers (stems that stack, role "
                           "\"layer\"); variants: loops to switch between (role \"intensity\"). When done, the "
                           "job's outputs are the cues in order (base, levels, stingers; metadata.set says each "
                           "one's role) and its artifacts the manifest and the Godot resources; all are fetched "
                           "with GET /v1/jobs/{id}/files/{n}."),
              openapi_extra=_body_schema("SetRequest"),
              responses=_responses(202, "JobStatus", 400, 413, 422, 429, 503, 507))
    async def submit_set(request: Request) -> Response:
        body = await _read_capped(request, context.max_body_bytes)
        data = _parse_json(body)
        try:
            generation, options = parse_set_body(data)
        except InvalidRequest as exc:
            raise ApiError(422, _problems_sentence(exc.problems), exc.problems) from None
        except (OverflowError, ValueError, TypeError, RecursionError) as exc:
            message = f"a value in the request is out of range ({exc}); use ordinary numbers"
            raise ApiError(422, message, [FieldProblem("request", message)]) from None
        from acestep_core.packs.worker import style_problems

        problems = style_problems(generation, context.backend)
        if problems:
            raise ApiError(422, _problems_sentence(problems), problems)
        return json_response(runner.submit(generation, options, requested_by=_requested_by(request)).to_dict(), 202)

    @app.get("/v1/jobs", summary="Job history, newest first", responses=_responses(200, "JobList", 422, 503))
    async def list_jobs(limit: int = Query(20, ge=1, le=MAX_HISTORY)) -> Response:
        return json_response({"jobs": [job.to_dict() for job in runner.recent(limit)]})

    @app.get("/v1/jobs/{job_id}", summary="Status, progress, stage, time left and outputs",
             description="With wait=S the answer is held up to S seconds until the job finishes (long polling).",
             responses=_responses(200, "JobStatus", 404, 422, 503))
    async def job_status(job_id: str, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S)) -> Response:
        if wait <= 0:
            return json_response(_known_job(runner, job_id).to_dict())
        signal = context.finish_signal
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            # Register before looking, so a finish in between still wakes us.
            future = signal.register()
            job = _known_job(runner, job_id)
            remaining = deadline - loop.time()
            if job.finished or remaining <= 0 or signal.closing:
                signal.discard(future)
                return json_response(job.to_dict())
            try:
                await asyncio.wait_for(future, remaining)
            except asyncio.TimeoutError:
                pass

    @app.delete("/v1/jobs/{job_id}", summary="Cancel: a queued job never runs, a running one stops at its next step",
                responses=_responses(200, "JobStatus", 404, 422, 503, 507))
    async def cancel_job(job_id: str) -> Response:
        _known_job(runner, job_id)
        return json_response(runner.cancel(job_id).to_dict())

    @app.get("/v1/jobs/{job_id}/files/{index}", summary="One output file of a finished job",
             responses=_file_responses())
    async def job_file(job_id: str, index: int) -> Response:
        job = _known_job(runner, job_id)
        if job.status != DONE:
            raise ApiError(409, f"job {job_id} is {job.status}; its files can be fetched once it is done")
        files = {o.index: o.path for o in job.outputs} | {a.index: a.path for a in job.artifacts}
        files |= {stem["index"]: stems_path for o in job.outputs for stem in o.stem_files
                  if (stems_path := o.stems.get(stem["track"]))}
        if index not in files:
            raise ApiError(404, f"job {job_id} has {len(files)} file(s), numbered from 0; there is no file {index}")
        path = _inside(Path(files[index]), context.outputs_dir)
        if path is None or not path.is_file():
            raise ApiError(410, f"file {index} of job {job_id} is no longer in the worker's output folder; generate it again")
        return FileResponse(path, media_type=_media_type(path), filename=path.name)

    @app.get("/v1/library", summary="Search the cue library: every cue this worker or the CLI made, and added folders",
             description=("Every parameter is optional and the given ones must all match (acestep_core.library."
                          "LibraryQuery): q is words matched as prefixes against the prompt and its tags; mood, "
                          "scene, style and instrument one keyword-library word each; model and licence part of "
                          "the text. A cue whose file is gone says missing: true. Best text match first, then "
                          "newest."),
             responses=_responses(200, "LibraryResults", 422, 503))
    def search_library(  # a plain def: FastAPI runs it on a thread, so SQLite never holds the event loop
            q: str = Query("", max_length=MAX_TEXT_CHARS), bpm_min: float = Query(None, ge=0, le=MAX_BPM_FILTER),
            bpm_max: float = Query(None, ge=0, le=MAX_BPM_FILTER), key: str = Query(None, pattern=KEY_PATTERN),
            loop: bool = Query(None), duration_min: float = Query(None, ge=0, le=MAX_DURATION_FILTER),
            duration_max: float = Query(None, ge=0, le=MAX_DURATION_FILTER), mood: str = Query(None, max_length=100),
            scene: str = Query(None, max_length=100), style: str = Query(None, max_length=100),
            instrument: str = Query(None, max_length=100), backend: str = Query(None, max_length=100),
            model: str = Query(None, max_length=200), licence: str = Query(None, max_length=200),
            seed: int = Query(None, ge=0, le=MAX_SEED), flagged: bool = Query(None),
            include_missing: bool = Query(True), limit: int = Query(LIBRARY_LIMIT, ge=1, le=MAX_LIBRARY_LIMIT),
    ) -> Response:
        import sqlite3

        query = LibraryQuery(text=q, bpm_min=bpm_min, bpm_max=bpm_max, key=key, loop=loop, duration_min=duration_min,
                             duration_max=duration_max, mood=mood, scene=scene, style=style, instrument=instrument,
                             backend=backend, model=model, licence=licence, seed=seed, flagged=flagged,
                             include_missing=include_missing, limit=limit)
        try:
            cues = CueLibrary().search(query.validated())
        except InvalidRequest as exc:
            raise ApiError(422, _problems_sentence(exc.problems), exc.problems) from None
        except (LibraryUnavailable, sqlite3.Error, OSError) as exc:
            raise ApiError(503, f"the cue library cannot be read now: {exc}",
                           headers={"Retry-After": str(STORAGE_RETRY_AFTER_S)}) from None
        return json_response({"cues": [cue.to_dict() for cue in cues], "count": len(cues)})

    @app.get("/v1/library/{cue_id}/file", summary="The audio file of a cue in the library (for a host on another "
                                                  "machine)", responses=_file_responses())
    def library_file(cue_id: int = PathParameter(ge=1, le=MAX_SQLITE_INTEGER)) -> Response:
        return _library_file(cue_id, sidecar=False)

    @app.get("/v1/library/{cue_id}/sidecar", summary="The JSON sidecar of a cue in the library",
             responses=_file_responses())
    def library_sidecar(cue_id: int = PathParameter(ge=1, le=MAX_SQLITE_INTEGER)) -> Response:
        return _library_file(cue_id, sidecar=True)

    def _library_file(cue_id: int, sidecar: bool) -> Response:
        """Only files the library indexed are served (by id: a client names no path)."""
        import sqlite3

        try:
            cue = CueLibrary().get(cue_id)
        except (LibraryUnavailable, sqlite3.Error, OSError) as exc:
            raise ApiError(503, f"the cue library cannot be read now: {exc}",
                           headers={"Retry-After": str(STORAGE_RETRY_AFTER_S)}) from None
        if cue is None:
            raise ApiError(404, f"the cue library has no cue {cue_id}; search it with GET /v1/library")
        path = Path(cue.sidecar_path or f"{cue.path}.json") if sidecar else Path(cue.path)
        if not path.is_file():
            what = "sidecar" if sidecar else "file"
            raise ApiError(410, f"the {what} of library cue {cue_id} is gone from {path.parent} (moved or deleted); "
                                "index its new folder with 'acestep-dcc library add FOLDER'")
        return FileResponse(path, media_type=_media_type(path), filename=path.name)

    @app.get("/v1/packs", summary="The installed style packs, each with whether this worker's model can use it",
             responses=_responses(200, "Packs"))
    def list_packs() -> Response:  # a plain def: reading manifests and hashing adapters stays off the event loop
        from acestep_core.packs.worker import packs_listing

        return json_response(packs_listing(context.backend))

    @app.post(UPLOADS_PATH, status_code=201, summary="Upload source audio for repaint or cover; returns its id",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
              responses=_responses(201, "Upload", 413, 415, 422, 503, 507))
    async def upload(request: Request, name: str = Query("", max_length=255)) -> Response:
        try:
            record = await uploads.save(request.stream(), name)
        except UploadTooLarge as exc:
            raise ApiError(413, str(exc)) from None
        except NotAudio as exc:
            raise ApiError(415, str(exc)) from None
        return json_response(record.to_dict(), 201)

    @app.post("/v1/shutdown", include_in_schema=False)
    async def shutdown() -> Response:
        context.request_shutdown()
        return json_response({"stopping": True})

    @app.get("/v1/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return json_response(app.openapi())

    _extend_openapi(app, context.supported_tasks, context.supports_reference,
                    supports_styles=context.backend.describe().supports_styles)
    return app


# -- request handling helpers -------------------------------------------------------------


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes the limit (a body sent without a length)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, _too_large_message(request.url.path, limit))
    return bytes(body)


def _requested_by(request: Request) -> str | None:
    """The user whose token sent this request; None for the discovery-file token."""
    return request.scope.get("state", {}).get(REQUESTED_BY)


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "the request body is empty; send the generation request as a JSON object",
                       [FieldProblem("request", "the request body is empty")])
    try:
        return json.loads(body)
    except RecursionError:
        message = "the request body is nested too deeply to be a generation request"
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"the request body is not valid JSON ({exc}); send the generation request as a JSON object"
    raise ApiError(400, message, [FieldProblem("request", message)])


def _validate_request(data: Any) -> GenerationRequest:
    try:
        return GenerationRequest.from_dict(data)
    except InvalidRequest as exc:
        raise ApiError(422, _problems_sentence(exc.problems), exc.problems) from None
    except (OverflowError, ValueError, TypeError, RecursionError) as exc:
        # The rules live in GenerationRequest; this only keeps a number too big for a float
        # (or similar) from becoming a 500.
        message = f"a value in the request is out of range ({exc}); use ordinary numbers"
        raise ApiError(422, message, [FieldProblem("request", message)]) from None


def _problems_sentence(problems: list[FieldProblem]) -> str:
    return "the request has problems: " + "; ".join(p.message for p in problems)


def _known_job(runner: JobRunner, job_id: str) -> JobStatus:
    job = runner.status(job_id) if JOB_ID_PATTERN.match(job_id) else None
    if job is None:
        raise ApiError(404, f"the worker has no job {job_id!r}; list its jobs with GET /v1/jobs")
    return job


def _inside(path: Path, folder: Path) -> Path | None:
    """The resolved path when it lies inside folder, else None (no escape by links or '..')."""
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return None
    return resolved if resolved.is_relative_to(folder.resolve()) else None


def _add_error_handlers(app: FastAPI, context: WorkerContext) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return json_response(error_body(exc.detail, exc.problems), exc.status_code, exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(_: Request, exc: QueueFull) -> Response:
        return json_response(error_body(str(exc)), 429, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(StorageProblem)
    async def storage_problem(_: Request, exc: StorageProblem) -> Response:
        log.error("%s", exc)
        if exc.disk_full:
            return json_response(error_body(str(exc)), 507)
        return json_response(error_body(str(exc)), 503, {"Retry-After": str(STORAGE_RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def parameter_error(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            name = str(error.get("loc", ["request"])[-1])
            problems.append(FieldProblem(name, f"{name}: {error.get('msg', 'is not valid')}"))
        return json_response(error_body(_problems_sentence(problems), problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route that matched the path.
            allowed = ", ".join(_allowed_methods(app, request.scope))
            headers["Allow"] = allowed
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=headers)
            detail = f"{request.method} is not allowed on this endpoint; it takes {allowed} (see /v1/openapi.json)"
        else:
            messages = {404: "there is no such endpoint; the worker's API is under /v1 (see /v1/openapi.json)"}
            detail = messages.get(exc.status_code, str(exc.detail))
        return json_response(error_body(detail), exc.status_code, headers or None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("request failed")
        where = f"; see the worker log at {context.log_path}" if context.log_path else ""
        return json_response(error_body(f"the worker failed on this request ({type(exc).__name__}){where}"), 500)


def _allowed_methods(app: FastAPI, scope) -> list[str]:
    """Every method some route takes on this path, and OPTIONS (answered here)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"}) if hasattr(route, "methods") else (Match.NONE, None)
        if match is not Match.NONE and route.methods:
            methods |= route.methods
    return sorted(methods | {"OPTIONS"})


# -- OpenAPI: the real request fields, from the one dataclass ------------------------------

# What GET /v1/jobs/{id}/files/{n} serves: cues, a set's manifest and its Godot resource.
FILE_MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
                    ".json": "application/json", ".tres": "text/plain"}


def _media_type(path: Path) -> str:
    return FILE_MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _dataclass_schemas(tasks: tuple[str, ...], supports_reference: bool = False) -> dict[str, dict]:
    from pydantic import TypeAdapter

    schemas: dict[str, dict] = {}
    for cls in (GenerationRequest, JobStatus, CueOutput, LibraryCue):
        schema = TypeAdapter(cls).json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[cls.__name__] = schema
    schemas["GenerationRequest"] = _request_schema(schemas["GenerationRequest"], tasks or TASKS, supports_reference)
    from acestep_core.lineage import lineage_schema  # a refinement's record (acestep_core.refine)

    schemas["Lineage"] = lineage_schema([name for name in schemas["GenerationRequest"]["properties"]])
    schemas["GenerationRequest"]["properties"]["lineage"] = {
        "anyOf": [{"$ref": "#/components/schemas/Lineage"}, {"type": "null"}], "default": None, "title": "Lineage"}
    schemas["SetGenerationRequest"] = _set_generation_request_schema(schemas["GenerationRequest"])
    schemas["SetRequest"] = _set_request_schema()
    schemas["LibraryResults"] = {"type": "object", "required": ["cues", "count"], "properties": {
        "cues": {"type": "array", "items": {"$ref": "#/components/schemas/LibraryCue"}}, "count": {"type": "integer"}}}
    schemas["JobList"] = {"type": "object", "required": ["jobs"], "properties": {
        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobStatus"}}}}
    schemas["Upload"] = {"type": "object", "required": ["id", "original_name", "size", "format", "duration",
                                                        "created_at"], "properties": {
        "id": {"type": "string", "pattern": UPLOAD_ID_PATTERN.pattern}, "original_name": {"type": "string"},
        "size": {"type": "integer"}, "format": {"type": "string"}, "duration": {"type": "number"},
        "created_at": {"type": "string"}}}
    schemas["Health"] = {"type": "object", "required": ["version", "backend", "loaded", "model_state",
                                                        "queue_length", "max_queue"], "properties": {
        "version": {"type": "string"}, "backend": {"type": "string"}, "loaded": {"type": "boolean"},
        "model_state": {"type": "string", "enum": list(MODEL_STATES)},
        "model_error": {"type": ["string", "null"]},
        "queue_length": {"type": "integer"}, "max_queue": {"type": "integer"},
        "supports_tasks": {"type": "array", "items": {"type": "string"}},
        "supports_reference": {"type": "boolean"}, "supports_stems": {"type": "boolean"}}}
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "detail": {"type": "string"},
            "problems": {"type": "array", "items": {
                "type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        },
        "required": ["detail", "problems"],
    }
    return schemas


def _request_schema(schema: dict, tasks: tuple[str, ...], supports_reference: bool = True) -> dict:
    """The dataclass' fields with GenerationRequest.problems()'s ranges and patterns, and
    the rules between fields that JSON Schema can say. Not said here (422 all the same):
    repaint_start < repaint_end, and a loop of loop_bars bars at bpm longer than
    MAX_DURATION_S."""
    text_tasks = [t for t in tasks if t not in ("repaint", "cover")]
    limits: dict[str, dict] = {
        # Not only whitespace as Python's str.strip() sees it: it also strips \x1c-\x1f and \x85
        # (not in ECMA's \s) and keeps \ufeff (in ECMA's \s).
        "prompt": {"minLength": 1, "maxLength": MAX_PROMPT_CHARS, "pattern": r"[^\s\x1c-\x1f\x85]|\uFEFF"},
        "lyrics": {"maxLength": MAX_LYRICS_CHARS},
        "duration": {"minimum": MIN_DURATION_S, "maximum": MAX_DURATION_S},
        "seed": {"minimum": 0, "maximum": MAX_SEED},
        "candidates": {"minimum": 1, "maximum": MAX_CANDIDATES},
        "steps": {"minimum": 1, "maximum": MAX_STEPS},
        "guidance": {"minimum": 0, "maximum": MAX_GUIDANCE},
        "shift": {"exclusiveMinimum": 0, "maximum": MAX_SHIFT},
        "bpm": {"minimum": MIN_BPM, "maximum": MAX_BPM},
        "key": {"pattern": KEY_PATTERN},
        "time_signature": {"enum": list(TIME_SIGNATURES)},
        "task": {"enum": list(tasks)},
        "source_audio": {"pattern": UPLOAD_ID_PATTERN.pattern},
        "repaint_start": {"minimum": 0},
        "repaint_end": {"exclusiveMinimum": 0},
        "cover_strength": {"minimum": 0, "maximum": 1},
        "output_format": {"enum": list(OUTPUT_FORMATS)},
        "sample_rate": {"enum": list(SAMPLE_RATES)},
        "bit_depth": {"enum": list(BIT_DEPTHS)},
        "file_name": {"pattern": FILE_NAME_PATTERN, "not": {"pattern": r"\.\."}},
        "loop_bars": {"minimum": 1, "maximum": MAX_LOOP_BARS},
        "intro_bars": {"minimum": 0, "maximum": MAX_INTRO_BARS},
        "true_peak_ceiling_db": {"minimum": MIN_TRUE_PEAK_DB, "maximum": MAX_TRUE_PEAK_DB},
        "intensity": {"minimum": 0, "maximum": 1},
        "track": {"enum": list(TRACK_NAMES)},
        "tracks": {"items": {"type": "string", "enum": list(TRACK_NAMES)}, "minItems": 1, "uniqueItems": True},
        "reference_audio": {"pattern": UPLOAD_ID_PATTERN.pattern},
    }
    properties = schema["properties"]
    for name, extra in limits.items():
        _constrain(properties[name], extra)
    # A preset name in any case, with spaces around it, or a target in LUFS.
    preset = "|".join("".join(f"[{c.upper()}{c}]" for c in name) for name in LOUDNESS_PRESETS)
    properties["loudness"]["anyOf"] = [
        {"type": "string", "pattern": rf"^\s*({preset})\s*$"},
        {"type": "number", "minimum": MIN_LOUDNESS_LUFS, "maximum": MAX_LOUDNESS_LUFS},
        {"type": "null"}]
    rules = [
        # loop_bars only with a loop, and a loop only for the tasks that make one.
        {"if": {"required": ["loop_bars"], "properties": {"loop_bars": {"type": "integer"}}},
         "then": {"required": ["loop"], "properties": {"loop": {"const": True}}}},
        # An intro is before a loop.
        {"if": {"required": ["intro_bars"], "properties": {"intro_bars": {"type": "integer", "minimum": 1}}},
         "then": {"required": ["loop"], "properties": {"loop": {"const": True}}}},
        {"if": {"required": ["loop"], "properties": {"loop": {"const": True}}},
         "then": {"properties": {"task": {"enum": [t for t in tasks if t in LOOP_TASKS]}}}},
    ]
    rules += _track_rules(properties, tasks, supports_reference)
    if text_tasks == list(tasks):  # this backend takes no source audio
        for name in ("source_audio", "repaint_start", "repaint_end"):
            properties[name] = {"type": "null", "default": None, "title": properties[name].get("title", name)}
    else:
        rules += [
            {"if": {"required": ["task"], "properties": {"task": {"enum": ["repaint", "cover"]}}},
             "then": {"required": ["source_audio"], "properties": {"source_audio": {"type": "string"}}},
             "else": {"properties": {"source_audio": {"type": "null"}}}},
            {"if": {"required": ["task"], "properties": {"task": {"const": "repaint"}}},
             "then": {"required": ["repaint_start", "repaint_end"],
                      "properties": {"repaint_start": {"type": "number"}, "repaint_end": {"type": "number"}}},
             "else": {"properties": {"repaint_start": {"type": "null"}, "repaint_end": {"type": "null"}}}},
        ]
    schema["allOf"] = rules
    # Unknown fields are an error in from_dict; say so in the schema too.
    schema["additionalProperties"] = False
    return schema


def _track_rules(properties: dict, tasks: tuple[str, ...], supports_reference: bool) -> list[dict]:
    """GenerationRequest.problems()' rules for track, tracks and reference_audio; a field no
    task of this backend takes is simply null (fewer rules for schema-driven clients)."""
    rules: list[dict] = []
    track_tasks = [t for t in TRACK_TASKS if t in tasks]
    if not track_tasks:
        properties["track"] = {"type": "null", "default": None, "title": "Track"}
    else:
        # track for extract and lego, which need it (a stems split is extract with tracks instead).
        rules += [
            {"if": {"required": ["track"], "properties": {"track": {"type": "string"}}},
             "then": {"required": ["task"], "properties": {"task": {"enum": track_tasks}}}},
            {"if": {"required": ["task"], "properties": {"task": {"enum": track_tasks}}},
             "then": {"anyOf": [{"required": ["track"], "properties": {"track": {"type": "string"}}},
                                {"required": ["task", "stems", "tracks"], "properties": {
                                    "task": {"const": "extract"}, "stems": {"const": True},
                                    "tracks": {"type": "array"}}}]}},
        ]
    # tracks for complete (which needs them) or to choose stems.
    tracks_allowed = [{"required": ["stems"], "properties": {"stems": {"const": True}}}]
    if "complete" in tasks:
        tracks_allowed.append({"required": ["task"], "properties": {"task": {"const": "complete"}}})
        rules.append({"if": {"required": ["task"], "properties": {"task": {"const": "complete"}}},
                      "then": {"required": ["tracks"], "properties": {"tracks": {"type": "array"}}}})
    rules.append({"if": {"required": ["tracks"], "properties": {"tracks": {"type": "array"}}},
                  "then": tracks_allowed[0] if len(tracks_allowed) == 1 else {"anyOf": tracks_allowed}})
    reference_tasks = [t for t in REFERENCE_TASKS if t in tasks]
    if not supports_reference:
        properties["reference_audio"] = {"type": "null", "default": None, "title": "Reference Audio"}
    elif len(reference_tasks) < len(tasks):  # an upload, for text2music (the default) and cover
        rules.append({"if": {"required": ["reference_audio"], "properties": {"reference_audio": {"type": "string"}}},
                      "then": {"properties": {"task": {"enum": reference_tasks}}}})
    return rules


def _constrain(prop: dict, extra: dict) -> None:
    """Add limits to a property, or to the non-null branch of an optional one."""
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    for target in branches or [prop]:
        target.update(extra)


def _set_generation_request_schema(request_schema: dict) -> dict:
    """A set's request: what the set decides itself is refused (sets.py _overruled_fields)."""
    import copy

    schema = copy.deepcopy(request_schema)
    properties = schema["properties"]
    properties["task"] = {"const": "text2music", "default": "text2music"}
    properties["candidates"] = {"const": 1, "default": 1}
    properties["loop_bars"] = {"type": "null", "default": None}
    properties["intro_bars"] = {"const": 0, "default": 0}
    properties["intensity"] = {"type": "null", "default": None}
    properties["reference_audio"] = {"type": "null", "default": None}
    properties["stems"] = {"const": False, "default": False}
    properties["tracks"] = {"type": "null", "default": None}
    schema["allOf"] = [rule for rule in schema.get("allOf", [])
                       if not any(name in str(rule.get("if")) for name in ("loop_bars", "reference_audio", "tracks"))]
    return schema


def _body_schema(name: str) -> dict:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _set_request_schema() -> dict:
    """POST /v1/sets' body; the rules are parse_set_body's."""
    return {
        "type": "object",
        "properties": {
            "request": {"$ref": "#/components/schemas/SetGenerationRequest"},
            "intensities": {"type": "integer", "minimum": 1, "maximum": MAX_INTENSITIES, "default": DEFAULT_INTENSITIES,
                            "description": "layers that stack (stems on one sample grid); the default, 3"},
            "variants": {"type": "integer", "minimum": 1, "maximum": MAX_INTENSITIES,
                         "description": "instead of intensities: loops at rising intensity, to switch between"},
            "bars": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_LOOP_BARS},
                               {"type": "string", "pattern": r"^\s*[Ff][Ii][Tt]\s*$"}], "default": DEFAULT_BARS},
            "stingers": {"type": "integer", "minimum": 0, "maximum": MAX_STINGERS, "default": DEFAULT_STINGERS},
        },
        "required": ["request"],
        "not": {"required": ["intensities", "variants"]},
        "additionalProperties": False,
    }


def _error_response() -> dict:
    return {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer"}}}


def _responses(ok: int, ok_schema: str | None, *errors: int) -> dict:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ok_schema}"}}} if ok_schema else None
    responses: dict[int | str, dict] = {ok: {"description": "success", **({"content": content} if content else {})}}
    for code in (401, *errors):
        responses[code] = _error_response()
        if code in (429, 503):
            responses[code]["headers"] = _RETRY_AFTER
    return responses


def _file_responses() -> dict:
    responses = _responses(200, None, 404, 409, 410, 422, 503)
    binary = {"schema": {"type": "string", "format": "binary"}}
    responses[200] = {"description": "the file", "content": {media: binary for media in dict.fromkeys(
        FILE_MEDIA_TYPES.values())}}
    return responses


def _extend_openapi(app: FastAPI, tasks: tuple[str, ...], supports_reference: bool = False,
                    supports_styles: bool = False) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_dataclass_schemas(tasks, supports_reference))
            from acestep_core.packs.worker import PACKS_SCHEMA, constrain_request_schema

            for name in ("GenerationRequest", "SetGenerationRequest"):
                constrain_request_schema(schema["components"]["schemas"][name], supports_styles)
            schema["components"]["schemas"]["Packs"] = PACKS_SCHEMA
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            schema["paths"][ALIVE_PATH]["get"]["security"] = []
            # FastAPI adds its own 422 body for query parameters; the worker answers with Error.
            schema["components"]["schemas"].pop("HTTPValidationError", None)
            schema["components"]["schemas"].pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
