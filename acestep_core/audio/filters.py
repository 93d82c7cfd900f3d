"""Second-order-section (biquad) filters for finishing, without importing scipy.signal.

scipy.signal takes most of a second to import (it pulls in scipy.stats, scipy.interpolate
and scipy.special), more than a whole 5 s sketch cue takes to make. Finishing needs only
biquads: their coefficients are a few closed-form lines (the same formulas as
scipy.signal.butter and pyloudnorm, which the tests compare against), and the filtering is
scipy's own compiled kernel, scipy.signal._sosfilt, loaded by itself. Should a scipy
release move that kernel, the public scipy.signal.sosfilt runs instead: the same numbers,
only a slower first call.

Filters run as streams (SosStream): chunk by chunk, in place, carrying their state, so a
ten-minute cue is filtered without a full-length float64 copy.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from acestep_core.scipy_parts import load_compiled

# pyloudnorm's "K-weighting" (ITU-R BS.1770): a +4 dB shelf at 1.5 kHz, then a 38 Hz high-pass.
_K_SHELF = (4.0, 1 / np.sqrt(2), 1500.0)
_K_HIGH_PASS = (0.0, 0.5, 38.0)


def butter_highpass_sos(cutoff_hz: float, sample_rate: float) -> np.ndarray:
    """A 2nd-order Butterworth high-pass as one section: scipy.signal.butter(2, cutoff_hz,
    "highpass", fs=sample_rate, output="sos") (the bilinear transform, pre-warped)."""
    k = np.tan(np.pi * cutoff_hz / sample_rate)
    norm = 1.0 / (1.0 + np.sqrt(2.0) * k + k * k)
    return np.array([[norm, -2.0 * norm, norm, 1.0, 2.0 * (k * k - 1.0) * norm,
                      (1.0 - np.sqrt(2.0) * k + k * k) * norm]])


@lru_cache(maxsize=8)
def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """pyloudnorm's K-weighting stages (RBJ cookbook shelf and high-pass) as sections."""
    sections = [_rbj_section("high_shelf", *_K_SHELF, sample_rate), _rbj_section("high_pass", *_K_HIGH_PASS, sample_rate)]
    return np.array(sections)


def _rbj_section(kind: str, gain_db: float, q: float, centre_hz: float, rate: float) -> list[float]:
    """pyloudnorm.iirfilter.IIRfilter.generate_coefficients, expression for expression."""
    a_gain = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * (centre_hz / rate)
    alpha = np.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        b0 = a_gain * ((a_gain + 1) + (a_gain - 1) * np.cos(w0) + 2 * np.sqrt(a_gain) * alpha)
        b1 = -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * np.cos(w0))
        b2 = a_gain * ((a_gain + 1) + (a_gain - 1) * np.cos(w0) - 2 * np.sqrt(a_gain) * alpha)
        a0 = (a_gain + 1) - (a_gain - 1) * np.cos(w0) + 2 * np.sqrt(a_gain) * alpha
        a1 = 2 * ((a_gain - 1) - (a_gain + 1) * np.cos(w0))
        a2 = (a_gain + 1) - (a_gain - 1) * np.cos(w0) - 2 * np.sqrt(a_gain) * alpha
    else:  # high_pass
        b0 = (1 + np.cos(w0)) / 2
        b1 = -(1 + np.cos(w0))
        b2 = (1 + np.cos(w0)) / 2
        a0 = 1 + alpha
        a1 = -2 * np.cos(w0)
        a2 = 1 - alpha
    return list(np.concatenate([np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0]))


def sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """(sections, 2) initial state for a unit step's steady state: scipy.signal.sosfilt_zi."""
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for index, (b0, b1, b2, a0, a1, a2) in enumerate(np.asarray(sos, dtype=np.float64)):
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        # lfilter_zi: solve (I - companion(a).T) zi = b[1:] - a[1:] * b[0], a 2x2 system.
        first, second = b1 - a1 * b0, b2 - a2 * b0
        det = 1.0 + a1 + a2
        zi[index] = scale * np.array([(first + second) / det, ((1.0 + a1) * second - a2 * first) / det])
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return zi


class SosStream:
    """A cascade of sections over (channels, frames) float64 chunks, state carried between them."""

    def __init__(self, sos: np.ndarray, channels: int, initial: np.ndarray | None = None):
        """`initial` is (channels, sections, 2) or None for a zero state."""
        self.sos = np.array(sos, dtype=np.float64, order="C")  # a writable copy: the kernel takes no read-only buffer
        shape = (channels, self.sos.shape[0], 2)
        self.state = np.zeros(shape) if initial is None else np.array(np.broadcast_to(initial, shape), order="C")

    def filter(self, chunk: np.ndarray) -> np.ndarray:
        """Filter `chunk` (C-contiguous float64, channels first) in place; returns it."""
        if chunk.shape[1]:
            kernel = _sosfilt_kernel()
            if kernel is not None:
                kernel(self.sos, chunk, self.state)
            else:
                from scipy.signal import sosfilt

                out, state = sosfilt(self.sos, chunk, axis=-1, zi=np.moveaxis(self.state, 1, 0))
                chunk[...] = out
                self.state = np.ascontiguousarray(np.moveaxis(state, 0, 1))
        return chunk


def _sosfilt_kernel():
    """scipy's compiled sosfilt loop, loaded without running scipy.signal's __init__
    (scipy_parts), once; None when this scipy keeps it elsewhere (SosStream then calls the
    public function)."""
    if os.environ.get("ACESTEP_DCC_PUBLIC_SOSFILT"):  # the tests compare both paths
        return None
    return _load_sosfilt_kernel()


@lru_cache(maxsize=1)
def _load_sosfilt_kernel():
    module = load_compiled("signal", "_sosfilt")
    try:
        kernel = module._sosfilt
        probe = np.ones((1, 4))
        kernel(np.array([[1.0, 0.0, 0.0, 1.0, -0.5, 0.0]]), probe, np.zeros((1, 1, 2)))
        return kernel if np.allclose(probe[0], [1.0, 1.5, 1.75, 1.875]) else None
    except Exception:  # not there, or it changed: the public function
        return None
