"""Tiny real Stable Diffusion pipelines for tests and benchmarks (random weights, real diffusers classes).

Everything is built from configs in code, so nothing is downloaded: a byte-level CLIP tokenizer (vocab and merges
made here), tiny CLIP text encoders, a tiny UNet, a tiny AutoencoderKL (4 blocks, so latents are 1/8 of the image
like the real one) and optionally a tiny AutoencoderTiny. ``save_pretrained`` writes a normal diffusers folder that
``load_denoiser(folder)`` loads through the same path a user's model takes.

A 64x64 frame with 4 steps takes a few tens of milliseconds on one CPU core.

Example:
    >>> folder = make_tiny_sd(tmp_path / "tiny-sd")      # doctest: +SKIP
    >>> denoiser = load_denoiser(str(folder))             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["make_tiny_sd", "make_tiny_sdxl", "make_sd15_architecture", "make_tiny_tokenizer"]

# Text encoder width of the tiny models. SDXL concatenates two encoders' hidden states, so its UNet sees twice this.
_TEXT_DIM = 32
_MAX_TOKENS = 77


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def make_tiny_tokenizer():
    """An offline CLIPTokenizer: byte-level vocab (each byte, each byte ending a word) and no merges (~514 tokens)."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = _MAX_TOKENS
    return tokenizer


def _tiny_text_encoder(with_projection: bool = False, seed: int = 0):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=1000,  # > the tokenizer's 514 ids
        hidden_size=_TEXT_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=_MAX_TOKENS,
        projection_dim=_TEXT_DIM,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
        hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model_class = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return model_class(config).eval()


def _tiny_vae(seed: int = 0):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    # Four blocks give the real 8x downsampling, so latent sizes and mask pooling match full-size models.
    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.18215,
    ).eval()


def _tiny_autoencoder_tiny(seed: int = 0):
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    ).eval()


def _tiny_unet(cross_attention_dim: int, sdxl: bool = False, seed: int = 0):
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    extra = {}
    if sdxl:
        # SDXL conditions on pooled text (text_encoder_2 projection) + 6 micro-conditioning numbers (sizes, crop).
        extra = dict(
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=8 * 6 + _TEXT_DIM,
            use_linear_projection=True,
            attention_head_dim=(2, 4),
        )
    else:
        extra = dict(attention_head_dim=8)
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=32,
        **extra,
    ).eval()


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    # The SD 1.5 training schedule, so sampler switching behaves like it does on a real model.
    return EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, timestep_spacing="leading",
    )


def make_tiny_sd(folder: str | os.PathLike, *, tiny_vae: bool = False) -> Path:
    """Build and save a tiny SD 1.x-shaped img2img pipeline in ``folder`` (a diffusers folder) and return it.

    ``tiny_vae=True`` also saves a tiny ``AutoencoderTiny`` in ``folder/tiny_vae`` (load it with
    ``load_denoiser(folder, vae=folder / "tiny_vae")``).
    """
    from diffusers import StableDiffusionImg2ImgPipeline

    folder = Path(folder)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(),
        tokenizer=make_tiny_tokenizer(),
        unet=_tiny_unet(cross_attention_dim=_TEXT_DIM),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    if tiny_vae:
        _tiny_autoencoder_tiny().save_pretrained(folder / "tiny_vae", safe_serialization=True)
    return folder


def make_tiny_sdxl(folder: str | os.PathLike) -> Path:
    """Build and save a tiny SDXL-shaped img2img pipeline (two text encoders, pooled + time-id conditioning)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    folder = Path(folder)
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=_tiny_vae(),
        text_encoder=_tiny_text_encoder(seed=1),
        text_encoder_2=_tiny_text_encoder(with_projection=True, seed=2),
        tokenizer=make_tiny_tokenizer(),
        tokenizer_2=make_tiny_tokenizer(),
        unet=_tiny_unet(cross_attention_dim=2 * _TEXT_DIM, sdxl=True),
        scheduler=_scheduler(),
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def make_sd15_architecture(*, dtype=None, device=None):
    """The full-size SD 1.5 UNet, VAE and text encoder with random weights (same cost as the real ones), unsaved.

    Returns a ``StableDiffusionImg2ImgPipeline``; the tokenizer is the tiny offline one (tokenization cost is
    negligible, and the text encoder still sees 77 tokens). Meant for benchmarks: ~1 B parameters, ~4 GB in fp32.
    """
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    # Configs of runwayml/stable-diffusion-v1-5 (unet/config.json, vae/config.json, text_encoder/config.json).
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=512, eos_token_id=513, pad_token_id=513,
    ))
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=make_tiny_tokenizer(), unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.to(device=device, dtype=dtype)
    return pipe


def describe_folder(folder: str | os.PathLike) -> dict:
    """The pipeline class recorded in a diffusers folder's model_index.json (for test messages)."""
    with open(Path(folder) / "model_index.json", encoding="utf-8") as handle:
        return json.load(handle)
