"""Audio finishing and writing (numpy, soxr, soundfile). Worker/CLI side only."""
