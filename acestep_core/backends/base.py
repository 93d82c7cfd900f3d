"""The one small protocol every backend implements.

A backend turns a validated GenerationRequest plus one seed per candidate into raw
audio: float32 arrays shaped (candidates, channels, samples) at the backend's own
sample rate (48 kHz stereo for ACE-Step, 44.1 kHz for the sketch). Finishing to the user's format
happens in acestep_core.audio, the same for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from acestep_core.progress import CancelCheck, ProgressCallback
from acestep_core.request import BASE_ONLY_TASKS, GenerationRequest  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # numpy is not importable from host Pythons
    import numpy as np


@dataclass
class BackendInfo:
    """What made the audio; recorded in every sidecar and INFO chunk.

    `label` is the honest one-line description shown to users, e.g.
    "ACE-Step 1.5 (acestep-v15-turbo)" or "sketch (procedural, no ML model)".
    """

    name: str
    label: str
    model_path: str | None = None
    model_id: str | None = None
    device: str = "cpu"
    dtype: str | None = None
    loaded: bool = False
    # Defaults the backend uses when a request leaves steps/guidance/shift empty.
    defaults: dict[str, Any] = field(default_factory=dict)
    supports_tasks: tuple[str, ...] = ("text2music",)
    # True when generate() returns RawAudio.stems itself for request.stems (the sketch's
    # own parts); a backend that can extract makes stems with one extract per track.
    supports_stems: bool = False
    # True when generate() uses request.reference_audio (a clip for timbre and style);
    # a backend without it refuses the request before any work.
    supports_reference: bool = False
    # True when a loop request's audio starts on bar 1 at frame 0 and holds one energy
    # (the sketch arranges loops so); otherwise the loop's place is found by analysis
    # (acestep_core.audio.loop_region) in audio generated with a few bars of headroom.
    loops_on_grid: bool = False
    # The output's licence (acestep_core.licence.Licence.to_dict()): the model card's, or
    # acestep-dcc's own for the sketch. None: the backend does not say.
    licence: dict[str, Any] | None = None
    # True when generate() applies request.style (a style pack's LoRA, acestep_core.packs);
    # a backend without it refuses a styled request before any work.
    supports_styles: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["supports_tasks"] = list(self.supports_tasks)
        return data


# BASE_ONLY_TASKS (request.py's): tasks ACE-Step's turbo checkpoints were not trained for.
BASE_REPO_ID = "ACE-Step/acestep-v15-xl-base-diffusers"  # the official Diffusers-format base checkpoint


def needs_base_checkpoint(task: str) -> str:
    """The sentence that refuses a base-only task on a model that cannot do it."""
    return (f"{task} needs a base or sft checkpoint; ACE-Step's turbo checkpoints were not trained for it: "
            f"run 'acestep-dcc download-model {BASE_REPO_ID}' and pass --model")


@dataclass
class RawAudio:
    """Backend output before finishing. `samples` is (candidates, channels, frames)."""

    samples: "np.ndarray"
    sample_rate: int
    # Settings actually used (steps, guidance, shift, ...) for the sidecar.
    settings: dict[str, Any] = field(default_factory=dict)
    # Per-part audio when the request asked for stems: track name (request.TRACK_NAMES)
    # -> (candidates, channels, frames) like `samples`, at `sample_rate`, summing to
    # `samples` (a backend whose stems do not sum exactly says why in
    # settings["stems_note"]). None: no stems were asked for, or the backend makes none.
    stems: "dict[str, np.ndarray] | None" = None


@runtime_checkable
class Backend(Protocol):
    name: str

    def load(self, on_progress: ProgressCallback | None = None) -> None:
        """Load weights (once; later calls return at once)."""

    def unload(self) -> None:
        """Free the model's memory; the next generate loads it again."""

    @property
    def loaded(self) -> bool: ...

    def describe(self) -> BackendInfo: ...

    def generate(
        self,
        request: GenerationRequest,
        seeds: list[int],
        on_progress: ProgressCallback,
        is_cancelled: CancelCheck,
    ) -> RawAudio:
        """Generate len(seeds) == request.candidates candidates in one go.

        Candidate k uses seeds[k] alone, so generating it by itself with that seed
        gives the same audio. Raises GenerationCancelled at the next step after
        is_cancelled() turns true, without decoding half-finished audio.
        """
