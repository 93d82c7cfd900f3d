"""How long one Blender timer tick of the ACE-Step add-on takes while a job runs.

    .venv/bin/python bench/bench_blender_tick.py [--seconds 300] [--candidates 2] [--jobs 2]
    .venv-blender45/bin/python bench/bench_blender_tick.py      # the same on Blender 4.5

Blender runs bpy.app.timers on its UI thread, so a slow tick is a stutter while the
editor scrubs. This registers the add-on in real Blender (the bpy module), presses
Generate against a real sketch worker on 127.0.0.1, and calls the tick exactly as
Blender's timer would (headless Blender does not fire timers), sleeping the interval
the tick asks for. The add-on's task runner thread does the HTTP calls (submit, one
status call per job every 0.25 s, bringing the files in); a tick of a running job reads
what it published, copies it into WindowManager.acestep and tags sequencer areas for
redraw. Reported: median, 95th percentile and worst of those ticks (the worst is the
main thread waiting for the GIL while the runner parses an answer), and the one tick
that places the strips (not a tick "while a job runs"; most of it is Blender's
new_sound reading each file). Goal: median <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "hosts" / "blender")]

GOAL_MS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of each cue to generate")
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="Generate presses, one after the other")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-blender-tick-"))
    os.environ["ACESTEP_DCC_HOME"] = str(root / "home")
    from acestep_core.client import WorkerClient

    worker = WorkerClient.connect(worker_command=[sys.executable, "-m", "acestep_core.worker", "--backend", "sketch"],
                                  wait=60)
    import bpy

    import acestep_blender
    from acestep_blender import job_tracking

    acestep_blender.register()
    running_ms: list[float] = []
    placing_ms: list[float] = []
    try:
        scene = bpy.context.scene
        settings = scene.acestep
        settings.prompt, settings.duration, settings.candidates = "tense boss battle, synthwave", args.seconds, args.candidates
        settings.use_bpm, settings.bpm = True, 120.0
        for _ in range(args.jobs):
            assert bpy.ops.acestep.generate() == {"FINISHED"}, bpy.context.window_manager.acestep.message
            interval = 0.0
            while interval is not None:
                time.sleep(interval)
                task = job_tracking.tracker.task
                running = task is not None and all(j.job_id for j in task.jobs) and not all(j.finished for j in task.jobs)
                started = time.perf_counter()
                interval = job_tracking.tick()
                elapsed = (time.perf_counter() - started) * 1000.0
                if running:
                    running_ms.append(elapsed)
                elif task is not None and job_tracking.tracker.task is None:
                    placing_ms.append(elapsed)
            message = bpy.context.window_manager.acestep.message
            assert "placed" in message, message
    finally:
        acestep_blender.unregister()
        worker.shutdown()

    running_ms.sort()
    median = statistics.median(running_ms)
    p95 = running_ms[int(0.95 * (len(running_ms) - 1))]
    print(f"Blender {bpy.app.version_string}, {args.jobs} jobs of {args.seconds:g} s x {args.candidates} candidates")
    print(f"ticks while a job runs: {len(running_ms)}; median {median:.3f} ms, p95 {p95:.3f} ms, "
          f"worst {running_ms[-1]:.3f} ms (goal: median <= {GOAL_MS:g} ms)")
    print(f"placing tick ({args.candidates} sound strips, one undo step): "
          + ", ".join(f"{t:.1f} ms" for t in placing_ms))
    return 0 if median <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
