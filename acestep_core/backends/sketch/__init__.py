"""The sketch backend: a procedural arranger that needs no model weights (numpy only).

From sound to backend: synthesis (oscillators, envelopes, filters, rate changes,
reverb), instruments and drums (patches and one-shots), theory (chords, voicings),
styles (how each style plays), score (notes and bars), grooves and parts (the drum and
pitched note writers), arrangement (request -> choices -> score), mixing (score ->
audio), backend (the protocol).
"""

from acestep_core.backends.sketch.backend import LABEL, SketchBackend

__all__ = ["SketchBackend", "LABEL"]
