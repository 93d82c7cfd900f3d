"""The Serve application: an HTTP ingress serving the worker's own /v1 API, in front of
the generation deployment.

The ingress is the worker's FastAPI app (acestep_core.worker.app.create_app) over a
ClusterRunner instead of a JobRunner, so routes, validation, errors, tokens and the
OpenAPI schema are the single worker's; it adds GET /v1/cluster (which replica runs
what). It runs as one replica on the head node, the one writer of the job store.

Moving to a server database: the store is acestep_core.worker.store.JobStore, a dozen
short statements over two tables in portable SQL. A PostgreSQL store is the same class
over psycopg (the SCHEMA's AUTOINCREMENT as an identity column, `?` as `%s`), after
which the ingress could run more than one replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from pathlib import Path
from typing import Any

from ray import serve

from acestep_core.cluster.replica import GenerationReplica

APP_NAME = "acestep"
INGRESS_NAME = "ClusterIngress"
REPLICA_NAME = "GenerationReplica"
CLUSTER_PATH = "/v1/cluster"
INGRESS_MAX_ONGOING = 256  # status polls, long polls (up to 10 s each) and downloads at once
HEAD_NODE_RESOURCE = "node:__internal_head__"  # Ray's marker resource of the head node


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """What `acestep-dcc cluster up` decides; passed to both deployments."""

    backend: str = "sketch"
    model: str | None = None
    device: str | None = None
    replicas: int = 1
    max_replicas: int | None = None  # set: autoscale between 1 (or min_replicas) and this
    min_replicas: int = 1
    cpus_per_replica: float = 1.0
    gpus_per_replica: float | None = None  # None: 1 for the acestep backend, 0 for the sketch
    data_dir: str = ""
    tokens_file: str = ""
    token: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(32))
    max_queue: int = 64
    pin_ingress_to_head: bool = True

    @property
    def gpus(self) -> float:
        if self.gpus_per_replica is not None:
            return self.gpus_per_replica
        return 0.0 if self.backend == "sketch" else 1.0


def replica_options(settings: ClusterSettings) -> dict[str, Any]:
    """The generation deployment's Serve options: one job per replica at a time; a fixed
    number of replicas, or autoscaling on the jobs waiting for one."""
    options: dict[str, Any] = {
        "name": REPLICA_NAME,
        "max_ongoing_requests": 1,
        "ray_actor_options": {"num_cpus": settings.cpus_per_replica, "num_gpus": settings.gpus},
        # A killed replica is replaced; its job is retried by the ingress.
        "health_check_period_s": 2,
        "graceful_shutdown_timeout_s": 5,
    }
    if settings.max_replicas:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "initial_replicas": max(settings.min_replicas, min(settings.replicas, settings.max_replicas)),
            "max_replicas": settings.max_replicas,
            # Serve counts jobs waiting at the handle as ongoing: one per replica is the goal.
            "target_ongoing_requests": 1,
            "upscale_delay_s": 2,
            "downscale_delay_s": 120,
        }
    else:
        options["num_replicas"] = settings.replicas
    return options


def ingress_options(settings: ClusterSettings) -> dict[str, Any]:
    actor: dict[str, Any] = {"num_cpus": 0}
    if settings.pin_ingress_to_head:
        actor["resources"] = {HEAD_NODE_RESOURCE: 0.001}  # the store's folder is on the head
    return {"name": INGRESS_NAME, "num_replicas": 1, "max_ongoing_requests": INGRESS_MAX_ONGOING,
            "ray_actor_options": actor}


@serve.ingress()
class ClusterIngress:
    async def __init__(self, replicas, settings: ClusterSettings):
        from acestep_core.cluster.runner import ClusterRunner
        from acestep_core.worker.app import FinishSignal, WorkerContext
        from acestep_core.worker.discovery import make_private_folder
        from acestep_core.worker.limits import DEFAULT_MAX_UPLOAD_BYTES
        from acestep_core.worker.retention import Retention, RetentionPolicy
        from acestep_core.worker.store import JobStore
        from acestep_core.worker.tokens import TokenBook
        from acestep_core.worker.uploads import UploadFolder

        data = make_private_folder(Path(settings.data_dir))
        outputs = make_private_folder(data / "outputs")
        store = JobStore(data / "jobs.sqlite3")
        box: list[ClusterRunner] = []
        policy = RetentionPolicy()
        uploads = UploadFolder(data / "uploads", store, DEFAULT_MAX_UPLOAD_BYTES,
                               max_total_bytes=policy.max_uploads_bytes,
                               in_use=lambda: box[0].uploads_in_use() if box else set())
        signal = FinishSignal()
        self.runner = ClusterRunner(store, replicas, outputs, resolve_upload=uploads.path_for,
                                    on_finished=signal.notify, max_queue=settings.max_queue,
                                    prune=Retention(policy, outputs, uploads).prune)
        box.append(self.runner)
        described = await replicas.describe.remote()  # waits for the first replica to start
        backend = _BackendView(described["info"], self.runner)
        self.settings = settings
        self.context = WorkerContext(
            runner=self.runner, uploads=uploads, backend=backend, token=settings.token, outputs_dir=outputs,
            supported_tasks=tuple(described["info"].supports_tasks),
            supports_reference=described["info"].supports_reference, finish_signal=signal,
            user_tokens=TokenBook(settings.tokens_file) if settings.tokens_file else None)
        self.context.request_shutdown = _refuse_shutdown
        self.runner.start(asyncio.get_running_loop())

    def __serve_build_asgi_app__(self):
        from acestep_core.worker.app import create_app, json_response

        app = create_app(self.context)
        runner, settings = self.runner, self.settings

        @app.get(CLUSTER_PATH, summary="The cluster: replicas configured, which replica runs which job, recent losses",
                 responses={200: {"description": "success", "content": {"application/json": {"schema": {
                     "type": "object", "required": ["replicas", "running", "retries"], "properties": {
                         "replicas": {"type": "object"}, "running": {"type": "array", "items": {"type": "object"}},
                         "retries": {"type": "array", "items": {"type": "object"}}}}}}},
                     401: {"description": "error", "content": {"application/json": {"schema": {
                         "$ref": "#/components/schemas/Error"}}}}})
        async def cluster() -> Any:
            options = replica_options(settings)
            return json_response({
                "replicas": {"backend": settings.backend, "fixed": options.get("num_replicas"),
                             "autoscaling": options.get("autoscaling_config"),
                             "cpus_each": settings.cpus_per_replica, "gpus_each": settings.gpus},
                "running": runner.running(), "retries": runner.retries})

        return app


def _refuse_shutdown() -> None:
    """A host's Stop worker must not stop a whole studio's cluster."""
    from acestep_core.worker.app import ApiError

    raise ApiError(409, "this is a studio cluster, shared with others: it is stopped where it was started "
                        "('acestep-dcc cluster up', Ctrl+C there), not from a host")


class _BackendView:
    """What the routes read of a backend (describe, name, loaded), from a replica's answer."""

    def __init__(self, info, runner):
        self._info = info
        self._runner = runner
        self.name = info.name

    @property
    def loaded(self) -> bool:
        return self._runner.model_loaded

    def describe(self):
        return dataclasses.replace(self._info, loaded=self.loaded)


def build_application(settings: ClusterSettings):
    """The bound Serve application for serve.run."""
    replicas = serve.deployment(GenerationReplica, **replica_options(settings)).bind(
        settings.backend, settings.model, settings.device)
    return serve.deployment(ClusterIngress, **ingress_options(settings)).bind(replicas, settings)
