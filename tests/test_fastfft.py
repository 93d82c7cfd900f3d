"""fastfft's rfft and irfft give numpy.fft's numbers (to float32 precision for float32
data), through scipy's pocketfft loaded by itself and through the numpy fallback alike."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from acestep_core import fastfft


@pytest.fixture(params=["pocketfft", "numpy"])
def path(request, monkeypatch):
    fastfft._load_pocketfft.cache_clear()
    if request.param == "numpy":
        monkeypatch.setenv("ACESTEP_DCC_NUMPY_FFT", "1")
    else:
        monkeypatch.delenv("ACESTEP_DCC_NUMPY_FFT", raising=False)
    yield request.param
    fastfft._load_pocketfft.cache_clear()


def test_the_compiled_pocketfft_is_found_here(path):
    assert (fastfft._pocketfft() is None) == (path == "numpy")


@pytest.mark.parametrize("shape, n, axis", [((1000,), None, -1), ((2, 777), 1024, -1), ((2, 4000), 3000, 1),
                                            ((300, 64), 100, 0), ((5, 1024), 2048, -1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rfft_and_irfft_are_numpys(path, shape, n, axis, dtype):
    signal = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    spectrum = fastfft.rfft(signal, n, axis=axis)
    expected = np.fft.rfft(signal, n, axis=axis)
    assert spectrum.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(expected).max()
    assert np.abs(spectrum - expected).max() <= tolerance * scale
    size = n or shape[axis]
    back = fastfft.irfft(spectrum, size, axis=axis)
    assert back.dtype == dtype and back.shape == np.fft.irfft(expected, size, axis=axis).shape
    assert np.abs(back - np.fft.irfft(expected, size, axis=axis)).max() <= tolerance * np.abs(signal).max()


def test_irfft_cuts_or_pads_the_spectrum_as_numpy_does(path):
    spectrum = np.fft.rfft(np.random.default_rng(2).standard_normal(512))
    for n in (256, 512, 1500):
        assert np.allclose(fastfft.irfft(spectrum, n), np.fft.irfft(spectrum, n))


def test_importing_it_does_not_import_scipy_fft():
    """The point of loading the extension by itself: scipy.fft's __init__ costs ~90 ms."""
    code = ("import sys; from acestep_core import fastfft; import numpy as np; fastfft.rfft(np.ones(8, np.float32)); "
            "print(fastfft._pocketfft() is not None, 'scipy.fft' in sys.modules, 'scipy.special' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "ACESTEP_DCC_NUMPY_FFT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["True", "False", "False"]
