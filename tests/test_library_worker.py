"""The cue library through the worker: every cue a real worker makes is indexed, and
GET /v1/library (over real HTTP on 127.0.0.1, with the standard-library client) finds
it by the same fields as the CLI; bad values get a 422 with a sentence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.errors import WorkerRejected
from acestep_core.library import LibraryCue, LibraryQuery
from acestep_core.request import GenerationRequest


@pytest.fixture(scope="module")
def made(worker: WorkerClient) -> dict[str, str]:
    """Two jobs on the module's sketch worker: a boss loop (150 BPM, E minor) and a calm cue."""
    paths = {}
    for name, request in (
            ("boss", GenerationRequest(prompt="tense boss battle, synthwave", duration=4, bpm=150, key="E minor",
                                       loop=True, loop_bars=4, seed=21)),
            ("calm", GenerationRequest(prompt="calm exploration, ambient, piano", duration=3, bpm=80, key="D major",
                                       seed=22))):
        job = worker.wait(worker.submit(request).id, timeout=60)
        assert job.status == "done", job.error
        paths[name] = job.outputs[0].path
    return paths


def test_the_workers_cues_are_found_over_http(worker: WorkerClient, made: dict[str, str]):
    [boss] = worker.library_search(text="boss", bpm_min=140, bpm_max=160, key="E minor", loop=True)
    assert isinstance(boss, LibraryCue) and boss.path == made["boss"]
    assert (boss.bpm, boss.key, boss.loop, boss.loop_bars, boss.seed, boss.backend) == (150.0, "E minor", True, 4, 21,
                                                                                         "sketch")
    assert boss.licence.startswith("Apache-2.0") and boss.scenes == ["boss battle"] and not boss.missing
    assert [c.path for c in worker.library_search(LibraryQuery(instrument="piano"))] == [made["calm"]]
    assert [c.path for c in worker.library_search(key="d major", loop=False)] == [made["calm"]]
    assert worker.library_search(text="boss", loop=False) == []
    assert {c.path for c in worker.library_search()} >= set(made.values())


def test_the_answer_is_what_the_schema_says(worker: WorkerClient, made: dict[str, str]):
    status, body, _ = raw_request(worker, "GET", "/v1/library?q=calm&duration_min=2&duration_max=3.5&limit=5")
    assert status == 200 and body["count"] == 1 == len(body["cues"])
    _, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    cue_schema = schema["components"]["schemas"]["LibraryCue"]
    assert set(body["cues"][0]) == set(cue_schema["properties"])
    parameters = {p["name"] for p in schema["paths"]["/v1/library"]["get"]["parameters"]}
    assert parameters == {"q", *(name for name in LibraryQuery.__dataclass_fields__ if name != "text")}


@pytest.mark.parametrize("query, field", [
    ("key=H%20minor", "key"),
    ("bpm_min=fast", "bpm_min"),
    ("limit=0", "limit"),
    ("loop=perhaps", "loop"),
])
def test_bad_values_are_a_422_with_a_sentence(worker: WorkerClient, query: str, field: str):
    status, body, _ = raw_request(worker, "GET", f"/v1/library?{query}")
    assert status == 422 and body["detail"].startswith("the request has problems: ")
    assert [p["field"] for p in body["problems"]] == [field]
    with pytest.raises(WorkerRejected):
        worker.library_search(LibraryQuery(limit=0))


def test_a_file_gone_from_the_worker_is_marked_missing(worker: WorkerClient):
    job = worker.wait(worker.submit(GenerationRequest(prompt="victory fanfare, orchestral", duration=2,
                                                      seed=23)).id, timeout=60)
    path = job.outputs[0].path
    [cue] = worker.library_search(text="fanfare")
    assert cue.path == path and not cue.missing
    os.unlink(path)
    [cue] = worker.library_search(text="fanfare")
    assert cue.missing and Path(cue.path).name == Path(path).name
    assert worker.library_search(text="fanfare", include_missing=False) == []


def test_a_host_on_another_machine_downloads_a_library_cue(worker: WorkerClient, made: dict[str, str], tmp_path):
    """GET /v1/library/{id}/file and /sidecar serve only what the library indexed, by id."""
    import json

    [boss] = worker.library_search(text="boss")
    audio, sidecar = worker.library_download(boss.id, tmp_path / "here.wav")
    assert audio == tmp_path / "here.wav" and audio.read_bytes() == Path(made["boss"]).read_bytes()
    assert sidecar == tmp_path / "here.wav.json"
    assert json.loads(sidecar.read_text()) == json.loads(Path(made["boss"] + ".json").read_text())
    status, body, _ = raw_request(worker, "GET", "/v1/library/999999/file")
    assert status == 404 and body["detail"] == "the cue library has no cue 999999; search it with GET /v1/library"
    assert raw_request(worker, "GET", "/v1/library/0/file")[0] == 422
    job = worker.wait(worker.submit(GenerationRequest(prompt="stealth, electronic", duration=2, seed=24)).id,
                      timeout=60)
    [stealth] = worker.library_search(text="stealth")
    os.unlink(job.outputs[0].path)
    status, body, _ = raw_request(worker, "GET", f"/v1/library/{stealth.id}/file")
    assert status == 410 and "(moved or deleted); index its new folder with 'acestep-dcc library add FOLDER'" in \
        body["detail"]
    with pytest.raises(WorkerRejected, match="is gone from"):
        worker.library_download(stealth.id, tmp_path / "gone.wav")
    assert not (tmp_path / "gone.wav").exists()


def test_every_cue_of_a_set_the_worker_makes_is_indexed(worker: WorkerClient):
    request = GenerationRequest(prompt="desert chase, chiptune", duration=8, seed=25)
    job = worker.wait(worker.submit_set(request, intensities=2, bars=2, stingers=1).id, timeout=120)
    assert job.status == "done", job.error
    indexed = {cue.path: cue for cue in worker.library_search(text="desert chase", limit=20)}
    assert {output.path for output in job.outputs} <= set(indexed)
    assert {o.set_role for o in job.outputs} >= {"base", "layer", "stinger"}
    assert all(indexed[o.path].licence.startswith("Apache-2.0") for o in job.outputs)  # layers' sidecars too
