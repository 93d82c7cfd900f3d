"""What the worker costs on top of the backend.

1. End to end through the worker (submit -> files on disk, the real client learning of
   the end by long polling; also by polling every 5 ms) against a direct generate_cues call, both on the same tiny random ACE-Step
   checkpoint, in the same run, interleaved. Goal: worker <= 1.05 x direct + 50 ms.
2. One status poll, client side (median), on a running and on a finished job.
3. The worker's idle memory (RSS): sketch backend, and the tiny checkpoint loaded.

    .venv/bin/python bench/bench_worker.py [--runs 10] [--duration 10] [--json out.json]

The tiny checkpoint's numbers are the worker's overhead against a fast backend,
which is the hard case for the ratio: a real model's seconds of denoising only
make the fixed cost smaller in proportion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tiny_checkpoint.py lives with the test fixtures

from acestep_core.client import WorkerClient  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402
from acestep_core.worker.discovery import read_discovery  # noqa: E402

GOAL_RATIO = 1.05
GOAL_FIXED_S = 0.050
POLL_INTERVAL_S = 0.005  # how often the bench's client polls while a job runs


def start_worker(home: Path, *args: str) -> tuple[subprocess.Popen, WorkerClient]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ACESTEP_DCC_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    log = open(home / "bench-worker.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "acestep_core.worker", *args], env=env, cwd=REPO_ROOT,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = read_discovery(home / "state")
        if info and info.pid == process.pid:
            client = WorkerClient(info.url, info.token, timeout=10)
            if client.alive():
                return process, client
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited: {(home / 'bench-worker.log').read_text()[-2000:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the worker did not start within 120 s")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def through_worker(client: WorkerClient, request: GenerationRequest, long_poll: bool = True) -> float:
    """Submit, then learn of the end by long polling (as client.wait does) or by polling
    every POLL_INTERVAL_S (as a host's UI timer would, only faster)."""
    began = time.perf_counter()
    job = client.submit(request)
    while True:
        status = client.status(job.id, wait=10.0 if long_poll else 0.0)
        if status.finished:
            break
        if not long_poll:
            time.sleep(POLL_INTERVAL_S)
    took = time.perf_counter() - began
    assert status.status == "done", status.error
    assert all(Path(o.path).is_file() for o in status.outputs)
    return took


def direct(backend, request: GenerationRequest, folder: Path, n: int) -> float:
    """generate_cues called in-process, from a thread of its own as the worker's runner
    does. (This note once said torch ran several times slower from the main thread. It
    was not the thread: it was OpenMP's threads spin-waiting at every barrier while their
    partner was descheduled by other load on the machine, which hits whichever run meets
    the load. bench/bench_threads.py shows it, 7x under a busy loop per core, and
    acestep_core.threads, which the CLI and the worker apply, removes it.)"""
    from acestep_core.generation import generate_cues

    took: list[float] = []

    def run() -> None:
        began = time.perf_counter()
        outputs = generate_cues(request, backend, folder / f"direct-{n}" / "cue.wav")
        took.append(time.perf_counter() - began)
        assert all(Path(o.path).is_file() for o in outputs)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if not took:
        raise RuntimeError("the direct generate_cues call failed (see the traceback above)")
    return took[0]


def poll_cost(client: WorkerClient, job_id: str, count: int) -> float:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        client.status(job_id)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of audio per job")
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch/OpenMP threads for both sides (default 1: steady timings on a shared "
                             "machine, where OpenMP spinning under contention swamps the overhead; 0 = torch's default)")
    args = parser.parse_args()
    if args.torch_threads:
        # Set before torch is imported here, and inherited by the worker process.
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)

    from acestep_core.backends import create_backend
    from tiny_checkpoint import build_tiny_checkpoint

    results: dict = {"runs": args.runs, "duration_s": args.duration, "poll_interval_s": POLL_INTERVAL_S,
                     "torch_threads": args.torch_threads or "default"}
    with tempfile.TemporaryDirectory(prefix="acestep-bench-") as temp:
        temp = Path(temp)
        model = build_tiny_checkpoint(temp / "acestep-v15-tiny-turbo")

        # Idle memory first, before anything has run in either worker.
        try:
            sketch_process, sketch_client = start_worker(temp / "sketch-home", "--backend", "sketch")
        except RuntimeError as exc:
            print(f"sketch worker unavailable: {exc}", file=sys.stderr)
            results["idle_rss_mb_sketch"] = None
        else:
            time.sleep(1.0)
            results["idle_rss_mb_sketch"] = round(rss_mb(sketch_process.pid), 1)
            sketch_client.shutdown()
            sketch_process.wait(30)

        process, client = start_worker(temp / "acestep-home", "--backend", "acestep", "--model", str(model),
                                       "--preload")
        while not client.health()["loaded"]:
            time.sleep(0.1)
        time.sleep(1.0)
        results["idle_rss_mb_acestep_tiny_loaded"] = round(rss_mb(process.pid), 1)

        backend = create_backend("acestep", model)
        backend.load()
        request = GenerationRequest(prompt="boss battle, synthwave, fast drums", duration=args.duration, seed=1)
        through_worker(client, request)  # warm both paths once
        direct(backend, request, temp, -1)
        worker_times, polled_times, direct_times = [], [], []
        for n in range(args.runs):
            worker_times.append(through_worker(client, request))
            direct_times.append(direct(backend, request, temp, n))
            polled_times.append(through_worker(client, request, long_poll=False))

        worker_median = statistics.median(worker_times)
        direct_median = statistics.median(direct_times)
        # Runs are interleaved, so each pair saw the same machine load; the paired ratio
        # and the best-of figures hold up when other processes share the CPU.
        paired = statistics.median(w / d for w, d in zip(worker_times, direct_times))
        results.update({
            "direct_median_s": round(direct_median, 4),
            "worker_median_s": round(worker_median, 4),
            "ratio_of_medians": round(worker_median / direct_median, 3),
            "ratio_paired_median": round(paired, 3),
            "overhead_median_ms": round((worker_median - direct_median) * 1000, 1),
            "direct_best_s": round(min(direct_times), 4),
            "worker_best_s": round(min(worker_times), 4),
            "overhead_best_ms": round((min(worker_times) - min(direct_times)) * 1000, 1),
            "worker_polled_median_s": round(statistics.median(polled_times), 4),
            "goal": f"worker <= {GOAL_RATIO} x direct + {GOAL_FIXED_S * 1000:.0f} ms",
            "goal_met_median": worker_median <= GOAL_RATIO * direct_median + GOAL_FIXED_S,
            "goal_met_best": min(worker_times) <= GOAL_RATIO * min(direct_times) + GOAL_FIXED_S,
        })

        finished = client.jobs(limit=1)[0].id
        results["poll_median_ms_finished_job"] = round(poll_cost(client, finished, args.polls) * 1000, 3)
        running = client.submit(GenerationRequest(prompt="long", duration=60.0, steps=200))
        while client.status(running.id).status != "running":
            time.sleep(0.01)
        results["poll_median_ms_running_job"] = round(poll_cost(client, running.id, args.polls) * 1000, 3)
        client.cancel(running.id)
        results["health_median_ms"] = round(statistics.median(
            _timed(client.health) for _ in range(min(args.polls, 200))) * 1000, 3)
        client.shutdown()
        process.wait(30)

    for name, value in results.items():
        print(f"{name:34} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if results["goal_met_median"] else 1


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
