"""Pitched instruments: a patch (oscillator, filter, envelope, effects) and the renderer
that turns a chord or a note of a given length into stereo samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acestep_core.backends.sketch.synthesis import (
    SAMPLE_RATE, adsr, midi_to_hz, oscillator_phase, pan_gains, read_table, saturate, spectral_filter, upsample,
    vibrato_warp, wavetable,
)


@dataclass(frozen=True)
class Patch:
    """A subtractive synth voice, enough for pads, strings, plucks, basses, leads and keys.

    The filter is static per note (`cutoff_hz`, rising with the note by `key_tracking`
    times its frequency); with `bright_cutoff_hz` the note starts that bright and closes
    to `cutoff_hz` over `filter_decay_s` (a pluck, an electric piano's bark). `drive`
    saturates the whole chord (a distorted guitar's power chord), `post_lowpass_hz` is
    the cabinet after it. `reverb_send` is how much goes to the style's shared reverb;
    `gain` trims the part's level (the mixer sets levels by role).
    """

    shape: str = "saw"
    cutoff_hz: float = 4000.0
    key_tracking: float = 0.0
    resonance: float = 0.0
    bright_cutoff_hz: float | None = None
    filter_decay_s: float = 0.2
    unison: int = 1
    detune_cents: float = 0.0
    width: float = 0.6
    sub_octave: float = 0.0
    levels: int = 0
    attack_s: float = 0.005
    decay_s: float = 0.3
    sustain: float = 0.8
    release_s: float = 0.15
    drive: float = 0.0
    post_lowpass_hz: float | None = None
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    vibrato_delay_s: float = 0.25
    pan: float = 0.0
    reverb_send: float = 0.0
    gain: float = 1.0


def render_decimation(patch: Patch, pitches: tuple[float, ...]) -> int:
    """How many times below the sketch's rate a note can be rendered: its filter keeps the spectrum
    under a quarter of that rate's Nyquist. Distortion makes new harmonics: full rate."""
    if patch.drive:
        return 1
    top_hz = max(midi_to_hz(p) for p in pitches)
    cutoff = max(patch.cutoff_hz, patch.bright_cutoff_hz or 0.0) + patch.key_tracking * top_hz
    for factor in (8, 4, 2):
        if SAMPLE_RATE / factor / 2 >= 4.0 * max(cutoff, top_hz * 2):
            return factor
    return 1


def render_note(patch: Patch, pitches: tuple[float, ...], gate_frames: int, rng: np.random.Generator) -> np.ndarray:
    """One note or chord held for gate_frames, plus its release: (2, frames) float32, dry.

    Dark sounds are rendered at a fraction of the rate and interpolated up, which is
    most of what makes long pads cheap.
    """
    factor = render_decimation(patch, pitches)
    rate = SAMPLE_RATE / factor  # 5512.5 Hz at 1/8: the pitch stays exact
    envelope = adsr(max(1, -(-gate_frames // factor)), patch.attack_s, patch.decay_s, patch.sustain,
                    patch.release_s, rate)
    frames = envelope.shape[0]
    if patch.unison > 1:
        detunes = np.linspace(-patch.detune_cents, patch.detune_cents, patch.unison)
        pans = np.linspace(-patch.width, patch.width, patch.unison)
    else:
        detunes, pans = np.zeros(1), np.zeros(1)
    # Voices that share a place in the stereo field are summed first and panned once.
    voices = np.zeros((len(detunes), frames), dtype=np.float32)
    brightness = None
    if patch.bright_cutoff_hz:
        brightness = np.exp(-np.arange(frames, dtype=np.float32) / (patch.filter_decay_s * rate)).astype(np.float32)
    warp = vibrato_warp(frames, rate, patch.vibrato_hz, patch.vibrato_cents, patch.vibrato_delay_s)
    for pitch in pitches:
        base_hz = round(midi_to_hz(pitch), 2)
        cutoff = patch.cutoff_hz + patch.key_tracking * base_hz
        table = wavetable(patch.shape, base_hz, cutoff, patch.resonance, patch.levels, rate)
        bright_table = None
        if brightness is not None:
            bright_table = wavetable(patch.shape, base_hz, patch.bright_cutoff_hz + patch.key_tracking * base_hz,
                                     patch.resonance, patch.levels, rate)
        for voice, cents in enumerate(detunes):
            # Free-running phases: unison voices that start together would spike the attack.
            phase = oscillator_phase(base_hz * 2.0 ** (cents / 1200.0), frames, rate, float(rng.random()), warp)
            tone = read_table(table, phase)
            if bright_table is not None:
                tone += brightness * (read_table(bright_table, phase) - tone)
            voices[voice] += tone
        if patch.sub_octave:
            phase = oscillator_phase(base_hz / 2.0, frames, rate)
            voices[len(detunes) // 2] += patch.sub_octave * read_table(wavetable("sine", base_hz / 2.0, 20000.0, rate=rate), phase)
    out = np.zeros((2, frames), dtype=np.float32)
    for voice, voice_pan in zip(voices, pans):
        left, right = pan_gains(float(voice_pan) + patch.pan)
        out[0] += left * voice
        out[1] += right * voice
    out *= 1.0 / np.sqrt(len(detunes))
    if patch.drive:
        out = saturate(out * 0.5, patch.drive)
    out *= envelope * patch.gain
    # One FFT: the cabinet's low-pass (after the envelope, so it softens the attack too) and the
    # band limit for what distortion made. Undistorted tables stop at 18 kHz, and upsampling
    # band-limits a note rendered below the full rate.
    if patch.post_lowpass_hz or patch.drive:
        out = spectral_filter(out, high_hz=patch.post_lowpass_hz, sample_rate=rate, band_limit=True)
    return upsample(out, factor, frames * factor) if factor > 1 else out


# -- the patches the styles use --------------------------------------------------------

PATCHES: dict[str, Patch] = {
    # synthwave / electronic
    "supersaw_pad": Patch(shape="saw", cutoff_hz=1800.0, key_tracking=1.0, resonance=0.3, unison=3, detune_cents=14.0,
                          width=0.8, attack_s=0.06, decay_s=0.8, sustain=0.85, release_s=0.35, reverb_send=0.5),
    "retro_bass": Patch(shape="saw", cutoff_hz=420.0, key_tracking=1.5, resonance=0.6, bright_cutoff_hz=1800.0,
                        filter_decay_s=0.09, sub_octave=0.0, attack_s=0.003, decay_s=0.25, sustain=0.7,
                        release_s=0.05),
    "arp_pluck": Patch(shape="saw", cutoff_hz=700.0, key_tracking=1.0, resonance=0.5, bright_cutoff_hz=5000.0,
                       filter_decay_s=0.07, unison=2, detune_cents=6.0, width=0.5, attack_s=0.002, decay_s=0.18,
                       sustain=0.0, release_s=0.08, reverb_send=0.4),
    "square_lead": Patch(shape="square", cutoff_hz=2600.0, key_tracking=1.0, resonance=0.2, unison=2, detune_cents=5.0,
                         width=0.2, attack_s=0.01, decay_s=0.3, sustain=0.8, release_s=0.12, vibrato_hz=5.5,
                         vibrato_cents=18.0, reverb_send=0.45),
    "offbeat_bass": Patch(shape="saw", cutoff_hz=500.0, key_tracking=1.0, resonance=0.5, bright_cutoff_hz=2200.0,
                          filter_decay_s=0.06, sub_octave=0.5, attack_s=0.002, decay_s=0.15, sustain=0.5,
                          release_s=0.04),
    "stab": Patch(shape="saw", cutoff_hz=900.0, key_tracking=0.5, resonance=0.4, bright_cutoff_hz=4200.0,
                  filter_decay_s=0.1, unison=2, detune_cents=10.0, width=0.6, attack_s=0.002, decay_s=0.2,
                  sustain=0.0, release_s=0.1, reverb_send=0.35),
    "soft_pad": Patch(shape="triangle", cutoff_hz=2500.0, unison=2, detune_cents=8.0, width=0.7, attack_s=0.3,
                      decay_s=1.0, sustain=0.9, release_s=0.8, reverb_send=0.4),
    # rock
    "power_chord": Patch(shape="saw", cutoff_hz=2500.0, unison=2, detune_cents=7.0, width=0.9, attack_s=0.003,
                         decay_s=0.6, sustain=0.75, release_s=0.08, drive=5.0, post_lowpass_hz=3800.0,
                         reverb_send=0.25),
    "picked_bass": Patch(shape="saw", cutoff_hz=650.0, key_tracking=1.0, bright_cutoff_hz=1600.0, filter_decay_s=0.08,
                         sub_octave=0.3, attack_s=0.003, decay_s=0.4, sustain=0.6, release_s=0.05, drive=1.5),
    "lead_guitar": Patch(shape="saw", cutoff_hz=3000.0, unison=2, detune_cents=4.0, width=0.3, attack_s=0.005,
                         decay_s=0.5, sustain=0.8, release_s=0.12, drive=5.0, post_lowpass_hz=4200.0,
                         vibrato_hz=5.8, vibrato_cents=25.0, vibrato_delay_s=0.2, reverb_send=0.35),
    "rock_organ": Patch(shape="organ", cutoff_hz=2200.0, unison=2, detune_cents=4.0, width=0.7, attack_s=0.02,
                        decay_s=0.5, sustain=0.9, release_s=0.2, drive=1.2, vibrato_hz=6.5, vibrato_cents=5.0,
                        vibrato_delay_s=0.0, reverb_send=0.3),
    # orchestral
    "string_ensemble": Patch(shape="saw", cutoff_hz=1400.0, key_tracking=1.2, unison=3, detune_cents=9.0, width=0.9,
                             attack_s=0.25, decay_s=1.0, sustain=0.9, release_s=0.5, vibrato_hz=5.0,
                             vibrato_cents=8.0, vibrato_delay_s=0.3, reverb_send=0.55),
    "string_staccato": Patch(shape="saw", cutoff_hz=1500.0, key_tracking=1.0, bright_cutoff_hz=3000.0,
                             filter_decay_s=0.05, unison=2, detune_cents=8.0, width=0.6, attack_s=0.006,
                             decay_s=0.09, sustain=0.25, release_s=0.07, reverb_send=0.5),
    "horn": Patch(shape="saw", cutoff_hz=700.0, key_tracking=1.0, bright_cutoff_hz=None, unison=2, detune_cents=5.0,
                  width=0.3, attack_s=0.09, decay_s=0.6, sustain=0.85, release_s=0.25, vibrato_hz=4.8,
                  vibrato_cents=10.0, vibrato_delay_s=0.35, reverb_send=0.5),
    "contrabass": Patch(shape="saw", cutoff_hz=380.0, key_tracking=0.8, unison=2, detune_cents=6.0, width=0.2,
                        attack_s=0.03, decay_s=0.5, sustain=0.85, release_s=0.2, reverb_send=0.3),
    # chiptune: pure waveforms, no filter to speak of
    "pulse_lead": Patch(shape="pulse25", cutoff_hz=6000.0, attack_s=0.002, decay_s=0.15, sustain=0.7,
                        release_s=0.03, vibrato_hz=6.0, vibrato_cents=20.0, vibrato_delay_s=0.18, pan=0.1),
    "pulse_arp": Patch(shape="square", cutoff_hz=5000.0, attack_s=0.001, decay_s=0.06, sustain=0.6,
                       release_s=0.01, pan=-0.15),
    "nes_triangle": Patch(shape="triangle", cutoff_hz=16000.0, levels=16, attack_s=0.001, decay_s=0.2, sustain=0.95,
                          release_s=0.01),
    # lo-fi and pop keys
    "electric_piano": Patch(shape="epiano", cutoff_hz=1100.0, bright_cutoff_hz=7000.0, filter_decay_s=0.12,
                            unison=2, detune_cents=4.0, width=0.5, attack_s=0.003, decay_s=1.4, sustain=0.0,
                            release_s=0.25, vibrato_hz=4.5, vibrato_cents=6.0, vibrato_delay_s=0.0,
                            reverb_send=0.4),
    "round_bass": Patch(shape="saw", cutoff_hz=260.0, key_tracking=0.5, sub_octave=0.3, attack_s=0.006, decay_s=0.5, sustain=0.6,
                        release_s=0.06),
    "soft_lead": Patch(shape="triangle", cutoff_hz=3000.0, attack_s=0.02, decay_s=0.4, sustain=0.7, release_s=0.15,
                       vibrato_hz=5.0, vibrato_cents=12.0, reverb_send=0.45),
    "piano": Patch(shape="piano", cutoff_hz=1400.0, key_tracking=2.0, bright_cutoff_hz=6000.0, filter_decay_s=0.25,
                   unison=2, detune_cents=2.0, width=0.6, attack_s=0.002, decay_s=1.1, sustain=0.0,
                   release_s=0.3, reverb_send=0.35),
    "pop_bass": Patch(shape="saw", cutoff_hz=380.0, key_tracking=1.0, bright_cutoff_hz=900.0, filter_decay_s=0.1,
                      sub_octave=0.4, attack_s=0.004, decay_s=0.4, sustain=0.6, release_s=0.06),
    # ambient
    "evolving_pad": Patch(shape="saw", cutoff_hz=700.0, key_tracking=0.5, resonance=0.2, unison=3,
                          detune_cents=9.0, width=1.0, attack_s=1.6, decay_s=3.0, sustain=0.85, release_s=2.5,
                          reverb_send=0.7),
    "glass_bell": Patch(shape="bell", cutoff_hz=2500.0, bright_cutoff_hz=9000.0, filter_decay_s=0.15, unison=2,
                        detune_cents=3.0, width=0.4, attack_s=0.002, decay_s=0.9, sustain=0.0, release_s=0.5,
                        reverb_send=0.6),
    # acoustic: folk, jazz and the prompt's instrument words
    "acoustic_guitar": Patch(shape="pluck", cutoff_hz=1300.0, key_tracking=1.5, bright_cutoff_hz=6500.0,
                             filter_decay_s=0.12, attack_s=0.002, decay_s=1.3, sustain=0.0, release_s=0.25,
                             pan=-0.15, reverb_send=0.3),
    "harp": Patch(shape="triangle", cutoff_hz=2600.0, key_tracking=1.0, bright_cutoff_hz=7500.0, filter_decay_s=0.08,
                  attack_s=0.002, decay_s=2.2, sustain=0.0, release_s=0.9, pan=0.2, reverb_send=0.55),
    "saxophone": Patch(shape="reed", cutoff_hz=1500.0, key_tracking=0.8, resonance=0.5, attack_s=0.035, decay_s=0.3,
                       sustain=0.85, release_s=0.1, vibrato_hz=5.2, vibrato_cents=16.0, vibrato_delay_s=0.2,
                       pan=0.1, reverb_send=0.35),
    "flute": Patch(shape="flute", cutoff_hz=6000.0, attack_s=0.05, decay_s=0.3, sustain=0.85, release_s=0.12,
                   vibrato_hz=5.0, vibrato_cents=10.0, vibrato_delay_s=0.25, pan=0.1, reverb_send=0.45),
    "choir": Patch(shape="choir", cutoff_hz=2800.0, unison=3, detune_cents=12.0, width=0.8, attack_s=0.35,
                   decay_s=1.0, sustain=0.9, release_s=0.7, vibrato_hz=5.0, vibrato_cents=12.0,
                   vibrato_delay_s=0.3, reverb_send=0.6),
    "fiddle": Patch(shape="saw", cutoff_hz=2400.0, key_tracking=0.6, resonance=0.3, attack_s=0.04, decay_s=0.3,
                    sustain=0.85, release_s=0.12, vibrato_hz=5.8, vibrato_cents=20.0, vibrato_delay_s=0.15,
                    pan=0.15, reverb_send=0.4),
    "upright_bass": Patch(shape="saw", cutoff_hz=320.0, key_tracking=0.8, bright_cutoff_hz=900.0, filter_decay_s=0.06,
                          sub_octave=0.2, attack_s=0.004, decay_s=0.6, sustain=0.3, release_s=0.08),
    # horror: a music box out of tune with itself
    "music_box": Patch(shape="bell", cutoff_hz=3000.0, bright_cutoff_hz=9000.0, filter_decay_s=0.1, unison=2,
                       detune_cents=24.0, width=0.5, attack_s=0.002, decay_s=1.2, sustain=0.0, release_s=0.6,
                       reverb_send=0.7),
    "sub_drone": Patch(shape="saw", cutoff_hz=220.0, key_tracking=0.5, attack_s=1.2, decay_s=2.0, sustain=0.9, release_s=2.0),
}
