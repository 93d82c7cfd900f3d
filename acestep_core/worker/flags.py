"""The worker's command-line flags, defined once for `acestep-dcc worker` and
`python -m acestep_core.worker` (standard library only: --help imports no server)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from acestep_core.worker.limits import (
    DEFAULT_KEEP_DAYS, DEFAULT_MAX_OUTPUTS_BYTES, DEFAULT_MAX_QUEUE, DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOADS_TOTAL_BYTES, GB, MB,
)

DEFAULT_MAX_OUTPUTS_GB = DEFAULT_MAX_OUTPUTS_BYTES / GB
DEFAULT_MAX_UPLOADS_GB = DEFAULT_MAX_UPLOADS_TOTAL_BYTES / GB
DEFAULT_MAX_UPLOAD_MB = DEFAULT_MAX_UPLOAD_BYTES / MB


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's own flags (not --model/--backend/--device, which the CLI shares)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, a free one)")
    parser.add_argument("--idle-unload", type=_positive, default=None, metavar="MIN",
                        help="unload the model after this many idle minutes")
    parser.add_argument("--idle-exit", type=_positive, default=None, metavar="MIN",
                        help="exit when no client has talked to the worker for this many minutes and no job "
                             "is queued or running")
    parser.add_argument("--preload", action="store_true",
                        help="load the model in the background at start instead of on the first job")
    parser.add_argument("--max-queue", type=whole_number, default=DEFAULT_MAX_QUEUE, metavar="N",
                        help=f"jobs that may wait; past it a submission gets 429 (default: {DEFAULT_MAX_QUEUE})")
    parser.add_argument("--keep-days", type=_not_negative, default=DEFAULT_KEEP_DAYS, metavar="DAYS",
                        help=f"delete finished jobs' files and uploads older than this (default: {DEFAULT_KEEP_DAYS:g}; "
                             "0 keeps them)")
    parser.add_argument("--max-outputs-gb", type=_not_negative, default=DEFAULT_MAX_OUTPUTS_GB, metavar="GB",
                        help=f"past this total the oldest finished jobs' files are deleted (default: "
                             f"{DEFAULT_MAX_OUTPUTS_GB:g}; 0: no limit)")
    parser.add_argument("--max-uploads-gb", type=_not_negative, default=DEFAULT_MAX_UPLOADS_GB, metavar="GB",
                        help=f"quota of all uploads together; the oldest unused ones make room, else 507 (default: "
                             f"{DEFAULT_MAX_UPLOADS_GB:g}; 0: no quota)")
    parser.add_argument("--max-upload-mb", type=_positive, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                        help=f"largest single source-audio upload (default: {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--state-dir", help="discovery file, lock and log (default: acestep-dcc's state folder)")
    parser.add_argument("--data-dir", help="job database, outputs and uploads (default: acestep-dcc's worker folder)")
    parser.add_argument("--against", metavar="DIR",
                        help="originality check: compare every cue with this reference library (default: "
                             "$ACESTEP_DCC_REFERENCE_LIBRARY, else config.json's reference_library, else no check)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the worker as the parsed flags say (for this module and `acestep-dcc worker`)."""
    from acestep_core.worker.retention import RetentionPolicy
    from acestep_core.worker.serve import run_worker

    if getattr(args, "against", None):  # the runner reads the library per job, from here on too
        import os
        import sys

        from acestep_core.config import REFERENCE_LIBRARY_ENV
        from acestep_core.errors import AceStepError
        from acestep_core.originality.generated import check_reference_library

        try:  # refused at start, not at every job
            os.environ[REFERENCE_LIBRARY_ENV] = str(check_reference_library(Path(args.against)))
        except AceStepError as exc:
            print(f"acestep-dcc worker: {exc}", file=sys.stderr)
            return 2

    retention = RetentionPolicy(keep_days=args.keep_days, max_outputs_bytes=int(args.max_outputs_gb * GB),
                                max_uploads_bytes=int(args.max_uploads_gb * GB))
    return run_worker(host=args.host, port=args.port, model=args.model, backend=args.backend,
                      idle_unload_minutes=args.idle_unload, state_dir=args.state_dir, data_dir=args.data_dir,
                      device=args.device, max_upload_bytes=int(args.max_upload_mb * MB),
                      preload=args.preload, idle_exit_minutes=args.idle_exit, max_queue=args.max_queue,
                      retention=retention)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _not_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value
