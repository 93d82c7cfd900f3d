"""Checking files against a reference folder and against each other."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from acestep_core.originality.errors import UnreadableAudio
from acestep_core.originality.features import AudioFeatures, features_of_file, fourier_patches
from acestep_core.originality.index import IndexUpdate, ReferenceIndex, ReferenceSet, merged
from acestep_core.originality.matching import align, stretched

# A match is flagged when some stretch of MATCH_WINDOW_S (10 s) follows a reference this
# closely (mean cosine of key-rotated, tempo-matched chroma). Measured on sketch cues
# (tests/test_originality.py, -s prints them): copies +-3 semitones, +-10 % tempo,
# Ogg/MP3, gain, excerpts 0.892-1.00; over 276 pairs of 24 other cues (8 prompts x 3
# seeds) up to 0.86, where two takes of one prompt share key, tempo and the verse's
# progression (next highest 0.79). Chroma hears harmony first: one progression in one key
# for 10 s scores near a copy. The threshold sits between the two, with little room on
# either side (about 0.015): a flag is a reason to listen, not a verdict.
THRESHOLD = 0.875
METHOD = ("chroma cross-similarity: CQT chroma A2-C8 (faded in to F#3), centred on its 3 s surroundings, "
          "12 key rotations x tempo ratios 0.90-1.10, best 10 s diagonal (index: 2D Fourier magnitude patches)")
# References verified per query: the best by index patch similarity.
VERIFY_TOP = 12
# The index searches the query at these tempo ratios too: a patch's Fourier magnitude
# survives a few percent of tempo change, not ten.
INDEX_RATIOS = (0.92, 1.0, 1.08)
CANDIDATE_LABEL = "other candidates"
CUE_LIBRARY_LABEL = "cue library"


@dataclass
class Match:
    reference: str
    score: float
    flagged: bool
    ranges: list[dict]  # [{"file": [start, end], "reference": [start, end]}] in seconds
    transposed_semitones: int  # the file is the reference moved by this much
    tempo_ratio: float  # the file's tempo / the reference's

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckResult:
    file: str
    matches: list[Match] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(match.flagged for match in self.matches)

    def to_dict(self) -> dict:
        return {"file": self.file, "flagged": self.flagged, "matches": [m.to_dict() for m in self.matches]}


def check_files(files: list[Path], against: Path | None = None, *, index: ReferenceIndex | None = None,
                cue_library: list[Path] | None = None, extra: dict[str, AudioFeatures] | None = None,
                top: int = 5, threshold: float = THRESHOLD, with_update: bool = False,
                queries: list[tuple[str, AudioFeatures]] = (), is_cancelled=None, workers: int = 1):
    """Each file against the references under `against` and the `cue_library` files
    (both indexed first, incrementally) and against `extra` {name: features}. Every file
    is read before anything is indexed, so a missing or unreadable one fails at once
    (UnreadableAudio). with_update: return (results, IndexUpdate) instead of the results
    alone. `queries` (name, features) are for callers that have the features already;
    `workers` processes analyse new references."""
    queries = [(str(Path(f)), _features(Path(f))) for f in files] + list(queries)
    update, sets = IndexUpdate(), []
    if against is not None or cue_library:
        index = index or ReferenceIndex()
    if against is not None:
        update = index.update(Path(against), is_cancelled=is_cancelled, workers=workers)
        sets.append(index.references(Path(against)))
    if cue_library:
        found = index.update_files(cue_library, is_cancelled=is_cancelled, workers=workers)
        update.computed += found.computed
        update.unchanged += found.unchanged
        update.unreadable += found.unreadable
        sets.append(index.references_of(cue_library))
    references = merged(*sets) if sets else None
    results = []
    for name, features in queries:
        matches = [] if references is None else search(features, references, threshold, exclude=name)
        for other, other_features in (extra or {}).items():
            if other != name:
                found = verify(features, other, other_features.chroma, threshold)
                if found is not None:
                    matches.append(found)
        matches.sort(key=lambda m: -m.score)
        results.append(CheckResult(file=name, matches=matches[: max(top, sum(m.flagged for m in matches))]))
    return (results, update) if with_update else results


def check_candidates(files: list[Path], threshold: float = THRESHOLD) -> list[CheckResult]:
    """The candidates of one request, each against the others."""
    features = {str(Path(f)): _features(Path(f)) for f in files}
    return [CheckResult(file=name, matches=sorted(
        (m for other, f in features.items() if other != name
         for m in [verify(feats, other, f.chroma, threshold)] if m is not None), key=lambda m: -m.score))
        for name, feats in features.items()]


def search(query: AudioFeatures, references: ReferenceSet, threshold: float = THRESHOLD,
           exclude: str | None = None) -> list[Match]:
    """The query against a reference set: the index's VERIFY_TOP best, verified."""
    if not references.paths or len(query.chroma) == 0:
        return []
    patches = np.vstack([fourier_patches(stretched(query.chroma, r)) if r != 1.0 else query.patches
                         for r in INDEX_RATIOS])
    similarity = references.patches @ patches.T  # (reference patches, query patches)
    per_patch = similarity.max(axis=1)
    best = np.full(len(references.paths), -1.0, np.float32)
    np.maximum.at(best, references.owners, per_patch)
    order = [int(k) for k in np.argsort(-best)[:VERIFY_TOP]]
    found = []
    for k in order:
        if exclude is not None and references.paths[k] == str(Path(exclude).resolve()):
            continue
        match = verify(query, references.paths[k], references.chroma[k], threshold)
        if match is not None:
            found.append(match)
    return found


def verify(query: AudioFeatures, name: str, chroma: np.ndarray, threshold: float = THRESHOLD) -> Match | None:
    alignment = align(query.chroma, chroma, threshold)
    if alignment is None:
        return None
    score = round(alignment.score, 3)
    flagged = score >= threshold
    return Match(reference=name, score=score, flagged=flagged,
                 ranges=[{"file": list(alignment.query_range), "reference": list(alignment.reference_range)}],
                 transposed_semitones=alignment.semitones, tempo_ratio=alignment.ratio)


def originality_record(result: CheckResult, checked_against: list[str], threshold: float = THRESHOLD) -> dict:
    """What a sidecar records under "originality"."""
    return {"checked_against": checked_against, "method": METHOD, "threshold": threshold,
            "flagged": result.flagged, "matches": [m.to_dict() for m in result.matches]}


def flagged_warning(result: CheckResult) -> str | None:
    """The sentence hosts and the CLI show for a flagged cue, or None."""
    flagged = [m for m in result.matches if m.flagged]
    if not flagged:
        return None
    top = flagged[0]
    where = top.ranges[0]
    return (f"originality check: this cue is close to {Path(top.reference).name} (score {top.score:.2f}, "
            f"{where['file'][0]:.1f}-{where['file'][1]:.1f} s here, {where['reference'][0]:.1f}-"
            f"{where['reference'][1]:.1f} s there); listen before using it, or generate another")


def _features(path: Path) -> AudioFeatures:
    if not path.is_file():
        raise UnreadableAudio(f"{path} does not exist; give the path of an audio file")
    return features_of_file(path)


