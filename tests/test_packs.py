"""Style packs on the real diffusers AceStepPipeline: a LoRA trained here with peft on the
tiny random checkpoint, installed, zipped, and applied through the acestep backend and
generate_cues (the CLI's and the worker's path)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("peft", reason="style packs need peft (pip install -e '.[packs]')")

from acestep_core.backends.acestep import AceStepBackend  # noqa: E402
from acestep_core.backends.sketch import SketchBackend  # noqa: E402
from acestep_core.cli import main  # noqa: E402
from acestep_core.errors import BackendUnavailable, GenerationCancelled, InvalidRequest  # noqa: E402
from acestep_core.generation import generate_cues  # noqa: E402
from acestep_core.packs import (  # noqa: E402
    SKETCH_REFUSAL,
    PackError,
    PackForAnotherBase,
    PackNotFound,
    PackStore,
    adapter_hash,
    read_pack,
)
from acestep_core.packs.train import TrainingOptions, find_examples, train_pack  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402

RATE = 48000
# Four steps at this rate move the tiny DiT's LoRA far enough to hear (measured: the
# output changes by ~0.02 at peak 0.9); ACE-Step's own 1e-4 needs hundreds of steps.
FAST = dict(steps=4, seconds=2.0, learning_rate=1e-2, save_every=2)


def never() -> bool:
    return False


def write_music(folder: Path) -> Path:
    """Three short tracks: one with a sidecar, one captioned in captions.csv, one by its name."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * RATE) / RATE
    for name, pitch in (("sidecar_tune.wav", 220.0), ("listed.wav", 330.0), ("pulse_lead-loop.wav", 440.0)):
        tone = 0.3 * np.sign(np.sin(2 * np.pi * pitch * t))  # a square wave: chiptune-ish
        soundfile.write(folder / name, np.stack([tone, tone], axis=1).astype(np.float32), RATE)
    (folder / "sidecar_tune.wav.json").write_text(json.dumps({"request": {"prompt": "8-bit boss battle"}}))
    (folder / "captions.csv").write_text("file,caption\nlisted.wav,chiptune town theme\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    return write_music(tmp_path_factory.mktemp("music"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PackStore:
    return PackStore(tmp_path_factory.mktemp("installed-packs"))


@pytest.fixture(scope="module")
def chip(music, tiny_checkpoint, tmp_path_factory, store):
    folder = tmp_path_factory.mktemp("trained") / "chip"
    pack = train_pack(music, tiny_checkpoint, folder, TrainingOptions(name="chip", licence="CC-BY-4.0", **FAST),
                      device="cpu")
    return store.install(pack.folder)


@pytest.fixture(scope="module")
def town(music, tiny_checkpoint, tmp_path_factory, store):
    folder = tmp_path_factory.mktemp("trained") / "town"
    options = TrainingOptions(name="town", seed=7, trigger_words=["town theme"], licence="CC0-1.0", **FAST)
    return store.install(train_pack(music, tiny_checkpoint, folder, options, device="cpu").folder)


@pytest.fixture(scope="module")
def backend(tiny_checkpoint, store):
    loaded = AceStepBackend(tiny_checkpoint, device="cpu", packs_folder=store.folder)
    loaded.load()
    yield loaded
    loaded.unload()


def audio(backend, **fields) -> np.ndarray:
    request = GenerationRequest(prompt="chiptune boss battle", duration=2.0, steps=3, seed=5, **fields).validated()
    return backend.generate(request, [5], lambda progress: None, never).samples


def test_captions_come_from_sidecars_the_captions_file_or_the_name(music):
    found = {e.path.name: (e.caption, e.caption_from) for e in find_examples(music)}
    assert found == {"sidecar_tune.wav": ("8-bit boss battle", "sidecar"),
                     "listed.wav": ("chiptune town theme", "captions.csv"),
                     "pulse_lead-loop.wav": ("pulse lead loop", "file name")}


def test_a_trained_pack_changes_the_output_and_scale_zero_is_the_base_model(backend, chip):
    plain = audio(backend)
    styled = audio(backend, style="chip")
    assert np.abs(styled - plain).max() > 1e-3
    # The adapter is loaded and active at scale 0: its layers add exactly nothing.
    assert np.array_equal(audio(backend, style="chip", style_scale=0.0), plain)
    half = audio(backend, style="chip", style_scale=0.5)
    assert 0 < np.abs(half - plain).max() < np.abs(styled - plain).max()
    assert np.array_equal(audio(backend), plain)  # no pack after a pack: the base model again


def test_switching_packs_keeps_the_pipeline_and_each_adapter(backend, chip, town):
    loads = backend.pipeline_loads
    first_chip = audio(backend, style="chip")
    first_town = audio(backend, style="town")
    assert np.abs(first_town - first_chip).max() > 1e-3
    assert np.array_equal(audio(backend, style="chip"), first_chip)
    assert np.array_equal(audio(backend, style="town"), first_town)
    assert backend.pipeline_loads == loads == 1
    assert sorted(name.split("_")[0] for name in backend.loaded_adapters) == ["chip", "town"]


def test_trigger_words_join_the_prompt_only_when_the_pack_applies(backend, town):
    request = GenerationRequest(prompt="calm", duration=2.0, steps=2, seed=1, style="town").validated()
    settings = backend.generate(request, [1], lambda progress: None, never).settings
    assert settings["style"]["prompt"] == "calm, town theme"
    zero = GenerationRequest(prompt="calm", duration=2.0, steps=2, seed=1, style="town", style_scale=0.0).validated()
    assert backend.generate(zero, [1], lambda progress: None, never).settings["style"]["prompt"] == "calm"


def test_the_sidecar_records_the_pack_name_hash_and_scale(backend, chip, tmp_path):
    request = GenerationRequest(prompt="chiptune", duration=2.0, steps=2, seed=3, style="chip", style_scale=0.7)
    (cue,) = generate_cues(request, backend, tmp_path / "styled.wav")
    sidecar = json.loads(Path(cue.sidecar_path).read_text())
    assert sidecar["style"]["name"] == "chip" and sidecar["style"]["scale"] == 0.7
    assert sidecar["style"]["hash"] == adapter_hash(chip.adapter_path()) and sidecar["style"]["licence"] == "CC-BY-4.0"
    assert sidecar["request"]["style"] == "chip"


def test_a_pack_for_another_base_is_refused_naming_both(chip, store, tiny_checkpoint_factory, tmp_path):
    other = tiny_checkpoint_factory("acestep-v15-other-turbo", seed=1)  # same shapes, other weights
    elsewhere = AceStepBackend(other, device="cpu", packs_folder=store.folder)
    request = GenerationRequest(prompt="x", duration=2.0, steps=2, style="chip")
    with pytest.raises(PackForAnotherBase) as refused:
        generate_cues(request, elsewhere, tmp_path / "x.wav")
    message = str(refused.value)
    assert "acestep-v15-tiny-turbo" in message and "acestep-v15-other-turbo" in message
    assert not elsewhere.loaded and not list(tmp_path.glob("x*"))  # refused before the model loaded


def test_the_sketch_refuses_a_pack_before_any_work(chip, tmp_path):
    request = GenerationRequest(prompt="chiptune", duration=2.0, style="chip")
    with pytest.raises(BackendUnavailable, match="sketch backend cannot use a style pack"):
        generate_cues(request, SketchBackend(), tmp_path / "s.wav")
    assert SKETCH_REFUSAL.startswith("the sketch backend") and not list(tmp_path.iterdir())


def test_an_unknown_pack_is_named_with_the_installed_ones(backend, chip):
    with pytest.raises(PackNotFound, match=r"no style pack named 'nope'.*installed: chip"):
        audio(backend, style="nope")


def test_zip_carries_the_licence_and_installs_again(chip, store, tmp_path):
    archive = store.zip("chip", tmp_path / "chip.zip")
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
        assert {"chip/pack.json", "chip/pytorch_lora_weights.safetensors", "chip/LICENSE"} <= names
        assert "CC-BY-4.0" in opened.read("chip/LICENSE").decode()
    elsewhere = PackStore(tmp_path / "other-user")
    installed = elsewhere.install(archive)
    assert installed.name == "chip" and installed.licence == "CC-BY-4.0"
    assert adapter_hash(installed.adapter_path()) == adapter_hash(chip.adapter_path())
    with pytest.raises(PackError, match="already installed.*--replace"):
        elsewhere.install(archive)
    elsewhere.remove("chip")
    assert elsewhere.list() == []


def test_a_zip_reaching_outside_the_pack_is_refused(chip, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.write(chip.folder / "pack.json", "pack.json")
        opened.writestr("../escaped.txt", "x")
    with pytest.raises(PackError, match="outside the pack"):
        PackStore(tmp_path / "packs").install(archive)
    assert not (tmp_path / "escaped.txt").exists()


def test_pack_toml_and_bad_manifests(chip, tmp_path):
    folder = tmp_path / "tomlpack"
    folder.mkdir()
    (folder / "adapter.safetensors").write_bytes(chip.adapter_path().read_bytes())
    (folder / "pack.toml").write_text(
        'name = "forest"\nlicence = "CC0-1.0"\nadapter = "adapter.safetensors"\nkeys = ["Em", "G"]\n'
        'bpm_range = [70, 95]\ntrigger_words = ["forest"]\nprompt_template = "{prompt}, forest folk"\n'
        f'[base_checkpoint]\nname = "{chip.base_checkpoint["name"]}"\nfingerprint = "{chip.base_checkpoint["fingerprint"]}"\n')
    pack = read_pack(folder)
    assert pack.keys == ["E minor", "G major"] and pack.styled_prompt("dawn") == "dawn, forest folk"
    (folder / "pack.toml").write_text('name = "Forest!"\nlicence = "x"\n[base_checkpoint]\nname="a"\nfingerprint="b"\n')
    with pytest.raises(PackError, match="lowercase letters"):
        read_pack(folder)
    (folder / "pack.toml").write_text('name = "forest"\n[base_checkpoint]\nname="a"\nfingerprint="b"\n')
    with pytest.raises(PackError, match="no 'licence'"):
        read_pack(folder)


def test_training_stops_on_cancel_and_resumes_to_the_same_adapter(music, tiny_checkpoint, tmp_path):
    options = TrainingOptions(name="resumed", **FAST)
    whole = train_pack(music, tiny_checkpoint, tmp_path / "whole", options, device="cpu")
    progress = []
    with pytest.raises(GenerationCancelled, match="stopped at step 2 of 4.*again to resume"):
        train_pack(music, tiny_checkpoint, tmp_path / "split", options, device="cpu",
                   on_progress=progress.append, is_cancelled=lambda: len(progress) >= 2)
    assert (tmp_path / "split-checkpoints" / "checkpoint.pt").is_file() and not (tmp_path / "split").exists()
    lines = []
    resumed = train_pack(music, tiny_checkpoint, tmp_path / "split", options, device="cpu", on_line=lines.append)
    assert any(line.startswith("resuming from step 2") for line in lines)
    assert adapter_hash(resumed.adapter_path()) == adapter_hash(whole.adapter_path())
    assert resumed.training["files"][0]["caption_from"] in ("sidecar", "captions.csv", "file name")


def test_training_refuses_an_empty_folder_and_bad_options(tiny_checkpoint, tmp_path):
    with pytest.raises(InvalidRequest, match="holds no music"):
        train_pack(tmp_path, tiny_checkpoint, tmp_path / "out", TrainingOptions(name="empty"), device="cpu")
    with pytest.raises(InvalidRequest, match="--steps must be"):
        train_pack(tmp_path, tiny_checkpoint, tmp_path / "out", TrainingOptions(name="x", steps=0), device="cpu")


def test_the_cli_trains_installs_lists_zips_and_generates_with_a_style(music, tiny_checkpoint, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("ACESTEP_DCC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["packs", "train", str(music), "--name", "cli", "--model", str(tiny_checkpoint), "--device", "cpu",
                 "--steps", "2", "--seconds", "2", "--learning-rate", "0.01", "--licence", "CC-BY-4.0"]) == 0
    assert "installed cli" in capsys.readouterr().err
    assert main(["packs", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["name"] == "cli" and listed["base_checkpoint"]["name"] == "acestep-v15-tiny-turbo"
    assert main(["generate", "chiptune", "--seconds", "2", "--steps", "2", "--style", "cli:0.8", "--model",
                 str(tiny_checkpoint), "--device", "cpu", "-o", str(tmp_path / "c.wav")]) == 0
    assert json.loads((tmp_path / "c.wav.json").read_text())["style"]["scale"] == 0.8
    assert main(["generate", "x", "--style", "cli:loud", "--model", str(tiny_checkpoint)]) == 2
    assert "NAME:SCALE" in capsys.readouterr().err
    assert main(["generate", "x", "--style", "cli", "--backend", "sketch", "-o", str(tmp_path / "s.wav")]) == 2
    assert "sketch backend cannot use a style pack" in capsys.readouterr().err
    assert main(["packs", "zip", "cli"]) == 0 and (tmp_path / "cli.zip").is_file()
    assert main(["packs", "remove", "cli"]) == 0 and main(["packs", "install", "cli.zip"]) == 0
    assert main(["packs", "remove", "gone"]) == 2
    assert "no style pack named 'gone'" in capsys.readouterr().err


def test_ctrl_c_stops_training_with_a_checkpoint_and_the_same_command_resumes(music, tiny_checkpoint, tmp_path):
    """A real SIGINT to `acestep-dcc packs train`, as Ctrl-C sends it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "ACESTEP_DCC_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "acestep_core", "packs", "train", str(music), "--name", "ctrlc", "--model",
               str(tiny_checkpoint), "--device", "cpu", "--steps", "200", "--seconds", "2", "--save-every", "1000",
               "-o", str(tmp_path / "ctrlc")]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = []
    deadline = time.monotonic() + 120
    for line in process.stderr:
        seen.append(line)
        if "step 10/200" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    text = "".join(seen) + rest
    assert process.returncode == 130, text
    assert "training stopped at step" in text and "again to resume" in text
    assert (tmp_path / "ctrlc-checkpoints" / "checkpoint.pt").is_file() and not (tmp_path / "ctrlc").exists()
    again = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from step" in again.stderr and "installed ctrlc" in again.stderr
    assert read_pack(tmp_path / "ctrlc").training["steps"] == 200


def test_past_its_limit_the_backend_drops_the_least_recently_used_adapter(tiny_checkpoint, store, chip, town):
    backend = AceStepBackend(tiny_checkpoint, device="cpu", packs_folder=store.folder)
    backend.max_loaded_adapters = 1
    first = audio(backend, style="chip")
    audio(backend, style="town")
    assert [name.split("_")[0] for name in backend.loaded_adapters] == ["town"]
    assert np.array_equal(audio(backend, style="chip"), first)  # read again, the same pack
    assert np.array_equal(audio(backend), audio(AceStepBackend(tiny_checkpoint, device="cpu")))
    assert backend.pipeline_loads == 1
