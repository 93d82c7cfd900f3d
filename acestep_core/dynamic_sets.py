"""Dynamic-music sets: layers or variants of one loop, stingers, and a manifest for engines.

    build_dynamic_set(GenerationRequest(prompt="boss battle, rock"), backend, Path("out/boss"),
                      intensities=3, bars=16, stingers=2)                  # layers (vertical)
    build_dynamic_set(..., intensities=3, mode="variants")                 # variants (horizontal)

Layers (mode "layers", `set --intensities N`): vertical remixing, as FMOD and Wwise do it.
1. The base cue: a loop of `bars` bars (or the whole bars nearest the request's duration),
   made with its stems (acestep_core.generation: the sketch renders its own parts; the
   acestep backend extracts each part with a base or sft checkpoint). Its tempo, key and
   loop fix the set's.
2. The parts are ordered from the bed up (LAYER_ORDER: harmony, then bass, then drums,
   then leads) and grouped into N layers, layer 1 with the fewest parts. Each layer file
   is a STEM: only the parts it adds, summed sample for sample from the base's stems, on
   the base's sample grid, length and loop points. Level k of the music is layers 1..k
   played together from the same sample; all N together are the base mix (before its
   limiter). The per-part stems themselves are not kept: the layer files are the set's stems.
   When the mix plays fewer parts than N layers, a base/sft checkpoint adds parts with lego
   over the mix (LEGO_TRACKS); otherwise the set has fewer layers, and says so.
3. A backend that can make no stems (an ACE-Step turbo checkpoint) makes variants instead,
   and the manifest says so ("layers": null, "fallback": the sentence).

Variants (mode "variants", `set --variants N`): horizontal re-sequencing, one loop per
intensity level, 0 (sparsest) .. 1 (fullest), all with the base's tempo, key, bar count and
seed, so their loop points are the same frames:
   - a backend with the cover task (ACE-Step) covers the base cue with the level's words
     added to the prompt; the source is the base loop run on for one more bar, so the
     cover has the music's own continuation to fold over its seam;
   - otherwise (sketch) the request carries `intensity` and the same seed, key and tempo,
     and the backend re-arranges the same progression with more or fewer parts.

Both: stingers (short cues, two bars and a two-beat ring-out, in the same key and tempo),
the manifest (JSON, with FMOD, Wwise and Godot mappings) and Godot 4 resources: for layers
an AudioStreamSynchronized (NAME-layers.tres), and always an AudioStreamInteractive
(NAME-set.tres) whose clips are the layers (as one clip) or the variants, and the stingers.

Files are written by generate_cues (each one atomically); if any step fails, the files
this call wrote are removed again, and the manifest is written last. Every file of the set
is checked before anything is generated: taken names are refused (existing="refuse"),
replaced ("overwrite"), or the set takes the first free numbered name ("number": boss_2-base.wav).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from acestep_core.backends.base import Backend, BackendInfo
from acestep_core.errors import FieldProblem, GenerationFailed, InvalidRequest
from acestep_core.generation import EXISTING_CHOICES, SOFTWARE, draw_seed, ensure_output_folder, generate_cues
from acestep_core.jobs import CueOutput
from acestep_core.output_names import (
    MAX_NUMBER, existing as existing_paths, refuse_existing, sidecar_path, stem_path, with_sidecars, with_stems,
)
from acestep_core.progress import CancelCheck, Progress, ProgressCallback, ignore_progress, never_cancelled
from acestep_core.audio.writer import (
    discard, output_run, put_in_place, temporary_path_beside, write_json_atomic, write_text_atomic,
)
from acestep_core.request import (
    MAX_SET_INTENSITIES, MAX_SET_STINGERS, TRACK_NAMES, GenerationRequest, set_option_problems, slug_from_prompt,
)

MAX_INTENSITIES = MAX_SET_INTENSITIES
MAX_STINGERS = MAX_SET_STINGERS
LAYERS = "layers"
VARIANTS = "variants"
SET_MODES = (LAYERS, VARIANTS)
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
# Layers bring parts in from the bed up: harmony and texture first, then the low end and
# the groove, then the leads. Every ACE-Step track name has its place.
LAYER_ORDER = ("keyboard", "strings", "synth", "fx", "woodwinds", "bass", "percussion", "drums", "guitar",
               "brass", "backing_vocals", "vocals")
assert sorted(LAYER_ORDER) == sorted(TRACK_NAMES)
# Where the backend says which parts each stem plays (the sketch's settings["stem_parts"]),
# a stem comes in with the earliest of its parts: the lowest energy it plays from, then
# the most basic role (pads and chords, then the groove, then the figures and the lead).
ROLE_ORDER = ("pad", "chords", "texture", "bass", "drums", "percussion", "arp", "lead")
# What a base or sft checkpoint extracts from the set's mix (one extract each), and the
# parts lego may add over the mix when it plays fewer parts than the set has layers.
LAYER_EXTRACT_TRACKS = ("keyboard", "synth", "bass", "drums", "guitar")
LEGO_TRACKS = ("strings", "percussion", "brass", "woodwinds", "fx")
# A part whose energy is this far under the mix's is not played (an extract of a part the
# mix does not have comes back near silent), and does not make a layer.
SILENT_PART_DB = -45.0
# Godot's AudioStreamInteractive enums (modules/interactive_music/audio_stream_interactive.h).
_GODOT_FROM_NEXT_BAR = 2
_GODOT_FROM_END = 3
_GODOT_TO_SAME_POSITION = 0
_GODOT_TO_START = 1
_GODOT_TO_PREVIOUS_POSITION = 2
_GODOT_FADE_OUT = 2
_GODOT_FADE_CROSS = 3
_GODOT_AUTO_ADVANCE_RETURN_TO_HOLD = 2
_GODOT_CLIP_ANY = -1
# AudioStreamSynchronized's per-stream volume in dB: a layer above the starting level is
# written at the editor's lowest volume, so the resource starts at level 1.
GODOT_LAYER_ON_DB = 0.0
GODOT_LAYER_OFF_DB = -60.0


@dataclass
class DynamicSet:
    """What build_dynamic_set wrote. `layers` are the level files: the layer stems (mode
    "layers") or the variants (mode "variants", also a layered request's fallback)."""

    manifest_path: Path
    godot_resource_path: Path | None
    base: CueOutput
    layers: list[CueOutput]
    stingers: list[CueOutput]
    manifest: dict[str, Any] = field(default_factory=dict)
    mode: str = VARIANTS
    godot_layers_path: Path | None = None

    def files(self) -> list[Path]:
        paths = [self.manifest_path] + [p for p in (self.godot_resource_path, self.godot_layers_path) if p]
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
    """Where a set's files go: audio (each with its x.wav.json sidecar), manifest and Godot
    resources. `parts` are the base's per-part stems, written while the layers are made
    and removed once they are (mode "layers" only)."""

    base: Path
    layers: list[Path]
    stingers: list[Path]
    manifest: Path
    godot_resource: Path
    godot_layers: Path | None = None
    parts: tuple[Path, ...] = ()

    def all(self) -> list[Path]:
        extra = [self.godot_layers] if self.godot_layers else []
        return (with_sidecars([self.base, *self.layers, *self.stingers, *self.parts])
                + [self.manifest, self.godot_resource] + extra)


def set_paths(folder: Path, stem: str, output_format: str, intensities: int, stingers: int,
              mode: str = VARIANTS) -> SetPaths:
    """boss-base.wav, then boss-layer-1.wav ... (layers) or boss-intensity-1.wav ...
    (variants), boss-stinger-1.wav ..., boss-set.json, boss-set.tres (and boss-layers.tres)."""
    folder = Path(folder)
    base = folder / f"{stem}-base.{output_format}"
    word = "layer" if mode == LAYERS else "intensity"
    return SetPaths(
        base=base,
        layers=[folder / f"{stem}-{word}-{k}.{output_format}" for k in range(1, intensities + 1)],
        stingers=[folder / f"{stem}-stinger-{k}.{output_format}" for k in range(1, stingers + 1)],
        manifest=folder / f"{stem}-set.json",
        godot_resource=folder / f"{stem}-set.tres",
        godot_layers=folder / f"{stem}-layers.tres" if mode == LAYERS else None,
        parts=tuple(with_stems([base], TRACK_NAMES)[1:]) if mode == LAYERS else (),
    )


def free_set_paths(folder: Path, stem: str, output_format: str, intensities: int, stingers: int,
                   existing: str = "refuse", mode: str = VARIANTS) -> SetPaths:
    """set_paths for `stem`; a taken file is refused, replaced, or (number) the set is
    named after the first free of stem, stem_2, stem_3, ..."""
    if existing not in EXISTING_CHOICES:
        raise ValueError(f"existing must be one of {', '.join(EXISTING_CHOICES)}, got {existing!r}")
    if mode not in SET_MODES:
        raise ValueError(f"mode must be one of {', '.join(SET_MODES)}, got {mode!r}")
    paths = set_paths(folder, stem, output_format, intensities, stingers, mode)
    if existing == "refuse":
        refuse_existing([paths.base, *paths.layers, *paths.stingers, *paths.parts])
        # The manifest and Godot resources have no sidecars of their own.
        taken = existing_paths([paths.manifest, paths.godot_resource] + ([paths.godot_layers] if paths.godot_layers else []))
        if taken:
            refuse_existing(taken[:1])
    elif existing == "number":
        for number in range(1, MAX_NUMBER + 1):
            paths = set_paths(folder, stem if number == 1 else f"{stem}_{number}", output_format, intensities,
                              stingers, mode)
            if not existing_paths(paths.all()):
                break
        else:
            raise InvalidRequest([FieldProblem("output", (
                f"{folder} already holds {MAX_NUMBER} sets named {stem}; choose another name or folder"))])
    return paths


def layering(info: BackendInfo) -> str | None:
    """How this backend makes a set's layers: "stems" (it plays its own parts alone: the
    sketch), "extract" (a base or sft ACE-Step checkpoint takes each part out of the mix),
    or None (it cannot: an ACE-Step turbo checkpoint; the set falls back to variants)."""
    if info.supports_stems:
        return "stems"
    if "extract" in info.supports_tasks:
        return "extract"
    return None


def fallback_sentence(info: BackendInfo) -> str:
    how = ("each level is a cover of the base cue" if "cover" in info.supports_tasks else
           "each level is the same request at another intensity")
    return (f"{info.label} cannot make stems (layers need the extract task, which ACE-Step's turbo checkpoints "
            f"were not trained for), so this set holds variants instead of layers: {how}, to switch between, "
            "not to stack. For layers, use a base or sft checkpoint (acestep-dcc download-model "
            "ACE-Step/acestep-v15-xl-base-diffusers) or the sketch backend")


def layer_order(tracks: list[str], parts: dict[str, list[dict]] | None = None) -> list[str]:
    """`tracks` from the bed up: where `parts` says what each plays ({track: [{"role",
    "min_energy"}]}), by the earliest of its parts (lowest min_energy, then ROLE_ORDER);
    then by LAYER_ORDER."""
    def rank(track: str) -> tuple:
        known = [(int(p.get("min_energy") or 0), ROLE_ORDER.index(p["role"]) if p.get("role") in ROLE_ORDER
                  else len(ROLE_ORDER)) for p in (parts or {}).get(track, []) if isinstance(p, dict)]
        return (*(min(known) if known else (99, len(ROLE_ORDER))), LAYER_ORDER.index(track))

    return sorted(dict.fromkeys(tracks), key=rank)


def layer_plan(tracks: list[str], count: int, parts: dict[str, list[dict]] | None = None) -> list[list[str]]:
    """The parts of each layer: `tracks` from the bed up (layer_order), split into
    min(count, parts) groups in order, the lower layers with the fewer parts.

    ["drums", "bass", "keyboard", "guitar"], 3 -> [["keyboard"], ["bass"], ["drums", "guitar"]]
    """
    ordered = layer_order(tracks, parts)
    count = min(count, len(ordered))
    if count == 0:
        return []
    small, extra = divmod(len(ordered), count)
    sizes = [small + (1 if k >= count - extra else 0) for k in range(count)]
    groups, start = [], 0
    for size in sizes:
        groups.append(ordered[start : start + size])
        start += size
    return groups


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
    mode: str = LAYERS,
    check_against: Path | None = None,
) -> DynamicSet:
    """Generate a set into `folder` (see the module doc): `intensities` levels as layers
    (mode "layers") or variants ("variants"). `request` gives the prompt, format, loudness
    and, optionally, tempo, key and seed; `bars` None fits its duration. `existing` is what
    to do when a file of the set is already there (free_set_paths). `check_against` (a
    reference library) checks the base cue, every variant and every stinger for originality
    as generate_cues does; layers are parts of the base cue, checked with it."""
    problems = set_option_problems(intensities, stingers)
    if mode not in SET_MODES:
        problems.append(FieldProblem("mode", f"mode must be one of {', '.join(SET_MODES)}, got {mode!r}"))
    if problems:
        raise InvalidRequest(problems)
    info = backend.describe()
    how = layering(info) if mode == LAYERS else None
    fallback = fallback_sentence(info) if mode == LAYERS and how is None else None
    made = LAYERS if how else VARIANTS
    seed = request.seed if request.seed is not None else draw_seed()
    base_request = replace(request, loop=True, loop_bars=bars, seed=seed, candidates=1, intensity=None,
                           task="text2music", source_audio=None, file_name=None, stems=False, tracks=None)
    if how == "stems":  # every part the backend has plays in the base: the layers take them apart
        base_request = replace(base_request, stems=True, intensity=1.0)
    elif how == "extract":
        base_request = replace(base_request, stems=True, tracks=list(LAYER_EXTRACT_TRACKS))
    base_request = base_request.validated()
    folder = Path(folder)
    ensure_output_folder(folder)
    paths = free_set_paths(folder, name or slug_from_prompt(request.prompt), base_request.output_format,
                           intensities, stingers, existing, made)
    # Every name was checked above; the cues themselves only guard against a race.
    cue_existing = "overwrite" if existing == "overwrite" else "refuse"
    level_steps = 1 if made == LAYERS else intensities
    steps = 1 + level_steps + stingers
    written: list[CueOutput] = []
    temporary: list[Path] = []
    resources = [paths.godot_resource] + ([paths.godot_layers] if made == LAYERS else [])
    manifest_path = paths.manifest

    def generate(step: int, job: GenerationRequest, path: Path) -> CueOutput:
        def report(progress: Progress) -> None:
            on_progress(Progress(f"{job_label(step)}: {progress.stage}", (step + progress.fraction) / steps))

        (cue,) = generate_cues(job, backend, path, on_progress=report, is_cancelled=is_cancelled,
                               existing=cue_existing, check_against=check_against)
        written.append(cue)
        return cue

    def job_label(step: int) -> str:
        if step == 0:
            return "base cue" + (" and its parts" if made == LAYERS else "")
        if step <= level_steps:
            return f"intensity {step}/{intensities}"
        return f"stinger {step - level_steps}/{stingers}"

    try:
        with output_run():  # a set is one run: an exit at once removes its finished cues too
            base = generate(0, base_request, paths.base)
            loop = base.metadata["loop"]
            bpm, key = loop["bpm"], base.metadata["key"]["used"]
            per_bar = loop["beats_per_bar"]
            matched = replace(base_request, bpm=bpm, key=key, loop_bars=loop["bars"], stems=False, tracks=None,
                              intensity=None).validated()

            uses_cover = False
            layer_record: dict[str, Any] = {}
            if made == LAYERS:
                def layer_progress(stage: str, fraction: float) -> None:
                    on_progress(Progress(stage, (1 + fraction) / steps))

                layers, layer_record = _make_layers(base, paths, intensities, matched, backend, how, seed,
                                                    layer_progress, is_cancelled, temporary)
                written.extend(layers)
            else:
                uses_cover = "cover" in info.supports_tasks
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
                stinger_cues.append(generate(level_steps + index, job, paths.stingers[index - 1]))

            _check_matched(base, layers)
            manifest = set_manifest(request, backend, seed, base, layers, stinger_cues, paths.godot_resource.name,
                                    uses_cover, mode=made, fallback=fallback, layer_record=layer_record,
                                    godot_layers=paths.godot_layers.name if made == LAYERS else None)
            if made == LAYERS:
                write_text_atomic(paths.godot_layers, godot_synchronized_resource(layers, folder, manifest))
                write_text_atomic(paths.godot_resource, godot_interactive_resource(
                    [("Layers", paths.godot_layers)], stinger_cues, folder, manifest))
            else:
                write_text_atomic(paths.godot_resource, godot_interactive_resource(
                    [(entry["name"], Path(cue.path)) for entry, cue in zip(manifest["variants"], layers)],
                    stinger_cues, folder, manifest))
            write_json_atomic(manifest_path, manifest)
    except BaseException:
        for cue in written:
            discard([Path(cue.path), Path(cue.sidecar_path)])
        discard(resources + list(with_sidecars(list(paths.parts))))
        raise
    finally:
        discard(temporary)
    on_progress(Progress("done", 1.0))
    return DynamicSet(manifest_path=manifest_path, godot_resource_path=paths.godot_resource, base=base,
                      layers=layers, stingers=stinger_cues, manifest=manifest, mode=made,
                      godot_layers_path=paths.godot_layers if made == LAYERS else None)


# -- layers -----------------------------------------------------------------------------------


def _make_layers(base: CueOutput, paths: SetPaths, count: int, matched: GenerationRequest, backend: Backend,
                 how: str, seed: int, on_progress, is_cancelled: CancelCheck,
                 temporary: list[Path]) -> tuple[list[CueOutput], dict[str, Any]]:
    """The layer files from the base's stems (see the module doc), then the stems go and
    the base's sidecar says which layers it is the sum of. Returns the layers and what
    the manifest records about how they were made."""
    import numpy as np

    parts = {track: Path(path) for track, path in base.stems.items()}
    mix = _read_frames(Path(base.path))
    mix_energy = float(np.sum(mix.astype(np.float64) ** 2))
    audio: dict[str, np.ndarray] = {}
    silent = []
    for track, path in parts.items():
        frames = _read_frames(path)
        energy = float(np.sum(frames.astype(np.float64) ** 2))
        if mix_energy > 0 and energy > mix_energy * 10 ** (SILENT_PART_DB / 10):
            audio[track] = frames
        else:
            silent.append(track)
    notes: list[str] = []
    made_by = {track: ("extracted from the mix by the model" if how == "extract" else
                       f"the {backend.name} backend's own {track} part") for track in audio}
    lego: list[str] = []
    if len(audio) < count and how == "extract" and "lego" in backend.describe().supports_tasks:
        for track in [t for t in LEGO_TRACKS if t not in audio][: count - len(audio)]:
            on_progress(f"lego {track}: generating", 0.0)
            audio[track] = _lego_part(base, matched, backend, track, seed, is_cancelled, temporary)
            made_by[track] = "added by lego over the base mix (it is not in the base mix)"
            lego.append(track)
    plan = layer_plan(list(audio), count, (base.metadata.get("settings") or {}).get("stem_parts"))
    if not plan:
        raise GenerationFailed(f"{Path(base.path).name} has no part loud enough to make a layer of; "
                               "try another prompt or seed")
    if len(plan) < count:
        notes.append(f"asked for {count} layers, but the music plays only {len(plan)} parts "
                     f"({', '.join(track for group in plan for track in group)}), so the set has {len(plan)} layers")
    if silent:
        notes.append(f"left out {', '.join(silent)}: the mix does not play {'them' if len(silent) > 1 else 'it'} "
                     f"(more than {-SILENT_PART_DB:g} dB under the mix)")

    fmt = base.metadata["format"]
    loop = base.metadata["loop"]
    layers = []
    total = np.zeros_like(mix, dtype=np.float64)
    for level, group in enumerate(plan, start=1):
        if is_cancelled():
            from acestep_core.errors import GenerationCancelled

            raise GenerationCancelled()
        on_progress(f"layer {level}/{len(plan)}: writing", level / (len(plan) + 1))
        frames = np.zeros_like(mix, dtype=np.float64)
        for track in group:
            frames += audio[track]
        layer, as_written = _write_layer(paths.layers[level - 1], frames, base, fmt, loop, level, len(plan), group,
                                         [made_by[t] for t in group], temporary)
        total += as_written
        layers.append(layer)
    # All layer files together against the base mix as written (its limiter, if it worked, is the difference).
    lego_frames = sum((audio[t] for t in lego), np.zeros_like(total)) if lego else 0.0
    residual = total - lego_frames - mix
    left = float(np.sum(residual ** 2))
    sum_record = {
        "compared_with": Path(base.path).name,
        "max_difference": float(np.max(np.abs(residual))) if residual.size else 0.0,
        "residual_db": round(10 * math.log10(left / mix_energy), 2) if left > 0 and mix_energy > 0 else None,
        "note": _sum_note(base, how, lego),
    }
    discard(with_sidecars(list(parts.values())))
    _rewrite_base_sidecar(base, layers)
    record = {"layered_by": how, "lego_parts": lego, "left_out": silent, "notes": notes, "sum": sum_record}
    return layers, record


def _sum_note(base: CueOutput, how: str, lego: list[str]) -> str:
    stems_note = (base.metadata.get("stems_sum") or {}).get("note", "")
    said = [stems_note] if stems_note else []
    if lego:
        said.append(f"the lego parts ({', '.join(lego)}) are not in the base mix; they are left out of this comparison")
    if how == "stems" and not base.metadata.get("loudness", {}).get("limiter_reduction_db"):
        said.insert(0, "the layers sum to the base mix: each file is the base's own parts, rounded to its bit depth")
    return "; ".join(said)


def _read_frames(path: Path) -> "Any":
    """(frames, channels) float64, as a reader decodes the file."""
    import soundfile as sf

    data, _ = sf.read(str(path), dtype="float64", always_2d=True)
    return data


def _write_layer(path: Path, frames: "Any", base: CueOutput, fmt: dict, loop: dict, level: int, levels: int,
                 parts: list[str], made_by: list[str], temporary: list[Path]) -> tuple[CueOutput, "Any"]:
    """One layer file beside the base: its samples on the base's grid and bit depth, the
    base's INFO, smpl and cue chunks (WAV), and a sidecar saying what it holds. Returns
    the layer and its samples as a reader decodes them."""
    import numpy as np
    import soundfile as sf

    from acestep_core.audio.loudness import integrated_loudness, true_peak_dbtp
    from acestep_core.audio.riff import CueMarker, WavLoop, write_loop_chunks
    from acestep_core.audio.writer import INFO_FIELDS, quantized, write_audio

    output_format, bits, rate = fmt["container"], fmt["bit_depth"], fmt["sample_rate"]
    peak = float(np.max(np.abs(frames))) if frames.size else 0.0
    warnings = []
    if peak > 1.0:
        warnings.append(f"layer {level} peaks at {20 * math.log10(peak):+.1f} dBFS and is clipped in {path.name}; "
                        "ask for a lower loudness")
    with sf.SoundFile(base.path) as reader:
        info = {name: getattr(reader, name) for name in INFO_FIELDS if getattr(reader, name, None)}
    info["title"] = f"{info.get('title') or Path(base.path).stem} (layer {level}/{levels}: {', '.join(parts)})"[:250]
    temp = temporary_path_beside(path)
    temporary.append(temp)
    write_audio(temp, quantized(frames.astype(np.float32), output_format, bits), rate, output_format, bits, info)
    if output_format == "wav" and loop.get("smpl_end") is not None:
        markers = [CueMarker(loop["loop_start"], "Loop start (bar 1)"), CueMarker(loop["loop_end_exclusive"], "Loop end")]
        write_loop_chunks(temp, WavLoop(loop["loop_start"], loop["loop_end_exclusive"]), markers, rate)
    written = _read_frames(temp)
    heard = written[loop["loop_start"] : loop["loop_end_exclusive"]]
    lufs = integrated_loudness(heard, rate) if heard.size else -math.inf
    true_peak = true_peak_dbtp(heard.astype(np.float32), circular=True) if heard.size else -math.inf
    written_peak = float(np.max(np.abs(written))) if written.size else 0.0
    put_in_place(temp, path)
    keep = ("software", "created", "backend", "licence", "request", "seed", "format", "duration_requested",
            "duration_written", "frames_written", "loop", "tempo", "key", "versions")
    sidecar = {
        "file": path.name,
        "layer_of": Path(base.path).name,
        "layer": level,
        "layers": levels,
        "parts": list(parts),
        "made_by": dict(zip(parts, made_by)),
        "holds": ("only the parts this layer adds: play layers 1 to N together, from the same sample, for "
                  "level N"),
        **{name: base.metadata[name] for name in keep if name in base.metadata},
        "loudness": {"integrated_lufs": round(lufs, 2) if math.isfinite(lufs) else None,
                     "true_peak_dbtp": round(true_peak, 3) if math.isfinite(true_peak) else None,
                     "sample_peak_dbfs": round(20 * math.log10(written_peak), 3) if written_peak > 0 else None,
                     "note": "measured on this layer alone, as written; the base mix's loudness target is for "
                             "all layers together"},
        "warnings": warnings,
    }
    sidecar.update(frames_written=written.shape[0], duration_written=written.shape[0] / rate)
    write_json_atomic(sidecar_path(path), sidecar)
    return CueOutput(index=level, path=str(path.resolve()), seed=base.seed, duration=written.shape[0] / rate,
                     sample_rate=rate, sidecar_path=str(sidecar_path(path).resolve()), metadata=sidecar,
                     warnings=warnings), written


def _rewrite_base_sidecar(base: CueOutput, layers: list[CueOutput]) -> None:
    """The base's stems are gone (the layers hold them): its sidecar names the layers instead."""
    removed = {Path(path).name for path in base.stems.values()}
    metadata = {k: v for k, v in base.metadata.items() if k not in ("stems", "stems_sum_exact", "stems_sum")}
    metadata["set_layers"] = [Path(cue.path).name for cue in layers]
    metadata["warnings"] = [text for text in metadata.get("warnings", []) if not any(n in text for n in removed)]
    base.metadata = metadata
    base.warnings = [text for text in base.warnings if not any(n in text for n in removed)]
    base.stems = {}
    write_json_atomic(Path(base.sidecar_path), metadata)


def _lego_part(base: CueOutput, matched: GenerationRequest, backend: Backend, track: str, seed: int,
               is_cancelled: CancelCheck, temporary: list[Path]) -> "Any":
    """A part the mix lacks, made by lego over the base loop run on for one bar, its run-on
    folded over the loop's start (as the mix's own tail was): (frames, channels) float64
    on the base's grid, at the level the model plays it against the mix."""
    import numpy as np
    import soundfile as sf

    from acestep_core.audio.loops import crossfade_frames, crossfade_gains

    loop = base.metadata["loop"]
    source = _write_cover_source(Path(base.path), loop, upto_loop_end=True)
    temporary.append(source)
    out = temporary_path_beside(Path(base.path).with_name(f"{Path(base.path).stem}.lego-{track}"), suffix=".wav")
    temporary.append(out)
    out.unlink(missing_ok=True)
    rate = base.metadata["format"]["sample_rate"]
    job = replace(matched, task="lego", track=track, source_audio=str(source), repaint_start=None, repaint_end=None,
                  loop=False, loop_bars=None, loudness=None, seed=seed, output_format="wav", bit_depth=24,
                  prompt=f"{matched.prompt}, {track}")
    (cue,) = generate_cues(job, backend, out, is_cancelled=is_cancelled, existing="overwrite")
    temporary.append(Path(cue.sidecar_path))
    data, _ = sf.read(cue.path, dtype="float64", always_2d=True)
    start, end = loop["loop_start"], loop["loop_end_exclusive"]
    fade = min(crossfade_frames(loop["bpm"], rate), max(0, data.shape[0] - end))
    part = np.zeros((base.metadata["frames_written"], data.shape[1]), dtype=np.float64)
    count = min(end, data.shape[0])
    part[:count] = data[:count]
    if fade:
        fade_in, fade_out = crossfade_gains(fade)
        part[start : start + fade] = (data[start : start + fade] * fade_in[:, None]
                                      + data[end : end + fade] * fade_out[:, None])
    if part.shape[0] > end:  # the WAV's guard frame is a copy of the loop's first frame
        part[end:] = part[start]
    return part


def _write_cover_source(base_path: Path, loop: dict, upto_loop_end: bool = False) -> Path:
    """The base loop followed by its first bar again: what the loop sounds like running on
    (with `upto_loop_end`, everything before the loop too). A hidden temporary beside the
    base cue, removed when the set is done."""
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(base_path, dtype="float32", always_2d=True)
    start, end = loop["loop_start"], loop["loop_end_exclusive"]
    cycle = audio[start:end]
    lines = loop["bar_lines"]
    bar = lines[1] - lines[0] if len(lines) > 1 else cycle.shape[0]
    run_on = np.concatenate([audio[:end] if upto_loop_end else cycle, cycle[:bar]], axis=0)
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
                 uses_cover: bool, *, mode: str = VARIANTS, fallback: str | None = None,
                 layer_record: dict[str, Any] | None = None, godot_layers: str | None = None) -> dict[str, Any]:
    """The set as JSON: files, tempo, key, bars, loop points in frames, and the levels, with
    the same facts spelled the way FMOD, Wwise and Godot name them (see the module doc).
    Mode "layers" lists "layers" (each with its parts) and "levels" (which layers play at
    each level); mode "variants" lists "variants", with "layers" null."""
    loop = base.metadata["loop"]
    info = backend.describe()
    fmt = base.metadata["format"]
    meter = request.time_signature or "4/4"
    level_names = [f"Intensity {k}" for k in range(1, len(layers) + 1)]
    loop_points = {
        "loop_start": loop["loop_start"],
        "loop_end_exclusive": loop["loop_end_exclusive"],
        "loop_length": loop["loop_length"],
        "loop_seconds": loop["loop_length"] / fmt["sample_rate"],
    }
    if "smpl_end" in loop:
        loop_points["smpl_end"] = loop["smpl_end"]
    files = [Path(cue.path).name for cue in layers]
    manifest: dict[str, Any] = {
        "kind": "acestep-dcc dynamic music set",
        "version": 2,
        "software": SOFTWARE,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "prompt": request.prompt,
        "backend": {"name": info.name, "label": info.label, "model_id": info.model_id},
        "seed": seed,
        "mode": mode,
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
        "warnings": [f"{Path(cue.path).name}: {text}" for cue in [base, *layers, *stingers] for text in cue.warnings],
        "base": _cue_entry(base),
        "intensity_order": files,
        "stingers": [{**_cue_entry(cue), "name": f"Stinger {k}"} for k, cue in enumerate(stingers, start=1)],
    }
    if mode == LAYERS:
        record = layer_record or {}
        layer_names = [f"Layer {k}" for k in range(1, len(layers) + 1)]
        manifest.update({
            "layer_files": "stems",
            "layer_files_note": ("each layer file holds only the parts it adds (a stem, not a cumulative mix): "
                                 "level k is layers 1 to k played together from the same sample; all layers "
                                 "together are the base mix"),
            "arrangement": ("the base cue's parts, extracted by the model (one extract per part)"
                            if record.get("layered_by") == "extract" else
                            f"the base cue's own parts, as the {info.name} backend plays them alone"),
            "layers": [
                {**_cue_entry(cue), "level": k, "name": layer_names[k - 1], "parts": cue.metadata["parts"],
                 "made_by": cue.metadata["made_by"]}
                for k, cue in enumerate(layers, start=1)
            ],
            "levels": [{"level": k, "name": level_names[k - 1], "layers": files[:k]}
                       for k in range(1, len(layers) + 1)],
            "layers_sum": record.get("sum"),
            "layer_notes": record.get("notes", []),
            "lego_parts": record.get("lego_parts", []),
            "variants": None,
            "fallback": None,
        })
        manifest["engines"] = _layer_engines(manifest, layer_names, level_names, godot_resource, godot_layers)
    else:
        honours_intensity = uses_cover or any("intensity" in cue.metadata.get("settings", {}) for cue in layers)
        manifest.update({
            "arrangement": ("cover of the base cue per level" if uses_cover else
                            "same seed, key and tempo; layers by intensity" if honours_intensity else
                            "same seed, key and tempo; this backend does not vary its arrangement by intensity yet"),
            "layers": None,
            "fallback": fallback,
            "variants": [
                {**_cue_entry(cue), "level": k, "name": level_names[k - 1],
                 "intensity": cue.metadata["request"]["intensity"]}
                for k, cue in enumerate(layers, start=1)
            ],
        })
        manifest["engines"] = _variant_engines(manifest, level_names, godot_resource)
    return manifest


def _layer_engines(manifest: dict, layer_names: list[str], level_names: list[str], godot_resource: str | None,
                   godot_layers: str | None) -> dict[str, Any]:
    """Vertical remixing: every layer plays from the same sample; an intensity value fades
    layers in (layer k is heard from value k - 1 up)."""
    loop = manifest["loop"]
    region = [loop["loop_start"], loop["loop_end_exclusive"]]
    layers = manifest["layers"]
    top = len(layers) - 1
    return {
        "fmod": {
            "event": "multi-track",
            "parameter": {"name": "Intensity", "type": "continuous", "minimum": 0, "maximum": top,
                          "labels": level_names},
            "timeline": {"tempo_marker_bpm": manifest["bpm"], "time_signature": manifest["time_signature"],
                         "loop_region_samples": region},
            "tracks": [
                {"name": name, "instrument": layer["file"], "start_samples": 0, "audible_from": k,
                 "volume_automation": _fade_in_points(k, -80.0)}
                for k, (name, layer) in enumerate(zip(layer_names, layers))
            ],
            "note": ("one audio track per layer, each a single instrument from the timeline's start; automate "
                     "each track's volume on the Intensity parameter so layer k is heard from k - 1 up"),
        },
        "wwise": {
            "music_segment": {
                "tracks": [{"name": name, "file": layer["file"]} for name, layer in zip(layer_names, layers)],
                "entry_cue_samples": loop["loop_start"],
                "exit_cue_samples": loop["loop_end_exclusive"],
                "tempo": manifest["bpm"],
                "time_signature": manifest["time_signature"],
            },
            "game_parameter": {"name": "Intensity", "minimum": 0, "maximum": top},
            "track_volume_curves": [
                {"track": name, "points": _fade_in_points(k, -96.0)}
                for k, name in enumerate(layer_names)
            ],
            "state_group": "Intensity",
            "states": [{"state": name.replace(" ", "_"), "tracks_audible": layer_names[: k + 1]}
                       for k, name in enumerate(level_names)],
        },
        "godot": {
            "resource": godot_layers,
            "class": "AudioStreamSynchronized",
            "streams": [layer["file"] for layer in layers],
            "volume_db": [GODOT_LAYER_ON_DB if k == 0 else GODOT_LAYER_OFF_DB for k in range(len(layers))],
            "set_level": ("stream.set_sync_stream_volume(i, 0.0) for each layer i below the level, "
                          f"{GODOT_LAYER_OFF_DB:g} for those above (tween it to fade)"),
            "interactive_resource": godot_resource,
            "interactive_class": "AudioStreamInteractive",
            "interactive_clips": ["Layers"] + [stinger["name"] for stinger in manifest["stingers"]],
        },
    }


def _fade_in_points(index: int, silent_db: float) -> list[dict[str, float]]:
    """Layer `index` (0-based) silent up to intensity index - 1 and full from index; layer 0 always full."""
    if index == 0:
        return [{"intensity": 0, "volume_db": 0.0}]
    return [{"intensity": index - 1, "volume_db": silent_db}, {"intensity": index, "volume_db": 0.0}]


def _variant_engines(manifest: dict, level_names: list[str], godot_resource: str | None) -> dict[str, Any]:
    """Horizontal re-sequencing: one level plays at a time, switched at the next bar."""
    loop = manifest["loop"]
    variants = manifest["variants"]
    return {
        "fmod": {
            "parameter": {"name": "Intensity", "type": "labeled", "labels": level_names,
                          "minimum": 0, "maximum": len(variants) - 1},
            "timeline": {"tempo_marker_bpm": manifest["bpm"], "time_signature": manifest["time_signature"],
                         "loop_region_samples": [loop["loop_start"], loop["loop_end_exclusive"]]},
            "instruments": [variant["file"] for variant in variants],
        },
        "wwise": {
            "state_group": "Intensity",
            "states": [name.replace(" ", "_") for name in level_names],
            "music_segments": [{"file": variant["file"], "state": name.replace(" ", "_"),
                                "entry_cue_samples": loop["loop_start"],
                                "exit_cue_samples": loop["loop_end_exclusive"]}
                               for variant, name in zip(variants, level_names)],
            "tempo": manifest["bpm"],
            "time_signature": manifest["time_signature"],
        },
        "godot": {
            "resource": godot_resource,
            "class": "AudioStreamInteractive",
            "clips": level_names + [stinger["name"] for stinger in manifest["stingers"]],
            "initial_clip": 0,
            "switch": "AudioStreamPlaybackInteractive.switch_to_clip_by_name(name)",
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


def _relative(path: Path, folder: Path) -> str:
    return _godot_string(os.path.relpath(path, folder).replace(os.sep, "/"))


def godot_synchronized_resource(layers: list[CueOutput], folder: Path, manifest: dict[str, Any]) -> str:
    """A Godot 4 text resource (format=3) for an AudioStreamSynchronized over the layers.

    Property names are those AudioStreamSynchronized binds (modules/interactive_music/
    audio_stream_synchronized.cpp, Godot 4.3+): stream_count, stream_N/stream and
    stream_N/volume (dB). Every stream starts together and plays on the same sample
    clock; a game sets a level with set_sync_stream_volume(N, dB), which the playback
    reads at every mix. Layer 1 starts at 0 dB, the others at GODOT_LAYER_OFF_DB.
    Stream paths are relative to the .tres (resolved against the file's own folder).
    """
    volumes = manifest["engines"]["godot"]["volume_db"]
    lines = [f'[gd_resource type="AudioStreamSynchronized" load_steps={len(layers) + 1} format=3]', ""]
    for k, cue in enumerate(layers, start=1):
        lines.append(f'[ext_resource type="AudioStream" path="{_relative(Path(cue.path), folder)}" id="{k}_layer"]')
    lines += ["", "[resource]", f"stream_count = {len(layers)}"]
    for index in range(len(layers)):
        lines += [f'stream_{index}/stream = ExtResource("{index + 1}_layer")',
                  f"stream_{index}/volume = {float(volumes[index])!r}"]
    lines.append("")
    return "\n".join(lines)


def godot_interactive_resource(clips: list[tuple[str, Path]], stingers: list[CueOutput], folder: Path,
                               manifest: dict[str, Any]) -> str:
    """A Godot 4 text resource (format=3) for an AudioStreamInteractive: `clips` (name, file:
    the variants, or the layers' AudioStreamSynchronized as one clip), then the stingers.

    Property names and enum values are those AudioStreamInteractive binds in Godot 4.3+
    (clip_count, clip_N/name, clip_N/stream, clip_N/auto_advance, initial_clip, and the
    _transitions dictionary keyed by Vector2i(from, to), -1 meaning any clip). Stream paths
    are relative to the .tres. Transitions: any -> any at the next bar, to the same
    position, with a one-beat crossfade (Godot syncs to bars only for streams that report
    a BPM, otherwise it crossfades at once); any -> a stinger at the next bar from its
    start, holding the clip it leaves, and the stinger returns to that clip when it ends
    (auto_advance "return to hold"), where it left off.
    """
    entries = [(name, path, 0) for name, path in clips]
    entries += [(entry["name"], Path(cue.path), _GODOT_AUTO_ADVANCE_RETURN_TO_HOLD)
                for entry, cue in zip(manifest["stingers"], stingers)]
    lines = [f'[gd_resource type="AudioStreamInteractive" load_steps={len(entries) + 1} format=3]', ""]
    for k, (_, path, _) in enumerate(entries, start=1):
        lines.append(f'[ext_resource type="AudioStream" path="{_relative(path, folder)}" id="{k}_clip"]')
    lines += ["", "[resource]", f"clip_count = {len(entries)}"]
    for index, (name, _, advance) in enumerate(entries):
        lines += [
            f'clip_{index}/name = &"{_godot_string(name)}"',
            f'clip_{index}/stream = ExtResource("{index + 1}_clip")',
            f"clip_{index}/auto_advance = {advance}",
        ]
    transitions = [((_GODOT_CLIP_ANY, _GODOT_CLIP_ANY),
                    {"fade_beats": 1.0, "fade_mode": _GODOT_FADE_CROSS, "from_time": _GODOT_FROM_NEXT_BAR,
                     "to_time": _GODOT_TO_SAME_POSITION})]
    for index in range(len(clips), len(entries)):
        transitions.append(((_GODOT_CLIP_ANY, index),
                            {"fade_beats": 0.25, "fade_mode": _GODOT_FADE_OUT, "from_time": _GODOT_FROM_NEXT_BAR,
                             "hold_previous": True, "to_time": _GODOT_TO_START}))
        transitions.append(((index, _GODOT_CLIP_ANY),
                            {"fade_beats": 1.0, "fade_mode": _GODOT_FADE_CROSS, "from_time": _GODOT_FROM_END,
                             "to_time": _GODOT_TO_PREVIOUS_POSITION}))
    lines += ["initial_clip = 0", "_transitions = {"]
    for n, ((source, target), values) in enumerate(transitions):
        body = ",\n".join(f'"{key}": {_godot_value(value)}' for key, value in values.items())
        lines.append(f"Vector2i({source}, {target}): {{\n{body}\n}}" + ("," if n < len(transitions) - 1 else ""))
    lines += ["}", ""]
    return "\n".join(lines)


def _godot_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _godot_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
