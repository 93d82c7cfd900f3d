"""The sketch backend: a procedural arranger that needs no model weights (numpy only).

Modules, from sound to backend: synthesis (oscillators, envelopes, filters, reverb),
instruments and drums (patches and one-shots), theory (chords, voicings), styles (how
each style plays), arrangement (request -> choices -> score), mixing (score -> audio),
backend (the protocol).
"""

from acestep_core.backends.sketch.backend import LABEL, SketchBackend

__all__ = ["SketchBackend", "LABEL"]
