"""Dynamic-music sets: matched loops at rising intensity, stingers, and a manifest for engines.

    build_dynamic_set(GenerationRequest(prompt="boss battle, rock"), backend, Path("out/boss"),
                      intensities=3, bars=16, stingers=2)

1. The base cue: a loop of `bars` bars (or the whole bars nearest the request's duration).
   Its tempo, key and loop length fix the set's.
2. One loop per intensity level, 0 (sparsest) .. 1 (fullest), all with the base's tempo,
   key, bar count and seed, so their loop points are the same frames:
   - a backend with the cover task (ACE-Step) covers the base cue with the level's words
     added to the prompt; the source is the base loop run on for one more bar, so the
     cover has the music's own continuation to fold over its seam;
   - otherwise (sketch) the request carries `intensity` and the same seed, key and tempo,
     and the backend re-arranges the same progression with more or fewer layers.
3. Stingers: short cues (two bars and a two-beat ring-out) in the same key and tempo.
4. The manifest (JSON) and a Godot 4 AudioStreamInteractive resource (.tres) beside it.

Files are written by generate_cues (each one atomically); if any step fails, the files
this call wrote are removed again, and the manifest is written last. Every file of the set
is checked before anything is generated: taken names are refused (existing="refuse"),
replaced ("overwrite"), or the set takes the first free numbered name ("number": boss_2-base.wav).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from acestep_core.backends.base import Backend
from acestep_core.errors import FieldProblem, GenerationFailed, InvalidRequest
from acestep_core.generation import EXISTING_CHOICES, SOFTWARE, draw_seed, ensure_output_folder, generate_cues
from acestep_core.jobs import CueOutput
from acestep_core.output_names import MAX_NUMBER, existing as existing_paths, refuse_existing, with_sidecars
from acestep_core.progress import CancelCheck, Progress, ProgressCallback, ignore_progress, never_cancelled
from acestep_core.audio.writer import discard, output_run, temporary_path_beside, write_json_atomic, write_text_atomic
from acestep_core.request import (
    MAX_SET_INTENSITIES, MAX_SET_STINGERS, GenerationRequest, set_option_problems, slug_from_prompt,
)

MAX_INTENSITIES = MAX_SET_INTENSITIES
MAX_STINGERS = MAX_SET_STINGERS
STINGER_BARS = 2
STINGER_RING_OUT_BEATS = 2
# Words added to an ACE-Step cover's prompt, from the sparsest level to the fullest.
INTENSITY_WORDS = (
    (0.34, "sparse, minimal arrangement, soft, low energy"),
    (0.67, "steady groove, medium energy"),
    (1.01, "full arrangement, driving drums, high energy, intense"),
)
# How closely an ACE-Step cover follows the base cue: enough to keep its melody and
# structure, loose enough to let the arrangement grow.
COVER_STRENGTH = 0.6
# Godot's AudioStreamInteractive enums (modules/interactive_music/audio_stream_interactive.h).
_GODOT_FROM_NEXT_BAR = 2
_GODOT_TO_SAME_POSITION = 0
_GODOT_FADE_CROSS = 3
_GODOT_CLIP_ANY = -1


@dataclass
class DynamicSet:
    """What build_dynamic_set wrote."""

    manifest_path: Path
    godot_resource_path: Path | None
    base: CueOutput
    layers: list[CueOutput]
    stingers: list[CueOutput]
    manifest: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        paths = [self.manifest_path] + ([self.godot_resource_path] if self.godot_resource_path else [])
        for cue in [self.base, *self.layers, *self.stingers]:
            paths += [Path(cue.path), Path(cue.sidecar_path)]
        return paths

    @property
    def warnings(self) -> list[str]:
        """Every cue's warnings, each after its file's name."""
        return [f"{Path(cue.path).name}: {text}" for cue in [self.base, *self.layers, *self.stingers]
                for text in cue.warnings]


@dataclass(frozen=True)
class SetPaths:
    """Where a set's files go: audio (each with its x.wav.json sidecar), manifest and Godot resource."""

    base: Path
    layers: list[Path]
    stingers: list[Path]
    manifest: Path
    godot_resource: Path

    def all(self) -> list[Path]:
        return with_sidecars([self.base, *self.layers, *self.stingers]) + [self.manifest, self.godot_resource]


def set_paths(folder: Path, stem: str, output_format: str, intensities: int, stingers: int) -> SetPaths:
    folder = Path(folder)
    return SetPaths(
        base=folder / f"{stem}-base.{output_format}",
        layers=[folder / f"{stem}-intensity-{k}.{output_format}" for k in range(1, intensities + 1)],
        stingers=[folder / f"{stem}-stinger-{k}.{output_format}" for k in range(1, stingers + 1)],
        manifest=folder / f"{stem}-set.json",
        godot_resource=folder / f"{stem}-set.tres",
    )


def free_set_paths(folder: Path, stem: str, output_format: str, intensities: int, stingers: int,
                   existing: str = "refuse") -> SetPaths:
    """set_paths for `stem`; a taken file is refused, replaced, or (number) the set is
    named after the first free of stem, stem_2, stem_3, ..."""
    if existing not in EXISTING_CHOICES:
        raise ValueError(f"existing must be one of {', '.join(EXISTING_CHOICES)}, got {existing!r}")
    paths = set_paths(folder, stem, output_format, intensities, stingers)
    if existing == "refuse":
        refuse_existing([paths.base, *paths.layers, *paths.stingers])
        # The manifest and Godot resource have no sidecars of their own.
        taken = existing_paths([paths.manifest, paths.godot_resource])
        if taken:
            refuse_existing(taken[:1])
    elif existing == "number":
        for number in range(1, MAX_NUMBER + 1):
            paths = set_paths(folder, stem if number == 1 else f"{stem}_{number}", output_format, intensities, stingers)
            if not existing_paths(paths.all()):
                break
        else:
            raise InvalidRequest([FieldProblem("output", (
                f"{folder} already holds {MAX_NUMBER} sets named {stem}; choose another name or folder"))])
    return paths


def intensity_levels(count: int) -> list[float]:
    """3 -> [0.0, 0.5, 1.0]; 1 -> [1.0]."""
    if count == 1:
        return [1.0]
    return [round(k / (count - 1), 4) for k in range(count)]


def intensity_words(intensity: float) -> str:
    return next(words for upper, words in INTENSITY_WORDS if intensity < upper)


def build_dynamic_set(
    request: GenerationRequest,
    backend: Backend,
    folder: Path,
    *,
    intensities: int = 3,
    bars: int | None = 16,
    stingers: int = 2,
    name: str | None = None,
    on_progress: ProgressCallback = ignore_progress,
    is_cancelled: CancelCheck = never_cancelled,
    existing: str = "refuse",
) -> DynamicSet:
    """Generate a matched set into `folder` (see the module doc). `request` gives the prompt,
    format, loudness and, optionally, tempo, key and seed; `bars` None fits its duration.
    `existing` is what to do when a file of the set is already there (free_set_paths)."""
    problems = set_option_problems(intensities, stingers)
    if problems:
        raise InvalidRequest(problems)
    seed = request.seed if request.seed is not None else draw_seed()
    base_request = replace(request, loop=True, loop_bars=bars, seed=seed, candidates=1, intensity=None,
                           task="text2music", source_audio=None, file_name=None).validated()
    folder = Path(folder)
    ensure_output_folder(folder)
    paths = free_set_paths(folder, name or slug_from_prompt(request.prompt), base_request.output_format,
                           intensities, stingers, existing)
    # Every name was checked above; the cues themselves only guard against a race.
    cue_existing = "overwrite" if existing == "overwrite" else "refuse"
    steps = 1 + intensities + stingers
    written: list[CueOutput] = []
    temporary: list[Path] = []
    resource_path = paths.godot_resource
    manifest_path = paths.manifest

    def generate(step: int, job: GenerationRequest, path: Path) -> CueOutput:
        def report(progress: Progress) -> None:
            on_progress(Progress(f"{job_label(step)}: {progress.stage}", (step + progress.fraction) / steps))

        (cue,) = generate_cues(job, backend, path, on_progress=report, is_cancelled=is_cancelled,
                               existing=cue_existing)
        written.append(cue)
        return cue

    def job_label(step: int) -> str:
        if step == 0:
            return "base cue"
        if step <= intensities:
            return f"intensity {step}/{intensities}"
        return f"stinger {step - intensities}/{stingers}"

    try:
        with output_run():  # a set is one run: an exit at once removes its finished cues too
            base = generate(0, base_request, paths.base)
            loop = base.metadata["loop"]
            bpm, key = loop["bpm"], base.metadata["key"]["used"]
            per_bar = loop["beats_per_bar"]
            matched = replace(base_request, bpm=bpm, key=key, loop_bars=loop["bars"]).validated()

            uses_cover = "cover" in backend.describe().supports_tasks
            cover_source = None
            if uses_cover:
                cover_source = _write_cover_source(Path(base.path), loop)
                temporary.append(cover_source)
            layers = []
            for level, intensity in enumerate(intensity_levels(intensities), start=1):
                job = replace(matched, intensity=intensity)
                if uses_cover:
                    job = replace(job, task="cover", source_audio=str(cover_source), cover_strength=COVER_STRENGTH,
                                  prompt=f"{request.prompt}, {intensity_words(intensity)}")
                layers.append(generate(level, job, paths.layers[level - 1]))

            stinger_cues = []
            stinger_s = (STINGER_BARS * per_bar + STINGER_RING_OUT_BEATS) * 60.0 / bpm
            for index in range(1, stingers + 1):
                job = replace(matched, loop=False, loop_bars=None, intensity=1.0, duration=round(stinger_s, 6),
                              seed=(seed + 100 + index) % (2**32))
                stinger_cues.append(generate(intensities + index, job, paths.stingers[index - 1]))

            _check_matched(base, layers)
            manifest = set_manifest(request, backend, seed, base, layers, stinger_cues, resource_path.name,
                                    uses_cover)
            write_text_atomic(resource_path, godot_interactive_resource(layers, folder, manifest))
            write_json_atomic(manifest_path, manifest)
    except BaseException:
        for cue in written:
            discard([Path(cue.path), Path(cue.sidecar_path)])
        discard([resource_path])
        raise
    finally:
        discard(temporary)
    on_progress(Progress("done", 1.0))
    return DynamicSet(manifest_path=manifest_path, godot_resource_path=resource_path, base=base, layers=layers,
                      stingers=stinger_cues, manifest=manifest)


def _write_cover_source(base_path: Path, loop: dict) -> Path:
    """The base loop followed by its first bar again: what the loop sounds like running on.
    A hidden temporary beside the base cue, removed when the set is done."""
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(base_path, dtype="float32", always_2d=True)
    cycle = audio[loop["loop_start"] : loop["loop_end_exclusive"]]
    bar = loop["bar_lines"][1] if len(loop["bar_lines"]) > 1 else cycle.shape[0]
    run_on = np.concatenate([cycle, cycle[:bar]], axis=0)
    path = temporary_path_beside(base_path.with_name(f"{base_path.stem}.cover-source"), suffix=".wav")
    sf.write(path, run_on, rate, subtype="FLOAT", format="WAV")
    return path


def _check_matched(base: CueOutput, layers: list[CueOutput]) -> None:
    reference = base.metadata["loop"]
    for cue in layers:
        loop = cue.metadata["loop"]
        same = all(loop[k] == reference[k] for k in ("loop_start", "loop_end_exclusive", "bars", "bpm"))
        if not same or cue.metadata["frames_written"] != base.metadata["frames_written"]:
            raise GenerationFailed(
                f"{Path(cue.path).name} does not match the base cue's loop ({loop['loop_end_exclusive']} vs "
                f"{reference['loop_end_exclusive']} frames); this is a bug in acestep-dcc, please report it"
            )


def set_manifest(request: GenerationRequest, backend: Backend, seed: int, base: CueOutput,
                 layers: list[CueOutput], stingers: list[CueOutput], godot_resource: str | None,
                 uses_cover: bool) -> dict[str, Any]:
    """The set as JSON: files, tempo, key, bars, loop points in frames, and the intensity order,
    with the same facts spelled the way FMOD, Wwise and Godot name them."""
    loop = base.metadata["loop"]
    info = backend.describe()
    fmt = base.metadata["format"]
    honours_intensity = uses_cover or any("intensity" in cue.metadata.get("settings", {}) for cue in layers)
    level_names = [f"Intensity {k}" for k in range(1, len(layers) + 1)]
    meter = request.time_signature or "4/4"
    loop_points = {
        "loop_start": loop["loop_start"],
        "loop_end_exclusive": loop["loop_end_exclusive"],
        "loop_length": loop["loop_length"],
        "loop_seconds": loop["loop_length"] / fmt["sample_rate"],
    }
    if "smpl_end" in loop:
        loop_points["smpl_end"] = loop["smpl_end"]
    return {
        "kind": "acestep-dcc dynamic music set",
        "version": 1,
        "software": SOFTWARE,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "prompt": request.prompt,
        "backend": {"name": info.name, "label": info.label, "model_id": info.model_id},
        "seed": seed,
        "bpm": loop["bpm"],
        "bpm_source": base.metadata["tempo"]["source"],
        "key": base.metadata["key"]["used"],
        "key_source": base.metadata["key"]["source"],
        "time_signature": meter,
        "beats_per_bar": loop["beats_per_bar"],
        "bars": loop["bars"],
        "bar_lines": loop["bar_lines"],
        "format": fmt,
        "loop": loop_points,
        "loop_convention": loop["convention"],
        "arrangement": ("cover of the base cue per level" if uses_cover else
                        "same seed, key and tempo; layers by intensity" if honours_intensity else
                        "same seed, key and tempo; this backend does not vary its arrangement by intensity yet"),
        "warnings": [f"{Path(cue.path).name}: {text}" for cue in [base, *layers, *stingers] for text in cue.warnings],
        "base": _cue_entry(base),
        "intensity_order": [Path(cue.path).name for cue in layers],
        "layers": [
            {**_cue_entry(cue), "level": k, "name": level_names[k - 1], "intensity": cue.metadata["request"]["intensity"]}
            for k, cue in enumerate(layers, start=1)
        ],
        "stingers": [{**_cue_entry(cue), "name": f"Stinger {k}"} for k, cue in enumerate(stingers, start=1)],
        "engines": {
            "fmod": {
                "parameter": {"name": "Intensity", "type": "labeled", "labels": level_names,
                              "minimum": 0, "maximum": len(layers) - 1},
                "timeline": {"tempo_marker_bpm": loop["bpm"], "time_signature": meter,
                             "loop_region_samples": [loop["loop_start"], loop["loop_end_exclusive"]]},
                "instruments": [Path(cue.path).name for cue in layers],
            },
            "wwise": {
                "state_group": "Intensity",
                "states": [name.replace(" ", "_") for name in level_names],
                "music_segments": [{"file": Path(cue.path).name, "state": name.replace(" ", "_"),
                                    "entry_cue_samples": loop["loop_start"],
                                    "exit_cue_samples": loop["loop_end_exclusive"]}
                                   for cue, name in zip(layers, level_names)],
                "tempo": loop["bpm"],
                "time_signature": meter,
            },
            "godot": {
                "resource": godot_resource,
                "class": "AudioStreamInteractive",
                "clips": level_names,
                "initial_clip": 0,
                "switch": "AudioStreamPlaybackInteractive.switch_to_clip_by_name(name)",
            },
        },
    }


def _cue_entry(cue: CueOutput) -> dict[str, Any]:
    metadata = cue.metadata
    loudness = metadata.get("loudness") or {}
    return {
        "file": Path(cue.path).name,
        "sidecar": Path(cue.sidecar_path).name,
        "seed": cue.seed,
        "frames": metadata["frames_written"],
        "seconds": round(metadata["duration_written"], 6),
        "integrated_lufs": loudness.get("integrated_lufs"),
        "true_peak_dbtp": loudness.get("true_peak_dbtp"),
        "warnings": list(cue.warnings),
    }


def godot_interactive_resource(layers: list[CueOutput], folder: Path, manifest: dict[str, Any]) -> str:
    """A Godot 4 text resource (format=3) for an AudioStreamInteractive over the layers.

    Property names and enum values are those AudioStreamInteractive binds in Godot 4.3+
    (clip_count, clip_N/name, clip_N/stream, clip_N/auto_advance, initial_clip, and the
    _transitions dictionary keyed by Vector2i(from, to), -1 meaning any clip). Stream paths
    are relative to the .tres, which Godot's text resource loader resolves against the
    file's own folder, so the set can be copied anywhere inside a project. Transitions:
    any -> any at the next bar, to the same position, with a one-beat crossfade; Godot
    syncs to bars only for streams that report a BPM, otherwise it crossfades at once.
    """
    lines = [f'[gd_resource type="AudioStreamInteractive" load_steps={len(layers) + 1} format=3]', ""]
    for k, cue in enumerate(layers, start=1):
        relative = os.path.relpath(cue.path, folder).replace(os.sep, "/")
        lines.append(f'[ext_resource type="AudioStream" path="{_godot_string(relative)}" id="{k}_intensity"]')
    lines += ["", "[resource]", f"clip_count = {len(layers)}"]
    for index, layer in enumerate(manifest["layers"]):
        lines += [
            f'clip_{index}/name = &"{_godot_string(layer["name"])}"',
            f'clip_{index}/stream = ExtResource("{index + 1}_intensity")',
            f"clip_{index}/auto_advance = 0",
        ]
    lines += [
        "initial_clip = 0",
        "_transitions = {",
        f"Vector2i({_GODOT_CLIP_ANY}, {_GODOT_CLIP_ANY}): {{",
        '"fade_beats": 1.0,',
        f'"fade_mode": {_GODOT_FADE_CROSS},',
        f'"from_time": {_GODOT_FROM_NEXT_BAR},',
        f'"to_time": {_GODOT_TO_SAME_POSITION}',
        "}",
        "}",
        "",
    ]
    return "\n".join(lines)


def _godot_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
