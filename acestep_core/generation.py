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
import errno
import math
import os
import platform
import random
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundfile import SoundFileError

from acestep_core import __version__, output_names
from acestep_core.audio import loop_region, loops
from acestep_core.audio.analysis import ANALYSIS_RATE, analysis_signal, estimate_key, estimate_tempo
from acestep_core.audio.finishing import DEFAULT_PEAK_CEILING_DB, frames_at_rate, resampler_quality, target_length
from acestep_core.audio.loudness import (
    LoudnessReport, block_powers, db_to_gain, finish_loudness, gated_loudness, remove_subsonic, sample_peak_dbfs,
    true_peak_dbtp,
)
from acestep_core.audio.riff import CueMarker, WavLoop, write_loop_chunks
from acestep_core.audio.writer import (
    as_written, discard, output_run, pcm_scale, put_in_place, quantized, temporary_path_beside, write_audio,
    write_json_atomic,
)
from acestep_core.audio.splice import CROSSFADE_S, SPLICE_TASKS, source_frames, splice
from acestep_core.backends.base import BASE_ONLY_TASKS, Backend, BackendInfo, needs_base_checkpoint
from acestep_core.errors import (
    AceStepError, BackendUnavailable, FieldProblem, GenerationCancelled, GenerationFailed, InvalidRequest,
    OutputNotWritable,
)
from acestep_core.jobs import CueOutput
from acestep_core.licence import backend_licence
from acestep_core.musical_plan import TempoKeyPlan, planned_request, tempo_agrees
from acestep_core.backends.base import BASE_REPO_ID
from acestep_core.output_names import sidecar_path, stem_path
from acestep_core.progress import (
    FINISHING,
    WRITING,
    CancelCheck,
    Progress,
    ProgressCallback,
    ignore_progress,
    never_cancelled,
)
from acestep_core.request import (
    MAX_DURATION_S, MAX_SEED, MIN_DURATION_S, SOURCE_TASKS, GenerationRequest, beats_per_bar, slug_from_prompt,
)

if TYPE_CHECKING:
    import numpy as np

# Share of the job's progress bar each phase takes.
_LOAD_SPAN = (0.0, 0.1)
_GENERATE_SPAN = (0.1, 0.9)
_FINISH_SPAN = (0.9, 1.0)
# Progress steps in finishing one candidate: shape and resample, measure, loudness, write.
_FINISH_STEPS = 4

SOFTWARE = f"acestep-dcc {__version__}"

# What generate_cues does when a file it would write (or its sidecar) is already there.
EXISTING_CHOICES = ("refuse", "overwrite", "number")
# The end of every OutputNotWritable sentence; the CLI adds how it chooses a folder.
CHOOSE_ANOTHER_FOLDER = "choose another folder"
# The sidecar's true peak is measured on the file's samples at this oversampling: the
# limiter holds peaks on a 4x grid, which reads its own output ~0.07 dB low; 8x agrees
# with ffmpeg's ebur128 to a hundredth of a dB.
WRITTEN_PEAK_OVERSAMPLING = 8
# A loudness target missed by more than this is a warning (EBU R128 allows +-0.5 LU live;
# finishing aims within 0.05).
LOUDNESS_WARNING_LU = 0.5
# libsndfile reports a full disk only as "System error."; with less free space than this
# left, a failed write is taken for a full disk.
_FULL_DISK_BYTES = 4 << 20

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
    warnings: list[str] = field(default_factory=list)  # sentences for the user (cue_warnings adds loudness)
    # The mix's own plain gains, which its stems get too (finish_stem): the peak-safe gain
    # before the loudness step, and the loop's crossfade correlation (None: no loop).
    peak_gain: float = 1.0
    fold_rho: float | None = None
    region: dict[str, Any] | None = None  # where the loop was found in the audio (loop_region), if searched


def draw_seed() -> int:
    return random.SystemRandom().randrange(0, MAX_SEED + 1)


def candidate_seeds(seed: int | None, candidates: int) -> list[int]:
    """Candidate k gets seed + k (wrapping), so `--seed <recorded> --candidates 1` repeats it."""
    base = draw_seed() if seed is None else seed
    return [(base + k) % (MAX_SEED + 1) for k in range(candidates)]


def output_paths(output_path: Path, output_format: str, candidates: int, existing: str = "refuse",
                 stem_tracks: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """The audio files a run writes for `output_path` (boss.wav -> boss.wav, or boss-1.wav ...
    for several candidates), each with its sidecar boss.wav.json.

    existing="refuse" raises InvalidRequest naming every file or sidecar already there
    (the stems' too, boss.drums.wav for each of `stem_tracks`); "overwrite" replaces them;
    "number" takes the first free name (boss_2.wav, ...).
    A name ending in an extension other than .wav, .flac or .ogg is refused.
    """
    if existing not in EXISTING_CHOICES:
        raise ValueError(f"existing must be one of {', '.join(EXISTING_CHOICES)}, got {existing!r}")
    output_names.output_format_for(output_path)  # refuses x.mp3 (never x.mp3.wav)
    if existing == "number":
        return output_names.first_free_paths(output_path, output_format, candidates, stem_tracks)
    paths = output_names.candidate_paths(output_path, output_format, candidates)
    if existing == "refuse":
        output_names.refuse_existing(output_names.with_stems(paths, stem_tracks))
    return paths


def ensure_output_folder(folder: Path) -> None:
    """Create `folder` if needed; OutputNotWritable (one sentence) when it cannot be written."""
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.exists() or place.is_symlink():
            if not place.is_dir():
                where = "" if place == folder else f", so the output folder {folder} cannot be made"
                raise OutputNotWritable(f"{place} is not a folder{where}; {CHOOSE_ANOTHER_FOLDER}")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_failure(exc, folder, f"cannot create the output folder {folder}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputNotWritable(f"the output folder {folder} is not writable; {CHOOSE_ANOTHER_FOLDER} "
                                "or fix its permissions")


def generate_cues(
    request: GenerationRequest,
    backend: Backend,
    output_path: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
    is_cancelled: CancelCheck = never_cancelled,
    existing: str = "refuse",
    mix_file: Path | None = None,
    check_against: Path | None = None,
) -> list[CueOutput]:
    """Generate, finish and write every candidate of `request` (see the module doc).

    `existing` says what to do when a file to be written, or its sidecar, is already
    there (output_paths): "refuse" (before anything is generated), "overwrite" or
    "number". A cancel is seen within a second at any stage; a cancel or an error
    leaves no file behind.

    `mix_file` (with request.stems, one candidate): the stems are of this existing file
    (acestep_core.stems.split_request), named after `output_path`; the mix is not written
    again, and a mix rendered again (sketch) must be the file's audio, or nothing is written.

    `check_against` (a reference library folder): every cue is checked for originality
    against it and the other candidates before it is put in place; the sidecar records
    the result and a flagged cue gets a warning (acestep_core.originality.generated).
    """
    if check_against is not None:  # before anything loads: a wrong folder costs nothing
        from acestep_core.originality.generated import check_reference_library

        check_against = check_reference_library(check_against)
    asked = _with_source_length(request.validated())
    seeds = candidate_seeds(asked.seed, asked.candidates)
    # Tempo and key fixed before generating (musical_plan); the first seed may choose the
    # tempo inside the range the prompt implies.
    request, plan = planned_request(asked, seeds[0])
    output_path = Path(output_path)
    output_names.output_format_for(output_path)  # x.mp3 is refused before any folder is made
    ensure_output_folder(output_path.parent)
    if mix_file is not None:
        if not request.stems or request.candidates != 1:
            raise ValueError("mix_file is for splitting one file into stems (request.stems, one candidate)")
        targets = [output_path]
        if existing != "overwrite":
            output_names.refuse_existing([output_names.stem_path(output_path, track)
                                          for track in stem_tracks_to_check(request)])
    else:
        targets = output_paths(output_path, request.output_format, request.candidates, existing,
                               stem_tracks=stem_tracks_to_check(request))
    if request.task in BASE_ONLY_TASKS and backend.name != "sketch" and request.task not in backend.describe().supports_tasks:
        raise BackendUnavailable(needs_base_checkpoint(request.task))  # before the model loads (sketch says its own)
    if request.reference_audio is not None and not backend.describe().supports_reference:
        raise BackendUnavailable(
            f"the {backend.name} backend cannot follow a reference clip; use the acestep backend with an "
            "ACE-Step model, or leave the reference out")
    if request.style is not None:  # before the model loads: a wrong pack costs nothing
        from acestep_core.packs.use import check_style

        check_style(request, backend)
    stems_by_extract = request.stems and _stems_by_extract(request, backend.describe())
    find_region = request.loop and not backend.describe().loops_on_grid
    timings: dict[str, float] = {}
    report_lock = threading.Lock()  # candidates finish on several threads

    def report(progress: Progress) -> None:
        with report_lock:
            on_progress(progress)

    started = time.perf_counter()
    if not backend.loaded:
        backend.load(_scaled(report, _LOAD_SPAN))
    timings["load_s"] = time.perf_counter() - started
    _raise_if_cancelled(is_cancelled)

    started = time.perf_counter()
    try:
        if request.task == "extract" and request.stems:
            raw = None  # the source is the mix; its stems come first
        else:
            mix_span = (_GENERATE_SPAN[0], _GENERATE_SPAN[0] + 0.2) if stems_by_extract else _GENERATE_SPAN
            raw = backend.generate(backend_request(request, find_region), seeds, _scaled(report, mix_span),
                                   is_cancelled)
        if stems_by_extract:
            raw = _with_extracted_stems(backend, request, raw, seeds, report, is_cancelled)
    except AceStepError:
        raise
    except MemoryError:
        raise GenerationFailed("the backend ran out of memory; try fewer candidates or a shorter duration") from None
    except Exception as exc:  # a backend's own failure becomes one job error, not a crash
        raise GenerationFailed(f"the {backend.name} backend failed: {_describe_exception(exc)}") from exc
    timings["generate_s"] = time.perf_counter() - started
    _raise_if_cancelled(is_cancelled)

    def finishing_stage(done: int) -> str:
        return FINISHING if request.candidates == 1 else f"{FINISHING} {done}/{request.candidates}"

    report(Progress(finishing_stage(0), _FINISH_SPAN[0]))
    info = backend.describe()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    staged: list[Path] = []
    started = time.perf_counter()
    failed = threading.Event()  # one candidate failed: the others stop at their next check
    steps_done = 0
    candidates_done = 0

    def stop_requested() -> bool:
        return failed.is_set() or is_cancelled()

    def step_done(finished_candidate: bool = False) -> None:
        nonlocal steps_done, candidates_done
        with report_lock:
            steps_done += 1
            candidates_done += finished_candidate
            low, high = _FINISH_SPAN[0], (_FINISH_SPAN[0] + _FINISH_SPAN[1]) / 2
            on_progress(Progress(finishing_stage(candidates_done),
                                 low + (high - low) * steps_done / (_FINISH_STEPS * request.candidates)))

    def finish_and_stage(k: int) -> CueOutput:
        cue = finish_cue(raw.samples[k], raw.sample_rate, request, raw.settings, is_cancelled=stop_requested,
                         on_step=step_done, tempo_plan=plan, find_region=find_region,
                         reuse_samples=raw.stems is None)  # the stems' check reads the mix again
        if request.task in SPLICE_TASKS:  # the source stays outside the range (audio/splice.py)
            source = None if request.task == "lego" else source_frames(
                request.source_audio, request.sample_rate, cue.frames.shape[1], cue.frames.shape[0])
            splice(cue.frames, request.task, request.sample_rate, request.repaint_start, request.repaint_end, source)
            raw.settings["crossfade_s"] = CROSSFADE_S
            if request.loudness_target_lufs() is not None:  # asked for: the spliced whole is brought to it
                cue.frames, cue.loudness = finish_loudness(
                    cue.frames, request.sample_rate, request.loudness_target_lufs(), request.true_peak_ceiling_db,
                    in_place=True, is_cancelled=stop_requested)
        write_cue(staged[k], cue, request, _info_chunk(request, info, seeds[k], created, cue),
                  is_cancelled=stop_requested)
        cue.warnings += cue_warnings(cue.loudness)
        path = targets[k]
        if mix_file is not None and request.task != "extract":
            from acestep_core.stems import matches_file

            differs = matches_file(cue.frames, mix_file, request.bit_depth)
            if differs:
                raise GenerationFailed(f"{differs}, so its stems cannot be made this way; split it with an ACE-Step "
                                       "base or sft checkpoint (--backend acestep --model FOLDER)")
        written = None if raw.stems is None else write_stems(
            raw, k, cue, request, path, staged_stems, _info_chunk(request, info, seeds[k], created, cue),
            is_cancelled=stop_requested)
        step_done(finished_candidate=True)
        frames = cue.frames
        stems = [] if written is None else written.stems
        cue.warnings += [stem.warning for stem in stems if stem.warning]
        not_played = [track for track in (request.tracks or []) if request.stems and raw.stems is not None
                      and track not in raw.stems]
        if not_played:
            cue.warnings.append(f"no {', '.join(not_played)} stem was written: the {info.name} backend played no "
                                f"such part in this cue")
        metadata = _sidecar(asked, info, raw.settings, k, seeds[k], path, cue, created, plan)
        if written is not None:
            metadata.update(_stems_record(written, raw, cue, request, stems_by_extract))
            for stem in stems:
                stem.sidecar = _stem_sidecar(metadata, stem, cue, stems_by_extract)
        return CueOutput(index=k, path=str(path.resolve()), seed=seeds[k],
                         duration=frames.shape[0] / request.sample_rate, sample_rate=request.sample_rate,
                         sidecar_path=str(sidecar_path(path).resolve()),
                         metadata=metadata, warnings=list(cue.warnings),
                         stems={stem.track: str(stem.path.resolve()) for stem in stems}), stems

    # A cancel or an error part-way leaves nothing: output_run removes the candidates
    # already renamed into place, and the finally every temporary.
    staged_stems: list[Path] = []  # stems' temporaries, from every candidate's thread
    with output_run():
        try:
            staged.extend(temporary_path_beside(path) for path in targets)
            # soxr and libsndfile release the GIL, so candidates finish side by side.
            with ThreadPoolExecutor(max_workers=min(request.candidates, os.cpu_count() or 1)) as pool:
                futures = [pool.submit(finish_and_stage, k) for k in range(request.candidates)]
                try:
                    outputs, stems_written = zip(*[future.result() for future in futures])
                except BaseException:
                    failed.set()
                    for future in futures:
                        future.cancel()
                    raise
            timings["finish_s"] = time.perf_counter() - started
            _raise_if_cancelled(is_cancelled)
            if check_against is not None:
                from acestep_core.originality.generated import CHECKING, record_originality

                report(Progress(CHECKING, _FINISH_SPAN[0] + (_FINISH_SPAN[1] - _FINISH_SPAN[0]) / 2))
                started = time.perf_counter()
                record_originality(outputs, staged, check_against, is_cancelled=is_cancelled)
                timings["originality_s"] = time.perf_counter() - started
            report(Progress(WRITING, (_FINISH_SPAN[0] + _FINISH_SPAN[1]) / 2))
            for number, (temp, output) in enumerate(zip(staged, outputs), start=1):
                _raise_if_cancelled(is_cancelled)
                output.metadata["timings"] = {name: round(value, 4) for name, value in timings.items()}
                if mix_file is None:
                    put_in_place(temp, Path(output.path))
                    write_json_atomic(Path(output.sidecar_path), output.metadata)
                else:  # the file split is the mix: it stays as it is
                    output.path, output.sidecar_path = str(Path(mix_file).resolve()), None
                    output.metadata["file"] = Path(mix_file).name
                for stem in stems_written[number - 1]:
                    put_in_place(stem.temporary, stem.path)
                    write_json_atomic(sidecar_path(stem.path), stem.sidecar)
                if existing == "overwrite" and mix_file is None:
                    _remove_stale_stems(Path(output.path), [stem.track for stem in stems_written[number - 1]])
                report(Progress(WRITING, _FINISH_SPAN[0] + (_FINISH_SPAN[1] - _FINISH_SPAN[0])
                                * (0.5 + 0.5 * number / len(outputs))))
        except (OSError, SoundFileError) as exc:
            raise _write_failure(exc, output_path.parent, f"writing into {output_path.parent} failed") from None
        finally:
            discard(staged + staged_stems)  # temporaries not renamed into place (all of them, after an error)
    report(Progress("done", 1.0))
    return list(outputs)


def _write_failure(exc: BaseException, folder: Path, what: str) -> OutputNotWritable:
    """One sentence for a failed write; a full disk says so (libsndfile only says "System error.")."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or (code is None and _free_bytes(folder) < _FULL_DISK_BYTES):
        return OutputNotWritable(f"no space left on device in {folder}; free some space or {CHOOSE_ANOTHER_FOLDER}")
    if code == getattr(errno, "EDQUOT", None):
        return OutputNotWritable(f"the disk quota is used up in {folder}; free some space or {CHOOSE_ANOTHER_FOLDER}")
    reason = getattr(exc, "strerror", None) or str(exc)
    return OutputNotWritable(f"{what} ({reason}); {CHOOSE_ANOTHER_FOLDER}")


def _free_bytes(folder: Path) -> float:
    for place in (Path(folder), *Path(folder).parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return math.inf


def backend_request(request: GenerationRequest, find_region: bool = False) -> GenerationRequest:
    """What the backend is asked for: in loop mode, enough audio for the intro, the loop and
    its tail, plus (find_region: the loop's place is chosen by analysis) a few bars of headroom."""
    if not request.loop:
        return request
    per_bar = beats_per_bar(request.time_signature)
    if request.bpm is None:
        seconds = request.duration + loops.tail_seconds(None, per_bar)
    else:
        bar_s = per_bar * 60.0 / request.bpm
        bars = request.loop_bars or loops.fit_bars(request.duration, request.bpm, per_bar)
        # Whole bars: a backend that ends cues musically (sketch) keeps its groove going.
        headroom = loop_region.headroom_bars(bars) if find_region else 0
        seconds = (request.intro_bars + bars + 1 + headroom) * bar_s
    return replace(request, duration=min(seconds, MAX_DURATION_S))


def _with_source_length(request: GenerationRequest) -> GenerationRequest:
    """A task on a source file makes a cue as long as the source: the model reworks the
    source's whole length, and a host puts the result where the source is."""
    if request.task not in SOURCE_TASKS or request.source_audio is None:
        return request
    import soundfile as sf

    try:
        info = sf.info(str(request.source_audio))
    except Exception:  # not audio: the backend refuses it with the formats it reads
        return request
    seconds = info.frames / info.samplerate
    if not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
        raise InvalidRequest([FieldProblem("source_audio", (
            f"{Path(request.source_audio).name} is {seconds:.1f} s long; {request.task} works on "
            f"{MIN_DURATION_S:g} to {MAX_DURATION_S:g} s of audio"))])
    return replace(request, duration=seconds)


def finish_cue(samples: "np.ndarray", source_rate: int, request: GenerationRequest, settings: dict, *,
               is_cancelled: CancelCheck = never_cancelled, on_step=lambda: None,
               tempo_plan: TempoKeyPlan | None = None, find_region: bool = False,
               reuse_samples: bool = False) -> FinishedCue:
    """The finishing chain for one candidate (channels-first samples at the backend's rate).

    `is_cancelled` is checked between steps and inside the long ones; `on_step()` is
    called after each of the first _FINISH_STEPS - 1 steps (writing is the last). With a
    `tempo_plan`, `request` is the planned one, and what the plan chose is measured as a check.
    `find_region`: the loop's place in the audio is chosen on its bar grid (audio.loop_region).
    `reuse_samples`: nothing reads `samples` afterwards, so finishing may work in them
    (finishing.frames_at_rate's reuse).
    """
    rate = request.sample_rate
    length = None if request.loop else target_length(request.duration, rate)
    frames = frames_at_rate(samples, source_rate, rate, resampler_quality(request.bit_depth), length,
                            is_cancelled=is_cancelled, reuse=reuse_samples)
    peak_gain = 1.0
    if not request.loop:
        peak_gain = _peak_safe(frames)
        _declick_edges(frames, rate)
    _raise_if_cancelled(is_cancelled)
    on_step()
    # One decimated mono signal serves both measurements (None: the user set both).
    checked = tempo_plan is not None and (tempo_plan.bpm_from != "request" or tempo_plan.key_from != "request")
    signal = analysis_signal(frames, rate) if checked or request.bpm is None or request.key is None else None
    tempo = _tempo_record(request, settings, signal, tempo_plan)
    _raise_if_cancelled(is_cancelled)
    key = _key_record(request, settings, signal, tempo_plan)
    _raise_if_cancelled(is_cancelled)
    plan = None
    region = None
    fold_rho = None
    warnings: list[str] = []
    if request.loop:
        bpm = tempo["used"]
        if bpm is None:
            raise GenerationFailed("the loop needs a tempo, and none could be measured from this audio; set the tempo")
        per_bar = int(settings.get("beats_per_bar") or beats_per_bar(request.time_signature))
        if find_region:
            bars_wanted = request.loop_bars or loops.fit_bars(request.duration, bpm, per_bar)
            region = loop_region.choose_loop_region(frames, rate, bpm, per_bar, bars_wanted, request.intro_bars,
                                                    loops.crossfade_frames(bpm, rate))
            frames = frames[region.offset :]
            _raise_if_cancelled(is_cancelled)
        plan = loops.plan_loop(bpm, per_bar, rate, bars=request.loop_bars, duration_s=request.duration,
                               available_frames=frames.shape[0], intro_bars=request.intro_bars)
        if region is not None:
            plan = replace(plan, source_offset=region.offset)
        wanted = request.loop_bars or loops.fit_bars(request.duration, bpm, per_bar)
        if request.loop_bars and plan.length / rate > request.duration + 0.5:
            warnings.append(f"{plan.bars} bars at {bpm:g} BPM take {plan.length / rate:.1f} s, so the cue is that "
                            f"long, not the {request.duration:g} s asked")
        if plan.bars < wanted:
            warnings.append(f"the loop is {plan.bars} bars, not the {wanted} nearest {request.duration:g} s: "
                            f"the backend made only {frames.shape[0] / rate:.1f} s at {bpm:g} BPM")
        if request.stems:
            fold_rho = loops.fold_correlation(frames, plan)
        frames = loops.fold(frames, plan)
        _raise_if_cancelled(is_cancelled)
    on_step()
    frames, report = finish_loudness(frames, rate, request.loudness_target_lufs(), request.true_peak_ceiling_db,
                                     # After an intro the seam is end -> start, not end -> 0: measured
                                     # and limited as a plain file (the limiter's gain is smooth there).
                                     circular=plan is not None and not plan.intro_bars, in_place=True,
                                     is_cancelled=is_cancelled)
    _raise_if_cancelled(is_cancelled)
    if plan is not None and request.output_format == "wav":
        frames = loops.with_guard_frame(frames, plan.start)
    on_step()
    return FinishedCue(frames=frames, loop=plan, loudness=report, tempo=tempo, key=key, warnings=warnings,
                       peak_gain=peak_gain, fold_rho=fold_rho, region=region.to_dict() if region else None)


def _peak_safe(frames: "np.ndarray") -> float:
    """Scale down in place (never up) so the sample peak sits at DEFAULT_PEAK_CEILING_DB
    (what finishing.apply_peak_ceiling does); returns the gain, which the stems get too."""
    import numpy as np

    peak = max(float(frames.max()), -float(frames.min())) if frames.size else 0.0
    ceiling = 10.0 ** (DEFAULT_PEAK_CEILING_DB / 20.0)
    if peak <= ceiling:
        return 1.0
    frames *= np.float32(ceiling / peak)
    return ceiling / peak


def finish_stem(samples: "np.ndarray", source_rate: int, request: GenerationRequest, cue: FinishedCue, *,
                is_cancelled: CancelCheck = never_cancelled) -> "np.ndarray":
    """One stem (channels-first at the backend's rate) through the mix's finishing with the
    mix's own gains: resampled and cut alike, the mix's peak-safe gain, the same declick or
    loop fold, the subsonic filter and the mix's loudness gain, but no limiter (it only
    touches the mix). Every step is linear, so stems that sum to the mix before finishing
    sum to the mix before its limiter. A WAV loop gets its guard frame."""
    import numpy as np

    rate = request.sample_rate
    length = None if request.loop else target_length(request.duration, rate)
    frames = frames_at_rate(samples, source_rate, rate, resampler_quality(request.bit_depth), length,
                            is_cancelled=is_cancelled)
    if cue.peak_gain != 1.0:
        frames *= np.float32(cue.peak_gain)
    if cue.loop is None:
        _declick_edges(frames, rate)
    else:
        frames = loops.fold(frames[cue.loop.source_offset :], cue.loop,
                            cue.fold_rho if cue.fold_rho is not None else 0.0)
    _raise_if_cancelled(is_cancelled)
    circular = cue.loop is not None and not cue.loop.intro_bars  # as the mix's (finish_cue)
    frames = remove_subsonic(frames, rate, circular=circular, is_cancelled=is_cancelled)
    frames *= np.float32(db_to_gain(cue.loudness.gain_db))
    if cue.loop is not None and request.output_format == "wav":
        frames = loops.with_guard_frame(frames, cue.loop.start)
    return frames


def _declick_edges(frames: "np.ndarray", rate: int) -> "np.ndarray":
    """Fade both ends in place (`frames` is finishing's own array)."""
    import numpy as np

    length = min(int(round(DECLICK_S * rate)), frames.shape[0] // 2)
    if length == 0:
        return frames
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)).astype(np.float32)[:, None]
    frames[:length] *= ramp
    frames[-length:] *= ramp[::-1]
    return frames


def write_cue(path: Path, cue: FinishedCue, request: GenerationRequest, info: dict[str, str], *,
              is_cancelled: CancelCheck = never_cancelled) -> LoudnessReport:
    """Write a finished cue (and a looped WAV's chunks) to `path`; returns the loudness as written.

    PCM is quantised first (writer.quantized), and the true peak and sample peak are
    measured on those very samples, the true peak at 8x. An Ogg file is decoded again and
    measured; if its true peak came out over the ceiling, it is turned down by the excess
    and encoded again. cue.frames and cue.loudness become the audio and the report as written.
    """
    import soundfile as sf

    fmt, rate = request.output_format, request.sample_rate
    looped = cue.loop is not None and not cue.loop.intro_bars  # measured end -> start only without an intro
    samples = quantized(cue.frames, fmt, request.bit_depth)
    for _ in range(_MAX_LOSSY_PASSES):
        write_audio(path, samples, rate, fmt, request.bit_depth, info, is_cancelled=is_cancelled)
        if fmt != "ogg":
            written = as_written(samples, out=cue.frames)  # the float frames are not needed any more
            break
        written, _ = sf.read(path, dtype="float32", always_2d=True)
        peak = true_peak_dbtp(written, looped, WRITTEN_PEAK_OVERSAMPLING, is_cancelled=is_cancelled)
        excess = peak - request.true_peak_ceiling_db
        if excess <= 0:
            break
        samples = (samples * 10.0 ** (-(excess + 0.1) / 20.0)).astype(samples.dtype)
    del samples
    _raise_if_cancelled(is_cancelled)
    if cue.loop is not None and fmt == "wav":
        plan = cue.loop
        markers = [CueMarker(plan.start, "Loop start (bar 1)"), CueMarker(plan.end_exclusive, "Loop end")]
        if plan.intro_bars:
            markers.insert(0, CueMarker(0, "Intro"))
        write_loop_chunks(path, WavLoop(plan.start, plan.end_exclusive), markers, rate, is_cancelled=is_cancelled)
    cue.frames = written
    cue.loudness = measured_as_written(written, cue, request, is_cancelled, true_peak=peak if fmt == "ogg" else None)
    return cue.loudness


# -- stems -------------------------------------------------------------------------------------

# Stems "sum exactly" when, as float samples before rounding to the file's bit depth, they
# miss the mix before its limiter by at most this much (float32 rounding is ~1e-7).
STEMS_SUM_TOLERANCE = 1e-6


@dataclass
class WrittenStem:
    track: str
    path: Path  # the final name (boss.drums.wav)
    temporary: Path  # where it waits until the whole run is written
    sample_peak_dbfs: float | None
    warning: str | None = None
    sidecar: dict = field(default_factory=dict)


@dataclass
class StemsWritten:
    stems: list[WrittenStem]
    max_difference: float  # the largest |sum of the stems - the mix before its limiter|
    residual_db: float | None  # energy of that difference against the mix's, in dB (None: no difference)


def stem_tracks_to_check(request: GenerationRequest) -> tuple[str, ...]:
    """The stems whose names must be free before a run: the asked-for tracks, else any track
    (which ones a backend plays is known only once it has)."""
    from acestep_core.request import TRACK_NAMES

    if not request.stems:
        return ()
    return tuple(request.tracks) if request.tracks else TRACK_NAMES


def _stems_by_extract(request: GenerationRequest, info: BackendInfo) -> bool:
    """True when this backend's stems come from one extract per track; raises InvalidRequest
    (before any work) when it can make stems neither way."""
    if info.supports_stems and request.task == "text2music":
        return False
    if "extract" in info.supports_tasks:
        return True
    from acestep_core.errors import FieldProblem, InvalidRequest

    if info.supports_stems:
        raise InvalidRequest([FieldProblem("stems", (
            f"the {info.name} backend makes stems only of music it makes itself; stems of other audio need an "
            f"ACE-Step base or sft checkpoint: run 'acestep-dcc download-model {BASE_REPO_ID}' and pass --model"))])
    raise InvalidRequest([FieldProblem("stems", (
        f"stems need the extract task, which {info.label} cannot do (ACE-Step's turbo checkpoints were not trained "
        f"for it): run 'acestep-dcc download-model {BASE_REPO_ID}' and pass that model, or use the sketch backend"))])


def _with_extracted_stems(backend: Backend, request: GenerationRequest, raw, seeds: list[int],
                          report: ProgressCallback, is_cancelled: CancelCheck):
    """RawAudio with stems made by one extract per track from each candidate's mix (raw),
    or, for request.task == "extract" (a file split into stems), from the source file,
    which then is the mix. Each stem is cut or padded to the mix's length."""
    import tempfile

    import numpy as np
    import soundfile as sf

    from acestep_core.backends.base import RawAudio
    from acestep_core.stems import DEFAULT_STEM_TRACKS

    tracks = tuple(request.tracks or DEFAULT_STEM_TRACKS)
    stems: dict[str, np.ndarray] = {}
    low = _GENERATE_SPAN[0] + (0.0 if raw is None else 0.2)
    runs = len(tracks) * len(seeds)
    with tempfile.TemporaryDirectory(prefix="acestep-dcc-stems-") as folder:
        for k, seed in enumerate(seeds):
            if raw is None:
                source = request.source_audio
            else:
                source = str(Path(folder) / f"mix-{k}.wav")
                sf.write(source, raw.samples[k].T, raw.sample_rate, subtype="FLOAT")
            for i, track in enumerate(tracks):
                _raise_if_cancelled(is_cancelled)
                done = k * len(tracks) + i
                span = (low + (_GENERATE_SPAN[1] - low) * done / runs, low + (_GENERATE_SPAN[1] - low) * (done + 1) / runs)
                stage = f"extracting {track} ({done + 1}/{runs})"
                part = backend.generate(_extract_request(request, track, source, seed), [seed],
                                        _scaled(lambda p, stage=stage: report(Progress(stage, p.fraction)), span),
                                        is_cancelled)
                if raw is None:  # the source, at the rate the model works at, is the mix
                    raw = RawAudio(_source_samples(source, part.sample_rate, len(seeds)), part.sample_rate,
                                   settings={"source_audio": Path(source).name})
                    raw.settings.update({f"{name}": value for name, value in part.settings.items()
                                         if name not in ("task", "track")})
                take = part.samples[0]
                if part.sample_rate != raw.sample_rate:
                    take = frames_at_rate(take, part.sample_rate, raw.sample_rate).T
                stem = stems.setdefault(track, np.zeros_like(raw.samples))
                count = min(take.shape[-1], stem.shape[-1])
                stem[k, : take.shape[0], :count] = take[:, :count]
    raw.stems = stems
    raw.settings["stems"] = list(tracks)
    raw.settings["stems_made_by"] = "one extract per track"
    return raw


def _extract_request(request: GenerationRequest, track: str, source: str, seed: int) -> GenerationRequest:
    return replace(request, task="extract", track=track, tracks=None, stems=False, source_audio=source,
                   reference_audio=None, candidates=1, seed=seed, loop=False, loop_bars=None,
                   repaint_start=None, repaint_end=None).validated()


def _source_samples(path: str, rate: int, candidates: int) -> "np.ndarray":
    """The source file as (candidates, 2, frames) float32 at `rate` (mono made stereo)."""
    import numpy as np
    import soundfile as sf

    data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    samples = frames_at_rate(np.ascontiguousarray(data[:, :2].T), file_rate, rate).T
    return np.repeat(samples[None], candidates, axis=0)


def write_stems(raw, k: int, cue: FinishedCue, request: GenerationRequest, mix_path: Path, staged: list[Path],
                info: dict[str, str], *, is_cancelled: CancelCheck = never_cancelled) -> StemsWritten:
    """Finish candidate k's stems like its mix (finish_stem) and write each to a temporary
    beside its final name (listed in `staged`), a looped WAV with the mix's smpl and cue
    chunks. Measures how far their sum misses the mix before its limiter."""
    import numpy as np

    fmt, rate = request.output_format, request.sample_rate
    # The mix through the stems' own chain: the mix before its limiter.
    residual = finish_stem(raw.samples[k], raw.sample_rate, request, cue, is_cancelled=is_cancelled)
    mix_energy = float(np.dot(residual.reshape(-1).astype(np.float64), residual.reshape(-1)))
    written = []
    for track, samples in raw.stems.items():
        frames = finish_stem(samples[k], raw.sample_rate, request, cue, is_cancelled=is_cancelled)
        residual -= frames
        final = stem_path(mix_path, track)
        temporary = temporary_path_beside(final)
        staged.append(temporary)
        peak = max(float(frames.max()), -float(frames.min())) if frames.size else 0.0
        warning = None
        if peak > 1.0:
            warning = (f"the {track} stem peaks at {20 * math.log10(peak):+.1f} dBFS and is clipped in "
                       f"{final.name}; ask for a lower loudness")
        quantised = quantized(frames, fmt, request.bit_depth)
        del frames
        write_audio(temporary, quantised, rate, fmt, request.bit_depth, info, is_cancelled=is_cancelled)
        if cue.loop is not None and fmt == "wav":
            plan = cue.loop
            markers = [CueMarker(plan.start, "Loop start (bar 1)"), CueMarker(plan.end_exclusive, "Loop end")]
            write_loop_chunks(temporary, WavLoop(plan.start, plan.end_exclusive), markers, rate,
                              is_cancelled=is_cancelled)
        written.append(WrittenStem(track, final, temporary, _finite_or_none(_written_peak_dbfs(quantised, request)),
                                   warning))
        del quantised
    _raise_if_cancelled(is_cancelled)
    difference = float(np.abs(residual).max()) if residual.size else 0.0
    left = float(np.dot(residual.reshape(-1).astype(np.float64), residual.reshape(-1)))
    residual_db = 10.0 * math.log10(left / mix_energy) if left > 0 and mix_energy > 0 else None
    return StemsWritten(written, difference, residual_db)


def _written_peak_dbfs(samples: "np.ndarray", request: GenerationRequest) -> float:
    """The sample peak of quantized() samples as a reader decodes them (no float copy)."""
    import numpy as np

    scale = pcm_scale(request.output_format, request.bit_depth)
    if not samples.size:
        return -math.inf
    largest = max(int(samples.max()), -int(samples.min())) if scale else float(np.abs(samples).max())
    if scale and request.bit_depth == 24:
        largest >>= 8  # quantized() keeps 24-bit samples in the top of an int32
    return 20.0 * math.log10(largest / (scale or 1.0)) if largest > 0 else -math.inf


def _remove_stale_stems(mix: Path, kept: list[str]) -> None:
    """After an overwrite: stems an earlier run left beside `mix` (their sidecars say they
    are its stems) no longer belong to it, and go."""
    from acestep_core.request import TRACK_NAMES
    from acestep_core.stems import recorded_sidecar

    for track in TRACK_NAMES:
        stale = stem_path(mix, track)
        if track not in kept and stale.is_file() and (recorded_sidecar(stale) or {}).get("stem_of") == mix.name:
            discard([stale, sidecar_path(stale)])


def _stems_record(written: StemsWritten, raw, cue: FinishedCue, request: GenerationRequest,
                  by_extract: bool) -> dict[str, Any]:
    """The mix sidecar's stems, whether they sum to it exactly, and what differs when not."""
    clipped = [stem.track for stem in written.stems if stem.warning]
    exact = written.max_difference <= STEMS_SUM_TOLERANCE and not clipped
    notes = []
    if clipped:
        notes.append(f"the {', '.join(clipped)} stem{'s are' if len(clipped) > 1 else ' is'} clipped in the file: "
                     "the mix's gain takes it past full scale")
    if raw.settings.get("stems_note"):
        notes.append(raw.settings["stems_note"])
    if by_extract:
        notes.append("the stems were extracted from the mix by the model, one extract per track, so they do not "
                     "sum to it exactly" + (f" (what is left over is {written.residual_db:.1f} dB under the mix)"
                                            if written.residual_db is not None else ""))
    elif not exact and not notes:
        notes.append(f"the stems miss the mix by up to {written.max_difference:.2g}")
    if cue.loudness.limiter_reduction_db > 0:
        notes.append(f"the limiter took up to {cue.loudness.limiter_reduction_db:.1f} dB off the mix's peaks and "
                     "leaves the stems alone, so the stems sum to the mix before limiting, not to its file")
    if request.output_format == "ogg":
        notes.append("Ogg Vorbis is lossy: the decoded stems sum to the decoded mix only approximately")
    else:
        notes.append(f"each file is rounded to {request.bit_depth} bits on its own, so the files sum to the mix "
                     "within half a step of the last bit per stem")
    return {
        "stems": [{"track": stem.track, "file": stem.path.name} for stem in written.stems],
        "stems_sum_exact": exact,
        "stems_sum": {"max_difference": written.max_difference, "residual_db": written.residual_db,
                      "tolerance": STEMS_SUM_TOLERANCE,
                      "compared_with": "the mix before its limiter, as float samples before rounding to the file",
                      "note": "; ".join(notes)},
    }


def _stem_sidecar(mix: dict, stem: WrittenStem, cue: FinishedCue, by_extract: bool) -> dict:
    """A stem's own sidecar: what it is part of, and the mix's format, loop and gains."""
    keep = ("software", "created", "backend", "licence", "request", "candidate", "candidates", "seed", "format",
            "duration_requested", "duration_written", "frames_written", "loop", "tempo", "key")
    return {
        "file": stem.path.name,
        "stem_of": mix["file"],
        "track": stem.track,
        "made_by": "extracted from the mix by the model (extract task)" if by_extract
                   else f"the {mix['backend']['name']} backend's own {stem.track} part",
        **{name: mix[name] for name in keep if name in mix},
        "gain": {"peak_safe": cue.peak_gain, "loudness_db": cue.loudness.gain_db,
                 "note": "the mix's own gains; the mix's limiter does not touch stems"},
        "sample_peak_dbfs": stem.sample_peak_dbfs,
        "warnings": [stem.warning] if stem.warning else [],
        "versions": mix.get("versions"),
    }


def measured_as_written(written: "np.ndarray", cue: FinishedCue, request: GenerationRequest,
                        is_cancelled: CancelCheck = never_cancelled, true_peak: float | None = None) -> LoudnessReport:
    """cue.loudness with its peaks (and, for Ogg, its loudness) measured on `written`, the
    samples a reader decodes from the file. A looped WAV is measured without its guard
    frame. `true_peak` is the true peak of `written` when the caller has measured it."""
    heard = written[: cue.loop.end_exclusive] if cue.loop is not None else written
    looped = cue.loop is not None and not cue.loop.intro_bars  # measured end -> start only without an intro
    peak = true_peak if true_peak is not None else true_peak_dbtp(heard, looped, WRITTEN_PEAK_OVERSAMPLING,
                                                                  known_peaks=cue.loudness.peaks_per_block,
                                                                  is_cancelled=is_cancelled)
    report = replace(cue.loudness, true_peak_dbtp=_finite_or_none(peak),
                     sample_peak_dbfs=_finite_or_none(sample_peak_dbfs(heard)))
    if request.output_format == "ogg":
        loudness = gated_loudness(block_powers(heard, request.sample_rate, is_cancelled=is_cancelled))
        report = replace(report, integrated_lufs=_finite_or_none(loudness))
    # PCM's loudness is finishing's own: rounding to 16 bits adds noise 80 dB or more under
    # any block the gates keep, which moves integrated loudness far less than 0.001 LU.
    return report


def cue_warnings(report: LoudnessReport) -> list[str]:
    """Sentences for what finishing could not do as asked (in the sidecar, the result, and on stderr)."""
    warnings = []
    target, reached, ceiling = report.target_lufs, report.integrated_lufs, report.ceiling_dbtp
    if target is not None and reached is None:
        warnings.append(f"the audio is silent, so it was not brought to {target:g} LUFS")
    elif target is not None and abs(reached - target) > LOUDNESS_WARNING_LU:
        if report.limiter_reduction_db > LOUDNESS_WARNING_LU:
            warnings.append(f"aimed for {target:g} LUFS, reached {reached:.1f} LUFS with "
                            f"{report.limiter_reduction_db:.1f} dB of limiting under the {ceiling:g} dBTP "
                            "ceiling; ask for a lower loudness or a higher true-peak ceiling")
        else:
            warnings.append(f"aimed for {target:g} LUFS, reached {reached:.1f} LUFS: the audio is nearly silent "
                            f"and was raised by at most {report.gain_db:.1f} dB")
    if report.true_peak_dbtp is not None and report.true_peak_dbtp > ceiling + 0.005:
        warnings.append(f"the file's true peak is {report.true_peak_dbtp:.2f} dBTP, over the {ceiling:g} dBTP "
                        "ceiling; ask for a lower loudness or a lower ceiling")
    return warnings


def _finite_or_none(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def _tempo_record(request: GenerationRequest, settings: dict, signal: "np.ndarray | None",
                  plan: TempoKeyPlan | None = None) -> dict[str, Any]:
    """`signal` is analysis_signal of the cue (None when nothing is measured).

    With a plan that chose the tempo, the measurement is a check: "agrees" when it is the
    plan or its half or double, "disagrees" otherwise; it is never used.
    """
    backend_bpm = settings.get("bpm") if isinstance(settings.get("bpm"), (int, float)) else None
    planned = plan is not None and plan.bpm_from != "request"
    measured = estimate_tempo(signal, ANALYSIS_RATE) if signal is not None and (planned or request.bpm is None) else None
    record: dict[str, Any] = {"requested": None if planned else request.bpm, "backend": backend_bpm}
    if planned:
        used, source = plan.bpm, "plan"
        record.update(planned=plan.bpm, planned_from=plan.bpm_from)
    elif request.bpm is not None:
        used, source = float(request.bpm), "request"
    elif backend_bpm:
        used, source = float(backend_bpm), "backend"
    elif measured is not None:
        used, source = measured.bpm, "measured"
    else:
        used, source = None, None
    record.update(measured=measured.bpm if measured else None,
                  measured_confidence=measured.confidence if measured else None, used=used, source=source)
    if planned and measured is not None:
        record["check"] = "agrees" if tempo_agrees(plan.bpm, measured.bpm) else "disagrees"
    return record


def _key_record(request: GenerationRequest, settings: dict, signal: "np.ndarray | None",
                plan: TempoKeyPlan | None = None) -> dict[str, Any]:
    """`signal` is analysis_signal of the cue (None when nothing is measured)."""
    backend_key = settings.get("key") if isinstance(settings.get("key"), str) else None
    planned = plan is not None and plan.key_from != "request"
    measured = estimate_key(signal, ANALYSIS_RATE) if signal is not None and (planned or request.key is None) else None
    record: dict[str, Any] = {"requested": None if planned else request.key, "backend": backend_key}
    if planned:
        used, source = plan.key, "plan"
        record.update(planned=plan.key, planned_from=plan.key_from)
    else:
        used = request.key or backend_key or (measured.key if measured else None)
        source = "request" if request.key else "backend" if backend_key else "measured" if measured else None
    record.update(measured=measured.key if measured else None,
                  measured_correlation=measured.correlation if measured else None, used=used, source=source)
    if planned and measured is not None:
        record["check"] = "agrees" if measured.key == plan.key else "disagrees"
    return record


def _loop_record(cue: FinishedCue, request: GenerationRequest) -> dict[str, Any] | None:
    plan = cue.loop
    if plan is None:
        return None
    record = {
        "loop_start": plan.start,
        "loop_end_exclusive": plan.end_exclusive,
        "loop_length": plan.length,
        "bars": plan.bars,
        "intro_bars": plan.intro_bars,
        "intro_frames": plan.start,
        "region": cue.region,
        "bpm": plan.bpm,
        "beats_per_bar": plan.beats_per_bar,
        "bar_lines": plan.bar_lines(),
        "crossfade_frames": plan.crossfade,
        "frames_in_file": int(cue.frames.shape[0]),
        "convention": LOOP_CONVENTION,
    }
    if request.output_format == "wav":
        record.update(smpl_start=plan.start, smpl_end=plan.end_exclusive, guard_frame=plan.end_exclusive)
    if plan.intro_bars:
        record["engines"] = intro_guidance(plan, request.output_format)
    return record


def intro_guidance(plan: loops.LoopPlan, output_format: str) -> dict[str, str]:
    """How each engine plays the intro once and then loops the body of this file."""
    seconds = f"{plan.start / plan.sample_rate:.6f}"
    if output_format == "wav":
        smpl = "reads the smpl loop: the intro plays once, then the loop repeats"
        return {"godot": f"import as is: Godot {smpl}", "wwise": f"import as is: Wwise {smpl}",
                "fmod": f"FMOD Core {smpl}; in FMOD Studio put a loop region from {seconds} s to the end",
                "unreal": f"a Sound Wave's loop regions come from the smpl loop where your version imports them; "
                          f"else loop from {seconds} s",
                "unity": f"Unity ignores smpl loops: play the file, then loop from {seconds} s "
                         f"(AudioSource.timeSamples = {plan.start}) or cut it in two at frame {plan.start}"}
    two_files = f"cut it in two at frame {plan.start} ({seconds} s): an intro file, then a looping body file"
    return {
        "godot": (f"AudioStreamOggVorbis: loop = true, loop_offset = {seconds}" if output_format == "ogg"
                  else f"Godot does not loop FLAC: {two_files}, or write WAV or Ogg"),
        "fmod": f"a loop region from {seconds} s to the end on the event's timeline, or {two_files}",
        "wwise": f"{two_files} (a music segment with a pre-entry, or a sequence of the two)",
        "unreal": f"{two_files} (or write WAV: Unreal reads its smpl loop)",
        "unity": f"{two_files}, or loop from AudioSource.timeSamples = {plan.start}",
    }


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


def package_versions() -> dict[str, str]:
    """Versions of the packages that made the file: those this process has imported (the
    sketch path never imports torch, so a sketch file names none). Read from the modules
    themselves; importlib.metadata would add 13 ms to a one-shot run's start-up."""
    versions = {"acestep-dcc": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "numpy", "soundfile", "soxr"):
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "__version__", None), str):
            versions[name] = module.__version__
    return versions


def _sidecar(request: GenerationRequest, info: BackendInfo, settings: dict, index: int, seed: int,
             path: Path, cue: FinishedCue, created: str, plan: TempoKeyPlan | None = None) -> dict:
    """`request` as the user asked it; `plan` what was chosen for what it left open."""
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
        "licence": backend_licence(info),  # the model card's, acestep-dcc's for the sketch, or "unknown"
        # A refinement's lineage is said once, at the top (acestep_core.refine reads both back).
        "request": {**request.to_dict(), "lineage": None},
        **({"lineage": request.lineage} if request.lineage else {}),
        "plan": plan.to_dict() if plan is not None else None,
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
        "loudness": {**cue.loudness.to_dict(), "true_peak_oversampling": WRITTEN_PEAK_OVERSAMPLING,
                     "measured_on": "the samples as written"},
        "warnings": list(cue.warnings),
        # The prompt's library words the backend did not play (the sketch reports them; a
        # model hears the prompt's text itself, so there is nothing to report).
        **({"not_rendered": list(settings["not_rendered"])} if "not_rendered" in settings else {}),
        # The style pack applied (acestep_core.packs): its name, adapter hash and scale.
        **({"style": settings["style"]} if "style" in settings else {}),
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
    if request.lineage:
        parts.append(f"refined from: {request.lineage['parent_file']}")
    licence = backend_licence(info)["summary"]
    parts.append(f"licence: {licence}")
    return {
        "title": request.prompt[:250],
        "comment": "; ".join(parts),
        "copyright": licence[:250],
        "software": SOFTWARE,
        "date": created[:10],
        "genre": "Soundtrack",
    }
