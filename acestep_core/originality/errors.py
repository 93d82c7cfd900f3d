"""The originality check's errors: one sentence each, what is wrong and what to do."""

from __future__ import annotations

from acestep_core.errors import AceStepError


class OriginalityError(AceStepError):
    """Root of the originality check's errors."""


class UnreadableAudio(OriginalityError):
    """A file given to the check is missing or cannot be decoded."""


class MissingAnalysisLibrary(OriginalityError):
    """librosa (the `originality` extra) is not installed."""


def missing_librosa() -> MissingAnalysisLibrary:
    return MissingAnalysisLibrary("the originality check needs librosa, which is not installed; install it with "
                                  "pip install 'acestep-dcc[originality]'")
