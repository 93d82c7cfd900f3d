"""A cancel reaches generate_cues within a second at every stage of finishing many
candidates (loudness, loop, writing), and nothing is left: no .partial, no candidate
already renamed into place. The real sketch backend and real files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from acestep_core.backends.sketch import SketchBackend
from acestep_core.errors import GenerationCancelled
from acestep_core.generation import generate_cues
from acestep_core.request import GenerationRequest

# Four candidates long enough, and loud enough (heavy limiting), that finishing takes seconds.
HEAVY = dict(prompt="boss battle, rock", duration=40, candidates=4, seed=1, loudness=-5, true_peak_ceiling_db=-2)


def cancel_at(stage_reached, request: GenerationRequest, path: Path) -> float:
    """Run generate_cues, cancelling once stage_reached(progress) is true; seconds from then to the raise."""
    cancelled_at: list[float] = []

    def on_progress(progress) -> None:
        if not cancelled_at and stage_reached(progress):
            cancelled_at.append(time.monotonic())

    with pytest.raises(GenerationCancelled):
        generate_cues(request, SketchBackend(), path, on_progress=on_progress, is_cancelled=lambda: bool(cancelled_at))
    assert cancelled_at, "the stage was never reached"
    return time.monotonic() - cancelled_at[0]


@pytest.mark.parametrize("what, stage_reached", [
    ("as finishing starts", lambda p: p.stage == "finishing 0/4"),
    ("between candidates", lambda p: p.stage == "finishing 1/4"),
    ("after the first rename", lambda p: p.stage == "writing" and p.fraction > 0.95),
])
def test_cancel_while_finishing_many_candidates(tmp_path: Path, what, stage_reached):
    seconds = cancel_at(stage_reached, GenerationRequest(**HEAVY), tmp_path / "boss.wav")
    assert seconds < 1.0, what
    assert list(tmp_path.iterdir()) == [], what


def test_cancel_while_finishing_loops(tmp_path: Path):
    request = GenerationRequest(**{**HEAVY, "loop": True, "bpm": 120, "loop_bars": 16})
    assert cancel_at(lambda p: p.stage == "finishing 0/4", request, tmp_path / "loop.wav") < 1.0
    assert list(tmp_path.iterdir()) == []


def test_cancel_from_another_thread_mid_finishing(tmp_path: Path):
    """The way the worker cancels: an Event set from its HTTP thread while finishing runs."""
    cancel = threading.Event()
    started = threading.Event()

    def on_progress(progress) -> None:
        if progress.stage.startswith("finishing"):
            started.set()

    def cancel_soon() -> None:
        started.wait(60)
        time.sleep(0.5)
        cancel.set()
        set_at.append(time.monotonic())

    set_at: list[float] = []
    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    with pytest.raises(GenerationCancelled):
        generate_cues(GenerationRequest(**HEAVY), SketchBackend(), tmp_path / "boss.wav", on_progress=on_progress,
                      is_cancelled=cancel.is_set)
    canceller.join()
    assert time.monotonic() - set_at[0] < 1.0
    assert list(tmp_path.iterdir()) == []
