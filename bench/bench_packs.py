"""Style packs on the tiny random checkpoint (CPU): training time per step, and what a
pack switch costs next to loading the model. Prints figures; run from the checkout:

    .venv/bin/python bench/bench_packs.py [--steps 20] [--threads 1]

The tiny model says nothing about a real GPU run's time or memory (see the README's
"Make a pack from your own music"); it shows the code path's fixed costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from test_packs_support import write_music
    from tiny_checkpoint import build_tiny_checkpoint

    from acestep_core.backends.acestep import AceStepBackend
    from acestep_core.packs import PackStore
    from acestep_core.packs.train import TrainingOptions, train_pack
    from acestep_core.request import GenerationRequest

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoint = build_tiny_checkpoint(root / "acestep-v15-tiny-turbo")
        music = write_music(root / "music")
        stamps: list[float] = []
        started = time.perf_counter()
        pack = train_pack(music, checkpoint, root / "a", TrainingOptions(name="a", steps=args.steps, seconds=2,
                                                                         save_every=args.steps),
                          device="cpu", on_progress=lambda progress: stamps.append(time.perf_counter()))
        total = time.perf_counter() - started
        steps = [b - a for a, b in zip(stamps, stamps[1:])]
        print(f"train {args.steps} steps on 2 files of 2 s ({args.threads} thread(s)): {total:.2f} s in all "
              f"(model load and encoding included), median step {statistics.median(steps) * 1000:.0f} ms")
        store = PackStore(root / "packs")
        store.install(pack.folder)
        store.install(train_pack(music, checkpoint, root / "b", TrainingOptions(name="b", steps=2, seconds=2, seed=1),
                                 device="cpu").folder)
        backend = AceStepBackend(checkpoint, device="cpu", packs_folder=store.folder)
        started = time.perf_counter()
        backend.load()
        load_s = time.perf_counter() - started

        def run(**fields) -> float:
            request = GenerationRequest(prompt="chiptune", duration=2.0, steps=2, seed=1, **fields).validated()
            begun = time.perf_counter()
            backend.generate(request, [1], lambda progress: None, lambda: False)
            return time.perf_counter() - begun

        base = statistics.median(run() for _ in range(3))
        first = {name: run(style=name) for name in ("a", "b")}  # each adapter read once
        switched = statistics.median(run(style=name) for name in ("a", "b") * 3)
        print(f"model load {load_s * 1000:.0f} ms; a 2 s cue without a pack {base * 1000:.0f} ms, "
              f"first use of a pack {statistics.median(first.values()) * 1000:.0f} ms, "
              f"switching between two loaded packs {switched * 1000:.0f} ms a cue; "
              f"pipeline loads: {backend.pipeline_loads}")


if __name__ == "__main__":
    main()
