"""torch on a busy machine: the library defaults against acestep-dcc's thread settings
(acestep_core.threads), under an artificial load.

    .venv/bin/python bench/bench_threads.py [--busy N] [--repeats 3] [--workload matmul|tiny]

A busy-loop process runs on every usable core (N of them, default one per core) while a
fresh interpreter runs a torch workload: many small matrix products and 1-D
convolutions (each a parallel region ending in a barrier, as a diffusion model's layers
are), or with --workload tiny one generation on the tiny ACE-Step test checkpoint. Each
setting runs in its own process, alternately, `repeats` times; the median wall times
and their ratio are printed, and the same without the load for reference. On 2 cores at
load ~3.5 the issue measured a tiny-checkpoint generation at 16.7 s with the defaults
and 5.0 s with OMP_WAIT_POLICY=PASSIVE.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "GOMP_SPINCOUNT", "ACESTEP_DCC_THREAD_SETTINGS")

_MATMUL = """
import json, sys, time
if sys.argv[1] == "acestep-dcc":
    from acestep_core.threads import apply_thread_settings
    apply_thread_settings()
import torch
torch.manual_seed(0)
a, b = torch.randn(192, 192), torch.randn(192, 192)
signal, kernel = torch.randn(1, 64, 4096), torch.randn(64, 64, 3)
for _ in range(20):
    a @ b
started = time.perf_counter()
for _ in range(800):
    (a @ b).relu_()
    torch.nn.functional.conv1d(signal, kernel, padding=1)
print(json.dumps({"seconds": time.perf_counter() - started, "threads": torch.get_num_threads()}))
"""

_TINY = """
import json, sys, tempfile, time
from pathlib import Path
if sys.argv[1] == "acestep-dcc":
    from acestep_core.threads import apply_thread_settings
    apply_thread_settings()
sys.path.insert(0, sys.argv[2])
from tiny_checkpoint import build_tiny_checkpoint
from acestep_core.backends.acestep import AceStepBackend
from acestep_core.generation import generate_cues
from acestep_core.request import GenerationRequest
import torch
with tempfile.TemporaryDirectory() as scratch:
    backend = AceStepBackend(build_tiny_checkpoint(Path(scratch) / "tiny"), device="cpu")
    backend.load()
    request = GenerationRequest(prompt="boss battle, rock", duration=10, seed=1)
    generate_cues(request, backend, Path(scratch) / "warm" / "cue.wav")
    started = time.perf_counter()
    generate_cues(request, backend, Path(scratch) / "run" / "cue.wav")
    took = time.perf_counter() - started
print(json.dumps({"seconds": took, "threads": torch.get_num_threads()}))
"""


def busy_loop() -> None:
    while True:
        pass


def run(setting: str, workload: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    environment["PYTHONPATH"] = str(ROOT)
    if setting == "defaults":
        environment["ACESTEP_DCC_THREAD_SETTINGS"] = "0"
    code = _TINY if workload == "tiny" else _MATMUL
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", code, setting, str(ROOT / "tests")], env=environment,
                              cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {setting} run failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workload: str, repeats: int) -> dict[str, tuple[float, int]]:
    times: dict[str, list[float]] = {"defaults": [], "acestep-dcc": []}
    threads = {}
    for _ in range(repeats):
        for setting in times:  # alternate, so a change in the machine's load hits both alike
            result = run(setting, workload)
            times[setting].append(result["seconds"])
            threads[setting] = result["threads"]
    return {setting: (statistics.median(values), threads[setting]) for setting, values in times.items()}


def report(title: str, results: dict[str, tuple[float, int]]) -> None:
    print(title)
    for setting, (seconds, threads) in results.items():
        print(f"  {setting:12s} {seconds:7.2f} s  ({threads} torch threads)")
    ratio = results["defaults"][0] / results["acestep-dcc"][0]
    print(f"  defaults / acestep-dcc: {ratio:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=None, help="busy-loop processes (default: one per usable core)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workload", choices=("matmul", "tiny"), default="matmul")
    parser.add_argument("--no-idle", action="store_true", help="skip the reference run without load")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from acestep_core.threads import recommended, usable_cores

    busy = usable_cores() if args.busy is None else args.busy
    print(f"torch {args.workload} workload, {usable_cores()} usable cores; acestep-dcc's settings: "
          + ", ".join(f"{k}={v}" for k, v in recommended().items()))
    if not args.no_idle:
        report(f"idle machine (load average {os.getloadavg()[0]:.2f}):", measure(args.workload, args.repeats))
    loaders = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(busy)]
    for loader in loaders:
        loader.start()
    try:
        time.sleep(1.0)
        results = measure(args.workload, args.repeats)
        report(f"under load: {busy} busy-loop processes (load average {os.getloadavg()[0]:.2f}):", results)
    finally:
        for loader in loaders:
            loader.terminate()
        for loader in loaders:
            loader.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
