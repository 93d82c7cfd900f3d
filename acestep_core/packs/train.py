"""`acestep-dcc packs train DIR --name N`: a LoRA on the DiT's attention, from the user's music.

The recipe is ACE-Step 1.5's own (its acestep/training): the model's flow-matching
loss on VAE latents, with the text, lyrics and timbre conditions computed once per
file, LoRA (peft) on the DiT's attention projections (q, k, v, out of its self- and
cross-attention), AdamW, timesteps drawn from the checkpoint's own inference schedule
(turbo: the 8 shift-3 steps it was distilled for). Everything the pipeline can do for
us (VAE encode, prompt encoding, the condition encoder, the schedule) is done by
diffusers' AceStepPipeline itself.

Progress goes to a callback; a cancel (Ctrl-C in the CLI) saves a checkpoint at the
next step, and running the same command again resumes from it. The result is a pack
folder (adapter + pack.json) that `packs install` takes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from acestep_core.errors import FieldProblem, GenerationCancelled, GenerationFailed, InvalidRequest
from acestep_core.packs.base import checkpoint_fingerprint
from acestep_core.packs.manifest import DEFAULT_ADAPTER, StylePack, check_pack_name, write_manifest
from acestep_core.progress import Progress

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
CAPTIONS_FILE = "captions.csv"  # columns: file, caption
# ACE-Step 1.5's LoRA defaults (its training/configs.py): rank 8, alpha 16, lr 1e-4,
# on the attention projections; diffusers names them to_q, to_k, to_v, to_out.0.
TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class TrainingOptions:
    name: str
    steps: int = 500
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 1e-4
    seconds: float = 30.0  # each file is cut to this many seconds from its start
    save_every: int = 50
    seed: int = 0
    licence: str = "not stated: trained on the pack author's own music"
    description: str = ""
    trigger_words: list[str] = field(default_factory=list)

    def problems(self) -> list[FieldProblem]:
        found = []
        for name, low, high in (("steps", 1, 1_000_000), ("rank", 1, 256), ("alpha", 1, 1024),
                                ("save_every", 1, 1_000_000)):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                found.append(FieldProblem(name, f"--{name.replace('_', '-')} must be a whole number from {low} to {high}, got {value!r}"))
        if not 0 < self.learning_rate <= 1:
            found.append(FieldProblem("learning_rate", f"--learning-rate must be above 0 and at most 1, got {self.learning_rate!r}"))
        if not 1 <= self.seconds <= 600:
            found.append(FieldProblem("seconds", f"--seconds must be between 1 and 600, got {self.seconds!r}"))
        return found


@dataclass
class TrainingExample:
    path: Path
    caption: str
    caption_from: str  # "sidecar", "captions.csv" or "file name"


def find_examples(music_dir: str | os.PathLike) -> list[TrainingExample]:
    """Every audio file in `music_dir` (not below), each with its caption."""
    folder = Path(music_dir).expanduser()
    if not folder.is_dir():
        raise InvalidRequest([FieldProblem("dir", f"{folder} is not a folder; pass the folder that holds your music")])
    captions = _captions_file(folder)
    examples = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        caption, source = _sidecar_caption(path), "sidecar"
        if caption is None and path.name in captions:
            caption, source = captions[path.name], CAPTIONS_FILE
        if caption is None:
            caption, source = re.sub(r"[_\-.]+", " ", path.stem).strip() or "music", "file name"
        examples.append(TrainingExample(path, caption, source))
    if not examples:
        raise InvalidRequest([FieldProblem("dir", (
            f"{folder} holds no music to learn from ({', '.join(AUDIO_SUFFIXES)}); put a few of your tracks in it"))])
    return examples


def _sidecar_caption(path: Path) -> str | None:
    sidecar = path.with_name(path.name + ".json")
    try:
        prompt = json.loads(sidecar.read_text(encoding="utf-8"))["request"]["prompt"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def _captions_file(folder: Path) -> dict[str, str]:
    path = folder / CAPTIONS_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"file", "caption"} <= set(rows[0]):
        raise InvalidRequest([FieldProblem("captions", (
            f"{path} needs the columns 'file' and 'caption' in its first line, got {', '.join(rows[0])}"))])
    return {row["file"].strip(): row["caption"].strip() for row in rows if row.get("file") and row.get("caption")}


def train_pack(
    music_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    options: TrainingOptions,
    *,
    device: str | None = None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    on_line: Callable[[str], None] = lambda text: None,
) -> StylePack:
    """Train, checkpointing every options.save_every steps in OUTPUT-checkpoints/;
    returns the pack written to `output_dir`. A cancel raises GenerationCancelled
    after saving a checkpoint that the same call resumes from."""
    check_pack_name(options.name)
    found = options.problems()
    if found:
        raise InvalidRequest(found)
    examples = find_examples(music_dir)
    output_dir = Path(output_dir).expanduser()
    checkpoints = output_dir.with_name(output_dir.name + "-checkpoints")
    fingerprint = checkpoint_fingerprint(model_dir)  # a wrong model folder fails before anything loads

    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    from acestep_core.backends.acestep import AceStepBackend, variant_defaults
    from acestep_core.model_folder import inspect_model_folder

    backend = AceStepBackend(model_dir, device=device)
    on_line(f"loading {Path(model_dir).name} on {backend.device}")
    backend.load()
    pipe = backend.pipeline
    report = inspect_model_folder(model_dir)
    transformer = pipe.transformer
    for module in (pipe.vae, pipe.text_encoder, pipe.condition_encoder, transformer):
        module.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):  # the VAE samples latents from the global generator
        torch.manual_seed(options.seed)
        data = _prepare_examples(pipe, examples, options.seconds, backend.device, backend.dtype, on_line,
                                 is_cancelled)

    with torch.random.fork_rng(devices=[]):  # lora_A's initial weights: the same on every run of one seed
        torch.manual_seed(options.seed)
        transformer.add_adapter(LoraConfig(r=options.rank, lora_alpha=options.alpha, target_modules=TARGET_MODULES,
                                           init_lora_weights=True, lora_dropout=0.0))
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    for parameter in trainable:  # LoRA weights train in float32 under a bf16 model (peft's advice)
        parameter.data = parameter.data.float()
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.01)
    defaults = variant_defaults(report.variant)
    # The pipeline's own (private) schedule helper: training on the very timesteps inference runs.
    schedule = pipe._get_timestep_schedule(num_inference_steps=defaults["steps"], shift=defaults["shift"],
                                           device=backend.device, dtype=torch.float32)
    generator = torch.Generator(device="cpu").manual_seed(options.seed)
    identity = {"options": asdict(options), "files": [str(e.path) for e in examples], "base": fingerprint}
    step = 0
    state_path = checkpoints / CHECKPOINT_FILE
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("identity") == identity:
            set_peft_model_state_dict(transformer, state["lora"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            step = int(state["step"])
            on_line(f"resuming from step {step} ({state_path})")
        else:
            on_line(f"{state_path} is from other options, music or model; starting again")

    def save_checkpoint() -> None:
        checkpoints.mkdir(parents=True, exist_ok=True)
        partial = state_path.with_suffix(".partial")
        torch.save({"identity": identity, "step": step, "lora": get_peft_model_state_dict(transformer),
                    "optimizer": optimizer.state_dict(), "generator": generator.get_state()}, partial)
        os.replace(partial, state_path)

    transformer.train()
    while step < options.steps:
        if is_cancelled():
            save_checkpoint()
            raise GenerationCancelled(f"training stopped at step {step} of {options.steps}; run the same command "
                                      "again to resume from there")
        example = data[int(torch.randint(len(data), (1,), generator=generator))]
        x0 = example["latents"].to(backend.device)
        noise = torch.randn(x0.shape, generator=generator).to(backend.device, x0.dtype)
        t = schedule[int(torch.randint(len(schedule), (1,), generator=generator))].to(x0.dtype).reshape(1)
        xt = t * noise + (1.0 - t) * x0  # flow matching: t=1 is noise, t=0 the music
        with torch.autocast(backend.device.type, dtype=backend.dtype, enabled=backend.dtype != torch.float32):
            predicted = transformer(hidden_states=xt, timestep=t, timestep_r=t,
                                    encoder_hidden_states=example["conditions"].to(backend.device),
                                    context_latents=example["context"].to(backend.device), return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(predicted.float(), (noise - x0).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        if not math.isfinite(loss.item()):
            raise GenerationFailed(f"training diverged at step {step} (loss {loss.item()}); lower --learning-rate")
        on_progress(Progress("training", step / options.steps))
        if step % max(1, options.steps // 20) == 0 or step == options.steps:
            on_line(f"step {step}/{options.steps}: loss {loss.item():.4f}")
        if step % options.save_every == 0 or step == options.steps:
            save_checkpoint()

    transformer.eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    lora = {key: value.to(backend.dtype if backend.dtype != torch.float32 else torch.float32).contiguous()
            for key, value in get_peft_model_state_dict(transformer).items()}
    type(pipe).save_lora_weights(output_dir, transformer_lora_layers=lora, weight_name=DEFAULT_ADAPTER)
    pack = StylePack(
        name=options.name, licence=options.licence, description=options.description,
        trigger_words=list(options.trigger_words),
        base_checkpoint={"name": Path(model_dir).name, "fingerprint": fingerprint,
                         **({"model_id": report.model_id} if report.model_id else {})},
        training={"steps": options.steps, "rank": options.rank, "alpha": options.alpha,
                  "learning_rate": options.learning_rate, "seconds": options.seconds, "device": str(backend.device),
                  "files": [{"file": e.path.name, "caption": e.caption, "caption_from": e.caption_from}
                            for e in examples]},
        folder=output_dir)
    write_manifest(pack, output_dir)
    return pack


def _prepare_examples(pipe, examples: list[TrainingExample], seconds: float, device, dtype, on_line,
                      is_cancelled) -> list[dict[str, Any]]:
    """Each file's latents and conditions, computed once (the VAE and encoders stay frozen)."""
    import torch
    from diffusers.pipelines.ace_step.pipeline_ace_step import TASK_INSTRUCTIONS

    from acestep_core.backends.acestep import INSTRUMENTAL_LYRICS, VOCAL_LANGUAGE, read_source_audio

    hop = int(torch.tensor(pipe.vae.config.downsampling_ratios).prod())
    prepared = []
    with torch.no_grad():
        for number, example in enumerate(examples, 1):
            if is_cancelled():
                raise GenerationCancelled("training stopped while reading the music; nothing was saved")
            on_line(f"reading {example.path.name} ({number}/{len(examples)}): \"{example.caption}\"")
            audio = read_source_audio(example.path, pipe.sample_rate)[:, : int(seconds * pipe.sample_rate)]
            audio = audio[:, : audio.shape[1] // hop * hop]
            if audio.shape[1] < hop:
                raise InvalidRequest([FieldProblem("dir", f"{example.path} is too short to learn from; remove it")])
            waveform = torch.from_numpy(audio).unsqueeze(0).to(device=device, dtype=pipe.vae.dtype)
            latents = pipe.vae.encode(waveform).latent_dist.sample().transpose(1, 2).to(dtype)
            length = latents.shape[1]
            duration = length / pipe.latents_per_second
            text, text_mask, lyric, lyric_mask = pipe.encode_prompt(
                prompt=[example.caption], lyrics=[INSTRUMENTAL_LYRICS], device=device,
                vocal_language=[VOCAL_LANGUAGE], audio_duration=duration,
                instruction=TASK_INSTRUCTIONS["text2music"])
            timbre = pipe.condition_encoder.silence_latent[:, : math.ceil(30 * pipe.latents_per_second), :]
            conditions, _ = pipe.condition_encoder(
                text_hidden_states=text, text_attention_mask=text_mask, lyric_hidden_states=lyric,
                lyric_attention_mask=lyric_mask, refer_audio_acoustic_hidden_states_packed=timbre.to(device, dtype),
                refer_audio_order_mask=torch.zeros(1, device=device, dtype=torch.long))
            source, _ = pipe.prepare_src_latents(device=device, dtype=dtype, batch_size=1, latent_length=length)
            mask = torch.ones(1, length, latents.shape[2], device=device, dtype=dtype)  # text2music: all generated
            prepared.append({"latents": latents.cpu(), "conditions": conditions.cpu(),
                             "context": torch.cat([source, mask], dim=-1).cpu()})
    return prepared
