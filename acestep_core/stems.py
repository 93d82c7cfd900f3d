"""Splitting a file that already exists into stems: `acestep-dcc stems FILE` and the hosts'
"Split into stems" ask for the same request, made here, so the rule lives once.

- A file the sketch backend made (its sidecar says so) is rendered again from the request
  and seed its sidecar records, with request.stems: the sketch plays its own parts alone,
  and the new mix is checked against the file (matches_file) before its stems are used.
- Any other file is split by the model: task "extract" with stems, one extract per track
  (DEFAULT_STEM_TRACKS unless the caller names them), which needs the acestep backend
  with a base or sft checkpoint (ACE-Step's turbo checkpoints were not trained to extract).

Standard library only (hosts import it); soundfile is imported only to read a file's format.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from acestep_core.errors import FieldProblem, InvalidRequest
from acestep_core.output_names import audio_extension, sidecar_path
from acestep_core.request import MAX_DURATION_S, MIN_DURATION_S, SAMPLE_RATES, TRACK_NAMES, GenerationRequest

# What a split makes when no tracks are named: the parts most music has, and the ones a
# game or film mix most often wants alone. Each is one extract run of the model.
DEFAULT_STEM_TRACKS = ("vocals", "drums", "bass", "guitar", "keyboard", "synth")


def parse_tracks(text: str | list[str] | tuple[str, ...] | None, field: str = "tracks") -> list[str] | None:
    """'drums, bass' or ['drums', 'bass'] -> ['drums', 'bass']; None or '' -> None. An unknown
    name is refused with the whole list of ACE-Step's track names."""
    if text is None:
        return None
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text)]
    names = [name for name in names if name]
    if not names:
        return None
    for name in names:
        if name not in TRACK_NAMES:
            raise InvalidRequest([FieldProblem(field, f"track must be one of {', '.join(TRACK_NAMES)}, got {name!r}")])
    return list(dict.fromkeys(names))


def recorded_sidecar(audio_path: str | Path) -> dict[str, Any] | None:
    """The file's acestep-dcc sidecar (x.wav.json) when it has a readable one, else None."""
    path = sidecar_path(audio_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def made_by_sketch(sidecar: dict[str, Any] | None) -> bool:
    """True for a sketch mix's sidecar (not a stem's: a stem is split no further)."""
    if not sidecar or sidecar.get("stem_of"):
        return False
    backend = sidecar.get("backend")
    return isinstance(backend, dict) and backend.get("name") == "sketch" and isinstance(sidecar.get("request"), dict)


def split_request(audio_path: str | Path, tracks: list[str] | tuple[str, ...] | str | None = None, *,
                  by_model: bool = False) -> GenerationRequest:
    """The request that splits `audio_path` into stems (see the module doc); `by_model`
    asks for the model's extract even for a file the sketch made.

    For a sketch-made file: its recorded request, one candidate with the recorded seed,
    stems=True and `tracks` (None: every part it plays). Otherwise task "extract" with
    stems=True, `tracks` (None: DEFAULT_STEM_TRACKS), the file as source_audio, and the
    file's own length, rate and bit depth, with loudness left as it is. Raises
    InvalidRequest (one sentence) when the file cannot be split.

    A host sending this to the worker uploads the file when request.source_audio is set
    and puts the upload's id there (the worker reads no client path).
    """
    path = Path(audio_path)
    names = parse_tracks(tracks)
    if not path.is_file():
        raise InvalidRequest([FieldProblem("source_audio", f"{path} does not exist; pass the audio file to split")])
    sidecar = recorded_sidecar(path)
    if sidecar and sidecar.get("stem_of"):
        raise InvalidRequest([FieldProblem("source_audio", (
            f"{path.name} is already the {sidecar.get('track')} stem of {sidecar['stem_of']}; split the mix instead"))])
    if made_by_sketch(sidecar) and not by_model:
        recorded = GenerationRequest.from_dict(sidecar["request"])
        return replace(recorded, candidates=1, seed=int(sidecar["seed"]), stems=True, tracks=names,
                       file_name=None).validated()
    fmt, rate, bits, seconds = _file_format(path)
    if not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
        raise InvalidRequest([FieldProblem("source_audio", (
            f"{path.name} is {seconds:.1f} s long; stems can be made of {MIN_DURATION_S:g} to {MAX_DURATION_S:g} s"))])
    recorded_prompt = (sidecar or {}).get("request", {}).get("prompt") if isinstance((sidecar or {}).get("request"), dict) else None
    return GenerationRequest(
        prompt=recorded_prompt or f"stems of {path.name}", task="extract", stems=True,
        tracks=names or list(DEFAULT_STEM_TRACKS), source_audio=str(path), duration=seconds,
        output_format=fmt, sample_rate=rate, bit_depth=bits, loudness=None,
    ).validated()


def _file_format(path: Path) -> tuple[str, int, int, float]:
    """(format, sample rate, bit depth, seconds) to write the stems of `path` in: its own,
    where acestep-dcc writes it (else WAV, 48 kHz, 24-bit). Read with soundfile, or, in a
    host's Python without it, with the standard library's wave module (WAV only)."""
    fmt = audio_extension(path) or "wav"
    try:
        import soundfile as sf
    except ImportError:
        sf = None
    try:
        if sf is not None:
            info = sf.info(str(path))
            file_rate, frames, narrow = info.samplerate, info.frames, info.subtype in ("PCM_16", "PCM_S8", "PCM_U8")
        else:
            import wave

            with wave.open(str(path), "rb") as reader:
                file_rate, frames, narrow = reader.getframerate(), reader.getnframes(), reader.getsampwidth() <= 2
    except Exception as exc:  # soundfile's and wave's errors for a file that is not audio
        raise InvalidRequest([FieldProblem("source_audio", (
            f"cannot read {path} as audio ({exc}); pass a WAV, FLAC or Ogg file"))]) from None
    rate = file_rate if file_rate in SAMPLE_RATES else 48000
    return fmt, rate, 16 if narrow else 24, frames / file_rate


file_format = _file_format  # public: the CLI and the hosts give a source task the source's format


def matches_file(written: "Any", audio_path: str | Path, bit_depth: int) -> str | None:
    """None when `written` (float (frames, channels), a re-rendered mix as written) is the
    file's audio, to the last bit but one; else a sentence saying how it differs."""
    import numpy as np
    import soundfile as sf

    data, _ = sf.read(str(audio_path), dtype="float32", always_2d=True)
    name = Path(audio_path).name
    if data.shape != written.shape:
        return (f"{name} has {data.shape[0]} frames in {data.shape[1]} channels, and rendering its request again "
                f"gives {written.shape[0]} in {written.shape[1]}")
    difference = float(np.max(np.abs(data - written))) if data.size else 0.0
    if audio_extension(audio_path) == "ogg":
        energy = float(np.sum(data.astype(np.float64) ** 2))
        left = float(np.sum((data.astype(np.float64) - written) ** 2))
        if energy == 0.0 or left <= energy * 1e-5:  # lossy: within -50 dB
            return None
    elif difference <= 2.0 / (1 << (bit_depth - 1)):
        return None
    return (f"rendering {name}'s recorded request again does not give {name} (they differ by up to "
            f"{20 * math.log10(max(difference, 1e-12)):.0f} dBFS): it was changed after it was made, or made by "
            "another acestep-dcc version")
