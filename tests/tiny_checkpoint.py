"""A tiny random ACE-Step 1.5 checkpoint in the exact layout of the real Hub repos.

Built from the real diffusers/transformers classes and saved with
`AceStepPipeline.save_pretrained`, so loading it exercises the same code path as
`ACE-Step/acestep-v15-xl-turbo-diffusers`: model_index.json plus one folder per
component, weights in safetensors. The weights are random, so the audio is noise;
shapes, timing and code paths are real. Nothing is downloaded: the tokenizer is a
byte-level BPE built here with the `tokenizers` library.

    build_tiny_checkpoint(tmp_path / "acestep-v15-tiny-turbo")
    build_tiny_checkpoint(tmp_path / "base", variant="base", hidden_size=64, num_layers=3)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

# The real repos were converted with transformers 4, where the tokenizer class is
# Qwen2TokenizerFast; transformers 5 keeps that name as an alias of Qwen2Tokenizer.
HUB_TOKENIZER_CLASS = "Qwen2TokenizerFast"
MODEL_CARD = """---
library_name: diffusers
pipeline_tag: text-to-audio
tags: [acestep-dcc-test]
---
# Tiny random ACE-Step 1.5 ({variant})

Random weights built by acestep-dcc's test suite. It produces noise.
"""


@dataclass(frozen=True)
class TinySizes:
    """Every size a test may vary. Real ACE-Step 1.5 values are in the comments."""

    hidden_size: int = 32  # DiT and condition encoder width (2048; XL DiT 2560)
    intermediate_size: int = 64  # (6144)
    num_layers: int = 2  # DiT blocks (24)
    num_heads: int = 4  # (16)
    num_kv_heads: int = 2  # (8)
    head_dim: int = 8  # (128)
    sliding_window: int = 16  # (128)
    encoder_layers: int = 1  # lyric, timbre and audio-tokenizer encoder layers (8 / 4 / 2)
    text_hidden_size: int = 32  # Qwen3-Embedding-0.6B width (1024)
    text_layers: int = 1  # (28)
    latent_channels: int = 8  # VAE latent width = DiT acoustic dim (64)
    vae_channels: int = 4  # VAE decoder base width (128)
    # The real VAE: 48 kHz, 1920 samples per latent frame (25 latent frames a second).
    # Keeping both makes output lengths exactly those of the real model.
    sampling_rate: int = 48000
    downsampling_ratios: tuple[int, ...] = (2, 4, 4, 6, 10)


def build_tiny_checkpoint(
    path: str | Path,
    *,
    seed: int = 0,
    variant: str = "turbo",
    with_audio_tokenizer: bool = True,
    **size_overrides: int,
) -> Path:
    """Build and save a tiny random ACE-Step 1.5 pipeline at `path`; returns the path.

    `variant` is "turbo" (guidance distilled, is_turbo in the transformer config) or
    "base". `with_audio_tokenizer` adds the optional audio tokenizer/detokenizer the
    cover task needs. `size_overrides` are TinySizes fields.
    """
    if variant not in ("turbo", "base", "sft"):
        raise ValueError(f"variant must be turbo, base or sft, got {variant!r}")
    known = {f.name for f in dataclasses.fields(TinySizes)}
    unknown = sorted(set(size_overrides) - known)
    if unknown:
        raise TypeError(f"unknown size overrides {unknown}; known: {sorted(known)}")
    sizes = TinySizes(**size_overrides)

    import torch
    from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = build_tiny_tokenizer()
    attention = dict(
        num_attention_heads=sizes.num_heads,
        num_key_value_heads=sizes.num_kv_heads,
        head_dim=sizes.head_dim,
        rope_theta=10000.0,
        sliding_window=sizes.sliding_window,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        transformer = AceStepTransformer1DModel(
            hidden_size=sizes.hidden_size,
            intermediate_size=sizes.intermediate_size,
            num_hidden_layers=sizes.num_layers,
            # The DiT input is [source latents, chunk mask, noisy latents] side by side.
            in_channels=3 * sizes.latent_channels,
            audio_acoustic_hidden_dim=sizes.latent_channels,
            patch_size=2,
            is_turbo=variant == "turbo",
            model_version=variant,
            **attention,
        )
        text_encoder = Qwen3Model(
            Qwen3Config(
                vocab_size=len(tokenizer),
                hidden_size=sizes.text_hidden_size,
                intermediate_size=2 * sizes.text_hidden_size,
                num_hidden_layers=sizes.text_layers,
                num_attention_heads=sizes.num_heads,
                num_key_value_heads=sizes.num_kv_heads,
                head_dim=sizes.head_dim,
                max_position_embeddings=4096,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        condition_encoder = AceStepConditionEncoder(
            hidden_size=sizes.hidden_size,
            intermediate_size=sizes.intermediate_size,
            text_hidden_dim=sizes.text_hidden_size,
            timbre_hidden_dim=sizes.latent_channels,
            num_lyric_encoder_hidden_layers=sizes.encoder_layers,
            num_timbre_encoder_hidden_layers=sizes.encoder_layers,
            **attention,
        )
        # The real silence latent is VAE-encoded silence; small noise keeps the
        # timbre encoder's input non-degenerate without running the VAE here.
        condition_encoder.silence_latent.normal_(0.0, 0.1)
        vae = AutoencoderOobleck(
            # The encoder emits mean and scale, hence twice the latent width.
            encoder_hidden_size=2 * sizes.latent_channels,
            downsampling_ratios=list(sizes.downsampling_ratios),
            channel_multiples=[1] + [2] * (len(sizes.downsampling_ratios) - 1),
            decoder_channels=sizes.vae_channels,
            decoder_input_channels=sizes.latent_channels,
            audio_channels=2,
            sampling_rate=sizes.sampling_rate,
        )
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
        audio_tokenizer = audio_token_detokenizer = None
        if with_audio_tokenizer:
            audio_tokenizer = AceStepAudioTokenizer(
                hidden_size=sizes.hidden_size,
                intermediate_size=sizes.intermediate_size,
                audio_acoustic_hidden_dim=sizes.latent_channels,
                fsq_dim=sizes.hidden_size,
                num_attention_pooler_hidden_layers=sizes.encoder_layers,
                **attention,
            )
            audio_token_detokenizer = AceStepAudioTokenDetokenizer(
                hidden_size=sizes.hidden_size,
                intermediate_size=sizes.intermediate_size,
                audio_acoustic_hidden_dim=sizes.latent_channels,
                num_attention_pooler_hidden_layers=sizes.encoder_layers,
                **attention,
            )
    finally:
        torch.random.set_rng_state(generator_state)

    pipeline = AceStepPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        condition_encoder=condition_encoder,
        scheduler=scheduler,
        audio_tokenizer=audio_tokenizer,
        audio_token_detokenizer=audio_token_detokenizer,
    )
    path = Path(path)
    pipeline.save_pretrained(path, safe_serialization=True)
    _use_hub_tokenizer_class_name(path)
    (path / "README.md").write_text(MODEL_CARD.format(variant=variant), encoding="utf-8")
    return path


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer of the Qwen2 class, built offline.

    Every byte is a token (no merges), plus Qwen's special tokens; the pipeline
    writes "<|endoftext|>" into its prompts and pads with it.
    """
    from tokenizers import pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    return Qwen2TokenizerFast(vocab=vocab, merges=[], model_max_length=32768)


def _use_hub_tokenizer_class_name(path: Path) -> None:
    index_path = path / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["tokenizer"] = ["transformers", HUB_TOKENIZER_CLASS]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
