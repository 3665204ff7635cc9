"""Tiny real Stable Diffusion pipelines for tests and benchmarks (random weights, real diffusers classes).

Everything is built from configs in code, so nothing is downloaded: a byte-level CLIP tokenizer (vocab and merges
made here), tiny CLIP text encoders, a tiny UNet, a tiny AutoencoderKL (4 blocks, so latents are 1/8 of the image
like the real one) and optionally a tiny AutoencoderTiny. ``save_pretrained`` writes a normal diffusers folder that
``load_denoiser(folder)`` loads through the same path a user's model takes.

A 64x64 frame with 4 steps (CFG on) takes ~0.35 s at strength 1 and ~0.16 s at strength 0.5 on one shared
CPU core (machine load ~5).

Example:
    >>> folder = make_tiny_sd(tmp_path / "tiny-sd")      # doctest: +SKIP
    >>> denoiser = load_denoiser(str(folder))             # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["make_tiny_sd", "make_tiny_sdxl", "make_sd15_architecture", "make_tiny_tokenizer", "save_single_file"]

# Text encoder width of the tiny models. SDXL concatenates two encoders' hidden states, so its UNet sees twice this.
_TEXT_DIM = 32
_MAX_TOKENS = 77


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
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
        # 1 / std of this VAE's latents on photographs (~0.31), as SD's 0.18215 is for its VAE: unit-variance
        # latents make strength mean the same here as on a real model (noise and content on the same scale).
        scaling_factor=3.2,
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
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
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


def make_sd15_text_encoder():
    """SD 1.5's text encoder (CLIP ViT-L/14 text tower, 123 M parameters, runwayml/stable-diffusion-v1-5's
    text_encoder/config.json) with random weights from torch's global generator, token ids matching
    :func:`make_tiny_tokenizer`."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        )
    )


def make_sd15_architecture(*, dtype=None, device=None):
    """The full-size SD 1.5 UNet, VAE and text encoder with random weights (same cost as the real ones), unsaved.

    Returns a ``StableDiffusionImg2ImgPipeline``; the tokenizer is the tiny offline one (tokenization cost is
    negligible, and the text encoder still sees 77 tokens). Meant for benchmarks: ~1 B parameters, ~4 GB in fp32.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    # Configs of runwayml/stable-diffusion-v1-5 (unet/config.json, vae/config.json; the text encoder's: see
    # make_sd15_text_encoder).
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    )
    text_encoder = make_sd15_text_encoder()
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_tiny_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    from animator.backends.denoise.loading import without_cast_warning

    with without_cast_warning():  # random weights: no module has to stay in float32
        pipe.to(device=device, dtype=dtype)
    return pipe


def describe_folder(folder: str | os.PathLike) -> dict:
    """The pipeline class recorded in a diffusers folder's model_index.json (for test messages)."""
    with open(Path(folder) / "model_index.json", encoding="utf-8") as handle:
        return json.load(handle)


# ---------------------------------------------------------------- original (ldm) single-file layout
# diffusers ships only the original -> diffusers direction (diffusers.loaders.single_file_utils); tests need the
# reverse to make a single-file checkpoint from a tiny pipeline, so `from_single_file` is exercised for real.

_RESNET_TO_LDM = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_VAE_ATTENTION_TO_LDM = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def _rename_part(rest: str, table) -> str:
    """Rename the leading module of ``rest`` (``norm1.weight`` -> ``in_layers.0.weight``) by a (new, old) table."""
    for new, old in table:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def _unet_to_ldm(state: dict, config) -> dict:
    """A diffusers UNet2DConditionModel state dict in the original layout (keys under model.diffusion_model.)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    top = dict(DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"])
    if config.get("addition_embed_type") == "text_time":
        top.update(DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"])
    per_block = config["layers_per_block"] + 1  # ldm counts the downsampler (or the extra up layer) as a layer
    up_has_attention = {i: "CrossAttn" in name for i, name in enumerate(config["up_block_types"])}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[0] == "down_blocks":
            block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "downsamplers":
                new = f"input_blocks.{1 + block * per_block + per_block - 1}.0.op.{rest.partition('.')[2]}"
            elif kind == "resnets":
                new = f"input_blocks.{1 + block * per_block + index}.0.{_rename_part(rest, _RESNET_TO_LDM)}"
            else:
                new = f"input_blocks.{1 + block * per_block + index}.1.{rest}"
        elif parts[0] == "mid_block":
            kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            if kind == "resnets":
                new = f"middle_block.{2 * index}.{_rename_part(rest, _RESNET_TO_LDM)}"
            else:
                new = f"middle_block.1.{rest}"
        elif parts[0] == "up_blocks":
            block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "upsamplers":
                slot = 2 if up_has_attention[block] else 1
                new = f"output_blocks.{block * per_block + per_block - 1}.{slot}.{rest}"
            elif kind == "resnets":
                new = f"output_blocks.{block * per_block + index}.0.{_rename_part(rest, _RESNET_TO_LDM)}"
            else:
                new = f"output_blocks.{block * per_block + index}.1.{rest}"
        else:
            raise ValueError(f"no original-layout name for UNet weight {key}")
        out["model.diffusion_model." + new] = value
    return out


def _vae_to_ldm(state: dict, config) -> dict:
    """A diffusers AutoencoderKL state dict in the original layout (keys under first_stage_model.)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    blocks = len(config["up_block_types"])
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        coder = parts[0]
        if key in top:
            new = top[key]
        elif parts[1] in ("down_blocks", "up_blocks"):
            block, kind, index, rest = int(parts[2]), parts[3], parts[4], ".".join(parts[5:])
            level = block if parts[1] == "down_blocks" else blocks - 1 - block  # ldm numbers decoder levels upwards
            group = "down" if parts[1] == "down_blocks" else "up"
            if kind in ("downsamplers", "upsamplers"):
                new = f"{coder}.{group}.{level}.{'downsample' if group == 'down' else 'upsample'}.{rest}"
            else:
                new = f"{coder}.{group}.{level}.block.{index}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
        elif parts[1] == "mid_block":
            kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "resnets":
                new = f"{coder}.mid.block_{index + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                new = f"{coder}.mid.attn_1.{_rename_part(rest, _VAE_ATTENTION_TO_LDM)}"
                if value.ndim == 2:
                    value = value[:, :, None, None]  # ldm's attention projections are 1x1 convolutions
        else:
            raise ValueError(f"no original-layout name for VAE weight {key}")
        out["first_stage_model." + new] = value
    return out


def save_single_file(folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Save a tiny SD 1.x pipeline folder as ONE original-layout .safetensors checkpoint (what A1111 users have).

    Load it back with ``load_denoiser(path, model_config=folder)`` (offline, the folder supplies the configs).
    """
    from diffusers import StableDiffusionImg2ImgPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    state = {}
    state.update(_unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config))
    state.update(_vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    for key, value in pipe.text_encoder.state_dict().items():
        # the original layout wraps CLIP in `text_model.` (transformers >= 5.6 flattened CLIPTextModel)
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = value
    path = Path(path)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
