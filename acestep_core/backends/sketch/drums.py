"""Drum one-shots from oscillators with pitch sweeps and filtered noise, and the kit each
style plays. Every sound is rendered once per candidate and placed at each hit."""

from __future__ import annotations

import numpy as np

from acestep_core.backends.sketch.synthesis import (
    SAMPLE_RATE, add_reverb, band_limited, decay_envelope, midi_to_hz, noise, place_mono, saturate, seconds_to_frames,
    spectral_filter,
)

DRUM_NAMES = (
    "kick", "snare", "clap", "closed_hat", "open_hat", "crash", "tom_high", "tom_low", "rim",
    "timpani", "timpani_low", "boom",
)

KICK_MIDI_RANGE = range(27, 34)  # D#1..A1: where a kick's fundamental is tuned to the key


def swept_sine(frames: int, start_hz: float, end_hz: float, sweep_s: float) -> np.ndarray:
    """A sine whose pitch falls exponentially from start_hz toward end_hz (kicks, toms)."""
    t = np.arange(frames, dtype=np.float64) / SAMPLE_RATE
    freq = end_hz + (start_hz - end_hz) * np.exp(-t / sweep_s)
    return np.sin(2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE).astype(np.float32)


def kick(rng, start_hz=160.0, end_hz=48.0, sweep_s=0.035, decay_s=0.22, click=0.25, drive=1.5, length_s=0.5):
    frames = seconds_to_frames(length_s)
    body = saturate(swept_sine(frames, start_hz, end_hz, sweep_s) * decay_envelope(frames, decay_s), drive)
    # A kick is felt, not heard as a note: saturation's partials would ring a fixed pitch
    # (and its fifth and major third) under every chord, so they go.
    body = spectral_filter(body, high_hz=max(1.6 * end_hz, 80.0), order=4)
    snap = spectral_filter(noise(frames, rng), 1500.0, 8000.0) * decay_envelope(frames, 0.004)
    return (body + click * snap) * 0.9


def snare(rng, body_hz=190.0, tone=0.5, noise_decay_s=0.14, bright_hz=9000.0, low_hz=900.0, length_s=0.45):
    frames = seconds_to_frames(length_s)
    body = (swept_sine(frames, body_hz * 1.5, body_hz, 0.01) + 0.5 * swept_sine(frames, body_hz * 2.3, body_hz * 1.75, 0.01))
    body *= decay_envelope(frames, 0.06) * tone
    rattle = spectral_filter(noise(frames, rng), low_hz, bright_hz) * decay_envelope(frames, noise_decay_s)
    return saturate(body + 1.4 * rattle, 1.2) * 0.8


def clap(rng, length_s=0.4):
    frames = seconds_to_frames(length_s)
    burst = np.zeros(frames, dtype=np.float32)
    for offset_s in (0.0, 0.011, 0.023, 0.034):  # several hands, a few ms apart
        start = seconds_to_frames(offset_s)
        burst[start:] += decay_envelope(frames - start, 0.006 if offset_s < 0.03 else 0.12)
    return spectral_filter(noise(frames, rng), 900.0, 5000.0) * burst * 0.9


def hat(rng, decay_s=0.035, low_hz=7000.0, length_s=0.12, hold=1):
    frames = seconds_to_frames(length_s)
    return spectral_filter(noise(frames, rng, hold), low_hz, 16000.0) * decay_envelope(frames, decay_s) * 0.55


def crash(rng, decay_s=0.9, length_s=2.2):
    frames = seconds_to_frames(length_s)
    stereo = np.stack([noise(frames, rng), noise(frames, rng)])
    return spectral_filter(stereo, 3500.0, 14000.0) * decay_envelope(frames, decay_s) * 0.45


def tom(rng, pitch_hz, decay_s=0.25, length_s=0.6):
    frames = seconds_to_frames(length_s)
    body = swept_sine(frames, pitch_hz * 1.6, pitch_hz, 0.03) * decay_envelope(frames, decay_s)
    skin = spectral_filter(noise(frames, rng), 300.0, 3000.0) * decay_envelope(frames, 0.02)
    return saturate(body + 0.3 * skin, 1.3) * 0.8


def rim(rng, length_s=0.08):
    frames = seconds_to_frames(length_s)
    tone = swept_sine(frames, 1700.0, 1600.0, 0.01) * decay_envelope(frames, 0.012)
    return (tone + 0.5 * spectral_filter(noise(frames, rng), 1500.0, 6000.0) * decay_envelope(frames, 0.008)) * 0.6


def timpani(rng, pitch_hz, decay_s=0.7, length_s=1.8):
    """A kettle drum: modes near 1, 1.5, 2 and 2.5 times the pitch, and the felt mallet's thud."""
    frames = seconds_to_frames(length_s)
    body = np.zeros(frames, dtype=np.float32)
    for ratio, level, decay in ((1.0, 1.0, decay_s), (1.5, 0.5, decay_s * 0.6), (1.99, 0.35, decay_s * 0.5),
                                (2.44, 0.2, decay_s * 0.35)):
        body += level * swept_sine(frames, pitch_hz * ratio * 1.02, pitch_hz * ratio, 0.05) * decay_envelope(frames, decay, 0.003)
    thud = spectral_filter(noise(frames, rng), 60.0, 900.0) * decay_envelope(frames, 0.03)
    return saturate(0.6 * body + 0.5 * thud, 1.2) * 0.9


def boom(rng, length_s=2.0):
    """The low cinematic hit under orchestral downbeats."""
    frames = seconds_to_frames(length_s)
    body = swept_sine(frames, 90.0, 38.0, 0.12) * decay_envelope(frames, 0.6)
    air = spectral_filter(noise(frames, rng), 40.0, 400.0) * decay_envelope(frames, 0.25)
    return saturate(body + 0.6 * air, 2.0) * 0.9


def brush_swish(rng, length_s=0.5, decay_s=0.18):
    """A brush drawn across the snare head: noise that swells and fades, no crack."""
    frames = seconds_to_frames(length_s)
    rise = np.minimum(1.0, np.arange(frames, dtype=np.float32) / seconds_to_frames(0.05))
    return spectral_filter(noise(frames, rng), 1800.0, 9000.0) * rise * decay_envelope(frames, decay_s) * 0.5


def brush_slap(rng, body_hz=200.0, length_s=0.35):
    """A brush slapped on the snare: a soft, wide burst with little tone."""
    return snare(rng, body_hz, 0.15, 0.09, 7000.0, 1200.0, length_s) * 0.6


def ride(rng, decay_s=0.35, length_s=0.9):
    """The ride cymbal's ping: noise with a bell-like partial on top."""
    frames = seconds_to_frames(length_s)
    ping = swept_sine(frames, 3200.0, 3100.0, 0.01) * decay_envelope(frames, 0.12) * 0.3
    wash = spectral_filter(noise(frames, rng), 4500.0, 14000.0) * decay_envelope(frames, decay_s)
    return (ping + wash) * 0.5


def taiko(rng, pitch_hz, decay_s=0.5, length_s=1.5):
    """A big barrel drum struck with sticks: a low skin with no kettle's pitched modes."""
    frames = seconds_to_frames(length_s)
    body = swept_sine(frames, pitch_hz * 2.2, pitch_hz, 0.04) * decay_envelope(frames, decay_s)
    slap = spectral_filter(noise(frames, rng), 200.0, 2500.0) * decay_envelope(frames, 0.03)
    return saturate(body + 0.6 * slap, 1.8) * 0.9


def build_kit(kit: str, tonic_pc: int, rng: np.random.Generator, impulses: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stereo one-shots of one style's kit, by drum name. Pitched drums follow the key:
    the kick's fundamental is the tonic or fifth nearest its style's, the snare, toms and
    timpani sit on the tonic (or the timpani's fifth below)."""
    if kit == "none":
        return {}
    # Each take's drummer tunes and damps the kit a little differently: without it every
    # take's kick is one waveform on one grid, and the takes' mixes correlate by it.
    damping, attack, retune = float(rng.uniform(0.75, 1.3)), float(rng.uniform(0.85, 1.2)), bool(rng.random() < 0.5)

    def kick_of_take(rng, start_hz, end_hz, sweep_s, decay_s, click, drive):
        return kick(rng, start_hz * attack, end_hz, sweep_s * damping, decay_s * damping, click * attack, drive)

    def kick_hz(hz: float) -> float:
        """The tonic or the fifth nearest hz, from D#1 to A1 (39-55 Hz; seven semitones
        always hold one of them): a kick's fundamental rings a low note, and an untuned one
        (52 Hz, G#1, in every key) is the tritone of D minor. Kept under 60 Hz, where the
        bass and a key finder start to hear notes."""
        midi = 69.0 + 12.0 * np.log2(hz / 440.0)
        tuned = sorted((m for m in KICK_MIDI_RANGE if (m - tonic_pc) % 12 in (0, 7)), key=lambda m: abs(m - midi))
        # Where the range holds both, half the takes tune to the other one.
        return midi_to_hz(tuned[1] if retune and len(tuned) > 1 else tuned[0])

    def in_key(hz: float) -> float:
        """The tonic nearest hz: a producer tunes the snare and toms to the song, or their
        ring would sound a note of their own under every chord."""
        midi = int(round(69.0 + 12.0 * np.log2(hz / 440.0)))
        return midi_to_hz(midi + (tonic_pc - midi + 6) % 12 - 6)

    mono: dict[str, np.ndarray]
    pans = {"closed_hat": 0.25, "open_hat": 0.3, "tom_high": -0.3, "tom_low": 0.3, "rim": -0.15}
    reverbs: dict[str, tuple[str, float]] = {"snare": ("room", 0.35), "clap": ("room", 0.35),
                                              "tom_high": ("room", 0.3), "tom_low": ("room", 0.3)}
    if kit == "rock":
        mono = {"kick": kick_of_take(rng, 140.0, kick_hz(52.0), 0.03, 0.16, 0.45, 2.0), "snare": snare(rng, in_key(200.0), 0.35, 0.17),
                "closed_hat": hat(rng, 0.04), "open_hat": hat(rng, 0.22, 6000.0, 0.6),
                "tom_high": tom(rng, in_key(150.0)), "tom_low": tom(rng, in_key(95.0), 0.3)}
    elif kit == "synthwave":
        mono = {"kick": kick_of_take(rng, 150.0, kick_hz(46.0), 0.04, 0.28, 0.2, 1.8), "snare": snare(rng, in_key(180.0), 0.35, 0.16),
                "clap": clap(rng), "closed_hat": hat(rng, 0.025), "open_hat": hat(rng, 0.18, 6500.0, 0.5),
                "tom_high": tom(rng, in_key(140.0), 0.3), "tom_low": tom(rng, in_key(90.0), 0.35)}
        reverbs.update({"snare": ("gated", 1.0), "clap": ("gated", 0.6), "tom_high": ("gated", 0.8),
                        "tom_low": ("gated", 0.8)})
    elif kit == "electronic":
        mono = {"kick": kick_of_take(rng, 170.0, kick_hz(50.0), 0.03, 0.3, 0.3, 2.5), "clap": clap(rng),
                "snare": snare(rng, in_key(210.0), 0.4, 0.1), "closed_hat": hat(rng, 0.03),
                "open_hat": hat(rng, 0.12, 7500.0, 0.4)}
        reverbs["clap"] = ("plate", 0.3)
    elif kit == "orchestral":
        mono = {"timpani": timpani(rng, midi_to_hz(43 + (tonic_pc - 7) % 12)),
                "timpani_low": timpani(rng, midi_to_hz(43 + (tonic_pc - 7) % 12 - 5)),
                "boom": boom(rng), "snare": snare(rng, in_key(240.0), 0.3, 0.09, 10000.0, 1500.0)}
        reverbs = {"timpani": ("room", 0.4), "timpani_low": ("room", 0.4), "boom": ("room", 0.3),
                   "snare": ("room", 0.5)}
    elif kit == "brushes":
        # A jazz kit played with brushes; the names are the backbeat kit's, so any groove plays it.
        mono = {"kick": spectral_filter(kick_of_take(rng, 110.0, kick_hz(52.0), 0.04, 0.25, 0.05, 1.1), high_hz=1500.0) * 0.6,
                "snare": brush_slap(rng, in_key(200.0)), "clap": brush_slap(rng, in_key(220.0)) * 0.8,
                "closed_hat": ride(rng, 0.25, 0.6), "open_hat": brush_swish(rng), "rim": rim(rng) * 0.7,
                "tom_high": tom(rng, in_key(150.0), 0.2) * 0.6, "tom_low": tom(rng, in_key(100.0), 0.25) * 0.6}
        reverbs = {"snare": ("room", 0.3), "open_hat": ("room", 0.3), "closed_hat": ("room", 0.25)}
    elif kit == "folk":
        # A foot stomp, a hand drum, a shaker and a tambourine.
        mono = {"kick": spectral_filter(kick_of_take(rng, 120.0, kick_hz(55.0), 0.02, 0.12, 0.3, 1.2), high_hz=3000.0),
                "snare": spectral_filter(clap(rng), 700.0, 6000.0), "clap": clap(rng) * 0.8,
                "closed_hat": hat(rng, 0.03, 5000.0) * 0.8, "open_hat": hat(rng, 0.16, 5500.0, 0.4) * 0.8,
                "tom_high": tom(rng, in_key(180.0), 0.15), "tom_low": tom(rng, in_key(120.0), 0.2)}
    elif kit == "taiko":
        # Played by the orchestral groove: the kettle drums' names carry the barrel drums.
        mono = {"timpani": taiko(rng, midi_to_hz(38 + (tonic_pc - 2) % 12)),
                "timpani_low": taiko(rng, midi_to_hz(31 + (tonic_pc - 7) % 12), 0.7),
                "boom": boom(rng), "snare": rim(rng) * 1.2}
        reverbs = {"timpani": ("room", 0.45), "timpani_low": ("room", 0.45), "boom": ("room", 0.3)}
    elif kit == "chiptune":
        mono = {"kick": kick_of_take(rng, 220.0, kick_hz(52.0), 0.02, 0.08, 0.0, 6.0) * 0.7,
                "snare": spectral_filter(noise(seconds_to_frames(0.18), rng, hold=3), 1500.0, 12000.0)
                * decay_envelope(seconds_to_frames(0.18), 0.06) * 0.6,
                "closed_hat": hat(rng, 0.02, 6000.0, 0.06, hold=2),
                "open_hat": hat(rng, 0.1, 5000.0, 0.3, hold=2)}
        reverbs = {}
    elif kit == "lofi":
        mono = {"kick": spectral_filter(kick_of_take(rng, 110.0, kick_hz(52.0), 0.03, 0.2, 0.1, 1.3), high_hz=2500.0),
                "snare": spectral_filter(snare(rng, in_key(185.0), 0.5, 0.13, 5000.0, 700.0), high_hz=4500.0),
                "rim": rim(rng), "closed_hat": spectral_filter(hat(rng, 0.03, 5000.0), high_hz=9000.0) * 0.8,
                "open_hat": spectral_filter(hat(rng, 0.14, 5000.0, 0.4), high_hz=9000.0) * 0.7}
    elif kit == "pop":
        mono = {"kick": kick_of_take(rng, 150.0, kick_hz(52.0), 0.03, 0.2, 0.35, 1.8), "snare": snare(rng, in_key(195.0), 0.35, 0.15),
                "clap": clap(rng), "closed_hat": hat(rng, 0.035), "open_hat": hat(rng, 0.2, 6500.0, 0.5),
                "tom_high": tom(rng, in_key(160.0)), "tom_low": tom(rng, in_key(100.0), 0.3)}
    else:
        raise ValueError(f"unknown drum kit {kit!r}")
    kit_sounds: dict[str, np.ndarray] = {}
    for name, sound in mono.items():
        stereo = sound if sound.ndim == 2 else place_mono(sound, pans.get(name, 0.0))
        if name in reverbs:
            impulse_name, mix = reverbs[name]
            stereo = add_reverb(stereo, impulses[impulse_name], mix)
        kit_sounds[name] = stereo.astype(np.float32)
    if "crash" not in kit_sounds:
        kit_sounds["crash"] = crash(rng, 0.7 if kit == "chiptune" else 1.0)
    return {name: band_limited(sound) for name, sound in kit_sounds.items()}
