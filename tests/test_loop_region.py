"""Choosing where a loop sits in a model's audio (acestep_core.audio.loop_region), on audio
with a known grid, and through generate_cues on the tiny ACE-Step checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from acestep_core.audio import loops
from acestep_core.audio.loop_region import choose_loop_region, downbeat_phase, headroom_bars
from acestep_core.generation import backend_request, generate_cues
from acestep_core.musical_plan import planned_request
from acestep_core.request import GenerationRequest

RATE = 44100
BPM = 120.0
BAR = int(4 * 60 / BPM * RATE)  # 88200


def _drum_track(seconds: float, first_downbeat_s: float, quiet_bars: int, seed: int = 3) -> np.ndarray:
    """A kick and crash (a loud noise burst) on every downbeat, soft ticks on the other beats
    and a tone bed, starting `first_downbeat_s` in; the first `quiet_bars` bars play at a
    fifth of the level."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    t = np.arange(frames) / RATE
    audio = 0.01 * rng.standard_normal(frames) + 0.05 * np.sin(2 * np.pi * 220 * t)
    beat = BAR // 4
    decay = np.exp(-np.arange(6000) / 900.0)
    start = int(first_downbeat_s * RATE)
    for index, position in enumerate(range(start, frames - 6000, beat)):
        level = 1.0 if index % 4 == 0 else 0.15
        audio[position : position + 6000] += level * decay * rng.standard_normal(6000)
    gain = np.ones(frames)
    gain[: start + quiet_bars * BAR] = 0.2
    return np.stack([audio * gain, audio * gain], axis=1).astype(np.float32)


def test_the_downbeat_phase_is_found_from_the_onsets():
    audio = _drum_track(20.0, 0.3, quiet_bars=0)
    assert abs(downbeat_phase(audio, RATE, BPM, 4) - int(0.3 * RATE)) <= int(0.02 * RATE)


def test_the_region_skips_a_quiet_opening_and_starts_on_a_downbeat():
    audio = _drum_track(30.0, 0.3, quiet_bars=2)
    region = choose_loop_region(audio, RATE, BPM, 4, loop_bars=8, intro_bars=0, tail_frames=loops.crossfade_frames(BPM, RATE))
    assert region.bars_skipped >= 2  # the quiet bars are not in the loop
    on_grid = (region.offset - int(0.3 * RATE)) / BAR
    assert abs(on_grid - round(on_grid)) * BAR <= int(0.02 * RATE)
    assert region.steadiness_db < 1.0


def test_headroom_is_a_few_bars():
    assert [headroom_bars(bars) for bars in (1, 4, 8, 16, 64)] == [2, 2, 2, 4, 4]


def test_a_backend_that_does_not_loop_on_its_grid_is_asked_for_headroom():
    request, _ = planned_request(GenerationRequest(prompt="boss battle, rock", loop=True, loop_bars=8).validated())
    bar_s = 4 * 60 / request.bpm
    assert backend_request(request).duration == (8 + 1) * bar_s
    assert backend_request(request, find_region=True).duration == (8 + 1 + headroom_bars(8)) * bar_s


def test_tiny_checkpoint_loop_is_placed_by_analysis_and_recorded(tiny_checkpoint: Path, tmp_path: Path):
    from acestep_core.backends.acestep import AceStepBackend

    request = GenerationRequest(prompt="boss battle", loop=True, loop_bars=2, seed=1)
    (cue,) = generate_cues(request, AceStepBackend(tiny_checkpoint, device="cpu"), tmp_path / "noise.wav")
    loop = cue.metadata["loop"]
    region = loop["region"]
    assert region is not None and region["offset_frames"] >= 0 and region["bars_skipped"] >= 0
    bar = 4 * 60 / loop["bpm"] * 44100
    on_grid = (region["offset_frames"] - region["downbeat_phase_frames"]) / bar
    assert abs(on_grid - round(on_grid)) < 1e-3  # the file starts on a bar line of the grid
    assert loop["bars"] == 2 and loop["loop_end_exclusive"] == loops.bar_lines(2, loop["bpm"], 4, 44100)[-1]
    assert sf.info(cue.path).frames == loop["loop_end_exclusive"] + 1  # the loop and its guard frame


def test_tiny_checkpoint_intro_and_loop_are_placed_together(tiny_checkpoint: Path, tmp_path: Path):
    import wavinfo

    from acestep_core.backends.acestep import AceStepBackend

    request = GenerationRequest(prompt="boss battle", loop=True, loop_bars=2, intro_bars=1, seed=2)
    (cue,) = generate_cues(request, AceStepBackend(tiny_checkpoint, device="cpu"), tmp_path / "intro.wav")
    loop = cue.metadata["loop"]
    lines = loops.bar_lines(3, loop["bpm"], 4, 44100)
    assert (loop["intro_bars"], loop["loop_start"], loop["loop_end_exclusive"]) == (1, lines[1], lines[3])
    assert loop["region"] is not None
    (smpl,) = wavinfo.WavInfoReader(cue.path).smpl.sample_loops
    assert (smpl.start, smpl.end) == (lines[1], lines[3])
    audio, _ = sf.read(cue.path, dtype="float32", always_2d=True)
    assert audio.shape[0] == lines[3] + 1 and np.array_equal(audio[-1], audio[lines[1]])
