"""The worker's HTTP API against a real sketch-backend worker on 127.0.0.1: the happy
path, the token, and every kind of bad input a client could send."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.errors import InvalidRequest, JobNotFound, WorkerAuthFailed, WorkerRejected
from acestep_core.jobs import DONE
from acestep_core.request import GenerationRequest

SHORT = {"duration": 2.0, "bpm": 120.0, "key": "A minor"}


def short_request(prompt: str = "calm exploration, ambient, soft pads", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **{**SHORT, **fields})


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_tone(path: Path, seconds: float = 1.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t)
    sf.write(path, np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    return path


# -- the happy path ---------------------------------------------------------------------


def test_submit_poll_done_writes_files_under_the_output_folder(worker: WorkerClient, worker_process, tmp_path):
    queued = worker.submit(short_request(candidates=2, file_name="Boss Fight (v2).wav"))
    assert queued.status in ("queued", "running") and len(queued.id) == 32
    assert queued.position in (0, None)

    stages = []
    done = worker.wait(queued.id, timeout=60, poll=0.05, on_status=lambda job: stages.append(job.stage))
    assert done.status == DONE, done.error
    assert done.progress == 1.0
    assert [o.index for o in done.outputs] == [0, 1]
    outputs_dir = worker_process.outputs_dir.resolve()
    for output in done.outputs:
        path = Path(output.path)
        assert path.is_file() and path.resolve().is_relative_to(outputs_dir / queued.id)
        assert path.name in ("Boss-Fight-v2-1.wav", "Boss-Fight-v2-2.wav")  # worker-chosen, sanitized
        assert Path(output.sidecar_path).is_file()
        assert output.metadata["seed"] == output.seed
        info = sf.info(str(path))
        assert info.samplerate == 44100 and abs(info.duration - 2.0) < 0.01

    # The file over HTTP is byte for byte the file on disk, into a folder or to a path.
    fetched = worker.download(queued.id, 1, tmp_path)
    assert fetched == tmp_path / "Boss-Fight-v2-2.wav"
    assert sha256(fetched) == sha256(done.outputs[1].path)
    renamed = worker.download(queued.id, 0, tmp_path / "sub" / "first.wav")
    assert sha256(renamed) == sha256(done.outputs[0].path)


def test_status_reports_stage_text_and_queue_position(worker: WorkerClient):
    first = worker.submit(short_request(duration=20.0))
    second = worker.submit(short_request())
    assert second.position is not None and second.position >= 0
    seen_positions = []
    while True:
        job = worker.status(second.id)
        if job.status == "queued":
            seen_positions.append(job.position)
        if job.finished:
            break
        time.sleep(0.02)
    assert job.status == DONE
    assert seen_positions == sorted(seen_positions, reverse=True)  # only ever moves forward
    assert worker.wait(first.id, timeout=60).status == DONE


def test_history_is_newest_first_and_limited(worker: WorkerClient):
    ids = [worker.submit(short_request()).id for _ in range(3)]
    for job_id in ids:
        worker.wait(job_id, timeout=60)
    recent = worker.jobs(limit=2)
    assert [job.id for job in recent] == ids[::-1][:2]
    assert all(job.status == DONE for job in recent)
    assert len(worker.jobs(limit=1)) == 1


def test_health_says_what_serves(worker: WorkerClient):
    health = worker.health()
    assert health["backend"] == "sketch"
    assert health["version"]
    assert isinstance(health["loaded"], bool)
    assert health["queue_length"] >= 0
    assert "sketch" in health["label"].lower()
    assert health["device"]


def test_openapi_schema_describes_the_one_request_definition(worker: WorkerClient):
    import dataclasses

    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert status == 200
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/GenerationRequest"}
    request_schema = schema["components"]["schemas"]["GenerationRequest"]
    assert set(request_schema["properties"]) == {f.name for f in dataclasses.fields(GenerationRequest)}
    assert request_schema["required"] == ["prompt"] and request_schema["additionalProperties"] is False
    set_body = schema["paths"]["/v1/sets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set_body == {"$ref": "#/components/schemas/SetRequest"}
    set_schema = schema["components"]["schemas"]["SetRequest"]
    assert set(set_schema["properties"]) == {"request", "intensities", "variants", "bars", "stingers"}
    assert set_schema["properties"]["request"] == {"$ref": "#/components/schemas/SetGenerationRequest"}
    status_fields = set(schema["components"]["schemas"]["JobStatus"]["properties"])
    assert {"kind", "set_options", "manifest", "artifacts"} <= status_fields
    assert schema["paths"]["/v1/alive"]["get"]["security"] == []


def api_schema(worker: WorkerClient) -> dict:
    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert status == 200
    return schema


def test_the_schema_declares_every_answer_the_worker_gives(worker: WorkerClient):
    paths = api_schema(worker)["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path != "/v1/alive":
                assert "401" in operation["responses"], (method, path)
    assert {"429", "503", "507"} <= set(paths["/v1/jobs"]["post"]["responses"])
    assert {"429", "503", "507"} <= set(paths["/v1/sets"]["post"]["responses"])
    assert "Retry-After" in paths["/v1/jobs"]["post"]["responses"]["429"]["headers"]
    assert {"413", "415", "422", "507"} <= set(paths["/v1/uploads"]["post"]["responses"])
    assert paths["/v1/uploads"]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    served = paths["/v1/jobs/{job_id}/files/{index}"]["get"]["responses"]
    assert {"audio/wav", "audio/flac", "audio/ogg", "application/json"} <= set(served["200"]["content"])
    assert "410" in served


def test_the_schema_ranges_are_the_validation_ranges(worker: WorkerClient):
    """Every minimum and maximum the schema gives a request field: the value at the bound is
    accepted and the value just past it refused, by the one validation the worker runs."""
    properties = api_schema(worker)["components"]["schemas"]["GenerationRequest"]["properties"]
    checked = set()
    for name, prop in properties.items():
        for branch in [b for b in prop.get("anyOf", [prop]) if b.get("type") in ("integer", "number")]:
            step = 1 if branch["type"] == "integer" else 1e-6
            base = {"prompt": "x", "loop": True} if name in ("loop_bars", "intro_bars") else {"prompt": "x"}
            for bound, past in (("minimum", -step), ("maximum", step), ("exclusiveMinimum", 0)):
                if bound not in branch:
                    continue
                edge = branch[bound]
                accepted = GenerationRequest.from_dict({**base, name: edge + (step if bound == "exclusiveMinimum" else 0)})
                assert accepted is not None
                with pytest.raises(InvalidRequest):
                    GenerationRequest.from_dict({**base, name: edge + past})
                checked.add(name)
    assert checked >= {"duration", "seed", "candidates", "steps", "guidance", "shift", "bpm", "cover_strength",
                       "loop_bars", "intro_bars", "loudness", "true_peak_ceiling_db", "intensity"}
    assert properties["prompt"]["maxLength"] == 2000 and properties["sample_rate"]["enum"] == [44100, 48000]


def test_a_file_is_served_with_its_audio_content_type(worker: WorkerClient):
    done = worker.wait(worker.submit(short_request()).id, timeout=60)
    parsed = urllib.parse.urlsplit(worker.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("GET", f"/v1/jobs/{done.id}/files/0", headers={"Authorization": f"Bearer {worker.token}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200 and response.getheader("Content-Type") == "audio/wav"  # as the schema says
    assert body[:4] == b"RIFF"


def test_options_says_which_methods_a_path_takes(worker: WorkerClient):
    job_path = "/v1/jobs/" + "0" * 32
    status, _, _ = raw_request(worker, "OPTIONS", job_path)
    assert status == 204
    allow = options_allow(worker, job_path)
    assert {"GET", "DELETE", "OPTIONS"} <= allow and "POST" not in allow
    assert {"GET", "POST"} <= options_allow(worker, "/v1/jobs")
    status, error, _ = raw_request(worker, "PUT", job_path)
    assert status == 405 and "takes" in error["detail"] and "DELETE" in error["detail"]


def options_allow(worker: WorkerClient, path: str) -> set[str]:
    parsed = urllib.parse.urlsplit(worker.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("OPTIONS", path, headers={"Authorization": f"Bearer {worker.token}"})
        response = conn.getresponse()
        response.read()
        return {m.strip() for m in (response.getheader("Allow") or "").split(",") if m.strip()}
    finally:
        conn.close()


def test_cancel_of_a_finished_job_leaves_it_done(worker: WorkerClient):
    job = worker.wait(worker.submit(short_request()).id, timeout=60)
    assert worker.cancel(job.id).status == DONE


def test_unknown_job_is_a_typed_error(worker: WorkerClient):
    with pytest.raises(JobNotFound):
        worker.status("0" * 32)
    with pytest.raises(JobNotFound):
        worker.cancel("f" * 32)


# -- the token ----------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/v1/health"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("POST", "/v1/sets"),
    ("GET", "/v1/jobs/" + "0" * 32),
    ("DELETE", "/v1/jobs/" + "0" * 32),
    ("GET", "/v1/jobs/" + "0" * 32 + "/files/0"),
    ("POST", "/v1/uploads"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/shutdown"),
    ("GET", "/v1/no-such-thing"),
]


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["no-header", "empty", "wrong"])
@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_every_endpoint_needs_the_token(worker: WorkerClient, method, path, token):
    body = json.dumps({"prompt": "x"}).encode() if method == "POST" else None
    status, error, _ = raw_request(worker, method, path, body, token=token)
    assert status == 401
    assert "token" in error["detail"]
    assert worker.health()["backend"] == "sketch"  # the shutdown without a token did nothing


def test_a_token_that_only_starts_right_is_refused(worker: WorkerClient):
    assert raw_request(worker, "GET", "/v1/health", token=worker.token + "x")[0] == 401
    assert raw_request(worker, "GET", "/v1/health", token=worker.token[:-1])[0] == 401
    assert raw_request(worker, "GET", "/v1/health", headers={"Authorization": worker.token}, token=None)[0] == 401


def test_liveness_probe_needs_no_token_and_says_nothing_else(worker: WorkerClient):
    status, body, _ = raw_request(worker, "GET", "/v1/alive", token=None)
    assert status == 200 and body == {"alive": True}


def test_client_with_a_wrong_token_raises_auth_failed(worker: WorkerClient):
    with pytest.raises(WorkerAuthFailed, match="reconnect"):
        WorkerClient(worker.url, "not-the-token").health()


# -- bad input: 4xx with sentences ------------------------------------------------------------


def post_job(worker: WorkerClient, body: bytes, **headers):
    return raw_request(worker, "POST", "/v1/jobs", body, {"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("body,needle", [
    (b"{prompt: 'boss'", "not valid JSON"),
    (b"", "empty"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_malformed_json_is_a_400_with_a_sentence(worker: WorkerClient, body, needle):
    status, error, _ = post_job(worker, body)
    assert status == 400
    assert needle in error["detail"]
    assert error["problems"] and error["problems"][0]["field"] == "request"


@pytest.mark.parametrize("request_data,field,needle", [
    ([1, 2], "request", "JSON object"),
    ({}, "prompt", "required"),
    ({"prompt": 5}, "prompt", "text"),
    ({"prompt": "x", "duration": "long"}, "duration", "number"),
    ({"prompt": "x", "candidates": 2.5}, "candidates", "whole number"),
    ({"prompt": "x", "seed": True}, "seed", "whole number"),
    ({"prompt": "x", "duration": 0.1}, "duration", "between"),
    ({"prompt": "x", "duration": 1e308 * 10}, "duration", "between"),  # json.dumps writes Infinity
    ({"prompt": "x", "candidates": 99}, "candidates", "between"),
    ({"prompt": "x", "bpm": 1000}, "bpm", "between"),
    ({"prompt": "x", "key": "H major"}, "key", "key must be"),
    ({"prompt": "x", "sample_rate": 22050}, "sample_rate", "44100"),
    ({"prompt": "x", "colour": "blue"}, "colour", "unknown field"),
    ({"prompt": "x", "task": "cover"}, "source_audio", "source audio"),
])
def test_bad_fields_are_a_422_field_by_field(worker: WorkerClient, request_data, field, needle):
    status, error, _ = post_job(worker, json.dumps(request_data).encode())
    assert status == 422, error
    problem = next(p for p in error["problems"] if p["field"] == field)
    assert needle in problem["message"]
    assert problem["message"] in error["detail"]


def test_every_problem_is_reported_at_once(worker: WorkerClient):
    with pytest.raises(WorkerRejected) as caught:
        worker.submit({"prompt": "", "duration": 0, "candidates": 0, "bit_depth": 8})
    assert caught.value.status_code == 422
    assert {p.field for p in caught.value.problems} == {"prompt", "duration", "candidates", "bit_depth"}


@pytest.mark.parametrize("path,body", [
    ("/v1/jobs", rb'{"prompt": "boss \ud800 battle"}'),
    ("/v1/jobs", rb'{"prompt": "boss battle", "lyrics": "la \udcff la"}'),
    ("/v1/sets", rb'{"request": {"prompt": "boss \udfff battle"}}'),
])
def test_a_lone_surrogate_is_a_422_before_the_backend_sees_it(worker: WorkerClient, path, body):
    status, error, _ = raw_request(worker, "POST", path, body, {"Content-Type": "application/json"})
    assert status == 422, error
    [problem] = error["problems"]
    assert problem["field"] in ("prompt", "lyrics") and "not valid UTF-8 text" in problem["message"]


def test_a_number_too_big_for_a_float_is_a_422_not_a_crash(worker: WorkerClient):
    status, error, _ = post_job(worker, b'{"prompt": "x", "duration": 1' + b"0" * 400 + b"}")
    assert status == 422
    assert error["detail"]


def test_oversized_bodies_are_refused_before_reading(worker: WorkerClient):
    huge = json.dumps({"prompt": "x", "lyrics": "la " * 200_000}).encode()
    status, error, _ = post_job(worker, huge)
    assert status == 413 and "larger than" in error["detail"]


def test_oversized_chunked_body_is_refused_while_streaming(worker: WorkerClient):
    parsed = urllib.parse.urlsplit(worker.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    chunks = (b"x" * 65536 for _ in range(16))  # 1 MiB without a Content-Length
    try:
        conn.request("POST", "/v1/jobs", body=chunks, encode_chunked=True,
                     headers={"Authorization": f"Bearer {worker.token}", "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()
    assert worker.health()["backend"] == "sketch"


# -- nothing a client names escapes the worker's folders ---------------------------------------


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "a/b.wav", "a\\b.wav", ".hidden",
                                  "C:\\Windows\\x.wav", "x" * 200, "nul\x00.wav"])
def test_file_names_with_folders_are_refused(worker: WorkerClient, name):
    with pytest.raises(WorkerRejected) as caught:
        worker.submit(short_request(file_name=name))
    assert caught.value.problems[0].field == "file_name"


@pytest.mark.parametrize("source", ["../../etc/passwd", "/etc/passwd", "upload-" + "0" * 32,
                                    "upload-../../../etc/passwd", "C:\\Windows\\win.ini", ""])
def test_source_audio_must_be_an_upload_of_this_worker(worker: WorkerClient, source):
    with pytest.raises(WorkerRejected) as caught:
        worker.submit({"prompt": "x", "task": "cover", "source_audio": source})
    assert caught.value.status_code == 422
    assert "source_audio" in {p.field for p in caught.value.problems} or "task" in {p.field for p in caught.value.problems}


def test_a_reference_clip_the_backend_cannot_follow_is_refused(worker: WorkerClient, tmp_path):
    """The sketch makes no use of a reference: a 422 that says so, not a cue that ignores it."""
    health = worker.health()
    assert health["supports_reference"] is False and health["supports_stems"] is True
    clip = worker.upload(write_tone(tmp_path / "reference.wav"))
    with pytest.raises(WorkerRejected) as caught:
        worker.submit({"prompt": "x", "reference_audio": clip})
    assert caught.value.status_code == 422
    assert [p.field for p in caught.value.problems] == ["reference_audio"]
    assert "sketch backend cannot follow a reference clip" in str(caught.value)
    _, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    assert schema["components"]["schemas"]["GenerationRequest"]["properties"]["reference_audio"]["type"] == "null"
    assert all(job.request.get("reference_audio") is None for job in worker.jobs(limit=100))  # nothing queued


@pytest.mark.parametrize("path", [
    "/v1/jobs/..%2F..%2Fjobs.sqlite3",
    "/v1/jobs/../../etc/passwd",
    "/v1/jobs/%2e%2e",
    "/v1/jobs/" + "0" * 32 + "/files/..%2F..%2Fjobs.sqlite3",
    "/v1/jobs/" + "0" * 32 + "/files/-1",
])
def test_traversal_in_ids_finds_nothing(worker: WorkerClient, path):
    status, error, _ = raw_request(worker, "GET", path)
    assert status in (404, 422)
    assert error["detail"]


@pytest.mark.parametrize("query", ["wait=100", "wait=-1", "wait=soon", "limit=0", "limit=abc"])
def test_bad_query_values_are_a_422_with_the_parameter_named(worker: WorkerClient, query):
    path = f"/v1/jobs/{'0' * 32}?{query}" if query.startswith("wait") else f"/v1/jobs?{query}"
    status, error, _ = raw_request(worker, "GET", path)
    assert status == 422
    assert error["problems"][0]["field"] == query.split("=")[0]


def test_file_index_out_of_range_is_a_404(worker: WorkerClient):
    job = worker.wait(worker.submit(short_request()).id, timeout=60)
    status, error, _ = raw_request(worker, "GET", f"/v1/jobs/{job.id}/files/5")
    assert status == 404 and "numbered from 0" in error["detail"]


# -- uploads ----------------------------------------------------------------------------------


def test_upload_keeps_audio_under_a_worker_chosen_name(worker: WorkerClient, worker_process, tmp_path):
    upload_id = worker.upload(write_tone(tmp_path / "source.wav"))
    assert upload_id.startswith("upload-")
    stored = list((worker_process.data_dir / "uploads").glob(f"{upload_id}.*"))
    assert len(stored) == 1 and stored[0].suffix == ".wav"


def test_upload_name_with_folders_is_only_a_label(worker: WorkerClient, worker_process, tmp_path):
    wav = write_tone(tmp_path / "x.wav").read_bytes()
    target = tmp_path / "escaped.wav"
    name = urllib.parse.quote(f"../../../../../../{target}")
    status, record, _ = raw_request(worker, "POST", f"/v1/uploads?name={name}", wav,
                                    {"Content-Type": "application/octet-stream"})
    assert status == 201
    assert record["original_name"] == "escaped.wav"
    assert not target.exists()
    assert (worker_process.data_dir / "uploads" / f"{record['id']}.wav").is_file()


def test_upload_that_is_not_audio_is_a_415(worker: WorkerClient, worker_process, tmp_path):
    fake = tmp_path / "song.wav"
    fake.write_bytes(b"RIFF....WAVEnot really audio" * 100)
    with pytest.raises(WorkerRejected) as caught:
        worker.upload(fake)
    assert caught.value.status_code == 415 and "not audio" in str(caught.value)
    assert not list((worker_process.data_dir / "uploads").glob(".*partial"))


def test_oversized_upload_is_a_413(spawn_worker, tmp_path):
    small = spawn_worker("sketch", None, "--max-upload-mb", "0.05")
    big = write_tone(tmp_path / "big.wav", seconds=2.0)  # ~380 KB > 50 KB
    with pytest.raises(WorkerRejected) as caught:
        small.client.upload(big)
    assert caught.value.status_code == 413 and "limit" in str(caught.value)
    # Without a Content-Length the worker counts while streaming.
    parsed = urllib.parse.urlsplit(small.client.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("POST", "/v1/uploads", body=iter([big.read_bytes()[i:i + 8192] for i in range(0, 400_000, 8192)]),
                     encode_chunked=True, headers={"Authorization": f"Bearer {small.client.token}",
                                                   "Transfer-Encoding": "chunked"})
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    assert not [p for p in (small.data_dir / "uploads").iterdir()]
    assert small.client.health()["backend"] == "sketch"


def test_worker_still_serves_after_all_of_the_above(worker: WorkerClient):
    job = worker.wait(worker.submit(short_request()).id, timeout=60)
    assert job.status == DONE
