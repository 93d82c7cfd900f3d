"""Progress reports that cross every boundary: backend -> worker -> client -> host UI.

Standard library only, JSON-able.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

# Stage names shown to users ("generating 5/8" is built from GENERATING).
LOADING = "loading model"
GENERATING = "generating"
FINISHING = "finishing"
WRITING = "writing"


@dataclass(frozen=True)
class Progress:
    """`fraction` is 0..1 over the whole job; `stage` is the text a host shows."""

    stage: str
    fraction: float

    def to_dict(self) -> dict:
        return asdict(self)


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


def step_stage(step: int, total: int) -> str:
    return f"{GENERATING} {step}/{total}"


def never_cancelled() -> bool:
    return False


def ignore_progress(_: Progress) -> None:
    return None
