"""`acestep-dcc generate` end to end on a tiny random ACE-Step checkpoint: real diffusers
pipeline, real finishing and writing, read back with soundfile and wavinfo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from acestep_core.cli import main

PROMPT = "intense boss battle, rock, fast tempo, electric guitar and drums"


def run_cli(*args: str) -> int:
    return main(["generate", PROMPT, *args])


def read(path: Path) -> np.ndarray:
    data, _ = sf.read(path, dtype="int32", always_2d=True)
    return data


@pytest.fixture(scope="module")
def boss_batch(tiny_checkpoint: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cues") / "boss.wav"
    assert run_cli("--seconds", "3", "--candidates", "3", "--seed", "7", "--bpm", "150", "--key", "E minor",
                   "-o", str(out), "--model", str(tiny_checkpoint)) == 0
    return out.parent


def test_candidates_are_exact_game_ready_files(boss_batch: Path, tiny_checkpoint: Path):
    names = sorted(p.name for p in boss_batch.iterdir())
    assert names == ["boss-1.wav", "boss-1.wav.json", "boss-2.wav", "boss-2.wav.json", "boss-3.wav", "boss-3.wav.json"]
    for k in (1, 2, 3):
        info = sf.info(boss_batch / f"boss-{k}.wav")
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 2, "PCM_16", 3 * 44100)


def test_sidecar_records_request_seed_backend_and_model(boss_batch: Path, tiny_checkpoint: Path):
    seeds = []
    for k in (1, 2, 3):
        sidecar = json.loads((boss_batch / f"boss-{k}.wav.json").read_text())
        seeds.append(sidecar["seed"])
        assert sidecar["request"]["prompt"] == PROMPT
        assert sidecar["request"]["key"] == "E minor" and sidecar["request"]["bpm"] == 150
        assert sidecar["candidate"] == k and sidecar["candidates"] == 3
        assert sidecar["backend"]["name"] == "acestep"
        assert sidecar["backend"]["label"].startswith("ACE-Step 1.5")
        assert Path(sidecar["backend"]["model_path"]) == tiny_checkpoint.resolve()
        assert sidecar["backend"]["device"] == "cpu"
        assert sidecar["settings"]["steps"] == 8  # the turbo checkpoint's own default
        assert sidecar["duration_requested"] == 3.0 and sidecar["frames_written"] == 3 * 44100
        assert {"load_s", "generate_s", "finish_s"} <= set(sidecar["timings"])
        assert sidecar["versions"]["diffusers"] and sidecar["versions"]["torch"]
        assert sidecar["created"].endswith("+00:00")
    assert seeds == [7, 8, 9]


def test_info_chunk_read_by_an_independent_reader(boss_batch: Path):
    info = wavinfo.WavInfoReader(str(boss_batch / "boss-2.wav")).info
    assert info.title == PROMPT
    assert "ACE-Step 1.5" in info.comment and "seed: 8" in info.comment
    assert info.software.startswith("acestep-dcc 0.1.0")


def test_candidate_is_reproducible_alone_from_its_recorded_seed(boss_batch: Path, tiny_checkpoint: Path, tmp_path: Path):
    seed = json.loads((boss_batch / "boss-2.wav.json").read_text())["seed"]
    alone = tmp_path / "again.wav"
    assert run_cli("--seconds", "3", "--seed", str(seed), "--bpm", "150", "--key", "E minor",
                   "-o", str(alone), "--model", str(tiny_checkpoint)) == 0
    batch, single = read(boss_batch / "boss-2.wav"), read(alone)
    # Batched and single matmuls may round differently; allow a couple of 16-bit steps.
    assert np.max(np.abs(batch - single)) <= 2 * 65536
    assert not np.array_equal(read(boss_batch / "boss-1.wav"), batch)


@pytest.mark.parametrize("name, args, subtype, rate, suffix", [
    ("cue.wav", ["--sample-rate", "48000", "--bit-depth", "24"], "PCM_24", 48000, "wav"),
    ("cue", ["--format", "flac"], "PCM_16", 44100, "flac"),
    ("cue.ogg", [], "VORBIS", 44100, "ogg"),
])
def test_other_formats(tiny_checkpoint: Path, tmp_path: Path, name, args, subtype, rate, suffix):
    out = tmp_path / name
    assert run_cli("--seconds", "2", "--seed", "1", "-o", str(out), "--model", str(tiny_checkpoint), *args) == 0
    info = sf.info(tmp_path / f"cue.{suffix}")
    assert (info.subtype, info.samplerate, info.frames) == (subtype, rate, 2 * rate)


def test_bad_values_are_one_message_each_and_exit_2(tmp_path: Path, capsys):
    assert main(["generate", PROMPT, "--seconds", "0", "--candidates", "12", "--key", "Q", "-o",
                 str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "duration must be between 1 and 600 seconds" in err
    assert "candidates must be between 1 and 8" in err
    assert "key must be a note and a mode" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_missing_model_folder(tmp_path: Path, capsys):
    assert run_cli("--seconds", "2", "-o", str(tmp_path / "x.wav"), "--model", str(tmp_path / "nope")) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "download-model" in err
    assert not (tmp_path / "x.wav").exists()


def test_incomplete_model_folder(tiny_checkpoint_factory, tmp_path: Path, capsys):
    folder = tiny_checkpoint_factory("broken")
    next((folder / "transformer").glob("*.safetensors")).unlink()
    assert run_cli("--seconds", "2", "-o", str(tmp_path / "out" / "x.wav"), "--model", str(folder)) == 2
    err = capsys.readouterr().err
    assert "transformer" in err and "Traceback" not in err
    assert not any((tmp_path / "out").glob("*.wav"))


def test_folder_that_is_not_acestep(tmp_path: Path, capsys):
    other = tmp_path / "sd"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert run_cli("--seconds", "2", "-o", str(tmp_path / "x.wav"), "--model", str(other)) == 2
    assert "StableDiffusionPipeline" in capsys.readouterr().err


def test_unwritable_output(tiny_checkpoint: Path, tmp_path: Path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores folder permissions")
        assert run_cli("--seconds", "2", "-o", str(locked / "x.wav"), "--model", str(tiny_checkpoint)) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_output_under_a_file_is_reported(tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli("--seconds", "2", "--backend", "sketch", "-o", str(blocker / "sub" / "x.wav")) == 2
    err = capsys.readouterr().err
    assert f"{blocker} is not a folder, so the output folder {blocker / 'sub'} cannot be made" in err
    assert "choose another folder with -o" in err


@pytest.mark.slow
def test_ctrl_c_mid_run_cancels_and_leaves_no_file(tiny_checkpoint: Path, tmp_path: Path):
    """A real process, interrupted while denoising: exit 130, nothing under the output folder."""
    out = tmp_path / "cancel" / "cue.wav"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "acestep_core", "generate", PROMPT, "--seconds", "20", "--steps", "200",
         "--candidates", "2", "-o", str(out), "--model", str(tiny_checkpoint)],
        stderr=subprocess.PIPE, env=env)
    seen = b""
    deadline = time.monotonic() + 120
    while b"generating" not in seen and time.monotonic() < deadline:
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert b"generating" in seen, seen.decode(errors="replace")
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    text = (seen + rest).decode(errors="replace")
    assert process.returncode == 130, text
    assert "cancelled; no file was written" in text and "Traceback" not in text
    assert list(out.parent.iterdir()) == []


def test_output_folder_names_the_file_after_the_prompt(tmp_path: Path):
    folder = tmp_path / "music"
    folder.mkdir()
    assert main(["generate", "Dark Cave, ambient!", "--seconds", "2", "--backend", "sketch", "-o", f"{folder}/"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["dark-cave-ambient.wav", "dark-cave-ambient.wav.json"]


def test_a_failure_while_renaming_leaves_no_candidate_behind(tmp_path: Path, capsys):
    """A folder squatting on boss-2.wav makes the second rename fail after boss-1.wav is in
    place: the whole run is undone, nothing half-made stays."""
    (tmp_path / "boss-2.wav").mkdir()
    code = main(["generate", PROMPT, "--seconds", "2", "--candidates", "2", "--backend", "sketch", "--overwrite",
                 "-o", str(tmp_path / "boss.wav")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"writing into {tmp_path} failed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boss-2.wav"]


def test_an_unwritable_place_is_one_sentence(capsys):
    assert main(["generate", PROMPT, "--seconds", "2", "--backend", "sketch", "-o", "/proc/acestep.wav"]) == 2
    err = capsys.readouterr().err
    assert "failed" in err and "choose another folder with -o" in err and "Traceback" not in err
