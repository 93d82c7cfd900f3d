"""One request in, finished files out: the path the CLI and the worker both take.

1. validate the request and check the output folder before loading anything,
2. draw seeds (one per candidate, so each candidate is reproducible alone),
3. load the backend (once) and generate every candidate in one call,
4. finish each candidate (resample, exact length, peak-safe),
5. write every file and sidecar under temporary names, then rename them all into place.
A cancel or an error at any point leaves no file behind.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from acestep_core import __version__
from acestep_core.audio.finishing import finish_candidate
from acestep_core.audio.writer import temporary_path_beside, write_audio, write_json_atomic
from acestep_core.backends.base import Backend, BackendInfo
from acestep_core.errors import AceStepError, GenerationCancelled, GenerationFailed, OutputNotWritable
from acestep_core.jobs import CueOutput
from acestep_core.progress import (
    FINISHING,
    LOADING,
    WRITING,
    CancelCheck,
    Progress,
    ProgressCallback,
    ignore_progress,
    never_cancelled,
)
from acestep_core.request import MAX_SEED, GenerationRequest

if TYPE_CHECKING:
    import numpy as np

# Share of the job's progress bar each phase takes.
_LOAD_SPAN = (0.0, 0.1)
_GENERATE_SPAN = (0.1, 0.9)
_FINISH_SPAN = (0.9, 1.0)

SOFTWARE = f"acestep-dcc {__version__}"


def draw_seed() -> int:
    return random.SystemRandom().randrange(0, MAX_SEED + 1)


def candidate_seeds(seed: int | None, candidates: int) -> list[int]:
    """Candidate k gets seed + k (wrapping), so `--seed <recorded> --candidates 1` repeats it."""
    base = draw_seed() if seed is None else seed
    return [(base + k) % (MAX_SEED + 1) for k in range(candidates)]


def candidate_paths(output_path: Path, output_format: str, candidates: int) -> list[Path]:
    """boss.wav -> [boss.wav] for one candidate, [boss-1.wav, boss-2.wav, ...] for more."""
    stem = output_path.stem if output_path.suffix.lower().lstrip(".") in ("wav", "flac", "ogg") else output_path.name
    folder = output_path.parent
    if candidates == 1:
        return [folder / f"{stem}.{output_format}"]
    return [folder / f"{stem}-{k}.{output_format}" for k in range(1, candidates + 1)]


def sidecar_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def slug_from_prompt(prompt: str, limit: int = 48) -> str:
    """'Intense boss battle, rock!' -> 'intense-boss-battle-rock' (a safe file stem)."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    slug = "-".join(words)[:limit].strip("-")
    return slug or "cue"


def ensure_output_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritable(f"cannot create the output folder {folder}: {exc.strerror}; choose another folder with -o") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputNotWritable(f"the output folder {folder} is not writable; choose another folder with -o or fix its permissions")


def generate_cues(
    request: GenerationRequest,
    backend: Backend,
    output_path: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
    is_cancelled: CancelCheck = never_cancelled,
) -> list[CueOutput]:
    request = request.validated()
    output_path = Path(output_path)
    targets = candidate_paths(output_path, request.output_format, request.candidates)
    ensure_output_folder(output_path.parent)
    seeds = candidate_seeds(request.seed, request.candidates)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    if not backend.loaded:
        backend.load(_scaled(on_progress, _LOAD_SPAN))
    timings["load_s"] = time.perf_counter() - started
    _raise_if_cancelled(is_cancelled)

    started = time.perf_counter()
    try:
        raw = backend.generate(request, seeds, _scaled(on_progress, _GENERATE_SPAN), is_cancelled)
    except AceStepError:
        raise
    except MemoryError:
        raise GenerationFailed("the backend ran out of memory; try fewer candidates or a shorter duration") from None
    except Exception as exc:  # a backend's own failure becomes one job error, not a crash
        raise GenerationFailed(f"the {backend.name} backend failed: {_describe_exception(exc)}") from exc
    timings["generate_s"] = time.perf_counter() - started
    _raise_if_cancelled(is_cancelled)

    on_progress(Progress(FINISHING, _FINISH_SPAN[0]))
    info = backend.describe()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    staged = [temporary_path_beside(path) for path in targets]
    started = time.perf_counter()

    def finish_and_stage(k: int) -> CueOutput:
        frames = finish_candidate(raw.samples[k], raw.sample_rate, request.sample_rate, request.duration,
                                  request.bit_depth)
        write_audio(staged[k], frames, request.sample_rate, request.output_format, request.bit_depth,
                    _info_chunk(request, info, seeds[k], created))
        path = targets[k]
        return CueOutput(index=k, path=str(path.resolve()), seed=seeds[k],
                         duration=frames.shape[0] / request.sample_rate, sample_rate=request.sample_rate,
                         sidecar_path=str(sidecar_path(path).resolve()),
                         metadata=_sidecar(request, info, raw.settings, k, seeds[k], path, frames, created))

    try:
        # soxr and libsndfile release the GIL, so candidates finish side by side.
        with ThreadPoolExecutor(max_workers=min(request.candidates, os.cpu_count() or 1)) as pool:
            outputs = list(pool.map(finish_and_stage, range(request.candidates)))
        timings["finish_s"] = time.perf_counter() - started
        _raise_if_cancelled(is_cancelled)
        on_progress(Progress(WRITING, (_FINISH_SPAN[0] + _FINISH_SPAN[1]) / 2))
        for temp, output in zip(staged, outputs):
            output.metadata["timings"] = {name: round(value, 4) for name, value in timings.items()}
            os.replace(temp, output.path)
            write_json_atomic(Path(output.sidecar_path), output.metadata)
    except BaseException:
        for temp in staged:
            temp.unlink(missing_ok=True)
        raise
    on_progress(Progress("done", 1.0))
    return outputs


def _raise_if_cancelled(is_cancelled: CancelCheck) -> None:
    if is_cancelled():
        raise GenerationCancelled()


def _scaled(on_progress: ProgressCallback, span: tuple[float, float]) -> ProgressCallback:
    low, high = span

    def report(progress: Progress) -> None:
        fraction = min(max(progress.fraction, 0.0), 1.0)
        on_progress(Progress(progress.stage, low + (high - low) * fraction))

    return report


def _describe_exception(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def package_versions() -> dict[str, str | None]:
    """Versions of what made the file, read without importing the heavy packages."""
    versions: dict[str, str | None] = {"acestep-dcc": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "numpy", "soundfile", "soxr"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _sidecar(request: GenerationRequest, info: BackendInfo, settings: dict, index: int, seed: int,
             path: Path, frames: "np.ndarray", created: str) -> dict:
    return {
        "file": path.name,
        "software": SOFTWARE,
        "created": created,
        "backend": {
            "name": info.name,
            "label": info.label,
            "model_path": info.model_path,
            "model_id": info.model_id,
            "device": info.device,
            "dtype": info.dtype,
        },
        "request": request.to_dict(),
        "candidate": index + 1,
        "candidates": request.candidates,
        "seed": seed,
        "settings": settings,
        "format": {"container": request.output_format, "sample_rate": request.sample_rate,
                   "bit_depth": request.bit_depth, "channels": frames.shape[1]},
        "duration_requested": request.duration,
        "duration_written": frames.shape[0] / request.sample_rate,
        "frames_written": frames.shape[0],
        "versions": package_versions(),
    }


def _info_chunk(request: GenerationRequest, info: BackendInfo, seed: int, created: str) -> dict[str, str]:
    parts = [f"backend: {info.label}"]
    if info.model_id:
        parts.append(f"model: {info.model_id}")
    parts.append(f"seed: {seed}")
    if request.bpm:
        parts.append(f"bpm: {request.bpm:g}")
    if request.key:
        parts.append(f"key: {request.key}")
    return {
        "title": request.prompt[:250],
        "comment": "; ".join(parts),
        "software": SOFTWARE,
        "date": created[:10],
        "genre": "Soundtrack",
    }
