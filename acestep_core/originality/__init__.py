"""The originality check: does a cue copy a reference's melody and harmony?

Copying, as the check must catch it, is the same melody and harmony moved by up to
+-3 semitones, played up to 10 % faster or slower, at another gain, re-encoded (Ogg,
MP3), or an excerpt of 10 s or more inside a longer file. Different music in the same
style must pass. Why this method, from the field:

- Audio fingerprints (Chromaprint, Shazam-style landmarks) match exact recordings and
  fail under a pitch shift: Chromaprint's own features are pitch classes at fixed
  positions. They would only find exact copies, which the chroma check finds too.
- Cover-song identification is the problem as stated: the same tune, transposed, at
  another tempo, in another rendering. Its standard tools are chroma (pitch-class)
  features compared under the 12 key rotations (the optimal transposition index),
  with cross-similarity between the two files to find where they match (Serra et al.
  2008/2009; librosa.segment.cross_similarity), and 2D Fourier magnitude patches of
  chroma as a key- and shift-invariant index over large collections (Bertin-Mahieux &
  Ellis 2012).
- Learned embeddings need weights that are not installed here.

So: CQT chroma of A2-C8 with the lowest nine semitones faded in (bass and kicks tuned
to the tonic would otherwise mark every bar with one pitch class), each frame centred on
its 3 s surroundings (two pieces in one key and style share the key's profile and often
a chord; what differs is how the pitch moves above it), at 0.14 s frames.
The index (acestep_core.originality.index, SQLite, updated by path+size+mtime) keeps
each reference's chroma and its 2D Fourier patches; a query's patches pick the best
references, and each is verified by searching the cross-similarity for the best 10 s
diagonal over 12 key rotations and tempo ratios 0.90-1.10 (acestep_core.originality.
matching). Beat-synchronous chroma was tried first and dropped: a beat tracker picks
one global tempo per file, so an excerpt inside a file at another tempo was sampled off
its beats, and half-note beats smooth the melody away.

The score is the mean cosine similarity over that best 10 s stretch (0..1); a match is
flagged at THRESHOLD (0.875) or more: copies scored 0.892-1.00 in the tests, other
music of the same prompt and style at most 0.86 (276 pairs; that pair shares its key,
tempo and verse progression, the next is 0.79). The window, the centring
and the low fade were chosen on that material: with 8 s, 6 s centring and a hard floor
at C3, two cues of one style sharing a progression outscored the weakest copy.
"""

from importlib import import_module

# Names load on first use (PEP 562): the CLI imports acestep_core.originality.cli for its
# parser, and that must not load numpy for every command.
_HOMES = {
    "check": ("CANDIDATE_LABEL", "CUE_LIBRARY_LABEL", "METHOD", "THRESHOLD", "CheckResult", "Match",
              "check_candidates", "check_files", "flagged_warning", "originality_record"),
    "errors": ("MissingAnalysisLibrary", "OriginalityError", "UnreadableAudio"),
    "index": ("ReferenceIndex", "default_index_path"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
