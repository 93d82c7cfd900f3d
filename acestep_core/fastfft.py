"""Real FFTs that keep single precision single: numpy.fft's rfft and irfft, faster.

numpy.fft (1.x) works in double precision with no SIMD. scipy's pocketfft (C++,
vectorised; float32 stays float32) is 3-4x faster on the sizes the sketch backend and
the tempo analysis use, which is most of a short cue's FFT time. scipy.fft takes about
90 ms to import (it pulls in scipy.special), more than those FFTs cost, so its compiled
module is loaded by itself (scipy_parts), as audio/filters.py loads scipy's sosfilt. Should a scipy
release move it, or ACESTEP_DCC_NUMPY_FFT be set (the tests compare both), numpy.fft
runs: the same numbers to float32 precision.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from acestep_core.scipy_parts import load_compiled

_NO_NORMALISATION, _BY_SIZE = 0, 2  # pocketfft's inorm: none, 1/n


def rfft(a: np.ndarray, n: int | None = None, axis: int = -1) -> np.ndarray:
    """numpy.fft.rfft(a, n, axis); complex64 for float32 input, complex128 otherwise."""
    pocketfft = _pocketfft()
    a = np.asarray(a)
    if pocketfft is None:
        spectrum = np.fft.rfft(a, n, axis=axis)
        return spectrum.astype(np.complex64) if a.dtype == np.float32 else spectrum
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if n is not None:
        a = _fit(a, n, axis)
    return pocketfft.r2c(a, axes=[axis % a.ndim], forward=True, inorm=_NO_NORMALISATION)


def irfft(a: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """numpy.fft.irfft(a, n, axis); float32 for complex64 input, float64 otherwise."""
    pocketfft = _pocketfft()
    a = np.asarray(a)
    if pocketfft is None:
        signal = np.fft.irfft(a, n, axis=axis)
        return signal.astype(np.float32) if a.dtype == np.complex64 else signal
    if a.dtype not in (np.complex64, np.complex128):
        a = a.astype(np.complex128)
    a = _fit(a, n // 2 + 1, axis)
    return pocketfft.c2r(a, axes=[axis % a.ndim], lastsize=n, forward=False, inorm=_BY_SIZE)


def _fit(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Cut or zero-pad `a` to `size` along `axis`, as numpy.fft does with n."""
    have = a.shape[axis]
    if have == size:
        return a
    if have > size:
        return np.take(a, np.arange(size), axis=axis)
    shape = list(a.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=a.dtype)
    index = [slice(None)] * a.ndim
    index[axis] = slice(0, have)
    out[tuple(index)] = a
    return out


def _pocketfft():
    if os.environ.get("ACESTEP_DCC_NUMPY_FFT"):  # the tests compare both paths
        return None
    return _load_pocketfft()


@lru_cache(maxsize=1)
def _load_pocketfft():
    """scipy.fft's compiled pocketfft, loaded without scipy.fft's __init__ (scipy_parts);
    None when it is not where this scipy keeps it or does not answer as expected."""
    module = load_compiled("fft/_pocketfft", "pypocketfft")
    try:
        probe = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
        spectrum = module.r2c(probe, axes=[0], forward=True, inorm=_NO_NORMALISATION)
        back = module.c2r(spectrum, axes=[0], lastsize=4, forward=False, inorm=_BY_SIZE)
        ok = spectrum.dtype == np.complex64 and np.allclose(spectrum, np.fft.rfft(probe)) and np.allclose(back, probe)
        return module if ok else None
    except Exception:  # not there, or it changed: numpy.fft
        return None
