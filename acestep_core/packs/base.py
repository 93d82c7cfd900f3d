"""Which base checkpoint a pack belongs to: a fingerprint of the DiT's weights.

A LoRA only means something on the weights it was trained on. The fingerprint is a
sha256 over the transformer's config.json, every safetensors file's header (tensor
names, shapes, dtypes, offsets) and 64 KiB read at 16 evenly spaced places in each
file's data. Hashing all of an XL DiT (~10 GB) would take a minute on every start;
this reads about 1 MB and still tells apart checkpoints of the same shape (turbo, sft,
base; a fine-tune), since any trained weights differ everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from pathlib import Path

from acestep_core.packs.manifest import PackError, PackForAnotherBase, StylePack

SAMPLES_PER_FILE = 16
SAMPLE_BYTES = 64 * 1024


def checkpoint_fingerprint(model_dir: str | os.PathLike) -> str:
    folder = Path(model_dir).expanduser().resolve() / "transformer"
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise PackError(f"{folder} holds no safetensors weights, so its packs cannot be checked; "
                        "pass an ACE-Step model folder in diffusers format")
    stamp = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    return _fingerprint(str(folder), stamp)


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: str, stamp: tuple) -> str:  # stamp: the files' sizes and times, so a change re-hashes
    digest = hashlib.sha256()
    config = Path(folder) / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for name, size, _ in stamp:
        with open(name, "rb") as handle:
            head = handle.read(8)
            (length,) = struct.unpack("<Q", head) if len(head) == 8 else (0,)
            digest.update(head + handle.read(min(length, size)))
            start = 8 + length
            span = max(size - start - SAMPLE_BYTES, 0)
            for k in range(SAMPLES_PER_FILE):
                handle.seek(start + span * k // max(SAMPLES_PER_FILE - 1, 1))
                digest.update(handle.read(SAMPLE_BYTES))
    return "sha256:" + digest.hexdigest()


def check_pack_base(pack: StylePack, model_dir: str | os.PathLike) -> None:
    """PackForAnotherBase, naming both checkpoints, unless `pack` was made on this model."""
    fingerprint = checkpoint_fingerprint(model_dir)
    if pack.base_checkpoint.get("fingerprint") != fingerprint:
        here = Path(model_dir).name
        raise PackForAnotherBase(
            f"the style pack {pack.name!r} was made for the base checkpoint {pack.base_checkpoint.get('name')!r} "
            f"({pack.base_checkpoint.get('fingerprint', '?')[:19]}), not for {here!r} ({fingerprint[:19]}) that is "
            f"loaded; use it with {pack.base_checkpoint.get('name')!r} (--model) or train the pack again on {here!r}")
