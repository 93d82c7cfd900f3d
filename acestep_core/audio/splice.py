"""Repaint and lego keep the source outside their range.

The model's VAE gives back the whole clip, so every sample would change, even far from
the repainted range. After finishing, at the output rate, we put the source back:

- repaint: outside [start - CROSSFADE_S, end + CROSSFADE_S] the cue is the source's own
  samples (read as float32 they are int / full scale, so they quantise back to the very
  same integers at the same bit depth); across each CROSSFADE_S the source fades out and
  the new audio in with raised-cosine gains that sum to 1; inside [start, end] it is the new
  audio. Equal gain, not equal power: near its edges a repaint continues the source, so the
  two are correlated, and equal-power gains would swell them by up to 3 dB (and clip).
- lego: the cue is the new layer alone, so outside the range plus its fades it is exact
  silence (source + layer = source there), with the same raised-cosine fade at each edge.

Sample for sample holds when the source has the output's rate; another rate is converted
first (soxr VHQ), and then it is the converted source.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Short enough to keep the edit where it was asked for, long enough not to click
# (a 20-50 ms equal-power crossfade is the usual editor default).
CROSSFADE_S = 0.03
SPLICE_TASKS = ("repaint", "lego")


def source_frames(path: str | os.PathLike, rate: int, channels: int, frames: int) -> "np.ndarray":
    """The source file as float32 (frames, channels) at `rate`, `frames` long."""
    import numpy as np
    import soundfile as sf

    from acestep_core.audio.finishing import fit_length, resample

    data, source_rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    if source_rate != rate:
        data = resample(data, source_rate, rate)
    if data.shape[1] != channels:  # mono to stereo by copying; more channels than asked: the first ones
        data = np.repeat(data[:, :1], channels, axis=1) if data.shape[1] == 1 else data[:, :channels]
    return np.ascontiguousarray(fit_length(data, frames), dtype=np.float32)


def edges(rate: int, frames: int, start_s: float | None, end_s: float | None) -> tuple[int, int, int]:
    """(start, end, fade) in frames; no range is the whole clip."""
    if start_s is None or end_s is None:
        return 0, frames, 0
    start = max(0, min(frames, round(start_s * rate)))
    end = max(start, min(frames, round(end_s * rate)))
    return start, end, round(CROSSFADE_S * rate)


def new_audio_gain(rate: int, frames: int, start_s: float | None, end_s: float | None) -> "np.ndarray":
    """Per-frame gain of the new audio: 0 outside range+fades, raised-cosine ramps in the fades, 1 inside."""
    import numpy as np

    start, end, fade = edges(rate, frames, start_s, end_s)
    gain = np.zeros(frames, dtype=np.float64)
    gain[start:end] = 1.0
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, fade + 1) / (fade + 1))
        lo = max(0, start - fade)
        gain[lo:start] = ramp[fade - (start - lo):]
        hi = min(frames, end + fade)
        gain[end:hi] = ramp[::-1][: hi - end]
    return gain


def splice(cue_frames: "np.ndarray", task: str, rate: int, start_s: float | None, end_s: float | None,
           source: "np.ndarray | None" = None) -> None:
    """In place on finished (frames, channels) float32: repaint puts `source` back, lego silences."""
    import numpy as np

    gain = new_audio_gain(rate, cue_frames.shape[0], start_s, end_s)
    outside = gain == 0.0
    fading = (gain > 0.0) & (gain < 1.0)
    if task == "lego":
        cue_frames[outside] = 0.0
        cue_frames[fading] *= gain[fading, None].astype(np.float32)
        return
    if task != "repaint" or source is None:
        raise ValueError(f"splice is for repaint (with its source) and lego, got {task!r}")
    cue_frames[outside] = source[outside]
    new = gain[fading, None]
    cue_frames[fading] = (cue_frames[fading] * new + source[fading] * (1.0 - new)).astype(np.float32)
