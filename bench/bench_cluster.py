"""What the Ray Serve cluster gives and costs, on this machine (sketch backend, CPU).

1. Throughput: the same batch of jobs through a cluster of 1 replica and of 2, as jobs
   a minute and their ratio (2 cores here: the ideal is 2.0).
2. Latency added over the single worker: one short job, submit -> done (the client
   learning of the end by long polling), and one status poll, median of --runs, the
   worker and the cluster in turn.

    .venv/bin/python bench/bench_cluster.py [--jobs 8] [--seconds 120] [--runs 15] [--json out.json]

Ray runs on 127.0.0.1 only (acestep-dcc cluster up starts its own).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from acestep_core.client import WorkerClient  # noqa: E402
from acestep_core.cluster.up import free_port  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402
from acestep_core.worker.discovery import read_discovery  # noqa: E402


def start(home: Path, command: list[str], timeout: float = 240.0) -> tuple[subprocess.Popen, WorkerClient]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ACESTEP_DCC_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    log = open(home / "bench.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "acestep_core", *command], env=env, cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_discovery(home / "state")
        if info and info.pid == process.pid:
            client = WorkerClient(info.url, info.token, timeout=30)
            if client.alive():
                return process, client
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {(home / 'bench.log').read_text()[-3000:]}")
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{command[0]} did not start within {timeout:g} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def cluster(home: Path, replicas: int) -> tuple[subprocess.Popen, WorkerClient]:
    return start(home, ["cluster", "up", "--backend", "sketch", "--replicas", str(replicas), "--num-cpus", "2",
                        "--port", str(free_port())])


def throughput(client: WorkerClient, jobs: int, seconds: float) -> float:
    """Jobs a minute for a batch submitted at once (after one warm-up job)."""
    request = GenerationRequest(prompt="tense boss battle, synthwave, fast drums", duration=seconds, bpm=140.0)
    client.wait(client.submit(request).id, timeout=300)
    began = time.perf_counter()
    ids = [client.submit(request).id for _ in range(jobs)]
    for job_id in ids:
        assert client.wait(job_id, timeout=600).status == "done"
    return jobs / (time.perf_counter() - began) * 60.0


def latencies(client: WorkerClient, runs: int) -> tuple[list[float], list[float]]:
    request = GenerationRequest(prompt="calm exploration, ambient", duration=1.0, bpm=120.0)
    ends, polls = [], []
    for _ in range(runs):
        began = time.perf_counter()
        job = client.wait(client.submit(request).id, timeout=120)
        ends.append(time.perf_counter() - began)
        began = time.perf_counter()
        client.status(job.id)
        polls.append(time.perf_counter() - began)
    return ends, polls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each throughput job's cue")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    figures: dict = {"jobs": args.jobs, "cue_seconds": args.seconds, "runs": args.runs, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        root = Path(scratch)
        per_minute = {}
        for replicas in (1, 2):
            process, client = cluster(root / f"cluster-{replicas}", replicas)
            try:
                per_minute[replicas] = throughput(client, args.jobs, args.seconds)
                if replicas == 2:
                    cluster_ends, cluster_polls = latencies(client, args.runs)
            finally:
                stop(process)
            print(f"throughput, {replicas} replica(s): {per_minute[replicas]:.1f} jobs/min "
                  f"({args.jobs} jobs of {args.seconds:g} s)", flush=True)
        figures["jobs_per_minute"] = per_minute
        figures["throughput_ratio_2_over_1"] = per_minute[2] / per_minute[1]
        print(f"throughput ratio, 2 replicas over 1: {figures['throughput_ratio_2_over_1']:.2f}x", flush=True)

        process, client = start(root / "worker", ["worker", "--backend", "sketch"])
        try:
            worker_ends, worker_polls = latencies(client, args.runs)
        finally:
            stop(process)
    for name, worker_values, cluster_values in (("submit -> done", worker_ends, cluster_ends),
                                                ("status poll", worker_polls, cluster_polls)):
        w, c = statistics.median(worker_values) * 1000, statistics.median(cluster_values) * 1000
        figures[name] = {"worker_ms": round(w, 2), "cluster_ms": round(c, 2), "added_ms": round(c - w, 2)}
        print(f"{name} (1 s cue, median of {args.runs}): worker {w:.1f} ms, cluster {c:.1f} ms, "
              f"the cluster adds {c - w:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
