"""Thread settings that hold up on a busy machine, chosen before numpy or torch is imported.

Standard library only. The CLI and the worker call apply_thread_settings() first thing.

torch's OpenMP threads spin-wait at every barrier by default. On an idle machine that
saves a few microseconds per parallel region; on a busy one (a CPU worker beside
Blender rendering is the common case) a spinning thread burns the core that its
descheduled partner needs, and every barrier waits for the operating system to give
that partner a turn. On 2 cores at load ~3.5 a tiny-checkpoint generation took 16.7 s
with the defaults and 5.0 s with OMP_WAIT_POLICY=PASSIVE (bench/bench_threads.py shows
it under an artificial load). So, unless the user has set them:

- OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep (GNU libgomp and Intel's runtime);
- KMP_BLOCKTIME=0: Intel's OpenMP (MKL builds of torch) sleeps at once after a parallel
  region instead of spinning for 200 ms (libgomp ignores it);
- OMP_NUM_THREADS = the cores this process may run on (taskset, cpusets): torch's
  default is every core of the machine, which oversubscribes a process pinned to fewer;
- OPENBLAS_NUM_THREADS=1: numpy's own BLAS only multiplies small matrices here (the
  sketch's rate changes), where a pool of threads costs more than it gives.

They are read when the OpenMP and BLAS libraries load, so they must be in the
environment before torch or numpy is imported; when torch is already loaded, its
thread count is set through torch.set_num_threads instead. describe() says what is in
use and who chose it, for `acestep-dcc doctor`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# What we set, and its value when the user has not chosen one.
WAIT_POLICY = "OMP_WAIT_POLICY"
BLOCK_TIME = "KMP_BLOCKTIME"
OMP_THREADS = "OMP_NUM_THREADS"
BLAS_THREADS = "OPENBLAS_NUM_THREADS"
# Set to 0 to leave the environment exactly as it is (for measuring the defaults).
DISABLE = "ACESTEP_DCC_THREAD_SETTINGS"


@dataclass(frozen=True)
class ThreadSetting:
    name: str
    value: str | None  # None: not set at all (the library's default)
    chosen_by: str  # "acestep-dcc", "you" (the environment already had it) or "default"


_applied: list[ThreadSetting] = []
_torch_was_loaded = False


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def recommended() -> dict[str, str]:
    return {WAIT_POLICY: "PASSIVE", BLOCK_TIME: "0", OMP_THREADS: str(usable_cores()), BLAS_THREADS: "1"}


def apply_thread_settings(environ: dict[str, str] | None = None) -> list[ThreadSetting]:
    """Set the recommended settings the environment does not set already; returns every
    setting with who chose it. Idempotent; does nothing when ACESTEP_DCC_THREAD_SETTINGS=0.
    Call it before numpy or torch is imported (a later call can only fix torch's thread count)."""
    global _torch_was_loaded
    env = os.environ if environ is None else environ
    settings = []
    enabled = env.get(DISABLE, "1") != "0"
    for name, value in recommended().items():
        if name in env:
            ours = any(s.name == name and s.chosen_by == "acestep-dcc" and s.value == env[name] for s in _applied)
            settings.append(ThreadSetting(name, env[name], "acestep-dcc" if ours else "you"))
        elif enabled:
            env[name] = value
            settings.append(ThreadSetting(name, value, "acestep-dcc"))
        else:
            settings.append(ThreadSetting(name, None, "default"))
    if environ is None:
        _applied[:] = settings
        torch = sys.modules.get("torch")
        if torch is not None and enabled:
            # Loaded already: its OpenMP runtime has read the environment, but its pool size can still be set.
            _torch_was_loaded = True
            chosen = env.get(OMP_THREADS, "")
            if chosen.isdigit() and int(chosen) > 0:
                torch.set_num_threads(int(chosen))
    return settings


def describe() -> str:
    """One line for `doctor`: every setting, its value and who chose it."""
    settings = _applied or apply_thread_settings(dict(os.environ))
    groups = {"acestep-dcc": [], "you": [], "default": []}
    for setting in settings:
        groups[setting.chosen_by].append(setting.name if setting.value is None else f"{setting.name}={setting.value}")
    said = [f"{', '.join(names)} ({who})" for who, names in
            (("set by acestep-dcc", groups["acestep-dcc"]), ("set by you", groups["you"]),
             ("left to the libraries", groups["default"])) if names]
    line = f"thread settings: {'; '.join(said)}; {usable_cores()} usable cores"
    if _torch_was_loaded:
        line += "; torch was loaded before they were applied, so only its thread count follows them"
    return line
