"""Stems through the real worker over HTTP on 127.0.0.1: a job's outputs list their stem
files, the client fetches a cue with its stems and sidecar, and a file the sketch made is
split again into the same stems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from worker_fixtures import raw_request

from acestep_core.client import WorkerClient
from acestep_core.request import GenerationRequest

STEMS = GenerationRequest(prompt="boss battle, rock", duration=4, seed=11, stems=True)


def test_outputs_list_their_stems_and_the_client_fetches_them(worker: WorkerClient, tmp_path: Path):
    job = worker.wait(worker.submit(STEMS).id, timeout=120)
    assert job.status == "done", job.error
    (output,) = job.outputs
    assert [stem["track"] for stem in output.stem_files] == list(output.stems)
    assert len(output.stem_files) >= 2
    # Numbered after the outputs, each fetchable on its own.
    assert [stem["index"] for stem in output.stem_files] == list(range(1, 1 + len(output.stem_files)))
    status, _, body = raw_request(worker, "GET", f"/v1/jobs/{job.id}/files/{output.stem_files[0]['index']}")
    assert status == 200 and body[:4] == b"RIFF"

    (fetched,) = worker.download_outputs(job.id, tmp_path / "cues")
    mix, _ = sf.read(fetched["path"], dtype="float64")
    stems = {track: sf.read(path, dtype="float64")[0] for track, path in fetched["stems"].items()}
    assert set(stems) == set(output.stems)
    assert all(stem.shape == mix.shape for stem in stems.values())
    # Read back by soundfile, the stems sum to the mix within the rounding of each 16-bit file.
    assert np.max(np.abs(sum(stems.values()) - mix)) <= len(stems) / 32768 + 1e-9
    sidecar = json.loads(Path(str(fetched["path"]) + ".json").read_text())
    assert sidecar["stems_sum_exact"] is True and sidecar["backend"]["name"] == "sketch"


def test_a_sketch_cue_fetched_from_the_worker_splits_into_the_same_stems(worker: WorkerClient, tmp_path: Path):
    job = worker.wait(worker.submit(GenerationRequest(prompt="boss battle, rock", duration=4, seed=12)).id,
                      timeout=120)
    (fetched,) = worker.download_outputs(job.id, tmp_path / "cue")
    assert fetched["stems"] == {}
    split = worker.wait(worker.submit_split(fetched["path"], tracks="drums,bass").id, timeout=120)
    assert split.status == "done", split.error
    (rendered,) = worker.download_outputs(split.id, tmp_path / "split")
    assert sorted(rendered["stems"]) == ["bass", "drums"]
    original, _ = sf.read(fetched["path"], dtype="int16")
    again, _ = sf.read(rendered["path"], dtype="int16")
    assert np.array_equal(original, again)  # the same render, so these stems are this file's


def test_a_split_of_a_file_no_sketch_made_needs_a_model_that_extracts(worker: WorkerClient, tmp_path: Path):
    from acestep_core.errors import WorkerRejected

    take = tmp_path / "take.wav"
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(2 * 44100) / 44100)
    sf.write(take, np.stack([tone, tone], axis=1), 44100)
    with pytest.raises(WorkerRejected) as refused:
        worker.submit_split(take, tracks="drums")
    assert refused.value.status_code == 422 and "extract" in str(refused.value)
