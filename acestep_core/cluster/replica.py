"""The generation deployment: one replica per GPU (or per CPU for the sketch backend).

Each replica runs the single worker's own JobRunner on its own backend, one job at a
time (max_ongoing_requests=1), so a cluster job is made by exactly the code a local
worker runs. run_job is a stream: "started" (which replica, its pid and node),
progress, the output files in chunks (the replica may be on another machine; the
ingress keeps the files and serves them), and "end" with the job's final status. When
the caller cancels the stream, Serve cancels this generator's task and the replica
cancels its job, which stops at the backend's next step.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator

from acestep_core.jobs import DONE, JobStatus

PROGRESS_INTERVAL_S = 0.2  # how often a running job's progress goes to the ingress
FILE_CHUNK_BYTES = 4 * 1024 * 1024  # a cue crosses the object store in pieces this big


class GenerationReplica:
    """A Serve deployment class (options set in acestep_core.cluster.app)."""

    def __init__(self, backend: str, model: str | None, device: str | None):
        from acestep_core.backends import create_backend
        from acestep_core.worker.runner import JobRunner
        from acestep_core.worker.store import JobStore

        self.scratch = Path(tempfile.mkdtemp(prefix="acestep-replica-"))
        # The replica's own home: its cue library and job database are scratch; the head
        # indexes and keeps what it serves.
        os.environ["ACESTEP_DCC_HOME"] = str(self.scratch / "home")
        self.backend = create_backend(backend, model, device)
        self.uploads: dict[str, Path] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._job_ended: asyncio.Event | None = None
        self.runner = JobRunner(JobStore(self.scratch / "jobs.sqlite3"), self.backend, self.scratch / "outputs",
                                resolve_upload=self.uploads.get, on_finished=self._wake)
        self.runner.start()
        self.name = _replica_name()
        self.node = _node_id()

    def __del__(self) -> None:
        # Serve calls this when it stops the replica: the scratch folder goes with it.
        runner, scratch = getattr(self, "runner", None), getattr(self, "scratch", None)
        if runner is not None:
            runner.stop(timeout=2.0)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _wake(self) -> None:
        """From the runner's thread: a job ended, so the stream need not wait for its next look."""
        if self._loop is not None and self._job_ended is not None:
            self._loop.call_soon_threadsafe(self._job_ended.set)

    def describe(self) -> dict[str, Any]:
        return {"info": self.backend.describe(), "loaded": self.backend.loaded}

    async def run_job(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """job: {"id", "request", "set_options", "uploads": {upload id: bytes}}."""
        from acestep_core.request import GenerationRequest
        from acestep_core.worker.sets import SetOptions

        for upload_id, data in (job.get("uploads") or {}).items():
            path = self.scratch / "uploads" / upload_id
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.uploads[upload_id] = path
        set_options = SetOptions.from_dict(job["set_options"]) if job.get("set_options") else None
        self._loop, self._job_ended = asyncio.get_running_loop(), asyncio.Event()
        local = self.runner.submit(GenerationRequest.from_dict(job["request"]), set_options)
        yield {"event": "started", "replica": self.name, "pid": os.getpid(), "node": self.node,
               "loaded": self.backend.loaded}
        try:
            last = None
            while True:
                status = self.runner.status(local.id)
                if status is None or status.finished:
                    break
                seen = (status.progress, status.stage, status.eta_seconds)
                if seen != last:
                    last = seen
                    yield {"event": "progress", "progress": status.progress, "stage": status.stage,
                           "eta_seconds": status.eta_seconds}
                try:
                    await asyncio.wait_for(self._job_ended.wait(), PROGRESS_INTERVAL_S)
                except asyncio.TimeoutError:
                    pass
        except (asyncio.CancelledError, GeneratorExit):
            self.runner.cancel(local.id)  # the job stops at its next step; its files are removed
            raise
        try:
            if status is not None and status.status == DONE:
                job_dir = self.scratch / "outputs" / local.id
                for name in _job_files(status, job_dir):
                    with open(job_dir / name, "rb") as source:
                        first = True
                        while True:
                            chunk = source.read(FILE_CHUNK_BYTES)
                            if not chunk and not first:
                                break
                            yield {"event": "file", "name": name, "data": chunk, "first": first}
                            first = False
            yield {"event": "end", "status": status.to_dict() if status else None, "loaded": self.backend.loaded}
        finally:
            shutil.rmtree(self.scratch / "outputs" / local.id, ignore_errors=True)
            for upload_id in job.get("uploads") or {}:
                path = self.uploads.pop(upload_id, None)
                if path is not None:
                    path.unlink(missing_ok=True)


def _job_files(status: JobStatus, job_dir: Path) -> list[str]:
    """Every file the job's record names, relative to its folder (cues, sidecars, stems,
    a set's manifest and resources)."""
    paths = [o.path for o in status.outputs] + [o.sidecar_path for o in status.outputs if o.sidecar_path]
    paths += [p for o in status.outputs for p in o.stems.values()] + [a.path for a in status.artifacts]
    names = []
    for path in paths:
        relative = Path(path).resolve().relative_to(job_dir.resolve())
        if relative.as_posix() not in names:
            names.append(relative.as_posix())
    return names


def _replica_name() -> str:
    try:
        from ray import serve

        return serve.get_replica_context().replica_tag
    except Exception:  # noqa: BLE001 - outside Serve (a direct test) there is no replica tag
        return f"pid-{os.getpid()}"


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray
        return ""
