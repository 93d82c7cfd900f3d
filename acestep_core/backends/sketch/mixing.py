"""From a score to a stereo cue: render each distinct note once, place copies, add the
drums, a shared reverb, the kick's sidechain pump, the ending, and set the level.

Cost grows with the number of distinct sounds, not with the length of the cue: a
four-chord loop is rendered four times however long it plays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from acestep_core.backends.sketch.arrangement import Arrangement, MusicalChoices
from acestep_core.backends.sketch.drums import build_kit
from acestep_core.backends.sketch.instruments import PATCHES, render_note
from acestep_core.backends.sketch.synthesis import (
    SAMPLE_RATE, convolve, decay_envelope, downsample, fade, noise, reverb_impulse, seconds_to_frames,
    spectral_filter, upsample,
)
from acestep_core.errors import GenerationCancelled

# RMS of one note of each role while it is held, before the master level: the balance.
ROLE_LEVELS = {"bass": 0.13, "chords": 0.09, "pad": 0.06, "arp": 0.05, "lead": 0.085}
# Peak of each drum one-shot.
DRUM_PEAKS = {
    "kick": 0.85, "snare": 0.6, "clap": 0.45, "closed_hat": 0.2, "open_hat": 0.2, "crash": 0.3, "tom_high": 0.55,
    "tom_low": 0.6, "rim": 0.3, "timpani": 0.5, "timpani_low": 0.45, "boom": 0.6,
}
# The reverb runs at an eighth of the rate: its tail is dark, and this keeps it cheap.
REVERB_DECIMATION = 8
PEAK_CEILING = 10.0 ** (-1.0 / 20.0)  # -1 dBFS: room for resampling and encoders
TARGET_RMS = 10.0 ** (-15.0 / 20.0)
BAR_LINE_DECLICK_S = 0.005
CANCEL_CHECK_EVERY = 256


def add_at(bus: np.ndarray, start: int, sound: np.ndarray, gain: float) -> None:
    """bus[:, start:] += gain * sound, cut at the bus's end."""
    if start >= bus.shape[1] or gain == 0.0:
        return
    end = min(bus.shape[1], start + sound.shape[1])
    bus[:, start:end] += gain * sound[:, : end - start]


def note_level(sound: np.ndarray, gate_frames: int, target_rms: float) -> float:
    """The gain that brings a note's RMS while held to target_rms."""
    held = sound[:, : max(min(gate_frames, sound.shape[1]), 1)]
    rms = float(np.sqrt(np.mean(held.astype(np.float64) ** 2)))
    return target_rms / rms if rms > 1e-9 else 0.0


def sidechain_envelope(frames: int, kick_frames: list[int], depth: float, beat_frames: float) -> np.ndarray:
    """Gain that dips by `depth` at each kick and recovers within about half a beat."""
    envelope = np.ones(frames, dtype=np.float32)
    length = int(beat_frames)
    t = np.arange(length, dtype=np.float32)
    attack = seconds_to_frames(0.004)
    # A few milliseconds down (an instant drop clicks), then back up over about half a beat.
    curve = 1.0 - depth * np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0.0) / (0.22 * beat_frames))
    for start in kick_frames:
        end = min(frames, start + length)
        if start < end:
            np.minimum(envelope[start:end], curve[: end - start], out=envelope[start:end])
    return envelope


def add_vinyl_crackle(bus: np.ndarray, rng: np.random.Generator) -> None:
    """A soft hiss (a two-second loop) and random dust clicks."""
    frames = bus.shape[1]
    hiss = spectral_filter(np.stack([noise(2 * SAMPLE_RATE, rng), noise(2 * SAMPLE_RATE, rng)]), 900.0, 5000.0)
    bus += 0.012 * np.resize(hiss, (2, frames))
    click_frames = seconds_to_frames(0.003)
    clicks = [spectral_filter(noise(click_frames, rng), 1000.0, 9000.0) * decay_envelope(click_frames, 0.0006)
              for _ in range(4)]
    count = int(rng.poisson(6.0 * frames / SAMPLE_RATE))
    for position, shape, amplitude, side in zip(
        rng.integers(0, max(frames - click_frames, 1), count), rng.integers(0, 4, count),
        rng.uniform(0.03, 0.2, count), rng.uniform(-0.6, 0.6, count),
    ):
        click = clicks[int(shape)]
        stereo = np.stack([click * (1.0 - side) / 2, click * (1.0 + side) / 2])
        add_at(bus, int(position), stereo, float(amplitude))


class _Impulses(dict):
    """Reverb impulses built the first time a drum asks for one."""

    def __init__(self, rng: np.random.Generator):
        super().__init__()
        self._rng = rng

    def __missing__(self, name: str) -> np.ndarray:
        self[name] = reverb_impulse(name, self._rng)
        return self[name]


def render_candidate(arrangement: Arrangement, choices: MusicalChoices, rng: np.random.Generator,
                     on_step_done: Callable[[], None], is_cancelled: Callable[[], bool]) -> np.ndarray:
    """The cue for one candidate: (2, choices.frames) float32, peak at most -1 dBFS.

    Calls on_step_done after each pitched part, after the drums and after the mix.
    """
    frames = choices.frames
    beat_frames = choices.beat_frames
    style = choices.style
    dry = np.zeros((2, frames), dtype=np.float32)
    ducked = np.zeros((2, frames), dtype=np.float32) if style.sidechain else dry
    send = np.zeros((2, frames), dtype=np.float32)
    bus_impulse = reverb_impulse(style.reverb, rng, SAMPLE_RATE // REVERB_DECIMATION)

    def frame_of(beat: float) -> int:
        return int(round(beat * beat_frames))

    for part, notes in arrangement.tracks:
        _raise_if(is_cancelled)
        if part.writer == "crackle":
            add_vinyl_crackle(dry, rng)
            on_step_done()
            continue
        patch = PATCHES[part.patch]
        bus = ducked if part.bus == "ducked" else dry
        target = ROLE_LEVELS[part.role] * part.level * patch.gain
        rendered: dict[tuple, tuple[np.ndarray, float]] = {}
        for count, note in enumerate(notes):
            if count % CANCEL_CHECK_EVERY == CANCEL_CHECK_EVERY - 1:
                _raise_if(is_cancelled)
            gate = max(frame_of(note.length), 1)
            key = (note.pitches, gate)
            if key not in rendered:
                sound = render_note(patch, note.pitches, gate, rng)
                rendered[key] = (sound, note_level(sound, gate, target))
            sound, level = rendered[key]
            start = frame_of(note.start)
            copies = [(start, sound, 1.0)]
            if part.echo:
                delay, feedback, repeats = part.echo
                # Ping-pong: every other repeat comes from the other side (channels swapped).
                copies += [(frame_of(note.start + delay * k), sound[::-1] if k % 2 else sound, feedback**k)
                           for k in range(1, repeats + 1)]
            for at, copy, echo_gain in copies:
                add_at(bus, at, copy, level * note.velocity * echo_gain)
                add_at(send, at, copy, level * note.velocity * echo_gain * patch.reverb_send)
        on_step_done()

    _raise_if(is_cancelled)
    kick_frames: list[int] = []
    if arrangement.hits:
        kit = build_kit(style.kit, choices.tonic_pc, rng, _Impulses(rng))
        kit = {name: sound * (DRUM_PEAKS[name] / max(float(np.max(np.abs(sound))), 1e-9)) for name, sound in kit.items()}
        for hit in arrangement.hits:
            start = frame_of(hit.start)
            add_at(dry, start, kit[hit.drum], hit.velocity)
            if hit.drum in ("kick", "boom"):
                kick_frames.append(start)
        on_step_done()

    wet = upsample(convolve(downsample(send, REVERB_DECIMATION), bus_impulse)[:, : frames // REVERB_DECIMATION],
                   REVERB_DECIMATION, frames)
    ducked += wet
    if style.sidechain and kick_frames:
        ducked *= sidechain_envelope(frames, kick_frames, style.sidechain, beat_frames)
    if ducked is not dry:
        dry += ducked
    _shape_ending(dry, choices)
    mix = _set_level(dry)
    on_step_done()
    return mix


def _shape_ending(mix: np.ndarray, choices: MusicalChoices) -> None:
    """Fade what must end: half the final chord's ring, or the sliver of groove that is left."""
    frames = mix.shape[1]
    if choices.ending == "ring-out":
        length = int(0.5 * choices.ring_out_beats * choices.beat_frames)
    elif choices.ending == "fade":
        sliver = frames - (choices.groove_bars - 1) * choices.bar_frames
        length = int(choices.beat_frames + sliver)
    elif choices.ending == "whole bars":
        length = seconds_to_frames(BAR_LINE_DECLICK_S)
    else:
        return  # "continues": the loop's fold needs the music as it is
    length = int(np.clip(length, seconds_to_frames(0.002), frames))
    mix[:, frames - length:] *= fade(length, rising=False)


def _set_level(mix: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(mix)))
    if peak < 1e-9:
        return mix
    rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float32), dtype=np.float64)))
    gain = min(TARGET_RMS / max(rms, 1e-9), PEAK_CEILING / peak)
    mix *= np.float32(gain)
    return mix


def _raise_if(is_cancelled: Callable[[], bool]) -> None:
    if is_cancelled():
        raise GenerationCancelled()
