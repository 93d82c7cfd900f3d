"""The acestep backend and model folders, against the real diffusers AceStepPipeline.

Every model here is a tiny random checkpoint saved with save_pretrained in the Hub's
layout (tests/tiny_checkpoint.py) and loaded from disk exactly as a downloaded one.
Downloads run against a stand-in Hub on 127.0.0.1 that speaks the Hub's HTTP API, or
with the network switched off, since no machine here can reach the real one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile
import torch

from acestep_core.backends import create_backend
from acestep_core.backends.acestep import (
    BASE_DEFAULTS,
    TURBO_DEFAULTS,
    AceStepBackend,
    select_device,
    select_dtype,
)
from acestep_core.backends.base import Backend
from acestep_core.errors import (
    BackendUnavailable,
    GenerationCancelled,
    InvalidRequest,
    ModelDownloadFailed,
    ModelIncomplete,
    ModelNotFound,
    NotAnAceStepCheckpoint,
)
from acestep_core.model_folder import DOWNLOAD_RECORD, check_model_folder, download_model, inspect_model_folder
from acestep_core.progress import LOADING, Progress
from acestep_core.request import GenerationRequest

SAMPLE_RATE = 48000
# Candidate k alone vs in a batch: the noise is identical (one generator per candidate);
# batched float32 matmuls may round differently. Measured max difference on CPU: 4.8e-7
# (output peaks at 0.89), so 1e-5 leaves room without hiding a seeding bug (those
# differ by >= 0.05 here).
BATCH_TOLERANCE = 1e-5


def never() -> bool:
    return False


def request(**fields) -> GenerationRequest:
    fields.setdefault("prompt", "tense boss battle, synthwave, fast drums")
    fields.setdefault("duration", 2.0)
    fields.setdefault("steps", 4)
    return GenerationRequest(**fields).validated()


@pytest.fixture(scope="module")
def backend(tiny_checkpoint: Path) -> AceStepBackend:
    loaded = AceStepBackend(tiny_checkpoint, device="cpu")
    loaded.load()
    yield loaded
    loaded.unload()


class DecodeSpy:
    """Counts calls to the real VAE's decode, then hands them on unchanged."""

    def __init__(self, vae):
        self.vae = vae
        self.real_decode = vae.decode
        self.calls = 0

    def __enter__(self) -> "DecodeSpy":
        def counting_decode(*args, **kwargs):
            self.calls += 1
            return self.real_decode(*args, **kwargs)

        self.vae.decode = counting_decode
        return self

    def __exit__(self, *exc) -> None:
        del self.vae.decode  # back to the class's method


# -- the tiny checkpoint is shaped like the real repos -------------------------------------


def test_tiny_checkpoint_has_the_hub_layout(tiny_checkpoint: Path):
    index = json.loads((tiny_checkpoint / "model_index.json").read_text())
    assert index["_class_name"] == "AceStepPipeline"
    assert index["tokenizer"] == ["transformers", "Qwen2TokenizerFast"]
    assert index["condition_encoder"] == ["ace_step", "AceStepConditionEncoder"]
    for name in ("vae", "transformer", "condition_encoder", "text_encoder", "audio_tokenizer"):
        assert (tiny_checkpoint / name / "config.json").is_file()
        assert list((tiny_checkpoint / name).glob("*.safetensors")), name
    assert not list(tiny_checkpoint.rglob("*.bin"))
    assert json.loads((tiny_checkpoint / "vae" / "config.json").read_text())["sampling_rate"] == SAMPLE_RATE
    assert json.loads((tiny_checkpoint / "transformer" / "config.json").read_text())["is_turbo"] is True


# -- loading and describing ----------------------------------------------------------------


def test_backend_follows_the_protocol_and_describes_itself_before_loading(tiny_checkpoint: Path):
    fresh = AceStepBackend(tiny_checkpoint, device="cpu")
    assert isinstance(fresh, Backend)
    info = fresh.describe()
    assert not fresh.loaded and not info.loaded
    assert info.name == "acestep"
    assert info.label == "ACE-Step 1.5 (acestep-v15-tiny-turbo)"
    assert info.model_path == str(tiny_checkpoint)
    assert info.model_id == "acestep-v15-tiny-turbo"  # no download record: the folder name
    assert (info.device, info.dtype) == ("cpu", "float32")
    assert info.defaults == TURBO_DEFAULTS
    assert info.supports_tasks == ("text2music", "repaint", "cover")
    json.dumps(info.to_dict())  # crosses the worker boundary as JSON


def test_load_reports_progress_and_happens_once(tiny_checkpoint: Path):
    fresh = AceStepBackend(tiny_checkpoint, device="cpu")
    events: list[Progress] = []
    fresh.load(events.append)
    assert fresh.loaded and fresh.describe().loaded
    assert {e.stage for e in events} == {LOADING}
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    pipeline = fresh.pipeline
    fresh.load(events.append)
    assert fresh.pipeline is pipeline
    fresh.unload()
    assert not fresh.loaded and fresh.pipeline is None


def test_create_backend_builds_the_acestep_backend_for_a_model_folder(tiny_checkpoint: Path):
    created = create_backend("auto", tiny_checkpoint, device="cpu")
    assert isinstance(created, AceStepBackend)
    assert created.describe().model_path == str(tiny_checkpoint)


def test_device_and_dtype_selection_on_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert select_device(None).type == expected
    assert select_device("cpu") == torch.device("cpu")
    assert select_dtype(torch.device("cpu")) == torch.float32
    assert select_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    with pytest.raises(BackendUnavailable, match="unknown dtype"):
        select_dtype(torch.device("cpu"), "float8")
    with pytest.raises(BackendUnavailable, match="use cuda, cuda:N, mps or cpu"):
        select_device("tpu-of-dreams")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_says_what_to_do():
    with pytest.raises(BackendUnavailable, match="--device cpu"):
        select_device("cuda")


# -- generating ----------------------------------------------------------------------------


def test_generate_returns_one_stereo_48k_array_per_candidate(backend: AceStepBackend):
    raw = backend.generate(request(candidates=2, duration=2.5, bpm=128, key="E minor", time_signature="6/8"),
                           [3, 4], lambda p: None, never)
    assert raw.sample_rate == SAMPLE_RATE
    assert raw.samples.shape == (2, 2, round(2.5 * SAMPLE_RATE))
    assert raw.samples.dtype == np.float32
    assert np.isfinite(raw.samples).all()
    assert 0.5 < np.abs(raw.samples).max() <= 1.0  # the pipeline normalizes to -1 dBFS
    assert raw.settings["steps"] == 4
    assert raw.settings["guidance"] == 1.0 and raw.settings["shift"] == 3.0
    assert raw.settings["seeds"] == [3, 4]
    assert raw.settings["instrumental"] is True
    json.dumps(raw.settings)


def test_progress_reports_every_step(backend: AceStepBackend):
    events: list[Progress] = []
    backend.generate(request(steps=5, duration=1.0), [1], events.append, never)
    assert [(e.stage, e.fraction) for e in events] == [(f"generating {k}/5", k / 5) for k in range(1, 6)]


def test_checkpoint_defaults_fill_empty_settings(backend: AceStepBackend):
    events: list[Progress] = []
    raw = backend.generate(request(steps=None, duration=1.0), [1], events.append, never)
    assert raw.settings["steps"] == TURBO_DEFAULTS["steps"] == len(events)


def test_turbo_ignores_guidance_and_says_so(backend: AceStepBackend):
    settings = backend.resolve_settings(request(guidance=5.0))
    assert settings["guidance"] == 1.0 and settings["guidance_requested"] == 5.0


def test_candidate_alone_matches_its_place_in_the_batch(backend: AceStepBackend):
    seeds = [11, 12, 13]
    batch = backend.generate(request(candidates=3, lyrics="[verse]\nneon rain"), seeds, lambda p: None, never)
    for k, seed in enumerate(seeds):
        alone = backend.generate(request(candidates=1, lyrics="[verse]\nneon rain"), [seed], lambda p: None, never)
        assert np.abs(alone.samples[0] - batch.samples[k]).max() <= BATCH_TOLERANCE
    # Different seeds differ (random weights make the noise matter little: ~0.05, still
    # thousands of times the tolerance).
    assert np.abs(batch.samples[0] - batch.samples[1]).max() > 1000 * BATCH_TOLERANCE


def test_same_seed_same_audio(backend: AceStepBackend):
    first = backend.generate(request(duration=1.0), [99], lambda p: None, never)
    second = backend.generate(request(duration=1.0), [99], lambda p: None, never)
    assert np.array_equal(first.samples, second.samples)


# -- cancelling ----------------------------------------------------------------------------


def test_cancel_stops_at_the_next_step_without_decoding(backend: AceStepBackend):
    events: list[Progress] = []

    def cancelled_after_two_steps() -> bool:
        return len(events) >= 2

    with DecodeSpy(backend.pipeline.vae) as spy:
        with pytest.raises(GenerationCancelled):
            backend.generate(request(steps=8, candidates=2), [1, 2], events.append, cancelled_after_two_steps)
        assert spy.calls == 0
        assert [e.stage for e in events] == ["generating 1/8", "generating 2/8"]

        # The pipeline is left ready: the next job runs through and decodes once.
        raw = backend.generate(request(steps=2, duration=1.0), [1], lambda p: None, never)
        assert spy.calls == 1
    assert raw.samples.shape == (1, 2, SAMPLE_RATE)
    assert backend.pipeline._interrupt is False


def test_cancelled_before_the_first_step_does_no_work(backend: AceStepBackend):
    events: list[Progress] = []
    with DecodeSpy(backend.pipeline.vae) as spy, pytest.raises(GenerationCancelled):
        backend.generate(request(), [1], events.append, lambda: True)
    assert spy.calls == 0 and events == []


# -- repaint and cover from a source file --------------------------------------------------


@pytest.fixture
def source_wav(tmp_path: Path) -> Path:
    # Mono at 44.1 kHz: the backend must double the channel and resample to 48 kHz.
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    path = tmp_path / "source.wav"
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def test_repaint_keeps_the_source_length_and_is_reproducible(backend: AceStepBackend, source_wav: Path):
    repaint = dict(task="repaint", source_audio=str(source_wav), repaint_start=0.5, repaint_end=1.0)
    batch = backend.generate(request(candidates=2, **repaint), [5, 6], lambda p: None, never)
    assert batch.samples.shape == (2, 2, round(1.5 * SAMPLE_RATE))
    assert batch.settings["repaint_start"] == 0.5 and batch.settings["repaint_end"] == 1.0
    alone = backend.generate(request(candidates=1, **repaint), [6], lambda p: None, never)
    assert np.abs(alone.samples[0] - batch.samples[1]).max() <= BATCH_TOLERANCE


def test_cover_runs_with_a_strength(backend: AceStepBackend, source_wav: Path):
    raw = backend.generate(request(task="cover", source_audio=str(source_wav), cover_strength=0.6),
                           [5], lambda p: None, never)
    assert raw.samples.shape == (1, 2, round(1.5 * SAMPLE_RATE))
    assert raw.settings["cover_strength"] == 0.6


def test_unreadable_source_audio_is_a_request_problem(backend: AceStepBackend, tmp_path: Path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(InvalidRequest) as caught:
        backend.generate(request(task="cover", source_audio=str(not_audio)), [1], lambda p: None, never)
    assert caught.value.problems[0].field == "source_audio"
    assert "WAV, FLAC or OGG" in str(caught.value)


def test_cover_needs_the_audio_tokenizer(tiny_checkpoint_factory, source_wav: Path):
    folder = tiny_checkpoint_factory(with_audio_tokenizer=False)
    without = AceStepBackend(folder, device="cpu")
    assert "cover" not in without.describe().supports_tasks
    with pytest.raises(BackendUnavailable, match="audio tokenizer"):
        without.generate(request(task="cover", source_audio=str(source_wav)), [1], lambda p: None, never)


# -- checkpoint variants and sizes ---------------------------------------------------------


def test_base_checkpoints_default_to_guided_sampling(tiny_checkpoint_factory):
    base = AceStepBackend(tiny_checkpoint_factory("acestep-v15-tiny-base", variant="base"), device="cpu")
    assert base.describe().defaults == BASE_DEFAULTS != TURBO_DEFAULTS
    events: list[Progress] = []
    # The default steps, with APG guidance (two DiT passes a step) on the learned null condition.
    raw = base.generate(request(steps=None, duration=1.0), [1], events.append, never)
    assert raw.settings["variant"] == "base"
    assert (raw.settings["steps"], raw.settings["guidance"]) == (BASE_DEFAULTS["steps"], BASE_DEFAULTS["guidance"])
    assert len(events) == BASE_DEFAULTS["steps"]
    assert np.isfinite(raw.samples).all()


@pytest.mark.parametrize(
    "sizes",
    [
        dict(hidden_size=64, intermediate_size=128, num_layers=3, num_heads=8, num_kv_heads=4, head_dim=8),
        dict(latent_channels=16, vae_channels=8, text_hidden_size=48, text_layers=2, encoder_layers=2),
    ],
    ids=["wider-dit", "wider-vae-and-text-encoder"],
)
def test_other_checkpoint_sizes_load_and_generate(tiny_checkpoint_factory, sizes):
    folder = tiny_checkpoint_factory(seed=1, **sizes)
    other = AceStepBackend(folder, device="cpu")
    raw = other.generate(request(candidates=2, duration=1.2), [1, 2], lambda p: None, never)
    assert raw.samples.shape == (2, 2, round(1.2 * SAMPLE_RATE))
    config = json.loads((folder / "transformer" / "config.json").read_text())
    for name in ("hidden_size", "num_attention_heads"):
        expected = sizes.get({"num_attention_heads": "num_heads"}.get(name, name))
        if expected is not None:
            assert config[name] == expected


# -- model folder problems -----------------------------------------------------------------


def one_sentence(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def copy_of(checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint, tmp_path / checkpoint.name))


def test_missing_folder(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelNotFound) as caught:
        check_model_folder(missing)
    assert str(missing) in one_sentence(caught.value) and "download-model" in str(caught.value)
    unloaded = AceStepBackend(missing, device="cpu")
    assert unloaded.describe().defaults == {}  # describe still answers for a bad folder
    with pytest.raises(ModelNotFound):
        unloaded.load()
    assert not unloaded.loaded


def test_missing_weights_file_names_it(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelIncomplete) as caught:
        AceStepBackend(folder, device="cpu").load()
    message = one_sentence(caught.value)
    assert "transformer/*.safetensors" in message and "download-model" in message
    report = inspect_model_folder(folder)
    transformer = next(c for c in report.components if c.name == "transformer")
    assert transformer.present == ["config.json"] and not transformer.complete
    assert all(c.complete for c in report.components if c.name != "transformer")
    json.dumps(report.to_dict())  # what `acestep-dcc doctor` can print


def test_missing_model_index(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    (folder / "model_index.json").unlink()
    with pytest.raises(ModelIncomplete, match="no model_index.json"):
        check_model_folder(folder)


def test_missing_component_config_and_tokenizer(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    (folder / "vae" / "config.json").unlink()
    shutil.rmtree(folder / "tokenizer")
    with pytest.raises(ModelIncomplete) as caught:
        check_model_folder(folder)
    assert "vae/config.json" in one_sentence(caught.value) and "tokenizer/" in str(caught.value)


def test_sharded_weights_need_every_shard(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    transformer = folder / "transformer"
    (transformer / "diffusion_pytorch_model.safetensors").rename(transformer / "diffusion_pytorch_model-00001-of-00002.safetensors")
    weight_map = {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
                  "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}
    (transformer / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ModelIncomplete, match="00002-of-00002"):
        check_model_folder(folder)


def test_pickle_weights_are_not_loaded(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelIncomplete, match=r"only \.bin found"):
        check_model_folder(folder)


def test_corrupt_model_index(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    (folder / "model_index.json").write_text('{"_class_name": "AceStepPipe')
    with pytest.raises(ModelIncomplete, match="cannot be read"):
        check_model_folder(folder)


def test_another_pipeline_is_not_an_acestep_checkpoint(tmp_path: Path):
    folder = tmp_path / "stable-diffusion-v1-5"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }))
    with pytest.raises(NotAnAceStepCheckpoint) as caught:
        AceStepBackend(folder, device="cpu").load()
    assert "StableDiffusionPipeline" in one_sentence(caught.value)


def test_components_from_unknown_libraries_are_refused(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    index = json.loads((folder / "model_index.json").read_text())
    index["vae"] = ["my_custom_code", "AutoencoderOobleck"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(NotAnAceStepCheckpoint, match="my_custom_code"):
        check_model_folder(folder)


def test_parent_folder_points_at_the_model_inside(tiny_checkpoint: Path, tmp_path: Path):
    copy_of(tiny_checkpoint, tmp_path / "models")
    with pytest.raises(ModelNotFound, match=f"pass --model {tmp_path / 'models' / tiny_checkpoint.name}"):
        check_model_folder(tmp_path / "models")


def test_variant_falls_back_to_the_name_for_old_conversions(tiny_checkpoint: Path, tmp_path: Path):
    folder = copy_of(tiny_checkpoint, tmp_path)
    config_path = folder / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    del config["is_turbo"], config["model_version"]
    config_path.write_text(json.dumps(config))
    assert check_model_folder(folder).variant == "turbo"  # "turbo" is in the folder name
    renamed = folder.rename(tmp_path / "acestep-v15-sft-diffusers")
    assert check_model_folder(renamed).variant == "base"


# -- downloading ---------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def download_in_subprocess(dest: Path, **env: str) -> dict:
    """download_model in a fresh interpreter, since huggingface_hub reads HF_* at import."""
    script = (
        "import json, sys\n"
        "from acestep_core.model_folder import download_model\n"
        "try:\n"
        "    download_model(dest=sys.argv[1])\n"
        "    print(json.dumps({'error': None}))\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'error': type(exc).__name__, 'message': str(exc)}))\n"
    )
    environment = {**os.environ, "HF_HOME": str(dest.parent / "hf-home"), **env}
    done = subprocess.run([sys.executable, "-c", script, str(dest)], env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_download_while_offline(tmp_path: Path):
    result = download_in_subprocess(tmp_path / "model", HF_HUB_OFFLINE="1")
    assert result["error"] == "ModelDownloadFailed"
    assert "HF_HUB_OFFLINE" in result["message"] and "\n" not in result["message"]
    assert not (tmp_path / "model").exists()  # no empty folder that looks like a model


def test_download_from_an_unreachable_hub(tmp_path: Path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = download_in_subprocess(tmp_path / "model", HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0")
    assert result["error"] == "ModelDownloadFailed"
    assert f"cannot reach the Hugging Face Hub at {endpoint}" in result["message"]
    assert "\n" not in result["message"]


class StandInHub:
    """Serves one repo over the Hub's HTTP API on 127.0.0.1 (repo info, file tree,
    resolve), or answers every request with a given Hub error."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, repo_id: str, folder: Path | None = None, error: tuple[int, str] | None = None):
        files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()} if folder else {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def reply(self, status: int, body: bytes = b"{}", headers: dict | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                path = unquote(urlparse(self.path).path)
                resolve = f"/{repo_id}/resolve/{hub.COMMIT}/"
                if error is not None:
                    self.reply(error[0], headers={"X-Error-Code": error[1], "X-Error-Message": error[1]})
                elif path == f"/api/models/{repo_id}/revision/main":
                    info = {"id": repo_id, "sha": hub.COMMIT, "siblings": [{"rfilename": f} for f in files]}
                    self.reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
                elif path.startswith(f"/api/models/{repo_id}/tree/"):
                    tree = [{"type": "file", "path": name, "size": p.stat().st_size,
                             "oid": hashlib.sha1(p.read_bytes()).hexdigest()} for name, p in files.items()]
                    self.reply(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
                elif path.startswith(resolve) and path[len(resolve):] in files:
                    body = files[path[len(resolve):]].read_bytes()
                    etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                    self.reply(200, body, {"X-Repo-Commit": hub.COMMIT, "ETag": etag})
                else:
                    self.reply(404, headers={"X-Error-Code": "EntryNotFound"})

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "status, code, expected",
    [(404, "RepoNotFound", "has no model ACE-Step/acestep-v99-missing"),
     (403, "GatedRepo", "is a gated repo: accept its terms at https://huggingface.co/ACE-Step/acestep-v99-missing")],
    ids=["unknown-repo", "gated-repo"],
)
def test_download_refused_by_the_hub(tmp_path: Path, status: int, code: str, expected: str):
    hub = StandInHub("ACE-Step/acestep-v99-missing", error=(status, code))
    try:
        with pytest.raises(ModelDownloadFailed) as caught:
            download_model("ACE-Step/acestep-v99-missing", tmp_path / "model", endpoint=hub.endpoint, token=False)
    finally:
        hub.close()
    assert expected in one_sentence(caught.value)


def test_download_rejects_a_malformed_repo_id(tmp_path: Path):
    with pytest.raises(ModelDownloadFailed, match="not a Hugging Face repo id"):
        download_model("not a repo id", tmp_path / "model", endpoint=f"http://127.0.0.1:{closed_port()}")


def test_download_fetches_a_loadable_folder_and_records_its_origin(tiny_checkpoint: Path, tmp_path: Path):
    hub = StandInHub("ACE-Step/acestep-v15-tiny-turbo", tiny_checkpoint)
    events: list[Progress] = []
    try:
        path = download_model("ACE-Step/acestep-v15-tiny-turbo", tmp_path / "downloaded", events.append,
                              endpoint=hub.endpoint, token=False)
    finally:
        hub.close()
    assert path == tmp_path / "downloaded"
    record = json.loads((path / DOWNLOAD_RECORD).read_text())
    assert record["repo_id"] == "ACE-Step/acestep-v15-tiny-turbo" and record["revision"] == StandInHub.COMMIT
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0
    assert {e.stage for e in events} == {"downloading model"}
    downloaded = AceStepBackend(path, device="cpu")
    assert downloaded.describe().model_id == "ACE-Step/acestep-v15-tiny-turbo"
    raw = downloaded.generate(request(duration=1.0, steps=2), [1], lambda p: None, never)
    assert raw.samples.shape == (1, 2, SAMPLE_RATE)
