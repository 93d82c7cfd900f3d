"""Style packs: ACE-Step LoRA adapters with a manifest, installed per user.

Importing this package is standard library only (manifest, store, base fingerprint);
training (acestep_core.packs.train) imports torch, peft and diffusers itself.
"""

from acestep_core.packs.base import check_pack_base, checkpoint_fingerprint
from acestep_core.packs.manifest import (
    MAX_SCALE,
    PACK_NAME_PATTERN,
    PackError,
    PackForAnotherBase,
    PackNotFound,
    StylePack,
    adapter_hash,
    parse_style,
    read_pack,
)
from acestep_core.packs.store import PackStore, packs_dir

SKETCH_REFUSAL = (
    "the sketch backend cannot use a style pack (a pack is a LoRA for the ACE-Step model); "
    "leave --style out, or use the acestep backend with the model the pack was made for (--model)"
)

__all__ = [
    "MAX_SCALE", "PACK_NAME_PATTERN", "PackError", "PackForAnotherBase", "PackNotFound", "PackStore", "StylePack",
    "SKETCH_REFUSAL", "adapter_hash", "check_pack_base", "checkpoint_fingerprint", "packs_dir", "parse_style",
    "read_pack",
]
