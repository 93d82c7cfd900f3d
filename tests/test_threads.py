"""Thread settings (acestep_core.threads) and what a one-shot sketch run imports: each in a
fresh interpreter, since both are about what happens before numpy or torch is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SETTINGS = ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_python(code: str, tmp_path: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS and k != "ACESTEP_DCC_THREAD_SETTINGS"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SKETCH_RUN = """
import json, os, sys
from acestep_core.cli import main
code = main(["generate", "boss battle, rock", "--seconds", "2", "--seed", "1", "--backend", "sketch", "-o", "cue.wav"])
print(json.dumps({"code": code, "modules": [m for m in ("scipy.signal", "torch", "diffusers", "numpy") if m in sys.modules],
                  "env": {k: os.environ.get(k) for k in %r}}))
""" % (SETTINGS,)


def test_a_sketch_generate_through_the_cli_imports_neither_scipy_signal_nor_torch(tmp_path: Path):
    result = run_python(SKETCH_RUN, tmp_path)
    assert result["code"] == 0 and (tmp_path / "cue.wav").is_file()
    assert "numpy" in result["modules"]  # the probe does see what was imported
    assert "scipy.signal" not in result["modules"] and "torch" not in result["modules"]
    assert "diffusers" not in result["modules"]


def test_the_cli_sets_thread_settings_that_hold_up_under_load(tmp_path: Path):
    env = run_python(SKETCH_RUN, tmp_path)["env"]
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0"
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["OMP_NUM_THREADS"] == str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())


def test_settings_the_user_made_are_kept(tmp_path: Path):
    env = run_python(SKETCH_RUN, tmp_path, OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="3")["env"]
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and env["OMP_NUM_THREADS"] == "3"
    assert env["KMP_BLOCKTIME"] == "0"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or os.cpu_count() < 2, reason="needs two cores and affinity")
def test_torch_uses_the_cores_the_process_may_run_on(tmp_path: Path):
    code = """
import json, os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from acestep_core.threads import apply_thread_settings
apply_thread_settings()
import torch
print(json.dumps({"threads": torch.get_num_threads()}))
"""
    assert run_python(code, tmp_path)["threads"] == 1  # torch's own default is every core of the machine


def test_the_worker_applies_them_before_its_imports(tmp_path: Path):
    code = """
import json, os, runpy, sys
sys.argv = ["acestep_core.worker", "--help"]
try:
    runpy.run_module("acestep_core.worker", run_name="__main__")
except SystemExit:
    pass
print(json.dumps({"policy": os.environ.get("OMP_WAIT_POLICY")}))
"""
    assert run_python(code, tmp_path)["policy"] == "PASSIVE"


def test_doctor_says_which_settings_are_in_use(tmp_path: Path):
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    environment["OMP_NUM_THREADS"] = "3"
    done = subprocess.run([sys.executable, "-m", "acestep_core", "doctor", "-o", str(tmp_path)], env=environment,
                          capture_output=True, text=True, timeout=120)
    line = next(line for line in done.stdout.splitlines() if "thread settings" in line)
    assert "OMP_WAIT_POLICY=PASSIVE" in line and "KMP_BLOCKTIME=0" in line
    assert "OMP_NUM_THREADS=3 (set by you)" in line
