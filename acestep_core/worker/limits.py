"""The worker's limits and retention defaults, in one place (standard library only, so
the worker's --help and the CLI read them without importing the server).

Documented in `acestep-dcc worker --help` and in retention.py / uploads.py.
"""

GB = 1024 ** 3
MB = 1024 ** 2

DEFAULT_MAX_QUEUE = 100  # jobs waiting; past it POST /v1/jobs and /v1/sets answer 429
DEFAULT_KEEP_DAYS = 30.0  # finished jobs' files and uploads older than this are deleted (0: kept)
DEFAULT_MAX_OUTPUTS_BYTES = 20 * GB  # past this total the oldest finished jobs' files go (0: no limit)
DEFAULT_MAX_UPLOADS_TOTAL_BYTES = 2 * GB  # quota of all uploads together (0: none)
DEFAULT_MAX_UPLOAD_BYTES = 256 * MB  # one upload; 10 minutes of 48 kHz 24-bit stereo WAV is ~173 MB
UPLOAD_GRACE_S = 600.0  # an upload this fresh is never deleted to make room: a client may be about to use it
