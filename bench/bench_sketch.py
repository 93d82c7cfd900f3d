"""Realtime factor of the sketch backend: seconds of audio per second of compute, one core.

    .venv/bin/python bench/bench_sketch.py [--seconds 60] [--repeats 3]

Pins itself to one CPU and caps numpy's thread pools at one before importing numpy.
For each style it makes one cue (a first call, with cold caches) and then `repeats`
more with other seeds, and prints both. The goal is >= 100x real time for a 60 s cue.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acestep_core.backends.sketch import SketchBackend  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402

GOAL = 100.0
PROMPTS = {
    "rock": "intense boss battle, rock, electric guitar and drums",
    "synthwave": "tense boss battle, synthwave, fast drums",
    "orchestral": "heroic adventure, orchestral, strings and brass",
    "chiptune": "playful shop, chiptune",
    "lofi": "chill menu, lo-fi, rhodes",
    "ambient": "calm exploration, ambient, slow pads",
    "electronic": "racing, electronic, driving",
    "pop": "happy town, pop, piano",
}


def pin_to_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def time_one(backend: SketchBackend, request: GenerationRequest, seed: int) -> float:
    started = time.perf_counter()
    backend.generate(request, [seed], lambda progress: None, lambda: False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"sketch backend, {args.seconds:g} s cue, one candidate, {pin_to_one_cpu()}")
    print(f"{'style':<11} {'first call':>14} {'median of ' + str(args.repeats):>16}   goal {GOAL:g}x")
    backend = SketchBackend()
    worst = float("inf")
    for style, prompt in PROMPTS.items():
        request = GenerationRequest(prompt=prompt, duration=args.seconds).validated()
        first = time_one(backend, request, seed=1)
        later = statistics.median(time_one(backend, request, seed=2 + k) for k in range(args.repeats))
        worst = min(worst, args.seconds / first, args.seconds / later)
        print(f"{style:<11} {args.seconds / first:>7.0f}x {first * 1000:>5.0f} ms"
              f" {args.seconds / later:>8.0f}x {later * 1000:>5.0f} ms")
    print(f"slowest: {worst:.0f}x real time ({'meets' if worst >= GOAL else 'misses'} the {GOAL:g}x goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
