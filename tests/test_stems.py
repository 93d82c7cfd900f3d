"""Stems: `generate --stems` and `acestep-dcc stems FILE`, end to end through the CLI, read
back with soundfile and wavinfo and summed by ffmpeg's amix (a mixer we did not write)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo

from acestep_core.cli import main
from acestep_core.request import TRACK_NAMES

PROMPT = "rock anthem, driving drums"


def generate(*args: str) -> int:
    return main(["generate", PROMPT, "--seconds", "3", "--seed", "11", *args])


def sidecar(path: Path) -> dict:
    return json.loads(Path(f"{path}.json").read_text())


def ffmpeg_sum(paths: list[Path], out: Path) -> np.ndarray:
    """The files summed by ffmpeg's amix without its 1/n scaling, as float32 (frames, channels)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    inputs = [arg for path in paths for arg in ("-i", str(path))]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex",
                    f"amix=inputs={len(paths)}:normalize=0:duration=longest", "-c:a", "pcm_f32le", str(out)],
                   check=True)
    data, _ = sf.read(out, dtype="float32", always_2d=True)
    return data


@pytest.fixture(scope="module")
def sketch_stems(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stems")
    assert generate("--stems", "--bit-depth", "24", "--sample-rate", "48000", "-o", str(folder / "boss.wav"),
                    "--backend", "sketch") == 0
    return folder / "boss.wav"


def test_sketch_stems_are_aligned_and_sum_to_the_mix(sketch_stems: Path, tmp_path: Path):
    mix_info = sf.info(sketch_stems)
    record = sidecar(sketch_stems)
    tracks = [stem["track"] for stem in record["stems"]]
    assert len(tracks) >= 3 and "drums" in tracks and "bass" in tracks and set(tracks) <= set(TRACK_NAMES)
    assert [stem["file"] for stem in record["stems"]] == [f"boss.{track}.wav" for track in tracks]
    assert record["stems_sum_exact"] is True and record["stems_sum"]["max_difference"] <= 1e-6
    paths = [sketch_stems.with_name(stem["file"]) for stem in record["stems"]]
    for track, path in zip(tracks, paths):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (
            mix_info.samplerate, mix_info.channels, mix_info.subtype, mix_info.frames) == (48000, 2, "PCM_24", 144000)
        own = sidecar(path)
        assert (own["stem_of"], own["track"], own["file"]) == ("boss.wav", track, path.name)
        assert own["seed"] == record["seed"] and own["frames_written"] == record["frames_written"]
        assert np.abs(sf.read(path)[0]).max() > 1e-3  # each stem has its part in it
    mix, _ = sf.read(sketch_stems, dtype="float32", always_2d=True)
    summed = ffmpeg_sum(paths, tmp_path / "sum.wav")
    assert summed.shape == mix.shape
    # Each 24-bit file is rounded on its own: half a step of the last bit per file at most.
    step = 1.0 / (1 << 23)
    assert np.abs(summed - mix).max() <= (len(paths) + 1) * step / 2 + 1e-6
    # Aligned: every stem's own part lines up with the mix (no offset a sum could hide).
    drums, _ = sf.read(sketch_stems.with_name("boss.drums.wav"), dtype="float32", always_2d=True)
    lag = np.argmax(np.correlate(mix[:48000, 0], drums[:48000, 0], "full")) - (48000 - 1)
    assert lag == 0


@pytest.mark.parametrize("intro", [[], ["--intro", "2"]], ids=["loop", "intro and loop"])
def test_stems_of_a_loop_carry_the_mix_loop_points(tmp_path: Path, intro: list[str]):
    out = tmp_path / "loop.wav"
    assert generate("--stems", "--loop", "2", *intro, "--bpm", "120", "--loudness", "-16", "-o", str(out),
                    "--backend", "sketch") == 0
    record = sidecar(out)
    loop = record["loop"]
    (mix_loop,) = wavinfo.WavInfoReader(str(out)).smpl.sample_loops
    assert (mix_loop.start, mix_loop.end) == (loop["loop_start"], loop["smpl_end"])
    mix, _ = sf.read(out, dtype="float32", always_2d=True)
    total = np.zeros_like(mix)
    for stem in record["stems"]:
        path = out.with_name(stem["file"])
        (stem_loop,) = wavinfo.WavInfoReader(str(path)).smpl.sample_loops
        assert (stem_loop.start, stem_loop.end) == (mix_loop.start, mix_loop.end)
        assert sidecar(path)["loop"] == loop
        data, _ = sf.read(path, dtype="float32", always_2d=True)
        assert data.shape == mix.shape
        assert np.array_equal(data[-1], data[loop["loop_start"]])  # the guard frame, like the mix's
        total += data
    # Folded, filtered and turned up to -16 LUFS like the mix: 16-bit rounding apart, they sum to it.
    assert record["stems_sum_exact"] is True
    assert np.abs(total - mix).max() <= (len(record["stems"]) + 1) / 65536 + 1e-6


def test_stems_file_splits_a_sketch_file_into_the_same_stems(sketch_stems: Path, tmp_path: Path):
    plain = tmp_path / "boss.wav"
    assert generate("--bit-depth", "24", "--sample-rate", "48000", "-o", str(plain), "--backend", "sketch") == 0
    before = hashlib.sha256(plain.read_bytes()).hexdigest()
    assert main(["stems", str(plain), "--backend", "sketch"]) == 0
    assert hashlib.sha256(plain.read_bytes()).hexdigest() == before  # the file split stays as it was
    expected = sidecar(sketch_stems)["stems"]
    for stem in expected:
        made = plain.with_name(stem["file"])
        assert np.array_equal(sf.read(made, dtype="int32")[0],
                              sf.read(sketch_stems.with_name(stem["file"]), dtype="int32")[0])
        assert sidecar(made)["stem_of"] == "boss.wav"
    # Asked again: the stems are there, so it refuses before rendering anything.
    assert main(["stems", str(plain), "--backend", "sketch"]) == 2
    # Only the tracks asked for, into another folder.
    assert main(["stems", str(plain), "--tracks", "drums,bass", "-o", str(tmp_path / "two")]) == 0
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "boss.bass.wav", "boss.bass.wav.json", "boss.drums.wav", "boss.drums.wav.json"]


def test_stems_file_refuses_a_sketch_file_that_was_changed(tmp_path: Path, capsys):
    out = tmp_path / "boss.wav"
    assert generate("-o", str(out), "--backend", "sketch") == 0
    data, rate = sf.read(out, dtype="int16")
    sf.write(out, (data // 2).astype(np.int16), rate, subtype="PCM_16")
    capsys.readouterr()
    assert main(["stems", str(out), "--backend", "sketch"]) == 2
    error = capsys.readouterr().err
    assert "does not give boss.wav" in error and "base or sft checkpoint" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boss.wav", "boss.wav.json"]


@pytest.mark.parametrize("args, wrong", [
    (["generate", PROMPT, "--task", "extract", "--track", "drum", "--source", "SOURCE"], "drum"),
    (["generate", PROMPT, "--stems", "--tracks", "drums,bas"], "bas"),
    (["stems", "SOURCE", "--tracks", "Drums"], "Drums"),
])
def test_bad_track_names_are_refused_with_the_list(args, wrong, tmp_path: Path, capsys):
    source = tmp_path / "source.wav"
    sf.write(source, np.zeros((48000, 2), dtype=np.float32), 48000)
    code = main([str(source) if arg == "SOURCE" else arg for arg in args] + ["-o", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error == f"acestep-dcc: track must be one of {', '.join(TRACK_NAMES)}, got {wrong!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.wav"]


def test_stems_file_says_what_is_wrong_with_the_file(tmp_path: Path, sketch_stems: Path, capsys):
    assert main(["stems", str(tmp_path / "missing.wav")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.wav does not exist; pass the audio file to split")
    assert main(["stems", str(sketch_stems.with_name("boss.drums.wav")), "-o", str(tmp_path)]) == 2
    assert "is already the drums stem of boss.wav; split the mix instead" in capsys.readouterr().err


def test_stems_need_extract_on_a_model_that_cannot(tiny_checkpoint_factory, tmp_path: Path, capsys):
    turbo = tiny_checkpoint_factory(variant="turbo")
    out = tmp_path / "out"
    assert generate("--stems", "--model", str(turbo), "-o", str(out / "cue.wav")) == 2
    error = capsys.readouterr().err
    assert "turbo checkpoints were not trained" in error and "download-model ACE-Step/acestep-v15-xl-base" in error
    assert not out.exists() or list(out.iterdir()) == []


def test_extract_on_a_turbo_checkpoint_is_refused_before_any_work(tiny_checkpoint_factory, tmp_path: Path, capsys):
    turbo = tiny_checkpoint_factory(variant="turbo")
    source = tmp_path / "take.wav"
    sf.write(source, np.zeros((48000, 2), dtype=np.float32), 48000)
    out = tmp_path / "out"
    assert main(["generate", PROMPT, "--task", "extract", "--track", "drums", "--source", str(source),
                 "--model", str(turbo), "-o", str(out / "drums.wav")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "extract needs a base or sft checkpoint; ACE-Step's turbo checkpoints were not trained for it: run "
        "'acestep-dcc download-model ACE-Step/acestep-v15-xl-base-diffusers' and pass --model")
    assert not out.exists() or list(out.iterdir()) == []


def test_base_checkpoint_makes_stems_by_extract(tiny_checkpoint_factory, tmp_path: Path):
    base = tiny_checkpoint_factory(variant="base")
    out = tmp_path / "cue.wav"
    assert generate("--stems", "--tracks", "drums,bass", "--steps", "2", "--seconds", "2", "--model", str(base),
                    "-o", str(out)) == 0
    record = sidecar(out)
    assert [stem["track"] for stem in record["stems"]] == ["drums", "bass"]
    assert record["stems_sum_exact"] is False and "extracted from the mix by the model" in record["stems_sum"]["note"]
    for stem in record["stems"]:
        info = sf.info(out.with_name(stem["file"]))
        assert (info.frames, info.samplerate, info.channels) == (2 * 44100, 44100, 2)
        assert sidecar(out.with_name(stem["file"]))["made_by"].startswith("extracted")
    # A file no sketch made is split by extract too, at its own length and rate.
    source = tmp_path / "take.wav"
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(int(1.5 * 48000)) / 48000)
    sf.write(source, np.stack([tone, tone], axis=1), 48000, subtype="PCM_24")
    assert main(["stems", str(source), "--tracks", "bass", "--model", str(base), "--backend", "acestep"]) == 0
    info = sf.info(tmp_path / "take.bass.wav")
    assert (info.frames, info.samplerate, info.subtype) == (int(1.5 * 48000), 48000, "PCM_24")
    assert sidecar(tmp_path / "take.bass.wav")["stem_of"] == "take.wav"


def test_overwriting_a_mix_removes_the_stems_it_no_longer_has(tmp_path: Path):
    out = tmp_path / "boss.wav"
    assert generate("--stems", "-o", str(out), "--backend", "sketch") == 0
    assert (tmp_path / "boss.drums.wav").is_file()
    keep = tmp_path / "boss.notes.wav"  # not a stem of boss.wav: left alone
    keep.write_bytes(b"mine")
    assert generate("--stems", "--tracks", "bass,vocals", "--overwrite", "-o", str(out), "--backend", "sketch") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "boss.bass.wav", "boss.bass.wav.json", "boss.notes.wav", "boss.wav", "boss.wav.json"]
    record = sidecar(out)
    assert [stem["track"] for stem in record["stems"]] == ["bass"]
    assert record["stems_sum_exact"] is False and "leave out" in record["stems_sum"]["note"]
    assert "no vocals stem was written" in " ".join(record["warnings"])


@pytest.mark.parametrize("when", ["a stem is being written", "the first cue and its stems are in place"])
def test_a_cancel_while_stems_are_written_leaves_nothing(tmp_path: Path, when):
    from acestep_core.backends.sketch import SketchBackend
    from acestep_core.errors import GenerationCancelled
    from acestep_core.generation import generate_cues
    from acestep_core.request import GenerationRequest

    cancelled_at: list[float] = []
    progress_seen: list = []

    def is_cancelled() -> bool:
        if not cancelled_at:
            if when == "a stem is being written":
                reached = any(".partial" in p.name and ".drums." in p.name for p in tmp_path.iterdir())
            else:
                reached = any(p.stage == "writing" and p.fraction > 0.95 for p in progress_seen)
            if reached:
                cancelled_at.append(time.monotonic())
        return bool(cancelled_at)

    request = GenerationRequest(prompt=PROMPT, duration=20, candidates=2, seed=5, stems=True)
    with pytest.raises(GenerationCancelled):
        generate_cues(request, SketchBackend(), tmp_path / "boss.wav", on_progress=progress_seen.append,
                      is_cancelled=is_cancelled)
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 1.0
    assert list(tmp_path.iterdir()) == []
