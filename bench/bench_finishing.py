"""Time spent outside the pipeline call (finishing and writing) as a share of the
pipeline call itself, on a tiny random ACE-Step checkpoint on the CPU. Goal: <= 5%.

    .venv/bin/python bench/bench_finishing.py [--seconds 30] [--candidates 2] [--repeats 3] [--stages]

Both figures come from the same generate_cues runs: the pipeline call is timed inside
(generate_s in the sidecar), the rest is the whole call minus loading and generating.
Every repeat is printed with the load average: the tiny pipeline's speed swings several
fold with what else runs on the machine, the finishing much less. --stages also times
each finishing step alone on the first candidate's audio (median of the repeats).

    .venv/bin/python bench/bench_finishing.py --long [--lengths 120 600] [--baseline REV]

--long finishes and writes one long sketch cue per length (the audio made first, not
timed), in a fresh process pinned to one CPU, and prints the finishing's speed in x real
time and the process's peak RSS against the raw float32 audio (stereo at the sketch's
44.1 kHz; 202 MiB for ten minutes; goal <= 3x). --baseline REV measures a git revision the same way
beside it (git archive into a temporary folder, first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RSS_GOAL = 3.0

# Run in a fresh interpreter: make the cue (not timed), then finish and write it.
_LONG_CHILD = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from acestep_core.backends.sketch import SketchBackend
from acestep_core.generation import backend_request, finish_cue, write_cue
from acestep_core.request import GenerationRequest
seconds = float(sys.argv[1])
loudness = None if sys.argv[2] == "none" else float(sys.argv[2])
request = GenerationRequest(prompt="intense boss battle, rock", duration=seconds, seed=3, loudness=loudness).validated()
raw = SketchBackend().generate(backend_request(request), [3], lambda p: None, lambda: False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with tempfile.TemporaryDirectory() as scratch:
    started = time.perf_counter()
    cue = finish_cue(raw.samples[0], raw.sample_rate, request, raw.settings)
    write_cue(Path(scratch) / "cue.wav", cue, request, {})
    took = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": took, "peak": peak, "before": before, "raw": raw.samples.nbytes}))
"""


def long_cues(lengths: list[float], loudness: str, baseline: str | None) -> int:
    targets = [("this checkout", {**os.environ, "PYTHONPATH": str(ROOT)})]
    with tempfile.TemporaryDirectory() as scratch:
        if baseline:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline, "acestep_core"],
                                     capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
            targets.append((baseline, {**os.environ, "PYTHONPATH": scratch}))
        print(f"finishing and writing a sketch cue (44.1 kHz/16-bit WAV, loudness {loudness}), one core, "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"{'':16s} {'length':>7s} {'x real time':>12s} {'wall':>8s} {'peak RSS':>10s} {'RSS/raw':>8s}"
              f" {'before finishing':>17s}")
        for seconds in lengths:
            for label, environment in targets:
                with tempfile.TemporaryDirectory() as folder:  # not the checkout: '' on sys.path beats PYTHONPATH
                    done = subprocess.run([sys.executable, "-c", _LONG_CHILD, f"{seconds:g}", loudness],
                                          env=environment, cwd=folder, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"the run failed: {done.stderr.strip()[-800:]}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{label[:16]:16s} {seconds:6g}s {seconds / r['seconds']:11.0f}x {r['seconds']:7.2f}s "
                      f"{r['peak'] / 2**20:8.0f} MiB {r['peak'] / r['raw']:7.2f}x {r['before'] / r['raw']:16.2f}x")
    print(f"peak RSS goal for ten minutes: <= {RSS_GOAL:g}x the raw audio ('before finishing' is the peak the "
          "backend and the imports had already reached)")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="also time each finishing step alone")
    parser.add_argument("--long", action="store_true", help="finish long sketch cues: speed and peak RSS")
    parser.add_argument("--lengths", type=float, nargs="+", default=[120.0, 600.0])
    parser.add_argument("--loudness", default="none", help="a LUFS target for --long (default: none)")
    parser.add_argument("--baseline", help="with --long: a git revision to measure beside this checkout")
    args = parser.parse_args()
    if args.long:
        raise SystemExit(long_cues(args.lengths, args.loudness, args.baseline))

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_checkpoint import build_tiny_checkpoint

    from acestep_core.backends.acestep import AceStepBackend
    from acestep_core.generation import backend_request, generate_cues
    from acestep_core.progress import ignore_progress, never_cancelled
    from acestep_core.request import GenerationRequest

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


def print_stages(samples, source_rate: int, request, settings: dict, path: Path, repeats: int) -> None:
    """Each step of finish_cue alone, on one candidate, as finish_cue runs it for this request."""
    from acestep_core.audio import analysis, finishing, loudness
    from acestep_core.audio.writer import write_audio
    from acestep_core.generation import finish_cue

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
