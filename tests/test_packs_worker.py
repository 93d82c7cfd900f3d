"""Style packs through the real worker over real HTTP: GET /v1/packs, styled jobs on the
tiny ACE-Step checkpoint, and the 422s for a pack that cannot run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_packs_support import train_and_install, write_music
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.errors import WorkerRejected
from acestep_core.jobs import DONE
from acestep_core.request import GenerationRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packs(acestep_worker_process, tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    music = write_music(tmp_path_factory.mktemp("music"))
    home = acestep_worker_process.home  # the worker reads its packs from here on every request
    return {name: train_and_install(music, tiny_checkpoint, home, name, seed)
            for name, seed in (("chip", 0), ("town", 1))}


def styled(**fields) -> GenerationRequest:
    return GenerationRequest(prompt="chiptune boss battle", duration=2.0, steps=2, seed=4, **fields)


def test_the_worker_lists_its_packs_and_runs_styled_jobs(acestep_worker: WorkerClient, packs):
    listed = {pack["name"]: pack for pack in acestep_worker.packs()}
    assert set(listed) == {"chip", "town"} and all(pack["usable"] for pack in listed.values())
    assert listed["chip"]["licence"] == "CC-BY-4.0" and listed["chip"]["hash"].startswith("sha256:")
    hashes = []
    for name, scale in (("chip", 1.0), ("town", 0.6), ("chip", 0.3)):
        job = acestep_worker.wait(acestep_worker.submit(styled(style=name, style_scale=scale)).id, timeout=300)
        assert job.status == DONE, job.error
        sidecar = json.loads(Path(job.outputs[0].sidecar_path).read_text())
        assert (sidecar["style"]["name"], sidecar["style"]["scale"]) == (name, scale)
        assert sidecar["style"]["hash"] == listed[name]["hash"]
        hashes.append(sidecar["style"]["hash"])
    assert hashes[0] == hashes[2] != hashes[1]


def test_an_unknown_pack_or_one_for_another_base_is_a_422(acestep_worker: WorkerClient, acestep_worker_process,
                                                            packs):
    with pytest.raises(WorkerRejected, match="no style pack named 'nope'") as refused:
        acestep_worker.submit(styled(style="nope"))
    assert refused.value.status_code == 422 and refused.value.problems[0].field == "style"
    foreign = acestep_worker_process.home / "packs" / "foreign"
    shutil.copytree(packs["chip"], foreign)
    manifest = json.loads((foreign / "pack.json").read_text())
    manifest.update(name="foreign", base_checkpoint={"name": "acestep-v15-xl-turbo", "fingerprint": "sha256:" + "0" * 64})
    (foreign / "pack.json").write_text(json.dumps(manifest))
    try:
        with pytest.raises(WorkerRejected, match="made for the base checkpoint 'acestep-v15-xl-turbo'.*"
                                                 "not for 'acestep-v15-tiny-turbo'"):
            acestep_worker.submit(styled(style="foreign"))
        listed = {pack["name"]: pack for pack in acestep_worker.packs()}
        assert listed["foreign"]["usable"] is False and "acestep-v15-xl-turbo" in listed["foreign"]["reason"]
    finally:
        shutil.rmtree(foreign)


def test_style_scale_without_a_style_is_a_422(acestep_worker: WorkerClient):
    status, body, _ = raw_request(acestep_worker, "POST", "/v1/jobs",
                                  json.dumps({"prompt": "x", "style_scale": 0.5}).encode())
    assert status == 422 and "style_scale is only used with a style pack" in body["detail"]


def test_a_sketch_worker_refuses_a_style_and_says_why_in_its_list(worker: WorkerClient, worker_process,
                                                                  acestep_worker_process, packs):
    shutil.copytree(packs["chip"], worker_process.home / "packs" / "chip")
    (listed,) = worker.packs()
    assert listed["usable"] is False and "sketch backend cannot use a style pack" in listed["reason"]
    with pytest.raises(WorkerRejected, match="sketch backend cannot use a style pack.*leave style empty"):
        worker.submit(styled(style="chip"))
    status, body, _ = raw_request(worker, "POST", "/v1/sets",
                                  json.dumps({"request": {"prompt": "town", "style": "chip"}}).encode())
    assert status == 422 and "sketch backend cannot use a style pack" in body["detail"]
    status, schema, _ = raw_request(worker, "GET", "/v1/openapi.json")
    for name in ("GenerationRequest", "SetGenerationRequest"):
        assert schema["components"]["schemas"][name]["properties"]["style"] == {
            "type": "null", "default": None, "title": "Style"}
