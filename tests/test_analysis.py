"""Tempo and key estimators on audio with a known answer: drum patterns and chord
progressions synthesised here, and the real sketch backend at requested tempos and keys."""

from __future__ import annotations

import numpy as np
import pytest

from acestep_core.audio.analysis import estimate_key, estimate_tempo
from acestep_core.backends.sketch import SketchBackend
from acestep_core.progress import ignore_progress, never_cancelled
from acestep_core.request import NOTE_NAMES, GenerationRequest

RATE = 44100


def drum_pattern(bpm: float, seconds: float, hats: bool = True, seed: int = 0) -> np.ndarray:
    """Kick on every beat (the downbeat louder), closed hats on every eighth."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    kick_t = np.arange(int(0.15 * RATE))
    kick = np.sin(2 * np.pi * np.cumsum(np.linspace(120, 45, kick_t.size)) / RATE) * np.exp(-kick_t / (0.04 * RATE))
    hat = rng.standard_normal(int(0.03 * RATE)) * np.exp(-np.arange(int(0.03 * RATE)) / (0.006 * RATE)) * 0.3
    eighth = 0
    while eighth * 30 / bpm < seconds:
        start = int(round(eighth * 30 / bpm * RATE))
        for sound, gain, plays in ((kick, 1.0 if eighth % 8 == 0 else 0.7, eighth % 2 == 0), (hat, 1.0, hats)):
            if plays:
                end = min(out.size, start + sound.size)
                out[start:end] += gain * sound[: end - start]
        eighth += 1
    return out


def chords(progression: list[tuple[str, str]], bpm: float = 100, repeats: int = 3) -> np.ndarray:
    """Block triads (three harmonics each) over a root-position bass, one bar per chord."""
    bar = int(round(4 * 60 / bpm * RATE))
    t = np.arange(bar) / RATE
    envelope = np.minimum(1, np.arange(bar) / 200) * np.minimum(1, (bar - np.arange(bar)) / 200)
    out = []
    for root, quality in progression * repeats:
        pitch = NOTE_NAMES.index(root)
        notes = [48 + pitch + step for step in ((0, 4, 7) if quality == "maj" else (0, 3, 7))]
        signal = sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * h * t) / h**1.5 for n in notes for h in (1, 2, 3))
        signal = signal + 0.8 * np.sin(2 * np.pi * 440 * 2 ** ((36 + pitch - 69) / 12) * t)
        out.append(signal * envelope)
    return np.concatenate(out)


@pytest.mark.parametrize("bpm", [75, 90, 97.3, 120, 128, 140.5, 160])
def test_tempo_of_a_drum_pattern(bpm: float):
    estimate = estimate_tempo(drum_pattern(bpm, 30), RATE)
    assert estimate.bpm == pytest.approx(bpm, rel=0.002)


@pytest.mark.parametrize("bpm", [62, 90, 140.5])
def test_tempo_of_kicks_alone(bpm: float):
    assert estimate_tempo(drum_pattern(bpm, 30, hats=False), RATE).bpm == pytest.approx(bpm, rel=0.002)


def test_no_tempo_or_key_in_silence():
    silence = np.zeros((5 * RATE, 2))
    assert estimate_tempo(silence, RATE) is None
    assert estimate_key(silence, RATE) is None


@pytest.mark.parametrize("key, progression", [
    ("C major", [("C", "maj"), ("F", "maj"), ("G", "maj"), ("C", "maj")]),
    ("G major", [("G", "maj"), ("C", "maj"), ("D", "maj"), ("G", "maj")]),
    ("A# major", [("A#", "maj"), ("D#", "maj"), ("F", "maj"), ("A#", "maj")]),
    ("A minor", [("A", "min"), ("D", "min"), ("E", "maj"), ("A", "min")]),
    ("E minor", [("E", "min"), ("C", "maj"), ("B", "maj"), ("E", "min")]),
    ("F# minor", [("F#", "min"), ("B", "min"), ("C#", "maj"), ("F#", "min")]),
])
def test_key_of_a_cadence(key: str, progression):
    estimate = estimate_key(chords(progression), RATE)
    assert estimate.key == key and estimate.correlation > estimate.runner_up_correlation


@pytest.mark.parametrize("prompt, bpm, key", [
    ("calm exploration, ambient", 84, "C major"),
    ("happy village, folk", 112, "G major"),
    ("chill lofi beat", 88, "F major"),
])
def test_sketch_cues_measure_as_requested(prompt: str, bpm: float, key: str):
    request = GenerationRequest(prompt=prompt, bpm=bpm, key=key, duration=20).validated()
    raw = SketchBackend().generate(request, [3], ignore_progress, never_cancelled)
    frames = raw.samples[0].T
    assert estimate_key(frames, raw.sample_rate).key == key
    measured = estimate_tempo(frames, raw.sample_rate).bpm
    # Within 0.5%, or the same tempo read an octave off (half or double time).
    assert min(abs(measured * factor - bpm) / bpm for factor in (0.5, 1, 2)) <= 0.005
