"""Batched vs sequential candidates on a tiny random ACE-Step checkpoint.

    .venv/bin/python bench/bench_batching.py [--repeats 5] [--duration 10] [--steps 8]

For each checkpoint size: 4 candidates in one batched generate() call, against 4
generate() calls of one candidate each, measured side by side (alternating, after a
warm-up) in one process; prints the medians and their ratio. Goal: ratio <= 0.6.
The "tiny" size is the test fixture's, where the VAE decoder does most of the work;
"small" is wider and deeper everywhere; "dit-heavy" puts the work in the DiT, which is
the part batching speeds up (the decoder runs one candidate at a time either way).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tiny_checkpoint import build_tiny_checkpoint  # noqa: E402

from acestep_core.backends.acestep import AceStepBackend  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402

CANDIDATES = 4
GOAL = 0.6
SIZES = {
    "tiny": {},
    "small": dict(hidden_size=256, intermediate_size=768, num_layers=6, num_heads=8, num_kv_heads=4,
                  head_dim=32, text_hidden_size=128, text_layers=2, encoder_layers=2,
                  latent_channels=16, vae_channels=16),
    # Most of the work in the DiT, as with base checkpoints (32+ steps with guidance).
    "dit-heavy": dict(hidden_size=512, intermediate_size=1536, num_layers=8, num_heads=8, num_kv_heads=4,
                      head_dim=64, text_hidden_size=128, text_layers=2, encoder_layers=2),
}


def never() -> bool:
    return False


def ignore(_progress) -> None:
    return None


def time_call(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_size(name: str, folder: Path, duration: float, steps: int, repeats: int) -> dict:
    backend = AceStepBackend(folder, device="cpu")
    backend.load()
    seeds = list(range(100, 100 + CANDIDATES))
    batched_request = GenerationRequest(prompt="tense boss battle, synthwave", duration=duration, steps=steps,
                                        candidates=CANDIDATES).validated()
    single_request = GenerationRequest(prompt="tense boss battle, synthwave", duration=duration, steps=steps,
                                       candidates=1).validated()

    def batched() -> None:
        backend.generate(batched_request, seeds, ignore, never)

    def sequential() -> None:
        for seed in seeds:
            backend.generate(single_request, [seed], ignore, never)

    batched()  # warm-up: first calls pay for lazy initialisation in torch and diffusers
    sequential()
    batched_times, sequential_times = [], []
    for repeat in range(repeats):
        # Alternate which goes first, so drift on a shared machine hits both alike.
        if repeat % 2:
            sequential_times.append(time_call(sequential))
            batched_times.append(time_call(batched))
        else:
            batched_times.append(time_call(batched))
            sequential_times.append(time_call(sequential))
    backend.unload()
    batched_median = statistics.median(batched_times)
    sequential_median = statistics.median(sequential_times)
    return {
        "size": name,
        "batched_s": batched_median,
        "sequential_s": sequential_median,
        "ratio": batched_median / sequential_median,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of audio per candidate")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=list(SIZES))
    args = parser.parse_args(argv)

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {CANDIDATES} candidates of "
          f"{args.duration:g} s, {args.steps} steps, median of {args.repeats}")
    print(f"{'size':<10} {'batched':>10} {'4 sequential':>13} {'ratio':>7}  goal <= {GOAL}")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.sizes:
            folder = build_tiny_checkpoint(Path(scratch) / f"acestep-v15-{name}", **SIZES[name])
            result = bench_size(name, folder, args.duration, args.steps, args.repeats)
            verdict = "meets goal" if result["ratio"] <= GOAL else "misses goal"
            print(f"{name:<10} {result['batched_s']:>9.3f}s {result['sequential_s']:>12.3f}s "
                  f"{result['ratio']:>7.2f}  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
