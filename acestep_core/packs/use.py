"""Checking a styled request against the backend, before any model loads."""

from __future__ import annotations

from acestep_core.errors import BackendUnavailable
from acestep_core.packs.base import check_pack_base
from acestep_core.packs.manifest import StylePack
from acestep_core.packs.store import PackStore


def check_style(request, backend) -> StylePack:
    """The pack request.style names; BackendUnavailable for a backend that cannot apply
    one (the sketch), PackNotFound or PackForAnotherBase for the wrong pack."""
    from acestep_core.packs import SKETCH_REFUSAL

    info = backend.describe()
    if not info.supports_styles:
        raise BackendUnavailable(SKETCH_REFUSAL if backend.name == "sketch" else
                                 f"the {backend.name} backend cannot use a style pack; leave the style out")
    pack = PackStore(getattr(backend, "packs_folder", None)).get(request.style)
    check_pack_base(pack, info.model_path)
    return pack
