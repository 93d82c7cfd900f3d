"""The originality check of freshly generated cues (generation.generate_cues calls it when
a reference library is configured): each cue against the library and against the other
candidates of its request; the result goes into the sidecar, a flagged cue also gets a
warning, which the CLI prints and both hosts show beside the cue."""

from __future__ import annotations

from pathlib import Path

from acestep_core.originality.check import (
    CANDIDATE_LABEL, CUE_LIBRARY_LABEL, THRESHOLD, check_files, flagged_warning, originality_record,
)
from acestep_core.originality.errors import OriginalityError
from acestep_core.originality.features import features_of_file, require_librosa
from acestep_core.originality.index import ReferenceIndex

CHECKING = "checking originality"


def check_reference_library(folder: Path) -> Path:
    """Refuse a library that is not there before anything is generated; loads librosa
    now too, so a missing analysis library is said before, not after, generating."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise OriginalityError(f"the reference library {folder} is not a folder; give a folder of WAV, FLAC, Ogg or "
                               "MP3 files (--against, $ACESTEP_DCC_REFERENCE_LIBRARY or config.json's "
                               "reference_library)")
    require_librosa()
    return folder.resolve()


def record_originality(outputs, files: list[Path], library: Path, index: ReferenceIndex | None = None,
                       is_cancelled=None) -> None:
    """Check every cue of one request against the reference library, the cue library
    (acestep_core.library: music already made) and the other candidates; `files` are
    where their audio is now (the staged temporaries), in the order of `outputs`
    (CueOutput). Sets metadata["originality"] and adds the warning of a flagged cue to
    its warnings and its sidecar's."""
    names = [str(Path(output.path)) for output in outputs]
    features = {name: features_of_file(Path(path)) for name, path in zip(names, files)}
    made = cue_library_files()
    checked = ([str(library)] + ([CANDIDATE_LABEL] if len(outputs) > 1 else [])
               + ([CUE_LIBRARY_LABEL] if made is not None else []))
    index = index or ReferenceIndex()
    for output, name in zip(outputs, names):
        others = {other: f for other, f in features.items() if other != name}
        (result,) = check_files([], library, index=index, cue_library=made, extra=others,
                                queries=[(name, features[name])], is_cancelled=is_cancelled)
        output.metadata["originality"] = originality_record(result, checked, THRESHOLD)
        warning = flagged_warning(result)
        if warning:
            output.warnings.append(warning)
            output.metadata.setdefault("warnings", []).append(warning)


def cue_library_files() -> list[Path] | None:
    """The cue library's files still in place, or None when it cannot be read (the check
    then goes on without it; the library says its own problems when it indexes)."""
    import sqlite3

    from acestep_core.errors import AceStepError
    from acestep_core.library import CueLibrary

    try:
        return CueLibrary().present_files()
    except (OSError, sqlite3.Error, AceStepError):
        return None
