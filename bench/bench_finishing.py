"""Time spent outside the pipeline call (finishing and writing) as a share of the
pipeline call itself, on a tiny random ACE-Step checkpoint on the CPU. Goal: <= 5%.

    .venv/bin/python bench/bench_finishing.py [--seconds 30] [--candidates 2] [--repeats 3] [--stages]

Both figures come from the same generate_cues runs: the pipeline call is timed inside
(generate_s in the sidecar), the rest is the whole call minus loading and generating.
Every repeat is printed with the load average: the tiny pipeline's speed swings several
fold with what else runs on the machine, the finishing much less. --stages also times
each finishing step alone on the first candidate's audio (median of the repeats).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny_checkpoint import build_tiny_checkpoint  # noqa: E402

from acestep_core.audio import analysis, finishing, loudness  # noqa: E402
from acestep_core.audio.writer import write_audio  # noqa: E402
from acestep_core.backends.acestep import AceStepBackend  # noqa: E402
from acestep_core.generation import backend_request, finish_cue, generate_cues  # noqa: E402
from acestep_core.progress import ignore_progress, never_cancelled  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="also time each finishing step alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_checkpoint(Path(scratch) / "tiny")
        backend = AceStepBackend(model, device="cpu")
        backend.load()
        request = GenerationRequest(prompt="boss battle, rock", duration=args.seconds,
                                    candidates=args.candidates, seed=1)
        print(f"{args.candidates} x {args.seconds:g} s at 44.1 kHz/16-bit, tiny checkpoint, CPU, "
              f"median of {args.repeats}")
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
            print(f"  repeat {repeat}: pipeline {pipeline_s[-1] * 1000:8.1f} ms, outside {outside_s[-1] * 1000:7.1f} ms, "
                  f"ratio {outside_s[-1] / pipeline_s[-1]:.3f}, load average {os.getloadavg()[0]:.2f}")
        pipe, outside = statistics.median(pipeline_s), statistics.median(outside_s)
        print(f"pipeline call        {pipe * 1000:8.1f} ms")
        print(f"finishing + writing  {outside * 1000:8.1f} ms")
        print(f"ratio                {outside / pipe:8.3f}   (goal <= 0.05)")
        if args.stages:
            raw = backend.generate(backend_request(request.validated()), [1] * request.candidates,
                                   ignore_progress, never_cancelled)
            print_stages(raw.samples[0], raw.sample_rate, request.validated(), raw.settings,
                         Path(scratch) / "stage.wav", args.repeats)


def print_stages(samples, source_rate: int, request: GenerationRequest, settings: dict, path: Path,
                 repeats: int) -> None:
    """Each step of finish_cue alone, on one candidate, as finish_cue runs it for this request."""
    rate = request.sample_rate
    frames = finishing.finish_candidate(samples, source_rate, rate, request.duration, request.bit_depth)
    signal = analysis.analysis_signal(frames, rate)
    filtered = loudness.remove_subsonic(frames, rate)
    finished, _ = loudness.finish_loudness(frames, rate, request.loudness_target_lufs(), request.true_peak_ceiling_db)
    stages: dict[str, Callable[[], object]] = {
        "resample, cut, peak": lambda: finishing.finish_candidate(samples, source_rate, rate, request.duration,
                                                                  request.bit_depth),
        "analysis signal": lambda: analysis.analysis_signal(frames, rate),
        "tempo": lambda: analysis.estimate_tempo(signal, analysis.ANALYSIS_RATE),
        "key": lambda: analysis.estimate_key(signal, analysis.ANALYSIS_RATE),
        "high-pass": lambda: loudness.remove_subsonic(frames, rate),
        "loudness (K, gates)": lambda: loudness.integrated_loudness(filtered, rate),
        "true-peak envelope": lambda: loudness.true_peak_envelope(filtered),
        "finish_loudness": lambda: loudness.finish_loudness(frames, rate, request.loudness_target_lufs(),
                                                            request.true_peak_ceiling_db),
        "write": lambda: write_audio(path, finished, rate, request.output_format, request.bit_depth, {}),
        "finish_cue (all but write)": lambda: finish_cue(samples, source_rate, request, settings),
    }
    print(f"stages, one candidate, median of {repeats}:")
    for name, run in stages.items():
        print(f"  {name:28s} {_median_ms(run, repeats):8.1f} ms")


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


if __name__ == "__main__":
    main()
