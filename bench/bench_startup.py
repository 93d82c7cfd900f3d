"""Wall time of a one-shot `acestep-dcc generate` of a 5 s sketch cue, and the share of it
spent importing. Goal: <= 0.35 s.

    .venv/bin/python bench/bench_startup.py [--repeats 7] [--seconds 5] [--baseline REV]

Every run is a fresh interpreter (`python -m acestep_core generate ... --backend sketch`)
writing into a fresh folder, as a user or a build script runs it. Prints the fastest and
the median wall time, then one run under `python -X importtime`: the time spent in
top-level imports and the heaviest of them, and whether scipy.signal, torch or diffusers
were imported at all. With --baseline REV the same is measured for that git revision
(git archive into a temporary folder, first on PYTHONPATH) and printed beside it.
The machine's load is printed too: other work on it moves these figures more than
anything here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.35
HEAVY = ("scipy.signal", "torch", "diffusers")


def command(seconds: float, folder: Path) -> list[str]:
    return [sys.executable, "-m", "acestep_core", "generate", "boss battle, rock", "--seconds", f"{seconds:g}",
            "--seed", "1", "--backend", "sketch", "-o", str(folder / "cue.wav")]


def run_once(seconds: float, environment: dict[str, str], extra: list[str] | None = None) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as scratch:
        argv = command(seconds, Path(scratch))
        if extra:
            argv[1:1] = extra
        started = time.perf_counter()
        done = subprocess.run(argv, env=environment, cwd=scratch, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the command failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, done.stderr


def imports(stderr: str) -> tuple[float, list[tuple[float, str]]]:
    """(seconds in top-level imports, the five heaviest) from -X importtime output."""
    top = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # one space: a top-level import
            top.append((int(cumulative) / 1e6, name.strip()))
    return sum(t for t, _ in top), sorted(top, reverse=True)[:5]


def heavy_modules(seconds: float, environment: dict[str, str]) -> list[str]:
    """Which of HEAVY a run imported (the CLI's own code path, in-process)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n    runpy.run_module('acestep_core', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.__stdout__)\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        argv = [sys.executable, "-c", probe, "acestep_core"] + command(seconds, Path(scratch))[3:]
        done = subprocess.run(argv, env=environment, cwd=scratch, capture_output=True, text=True)
    return [name for name in done.stdout.strip().split(",") if name]


def measure(label: str, seconds: float, repeats: int, environment: dict[str, str]) -> dict:
    run_once(seconds, environment)  # warm the file cache and write .pyc files
    times = [run_once(seconds, environment)[0] for _ in range(repeats)]
    _, stderr = run_once(seconds, environment, ["-X", "importtime"])
    import_s, heaviest = imports(stderr)
    return {"label": label, "best": min(times), "median": statistics.median(times), "imports": import_s,
            "heaviest": heaviest, "heavy": heavy_modules(seconds, environment)}


def user_environment() -> dict[str, str]:
    """This environment as a user's shell has it: .pyc files are written and read (pip
    compiles them on install; an editable install writes them on the first run). With
    PYTHONDONTWRITEBYTECODE set, as on some CI machines, every run would compile all of
    acestep_core from source again (about 60 ms here)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def baseline_environment(revision: str, folder: Path) -> dict[str, str]:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "acestep_core"], capture_output=True,
                             check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return {**user_environment(), "PYTHONPATH": str(folder)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline", help="a git revision to measure beside this checkout")
    args = parser.parse_args()
    here = {**user_environment(), "PYTHONPATH": str(ROOT)}
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("PYTHONDONTWRITEBYTECODE is set here; the runs measured write and use .pyc files, as a user's do")
    print(f"acestep-dcc generate, {args.seconds:g} s sketch cue, {args.repeats} runs, "
          f"load average {os.getloadavg()[0]:.2f}")
    results = [measure("this checkout", args.seconds, args.repeats, here)]
    with tempfile.TemporaryDirectory() as scratch:
        if args.baseline:
            results.append(measure(args.baseline, args.seconds, args.repeats,
                                   baseline_environment(args.baseline, Path(scratch))))
    print(f"{'':16s} {'fastest':>8s} {'median':>8s} {'imports':>8s} {'share':>6s}  heavy modules imported")
    for r in results:
        print(f"{r['label'][:16]:16s} {r['best']:7.3f}s {r['median']:7.3f}s {r['imports']:7.3f}s "
              f"{r['imports'] / r['median']:6.0%}  {', '.join(r['heavy']) or 'none'}")
    for r in results:
        print(f"heaviest imports, {r['label']}: " + ", ".join(f"{name} {t * 1000:.0f} ms" for t, name in r["heaviest"]))
    if len(results) == 2:
        print(f"ratio (baseline / this checkout, median): {results[1]['median'] / results[0]['median']:.2f}x")
    best = results[0]["median"]
    print(f"median {best:.3f} s: {'meets' if best <= GOAL_S else 'misses'} the {GOAL_S:g} s goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
