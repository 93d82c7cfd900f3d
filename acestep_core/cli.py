"""The `acestep-dcc` command.

Every expected failure prints one sentence on stderr and exits with status 2; a
traceback means a bug in acestep-dcc. Ctrl-C cancels a generation within a second and
exits with 130 leaving no file; a second Ctrl-C (or SIGTERM) removes every file in
progress and exits at once (130, or 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from acestep_core import __version__
from acestep_core.errors import AceStepError, GenerationCancelled, InvalidRequest, LoopDoesNotFit, OutputNotWritable
from acestep_core.request import OUTPUT_FORMATS, TASKS, TIME_SIGNATURES, GenerationRequest, set_option_problems
from acestep_core.threads import apply_thread_settings

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    apply_thread_settings()  # before anything imports numpy or torch (see acestep_core.threads)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args) or 0
    except InvalidRequest as exc:
        for problem in exc.problems:
            print(f"acestep-dcc: {problem.message}", file=sys.stderr)
        return EXIT_USAGE
    except GenerationCancelled:
        print("acestep-dcc: cancelled; no file was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputNotWritable as exc:
        # Generation's sentences are the worker's too; here the folder is chosen with -o.
        print(f"acestep-dcc: {exc}".replace("choose another folder", "choose another folder with -o"),
              file=sys.stderr)
        return EXIT_USAGE
    except LoopDoesNotFit as exc:
        # The core names no flags (hosts call it too); here they are.
        print(f"acestep-dcc: {exc} (--bpm BPM, --loop BARS or --loop fit)", file=sys.stderr)
        return EXIT_USAGE
    except AceStepError as exc:
        print(f"acestep-dcc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a disk or permission problem outside generation's own checks
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"acestep-dcc: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("acestep-dcc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acestep-dcc", description="ACE-Step music cues for games and cutscenes.")
    parser.add_argument("--version", action="version", version=f"acestep-dcc {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    generate = commands.add_parser("generate", help="generate cues into audio files")
    generate.add_argument("prompt", help='what the music is, e.g. "intense boss battle, rock, fast tempo"')
    generate.add_argument("-o", "--output", default="cue.wav",
                          help="output file (.wav, .flac or .ogg) or folder; with several candidates NAME-1.wav, "
                               "NAME-2.wav, ...; each file gets a sidecar NAME.wav.json (default: cue.wav)")
    generate.add_argument("--overwrite", action="store_true",
                          help="replace files (and sidecars) already there (default: refuse before generating)")
    generate.add_argument("--seconds", type=float,
                          help="length of each cue in seconds (default: 30; with --source, the source's length)")
    generate.add_argument("--candidates", type=int, default=1, help="how many versions to make (1-8)")
    generate.add_argument("--seed", type=int, help="seed of the first candidate (default: draw one)")
    generate.add_argument("--bpm", type=float, help="tempo in beats per minute")
    generate.add_argument("--key", help='key, e.g. "E minor" or "Bb major"')
    generate.add_argument("--time-signature", choices=TIME_SIGNATURES)
    generate.add_argument("--lyrics", default="", help="lyrics (default: instrumental)")
    generate.add_argument("--steps", type=int, help="denoising steps (default: the model's own)")
    generate.add_argument("--guidance", type=float, help="guidance scale (default: the model's own)")
    generate.add_argument("--shift", type=float, help="timestep shift (default: the model's own)")
    generate.add_argument("--task", choices=TASKS, default="text2music",
                          help="text2music (default); repaint, cover, extract, lego and complete work on --source")
    generate.add_argument("--source", help="source audio file for repaint, cover, extract, lego and complete")
    generate.add_argument("--track", metavar="NAME",
                          help="the instrument extract takes out of --source, or lego adds to it (ACE-Step's "
                               "track names: vocals, backing_vocals, drums, bass, guitar, keyboard, percussion, "
                               "strings, synth, fx, brass, woodwinds)")
    generate.add_argument("--tracks", metavar="NAME,NAME",
                          help="the instruments complete adds to --source, e.g. drums,bass; with --stems, the "
                               "stems to make")
    generate.add_argument("--range", nargs=2, type=float, metavar=("START", "END"),
                          help="seconds of --source that repaint regenerates, or where lego's new layer plays "
                               "(lego default: the whole source)")
    generate.add_argument("--repaint-start", type=float, help="repaint from this second (or use --range)")
    generate.add_argument("--repaint-end", type=float, help="repaint up to this second (or use --range)")
    generate.add_argument("--reference", metavar="FILE",
                          help="reference audio whose timbre and style text2music and cover follow")
    generate.add_argument("--stems", action="store_true",
                          help="also write one file per part beside each cue (NAME.drums.wav, NAME.bass.wav, ...): "
                               "the sketch's own parts, or one extract per track on an ACE-Step base/sft model")
    generate.add_argument("--cover-strength", type=float, default=1.0, help="how closely a cover follows the source (0-1)")
    generate.add_argument("--format", choices=OUTPUT_FORMATS, help="file format (default: from -o, else wav)")
    generate.add_argument("--sample-rate", type=int,
                          help="44100 (default) or 48000; with --source, the source's where it is one of these")
    generate.add_argument("--bit-depth", type=int,
                          help="16 (default) or 24; with --source, the source's (a repaint is then sample-exact "
                               "outside its range)")
    generate.add_argument("--loop", nargs="?", const="fit", metavar="BARS|fit",
                          help="make a seamless loop of BARS whole bars, or 'fit' (the default with no value): "
                               "the whole bars nearest --seconds; WAV files get smpl loop points")
    generate.add_argument("--intro", metavar="BARS|auto",
                          help="with --loop: a one-time intro of BARS bars before the loop body, in the same file "
                               "(the WAV's smpl loop starts after it); 'auto' is 4 bars (2 for loops of 4 bars or fewer)")
    _add_game_audio_arguments(generate)
    generate.add_argument("--against", metavar="DIR",
                          help="originality check: compare each cue with this reference library (and the other "
                               "candidates); the sidecar records it, a flagged cue gets a warning (default: "
                               "$ACESTEP_DCC_REFERENCE_LIBRARY, else config.json's reference_library, else no check)")
    generate.add_argument("--style", metavar="NAME[:SCALE]",
                          help="an installed style pack (acestep-dcc packs list), at SCALE 0-2 (default 1)")
    _add_backend_arguments(generate)
    generate.add_argument("--json", action="store_true", help="print the written files as JSON on stdout")
    generate.set_defaults(handler=run_generate)
    from acestep_core.refine_command import add_refine_parser  # its options default to "not given"

    add_refine_parser(commands, _add_backend_arguments)

    stems = commands.add_parser("stems", help="split an audio file into stems (NAME.drums.wav, NAME.bass.wav, ...)")
    stems.add_argument("file", help="the audio file to split (WAV, FLAC or Ogg)")
    stems.add_argument("--tracks", metavar="NAME,NAME",
                       help="the stems to make (default: every part of a file the sketch made, else "
                            "vocals,drums,bass,guitar,keyboard,synth)")
    stems.add_argument("-o", "--output", metavar="FOLDER", help="folder for the stems (default: the file's folder)")
    stems.add_argument("--overwrite", action="store_true",
                       help="replace stems already there (default: refuse before splitting)")
    _add_backend_arguments(stems)
    stems.add_argument("--json", action="store_true", help="print the written stems as JSON on stdout")
    stems.set_defaults(handler=run_stems)

    sets = commands.add_parser("set", help="make a dynamic-music set: layers that stack (or variants to switch "
                                                "between), stingers, and a manifest for FMOD, Wwise and Godot")
    sets.add_argument("prompt", help='what the music is, e.g. "boss battle, rock"')
    sets.add_argument("-o", "--output", help="folder for the set (default: a folder named after the prompt)")
    sets.add_argument("--overwrite", action="store_true",
                      help="replace a set's files already there (default: refuse before generating)")
    levels = sets.add_mutually_exclusive_group()
    levels.add_argument("--intensities", type=int, default=None,
                        help="how many layers (1-8, default: 3): stems of one loop that stack, sparsest first, for "
                             "vertical remixing")
    levels.add_argument("--variants", type=int, default=None,
                        help="instead of layers, this many loops at rising intensity (1-8), to switch between")
    sets.add_argument("--bars", default="16", metavar="BARS|fit",
                      help="loop length in bars, or 'fit' for the whole bars nearest --seconds (default: 16)")
    sets.add_argument("--stingers", type=int, default=2, help="how many short stingers in the same key (0-8, default: 2)")
    sets.add_argument("--seconds", type=float, default=30.0, help="approximate loop length with --bars fit (default: 30)")
    sets.add_argument("--seed", type=int, help="seed shared by every loop of the set (default: draw one)")
    sets.add_argument("--bpm", type=float, help="tempo in beats per minute (default: the music's own, measured)")
    sets.add_argument("--key", help='key, e.g. "E minor" (default: measured from the music)')
    sets.add_argument("--time-signature", choices=TIME_SIGNATURES)
    sets.add_argument("--format", choices=OUTPUT_FORMATS, default="wav", help="file format (default: wav)")
    sets.add_argument("--sample-rate", type=int, default=44100, help="44100 (default) or 48000")
    sets.add_argument("--bit-depth", type=int, default=16, help="16 (default) or 24")
    _add_game_audio_arguments(sets)
    _add_backend_arguments(sets)
    sets.add_argument("--json", action="store_true", help="print the manifest on stdout")
    sets.add_argument("--against", metavar="DIR",
                      help="originality check of the base cue, variants and stingers against this reference library "
                           "(default: as for generate)")
    sets.set_defaults(handler=run_set)

    download = commands.add_parser("download-model", help="download ACE-Step 1.5 weights from the Hugging Face Hub")
    download.add_argument("repo_id", nargs="?", default=None, help="Hub repository (default: the XL turbo model)")
    download.add_argument("--dir", help="where to put it (default: acestep-dcc's models folder)")
    download.set_defaults(handler=run_download_model)

    doctor = commands.add_parser("doctor", help="check that everything needed to generate is in place")
    doctor.add_argument("--model", help="model folder to check (default: the configured one)")
    doctor.add_argument("-o", "--output", default=".", help="output folder to check for write access")
    doctor.set_defaults(handler=run_doctor)

    worker = commands.add_parser("worker", help="run the local model worker that Blender and REAPER talk to")
    from acestep_core.worker.flags import add_worker_arguments  # the worker's flags, defined once

    add_worker_arguments(worker)
    _add_backend_arguments(worker)
    worker.set_defaults(handler=run_worker_command)

    _add_library_commands(commands)
    from acestep_core.packs.cli import add_packs_commands  # stdlib-only: training imports torch when it runs

    add_packs_commands(commands)
    from acestep_core.cluster.up import add_cluster_commands  # stdlib-only: Ray loads when a cluster starts
    from acestep_core.worker.tokens import add_tokens_commands

    add_cluster_commands(commands)
    add_tokens_commands(commands)
    from acestep_core.originality.cli import add_check_parser  # stdlib-only: the analysis loads when it runs

    add_check_parser(commands)

    install = commands.add_parser("install", help="install the Blender extension or the REAPER actions")
    install_targets = install.add_subparsers(title="targets", metavar="TARGET")
    blender = install_targets.add_parser("blender", help="build the Blender extension and install it")
    blender.add_argument("--blender", help="Blender executable (default: blender on PATH)")
    blender.add_argument("--zip-dir", help="where to build the extension zip (default: dist/)")
    blender.set_defaults(handler=run_install_blender)
    reaper = install_targets.add_parser("reaper", help="copy the REAPER actions into REAPER and register them")
    reaper.add_argument("--resource-path", help="REAPER's resource folder (default: the usual one for this system)")
    reaper.set_defaults(handler=run_install_reaper)
    return parser


def _add_game_audio_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loudness", default="none", metavar="console|mobile|none|LUFS",
                        help="integrated loudness target: console (-23 LUFS), mobile (-16 LUFS), none "
                             "(default: as generated), or a number such as -18")
    parser.add_argument("--true-peak", type=float, default=-1.0, metavar="DBTP",
                        help="true-peak ceiling in dBTP, measured 4x oversampled (default: -1)")


def loudness_from_text(text: str | None) -> str | float | None:
    """'console' -> 'console', '-18' -> -18.0; anything else is left for validation to name."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def loop_from_text(text: str | None, option: str = "--loop") -> tuple[bool, int | None]:
    """None -> (False, None); 'fit' -> (True, None); '16' -> (True, 16)."""
    if text is None:
        return False, None
    if text.strip().lower() == "fit":
        return True, None
    try:
        return True, int(text)
    except ValueError:
        from acestep_core.errors import FieldProblem

        raise InvalidRequest([FieldProblem("loop_bars", f"{option} takes a number of bars or 'fit', got {text!r}")]) from None


def intro_from_text(text: str | None, loop_bars: int | None) -> int:
    """None -> 0; 'auto' -> 4 bars (2 before a loop of 4 bars or fewer); '2' -> 2."""
    if text is None:
        return 0
    from acestep_core.request import AUTO_INTRO, auto_intro_bars

    if text.strip().lower() == AUTO_INTRO:
        return auto_intro_bars(loop_bars)
    try:
        return int(text)
    except ValueError:
        from acestep_core.errors import FieldProblem

        raise InvalidRequest([FieldProblem("intro_bars", f"--intro takes a number of bars or 'auto', got {text!r}")]) from None


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="ACE-Step model folder (default: $ACESTEP_DCC_MODEL or the configured one)")
    parser.add_argument("--backend", choices=("auto", "acestep", "sketch"), default="auto",
                        help="auto (default): acestep when a model folder is known, else sketch")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")


# -- generate -----------------------------------------------------------------------


def request_from_args(args: argparse.Namespace) -> tuple[GenerationRequest, Path]:
    from acestep_core.output_names import output_format_for

    output = Path(args.output).expanduser()
    if not args.output or args.output.endswith(("/", os.sep)) or output.is_dir():
        # -o names a folder: the file is named after the prompt inside it.
        from acestep_core.request import slug_from_prompt

        output_format = args.format or "wav"
        output = output / f"{slug_from_prompt(args.prompt)}.{output_format}"
    else:
        # x.mp3 and x.wav with --format flac are refused with the name to use.
        output_format = output_format_for(output, args.format, field="output_format")
    from acestep_core.errors import FieldProblem
    from acestep_core.stems import parse_tracks

    source = _existing_file(args.source, "source_audio", "the source audio file")
    reference = _existing_file(args.reference, "reference_audio", "the reference audio file")
    repaint_start, repaint_end = args.repaint_start, args.repaint_end
    if args.range is not None:
        if repaint_start is not None or repaint_end is not None:
            raise InvalidRequest([FieldProblem("repaint_start", (
                "--range and --repaint-start/--repaint-end say the same thing; pass only --range START END"))])
        repaint_start, repaint_end = args.range
    style, style_scale = (None, 1.0) if not args.style else _style_from_text(args.style)
    loop, loop_bars = loop_from_text(args.loop)
    seconds, sample_rate, bit_depth = 30.0, 44100, 16
    if source is not None and args.task != "text2music":  # the source's own length, rate and depth
        from acestep_core.stems import file_format

        _, sample_rate, bit_depth, seconds = file_format(Path(source))
    request = GenerationRequest(
        prompt=args.prompt,
        lyrics=args.lyrics,
        duration=seconds if args.seconds is None else args.seconds,
        seed=args.seed,
        candidates=args.candidates,
        steps=args.steps,
        guidance=args.guidance,
        shift=args.shift,
        bpm=args.bpm,
        key=args.key,
        time_signature=args.time_signature,
        task=args.task,
        source_audio=source,
        repaint_start=repaint_start,
        repaint_end=repaint_end,
        track=args.track,
        tracks=parse_tracks(args.tracks),
        reference_audio=reference,
        stems=args.stems,
        cover_strength=args.cover_strength,
        output_format=output_format,
        sample_rate=sample_rate if args.sample_rate is None else args.sample_rate,
        bit_depth=bit_depth if args.bit_depth is None else args.bit_depth,
        loop=loop,
        loop_bars=loop_bars,
        intro_bars=intro_from_text(args.intro, loop_bars),
        loudness=loudness_from_text(args.loudness),
        true_peak_ceiling_db=args.true_peak,
        style=style,
        style_scale=style_scale,
    ).validated()
    return request, output


def _style_from_text(text: str) -> tuple[str, float]:
    from acestep_core.errors import FieldProblem
    from acestep_core.packs import PackError, parse_style

    try:
        return parse_style(text)
    except PackError as exc:
        raise InvalidRequest([FieldProblem("style_scale", str(exc))]) from None


def _existing_file(path: str | None, field: str, what: str) -> str | None:
    """The absolute path of a file the user passed, or InvalidRequest when there is none."""
    if path is None:
        return None
    if not Path(path).expanduser().is_file():
        from acestep_core.errors import FieldProblem

        raise InvalidRequest([FieldProblem(field, f"{what} {path} does not exist")])
    return str(Path(path).expanduser().resolve())


def run_generate(args: argparse.Namespace) -> int:
    # Validate before importing the heavy stack, so a typo costs no start-up time.
    request, output = request_from_args(args)
    from acestep_core.generation import ensure_output_folder, generate_cues, output_paths

    existing = "overwrite" if args.overwrite else "refuse"
    from acestep_core.generation import stem_tracks_to_check

    ensure_output_folder(output.parent)
    output_paths(output, request.output_format, request.candidates, existing,
                 stem_tracks=stem_tracks_to_check(request))  # taken names: before loading
    from acestep_core.config import configured_reference_library

    library = configured_reference_library(args.against)
    backend = _announced_backend(args)
    outputs = _run_with_progress(lambda on_progress, is_cancelled: generate_cues(
        request, backend, output, on_progress=on_progress, is_cancelled=is_cancelled, existing=existing,
        check_against=library))
    for cue in outputs:
        print(f"acestep-dcc: wrote {cue.path} ({cue.duration:.2f} s, seed {cue.seed})", file=sys.stderr)
        _print_stems(cue)
    _index_in_library(outputs)
    _print_warnings([(Path(cue.path).name, text) for cue in outputs for text in cue.warnings])
    _print_not_rendered(outputs)
    if library is not None:
        from acestep_core.originality.cli import originality_note

        print(f"acestep-dcc: {originality_note(outputs, library)}", file=sys.stderr)
    if args.json:
        import json

        print(json.dumps([_cue_json(c) for c in outputs], indent=2))
    return 0


def _print_not_rendered(outputs) -> None:
    from acestep_core.keywords import not_rendered_note

    for note in dict.fromkeys(not_rendered_note(cue.metadata) for cue in outputs):
        if note:
            print(f"acestep-dcc: note: {note}", file=sys.stderr)


def _cue_json(cue) -> dict:
    data = {"path": cue.path, "seed": cue.seed, "duration": cue.duration, "sidecar": cue.sidecar_path,
            "warnings": cue.warnings}
    if "not_rendered" in (cue.metadata or {}):
        data["not_rendered"] = cue.metadata["not_rendered"]
    if "originality" in (cue.metadata or {}):  # generate --against: the check's record, as in the sidecar
        data["originality"] = cue.metadata["originality"]
    if cue.stems:
        data.update(stems=cue.stems, stems_sum_exact=cue.metadata.get("stems_sum_exact"),
                    stems_note=(cue.metadata.get("stems_sum") or {}).get("note"))
    return data


def _print_stems(cue) -> None:
    for track, path in cue.stems.items():
        print(f"acestep-dcc: wrote {path} ({track} stem)", file=sys.stderr)
    if cue.stems and not cue.metadata.get("stems_sum_exact"):
        note = (cue.metadata.get("stems_sum") or {}).get("note") or ""
        print(f"acestep-dcc: the stems do not sum exactly to {Path(cue.path).name}: {note.split('; each file')[0]}",
              file=sys.stderr)


def run_stems(args: argparse.Namespace) -> int:
    """Split FILE into stems beside it (or in -o FOLDER): acestep_core.stems decides how."""
    from acestep_core.output_names import file_stem
    from acestep_core.stems import made_by_sketch, recorded_sidecar, split_request

    file = Path(args.file).expanduser()
    by_sketch = args.backend != "acestep" and made_by_sketch(recorded_sidecar(file))
    request = split_request(file, args.tracks, by_model=not by_sketch)
    from acestep_core.generation import ensure_output_folder, generate_cues

    folder = Path(args.output).expanduser() if args.output else file.parent
    output = folder / f"{file_stem(file)}.{request.output_format}"
    existing = "overwrite" if args.overwrite else "refuse"
    ensure_output_folder(folder)
    if not args.overwrite:  # taken names: before loading anything
        from acestep_core.generation import stem_tracks_to_check
        from acestep_core.output_names import refuse_existing, stem_path

        refuse_existing([stem_path(output, track) for track in stem_tracks_to_check(request)])
    if by_sketch:
        from acestep_core.backends import create_backend

        backend = create_backend("sketch", None, None)
        print(f"acestep-dcc: {file.name} was made by the sketch backend: rendering its parts again "
              f"(seed {request.seed})", file=sys.stderr)
        _print_licence(backend)
    else:
        backend = _announced_backend(args)
    (cue,) = _run_with_progress(lambda on_progress, is_cancelled: generate_cues(
        request, backend, output, on_progress=on_progress, is_cancelled=is_cancelled, existing=existing,
        mix_file=file))
    _print_stems(cue)
    _index_in_library([cue])
    _print_warnings([(file.name, text) for text in cue.warnings])
    if args.json:
        import json

        print(json.dumps(_cue_json(cue), indent=2))
    return 0


def run_set(args: argparse.Namespace) -> int:
    _, bars = loop_from_text(args.bars, "--bars")
    request = GenerationRequest(
        prompt=args.prompt, duration=args.seconds, seed=args.seed, bpm=args.bpm, key=args.key,
        time_signature=args.time_signature, output_format=args.format, sample_rate=args.sample_rate,
        bit_depth=args.bit_depth, loop=True, loop_bars=bars, loudness=loudness_from_text(args.loudness),
        true_peak_ceiling_db=args.true_peak,
    ).validated()
    from acestep_core.errors import FieldProblem

    mode = "variants" if args.variants is not None else "layers"
    count = args.variants if args.variants is not None else 3 if args.intensities is None else args.intensities
    problems = [FieldProblem("variants", p.message.replace("intensities", "--variants")) if mode == "variants"
                and p.field == "intensities" else p for p in set_option_problems(count, args.stingers)]
    if problems:  # before loading a backend: a typo should cost nothing
        raise InvalidRequest(problems)
    from acestep_core.dynamic_sets import build_dynamic_set, free_set_paths
    from acestep_core.generation import ensure_output_folder
    from acestep_core.request import slug_from_prompt

    folder = Path(args.output).expanduser() if args.output else Path(slug_from_prompt(args.prompt))
    existing = "overwrite" if args.overwrite else "refuse"
    ensure_output_folder(folder)
    free_set_paths(folder, slug_from_prompt(args.prompt), request.output_format, count, args.stingers,
                   existing, mode)  # taken names: before loading
    from acestep_core.config import configured_reference_library

    library = configured_reference_library(args.against)
    backend = _announced_backend(args)
    result = _run_with_progress(lambda on_progress, is_cancelled: build_dynamic_set(
        request, backend, folder, intensities=count, bars=bars, stingers=args.stingers,
        on_progress=on_progress, is_cancelled=is_cancelled, existing=existing, mode=mode, check_against=library))
    manifest = result.manifest
    _index_in_library([result.base, *result.layers, *result.stingers])
    what = (f"{len(result.layers)} layers (stems that stack: "
            + "; ".join(f"{layer['name']} {'+'.join(layer['parts'])}" for layer in manifest["layers"]) + ")"
            if result.mode == "layers" else f"{len(result.layers)} variant loops")
    print(f"acestep-dcc: wrote a set of {what} ({manifest['bars']} bars, {manifest['bpm']:g} BPM, "
          f"{manifest['key']}) and {len(result.stingers)} stingers to {folder}", file=sys.stderr)
    for note in ([manifest["fallback"]] if manifest.get("fallback") else []) + list(manifest.get("layer_notes") or []):
        print(f"acestep-dcc: note: {note}", file=sys.stderr)
    print(f"acestep-dcc: manifest {result.manifest_path}", file=sys.stderr)
    _print_warnings([tuple(text.split(": ", 1)) for text in result.warnings])
    if args.json:
        import json

        print(json.dumps(manifest, indent=2))
    return 0


def _print_warnings(warnings: list[tuple[str, str]]) -> None:
    """(file name, sentence) pairs, one line each on stderr."""
    for name, text in warnings:
        print(f"acestep-dcc: warning: {name}: {text}", file=sys.stderr)


def _announced_backend(args: argparse.Namespace):
    """The backend the arguments ask for, named once on stderr (sketch also says how to get the model)."""
    from acestep_core.backends import SKETCH_NOTICE, create_backend

    backend = create_backend(args.backend, args.model, args.device)
    if backend.name == "sketch":
        print(f"acestep-dcc: {SKETCH_NOTICE}", file=sys.stderr)
    else:
        print(f"acestep-dcc: backend {backend.describe().label}", file=sys.stderr)
    _print_licence(backend)
    return backend


def _print_licence(backend) -> None:
    """Once per run: the licence every file of the run carries (acestep_core.licence)."""
    from acestep_core.licence import backend_licence

    print(f"acestep-dcc: licence: {backend_licence(backend.describe())['summary']}", file=sys.stderr)


def _run_with_progress(run):
    """run(on_progress, is_cancelled) on its own thread, with progress on stderr.

    The main thread only waits, so signals are handled at once whatever the run is doing:
    Ctrl-C asks the run to cancel (it stops within a second and removes what it wrote;
    GenerationCancelled reaches main()), and a second Ctrl-C or SIGTERM removes every file
    in progress and exits at once.
    """
    from acestep_core.audio.writer import discard_files_in_progress

    cancel = threading.Event()
    bar = _ProgressBar()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = run(bar.update, cancel.is_set)
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome["error"] = exc

    def on_signal(signum, _frame) -> None:
        if signum == signal.SIGINT and not cancel.is_set():
            cancel.set()
            print("acestep-dcc: cancelling; press Ctrl-C again to stop at once", file=sys.stderr, flush=True)
            return
        discard_files_in_progress()
        print("acestep-dcc: stopped; no file was written", file=sys.stderr, flush=True)
        os._exit(128 + signum)  # at once: the run's thread may be deep inside numpy

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=work, name="acestep-dcc-run", daemon=True)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.1)
    finally:
        bar.close()
        if not cancel.is_set():  # after a Ctrl-C, another one still exits at once (130), even on the way out
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class _ProgressBar:
    """A tqdm bar on a terminal. On a pipe or a log file, plain lines, so hosts' logs and CI
    see movement: one at every change of stage (a set's "intensity 2/3: generating" or
    "finishing 3/8"; not at every denoising step), one each time another tenth of the
    job is done, and one at least every HEARTBEAT_S while the numbers move."""

    HEARTBEAT_S = 10.0
    _STEP_COUNTER = re.compile(r"(generating) \d+/\d+")

    def __init__(self) -> None:
        self._interactive = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._last_key = None
        self._last_tenth = -1
        self._last_line_at = time.monotonic()
        self._last_line = ""
        self._bar = None
        if self._interactive:  # tqdm only for a terminal: its import is 18 ms of a one-shot run
            from tqdm import tqdm

            self._bar = tqdm(total=1000, file=sys.stderr, unit="", leave=False,
                             bar_format="{desc:<18} {bar} {percentage:3.0f}% {elapsed}")

    def update(self, progress) -> None:
        with self._lock:
            if self._interactive:
                self._bar.set_description_str(progress.stage, refresh=False)
                self._bar.n = int(progress.fraction * 1000)
                self._bar.refresh()
                return
            percent = int(progress.fraction * 100)
            key = self._STEP_COUNTER.sub(r"\1", progress.stage)
            line = f"acestep-dcc: {progress.stage} ... {percent}%"
            now = time.monotonic()
            if (key != self._last_key or percent // 10 > self._last_tenth
                    or (now - self._last_line_at >= self.HEARTBEAT_S and line != self._last_line)):
                self._last_key, self._last_tenth = key, percent // 10
                self._last_line_at, self._last_line = now, line
                print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# -- the cue library (acestep_core.library) --------------------------------------------


def _index_in_library(outputs) -> None:
    """Every cue the CLI writes goes into the user's cue library; a failure only warns."""
    from acestep_core.library import index_outputs_safely

    index_outputs_safely(outputs, warn=lambda text: print(f"acestep-dcc: warning: {text}", file=sys.stderr))


def _add_library_commands(commands) -> None:
    library = commands.add_parser("library", help="search the cues made so far, or index existing ones")
    actions = library.add_subparsers(title="actions", metavar="ACTION")
    library.set_defaults(handler=lambda _: library.print_help(sys.stderr) or EXIT_USAGE)  # no action given
    search = actions.add_parser("search", help="find cues by words, tempo, key, loop, tags, model, licence ...")
    search.add_argument("text", nargs="?", default="", help='words in the prompt or its tags, e.g. "boss"')
    search.add_argument("--bpm", metavar="BPM|MIN-MAX", help="tempo or tempo range, e.g. 140-160")
    search.add_argument("--key", help='key, e.g. "E minor"')
    search.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                        help="only loops (--no-loop: only cues that are not loops)")
    search.add_argument("--seconds", metavar="S|MIN-MAX", help="length or length range in seconds, e.g. 10-30")
    for name, example in (("mood", "tense"), ("scene", "boss battle"), ("style", "rock"), ("instrument", "drums")):
        article = "an" if name[0] in "aeiou" else "a"
        search.add_argument(f"--{name}", help=f"{article} {name} word of the keyword library, e.g. {example!r}")
    search.add_argument("--backend", choices=("acestep", "sketch"))
    search.add_argument("--model", help="part of the model's name, e.g. turbo")
    search.add_argument("--licence", help="part of the licence text, e.g. apache")
    search.add_argument("--seed", type=int)
    search.add_argument("--flagged", action=argparse.BooleanOptionalAction, default=None,
                        help="only cues the originality check flagged (--no-flagged: only those it passed)")
    search.add_argument("--present", action="store_true", help="leave out cues whose file is missing")
    search.add_argument("--limit", type=int, default=50, help="most cues to list (1-500, default: 50)")
    search.add_argument("--json", action="store_true", help="print the cues as JSON on stdout")
    search.set_defaults(handler=run_library_search)
    add = actions.add_parser("add", help="index the cues in a folder (and below) from their sidecars")
    add.add_argument("folder", help="folder holding cues and their NAME.wav.json sidecars")
    add.add_argument("--json", action="store_true", help="print what was indexed as JSON on stdout")
    add.set_defaults(handler=run_library_add)


def run_library_search(args: argparse.Namespace) -> int:
    from acestep_core.library import CueLibrary, LibraryQuery, parse_range

    bpm = parse_range(args.bpm, "--bpm", "bpm")
    seconds = parse_range(args.seconds, "--seconds", "duration")
    query = LibraryQuery(text=args.text, bpm_min=bpm[0], bpm_max=bpm[1], key=args.key, loop=args.loop,
                         duration_min=seconds[0], duration_max=seconds[1], mood=args.mood, scene=args.scene,
                         style=args.style, instrument=args.instrument, backend=args.backend, model=args.model,
                         licence=args.licence, seed=args.seed, flagged=args.flagged,
                         include_missing=not args.present, limit=args.limit)
    if query.tag_problems():
        raise InvalidRequest(query.tag_problems())
    query = query.validated()
    library = CueLibrary()
    cues = library.search(query)
    if args.json:
        import json

        print(json.dumps([cue.to_dict() for cue in cues], indent=2))
    elif cues:
        for cue in cues:
            print(f"{cue.summary()}\n    {cue.prompt}\n    {cue.path}")
    print(f"acestep-dcc: {len(cues)} cue{'s' if len(cues) != 1 else ''} found in {library.path}"
          + ("" if cues else "; index existing cues with 'acestep-dcc library add FOLDER'"), file=sys.stderr)
    return 0


def run_library_add(args: argparse.Namespace) -> int:
    from acestep_core.library import CueLibrary

    library = CueLibrary()
    report = library.add_folder(args.folder)
    for path, why in report.skipped:
        print(f"acestep-dcc: skipped {path}: {why}", file=sys.stderr)
    for path in report.missing:
        print(f"acestep-dcc: marked missing (moved or deleted): {path}", file=sys.stderr)
    print(f"acestep-dcc: indexed {len(report.indexed)} cue{'s' if len(report.indexed) != 1 else ''} from "
          f"{args.folder} into {library.path}", file=sys.stderr)
    if args.json:
        import json

        print(json.dumps({"indexed": report.indexed, "missing": report.missing,
                          "skipped": [{"path": p, "reason": r} for p, r in report.skipped]}, indent=2))
    return 0


# -- download-model and doctor ----------------------------------------------------------


def run_download_model(args: argparse.Namespace) -> int:
    from acestep_core import config
    from acestep_core.model_folder import download_model

    repo_id = args.repo_id or config.DEFAULT_REPO_ID
    dest = Path(args.dir).expanduser() if args.dir else config.default_model_dir(repo_id)
    path = download_model(repo_id, dest)
    if not config.load_config().get("model"):
        config.save_config({"model": str(path)})
        print(f"acestep-dcc: {path} is now the default model", file=sys.stderr)
    print(str(path))
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from acestep_core.doctor import run_checks

    all_ok = True
    for check in run_checks(model=args.model, output=Path(args.output)):
        all_ok &= check.ok
        print(("ok   " if check.ok else "FIX  ") + check.message)
    return 0 if all_ok else 1


# -- worker and installers ----------------------------------------------------------------


def run_worker_command(args: argparse.Namespace) -> int:
    from acestep_core.worker.flags import run_from_args

    return run_from_args(args) or 0


def run_install_blender(args: argparse.Namespace) -> int:
    from acestep_core.install.blender import install_blender

    report = install_blender(blender_executable=args.blender, zip_dir=Path(args.zip_dir) if args.zip_dir else None)
    print(report)
    # Blender found but its install failed: the printed report says why and how to do it by hand.
    return 1 if report.blender and not report.installed else 0


def run_install_reaper(args: argparse.Namespace) -> int:
    from acestep_core.install.reaper import install_reaper

    report = install_reaper(Path(args.resource_path).expanduser() if args.resource_path else None)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
