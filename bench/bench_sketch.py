"""The sketch backend's speed, one core: seconds of audio per second of compute.

    .venv/bin/python bench/bench_sketch.py [--seconds 60] [--repeats 3]
    .venv/bin/python bench/bench_sketch.py --end-to-end [--lengths 120 600] [--loudness -14] [--baseline REV]

The default mode times backend.generate alone, for each style: one cue (a first call,
with cold caches) and then `repeats` more with other seeds. Goal: >= 100x for 60 s.

--end-to-end times what `acestep-dcc generate --backend sketch` does after its imports:
generate_cues, from the request to the WAV and its sidecar (44.1 kHz/16-bit, the
loudness as asked, default none), each length in a fresh process pinned to one CPU
(taskset -c 0 does the same from outside; the CPU time is printed too, which other
load on the machine moves less than the wall time), and reports the process's peak RSS against
the raw float32 audio the backend hands over (stereo at the sketch's rate, 44.1 kHz: 202 MiB
for ten minutes).
Goals: >= 150x real time at 120 s and 600 s; peak RSS <= 3x the raw audio for ten minutes
(RSS_LENGTH_S and longer: under it the interpreter and its imports, ~100 MiB, weigh more
than the audio, and RSS/raw says little about finishing). --baseline
REV measures a git revision the same way (git archive into a temporary folder, first
on PYTHONPATH) and prints it beside this checkout. The load average is printed: other
work on the machine moves these figures.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL = 100.0
END_TO_END_GOAL = 150.0
RSS_GOAL = 3.0
RSS_LENGTH_S = 600.0  # the RSS goal is for a ten-minute cue
PROMPTS = {
    "rock": "intense boss battle, rock, electric guitar and drums",
    "synthwave": "tense boss battle, synthwave, fast drums",
    "orchestral": "heroic adventure, orchestral, strings and brass",
    "chiptune": "playful shop, chiptune",
    "lofi": "chill menu, lo-fi, rhodes",
    "ambient": "calm exploration, ambient, slow pads",
    "electronic": "racing, electronic, driving",
    "pop": "happy town, pop, piano",
    "horror": "creepy horror, dissonant, no drums",
    "folk": "campfire folk, acoustic guitar, fiddle",
    "jazz": "smoky jazz club, saxophone, brushed drums",
    "ballad": "sad piano ballad, choir, harp",
}

# Run in a fresh interpreter: one generate_cues call, then its figures as JSON.
_CHILD = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from acestep_core.backends.sketch import SketchBackend
from acestep_core.backends.sketch.synthesis import SAMPLE_RATE
from acestep_core.generation import generate_cues
from acestep_core.request import GenerationRequest
seconds, loudness = float(sys.argv[1]), (None if sys.argv[2] == "none" else float(sys.argv[2]))
request = GenerationRequest(prompt=sys.argv[3], duration=seconds, seed=3, loudness=loudness)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with tempfile.TemporaryDirectory() as scratch:
    started, cpu = time.perf_counter(), time.process_time()
    generate_cues(request, SketchBackend(), Path(scratch) / "cue.wav")
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": took, "cpu": cpu, "peak": peak, "before": before, "raw": seconds * SAMPLE_RATE * 2 * 4}))
"""


def pin_to_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def time_one(backend, request, seed: int) -> float:
    started = time.perf_counter()
    backend.generate(request, [seed], lambda progress: None, lambda: False)
    return time.perf_counter() - started


def per_style(seconds: float, repeats: int) -> int:
    sys.path.insert(0, str(ROOT))
    from acestep_core.backends.sketch import SketchBackend
    from acestep_core.request import GenerationRequest

    print(f"sketch backend, {seconds:g} s cue, one candidate, {pin_to_one_cpu()}")
    print(f"{'style':<11} {'first call':>14} {'median of ' + str(repeats):>16}   goal {GOAL:g}x")
    backend = SketchBackend()
    worst = float("inf")
    for style, prompt in PROMPTS.items():
        request = GenerationRequest(prompt=prompt, duration=seconds).validated()
        first = time_one(backend, request, seed=1)
        later = statistics.median(time_one(backend, request, seed=2 + k) for k in range(repeats))
        worst = min(worst, seconds / first, seconds / later)
        print(f"{style:<11} {seconds / first:>7.0f}x {first * 1000:>5.0f} ms"
              f" {seconds / later:>8.0f}x {later * 1000:>5.0f} ms")
    print(f"slowest: {worst:.0f}x real time ({'meets' if worst >= GOAL else 'misses'} the {GOAL:g}x goal)")
    return 0


def end_to_end_once(seconds: float, loudness: str, prompt: str, environment: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:  # not the checkout: '' on sys.path would win over PYTHONPATH
        done = subprocess.run([sys.executable, "-c", _CHILD, f"{seconds:g}", loudness, prompt], env=environment,
                              cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the run failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def end_to_end(lengths: list[float], loudness: str, repeats: int, prompt: str, baseline: str | None) -> int:
    here = {**os.environ, "PYTHONPATH": str(ROOT)}
    targets = [("this checkout", here)]
    with tempfile.TemporaryDirectory() as scratch:
        if baseline:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline, "acestep_core"],
                                     capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
            targets.append((baseline, {**os.environ, "PYTHONPATH": scratch}))
        print(f"generate_cues, sketch, 44.1 kHz/16-bit WAV, loudness {loudness}, one core, median of {repeats} "
              f"fresh processes, load average {os.getloadavg()[0]:.2f}")
        print(f"{'':16s} {'length':>7s} {'x real time':>12s} {'wall':>8s} {'CPU':>7s} {'x (CPU)':>8s} "
              f"{'peak RSS':>10s} {'RSS/raw':>8s}")
        ok = True
        for seconds in lengths:
            for label, environment in targets:
                runs = [end_to_end_once(seconds, loudness, prompt, environment) for _ in range(repeats)]
                took = statistics.median(r["seconds"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs)
                peak = statistics.median(r["peak"] for r in runs)
                raw = runs[0]["raw"]
                print(f"{label[:16]:16s} {seconds:6g}s {seconds / took:11.0f}x {took:7.2f}s {cpu:6.2f}s "
                      f"{seconds / cpu:7.0f}x {peak / 2**20:8.0f} MiB {peak / raw:7.2f}x")
                if label == "this checkout":
                    ok &= seconds / took >= END_TO_END_GOAL
                    ok &= seconds < RSS_LENGTH_S or peak / raw <= RSS_GOAL
    print(f"goals: >= {END_TO_END_GOAL:g}x real time, and peak RSS <= {RSS_GOAL:g}x the raw audio from "
          f"{RSS_LENGTH_S:g} s: {'met' if ok else 'missed'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--end-to-end", action="store_true", help="time generate_cues in fresh pinned processes")
    parser.add_argument("--lengths", type=float, nargs="+", default=[120.0, 600.0])
    parser.add_argument("--loudness", default="none", help="a LUFS target for --end-to-end (default: none)")
    parser.add_argument("--prompt", default=PROMPTS["rock"])
    parser.add_argument("--baseline", help="with --end-to-end: a git revision to measure beside this checkout")
    args = parser.parse_args()
    if args.end_to_end:
        return end_to_end(args.lengths, args.loudness, args.repeats, args.prompt, args.baseline)
    return per_style(args.seconds, args.repeats)


if __name__ == "__main__":
    raise SystemExit(main())
