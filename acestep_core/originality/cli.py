"""`acestep-dcc check FILE... --against DIR [--json]`: the originality check on the command line.

Exit status: 0 when nothing is flagged, 1 when some file is, 2 for a usage error (a
missing or unreadable file, no reference folder), as every acestep-dcc command.
Standard library only at import: the analysis stack loads when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_FLAGGED = 1


def add_check_parser(commands) -> None:
    check = commands.add_parser(
        "check", help="originality check: compare audio files with a reference library of music they must not copy")
    check.add_argument("files", nargs="+", metavar="FILE", help="audio files to check (WAV, FLAC, Ogg, MP3)")
    check.add_argument("--against", metavar="DIR",
                       help="the reference library: a folder of WAV, FLAC, Ogg and MP3 files, searched recursively "
                            "(default: $ACESTEP_DCC_REFERENCE_LIBRARY, else config.json's reference_library)")
    check.add_argument("--library", action="store_true",
                       help="also compare with every cue in the cue library (acestep-dcc library: music already made)")
    check.add_argument("--index", metavar="FILE",
                       help="the index file, built once and updated for new or changed references (default: "
                            "originality-index.sqlite in acestep-dcc's data folder)")
    check.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="processes that analyse new references (default: 1; a first index of a large library "
                            "goes N times faster)")
    check.add_argument("--top", type=int, default=5, help="most similar references to list per file, and every flagged one (default: 5)")
    check.add_argument("--json", action="store_true",
                       help='print a JSON list, one object per file: {"file", "flagged", "matches": [{"reference", '
                            '"score", "flagged", "ranges", "transposed_semitones", "tempo_ratio"}]}')
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from acestep_core.config import configured_reference_library
    from acestep_core.errors import AceStepError

    against = configured_reference_library(args.against)
    if against is None and not args.library:
        raise AceStepError("no reference library to check against; give one with --against DIR (or set "
                           "$ACESTEP_DCC_REFERENCE_LIBRARY), or compare with the cue library with --library")
    if args.top < 1:
        raise AceStepError(f"--top takes a number of references from 1 up, got {args.top}")
    if args.jobs < 1:
        raise AceStepError(f"--jobs takes a number of processes from 1 up, got {args.jobs}")
    files = [Path(name).expanduser() for name in args.files]
    for path in files:  # before the analysis stack loads: a typo costs nothing
        if not path.is_file():
            raise AceStepError(f"{path} does not exist; give the path of an audio file")
    if against is not None and not against.is_dir():
        raise AceStepError(f"the reference library {against} is not a folder; give a folder of WAV, FLAC, Ogg or "
                           "MP3 files")
    from acestep_core.originality import THRESHOLD, ReferenceIndex, check_files

    made = None
    if args.library:
        from acestep_core.library import CueLibrary

        made = CueLibrary().present_files()
    index = ReferenceIndex(Path(args.index).expanduser() if args.index else None)
    results, update = check_files(files, against, index=index, cue_library=made, top=args.top, with_update=True,
                                  workers=args.jobs)
    if update.computed or update.removed:
        where = " and ".join(filter(None, [str(against) if against else "", "the cue library" if made else ""]))
        print(f"acestep-dcc: indexed {len(update.computed)} new or changed references in {where} "
              f"({update.unchanged} unchanged, {len(update.removed)} gone)", file=sys.stderr)
    for _, sentence in update.unreadable:
        print(f"acestep-dcc: warning: skipped a reference: {sentence}", file=sys.stderr)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        for result in results:
            print(describe(result, THRESHOLD))
    return EXIT_FLAGGED if any(result.flagged for result in results) else 0


def describe(result, threshold: float) -> str:
    """The human report of one file: a line, then one indented line per reference listed."""
    lines = [f"{result.file}: " + ("FLAGGED" if result.flagged else f"original (no reference scores {threshold} or more)")]
    for match in result.matches:
        where = "; ".join(f"{r['file'][0]:.1f}-{r['file'][1]:.1f} s here, {r['reference'][0]:.1f}-"
                          f"{r['reference'][1]:.1f} s there" for r in match.ranges)
        moved = []
        if match.transposed_semitones:
            moved.append(f"{match.transposed_semitones:+d} semitone{'s' if abs(match.transposed_semitones) > 1 else ''}")
        if match.tempo_ratio != 1.0:
            moved.append(f"tempo x{match.tempo_ratio:.3f}")
        lines.append(f"  {'flagged ' if match.flagged else ''}{match.score:.3f} {match.reference} ({where}"
                     + (f"; {', '.join(moved)}" if moved else "") + ")")
    return "\n".join(lines)


def originality_note(outputs, library: Path) -> str:
    """One line after generate: what the cues were checked against and which were flagged
    (each flagged cue's own warning names the reference)."""
    flagged = [Path(cue.path).name for cue in outputs if (cue.metadata.get("originality") or {}).get("flagged")]
    checked = list((outputs[0].metadata.get("originality") or {}).get("checked_against") or [str(library)])
    what = ", ".join(checked[:-1]) + " and " + checked[-1] if len(checked) > 1 else checked[0]
    what = what.replace("other candidates", "the other candidates").replace("cue library", "the cue library")
    if not flagged:
        return f"originality: checked against {what}: nothing flagged"
    return f"originality: checked against {what}: FLAGGED {', '.join(flagged)}"
