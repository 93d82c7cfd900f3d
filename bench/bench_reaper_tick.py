"""How long one REAPER defer tick of "Generate at edit cursor" takes while a job runs,
following the job with a StatusPoll (now) and with a JobWatcher thread (before).

    .venv/bin/python bench/bench_reaper_tick.py [--seconds 240] [--candidates 2] [--rate 30] [--rounds 2]

REAPER runs deferred code on its main thread, so a slow tick is a stutter in REAPER.
Each run is the real action script inside the REAPER stand-in (tests/reaper_standin,
inside mode: reaper_python, python-reapy in its inside mode) against one real sketch
worker, pumping REAPER's defer cycles at `rate` per second (REAPER does about 30) and
timing each cycle while the job runs. A tick checks for Cancel, takes one step of
following the job and renames the progress placeholder when the percentage changed.
Goal: median <= 2 ms.

Following the job, two ways, each run in its own process, alternating:
- poll:    StatusPoll (what the actions use): the tick sends a status request or takes
           the part of its answer that has arrived; no thread, never waits.
- watcher: a JobWatcher thread long-polls and the tick reads its newest answer (what the
           actions used before; put in place of StatusPoll in that process only).
And with REAPER's main thread between defer cycles either
- free:    sleeping with the GIL released (the stand-in as it is), or
- held:    holding the GIL, as REAPER does while it runs its own native code (a GIL-holding
           usleep through ctypes.PyDLL; Linux and macOS). A Python thread then runs only
           when a tick lets it: python-reapy issue #45.
The ticks that took a new status are reported on their own: they rename the placeholder.
(Before either, the tick made a blocking status call: 3-8 ms median, 7-18 ms p90, up to
335 ms on a busy worker.) On a machine shared with other work the maxima are mostly
the scheduler's, whichever way the job is followed.
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "hosts" / "reaper")]

GOAL_MS = 2.0
SCRIPT = REPO / "hosts" / "reaper" / "scripts" / "ACE-Step - Generate at edit cursor.py"
FOLLOWS = ("poll", "watcher")
GILS = ("free", "held")


class WatcherFollow:
    """The way before StatusPoll, in StatusPoll's shape: a JobWatcher thread asks the
    worker, poll() reads its newest answer."""

    def __init__(self, client, job_id: str):
        from acestep_core.client import JobWatcher

        self.job_id = job_id
        self._watcher = JobWatcher(client, job_id)

    def poll(self):
        return self._watcher.latest()

    def close(self) -> None:
        self._watcher.stop()


def one_run(args) -> dict:
    """One generation, ticked as REAPER would; the tick times while the job ran."""
    import acestep_core.client
    from reaper_standin.fixtures import InsideReaper

    if args.follow == "watcher":
        acestep_core.client.StatusPoll = WatcherFollow  # this process only
    if args.gil == "held":
        import ctypes

        usleep = ctypes.PyDLL(None).usleep  # PyDLL: the call keeps the GIL, as REAPER's native code does

        def idle(seconds: float) -> None:
            usleep(int(seconds * 1e6))
    else:
        idle = time.sleep

    root = Path(tempfile.mkdtemp(prefix="bench-reaper-tick-"))
    ticks_ms: list[float] = []
    updating_ms: list[float] = []
    labels: set[str] = set()
    with InsideReaper(root / "REAPER", root / "REAPER Media", [str(REPO / "hosts" / "reaper"), str(REPO)]) as reaper:
        project = reaper.reapy.Project()
        project.add_track(name="Music").select()
        reaper.open_saved_project(root / "game" / "level.rpp")
        reaper.answer_inputs(["tense boss battle, synthwave", f"{args.seconds:g}", str(args.candidates), "1"])
        reaper.run_script(SCRIPT)
        from acestep_reaper import generation

        [run] = generation.RUNNING.values()
        interval = 1.0 / args.rate
        while reaper.app.scripts.running():
            phase, updates = run.phase, run.status_updates
            started = time.perf_counter()
            reaper.pump()
            elapsed = (time.perf_counter() - started) * 1000.0
            if phase == "poll" and run.phase == "poll":  # a tick of a running job
                ticks_ms.append(elapsed)
                if run.status_updates > updates:
                    updating_ms.append(elapsed)
                labels.add(run.placement.placeholder.label)
            idle(max(0.0, interval - elapsed / 1000.0))
        outcome = run.outcome
    return {"ticks_ms": ticks_ms, "updating_ms": updating_ms, "labels": len(labels), "outcome": outcome}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="length of the cue to generate")
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--rate", type=float, default=30.0, help="defer cycles per second")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each way, alternating")
    parser.add_argument("--follow", choices=FOLLOWS, help=argparse.SUPPRESS)  # one run, in a child process
    parser.add_argument("--gil", choices=GILS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        print(json.dumps(one_run(args)))
        return 0

    from acestep_core.client import WorkerClient

    home = Path(tempfile.mkdtemp(prefix="bench-reaper-tick-home-"))
    os.environ["ACESTEP_DCC_HOME"] = str(home)  # the runs find this worker
    worker = WorkerClient.connect(worker_command=[sys.executable, "-m", "acestep_core.worker", "--backend", "sketch"], wait=60)
    ways = [(follow, gil) for gil in GILS for follow in FOLLOWS]
    found = {way: {"ticks_ms": [], "updating_ms": [], "labels": [], "outcomes": set()} for way in ways}
    try:
        for _ in range(args.rounds):
            for follow, gil in ways:
                command = [sys.executable, __file__, "--follow", follow, "--gil", gil, "--seconds", f"{args.seconds:g}",
                           "--candidates", str(args.candidates), "--rate", f"{args.rate:g}"]
                done = subprocess.run(command, capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 2
                result = json.loads(done.stdout.strip().splitlines()[-1])
                kept = found[(follow, gil)]
                kept["ticks_ms"] += result["ticks_ms"]
                kept["updating_ms"] += result["updating_ms"]
                kept["labels"].append(result["labels"])
                kept["outcomes"].add(result["outcome"])
    finally:
        worker.shutdown()

    print(f"Generate at edit cursor: {args.seconds:g} s cue x {args.candidates}, sketch worker, "
          f"{args.rate:g} defer cycles/s, {args.rounds} run(s) of each way, alternating")
    print(f"{'follow':8} {'GIL':5} {'ticks':>6} {'new':>4} {'labels':>7}  {'every tick (median / p90 / max ms)':36} "
          f"{'ticks with a new status':24}  outcome")
    for (follow, gil), kept in found.items():
        print(f"{follow:8} {gil:5} {len(kept['ticks_ms']):6d} {len(kept['updating_ms']):4d} "
              f"{statistics.mean(kept['labels']):7.1f}  {summary(kept['ticks_ms']):36} "
              f"{summary(kept['updating_ms']):24}  {', '.join(sorted(kept['outcomes']))}")
    worst = max(statistics.median(found[("poll", gil)]["ticks_ms"]) for gil in GILS)
    print(f"goal: median <= {GOAL_MS:g} ms with StatusPoll: {'met' if worst <= GOAL_MS else 'NOT met'}")
    return 0 if worst <= GOAL_MS else 1


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{statistics.median(ordered):.3f} / {ordered[int(len(ordered) * 0.9)]:.3f} / {ordered[-1]:.3f}"


if __name__ == "__main__":
    sys.exit(main())
