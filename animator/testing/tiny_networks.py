"""Tiny LoRA and textual-inversion files for the tiny pipelines of :mod:`animator.testing.tiny_sd`.

A LoRA is a real PEFT adapter on the tiny UNet (and optionally its text encoder), saved as one ``.safetensors`` in
the diffusers format ``load_lora_weights`` reads; its B matrices are random (PEFT starts them at zero, which would
change nothing). Embeddings are written in the web UI's formats: ``.pt`` with ``string_to_param``, ``.safetensors``
with ``emb_params``, and SDXL ``.safetensors`` with ``clip_l`` / ``clip_g``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_tiny_lora", "make_tiny_embedding"]


def make_tiny_lora(
    model_folder: str | os.PathLike, path: str | os.PathLike, *, text_encoder: bool = False, seed: int = 0
) -> Path:
    """A LoRA (rank 4, attention projections) for the pipeline in ``model_folder``, saved as ``path``."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(str(model_folder))
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    pipe.unet.add_adapter(config)
    layers = {"unet_lora_layers": get_peft_model_state_dict(pipe.unet)}
    if text_encoder:
        # peft's own injection: transformers' add_adapter asks for a newer peft than diffusers does
        inject_adapter_in_model(
            LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj"], init_lora_weights=False),
            pipe.text_encoder,
        )
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(pipe.text_encoder)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(str(path.parent), weight_name=path.name, safe_serialization=True, **layers)
    return path


def make_tiny_embedding(
    path: str | os.PathLike, *, width: int | tuple[int, int] = 32, vectors: int = 2, seed: int = 0
) -> Path:
    """A textual-inversion file of ``vectors`` random vectors, in the format its suffix names: ``.pt`` (A1111
    ``string_to_param``) or ``.safetensors`` (``emb_params``); ``width=(32, 32)`` writes an SDXL file with
    ``clip_l`` and ``clip_g``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(width, tuple):
        from safetensors.torch import save_file

        clip_l, clip_g = (torch.randn(vectors, w, generator=generator) for w in width)
        save_file({"clip_l": clip_l, "clip_g": clip_g}, str(path))
        return path
    vectors_tensor = torch.randn(vectors, width, generator=generator)
    if path.suffix == ".pt":
        torch.save({"string_to_param": {"*": vectors_tensor}, "name": path.stem, "step": 100}, str(path))
    else:
        from safetensors.torch import save_file

        save_file({"emb_params": vectors_tensor}, str(path))
    return path
