"""One request in, finished files out: the path the CLI and the worker both take.

1. validate the request and check the output folder before loading anything,
2. draw seeds (one per candidate, so each candidate is reproducible alone),
3. load the backend (once) and generate every candidate in one call,
4. finish each candidate: resample; measure tempo and key; cut to the exact length, or
   (loop mode) to whole bars with the tail folded over the start; loudness to the
   target under the true-peak ceiling,
5. write every file and sidecar under temporary names (a looped WAV gets its smpl/cue
   chunks while still under the temporary name), then rename them all into place.
A cancel or an error at any point leaves no file behind.

Loop mode asks the backend for more than the loop: one bar past it when the tempo is
known before generating (the request's bpm), else the requested duration plus a margin;
the loop's tempo is then the request's bpm, else the one the backend reports choosing
(sketch), else the one measured from the audio.

Looped FLAC and Ogg files hold exactly the loop (no smpl chunk exists for them, and
engines loop such files end to end); a looped WAV holds the loop plus one guard frame
that the smpl chunk's end points at (acestep_core.audio.riff explains why). Every
sidecar records loop_start and loop_end_exclusive in frames, the one reading that is
exact for every engine. Vorbis comments such as LOOPSTART cannot be written through
libsndfile, so Ogg loops are described by the sidecar only.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundfile import SoundFileError

from acestep_core import __version__
from acestep_core.audio import loops
from acestep_core.audio.analysis import ANALYSIS_RATE, analysis_signal, estimate_key, estimate_tempo
from acestep_core.audio.finishing import (
    finish_candidate, frames_from_channels_first, replace_non_finite, resample, resampler_quality,
)
from acestep_core.audio.loudness import LoudnessReport, finish_loudness, integrated_loudness, true_peak_dbtp
from acestep_core.audio.riff import CueMarker, WavLoop, write_loop_chunks
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
from acestep_core.request import MAX_DURATION_S, MAX_SEED, GenerationRequest, beats_per_bar, slug_from_prompt

if TYPE_CHECKING:
    import numpy as np

# Share of the job's progress bar each phase takes.
_LOAD_SPAN = (0.0, 0.1)
_GENERATE_SPAN = (0.1, 0.9)
_FINISH_SPAN = (0.9, 1.0)

SOFTWARE = f"acestep-dcc {__version__}"

# How the sidecar states the loop convention (see acestep_core.audio.riff).
LOOP_CONVENTION = (
    "frames [loop_start, loop_end_exclusive) repeat. WAV: one guard frame (a copy of frame "
    "loop_start) follows the loop and the smpl chunk's end points at it (smpl_end = "
    "loop_end_exclusive), which Godot 4 plays seamlessly; RIFF-spec readers (libsndfile, "
    "FMOD, Wwise) hold the first frame for one extra sample per pass. FLAC/Ogg: the file "
    "is exactly the loop."
)
# A cue that is not a loop starts and stops wherever the cut falls; a short fade at each
# end keeps that from clicking (and from ringing over the true-peak ceiling).
DECLICK_S = 0.005
# Lossy encoding moves peaks; re-encode this many times at most to get under the ceiling.
_MAX_LOSSY_PASSES = 3


@dataclass
class FinishedCue:
    """One candidate after finishing, ready to write."""

    frames: "np.ndarray"  # what goes in the file (a looped WAV includes its guard frame)
    loop: loops.LoopPlan | None
    loudness: LoudnessReport
    tempo: dict[str, Any]
    key: dict[str, Any]


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
        raw = backend.generate(backend_request(request), seeds, _scaled(on_progress, _GENERATE_SPAN), is_cancelled)
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
    staged: list[Path] = []
    committed: list[Path] = []  # final files this call has already put in place
    started = time.perf_counter()

    def finish_and_stage(k: int) -> CueOutput:
        cue = finish_cue(raw.samples[k], raw.sample_rate, request, raw.settings)
        cue.loudness = write_cue(staged[k], cue, request, _info_chunk(request, info, seeds[k], created, cue))
        path = targets[k]
        frames = cue.frames
        return CueOutput(index=k, path=str(path.resolve()), seed=seeds[k],
                         duration=frames.shape[0] / request.sample_rate, sample_rate=request.sample_rate,
                         sidecar_path=str(sidecar_path(path).resolve()),
                         metadata=_sidecar(request, info, raw.settings, k, seeds[k], path, cue, created))

    try:
        staged.extend(temporary_path_beside(path) for path in targets)
        # soxr and libsndfile release the GIL, so candidates finish side by side.
        with ThreadPoolExecutor(max_workers=min(request.candidates, os.cpu_count() or 1)) as pool:
            outputs = list(pool.map(finish_and_stage, range(request.candidates)))
        timings["finish_s"] = time.perf_counter() - started
        _raise_if_cancelled(is_cancelled)
        on_progress(Progress(WRITING, (_FINISH_SPAN[0] + _FINISH_SPAN[1]) / 2))
        for temp, output in zip(staged, outputs):
            output.metadata["timings"] = {name: round(value, 4) for name, value in timings.items()}
            os.replace(temp, output.path)
            committed.append(Path(output.path))
            write_json_atomic(Path(output.sidecar_path), output.metadata)
            committed.append(Path(output.sidecar_path))
    except (OSError, SoundFileError) as exc:
        _discard(staged + committed)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OutputNotWritable(f"writing into {output_path.parent} failed ({reason}); free some space or "
                                "choose another folder with -o") from None
    except BaseException:
        # A cancel or an error part-way leaves nothing: not even candidates already renamed.
        _discard(staged + committed)
        raise
    on_progress(Progress("done", 1.0))
    return outputs


def backend_request(request: GenerationRequest) -> GenerationRequest:
    """What the backend is asked for: in loop mode, enough audio for the loop and its tail."""
    if not request.loop:
        return request
    per_bar = beats_per_bar(request.time_signature)
    if request.bpm is None:
        seconds = request.duration + loops.tail_seconds(None, per_bar)
    else:
        bar_s = per_bar * 60.0 / request.bpm
        bars = request.loop_bars or loops.fit_bars(request.duration, request.bpm, per_bar)
        # Whole bars: a backend that ends cues musically (sketch) keeps its groove going.
        seconds = (bars + 1) * bar_s
    return replace(request, duration=min(seconds, MAX_DURATION_S))


def finish_cue(samples: "np.ndarray", source_rate: int, request: GenerationRequest, settings: dict) -> FinishedCue:
    """The finishing chain for one candidate (channels-first samples at the backend's rate)."""
    rate = request.sample_rate
    if request.loop:
        frames = replace_non_finite(frames_from_channels_first(samples))
        frames = resample(frames, source_rate, rate, resampler_quality(request.bit_depth))
    else:
        frames = _declick_edges(finish_candidate(samples, source_rate, rate, request.duration, request.bit_depth), rate)
    # One decimated mono signal serves both measurements (None: the request set both).
    signal = analysis_signal(frames, rate) if request.bpm is None or request.key is None else None
    tempo = _tempo_record(request, settings, signal)
    key = _key_record(request, settings, signal)
    plan = None
    if request.loop:
        bpm = tempo["used"]
        if bpm is None:
            raise GenerationFailed(
                "the loop needs a tempo, and none could be measured from this audio; set one with --bpm"
            )
        per_bar = int(settings.get("beats_per_bar") or beats_per_bar(request.time_signature))
        plan = loops.plan_loop(bpm, per_bar, rate, bars=request.loop_bars, duration_s=request.duration,
                               available_frames=frames.shape[0])
        frames = loops.fold_tail(frames, plan)
    frames, report = finish_loudness(frames, rate, request.loudness_target_lufs(), request.true_peak_ceiling_db,
                                     circular=plan is not None)
    if plan is not None and request.output_format == "wav":
        frames = loops.with_guard_frame(frames)
    return FinishedCue(frames=frames, loop=plan, loudness=report, tempo=tempo, key=key)


def _declick_edges(frames: "np.ndarray", rate: int) -> "np.ndarray":
    import numpy as np

    length = min(int(round(DECLICK_S * rate)), frames.shape[0] // 2)
    if length == 0:
        return frames
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)).astype(np.float32)[:, None]
    out = frames.copy()
    out[:length] *= ramp
    out[-length:] *= ramp[::-1]
    return out


def write_cue(path: Path, cue: FinishedCue, request: GenerationRequest, info: dict[str, str]) -> LoudnessReport:
    """Write a finished cue (and a looped WAV's chunks) to `path`; returns the loudness as written.

    A lossy codec moves peaks, so an Ogg file is decoded again and, if its true peak came
    out over the ceiling, turned down by the excess and encoded again.
    """
    import soundfile as sf

    frames, report = cue.frames, cue.loudness
    for _ in range(_MAX_LOSSY_PASSES):
        write_audio(path, frames, request.sample_rate, request.output_format, request.bit_depth, info)
        if request.output_format != "ogg":
            break
        decoded, _ = sf.read(path, dtype="float32", always_2d=True)
        peak = true_peak_dbtp(decoded, circular=cue.loop is not None)
        report = replace(report, true_peak_dbtp=round(peak, 3),
                         integrated_lufs=round(integrated_loudness(decoded, request.sample_rate), 3))
        excess = peak - request.true_peak_ceiling_db
        if excess <= 0:
            break
        frames = (frames * 10.0 ** (-(excess + 0.1) / 20.0)).astype(frames.dtype)
    if cue.loop is not None and request.output_format == "wav":
        plan = cue.loop
        markers = [CueMarker(plan.start, "Loop start (bar 1)"), CueMarker(plan.end_exclusive, "Loop end")]
        write_loop_chunks(path, WavLoop(plan.start, plan.end_exclusive), markers, request.sample_rate)
    return report


def _tempo_record(request: GenerationRequest, settings: dict, signal: "np.ndarray | None") -> dict[str, Any]:
    """`signal` is analysis_signal of the cue (None when the request set the tempo and key)."""
    backend_bpm = settings.get("bpm") if isinstance(settings.get("bpm"), (int, float)) else None
    # Measured only when the request left the tempo open: a request's tempo is the answer.
    measured = estimate_tempo(signal, ANALYSIS_RATE) if request.bpm is None else None
    if request.bpm is not None:
        used, source = float(request.bpm), "request"
    elif backend_bpm:
        used, source = float(backend_bpm), "backend"
    elif measured is not None:
        used, source = measured.bpm, "measured"
    else:
        used, source = None, None
    return {"requested": request.bpm, "backend": backend_bpm,
            "measured": measured.bpm if measured else None,
            "measured_confidence": measured.confidence if measured else None,
            "used": used, "source": source}


def _key_record(request: GenerationRequest, settings: dict, signal: "np.ndarray | None") -> dict[str, Any]:
    """`signal` is analysis_signal of the cue (None when the request set the tempo and key)."""
    backend_key = settings.get("key") if isinstance(settings.get("key"), str) else None
    measured = estimate_key(signal, ANALYSIS_RATE) if request.key is None else None
    used = request.key or backend_key or (measured.key if measured else None)
    source = "request" if request.key else "backend" if backend_key else "measured" if measured else None
    return {"requested": request.key, "backend": backend_key,
            "measured": measured.key if measured else None,
            "measured_correlation": measured.correlation if measured else None,
            "used": used, "source": source}


def _loop_record(cue: FinishedCue, request: GenerationRequest) -> dict[str, Any] | None:
    plan = cue.loop
    if plan is None:
        return None
    record = {
        "loop_start": plan.start,
        "loop_end_exclusive": plan.end_exclusive,
        "loop_length": plan.length,
        "bars": plan.bars,
        "bpm": plan.bpm,
        "beats_per_bar": plan.beats_per_bar,
        "bar_lines": plan.bar_lines(),
        "crossfade_frames": plan.crossfade,
        "frames_in_file": int(cue.frames.shape[0]),
        "convention": LOOP_CONVENTION,
    }
    if request.output_format == "wav":
        record.update(smpl_start=plan.start, smpl_end=plan.end_exclusive, guard_frame=plan.end_exclusive)
    return record


def _discard(paths: list[Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


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
             path: Path, cue: FinishedCue, created: str) -> dict:
    frames = cue.frames
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
        "loop": _loop_record(cue, request),
        "tempo": cue.tempo,
        "key": cue.key,
        "loudness": cue.loudness.to_dict(),
        "versions": package_versions(),
    }


def _info_chunk(request: GenerationRequest, info: BackendInfo, seed: int, created: str,
                cue: FinishedCue | None = None) -> dict[str, str]:
    parts = [f"backend: {info.label}"]
    if info.model_id:
        parts.append(f"model: {info.model_id}")
    parts.append(f"seed: {seed}")
    bpm = cue.tempo["used"] if cue else request.bpm
    key = cue.key["used"] if cue else request.key
    if bpm:
        parts.append(f"bpm: {bpm:g}")
    if key:
        parts.append(f"key: {key}")
    if cue and cue.loop:
        parts.append(f"loop: frames {cue.loop.start}-{cue.loop.end_exclusive} ({cue.loop.bars} bars)")
    return {
        "title": request.prompt[:250],
        "comment": "; ".join(parts),
        "software": SOFTWARE,
        "date": created[:10],
        "genre": "Soundtrack",
    }
