"""`python -m acestep_core.worker`: the worker without the console script.

The same flags as `acestep-dcc worker` (flags.py defines them for both). Hosts start
the worker this way with the Python executable configured in their preferences.
"""

from __future__ import annotations

import argparse
import sys

from acestep_core.threads import apply_thread_settings

apply_thread_settings()  # before the worker's imports load numpy or torch (see acestep_core.threads)

from acestep_core.worker.flags import add_worker_arguments, run_from_args  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m acestep_core.worker",
                                     description="Run the local model worker that Blender and REAPER talk to.")
    add_worker_arguments(parser)
    parser.add_argument("--model", help="ACE-Step model folder (default: $ACESTEP_DCC_MODEL or the configured one)")
    parser.add_argument("--backend", choices=("auto", "acestep", "sketch"), default="auto",
                        help="auto (default): acestep when a model folder is known, else sketch")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
