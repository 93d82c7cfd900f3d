"""Sound sources and shapers: band-limited wavetable oscillators, envelopes, FFT filters,
saturation, panning and a noise reverb. Small pure functions over numpy arrays.

Oscillators read one period from a wavetable built from its harmonics, so every waveform
is band-limited and already low-pass filtered (the filter is applied per harmonic).
Everything that is costly runs once per distinct note or drum sound, never over the
whole cue: the mixer renders each distinct sound once and places copies.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from acestep_core.fastfft import irfft, rfft

# 44.1 kHz, the default output rate: a cue in that format is written as rendered, with no
# rate conversion (a 48 kHz request is converted by finishing, as ACE-Step's audio is).
SAMPLE_RATE = 44100
TABLE_SIZE = 2048
# Harmonics above this are inaudible and only cost aliasing.
HIGHEST_HARMONIC_HZ = 18000.0


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def seconds_to_frames(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


# -- wavetables -------------------------------------------------------------------------

# Harmonic recipes: amplitude of harmonic k (1-based) for each waveform the patches use.
def harmonic_amplitudes(shape: str, count: int) -> np.ndarray:
    k = np.arange(1, count + 1, dtype=np.float64)
    odd = (k % 2) == 1
    if shape == "saw":
        return 1.0 / k
    if shape == "square":
        return np.where(odd, 1.0 / k, 0.0)
    if shape.startswith("pulse"):  # "pulse25": 25 % duty cycle
        duty = int(shape[5:]) / 100.0
        return np.abs(np.sin(np.pi * k * duty)) / (k * np.sin(np.pi * duty))
    if shape == "triangle":
        return np.where(odd, 1.0 / k**2, 0.0)
    if shape == "sine":
        return (k == 1).astype(np.float64)
    if shape == "organ":  # drawbars 8', 4', 2 2/3', 2'
        return np.select([k == 1, k == 2, k == 3, k == 4], [1.0, 0.6, 0.35, 0.3], 0.0)
    if shape == "epiano":  # sine-like body with a touch of the tine's upper partials
        return np.select([k == 1, k == 2, k == 3, k == 4, k == 7], [1.0, 0.35, 0.1, 0.06, 0.12], 0.0)
    if shape == "piano":
        return np.where(k <= 16, 1.0 / k**1.3, 0.0) * np.where(k % 8 == 0, 0.2, 1.0)
    if shape == "bell":
        return np.select([k == 1, k == 2, k == 3, k == 5, k == 8], [1.0, 0.15, 0.45, 0.25, 0.1], 0.0)
    if shape == "pluck":  # a string plucked near a fifth of its length: every fifth harmonic weak
        return np.where(k % 5 == 0, 0.15, 1.0) / k**1.1
    if shape == "reed":  # a conical bore (saxophone): every harmonic, the even ones a little weaker
        return np.where(odd, 1.0, 0.6) / k**0.9
    if shape == "flute":  # nearly a sine, with a breathy second and third
        return np.select([k == 1, k == 2, k == 3, k == 4], [1.0, 0.3, 0.12, 0.04], 0.0)
    if shape == "choir":  # a saw through the vowel's formants (see formant_gain, applied per pitch)
        return 1.0 / k
    raise ValueError(f"unknown waveform {shape!r}")


def lowpass_gain(freqs: np.ndarray, cutoff_hz: float, order: int = 2, resonance: float = 0.0) -> np.ndarray:
    """Butterworth-like magnitude, with an optional resonant bump at the cutoff."""
    ratio = freqs / cutoff_hz
    gain = 1.0 / np.sqrt(1.0 + ratio ** (2 * order))
    if resonance:
        gain = gain * (1.0 + resonance * np.exp(-(np.log2(np.maximum(ratio, 1e-9)) / 0.25) ** 2))
    return gain


# Oscillator phase is a 32-bit fixed-point fraction of a cycle: it wraps by itself, and
# its top bits index the table.
PHASE_BITS = 32
_INDEX_SHIFT = PHASE_BITS - int(np.log2(TABLE_SIZE))
_FRACTION_MASK = np.uint32((1 << _INDEX_SHIFT) - 1)
_FRACTION_SCALE = np.float32(1.0 / (1 << _INDEX_SHIFT))


# An "ah" sung by a mixed choir: formant centres (Hz), their levels and widths in octaves.
_AH_FORMANTS = ((750.0, 1.0, 0.35), (1150.0, 0.55, 0.3), (2600.0, 0.25, 0.25))


def formant_gain(freqs: np.ndarray) -> np.ndarray:
    """The vowel's resonances at absolute frequencies: what makes a saw sound sung."""
    octaves = np.log2(np.maximum(freqs, 1.0))
    gain = np.full(freqs.shape, 0.04)
    for centre, level, width in _AH_FORMANTS:
        gain += level * np.exp(-((octaves - np.log2(centre)) / width) ** 2)
    return gain


@lru_cache(maxsize=1024)
def wavetable(shape: str, freq_hz: float, cutoff_hz: float, resonance: float = 0.0, levels: int = 0,
              rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """One period of `shape` at `freq_hz` through a low-pass at `cutoff_hz`, band-limited
    for `rate`: (values, slope to the next value), float32, TABLE_SIZE each.

    `levels` quantizes the waveform (the NES triangle has 16). Tables are cached: pass
    rounded frequencies so notes of one pitch share one.
    """
    highest = min(HIGHEST_HARMONIC_HZ, 0.45 * rate)
    count = max(1, int(min(TABLE_SIZE // 2 - 1, highest // max(freq_hz, 1.0))))
    amplitudes = harmonic_amplitudes(shape, count) * lowpass_gain(
        freq_hz * np.arange(1, count + 1), cutoff_hz, resonance=resonance
    )
    if shape == "choir":
        amplitudes = amplitudes * formant_gain(freq_hz * np.arange(1, count + 1))
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1:count + 1] = -1j * amplitudes * (TABLE_SIZE / 2)
    table = np.fft.irfft(spectrum, TABLE_SIZE)
    if levels:
        peak = np.max(np.abs(table)) or 1.0
        table = np.round(table / peak * (levels / 2 - 0.5)) / (levels / 2 - 0.5) * peak
    values = table.astype(np.float32)
    slopes = (np.roll(table, -1) - table).astype(np.float32)
    values.setflags(write=False)
    slopes.setflags(write=False)
    return values, slopes


def vibrato_warp(frames: int, rate: int, vibrato_hz: float, vibrato_cents: float, delay_s: float) -> np.ndarray | None:
    """Extra phase, in periods of the note, that a vibrato adds by each frame (None: no vibrato).

    Shared by every voice of a note: multiply by a voice's phase step to apply it.
    """
    if not (vibrato_hz and vibrato_cents):
        return None
    t = np.arange(frames, dtype=np.float64) / rate
    depth = np.clip((t - delay_s) / 0.4, 0.0, 1.0) * (2.0 ** (vibrato_cents / 1200.0) - 1.0)
    return np.cumsum(depth * np.sin(2.0 * np.pi * vibrato_hz * t))


def oscillator_phase(freq_hz: float, frames: int, rate: int = SAMPLE_RATE, start: float = 0.0,
                     warp: np.ndarray | None = None) -> np.ndarray:
    """Phase per frame (uint32 fraction of a cycle) of an oscillator at freq_hz."""
    step = freq_hz / rate * 2.0**PHASE_BITS
    phase = np.arange(frames, dtype=np.uint32)
    phase *= np.uint32(int(round(step)) & 0xFFFFFFFF)
    phase += np.uint32(int(start * 2.0**PHASE_BITS) & 0xFFFFFFFF)
    if warp is not None:
        phase += (warp * step).astype(np.int64).astype(np.uint32)
    return phase


def read_table(table: tuple[np.ndarray, np.ndarray], phase: np.ndarray) -> np.ndarray:
    """Linear interpolation into a wavetable at each phase, float32."""
    values, slopes = table
    index = phase >> np.uint32(_INDEX_SHIFT)
    fraction = (phase & _FRACTION_MASK).astype(np.float32)
    fraction *= _FRACTION_SCALE
    out = values.take(index)
    fraction *= slopes.take(index)
    out += fraction
    return out


def noise(frames: int, rng: np.random.Generator, hold: int = 1) -> np.ndarray:
    """White noise in -1..1; hold > 1 repeats each value (the gritty noise of old consoles)."""
    values = rng.uniform(-1.0, 1.0, -(-frames // hold)).astype(np.float32)
    return np.repeat(values, hold)[:frames] if hold > 1 else values


# -- envelopes --------------------------------------------------------------------------


def adsr(gate_frames: int, attack_s: float, decay_s: float, sustain: float, release_s: float,
         rate: int = SAMPLE_RATE) -> np.ndarray:
    """Attack-decay-sustain-release over gate_frames plus the release, float32.

    The attack is linear, decay and release exponential; the release ends at exactly 0.
    """
    release = max(int(round(release_s * rate)), 1)
    t = np.arange(gate_frames, dtype=np.float32) / rate
    attack = max(attack_s, 1e-4)
    rise = np.minimum(t / attack, 1.0)
    fall = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / max(decay_s, 1e-4))
    held = np.where(t < attack, rise, fall).astype(np.float32)
    level = float(held[-1]) if gate_frames else 0.0
    tail = np.linspace(1.0, 0.0, release, dtype=np.float32) * np.exp(
        -np.arange(release, dtype=np.float32) / (release / 5.0)
    )
    return np.concatenate([held, level * tail])


def decay_envelope(frames: int, decay_s: float, attack_s: float = 0.0005) -> np.ndarray:
    """A percussive envelope: a tiny linear attack, then exponential decay, ending at 0."""
    t = np.arange(frames, dtype=np.float32) / SAMPLE_RATE
    envelope = np.exp(-t / decay_s) * np.minimum(t / attack_s, 1.0)
    envelope *= np.linspace(1.0, 0.0, frames, dtype=np.float32) ** 0.25
    return envelope.astype(np.float32)


def fade(frames: int, rising: bool) -> np.ndarray:
    """A raised-cosine fade of `frames` samples, 0 -> 1 when rising."""
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, frames, dtype=np.float64))
    return (ramp if rising else ramp[::-1]).astype(np.float32)


# -- filters and shapers ------------------------------------------------------------


def spectral_filter(signal: np.ndarray, low_hz: float | None = None, high_hz: float | None = None,
                    order: int = 2, sample_rate: float = SAMPLE_RATE, band_limit: bool = False) -> np.ndarray:
    """Zero-phase band filter in the frequency domain: high-pass at low_hz, low-pass at high_hz;
    `band_limit` also takes away everything above BAND_LIMIT_HZ.

    Used on short sounds only (drum one-shots, a distorted chord), where one FFT is cheap.
    """
    frames = signal.shape[-1]
    # Padded to a size FFTs are fast at (a prime length is ten times slower); the padding
    # also keeps the filter's ringing from wrapping round from one end to the other.
    size = fast_fft_size(frames)
    spectrum = rfft(np.asarray(signal, dtype=np.float32), size, axis=-1)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    gain = np.ones_like(freqs)
    if high_hz:
        gain *= lowpass_gain(freqs, high_hz, order)
    if low_hz:
        gain *= np.sqrt(np.maximum(1.0 - lowpass_gain(freqs, low_hz, order) ** 2, 0.0))
    if band_limit:
        gain *= _band_limit_gain(freqs)
    spectrum *= gain.astype(np.float32)
    return irfft(spectrum, size, axis=-1)[..., :frames].astype(np.float32, copy=False)


# Nothing the sketch makes reaches past this: true-peak meters oversample with a passband
# to about 0.95 of Nyquist (soxr's, 20.9 kHz at 44.1 kHz), so a peak made of content above
# it would go unseen and pass the ceiling. Pass to 19 kHz, a raised cosine to 20.5 kHz.
BAND_LIMIT_HZ = (19000.0, 20500.0)


def band_limited(signal: np.ndarray) -> np.ndarray:
    """`signal` (frames last, at SAMPLE_RATE) with nothing above BAND_LIMIT_HZ. For finished
    sounds whose noise, envelope or distortion spread their spectrum to Nyquist, each made
    once and placed many times."""
    return spectral_filter(signal, band_limit=True)


def _band_limit_gain(freqs: np.ndarray) -> np.ndarray:
    low, high = BAND_LIMIT_HZ
    return 0.5 + 0.5 * np.cos(np.pi * np.clip((freqs - low) / (high - low), 0.0, 1.0))


def saturate(signal: np.ndarray, drive: float) -> np.ndarray:
    """tanh soft clipping, scaled so a full-scale input stays at full scale."""
    if drive <= 0.0:
        return signal
    return (np.tanh(drive * signal) / np.tanh(drive)).astype(np.float32)


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power (left, right) gains for pan in -1 (left) .. 1 (right)."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


def place_mono(mono: np.ndarray, pan: float) -> np.ndarray:
    left, right = pan_gains(pan)
    return np.stack([mono * left, mono * right]).astype(np.float32)


# -- reverb -------------------------------------------------------------------------

# name: (length s, decay time to -60 dB s, how dark the tail gets)
REVERBS = {
    "room": (0.7, 0.6, 0.5),
    "plate": (1.6, 1.4, 0.4),
    "hall": (2.8, 2.4, 0.3),
    "gated": (0.3, 2.0, 0.8),  # the 80s snare: a big room cut off short
}


def reverb_impulse(name: str, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A stereo impulse response of unit energy: decorrelated noise under an exponential
    decay whose high frequencies die first."""
    length_s, decay_s, darkness = REVERBS[name]
    frames = int(round(length_s * sample_rate))
    noise = rng.standard_normal((2, frames)).astype(np.float32)
    t = np.arange(frames, dtype=np.float32) / sample_rate
    envelope = np.exp(-6.9 * t / decay_s)
    bright = noise * envelope * np.exp(-6.9 * t / (decay_s * 0.3))
    dark = spectral_filter(noise, high_hz=min(2500.0, sample_rate * 0.4), sample_rate=sample_rate) * envelope
    impulse = (1.0 - darkness) * bright + darkness * dark
    impulse[:, : int(0.01 * sample_rate)] = 0.0  # pre-delay keeps the dry attack clear
    impulse *= fade(frames, rising=False) ** (0.3 if name == "gated" else 1.0)
    energy = float(np.sqrt(np.sum(impulse**2) / 2.0))
    return (impulse / energy).astype(np.float32)


def fast_fft_size(frames: int) -> int:
    """The smallest 2^a 3^b 5^c at or above frames (FFTs of such sizes are fast)."""
    best = 1 << int(np.ceil(np.log2(max(frames, 1))))
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < frames:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def convolve(stereo: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Full convolution of each channel with the impulse's channel, float32."""
    frames = stereo.shape[1] + impulse.shape[1] - 1
    size = fast_fft_size(frames)
    wet = irfft(rfft(np.asarray(stereo, dtype=np.float32), size) * rfft(np.asarray(impulse, dtype=np.float32), size),
                size)[:, :frames]
    return wet.astype(np.float32, copy=False)


def add_reverb(stereo: np.ndarray, impulse: np.ndarray, mix: float) -> np.ndarray:
    """Dry plus `mix` of the reverb; longer by the impulse's length. For short sounds."""
    out = mix * convolve(stereo, impulse)
    out[:, : stereo.shape[1]] += stereo
    return out


# Rate changes use a windowed-sinc low-pass split into `factor` phases, TAPS_PER_PHASE
# taps each: linear interpolation would leave images of the band a few dB down, heard
# as a metallic fizz over dark pads and reverb tails.
TAPS_PER_PHASE = 8


@lru_cache(maxsize=8)
def polyphase_lowpass(factor: int) -> np.ndarray:
    """Blackman-windowed sinc at 0.45 / factor of the high rate, shape (TAPS_PER_PHASE, factor):
    row k holds tap k of every phase, scaled for unity gain after zero-stuffing."""
    length = factor * TAPS_PER_PHASE
    n = np.arange(length) - (length - 1) / 2.0
    kernel = np.sinc(0.9 * n / factor) * np.blackman(length)
    kernel *= factor / kernel.sum()
    return kernel.reshape(TAPS_PER_PHASE, factor).astype(np.float32)


def downsample(stereo: np.ndarray, factor: int) -> np.ndarray:
    """Low-pass and keep every factor-th frame: (channels, frames // factor)."""
    blocks = stereo.shape[1] // factor
    return downsample_range(stereo[:, : blocks * factor], factor, 0, blocks, 0)


def downsample_range(window: np.ndarray, factor: int, first: int, count: int, window_start: int) -> np.ndarray:
    """Frames first .. first + count - 1 of downsample(audio), from a window of the audio.

    `window` holds the audio from frame `window_start` on and must reach from
    factor * first - factor * TAPS_PER_PHASE // 2 to factor * (first + count) + the same
    (the filter's reach); frames of it before 0 are taken as silence. Output block m is
    the polyphase sum over taps of the `factor` frames at m + tap - half times the kernel,
    done as one matrix-vector product per tap.
    """
    kernel = polyphase_lowpass(factor) / factor
    half = TAPS_PER_PHASE // 2
    channels = window.shape[0]
    begin = factor * (first - half) - window_start
    span = window[:, max(begin, 0) : begin + factor * (count + TAPS_PER_PHASE)]
    if begin < 0 or span.shape[1] < factor * (count + TAPS_PER_PHASE):
        padded = np.zeros((channels, factor * (count + TAPS_PER_PHASE)), dtype=np.float32)
        padded[:, max(-begin, 0) : max(-begin, 0) + span.shape[1]] = span
        span = padded
    grouped = np.ascontiguousarray(span, dtype=np.float32).reshape(channels, count + TAPS_PER_PHASE, factor)
    out = np.zeros((channels, count), dtype=np.float32)
    for tap in range(TAPS_PER_PHASE):
        out += np.matmul(grouped[:, tap : tap + count], kernel[tap])
    return out


def upsample(stereo: np.ndarray, factor: int, frames: int) -> np.ndarray:
    """Zero-stuff by `factor` and low-pass (polyphase), cut or zero-padded to `frames`."""
    out = upsample_range(stereo, factor, 0, stereo.shape[1])
    if out.shape[1] >= frames:
        return out[:, :frames]
    return np.pad(out, ((0, 0), (0, frames - out.shape[1])))


def upsample_range(low: np.ndarray, factor: int, first: int, count: int) -> np.ndarray:
    """Frames factor * first .. factor * (first + count) - 1 of upsample(low): (channels, factor * count).

    Output phase p of block m is the sum over taps of low[m + half - tap] times
    kernel[tap, p] (silence outside low), one small matrix product per channel.
    """
    kernel = polyphase_lowpass(factor)
    half = TAPS_PER_PHASE // 2
    channels, length = low.shape
    begin = first + half - TAPS_PER_PHASE + 1  # the lowest input any output block here reads
    padded = np.zeros((channels, count + TAPS_PER_PHASE - 1), dtype=np.float32)
    lo, hi = max(begin, 0), min(length, begin + padded.shape[1])
    if hi > lo:
        padded[:, lo - begin : hi - begin] = low[:, lo:hi]
    out = np.empty((channels, count, factor), dtype=np.float32)
    for channel in range(channels):
        # Row m, column tap: low[m + half - tap].
        sources = np.stack([padded[channel, TAPS_PER_PHASE - 1 - tap : TAPS_PER_PHASE - 1 - tap + count]
                            for tap in range(TAPS_PER_PHASE)], axis=1)
        np.matmul(sources, kernel, out=out[channel])
    return out.reshape(channels, count * factor)


def convolve_in_blocks(signal: np.ndarray, impulse: np.ndarray, length: int, block: int = 1 << 15) -> np.ndarray:
    """The first `length` frames of convolve(signal, impulse), block by block (overlap-add):
    FFTs a little longer than the impulse instead of one as long as the signal."""
    channels, count = signal.shape
    size = fast_fft_size(block + impulse.shape[1] - 1)
    response = rfft(np.asarray(impulse, dtype=np.float32), size)
    out = np.zeros((channels, length), dtype=np.float32)
    for start in range(0, min(count, length), block):
        piece = irfft(rfft(np.asarray(signal[:, start : start + block], dtype=np.float32), size) * response, size)
        stop = min(length, start + size)
        out[:, start:stop] += piece[:, : stop - start]
    return out
