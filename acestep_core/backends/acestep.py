"""The acestep backend: ACE-Step 1.5 through diffusers' AceStepPipeline.

Loads a local diffusers-format folder (never the Hub, never remote code), generates
every candidate of a request in one batch with one seeded generator per candidate,
reports each denoising step, and stops at the next step when cancelled without
decoding the half-finished latents.

Only the worker and the CLI import this module; it imports torch and diffusers.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acestep_core.backends.base import BASE_ONLY_TASKS, BackendInfo, RawAudio, needs_base_checkpoint
from acestep_core.errors import (
    BackendUnavailable,
    FieldProblem,
    GenerationCancelled,
    GenerationFailed,
    InvalidRequest,
)
from acestep_core.model_folder import ModelFolderReport, check_model_folder, inspect_model_folder
from acestep_core.progress import LOADING, CancelCheck, Progress, ProgressCallback, ignore_progress, step_stage
from acestep_core.request import MAX_DURATION_S, SOURCE_TASKS, GenerationRequest

# Sampling defaults per checkpoint variant, used when a request leaves them empty.
# Turbo: guidance is distilled into the weights (the pipeline forces 1.0), 8 steps,
# shift 3.0, as AceStepPipeline's docstring and diffusers' ACE-Step page give them.
# Base/SFT: APG guidance 7.0 and shift 3.0 as there; the pipeline's 8 steps are the
# turbo recipe, so base uses 32, ACE-Step 1.5's "balanced" base setting (its guide
# gives 32-64; diffusers' page says users commonly pick 30-60).
TURBO_DEFAULTS = {"steps": 8, "guidance": 1.0, "shift": 3.0}
BASE_DEFAULTS = {"steps": 32, "guidance": 7.0, "shift": 3.0}
# ACE-Step's own spelling of "no vocals", and the language it pairs with it. Our
# request carries no language, so lyrics are sent as "unknown" too (the model then
# reads the language from the text).
INSTRUMENTAL_LYRICS = "[Instrumental]"
VOCAL_LANGUAGE = "unknown"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def variant_defaults(variant: str | None) -> dict[str, Any]:
    """steps, guidance and shift for a checkpoint variant (turbo, base, sft)."""
    return dict(TURBO_DEFAULTS if variant == "turbo" else BASE_DEFAULTS)


def select_device(requested: str | None = None) -> torch.device:
    """CUDA, then Apple's MPS, then the CPU; `requested` ("cuda", "cuda:1", "mps", "cpu") overrides."""
    if requested:
        try:
            device = torch.device(requested)
        except (RuntimeError, ValueError):
            raise BackendUnavailable(f"unknown device {requested!r}; use cuda, cuda:N, mps or cpu") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(
                "device cuda was asked for but this torch sees no CUDA GPU; install the CUDA build of torch "
                "or pass --device cpu"
            )
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise BackendUnavailable(
                f"device {requested} was asked for but only {torch.cuda.device_count()} CUDA GPU(s) are visible; "
                "pass --device cuda:0"
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise BackendUnavailable("device mps was asked for but this machine has no usable MPS; pass --device cpu")
        if device.type not in ("cuda", "mps", "cpu"):
            raise BackendUnavailable(f"device {requested!r} is not supported; use cuda, cuda:N, mps or cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def select_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """bfloat16 on CUDA (float16 on GPUs without it), float32 on the CPU.

    MPS: bfloat16, which halves the memory of the XL checkpoints that unified memory
    must hold (float16 risks overflow in the Qwen3 text encoder); float32 where this
    macOS/torch cannot run bfloat16 on MPS.
    """
    if requested:
        if requested not in DTYPES:
            raise BackendUnavailable(f"unknown dtype {requested!r}; use one of {', '.join(DTYPES)}")
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        try:
            probe = torch.ones(2, 2, device=device, dtype=torch.bfloat16)
            (probe @ probe).sum().item()
            return torch.bfloat16
        except (RuntimeError, TypeError):
            return torch.float32
    return torch.float32


def read_source_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """A source file as float32 (2, frames) at `sample_rate`: mono doubled, extra channels dropped."""
    import soundfile
    import soxr

    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
        raise InvalidRequest([FieldProblem(
            "source_audio", f"cannot read the source audio {path} ({exc}); pass a WAV, FLAC or OGG file")]) from None
    if data.shape[0] == 0:
        raise InvalidRequest([FieldProblem("source_audio", f"the source audio {path} is empty; pass a file with sound in it")])
    # ACE-Step reads at most 10 minutes; cutting first keeps resampling and the VAE bounded.
    data = data[: int(MAX_DURATION_S * file_rate)]
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    data = data[:, :2]
    if file_rate != sample_rate:
        data = soxr.resample(data, file_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(data.T, dtype=np.float32)


class AceStepBackend:
    """ACE-Step 1.5 from a local diffusers folder. Thread-safe: one call at a time."""

    name = "acestep"

    def __init__(self, model_dir: str | os.PathLike, device: str | None = None, dtype: str | None = None,
                 packs_folder: str | os.PathLike | None = None):
        self.model_dir = Path(model_dir).expanduser()
        self.packs_folder = packs_folder  # None: the user's installed packs (acestep_core.packs)
        self.pipeline_loads = 0  # how often the base model was read from disk (packs never reload it)
        self._adapters: dict[str, str] = {}  # adapter name in the pipeline -> the pack's hash, oldest use first
        # A rank-8 adapter of the XL DiT is tens of MB; a worker used with many packs keeps this many.
        self.max_loaded_adapters = 8
        self.device = select_device(device)
        self.dtype = select_dtype(self.device, dtype)
        self._pipe = None
        self._report: ModelFolderReport | None = None
        self._lock = threading.RLock()

    # -- Backend protocol ------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    @property
    def pipeline(self):
        """The loaded diffusers AceStepPipeline, or None (for diagnostics and tests)."""
        return self._pipe

    def load(self, on_progress: ProgressCallback | None = None) -> None:
        """Check the folder, then load every component onto the device (once)."""
        report_progress = on_progress or ignore_progress
        with self._lock:
            if self._pipe is not None:
                return
            report_progress(Progress(LOADING, 0.0))
            # Folder problems surface as one sentence before any weights are read.
            self._report = check_model_folder(self.model_dir)
            from diffusers import AceStepPipeline
            from diffusers.utils import logging as diffusers_logging
            from transformers.utils import logging as transformers_logging

            try:
                # Our own progress reports cover loading; diffusers' console bar and its
                # deprecation chatter would only fill the terminal and the worker log.
                diffusers_logging.disable_progress_bar()
                transformers_logging.disable_progress_bar()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    pipe = AceStepPipeline.from_pretrained(
                        str(self.model_dir),
                        dtype=self.dtype,
                        use_safetensors=True,
                        local_files_only=True,
                    )
                report_progress(Progress(LOADING, 0.8))
                pipe = pipe.to(self.device)
            except torch.cuda.OutOfMemoryError:
                raise GenerationFailed(
                    f"{self.model_dir.name} does not fit in the memory of {self.device}; close other GPU programs, "
                    "or pass --device cpu"
                ) from None
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise GenerationFailed(
                    f"loading {self.model_dir} failed ({type(exc).__name__}: {_first_line(exc)}); "
                    "re-run 'acestep-dcc download-model' to repair the folder"
                ) from exc
            # The worker reports progress itself; a console bar would only fill its log.
            pipe.set_progress_bar_config(disable=True)
            # The VAE decodes one candidate at a time, in overlapping tiles above ~20 s:
            # peak memory stays that of one candidate's tile. Batching gains nothing in
            # the decoder (on CPU, tiny test checkpoint, 4 cues of 10 s: batched 0.70 s,
            # one at a time 0.42 s); the batch pays off in the DiT.
            pipe.vae.enable_slicing()
            pipe.vae.enable_tiling()
            self._pipe = pipe
            self._adapters = {}
            self.pipeline_loads += 1
            report_progress(Progress(LOADING, 1.0))

    def unload(self) -> None:
        with self._lock:
            if self._pipe is None:
                return
            self._pipe = None
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            elif self.device.type == "mps":
                torch.mps.empty_cache()

    def describe(self) -> BackendInfo:
        report = self._report or inspect_model_folder(self.model_dir)
        tasks = report.supported_tasks
        return BackendInfo(
            name=self.name,
            label=f"ACE-Step 1.5 ({self.model_dir.name})",
            model_path=str(self.model_dir),
            model_id=report.model_id,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            loaded=self.loaded,
            defaults=variant_defaults(report.variant) if report.variant else {},
            supports_tasks=tasks,
            supports_reference=True,
            licence=self._model_licence(),
            supports_styles=True,
        )

    def _model_licence(self) -> dict:
        """Read once: the card and LICENSE file do not change under a loaded model."""
        if getattr(self, "_licence", None) is None:
            from acestep_core.licence import model_licence

            self._licence = model_licence(self.model_dir).to_dict()
        return self._licence

    def generate(
        self,
        request: GenerationRequest,
        seeds: list[int],
        on_progress: ProgressCallback,
        is_cancelled: CancelCheck,
    ) -> RawAudio:
        """All candidates in one batch; candidate k is seeded by seeds[k] alone.

        Progress: "generating k/N" with fraction k/N after each denoising step.
        """
        if len(seeds) != request.candidates:
            raise ValueError(f"need one seed per candidate: {request.candidates} candidates, {len(seeds)} seeds")
        if request.task in BASE_ONLY_TASKS and request.task not in self.describe().supports_tasks:
            raise BackendUnavailable(needs_base_checkpoint(request.task))
        with self._lock:
            if is_cancelled():
                raise GenerationCancelled()
            self.load()
            pipe = self._pipe
            if request.task == "cover" and (pipe.audio_tokenizer is None or pipe.audio_token_detokenizer is None):
                raise BackendUnavailable(
                    f"{self.model_dir.name} has no audio tokenizer, which the cover task needs; use a checkpoint "
                    "with audio_tokenizer/ and audio_token_detokenizer/ folders, or the repaint task"
                )
            settings = self.resolve_settings(request)
            pack = self.style_pack(request)
            source = None
            if request.task in SOURCE_TASKS:
                source = read_source_audio(request.source_audio, pipe.sample_rate)
            reference = None
            if request.reference_audio is not None:
                reference = read_source_audio(request.reference_audio, pipe.sample_rate)
            arguments = self._pipeline_arguments(request, settings, source)
            if reference is not None:
                arguments["reference_audio"] = torch.from_numpy(reference)
            arguments["generator"] = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
            arguments["callback_on_step_end"] = _step_reporter(settings["steps"], on_progress, is_cancelled)
            if pack is not None:
                if request.style_scale > 0:  # scale 0 is the base model's output, prompt included
                    arguments["prompt"] = [pack.styled_prompt(request.prompt)] * request.candidates
                settings["style"] = self._use_style(pack, request.style_scale)
                settings["style"]["prompt"] = arguments["prompt"][0]
                # diffusers scales every LoRA layer by this for the call (0: the base model's output).
                arguments["attention_kwargs"] = {"scale": float(request.style_scale)}
            elif self._adapters:
                pipe.disable_lora()

            cancelled = False
            out_of_memory = False
            try:
                audio = self._run_pipeline(arguments)
            except GenerationCancelled:
                cancelled = True
            except torch.cuda.OutOfMemoryError:
                out_of_memory = True
            finally:
                # A raise from the step callback skips the pipeline's own cleanup.
                pipe._interrupt = False
                pipe.maybe_free_model_hooks()
            # Raised here, outside the except blocks, so the exception does not keep the
            # pipeline's frames (and their latents) alive.
            if cancelled:
                raise GenerationCancelled()
            if out_of_memory:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                raise GenerationFailed(
                    f"{self.device} ran out of memory generating {request.candidates} candidate(s) of "
                    f"{request.duration:g} s; ask for fewer candidates or a shorter duration"
                )

        frames = source.shape[1] if source is not None else round(request.duration * pipe.sample_rate)
        samples = audio[:, :, :frames].float().cpu().numpy().astype(np.float32, copy=False)
        settings["seeds"] = [int(seed) for seed in seeds]
        return RawAudio(samples=samples, sample_rate=int(pipe.sample_rate), settings=settings)

    # -- style packs -----------------------------------------------------------------

    def style_pack(self, request: GenerationRequest):
        """The installed pack request.style names, checked against this model; None without one."""
        if request.style is None:
            return None
        from acestep_core.packs import PackStore, check_pack_base

        pack = PackStore(self.packs_folder).get(request.style)
        check_pack_base(pack, self.model_dir)
        return pack

    def _use_style(self, pack, scale: float) -> dict[str, Any]:
        """Make `pack` the one active adapter; each pack's weights are read once per loaded model."""
        from acestep_core.packs import adapter_hash

        pipe = self._pipe
        digest = adapter_hash(pack.adapter_path())
        adapter = f"{pack.name}_{digest.removeprefix('sha256:')[:12]}"  # a changed pack is another adapter
        if adapter in self._adapters:
            self._adapters[adapter] = self._adapters.pop(adapter)  # most recently used last
        else:
            while len(self._adapters) >= self.max_loaded_adapters:  # the least recently used goes
                pipe.delete_adapters(next(iter(self._adapters)))
                del self._adapters[next(iter(self._adapters))]
            try:
                pipe.load_lora_weights(str(pack.folder), weight_name=pack.adapter, adapter_name=adapter)
            except (ValueError, RuntimeError, KeyError, OSError) as exc:
                raise GenerationFailed(
                    f"the style pack {pack.name!r} does not fit {self.model_dir.name} ({_first_line(exc)}); "
                    "train it again with 'acestep-dcc packs train' on this model") from None
            self._adapters[adapter] = digest
        pipe.enable_lora()
        pipe.set_adapters([adapter])
        return {"name": pack.name, "hash": digest, "scale": float(scale), "licence": pack.licence,
                "base_checkpoint": dict(pack.base_checkpoint)}

    @property
    def loaded_adapters(self) -> list[str]:
        return list(self._adapters)

    # -- helpers ---------------------------------------------------------------------

    def resolve_settings(self, request: GenerationRequest) -> dict[str, Any]:
        """The settings this request runs with: its own, else the checkpoint's defaults."""
        report = self._report or inspect_model_folder(self.model_dir)
        defaults = variant_defaults(report.variant)
        settings: dict[str, Any] = {
            "steps": int(request.steps if request.steps is not None else defaults["steps"]),
            "guidance": float(request.guidance if request.guidance is not None else defaults["guidance"]),
            "shift": float(request.shift if request.shift is not None else defaults["shift"]),
            "variant": report.variant,
            "task": request.task,
            "vocal_language": VOCAL_LANGUAGE,
            "instrumental": not request.lyrics.strip(),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            # What the model is conditioned on (generation plans bpm and key before this).
            "conditions": {
                "bpm": int(round(request.bpm)) if request.bpm is not None else None,
                "keyscale": request.key,
                # ACE-Step writes a time signature as its beats per bar: "4/4" -> "4", "6/8" -> "6".
                "timesignature": request.time_signature.split("/")[0] if request.time_signature else None,
            },
        }
        if report.is_turbo and settings["guidance"] > 1.0:
            # Turbo checkpoints have guidance distilled in; the pipeline would ignore it.
            settings["guidance_requested"] = settings["guidance"]
            settings["guidance"] = 1.0
        if request.task in ("repaint", "lego") and request.repaint_start is not None:
            settings["repaint_start"] = float(request.repaint_start)
            settings["repaint_end"] = float(request.repaint_end)
        if request.task == "cover":
            settings["cover_strength"] = float(request.cover_strength)
        if request.task in ("extract", "lego") and request.track is not None:
            settings["track"] = request.track
        if request.task == "complete":
            settings["tracks"] = list(request.tracks)
        if request.reference_audio is not None:
            settings["reference_audio"] = os.path.basename(str(request.reference_audio))
        return settings

    def _pipeline_arguments(
        self, request: GenerationRequest, settings: dict[str, Any], source: np.ndarray | None
    ) -> dict[str, Any]:
        count = request.candidates
        lyrics = request.lyrics if request.lyrics.strip() else INSTRUMENTAL_LYRICS
        arguments: dict[str, Any] = {
            # Lists, not one string, so the batch holds one row per candidate.
            "prompt": [request.prompt] * count,
            "lyrics": [lyrics] * count,
            "vocal_language": [VOCAL_LANGUAGE] * count,
            "audio_duration": float(request.duration),
            "num_inference_steps": settings["steps"],
            "guidance_scale": settings["guidance"],
            "shift": settings["shift"],
            **settings["conditions"],
            "task_type": request.task,
            "output_type": "pt",
            "return_dict": False,
        }
        if source is not None:
            # The VAE encodes whole latent frames and drops a partial last one; padding
            # with silence keeps the source's end, and the output is cut back to its length.
            hop = int(np.prod(self._pipe.vae.config.downsampling_ratios))
            padded = np.pad(source, ((0, 0), (0, -source.shape[1] % hop)))
            arguments["src_audio"] = torch.from_numpy(padded)
            arguments["audio_duration"] = padded.shape[1] / self._pipe.sample_rate
        if request.task in ("repaint", "lego") and request.repaint_start is not None:
            # Lego with no range covers the whole source (the pipeline's default window).
            arguments["repainting_start"] = float(request.repaint_start)
            arguments["repainting_end"] = float(request.repaint_end)
        if request.task == "cover":
            arguments["audio_cover_strength"] = float(request.cover_strength)
        if request.task in ("extract", "lego"):  # the pipeline's instruction: "Extract the DRUMS track from the audio:"
            arguments["track_name"] = request.track
        if request.task == "complete":
            arguments["complete_track_classes"] = list(request.tracks)
        return arguments

    def _run_pipeline(self, arguments: dict[str, Any]) -> torch.Tensor:
        # The VAE samples source-audio latents from torch's global generator. Pinning it
        # makes a candidate sound the same alone or in a batch, on every run.
        with _pinned_global_rng(self.device, seed=0):
            (audio,) = self._pipe(**arguments)
        return audio


@contextlib.contextmanager
def _pinned_global_rng(device: torch.device, seed: int):
    """Seed the CPU's and `device`'s global generators; put their states back afterwards."""
    cpu_state = torch.random.get_rng_state()
    device_state = None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        device_state = torch.cuda.get_rng_state(index)
        torch.cuda.default_generators[index].manual_seed(seed)
    elif device.type == "mps":
        device_state = torch.mps.get_rng_state()
        torch.mps.manual_seed(seed)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(cpu_state)
        if device.type == "cuda":
            torch.cuda.set_rng_state(device_state, index)
        elif device.type == "mps":
            torch.mps.set_rng_state(device_state)


def _step_reporter(total_steps: int, on_progress: ProgressCallback, is_cancelled: CancelCheck):
    def on_step_end(pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        # Raising (rather than pipe._interrupt) stops before the VAE decodes half-denoised latents.
        if is_cancelled():
            raise GenerationCancelled()
        done = step_index + 1
        on_progress(Progress(step_stage(done, total_steps), done / total_steps))
        return callback_kwargs

    return on_step_end


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
