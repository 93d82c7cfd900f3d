"""`python -m acestep_core.worker`: the worker without the console script.

The same flags as `acestep-dcc worker`, plus the folders and limits tests and
installers set explicitly. Hosts start the worker this way with the Python
executable configured in their preferences.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m acestep_core.worker",
                                     description="Run the local model worker that Blender and REAPER talk to.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, a free one)")
    parser.add_argument("--model", help="ACE-Step model folder (default: $ACESTEP_DCC_MODEL or the configured one)")
    parser.add_argument("--backend", choices=("auto", "acestep", "sketch"), default="auto",
                        help="auto (default): acestep when a model folder is known, else sketch")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--idle-unload", type=float, default=None, metavar="MIN",
                        help="unload the model after this many idle minutes")
    parser.add_argument("--state-dir", help="discovery file, lock and log (default: acestep-dcc's state folder)")
    parser.add_argument("--data-dir", help="job database, outputs and uploads (default: acestep-dcc's worker folder)")
    parser.add_argument("--max-upload-mb", type=float, default=None, help="largest source-audio upload (default: 256)")
    parser.add_argument("--preload", action="store_true", help="load the model at start instead of on the first job")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from acestep_core.worker.serve import run_worker

    max_upload = int(args.max_upload_mb * 1024 * 1024) if args.max_upload_mb else None
    return run_worker(host=args.host, port=args.port, model=args.model, backend=args.backend,
                      idle_unload_minutes=args.idle_unload, state_dir=args.state_dir, data_dir=args.data_dir,
                      device=args.device, max_upload_bytes=max_upload, preload=args.preload)


if __name__ == "__main__":
    sys.exit(main())
