"""Property-based fuzzing of the real worker over real HTTP: schemathesis generates
requests from the worker's own OpenAPI schema (valid and invalid) and checks every
answer against that schema; hypothesis throws arbitrary JSON at the submit endpoints.
No 5xx, the schema says what the worker does, and the worker keeps serving."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient

pytestmark = pytest.mark.slow

FUZZ_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


HERE = Path(__file__).resolve().parent


def test_the_schema_says_what_the_worker_does(worker: WorkerClient, worker_process, tmp_path):
    """schemathesis' every check (status codes, content types, response bodies and headers,
    Allow on OPTIONS and 405, valid data accepted, invalid data refused, no 5xx) from the
    worker's own schema, against the worker; bounded and seeded, so a run is repeatable."""
    st_command = Path(sys.executable).with_name("st")
    if not st_command.is_file():
        pytest.skip("schemathesis' st command is not installed in this environment")
    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert status == 200
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(schema))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"), "NO_COLOR": "1"}
    run = subprocess.run([str(st_command), "--no-color", "--config-file", str(HERE / "schemathesis.toml"), "run",
                          str(schema_file), "--url", worker.url, "-H", f"Authorization: Bearer {worker.token}",
                          "--checks", "all", "--phases", "examples,coverage,fuzzing", "--max-examples", "10",
                          "--seed", "1", "--workers", "1"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)  # its cache goes there
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-8000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated and int(generated.group(1)) >= 300, report[-2000:]
    assert "request failed" not in worker_process.log_text()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
FIELDS = ["prompt", "lyrics", "duration", "seed", "candidates", "steps", "guidance", "shift", "bpm", "key",
          "time_signature", "task", "source_audio", "repaint_start", "repaint_end", "cover_strength",
          "output_format", "sample_rate", "bit_depth", "file_name"]
REQUEST_LIKE = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), JSON_VALUES, max_size=8)


SET_LIKE = st.fixed_dictionaries({}, optional={
    "request": REQUEST_LIKE | JSON_VALUES, "intensities": JSON_VALUES, "variants": JSON_VALUES,
    "bars": JSON_VALUES | st.just("fit"), "stingers": JSON_VALUES,
}) | st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)


@given(body=REQUEST_LIKE | JSON_VALUES)
@FUZZ_SETTINGS
def test_any_json_body_gets_an_answer_not_a_crash(worker: WorkerClient, body):
    status, answer, _ = raw_request(worker, "POST", "/v1/jobs", json.dumps(body).encode(),
                                    {"Content-Type": "application/json"})
    assert status in (202, 400, 422), answer
    if status == 202:
        worker.cancel(answer["id"])
    else:
        assert answer["detail"] and isinstance(answer["problems"], list)


@given(body=SET_LIKE | JSON_VALUES)
@FUZZ_SETTINGS
def test_any_json_set_body_gets_an_answer_not_a_crash(worker: WorkerClient, body):
    status, answer, _ = raw_request(worker, "POST", "/v1/sets", json.dumps(body).encode(),
                                    {"Content-Type": "application/json"})
    assert status in (202, 400, 422), answer
    if status == 202:
        worker.cancel(answer["id"])
    else:
        assert answer["detail"] and isinstance(answer["problems"], list)


@given(body=st.binary(max_size=2000))
@FUZZ_SETTINGS
def test_any_bytes_get_an_answer_not_a_crash(worker: WorkerClient, body):
    status, answer, _ = raw_request(worker, "POST", "/v1/jobs", body)
    assert status in (202, 400, 422), answer
    if status == 202:
        worker.cancel(answer["id"])


def test_the_worker_is_still_serving_after_the_fuzzing(worker: WorkerClient, worker_process):
    assert worker.health()["version"]
    assert "request failed" not in worker_process.log_text()  # no handler raised
