"""What drives a Generation's ticks.

Inside REAPER the tick runs from REAPER's defer loop (about 30 times a second) and
REAPER's atexit cleans up when the user stops the script. Outside REAPER (reapy's
distant API) the calling script loops and sleeps; REAPER, in its own process, is
never blocked. Tests and benchmarks tick by hand.
"""

from __future__ import annotations

import time

import reapy

from .generation import Generation


class DeferLoop:
    """Inside REAPER: one tick per defer cycle, the first one after the action returns."""

    def start(self, generation: Generation) -> None:
        def step():
            if generation.tick():
                reapy.defer(step)

        reapy.at_exit(generation.abandon)
        reapy.defer(step)


class BlockingLoop:
    """Outside REAPER: tick until the run is over."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval

    def start(self, generation: Generation) -> None:
        while generation.tick():
            time.sleep(self.interval)


class ManualLoop:
    """Keeps the runs it is given; the caller ticks them (tests, benchmarks)."""

    def __init__(self) -> None:
        self.runs: list[Generation] = []

    def start(self, generation: Generation) -> None:
        self.runs.append(generation)

    def tick(self) -> bool:
        """One tick of every run still going; False once all are over."""
        return any([run.tick() for run in self.runs])

    def run(self, timeout: float = 60.0, interval: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while self.tick():
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACE-Step runs still going after {timeout:g} s")
            time.sleep(interval)


def default_loop():
    return DeferLoop() if reapy.is_inside_reaper() else BlockingLoop()
