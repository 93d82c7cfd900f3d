"""A style pack's folder and its manifest (pack.json or pack.toml).

Standard library only: the CLI lists packs and the worker serves the list without
importing torch. A pack folder holds the LoRA adapter (safetensors, diffusers' key
names) and one manifest:

    {"name": "chiptune", "description": "8-bit pulse leads and noise drums",
     "trigger_words": ["chiptune", "8-bit"], "prompt_template": "{prompt}, chiptune, 8-bit",
     "bpm_range": [120, 180], "keys": ["C major", "A minor"],
     "base_checkpoint": {"name": "acestep-v15-turbo", "fingerprint": "sha256:..."},
     "licence": "CC-BY-4.0", "adapter": "pytorch_lora_weights.safetensors"}

A LICENSE file beside it (optional) is the licence's full text; it travels in the zip.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acestep_core.errors import AceStepError
from acestep_core.request import MAX_STYLE_SCALE, STYLE_NAME_PATTERN, normalize_key

MANIFEST_NAMES = ("pack.json", "pack.toml")
DEFAULT_ADAPTER = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights name
LICENCE_FILE = "LICENSE"
FORMAT_VERSION = 1
PACK_NAME_PATTERN = STYLE_NAME_PATTERN  # request.py's: the request names a pack
_PACK_NAME = re.compile(PACK_NAME_PATTERN)
MAX_SCALE = MAX_STYLE_SCALE
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


class PackError(AceStepError):
    """A style pack that cannot be read, installed or used; the message says what to do."""


class PackNotFound(PackError):
    """No installed pack has that name."""


class PackForAnotherBase(PackError):
    """The pack was trained on another base checkpoint than the model in use."""


def check_pack_name(name: Any) -> str:
    if not isinstance(name, str) or not _PACK_NAME.fullmatch(name):
        raise PackError(f"a pack name must be 1-48 lowercase letters, digits, '-' or '_' (starting with a letter "
                        f"or digit), got {name!r}; rename it in pack.json")
    return name


def parse_style(text: str) -> tuple[str, float]:
    """'chiptune' -> ('chiptune', 1.0); 'chiptune:0.6' -> ('chiptune', 0.6)."""
    name, _, scale_text = text.partition(":")
    try:
        scale = float(scale_text) if scale_text else 1.0
    except ValueError:
        raise PackError(f"--style takes NAME or NAME:SCALE with a number for SCALE, got {text!r}") from None
    return name.strip(), scale


@dataclass
class StylePack:
    """One pack's manifest, and where it lies."""

    name: str
    licence: str
    base_checkpoint: dict[str, str]
    description: str = ""
    trigger_words: list[str] = field(default_factory=list)
    prompt_template: str | None = None
    bpm_range: list[float] | None = None
    keys: list[str] | None = None
    adapter: str = DEFAULT_ADAPTER
    format_version: int = FORMAT_VERSION
    training: dict[str, Any] | None = None  # what `packs train` recorded (steps, files, rank)
    folder: Path | None = None

    def adapter_path(self) -> Path:
        return self.folder / self.adapter

    def styled_prompt(self, prompt: str) -> str:
        """The prompt the model hears: the template's, else the prompt and trigger words not in it."""
        if self.prompt_template:
            return self.prompt_template.replace("{prompt}", prompt)
        missing = [word for word in self.trigger_words if word.lower() not in prompt.lower()]
        return ", ".join([prompt, *missing])

    def to_manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return {key: value for key, value in data.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """For `packs list --json` and GET /v1/packs: the manifest, its hash and folder."""
        return {**self.to_manifest(), "hash": adapter_hash(self.adapter_path()), "folder": str(self.folder),
                "has_licence_file": (self.folder / LICENCE_FILE).is_file()}


def manifest_file(folder: Path) -> Path:
    found = [folder / name for name in MANIFEST_NAMES if (folder / name).is_file()]
    if not found:
        raise PackError(f"{folder} is not a style pack: it has no pack.json or pack.toml; "
                        "pass the folder that holds the manifest and the adapter")
    if len(found) > 1:
        raise PackError(f"{folder} has both pack.json and pack.toml; keep one of them")
    return found[0]


def read_pack(folder: str | Path) -> StylePack:
    """The pack in `folder`, checked: every field the right type, the adapter present."""
    folder = Path(folder)
    path = manifest_file(folder)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackError(f"cannot read {path} ({exc}); fix the file or ask the pack's author for a new one") from None
    if not isinstance(data, dict):
        raise PackError(f"{path} must hold one object with the pack's fields")
    pack = _pack_from_manifest(data, path)
    pack.folder = folder
    adapter = pack.adapter_path()
    if Path(pack.adapter).name != pack.adapter or not adapter.is_file():
        raise PackError(f"{path} names the adapter {pack.adapter!r}, which is not a file in {folder}; "
                        "put the safetensors file beside the manifest")
    check_adapter_file(adapter)
    return pack


def _pack_from_manifest(data: dict, path: Path) -> StylePack:
    known = {name for name in StylePack.__dataclass_fields__ if name != "folder"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PackError(f"{path} has unknown field(s) {', '.join(unknown)}; known fields are {', '.join(sorted(known))}")
    for required in ("name", "licence", "base_checkpoint"):
        if required not in data:
            raise PackError(f"{path} has no {required!r}; every pack states its name, licence and base checkpoint")
    check_pack_name(data["name"])

    def text(name: str, allow_none: bool = False) -> None:
        value = data.get(name)
        if not (isinstance(value, str) or (allow_none and value is None)):
            raise PackError(f"{path}: {name} must be text, got {value!r}")

    text("licence")
    if not data["licence"].strip():
        raise PackError(f"{path}: licence is empty; say under which terms the pack may be used, e.g. 'CC-BY-4.0'")
    if "description" in data:
        text("description")
    if "prompt_template" in data:
        text("prompt_template", allow_none=True)
    if "adapter" in data:
        text("adapter")
    base = data["base_checkpoint"]
    if not (isinstance(base, dict) and isinstance(base.get("name"), str) and isinstance(base.get("fingerprint"), str)):
        raise PackError(f"{path}: base_checkpoint must be {{'name': ..., 'fingerprint': 'sha256:...'}}, got {base!r}")
    words = data.get("trigger_words", [])
    if not (isinstance(words, list) and all(isinstance(word, str) for word in words)):
        raise PackError(f"{path}: trigger_words must be a list of words, got {words!r}")
    bpm = data.get("bpm_range")
    if bpm is not None and not (isinstance(bpm, list) and len(bpm) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bpm) and 0 < bpm[0] <= bpm[1]):
        raise PackError(f"{path}: bpm_range must be [low, high] in BPM, got {bpm!r}")
    keys = data.get("keys")
    if keys is not None:
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise PackError(f"{path}: keys must be a list of keys such as 'A minor', got {keys!r}")
        try:
            data = {**data, "keys": [normalize_key(k) for k in keys]}
        except ValueError as exc:
            raise PackError(f"{path}: {exc}") from None
    return StylePack(**data)


def write_manifest(pack: StylePack, folder: Path) -> Path:
    path = folder / "pack.json"
    path.write_text(json.dumps(pack.to_manifest(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def check_adapter_file(path: Path) -> list[str]:
    """The tensor names of a safetensors adapter; a PackError when it is not a LoRA file.

    Read from the safetensors header (8-byte length, then JSON), so listing and
    installing packs needs no torch.
    """
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if not 0 < length <= _MAX_SAFETENSORS_HEADER:
                raise ValueError("header length out of range")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise PackError(f"{path} is not a safetensors file ({exc}); the pack's adapter must be safetensors") from None
    names = [name for name in header if name != "__metadata__"]
    if not names or not all("lora" in name for name in names):
        raise PackError(f"{path} holds no LoRA weights (every tensor name must contain 'lora'); "
                        "re-make the pack with 'acestep-dcc packs train'")
    return names


def adapter_hash(path: Path) -> str:
    """sha256 of the whole adapter file (a LoRA is megabytes): the pack's identity in sidecars."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()
