"""The sketch backend: a procedural arranger that needs no model weights (numpy only).

From sound to backend: synthesis (oscillators, envelopes, filters, rate changes,
reverb), instruments and drums (patches and one-shots), theory (chords, voicings),
styles (how each style plays), score (notes and bars), grooves and parts (the drum and
pitched note writers), arrangement (request -> choices -> score), mixing (score ->
audio), backend (the protocol).

Why hand synthesis and not a General MIDI SoundFont (bench/bench_soundfont.py, the same
takes on one core): through tinysoundfont (MIT), FluidR3_GM (MIT, 142 MiB, an apt or
manual download) rendered the notes alone at 42-115x real time, where the sketch renders,
mixes and reverbs at 166-354x; TimGM6mb (6 MiB) is GPL-2, a question for commercial game
music; and tinysoundfont's wheel requires pyaudio, which needs PortAudio headers to build.
"""

from acestep_core.backends.sketch.backend import LABEL, SketchBackend

__all__ = ["SketchBackend", "LABEL"]
