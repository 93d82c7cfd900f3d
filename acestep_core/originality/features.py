"""What the originality check compares: key-relative chroma at a fixed frame rate, and
2D-Fourier magnitude patches of it for the index (see the package doc for why)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acestep_core.originality.errors import UnreadableAudio, missing_librosa

# Bump when the features change: index entries of another version are computed again.
FEATURE_VERSION = 2
ANALYSIS_RATE = 22050
CQT_HOP = 512
# CQT frames averaged into one feature frame: 6 x 512 / 22050 = 0.139 s, short enough
# for an eighth note at 200 BPM to show in the chroma.
FRAMES_PER_STEP = 6
FRAME_S = FRAMES_PER_STEP * CQT_HOP / ANALYSIS_RATE
# Pitches from A2 to C8, the lowest nine semitones faded in (A2 silent, F#3 full): kicks
# and bass tuned to the tonic fill the lowest octaves with one pitch class in every bar,
# which hides the chords and the melody above them; a hard floor at C3 instead made a
# copy moved 3 semitones lose or gain whole notes there (0.854 against 0.883 for the
# weakest copy in tests/test_originality.py's material).
CHROMA_FMIN_NOTE = "A2"
CHROMA_TOP_NOTE = "C8"
FADE_IN_SEMITONES = 9
# Each frame minus the mean chroma of the 3 s around it: two pieces in one key share
# their key's profile, and two in one style often a chord for a bar or more, so what is
# compared is how the chroma moves within a bar or two (the melody above the chords).
# 3 s parted copies from other cues of the same style best of 2.5-6 s (tests/test_originality.py).
CENTRE_S = 3.0
# Frames quieter than this (dB under the file's loudest) carry no pitch: zero vectors.
SILENT_DB = -50.0
# Index patches: 64 frames (8.9 s, inside any excerpt of 10 s) every 16 frames (2.2 s).
PATCH_FRAMES = 64
PATCH_HOP = 16
# Time-modulation bins kept from a patch's 2D Fourier magnitude (of 33 for 64 frames):
# chroma changes faster than 4 per second are too fine to survive a tempo change.
PATCH_TIME_BINS = 20
PATCH_WIDTH = PATCH_TIME_BINS * 7  # the chroma axis's 12 bins mirror into 7
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")


@dataclass
class AudioFeatures:
    """chroma: (frames, 12) float32, each row zero or of unit length; patches: (n, d)
    float32 of unit length; duration in seconds."""

    chroma: np.ndarray
    patches: np.ndarray
    duration: float


def read_mono(path: Path, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """The file's samples as mono float32 at `rate`; UnreadableAudio (one sentence) when
    libsndfile cannot decode it."""
    import soundfile as sf
    import soxr

    try:
        samples, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise UnreadableAudio(f"{path} is not audio that acestep-dcc can read ({_reason(exc)}); give a WAV, FLAC, "
                              "Ogg or MP3 file") from None
    if samples.shape[0] == 0:
        raise UnreadableAudio(f"{path} holds no audio; give a file with sound in it")
    mono = samples.mean(axis=1)
    return mono if file_rate == rate else soxr.resample(mono, file_rate, rate).astype(np.float32)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def features_of_file(path: Path) -> AudioFeatures:
    return features_of_samples(read_mono(path), ANALYSIS_RATE)


def features_of_samples(mono: np.ndarray, rate: int) -> AudioFeatures:
    chroma = chroma_frames(mono, rate)
    return AudioFeatures(chroma=chroma, patches=fourier_patches(chroma), duration=len(mono) / rate)


def chroma_frames(mono: np.ndarray, rate: int) -> np.ndarray:
    """(frames, 12): CQT chroma averaged to FRAME_S, centred on its surroundings, unit rows."""
    librosa = require_librosa()
    from scipy.ndimage import uniform_filter1d

    if rate != ANALYSIS_RATE:
        import soxr

        mono = soxr.resample(mono, rate, ANALYSIS_RATE).astype(np.float32)
    if len(mono) < CQT_HOP * FRAMES_PER_STEP * 4:  # under half a second: nothing to compare
        return np.zeros((0, 12), np.float32)
    fmin = librosa.note_to_hz(CHROMA_FMIN_NOTE)
    bins = int(round(36 * np.log2(librosa.note_to_hz(CHROMA_TOP_NOTE) / fmin)))
    cqt = np.abs(librosa.cqt(mono, sr=ANALYSIS_RATE, hop_length=CQT_HOP, fmin=fmin, n_bins=bins, bins_per_octave=36))
    energy = (cqt ** 2).sum(axis=0)
    cqt *= np.clip(np.arange(bins) / (3 * FADE_IN_SEMITONES), 0.0, 1.0)[:, None]
    chroma = librosa.feature.chroma_cqt(C=cqt, sr=ANALYSIS_RATE, hop_length=CQT_HOP, bins_per_octave=36,
                                        n_octaves=bins // 36 + 1, fmin=fmin)
    steps = chroma.shape[1] // FRAMES_PER_STEP
    blocks = chroma[:, : steps * FRAMES_PER_STEP].reshape(12, steps, FRAMES_PER_STEP).mean(axis=2)
    power = energy[: steps * FRAMES_PER_STEP].reshape(steps, FRAMES_PER_STEP).mean(axis=1)
    loud = 10 * np.log10(power + 1e-12) > 10 * np.log10(power.max() + 1e-12) + SILENT_DB
    centred = blocks - uniform_filter1d(blocks, size=max(1, round(CENTRE_S / FRAME_S)), axis=1, mode="nearest")
    frames = centred.T.astype(np.float32)
    frames[~loud] = 0.0
    return _unit_rows(frames)


def fourier_patches(chroma: np.ndarray) -> np.ndarray:
    """2D Fourier magnitude of each PATCH_FRAMES-long patch (Bertin-Mahieux & Ellis 2012):
    the same whatever the key (a rotation of the chroma axis) and wherever the patch's
    content starts inside it (a circular shift in time). (n, d), unit rows."""
    frames = len(chroma)
    if frames < PATCH_FRAMES:  # a short file: one patch of what there is, zero-padded
        chroma = np.vstack([chroma, np.zeros((PATCH_FRAMES - frames, 12), np.float32)])
        frames = PATCH_FRAMES
    starts = range(0, frames - PATCH_FRAMES + 1, PATCH_HOP)
    stack = np.stack([chroma[s: s + PATCH_FRAMES] for s in starts])
    magnitude = np.abs(np.fft.fft2(stack, axes=(1, 2)))[:, :PATCH_TIME_BINS, :7]  # the rest mirrors these
    vectors = np.log1p(magnitude.reshape(len(stack), -1)).astype(np.float32)
    vectors -= vectors.mean(axis=1, keepdims=True)
    return _unit_rows(vectors)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.where(norms > 1e-6, matrix / np.maximum(norms, 1e-6), 0.0).astype(np.float32)


def require_librosa():
    """librosa, or MissingAnalysisLibrary saying how to install it."""
    try:
        import librosa
    except ImportError:
        raise missing_librosa() from None
    return librosa
