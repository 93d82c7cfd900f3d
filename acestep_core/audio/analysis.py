"""Tempo and key measured from audio, for cues whose request left them open.

numpy and soxr (no scipy: a one-shot CLI run would spend longer importing it than
measuring), deterministic. Both are measured on one mono signal decimated to
22.05 kHz (analysis_signal: make it once, pass it to both); 30-40 ms for 30 s of audio.

Tempo: an onset-strength envelope (half-wave rectified spectral flux of log magnitude up
to 8 kHz, 10 ms hops), its autocorrelation weighted by a log-normal tempo prior around
120 BPM to choose between octaves (60 / 120 / 240 all repeat; far from 120 BPM the
estimate can land an octave off, as every autocorrelation tracker can), then refined to
a hundredth of a BPM by the envelope's Fourier magnitude summed over the first four
harmonics of the beat frequency, which is sharper than the autocorrelation's lag grid.

Key: a chromagram (spectral magnitude folded onto the 12 pitch classes, 55 Hz-2 kHz,
from frames 0.37 s long (2.7 Hz bins), each bin weighted by how close it sits to a
semitone's centre) correlated with Temperley's major and minor key profiles in all
12 rotations; the best correlation names the key. Chroma alone cannot tell a key from
its relative minor when both use the same chords equally (C-G-Am-F vs Am-F-C-G).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

from acestep_core.fastfft import rfft

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MIN_TEMPO_BPM = 30.0
MAX_TEMPO_BPM = 300.0
# The tempo prior: log-normal around 120 BPM, one octave wide (as in most beat trackers).
PRIOR_CENTER_BPM = 120.0
PRIOR_OCTAVES = 1.0
# Tempo and key are measured on mono at this rate: onset flux stops at 8 kHz, chroma at
# 2 kHz, so a quarter of the samples of 44.1/48 kHz audio carry everything they read.
ANALYSIS_RATE = 22050
_ONSET_HOP_S = 0.01
# 46 ms frames; the log compression was tuned on 2048-point frames at 44.1 kHz, which
# read twice the magnitude of these 1024-point ones at half the rate.
_ONSET_WINDOW = 1024
_FLUX_SCALE = 200.0
# An envelope's step i compares windows that start i hops in: an attack shows when it
# enters a window's end, so the peak comes this long before the attack itself.
ONSET_LEAD_S = _ONSET_WINDOW / ANALYSIS_RATE - _ONSET_HOP_S
_FLUX_TOP_HZ = 8000.0
_REFINE_SPAN = 0.03  # +-3% around the autocorrelation's choice
_REFINE_STEP_BPM = 0.05  # then a parabola through the best three points
_REFINE_HARMONICS = 4
# Analyse at most this much audio: a minute holds 15 to 75 bars, and a cue's tempo and key
# do not change past it (measured tempo and key are a check of the planned ones).
MAX_ANALYSIS_S = 60.0

# 4096-point frames at 11.025 kHz (2.7 Hz bins) resolve semitones down to about 55 Hz.
_CHROMA_RATE = ANALYSIS_RATE // 2
_CHROMA_WINDOW = 4096
_CHROMA_HOP = 2048
_CHROMA_BAND_HZ = (55.0, 2000.0)
# Temperley's Kostka-Payne key profiles (2001), tonic first: pitch-class frequencies in
# a corpus of tonal music. Chosen over Krumhansl-Kessler, which on chord-based audio
# often names the dominant or the relative minor instead of the key.
MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float
    confidence: float  # 0..1: how far the chosen period stands out of the autocorrelation


@dataclass(frozen=True)
class KeyEstimate:
    key: str  # "A minor", spelled as acestep_core.request.normalize_key spells keys
    correlation: float  # Pearson r with the winning profile, -1..1
    runner_up: str
    runner_up_correlation: float


def analysis_signal(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """The first MAX_ANALYSIS_S of the audio as float32 mono at ANALYSIS_RATE, what tempo and key read."""
    return _mono_at(frames, sample_rate, ANALYSIS_RATE)


def _mono_at(frames: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """(frames, channels) or (frames,) -> float32 mono at `rate`, at most MAX_ANALYSIS_S long."""
    data = np.asarray(frames)[: int(MAX_ANALYSIS_S * sample_rate)]
    if data.ndim == 1:
        signal = data.astype(np.float32)
    else:  # column by column into one array: numpy reduces a short last axis slowly
        signal = data[:, 0].astype(np.float32)
        for c in range(1, data.shape[1]):
            signal += data[:, c]
        signal /= np.float32(data.shape[1])
    if sample_rate == rate or signal.size == 0:
        return signal
    # HQ is flat to 0.9 of the new Nyquist, far past the 8 kHz / 2 kHz the analysis reads.
    return soxr.resample(signal, sample_rate, rate, quality="HQ")


def _frames_of(signal: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Overlapping frames as a (count, window) view; the signal is padded to one window."""
    if signal.size < window:
        signal = np.pad(signal, (0, window - signal.size))
    count = 1 + (signal.size - window) // hop
    return np.lib.stride_tricks.as_strided(
        signal, shape=(count, window), strides=(signal.strides[0] * hop, signal.strides[0]), writeable=False
    )


def _magnitudes(signal: np.ndarray, window: int, hop: int, block: int = 1024):
    """Yield magnitude spectra block by block, so a long cue never holds its whole STFT."""
    frames = _frames_of(np.asarray(signal, dtype=np.float32), window, hop)
    taper = np.hanning(window).astype(np.float32)
    for first in range(0, frames.shape[0], block):
        yield np.abs(rfft(frames[first : first + block] * taper, axis=1))


def onset_envelope(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """(onset strength per hop, hop in seconds)."""
    signal = _mono_at(frames, sample_rate, ANALYSIS_RATE)
    hop = int(round(_ONSET_HOP_S * ANALYSIS_RATE))
    top_bin = int(_FLUX_TOP_HZ / ANALYSIS_RATE * _ONSET_WINDOW)
    flux: list[np.ndarray] = []
    previous = None
    for magnitude in _magnitudes(signal, _ONSET_WINDOW, hop):
        log_mag = np.log1p(_FLUX_SCALE * magnitude[:, 1:top_bin])
        stacked = log_mag if previous is None else np.vstack([previous, log_mag])
        rise = np.maximum(np.diff(stacked, axis=0), 0.0).sum(axis=1)
        flux.append(rise if previous is not None else np.concatenate([[0.0], rise]))
        previous = log_mag[-1:]
    envelope = np.concatenate(flux)
    # Remove the slow loudness contour so only attacks remain ("same" would return the
    # longer of the two, so audio under half a second gets a shorter average).
    width = min(51, envelope.size)
    local = np.convolve(envelope, np.ones(width) / width, mode="same")
    return np.maximum(envelope - local, 0.0), hop / ANALYSIS_RATE


def tempo_prior(bpm: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (np.log2(bpm / PRIOR_CENTER_BPM) / PRIOR_OCTAVES) ** 2)


def estimate_tempo(frames: np.ndarray, sample_rate: int) -> TempoEstimate | None:
    """The tempo in BPM, or None when the audio has no rhythm to measure (silence, a drone)."""
    envelope, hop_s = onset_envelope(frames, sample_rate)
    if envelope.size < 8 or not np.any(envelope > 0):
        return None
    # Onset peaks are a hop or two wide; a beat period is rarely a whole number of hops,
    # and reading the autocorrelation between two samples of a needle-thin peak would
    # favour whichever tempo happens to fall on the hop grid. Widen the peaks first.
    smoothed = np.convolve(envelope, np.hanning(7)[1:-1], mode="same")
    centred = smoothed - smoothed.mean()
    size = 1 << int(math.ceil(math.log2(2 * centred.size)))
    spectrum = np.fft.rfft(centred, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: centred.size]
    if acf[0] <= 0:
        return None
    acf /= acf[0]
    candidates = np.arange(MIN_TEMPO_BPM, MAX_TEMPO_BPM + 0.25, 0.25)
    lags = 60.0 / (candidates * hop_s)
    usable = lags < centred.size - 1
    if not np.any(usable):
        return None
    candidates, lags = candidates[usable], lags[usable]
    strength = np.interp(lags, np.arange(acf.size), acf)
    # A beat is usually split in two (eighth notes), so the true beat period repeats at
    # half its lag too; a 3/2 impostor (three eighths) does not. Counting the half lag
    # keeps the estimate off dotted periods that the prior alone would prefer.
    half = np.interp(lags / 2, np.arange(acf.size), acf)
    score = (np.maximum(strength, 0.0) + 0.25 * np.maximum(half, 0.0)) * tempo_prior(candidates)
    best = int(np.argmax(score))
    coarse = float(candidates[best])
    refined = _refine_tempo(envelope, hop_s, coarse)
    confidence = float(np.clip(strength[best], 0.0, 1.0))
    return TempoEstimate(bpm=round(refined, 2), confidence=round(confidence, 3))


def _refine_tempo(envelope: np.ndarray, hop_s: float, coarse_bpm: float) -> float:
    centred = envelope - envelope.mean()
    grid = np.arange(coarse_bpm * (1 - _REFINE_SPAN), coarse_bpm * (1 + _REFINE_SPAN), _REFINE_STEP_BPM)
    score = np.zeros(grid.size)
    for harmonic in range(1, _REFINE_HARMONICS + 1):
        score += np.abs(_fourier_on_grid(centred, grid[0] * harmonic / 60.0 * hop_s,
                                         _REFINE_STEP_BPM * harmonic / 60.0 * hop_s, grid.size))
    best = int(np.argmax(score))
    if 0 < best < grid.size - 1:
        left, middle, right = score[best - 1], score[best], score[best + 1]
        curvature = left - 2 * middle + right
        if curvature < 0:
            return float(grid[best] + 0.5 * (left - right) / curvature * _REFINE_STEP_BPM)
    return float(grid[best])


def _fourier_on_grid(signal: np.ndarray, first: float, step: float, count: int) -> np.ndarray:
    """sum_n signal[n] exp(-2 pi i f n) for f = first + k * step (cycles per sample), k < count.

    A chirp z-transform: FFTs of about len(signal) + count points instead of a
    (count, len(signal)) matrix of complex exponentials.
    """
    # Bluestein: k*n = (k^2 + n^2 - (k - n)^2) / 2 turns the sum into a convolution with a chirp.
    length = signal.size
    size = 1 << int(math.ceil(math.log2(length + count - 1)))
    # chirp[m + length - 1] = exp(-i pi step m^2), m from -(length - 1) on.
    chirp = np.exp(-1j * np.pi * step * np.arange(-(length - 1), max(length, count)) ** 2.0)
    weighted = signal * np.exp(-2j * np.pi * first * np.arange(length)) * chirp[length - 1 : 2 * length - 1]
    spectrum = np.fft.fft(weighted, size) * np.fft.fft(1.0 / chirp[: length + count - 1], size)
    return np.fft.ifft(spectrum)[length - 1 : length - 1 + count] * chirp[length - 1 : length - 1 + count]


def chromagram(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """12 pitch-class energies (C first), summed over the audio and normalized to sum 1."""
    signal = _mono_at(frames, sample_rate, _CHROMA_RATE)
    freqs = np.fft.rfftfreq(_CHROMA_WINDOW, 1.0 / _CHROMA_RATE)
    band = (freqs >= _CHROMA_BAND_HZ[0]) & (freqs <= _CHROMA_BAND_HZ[1])
    semitones = 12.0 * np.log2(freqs[band] / 440.0)
    nearest = np.round(semitones)
    pitch_class = (nearest.astype(int) + 9) % 12
    # Bins between two semitones are leakage, not notes: they count less the further off they sit.
    centredness = np.clip(1.0 - 2.0 * np.abs(semitones - nearest), 0.0, 1.0)
    chroma = np.zeros(12)
    for magnitude in _magnitudes(signal, _CHROMA_WINDOW, _CHROMA_HOP, block=128):
        # Square-root magnitude keeps one loud bass note from outvoting the chord above it.
        per_bin = np.sqrt(magnitude[:, band]).sum(axis=0) * centredness
        chroma += np.bincount(pitch_class, weights=per_bin, minlength=12)
    total = chroma.sum()
    return chroma / total if total > 0 else chroma


def estimate_key(frames: np.ndarray, sample_rate: int) -> KeyEstimate | None:
    """The key ("E minor"), or None when the audio has no pitched content to measure."""
    chroma = chromagram(frames, sample_rate)
    if not np.any(chroma > 0) or np.allclose(chroma, chroma.mean()):
        return None
    scored: list[tuple[float, str]] = []
    for tonic in range(12):
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            scored.append((r, f"{NOTE_NAMES[tonic]} {mode}"))
    scored.sort(reverse=True)
    (best_r, best), (second_r, second) = scored[0], scored[1]
    return KeyEstimate(key=best, correlation=round(best_r, 3), runner_up=second,
                       runner_up_correlation=round(second_r, 3))
