"""Dynamic-music sets as one worker job (POST /v1/sets) against a real sketch-backend
worker on 127.0.0.1: layers ("intensities") and variants ("variants"), every file recorded
with its role, the manifest and Godot resources reachable, progress, cancel, bad bodies,
and a restart that keeps it all."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest
import soundfile as sf
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.dynamic_sets import MAX_INTENSITIES, MAX_STINGERS
from acestep_core.errors import WorkerRejected
from acestep_core.jobs import CANCELLED, DONE, FAILED, INTERRUPTED_MESSAGE, SET_JOB, JobStatus
from acestep_core.request import GenerationRequest
from acestep_core.worker.store import JobStore

BOSS = GenerationRequest(prompt="boss battle, rock, driving drums", bpm=120.0, key="A minor", seed=11)
# Long enough that the job is still running when a test acts: 48 bars at 60 BPM is 192 s a loop.
LONG_SET = {"request": GenerationRequest(prompt="slow dread, drones", bpm=60.0, key="D minor").to_dict(),
            "variants": 4, "bars": 48, "stingers": 0}


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def wait_for_stage(client: WorkerClient, job_id: str, needle: str, timeout: float = 120.0) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(job_id)
        if needle in status.stage:
            return status
        assert not status.finished, status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached a stage with {needle!r}")


def post_set(worker: WorkerClient, body) -> tuple[int, dict]:
    status, answer, _ = raw_request(worker, "POST", "/v1/sets", json.dumps(body).encode(),
                                    {"Content-Type": "application/json"})
    return status, answer


# -- the happy path ---------------------------------------------------------------------------


def test_a_layered_set_is_one_job_whose_files_say_their_roles(worker: WorkerClient, worker_process, tmp_path):
    queued = worker.submit_set(BOSS, intensities=3, bars=4, stingers=2)
    assert queued.kind == SET_JOB and queued.status in ("queued", "running")
    assert queued.set_options == {"intensities": 3, "bars": 4, "stingers": 2}
    stages = []
    done = worker.wait(queued.id, timeout=120, poll=0.05, on_status=lambda job: stages.append(job.stage))
    assert done.status == DONE, done.error
    assert any(stage.startswith("base cue and its parts: ") for stage in stages)  # stages name the part being made

    # Cues first, in set order, numbered as the files endpoint numbers them.
    roles = [(o.index, o.set_role, o.metadata["set"].get("level"), o.metadata["set"].get("number")) for o in done.outputs]
    assert roles == [(0, "base", None, None), (1, "layer", 1, None), (2, "layer", 2, None),
                     (3, "layer", 3, None), (4, "stinger", None, 1), (5, "stinger", None, 2)]
    parts = [o.metadata["set"]["parts"] for o in done.outputs[1:4]]
    assert parts == [layer["parts"] for layer in done.manifest["layers"]] and all(parts)
    assert len({track for group in parts for track in group}) == sum(map(len, parts))  # each part in one layer
    loops = [o.metadata["loop"] for o in done.outputs[:4]]
    assert all(loop["bars"] == 4 and loop["bpm"] == 120.0 for loop in loops)
    assert len({(loop["loop_start"], loop["loop_end_exclusive"]) for loop in loops}) == 1  # matched loop points
    assert len({sf.info(o.path).frames for o in done.outputs[:4]}) == 1  # sample-aligned, one length
    assert all(o.metadata["loop"] is None for o in done.outputs[4:])
    assert done.outputs[0].stem_files == [] and done.outputs[0].stems == {}  # the layers are the stems

    # The manifest and the Godot resources come after the cues, and the status carries the manifest.
    assert [(a.index, a.role) for a in done.artifacts] == [(6, "manifest"), (7, "godot_resource"), (8, "godot_layers")]
    job_folder = (worker_process.outputs_dir / queued.id).resolve()
    for path in [o.path for o in done.outputs] + [a.path for a in done.artifacts]:
        assert Path(path).parent == job_folder and Path(path).is_file()
    assert sorted(p.name for p in job_folder.iterdir()) == sorted(
        [Path(o.path).name for o in done.outputs] + [Path(o.sidecar_path).name for o in done.outputs]
        + [Path(a.path).name for a in done.artifacts])  # no per-part stems left behind
    manifest_file = json.loads(Path(done.artifact("manifest").path).read_text())
    assert done.manifest == manifest_file
    assert done.manifest["mode"] == "layers" and done.manifest["layer_files"] == "stems"
    assert done.manifest["bars"] == 4 and done.manifest["key"] == "A minor"
    assert done.manifest["intensity_order"] == [Path(o.path).name for o in done.outputs[1:4]]
    assert done.manifest["base"]["file"] == Path(done.outputs[0].path).name
    assert done.manifest["engines"]["godot"]["resource"] == Path(done.artifact("godot_layers").path).name

    # Every file comes over HTTP byte for byte.
    for index, path in enumerate([o.path for o in done.outputs] + [a.path for a in done.artifacts]):
        fetched = worker.download(queued.id, index, tmp_path)
        assert fetched.name == Path(path).name and sha256(fetched) == sha256(path)
    assert 'type="AudioStreamSynchronized"' in (tmp_path / Path(done.artifact("godot_layers").path).name).read_text()
    assert 'type="AudioStreamInteractive"' in (tmp_path / Path(done.artifact("godot_resource").path).name).read_text()
    assert raw_request(worker, "GET", f"/v1/jobs/{queued.id}/files/9")[0] == 404
    # The layers fetched over HTTP sum to the base mix fetched over HTTP (console-quiet: no limiting).
    layers = [sf.read(tmp_path / Path(o.path).name, dtype="float64")[0] for o in done.outputs[1:4]]
    base = sf.read(tmp_path / Path(done.outputs[0].path).name, dtype="float64")[0]
    assert abs(sum(layers) - base).max() <= done.manifest["layers_sum"]["max_difference"] + 1e-12 < 1e-3

    # The history says what it was too.
    [listed] = [job for job in worker.jobs(limit=5) if job.id == queued.id]
    assert listed.kind == SET_JOB and len(listed.artifacts) == 3 and listed.manifest["bpm"] == 120.0


def test_a_set_of_variants_is_one_job_whose_files_say_their_roles(worker: WorkerClient, worker_process, tmp_path):
    queued = worker.submit_set(BOSS, bars=4, stingers=2, variants=3)
    assert queued.set_options == {"variants": 3, "bars": 4, "stingers": 2}
    stages = []
    done = worker.wait(queued.id, timeout=120, poll=0.05, on_status=lambda job: stages.append(job.stage))
    assert done.status == DONE, done.error
    assert any(stage.startswith("intensity ") for stage in stages)  # stages name the part being made
    roles = [(o.index, o.set_role, o.metadata["set"].get("level"), o.metadata["set"].get("number")) for o in done.outputs]
    assert roles == [(0, "base", None, None), (1, "intensity", 1, None), (2, "intensity", 2, None),
                     (3, "intensity", 3, None), (4, "stinger", None, 1), (5, "stinger", None, 2)]
    assert [o.metadata["set"].get("intensity") for o in done.outputs[1:4]] == [0.0, 0.5, 1.0]
    loops = [o.metadata["loop"] for o in done.outputs[:4]]
    assert len({(loop["loop_start"], loop["loop_end_exclusive"]) for loop in loops}) == 1  # matched loop points
    assert [(a.index, a.role) for a in done.artifacts] == [(6, "manifest"), (7, "godot_resource")]
    assert done.manifest["mode"] == "variants" and done.manifest["layers"] is None
    assert done.manifest["intensity_order"] == [Path(o.path).name for o in done.outputs[1:4]]
    fetched = worker.download(queued.id, 7, tmp_path)
    assert 'type="AudioStreamInteractive"' in fetched.read_text()


def test_bars_fit_loops_the_whole_bars_nearest_the_duration(worker: WorkerClient):
    request = GenerationRequest(prompt="calm exploration, ambient", bpm=120.0, duration=9.0)
    done = worker.wait(worker.submit_set(request, intensities=1, bars="fit", stingers=0).id, timeout=60)
    assert done.status == DONE, done.error
    assert done.set_options == {"intensities": 1, "bars": "fit", "stingers": 0}
    assert [o.set_role for o in done.outputs] == ["base", "layer"]
    assert done.manifest["bars"] == 4  # 9 s at 2 s a bar
    info = sf.info(done.outputs[0].path)
    assert info.frames == done.outputs[0].metadata["loop"]["loop_end_exclusive"] + 1  # the WAV's guard frame


def test_a_set_waits_its_turn_behind_other_jobs(worker: WorkerClient):
    first = worker.submit(GenerationRequest(prompt="cue first", duration=20.0, bpm=100.0))
    queued = worker.submit_set(BOSS, intensities=1, bars=2, stingers=0)
    assert queued.position is not None and queued.position >= 0
    done = worker.wait(queued.id, timeout=120)
    assert done.status == DONE
    assert worker.status(first.id).finished_at <= done.finished_at


def test_cancelling_a_running_set_stops_it_and_leaves_no_files(worker: WorkerClient, worker_process):
    status, job = post_set(worker, LONG_SET)
    assert status == 202, job
    running = wait_for_stage(worker, job["id"], "intensity 1/4")
    assert running.status == "running" and 0.0 < running.progress < 1.0
    assert running.eta_seconds is not None and running.eta_seconds > 0  # timed over the whole set
    assert worker.cancel(job["id"]).stage == "cancelling"
    cancelled = worker.wait(job["id"], timeout=60)
    assert cancelled.status == CANCELLED and cancelled.outputs == [] and cancelled.artifacts == []
    assert not (worker_process.outputs_dir / job["id"]).exists()  # the finished base cue went too


# -- bad bodies: 4xx with sentences ---------------------------------------------------------------


@pytest.mark.parametrize("body,field,needle", [
    ({"request": BOSS.to_dict(), "intensities": 0}, "intensities", f"from 1 to {MAX_INTENSITIES}"),
    ({"request": BOSS.to_dict(), "intensities": MAX_INTENSITIES + 1}, "intensities", "whole number"),
    ({"request": BOSS.to_dict(), "intensities": "3"}, "intensities", "whole number"),
    ({"request": BOSS.to_dict(), "intensities": True}, "intensities", "whole number"),
    ({"request": BOSS.to_dict(), "stingers": -1}, "stingers", f"from 0 to {MAX_STINGERS}"),
    ({"request": BOSS.to_dict(), "stingers": 2.5}, "stingers", "whole number"),
    ({"request": BOSS.to_dict(), "bars": 0}, "bars", '"fit"'),
    ({"request": BOSS.to_dict(), "bars": "long"}, "bars", '"fit"'),
    ({"request": BOSS.to_dict(), "bars": None}, "bars", '"fit"'),
    ({"request": {**BOSS.to_dict(), "bpm": 30.0}, "bars": 256}, "bars", "ask for fewer bars"),
    ({"request": BOSS.to_dict(), "colour": "blue"}, "colour", "unknown field"),
    ({"intensities": 3}, "request", "request is required"),
    ({"request": "boss battle"}, "request", "JSON object"),
    ({"request": {"prompt": ""}}, "prompt", "describe the music"),
    ({"request": {"prompt": "x", "task": "repaint", "source_audio": "upload-x", "repaint_start": 0, "repaint_end": 1}},
     "task", "not available for sets"),
    ({"request": {"prompt": "x", "candidates": 3}}, "candidates", "leave candidates at 1"),
    ({"request": {"prompt": "x", "loop": True, "loop_bars": 8}}, "loop_bars", "bars beside the request"),
    ({"request": {"prompt": "x", "intensity": 0.5}}, "intensity", "set intensities instead"),
    ({"request": {"prompt": "x", "stems": True}}, "stems", "chooses its own stems"),
    ({"request": BOSS.to_dict(), "intensities": 3, "variants": 2}, "variants", "not both"),
    ({"request": BOSS.to_dict(), "variants": 0}, "variants", f"variants must be a whole number from 1 to {MAX_INTENSITIES}"),
    ([1, 2], "request", "JSON object"),
])
def test_bad_set_bodies_are_a_422_field_by_field(worker: WorkerClient, body, field, needle):
    status, error = post_set(worker, body)
    assert status == 422, error
    problem = next(p for p in error["problems"] if p["field"] == field)
    assert needle in problem["message"]
    assert problem["message"] in error["detail"]


def test_every_problem_of_a_set_is_reported_at_once(worker: WorkerClient):
    with pytest.raises(WorkerRejected) as caught:
        worker.submit_set({"prompt": "", "duration": 0}, intensities=99, bars=0, stingers=-2)
    assert caught.value.status_code == 422
    assert {p.field for p in caught.value.problems} == {"prompt", "duration", "intensities", "bars", "stingers"}


@pytest.mark.parametrize("body,needle", [(b"{not json", "not valid JSON"), (b"", "empty")])
def test_malformed_set_bodies_are_a_400(worker: WorkerClient, body, needle):
    status, error, _ = raw_request(worker, "POST", "/v1/sets", body, {"Content-Type": "application/json"})
    assert status == 400 and needle in error["detail"]


def test_a_set_body_needs_the_token(worker: WorkerClient):
    body = json.dumps({"request": BOSS.to_dict()}).encode()
    assert raw_request(worker, "POST", "/v1/sets", body, token=None)[0] == 401
    assert raw_request(worker, "POST", "/v1/sets", body, token="wrong")[0] == 401


# -- the record survives a restart -----------------------------------------------------------------

@pytest.mark.slow
def test_a_restart_keeps_finished_sets_and_runs_queued_ones(spawn_worker, tmp_path):
    process = spawn_worker("sketch")
    client = process.client
    finished = client.wait(client.submit_set(BOSS, intensities=2, bars=2, stingers=1).id, timeout=120)
    assert finished.status == DONE
    hashes = {o.path: sha256(o.path) for o in finished.outputs}
    client.submit(GenerationRequest(prompt="keeps the runner busy", duration=120.0, bpm=120.0))
    waiting = client.submit_set(BOSS, intensities=1, bars="fit", stingers=0)
    process.stop()  # the set is still queued behind the long cue

    restarted = process.start()
    again = restarted.status(finished.id)
    assert again.kind == SET_JOB and again.set_options == finished.set_options
    assert again.outputs == finished.outputs and again.artifacts == finished.artifacts
    assert again.manifest == finished.manifest
    assert all(sha256(path) == digest for path, digest in hashes.items())
    assert sha256(restarted.download(finished.id, 4, tmp_path)) == sha256(finished.artifacts[0].path)
    # The set that never began runs after the restart, with its own options.
    done = restarted.wait(waiting.id, timeout=120)
    assert done.status == DONE and done.set_options == {"intensities": 1, "bars": "fit", "stingers": 0}
    assert [o.set_role for o in done.outputs] == ["base", "layer"]


@pytest.mark.slow
def test_a_set_cut_short_by_kill_9_leaves_no_files_after_a_restart(spawn_worker):
    process = spawn_worker("sketch")
    client = process.client
    job = client.submit_set(GenerationRequest(**LONG_SET["request"]), variants=4, bars=48, stingers=0)
    wait_for_stage(client, job.id, "intensity 1/4")
    assert list((process.outputs_dir / job.id).glob("*-base.wav"))  # the base cue is written by now
    process.kill()
    restarted = process.start()
    status = restarted.status(job.id)
    assert status.status == FAILED and status.error == INTERRUPTED_MESSAGE
    assert not (process.outputs_dir / job.id).exists()


def test_a_store_from_before_sets_opens_with_its_history(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as old:  # the first release's jobs table
        old.execute("CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                    "status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, stage TEXT NOT NULL DEFAULT '', "
                    "error TEXT, request TEXT NOT NULL, outputs TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, "
                    "started_at TEXT, finished_at TEXT)")
        old.execute("INSERT INTO jobs (id, status, request, created_at) VALUES ('a' , 'done', '{\"prompt\": \"x\"}', 'then')")
    old.close()
    store = JobStore(path)
    try:
        [job] = store.recent(5)
        assert (job.id, job.kind, job.set_options, job.manifest, job.artifacts) == ("a", "cue", None, None, [])
        store.add_job("b", {"prompt": "y"}, {"intensities": 2, "bars": "fit", "stingers": 0})
        assert store.get("b").kind == SET_JOB
        # A set recorded before variants existed reads as layers; a variants record as variants.
        from acestep_core.worker.sets import SetOptions

        assert SetOptions.from_dict(store.get("b").set_options) == SetOptions(2, None, 0, "layers")
        assert SetOptions.from_dict({"variants": 3, "bars": 8, "stingers": 1}) == SetOptions(3, 8, 1, "variants")
    finally:
        store.close()
