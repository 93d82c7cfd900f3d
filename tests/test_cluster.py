"""The worker API on a real local Ray Serve cluster: `acestep-dcc cluster up` in a
subprocess (Ray on 127.0.0.1, 2 CPUs, 2 sketch replicas), spoken to over real HTTP by
the real WorkerClient. The single worker's API tests run against it unchanged (imported
below); then what only a cluster does: two jobs at once on two replicas, cancel reaching
the replica, a killed replica, a full queue, tokens, an ingress restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("ray.serve", reason="Ray Serve is not installed; the cluster tests need the [cluster] extra "
                                        "(pip install 'acestep-dcc[cluster]')")

from worker_fixtures import REPO_ROOT, raw_request  # noqa: E402

from acestep_core.client import WorkerClient  # noqa: E402
from acestep_core.cluster.up import free_port  # noqa: E402
from acestep_core.errors import WorkerAuthFailed, WorkerRejected  # noqa: E402
from acestep_core.jobs import CANCELLED, DONE, FAILED  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402
from acestep_core.worker.discovery import read_discovery  # noqa: E402

# The single worker's API behaviour, run here against the cluster (this module's
# `worker` fixture is the cluster's client).
from test_worker_api import (  # noqa: E402,F401
    test_a_file_is_served_with_its_audio_content_type, test_a_token_that_only_starts_right_is_refused,
    test_bad_fields_are_a_422_field_by_field, test_bad_query_values_are_a_422_with_the_parameter_named,
    test_cancel_of_a_finished_job_leaves_it_done, test_client_with_a_wrong_token_raises_auth_failed,
    test_every_endpoint_needs_the_token, test_every_problem_is_reported_at_once,
    test_file_index_out_of_range_is_a_404, test_file_names_with_folders_are_refused,
    test_health_says_what_serves, test_history_is_newest_first_and_limited,
    test_liveness_probe_needs_no_token_and_says_nothing_else, test_malformed_json_is_a_400_with_a_sentence,
    test_openapi_schema_describes_the_one_request_definition, test_oversized_bodies_are_refused_before_reading,
    test_source_audio_must_be_an_upload_of_this_worker, test_status_reports_stage_text_and_queue_position,
    test_traversal_in_ids_finds_nothing, test_unknown_job_is_a_typed_error,
)

# Arbitrary JSON and bytes at the submit endpoints get an answer, never a crash.
from test_worker_fuzz import (  # noqa: E402,F401
    test_any_bytes_get_an_answer_not_a_crash, test_any_json_body_gets_an_answer_not_a_crash,
    test_any_json_set_body_gets_an_answer_not_a_crash,
)

MAX_QUEUE = 6
START_TIMEOUT = 180.0  # Ray and two replicas on two busy cores
# A job long enough to watch, kill or cancel (the sketch makes ~100 s of audio a second
# here); Ogg keeps its file small.
LONG = {"prompt": "calm forest ambience, soft pads", "duration": 600.0, "output_format": "ogg"}
SHORT = {"prompt": "tense boss battle, synthwave", "duration": 4.0, "bpm": 120.0}


class ClusterProcess:
    def __init__(self, home: Path, *args: str, replicas: int = 2, ca_file: Path | None = None):
        self.home = home
        self.args = args
        self.replicas = replicas
        self.ca_file = ca_file
        self.port = free_port()
        self.log_file = home / "cluster.log"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ, ACESTEP_DCC_HOME=str(self.home), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("ACESTEP_DCC_MODEL", None)
        return env

    def start(self) -> WorkerClient:
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "acestep_core", "cluster", "up", "--backend", "sketch", "--replicas",
                   str(self.replicas), "--num-cpus", "2", "--port", str(self.port), "--max-queue", str(MAX_QUEUE),
                   *self.args]
        with open(self.log_file, "ab") as log:
            # Its own session: teardown can end Ray's processes with it, by group.
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            info = read_discovery(self.home / "state")
            if info is not None and info.pid == self.process.pid:
                return WorkerClient(info.url, info.token, ca_file=str(self.ca_file) if self.ca_file else None)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the test cluster did not start:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.is_file() else ""


@pytest.fixture(scope="module")
def cluster_process(tmp_path_factory) -> Iterator[ClusterProcess]:
    process = ClusterProcess(tmp_path_factory.mktemp("cluster-home"))
    process.client = process.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACESTEP_DCC_HOME", str(process.home))  # WorkerClient.connect() finds the cluster
        yield process
    process.stop()


@pytest.fixture(scope="module")
def worker(cluster_process) -> WorkerClient:
    return cluster_process.client


def cluster_state(client: WorkerClient) -> dict:
    request = urllib.request.Request(f"{client.url}/v1/cluster", headers={"Authorization": f"Bearer {client.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def running_on(client: WorkerClient, job_id: str, attempt: int = 1, timeout: float = 60.0) -> dict:
    """The replica running this job's attempt, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in cluster_state(client)["running"]:
            if entry["job"] == job_id and entry["attempt"] == attempt:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} attempt {attempt} never ran: {client.status(job_id)}")


def wait_idle(client: WorkerClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while cluster_state(client)["running"] or client.health()["queue_length"]:
        assert time.monotonic() < deadline, "the cluster stayed busy"
        time.sleep(0.1)


# -- finding it and the happy path --------------------------------------------------------


def test_connect_finds_the_cluster_through_the_discovery_file(cluster_process):
    client = WorkerClient.connect(start=False)
    assert client.url == f"http://127.0.0.1:{cluster_process.port}"
    assert client.health()["backend"] == "sketch"
    assert cluster_state(client)["replicas"]["fixed"] == 2


def test_outputs_are_kept_and_served_by_the_head(worker: WorkerClient, cluster_process, tmp_path):
    job = worker.wait(worker.submit(GenerationRequest(**SHORT, candidates=2)).id, timeout=120)
    assert job.status == DONE, job.error
    outputs = (cluster_process.home / "cluster" / "outputs" / job.id).resolve()
    for output in job.outputs:
        assert Path(output.path).resolve().parent == outputs and Path(output.path).is_file()
        sidecar = json.loads(Path(output.sidecar_path).read_text())
        assert sidecar["request"]["prompt"] == SHORT["prompt"] and sidecar["file"] == Path(output.path).name
        fetched = worker.download(job.id, output.index, tmp_path)
        assert fetched.read_bytes() == Path(output.path).read_bytes()
    assert job.requested_by is None  # the discovery file's own token


def test_two_jobs_run_at_once_on_two_replicas(worker: WorkerClient):
    wait_idle(worker)
    first, second = (worker.submit(GenerationRequest(**LONG)) for _ in range(2))
    on_first, on_second = running_on(worker, first.id), running_on(worker, second.id)
    assert on_first["replica"] != on_second["replica"] and on_first["pid"] != on_second["pid"]
    both = {entry["job"] for entry in cluster_state(worker)["running"]}
    assert both == {first.id, second.id}  # at the same time, not one after the other
    for job in (first, second):
        assert worker.wait(job.id, timeout=120).status == DONE


def test_cancel_reaches_the_replica_running_the_job(worker: WorkerClient):
    wait_idle(worker)
    long_jobs = [worker.submit(GenerationRequest(**LONG)) for _ in range(2)]
    for job in long_jobs:
        running_on(worker, job.id)
    time.sleep(0.5)
    for job in long_jobs:
        worker.cancel(job.id)
    cancelled_at = time.monotonic()
    for job in long_jobs:
        ended = worker.wait(job.id, timeout=30)
        assert ended.status == CANCELLED and ended.outputs == []
    # Each replica stopped its job: two short jobs now start and finish at once, well
    # before a 600 s cue (several seconds each) would have let them in.
    short_jobs = [worker.submit(GenerationRequest(**SHORT)) for _ in range(2)]
    for job in short_jobs:
        assert worker.wait(job.id, timeout=60).status == DONE
    assert time.monotonic() - cancelled_at < 4.0


def test_a_queued_job_cancelled_never_runs(worker: WorkerClient):
    wait_idle(worker)
    busy = [worker.submit(GenerationRequest(**LONG)) for _ in range(2)]
    waiting = worker.submit(GenerationRequest(**SHORT))
    assert worker.status(waiting.id).status == "queued"
    assert worker.cancel(waiting.id).status == CANCELLED
    for job in busy:
        worker.cancel(job.id)
        worker.wait(job.id, timeout=30)
    time.sleep(1.0)
    assert worker.status(waiting.id).status == CANCELLED
    assert all(entry["job"] != waiting.id for entry in cluster_state(worker)["running"])


def test_a_full_queue_answers_429(worker: WorkerClient):
    wait_idle(worker)
    jobs = [worker.submit(GenerationRequest(**LONG)) for _ in range(2)]
    for job in jobs:
        running_on(worker, job.id)
    jobs += [worker.submit(GenerationRequest(**SHORT)) for _ in range(MAX_QUEUE)]
    body = json.dumps(SHORT).encode()
    status, error, _ = raw_request(worker, "POST", "/v1/jobs", body, {"Content-Type": "application/json"})
    assert status == 429 and "queue is full" in error["detail"]
    with pytest.raises(WorkerRejected):
        worker.submit(GenerationRequest(**SHORT))
    for job in jobs:
        worker.cancel(job.id)
    for job in jobs:
        assert worker.wait(job.id, timeout=30).status == CANCELLED


def test_a_host_cannot_stop_the_shared_cluster(worker: WorkerClient):
    with pytest.raises(WorkerRejected, match="studio cluster"):
        worker.shutdown()
    assert worker.health()["backend"] == "sketch"


def test_the_cluster_schema_says_what_the_cluster_does(worker: WorkerClient, tmp_path):
    """schemathesis over the cluster's own schema (the worker's, and GET /v1/cluster), with
    the flags of tests/test_worker_fuzz.py."""
    st_command = Path(sys.executable).with_name("st")
    if not st_command.is_file():
        pytest.skip("schemathesis' st command is not installed in this environment")
    wait_idle(worker)
    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert status == 200 and "/v1/cluster" in schema["paths"]
    (tmp_path / "openapi.json").write_text(json.dumps(schema))
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(tests / "schemathesis_hooks.py"), "NO_COLOR": "1"}
    run = subprocess.run([str(st_command), "--no-color", "--config-file", str(tests / "schemathesis.toml"), "run",
                          str(tmp_path / "openapi.json"), "--url", worker.url, "-H", f"Authorization: Bearer {worker.token}",
                          "--checks", "all", "--phases", "examples,coverage,fuzzing", "--max-examples", "10",
                          "--seed", "1", "--workers", "1",
                          # Not the cluster's: the worker's schema calls a library cue's JSON sidecar a
                          # binary string, which an indexed cue here shows (the worker's own fuzz test
                          # has an empty library, so it only ever sees 404 there).
                          "--exclude-path", "/v1/library/{cue_id}/sidecar"],
                         capture_output=True, text=True, env=env, timeout=400, cwd=tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    wait_idle(worker, timeout=120)  # what it queued is made before the fault tests


# -- faults ----------------------------------------------------------------------------------


def test_a_job_whose_replica_is_killed_is_retried_on_another(worker: WorkerClient, tmp_path):
    wait_idle(worker)
    job = worker.submit(GenerationRequest(**{**LONG, "duration": 240.0}))
    first = running_on(worker, job.id)
    time.sleep(0.5)
    os.kill(first["pid"], signal.SIGKILL)
    second = running_on(worker, job.id, attempt=2, timeout=90)
    assert second["pid"] != first["pid"]
    done = worker.wait(job.id, timeout=180)
    assert done.status == DONE, done.error
    assert worker.download(job.id, 0, tmp_path).stat().st_size > 0
    loss = [r for r in cluster_state(worker)["retries"] if r["job"] == job.id]
    assert loss and loss[0]["pid"] == first["pid"] and "died" in loss[0]["cause"].lower()


def test_a_job_that_loses_two_replicas_fails_with_the_cause(worker: WorkerClient):
    wait_idle(worker, timeout=120)
    job = worker.submit(GenerationRequest(**LONG))
    os.kill(running_on(worker, job.id)["pid"], signal.SIGKILL)
    time.sleep(0.2)
    os.kill(running_on(worker, job.id, attempt=2, timeout=90)["pid"], signal.SIGKILL)
    failed = worker.wait(job.id, timeout=120)
    assert failed.status == FAILED
    assert "stopped 2 times" in failed.error and "ActorDiedError" in failed.error
    assert failed.outputs == []
    # The cluster goes on: Serve replaced both replicas.
    wait_idle(worker, timeout=120)
    assert worker.wait(worker.submit(GenerationRequest(**SHORT)).id, timeout=180).status == DONE


def test_the_job_store_survives_an_ingress_restart(worker: WorkerClient, tmp_path):
    wait_idle(worker, timeout=120)
    done = worker.wait(worker.submit(GenerationRequest(**SHORT)).id, timeout=120)
    cut_short = worker.submit(GenerationRequest(**{**LONG, "duration": 240.0}))
    running_on(worker, cut_short.id)
    ingress_pid = worker.health()["pid"]
    os.kill(ingress_pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        try:
            if worker.health()["pid"] != ingress_pid:
                break
        except Exception:  # noqa: BLE001 - the proxy answers 5xx or not at all while Serve restarts it
            pass
        assert time.monotonic() < deadline, "Serve did not restart the ingress"
        time.sleep(0.5)
    again = worker.status(done.id)
    assert again.status == DONE and [o.path for o in again.outputs] == [o.path for o in done.outputs]
    assert worker.download(done.id, 0, tmp_path).read_bytes() == Path(done.outputs[0].path).read_bytes()
    # The job that was running is queued again by the new ingress, and made.
    assert worker.wait(cut_short.id, timeout=180).status == DONE
    assert worker.wait(worker.submit(GenerationRequest(**SHORT)).id, timeout=120).status == DONE


# -- per-user tokens -----------------------------------------------------------------------------


def run_tokens(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acestep_core", "tokens", *args], cwd=REPO_ROOT,
                          env=dict(os.environ, ACESTEP_DCC_HOME=str(home)), capture_output=True, text=True,
                          timeout=60)


def test_a_user_token_is_recorded_with_the_job_and_revocation_locks_it_out(worker: WorkerClient, cluster_process):
    added = run_tokens(cluster_process.home, "add", "alice")
    assert added.returncode == 0, added.stderr
    alice = WorkerClient(worker.url, added.stdout.strip())
    job = alice.wait(alice.submit(GenerationRequest(**SHORT)).id, timeout=120)
    assert job.status == DONE and job.requested_by == "alice"
    assert [j.requested_by for j in worker.jobs(limit=1)] == ["alice"]  # the history says it too
    assert "alice" in run_tokens(cluster_process.home, "list").stdout

    revoked = run_tokens(cluster_process.home, "revoke", "alice")
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(WorkerAuthFailed):
        alice.health()
    assert worker.health()["backend"] == "sketch"  # the cluster's own token still works
    unknown = run_tokens(cluster_process.home, "revoke", "alice")
    assert unknown.returncode == 2 and "no token for 'alice'" in unknown.stderr
