"""Time spent outside the pipeline call (finishing and writing) as a share of the
pipeline call itself, on a tiny random ACE-Step checkpoint on the CPU. Goal: <= 5%.

    .venv/bin/python bench/bench_finishing.py [--seconds 30] [--candidates 2] [--repeats 3]

Both figures come from the same generate_cues runs: the pipeline call is timed inside
(generate_s in the sidecar), the rest is the whole call minus loading and generating.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny_checkpoint import build_tiny_checkpoint  # noqa: E402

from acestep_core.backends.acestep import AceStepBackend  # noqa: E402
from acestep_core.generation import generate_cues  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_checkpoint(Path(scratch) / "tiny")
        backend = AceStepBackend(model, device="cpu")
        backend.load()
        request = GenerationRequest(prompt="boss battle, rock", duration=args.seconds,
                                    candidates=args.candidates, seed=1)
        pipeline_s, outside_s = [], []
        for repeat in range(args.repeats + 1):
            started = time.perf_counter()
            outputs = generate_cues(request, backend, Path(scratch) / f"run{repeat}" / "cue.wav")
            total = time.perf_counter() - started
            timings = outputs[0].metadata["timings"]
            if repeat == 0:
                continue  # warm-up: first-call allocations
            pipeline_s.append(timings["generate_s"])
            outside_s.append(total - timings["generate_s"] - timings["load_s"])
    pipe, outside = statistics.median(pipeline_s), statistics.median(outside_s)
    print(f"{args.candidates} x {args.seconds:g} s at 44.1 kHz/16-bit, tiny checkpoint, CPU, median of {args.repeats}")
    print(f"pipeline call        {pipe * 1000:8.1f} ms")
    print(f"finishing + writing  {outside * 1000:8.1f} ms")
    print(f"ratio                {outside / pipe:8.3f}   (goal <= 0.05)")


if __name__ == "__main__":
    main()
