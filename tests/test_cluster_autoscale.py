"""Autoscaling on the queue length: a cluster started with 1 replica and --max-replicas 2
adds the second replica when jobs wait, and both then run jobs at the same time. Also
the deployment options each backend gets (GPUs for the acestep backend only)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("ray.serve", reason="Ray Serve is not installed; the cluster tests need the [cluster] extra "
                                        "(pip install 'acestep-dcc[cluster]')")

from test_cluster import LONG, ClusterProcess, cluster_state  # noqa: E402

from acestep_core.cluster.app import ClusterSettings, replica_options  # noqa: E402
from acestep_core.jobs import CANCELLED, DONE  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402


def test_each_backend_gets_its_replicas_resources_and_scaling():
    acestep = replica_options(ClusterSettings(backend="acestep", replicas=4))
    assert acestep["ray_actor_options"]["num_gpus"] == 1.0 and acestep["num_replicas"] == 4
    assert acestep["max_ongoing_requests"] == 1  # one job per replica at a time
    sketch = replica_options(ClusterSettings(backend="sketch", replicas=2, max_replicas=6))
    assert sketch["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0} and "num_replicas" not in sketch
    scaling = sketch["autoscaling_config"]
    assert (scaling["min_replicas"], scaling["initial_replicas"], scaling["max_replicas"]) == (1, 2, 6)
    assert scaling["target_ongoing_requests"] == 1  # jobs waiting at the handle count: scale on the queue


def test_waiting_jobs_add_a_replica(tmp_path_factory):
    process = ClusterProcess(tmp_path_factory.mktemp("autoscale-home"), "--max-replicas", "2", replicas=1)
    client = process.start()
    try:
        # Two candidates each: a job outlasts the second replica's start on a busy machine.
        jobs = [client.submit(GenerationRequest(**LONG, candidates=2)) for _ in range(4)]
        deadline = time.monotonic() + 90
        while len({entry["pid"] for entry in cluster_state(client)["running"]}) < 2:
            assert time.monotonic() < deadline, f"no second replica came: {cluster_state(client)}"
            time.sleep(0.2)
        assert cluster_state(client)["replicas"]["autoscaling"]["max_replicas"] == 2
        answers = {job.id: client.cancel(job.id).status for job in jobs}
        endings = {job.id: client.wait(job.id, timeout=60).status for job in jobs}
        # A job that had already finished when its cancel came stays done; every other one is cancelled.
        assert all(endings[job_id] == (DONE if answer == DONE else CANCELLED)
                   for job_id, answer in answers.items()), f"cancel answered {answers}, the jobs ended {endings}"
        assert list(endings.values()).count(CANCELLED) >= 2, f"the jobs ended {endings}"
    finally:
        process.stop()
