"""Tempo and key of audio, measured the textbook way, as pure numpy functions.

Tempo: onset strength (half-wave rectified flux of log band energies), its
autocorrelation, the strongest beat period in a bpm window, refined over many beat
multiples. Key: a chroma vector (the whitened long-term spectrum, with the partials
that sound other notes than their own taken out, folded onto the 12 pitch classes)
correlated against the 24 rotations of the Krumhansl-Kessler major and minor profiles.

Inputs are float arrays, mono (frames,) or channels-first (channels, frames).
"""

from __future__ import annotations

import numpy as np

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def to_mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    return samples.mean(axis=0) if samples.ndim == 2 else samples


def magnitude_spectrogram(mono: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| with a Hann window, shape (frames, n_fft // 2 + 1)."""
    if mono.shape[0] < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.shape[0]))
    count = 1 + (mono.shape[0] - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        mono, shape=(count, n_fft), strides=(mono.strides[0] * hop, mono.strides[0]), writeable=False
    )
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))


# -- tempo ------------------------------------------------------------------------------


def band_edges(sample_rate: int, n_fft: int, bands: int = 48, low_hz: float = 40.0, high_hz: float = 16000.0) -> np.ndarray:
    """FFT bin indices where each of `bands` log-spaced bands starts (strictly rising)."""
    edges_hz = np.geomspace(low_hz, min(high_hz, sample_rate / 2), bands + 1)
    edges = np.unique(np.round(edges_hz * n_fft / sample_rate).astype(int))
    return edges[edges >= 1]


def onset_strength(samples: np.ndarray, sample_rate: int, hop: int = 256, n_fft: int = 2048,
                   floor_db: float = 80.0) -> np.ndarray:
    """Half-wave rectified flux of the log band energies, one value per hop (value t is
    centred on sample t * hop).

    Energies are pooled in log-spaced bands first (as a mel spectrogram does), so the
    slow beating of detuned partials inside a band does not read as onsets; a rise of
    energy across bands does.
    """
    # Half a window of silence first, so frame t is centred on sample t * hop.
    mono = np.concatenate([np.zeros(n_fft // 2), to_mono(samples)])
    power = magnitude_spectrogram(mono, n_fft, hop) ** 2
    edges = band_edges(sample_rate, n_fft)
    bands = np.add.reduceat(power[:, edges[0]:edges[-1]], edges[:-1] - edges[0], axis=1)
    level = 10.0 * np.log10(np.maximum(bands, 1e-10))
    level = np.maximum(level, level.max() - floor_db)  # a floor, so silence does not flicker
    flux = np.maximum(np.diff(level, axis=0), 0.0).mean(axis=1)
    return np.concatenate([[0.0], flux])


def autocorrelation(signal: np.ndarray) -> np.ndarray:
    """Mean-removed autocorrelation for lags 0..len-1, each lag divided by its overlap."""
    centered = signal - signal.mean()
    n = centered.shape[0]
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centered, size)
    raw = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    return raw / np.arange(n, 0, -1)


def _peak_near(values: np.ndarray, lag: float, tolerance: float) -> float | None:
    """The parabola-interpolated local maximum of `values` within lag +- tolerance."""
    low, high = max(1, int(np.floor(lag - tolerance))), min(len(values) - 2, int(np.ceil(lag + tolerance)))
    if high <= low:
        return None
    index = low + int(np.argmax(values[low:high + 1]))
    if index in (low, high) and not (values[index] >= values[index - 1] and values[index] >= values[index + 1]):
        return None
    left, centre, right = values[index - 1], values[index], values[index + 1]
    curvature = left - 2 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return index + float(np.clip(offset, -0.5, 0.5))


def estimate_tempo(samples: np.ndarray, sample_rate: int, min_bpm: float = 60.0, max_bpm: float = 200.0,
                   hop: int = 256) -> float:
    """The tempo in bpm of the strongest beat periodicity between min_bpm and max_bpm.

    Tempo has an octave ambiguity (a 75 bpm groove is also a 150 bpm groove); the window
    says which octave the caller means. Keep max_bpm / min_bpm under 2 to pin it. The beat
    period found on the coarse lag grid is refined by fitting the autocorrelation peaks
    at every multiple of it that the signal holds twice, which gives a precision of a
    small fraction of a frame.
    """
    envelope = onset_strength(samples, sample_rate, hop=hop)
    frames_per_second = sample_rate / hop
    acf = autocorrelation(envelope)
    shortest = int(np.floor(60.0 * frames_per_second / max_bpm))
    longest = int(np.ceil(60.0 * frames_per_second / min_bpm))
    if longest >= len(acf) // 2:
        raise ValueError("the audio is too short to hold two beats at the slowest tempo asked for")
    # The highest local maximum in the window: a slope rising toward a stronger period
    # just outside the window is not a beat.
    window = np.arange(max(shortest, 1), longest + 1)
    peaks = window[(acf[window] >= acf[window - 1]) & (acf[window] >= acf[window + 1])]
    coarse = int(peaks[np.argmax(acf[peaks])]) if peaks.size else int(window[np.argmax(acf[window])])
    period = _peak_near(acf, coarse, 1.0) or float(coarse)
    multiples, lags = [], []
    for multiple in range(1, int((len(acf) // 2) / period) + 1):
        # A fifth of a beat either way: far enough to find the peak, too near to reach the half-beat.
        lag = _peak_near(acf, multiple * period, tolerance=max(2.0, 0.2 * period))
        if lag is not None:
            multiples.append(multiple)
            lags.append(lag)
            period = float(np.dot(multiples, lags) / np.dot(multiples, multiples))
    return 60.0 * frames_per_second / period


def beat_alignment(samples: np.ndarray, sample_rate: int, bpm: float, hop: int = 256) -> float:
    """Mean onset strength on a beat grid that starts at frame 0, over the mean overall.

    Well above 1 when the beats fall on the grid, that is when the audio starts on a
    beat and keeps the tempo; about 1 when its onsets ignore the grid.
    """
    envelope = onset_strength(samples, sample_rate, hop=hop)
    frames_per_beat = 60.0 / bpm * sample_rate / hop
    beats = np.round(np.arange(0.0, len(envelope) - 2, frames_per_beat)).astype(int)
    # An onset's flux peak can land a frame either side of the ideal position.
    nearby = np.max([envelope[np.clip(beats + d, 0, len(envelope) - 1)] for d in (-1, 0, 1, 2)], axis=0)
    return float(nearby.mean() / max(envelope.mean(), 1e-12))


# -- key --------------------------------------------------------------------------------


def whiten(spectrum: np.ndarray) -> np.ndarray:
    """What of a magnitude spectrum stands above the mean of the semitone around each bin.

    Broadband sound (drums, noise) has a smooth long-term spectrum and is removed; notes
    leave narrow peaks at their partials and stay. Without this, noise would tilt the
    chroma toward B: a high semitone spans more FFT bins than a low one.
    """
    sums = np.concatenate([[0.0], np.cumsum(spectrum)])
    index = np.arange(spectrum.shape[0])
    low = np.clip(np.floor(index * 2.0 ** (-1.0 / 12.0)).astype(int) - 1, 0, spectrum.shape[0] - 1)
    high = np.clip(np.ceil(index * 2.0 ** (1.0 / 12.0)).astype(int) + 2, 1, spectrum.shape[0])
    local_mean = (sums[high] - sums[low]) / (high - low)
    return np.maximum(spectrum - local_mean, 0.0)


# The partials of a note that fall on other pitch classes than the note's own: the 3rd
# (an octave and a fifth up) and the 5th (two octaves and a major third up), with the
# amplitude a bright tone gives them (1/n, as a sawtooth or a bowed string).
MISLEADING_PARTIALS = ((19, 1.0 / 3.0), (28, 1.0 / 5.0))
LOWEST_MIDI = 24  # C1: notes below it only matter through their partials, which stay in


def semitone_spectrum(samples: np.ndarray, sample_rate: int, n_fft: int = 16384, hop: int = 8192,
                      highest_midi: int = 96) -> np.ndarray:
    """Whitened magnitude (see whiten) per semitone from LOWEST_MIDI to highest_midi, summed
    over time. Each FFT bin counts for the semitone nearest its frequency, weighted down
    the further it sits from that semitone's centre."""
    spectrum = whiten(magnitude_spectrogram(to_mono(samples), n_fft, hop).sum(axis=0))[1:]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)[1:]
    midi = 69.0 + 12.0 * np.log2(freqs / 440.0)
    nearest = np.round(midi)
    keep = (nearest >= LOWEST_MIDI) & (nearest <= highest_midi)
    weight = np.clip(1.0 - 2.0 * np.abs(midi - nearest), 0.0, 1.0)
    semitones = np.zeros(highest_midi - LOWEST_MIDI + 1)
    np.add.at(semitones, (nearest[keep] - LOWEST_MIDI).astype(int), (spectrum * weight)[keep])
    return semitones


def suppress_partials(semitones: np.ndarray) -> np.ndarray:
    """From the lowest semitone up, take away what each one's own 3rd and 5th partials
    put a twelfth and two octaves and a third above it.

    Without this every note also counts for its fifth and its major third: a cadence in
    C reads as G major, a minor key leans to its parallel major.
    """
    left = semitones.copy()
    for note in range(left.shape[0]):
        for offset, amplitude in MISLEADING_PARTIALS:
            if note + offset < left.shape[0]:
                left[note + offset] = max(left[note + offset] - amplitude * left[note], 0.0)
    return left


def chroma_vector(samples: np.ndarray, sample_rate: int, min_hz: float = 60.0, max_hz: float = 1000.0) -> np.ndarray:
    """Pitch-class energy of the audio: a 12-vector, C first.

    The whitened semitone spectrum with the misleading partials taken out, folded onto
    the 12 pitch classes over min_hz..max_hz: the band skips the kick drum's sub-bass and
    the upper partials, which would sound every note's fifth and third again.
    """
    semitones = suppress_partials(semitone_spectrum(samples, sample_rate))
    midi = np.arange(semitones.shape[0]) + LOWEST_MIDI
    freqs = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    band = (freqs >= min_hz) & (freqs <= max_hz)
    chroma = np.zeros(12)
    np.add.at(chroma, midi[band] % 12, semitones[band])
    return chroma


def key_scores(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation of a chroma vector with each key: shape (2, 12), [major, minor] x tonic."""
    scores = np.empty((2, 12))
    for row, profile in enumerate((KRUMHANSL_MAJOR, KRUMHANSL_MINOR)):
        for tonic in range(12):
            scores[row, tonic] = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
    return scores


def estimate_key(samples: np.ndarray, sample_rate: int) -> tuple[int, bool]:
    """(tonic pitch class, is_minor) of the best-correlating Krumhansl-Kessler key."""
    scores = key_scores(chroma_vector(samples, sample_rate))
    row, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(tonic), bool(row == 1)


def key_name(tonic: int, is_minor: bool) -> str:
    """(9, True) -> 'A minor', spelled like acestep_core.request.normalize_key."""
    return f"{PITCH_CLASS_NAMES[tonic]} {'minor' if is_minor else 'major'}"
