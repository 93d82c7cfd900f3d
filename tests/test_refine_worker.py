"""Refine through the worker, over real HTTP on 127.0.0.1: WorkerClient.refine reads the
parent's sidecar on this side, the job carries the lineage, and the worker writes it
into every new sidecar; a bad lineage is a 422 with a sentence; the schema says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.errors import InvalidRequest, WorkerRejected
from acestep_core.lineage import lineage_schema
from acestep_core.refine import ParentUnreadable, lineage_lines
from acestep_core.request import GenerationRequest


@pytest.fixture(scope="module")
def parent_job(worker: WorkerClient):
    job = worker.wait(worker.submit(GenerationRequest(prompt="boss battle, rock", duration=3, seed=40, candidates=2,
                                                      key="A minor")).id, timeout=60)
    assert job.status == "done", job.error
    return job


def test_refine_keeps_the_seed_and_records_the_lineage(worker: WorkerClient, parent_job):
    take = parent_job.outputs[1]
    queued = worker.refine(take.path, {"prompt": "boss battle, rock, faster, more double kick", "bpm": 165,
                                       "candidates": 1}, job=parent_job.id)
    assert queued.request["lineage"]["parent_job"] == parent_job.id
    job = worker.wait(queued.id, timeout=60)
    assert job.status == "done", job.error
    [cue] = job.outputs
    assert cue.seed == take.seed == 41
    lineage = cue.metadata["lineage"]
    assert lineage == json.loads(Path(cue.sidecar_path).read_text())["lineage"]
    assert (lineage["parent_file"], lineage["parent_seed"], lineage["parent_candidate"], lineage["parent_job"]) == (
        Path(take.path).name, 41, 2, parent_job.id)
    assert lineage["changed"] == {"prompt": {"before": "boss battle, rock",
                                             "after": "boss battle, rock, faster, more double kick"},
                                  "candidates": {"before": 2, "after": 1}, "bpm": {"before": None, "after": 165.0}}
    assert cue.metadata["request"]["key"] == "A minor" and cue.metadata["tempo"]["used"] == 165.0
    assert lineage_lines(lineage)[0] == f"Refined from {Path(take.path).name} (seed 41, take 2, job {parent_job.id[:8]})"


def test_the_sketch_worker_refuses_a_cover(worker: WorkerClient, parent_job):
    with pytest.raises(WorkerRejected) as refused:
        worker.refine(parent_job.outputs[0].path, cover_strength=0.5)
    assert "the sketch backend cannot do cover" in str(refused.value)


def test_bad_input_is_refused_before_anything_is_sent(worker: WorkerClient, parent_job, tmp_path: Path):
    with pytest.raises(InvalidRequest) as bad:
        worker.refine(parent_job.outputs[0].path, cover_strength=1.2)
    assert str(bad.value).startswith("the cover strength must be between 0 (loosely after the parent) and 1")
    with pytest.raises(ParentUnreadable):
        worker.refine(tmp_path / "elsewhere.wav")


@pytest.mark.parametrize("lineage, words", [
    ({"parent_file": "", "parent_seed": 1}, "lineage.parent_file must be the parent's file name"),
    ({"parent_file": "a.wav", "parent_seed": 1, "cover_strength": 3}, "lineage.cover_strength must be between 0 and 1"),
    ({"parent_file": "a.wav"}, "lineage.parent_seed is required"),
    ([1, 2], "lineage must be an object"),
])
def test_a_bad_lineage_is_a_422_with_a_sentence(worker: WorkerClient, lineage, words: str):
    body = json.dumps({"prompt": "calm", "duration": 2, "lineage": lineage}).encode()
    status, answer, _ = raw_request(worker, "POST", "/v1/jobs", body)
    assert status == 422 and [p["field"] for p in answer["problems"]] == ["lineage"]
    assert words in answer["detail"]


def test_the_schema_describes_the_lineage(worker: WorkerClient):
    _, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    components = schema["components"]["schemas"]
    fields = list(components["GenerationRequest"]["properties"])
    assert components["Lineage"] == lineage_schema(fields)
    assert components["GenerationRequest"]["properties"]["lineage"]["anyOf"] == [
        {"$ref": "#/components/schemas/Lineage"}, {"type": "null"}]


@pytest.mark.slow
def test_a_cover_refinement_on_the_acestep_worker(acestep_worker: WorkerClient):
    """The real pipeline's cover task on the tiny checkpoint: the parent is uploaded, the
    lineage says cover and names the parent's own file, not the upload."""
    parent = acestep_worker.wait(acestep_worker.submit(GenerationRequest(prompt="boss battle, rock", duration=2,
                                                                         seed=60)).id, timeout=300)
    assert parent.status == "done", parent.error
    take = parent.outputs[0]
    job = acestep_worker.wait(acestep_worker.refine(take.path, {"prompt": "boss battle, metal"}, cover_strength=0.7,
                                                    job=parent.id).id, timeout=300)
    assert job.status == "done", job.error
    [cue] = job.outputs
    assert cue.seed == 60 and job.request["task"] == "cover" and job.request["source_audio"].startswith("upload-")
    lineage = cue.metadata["lineage"]
    assert (lineage["cover_strength"], lineage["parent_file"], lineage["parent_job"]) == (0.7, Path(take.path).name,
                                                                                         parent.id)
    assert lineage["changed"]["source_audio"] == {"before": None, "after": str(Path(take.path).resolve())}
    assert lineage_lines(lineage) == [f"Cover of {Path(take.path).name} (seed 60, take 1, job {parent.id[:8]}, "
                                      "strength 0.7)", "Changed: prompt 'boss battle, rock' -> 'boss battle, metal'"]
