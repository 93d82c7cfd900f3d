"""Property-based fuzzing of the real worker over real HTTP: schemathesis generates
requests from the worker's own OpenAPI schema (valid and invalid), hypothesis throws
arbitrary JSON at the submit endpoint. No 5xx, and the worker keeps serving."""

from __future__ import annotations

import json

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient

pytestmark = pytest.mark.slow

FUZZ_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def api_schema(worker: WorkerClient):
    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert status == 200
    return schemathesis.openapi.from_dict(schema)


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis' own pytest plugin does not run under pytest 9 yet, so each operation's
# strategy is driven by hypothesis directly; the requests are schemathesis' all the same.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_from_the_schema_makes_the_worker_fail(api_schema, worker: WorkerClient, mode):
    operations = _operations(api_schema)
    assert {op.path for op in operations} >= {"/v1/jobs", "/v1/sets", "/v1/jobs/{job_id}", "/v1/uploads", "/v1/health"}
    headers = {"Authorization": f"Bearer {worker.token}"}
    sent = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ_SETTINGS
        def call(case):
            response = case.call(base_url=worker.url, headers=headers, timeout=10)
            sent.append(case.path)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code == 202:  # accepted fuzz jobs are cancelled at once
                worker.cancel(response.json()["id"])

        try:
            call()
        except Unsatisfiable:
            # An operation with no parameters and no body has no invalid form to send.
            assert mode is GenerationMode.NEGATIVE, operation.path
    assert len(sent) >= 100


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
    "request": REQUEST_LIKE | JSON_VALUES, "intensities": JSON_VALUES, "bars": JSON_VALUES | st.just("fit"),
    "stingers": JSON_VALUES,
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
