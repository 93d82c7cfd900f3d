"""`acestep-dcc refine FILE [--prompt ...] [--bpm ...] [--cover STRENGTH] [-o OUT]`.

Its own command rather than `generate --refine`: generate's options have defaults
(30 s, one candidate, ...), and a refinement must tell an option the user typed from
one left alone, which keeps the parent's value. So every option here defaults to "not
given" (argparse.SUPPRESS) and only the given ones become changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acestep_core.request import OUTPUT_FORMATS, TIME_SIGNATURES

REFINED_SUFFIX = "-refined"
NOT_GIVEN = argparse.SUPPRESS
# Options that are request fields under another name, or that need parsing.
_SIMPLE = {"prompt": "prompt", "lyrics": "lyrics", "seconds": "duration", "candidates": "candidates", "seed": "seed",
           "bpm": "bpm", "key": "key", "time_signature": "time_signature", "steps": "steps", "guidance": "guidance",
           "shift": "shift", "format": "output_format", "sample_rate": "sample_rate", "bit_depth": "bit_depth",
           "true_peak": "true_peak_ceiling_db", "intensity": "intensity"}


def add_refine_parser(commands, add_backend_arguments) -> None:
    refine = commands.add_parser(
        "refine", help="make new candidates from a cue: its request and seed again, with your changes",
        description="Refine a cue acestep-dcc made: its sidecar's request and seed are used again, with only the "
                    "options you give changed; the new sidecars record the lineage (parent file, job, seed, what "
                    "changed). --cover makes a cover of the parent instead (ACE-Step models only).")
    refine.add_argument("file", help="the cue to refine (its sidecar FILE.json must be beside it)")
    refine.add_argument("-o", "--output", default=NOT_GIVEN,
                        help=f"output file or folder (default: NAME{REFINED_SUFFIX}.wav beside the parent, numbered "
                             "when taken)")
    refine.add_argument("--overwrite", action="store_true", help="replace files already there")
    refine.add_argument("--prompt", default=NOT_GIVEN, help='the new prompt, e.g. "faster, more double kick"')
    refine.add_argument("--seconds", type=float, default=NOT_GIVEN)
    refine.add_argument("--candidates", type=int, default=NOT_GIVEN,
                        help="how many versions (default: the parent's); candidate k gets the seed + k")
    refine.add_argument("--seed", type=int, default=NOT_GIVEN, help="another seed (default: the parent's)")
    refine.add_argument("--bpm", type=float, default=NOT_GIVEN)
    refine.add_argument("--key", default=NOT_GIVEN, help='e.g. "E minor"')
    refine.add_argument("--time-signature", choices=TIME_SIGNATURES, default=NOT_GIVEN)
    refine.add_argument("--lyrics", default=NOT_GIVEN)
    refine.add_argument("--steps", type=int, default=NOT_GIVEN)
    refine.add_argument("--guidance", type=float, default=NOT_GIVEN)
    refine.add_argument("--shift", type=float, default=NOT_GIVEN)
    refine.add_argument("--intensity", type=float, default=NOT_GIVEN, help="0 (sparsest) to 1 (fullest)")
    refine.add_argument("--format", choices=OUTPUT_FORMATS, default=NOT_GIVEN)
    refine.add_argument("--sample-rate", type=int, default=NOT_GIVEN)
    refine.add_argument("--bit-depth", type=int, default=NOT_GIVEN)
    refine.add_argument("--loop", nargs="?", const="fit", default=NOT_GIVEN, metavar="BARS|fit")
    refine.add_argument("--no-loop", action="store_true", help="not a loop, though the parent was one")
    refine.add_argument("--intro", default=NOT_GIVEN, metavar="BARS|auto")
    refine.add_argument("--loudness", default=NOT_GIVEN, metavar="console|mobile|none|LUFS")
    refine.add_argument("--true-peak", type=float, default=NOT_GIVEN, metavar="DBTP")
    refine.add_argument("--cover", type=float, default=None, metavar="STRENGTH",
                        help="make the candidates as a cover of the parent's audio, 0 (loosely) to 1 (closely); "
                             "the sketch backend cannot cover")
    add_backend_arguments(refine)
    refine.add_argument("--json", action="store_true", help="print the written files as JSON on stdout")
    refine.set_defaults(handler=run_refine)


def changes_from_args(args: argparse.Namespace, parent_request) -> dict:
    """The request fields the user gave on the command line (nothing else)."""
    from acestep_core import cli

    given = vars(args)
    changes = {field: given[option] for option, field in _SIMPLE.items() if option in given}
    if "loudness" in given:
        changes["loudness"] = cli.loudness_from_text(given["loudness"])
    if args.no_loop:
        changes.update(loop=False, loop_bars=None, intro_bars=0)
    if "loop" in given:
        changes["loop"], changes["loop_bars"] = cli.loop_from_text(given["loop"])
    if "intro" in given:
        bars = changes.get("loop_bars", parent_request.loop_bars)
        changes["intro_bars"] = cli.intro_from_text(given["intro"], bars)
    return changes


def default_output(parent: Path, output_format: str) -> Path:
    return parent.with_name(f"{_file_stem(parent)}{REFINED_SUFFIX}.{output_format}")


def run_refine(args: argparse.Namespace) -> int:
    from acestep_core import cli
    from acestep_core.refine import lineage_lines, read_parent, refine_request

    parent = read_parent(args.file)
    request = refine_request(parent, changes_from_args(args, parent.request), cover_strength=args.cover)
    if request.source_audio and not Path(request.source_audio).is_file():  # a worker's upload id, or moved
        from acestep_core.errors import FieldProblem, InvalidRequest

        raise InvalidRequest([FieldProblem("source_audio", (
            f"{parent.path.name} was made ({request.task}) from source audio that is not on this machine "
            f"({request.source_audio}); pass --cover STRENGTH to work from {parent.path.name} itself"))])
    given = getattr(args, "output", None)
    if given is None:
        output, existing = default_output(parent.path, request.output_format), "number"
    else:
        output = Path(given).expanduser()
        if given.endswith(("/", "\\")) or output.is_dir():
            output = output / default_output(parent.path, request.output_format).name
        existing = "refuse"
    if args.overwrite:
        existing = "overwrite"
    from acestep_core.generation import ensure_output_folder, generate_cues, output_paths, stem_tracks_to_check

    ensure_output_folder(output.parent)
    output_paths(output, request.output_format, request.candidates, existing,
                 stem_tracks=stem_tracks_to_check(request))  # taken names: before loading
    backend = cli._announced_backend(args)
    if request.task == "cover" and "cover" not in backend.describe().supports_tasks:
        from acestep_core.errors import BackendUnavailable

        raise BackendUnavailable(
            f"the {backend.name} backend cannot make a cover of {parent.path.name}; leave out --cover to make it "
            "again with its seed and your changes, or use an ACE-Step model (--backend acestep --model FOLDER)")
    for line in lineage_lines(request.lineage):
        print(f"acestep-dcc: {line}", file=sys.stderr)
    outputs = cli._run_with_progress(lambda on_progress, is_cancelled: generate_cues(
        request, backend, output, on_progress=on_progress, is_cancelled=is_cancelled, existing=existing))
    for cue in outputs:
        print(f"acestep-dcc: wrote {cue.path} ({cue.duration:.2f} s, seed {cue.seed})", file=sys.stderr)
    cli._index_in_library(outputs)
    cli._print_warnings([(Path(cue.path).name, text) for cue in outputs for text in cue.warnings])
    if args.json:
        import json

        print(json.dumps([{**cli._cue_json(c), "lineage": c.metadata.get("lineage")} for c in outputs], indent=2))
    return 0


def _file_stem(path: Path) -> str:
    from acestep_core.output_names import file_stem

    return file_stem(path)
