"""Tiny real ControlNets for tests and benchmarks (random weights, real diffusers classes).

``ControlNetModel.from_unet`` copies a UNet's encoder and starts the ControlNet's output layers (the zero
convolutions) at zero, so a fresh unit changes nothing. Tests need units that do something: those layers are
filled with small random values here. ``save_controlnet_single_file`` writes the original (ldm) layout that
Automatic1111 users download (``control_v11f1p_sd15_depth.pth`` ...), so ``from_single_file`` runs for real.

Example:
    >>> folder = make_tiny_controlnet(tmp_path / "cn", unet_folder=tiny_model / "unet")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_tiny_controlnet", "fill_zero_layers", "save_controlnet_single_file", "make_sd15_depth_controlnet"]


def fill_zero_layers(controlnet, *, seed: int = 0, scale: float = 0.05) -> None:
    """Fill the zero-initialised output layers (zero convolutions, the hint encoder's last convolution) with
    random values of standard deviation ``scale``, so the unit has an effect."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    layers = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    layers.append(controlnet.controlnet_cond_embedding.conv_out)
    with torch.no_grad():
        for layer in layers:
            for parameter in layer.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def make_tiny_controlnet(
    folder: str | os.PathLike, *, unet_folder: str | os.PathLike, union: bool = False, seed: int = 0
) -> Path:
    """A ControlNet (or, ``union=True``, a ControlNet-Union) made from the UNet saved in ``unet_folder`` (a tiny
    pipeline's ``unet/``), its output layers filled, saved as a diffusers folder in ``folder``."""
    import torch
    from diffusers import ControlNetModel, ControlNetUnionModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    torch.manual_seed(seed)
    if union:
        shaped = ControlNetUnionModel.from_unet(unet, load_weights_from_unet=False)
        # its control-type transformer is as wide as the first block (320 in SDXL, hard-coded in the defaults)
        width = unet.config.block_out_channels[0]
        # without _use_default_values, which would put the defaults back over the widths set here
        config = {key: value for key, value in shaped.config.items() if key != "_use_default_values"}
        controlnet = ControlNetUnionModel.from_config(
            {**config, "num_trans_channel": width, "num_proj_channel": width, "num_trans_head": 4}
        )
        with torch.no_grad():  # the control-type tokens start at zero as well
            controlnet.task_embedding.normal_(0.0, 0.05)
            for parameter in controlnet.spatial_ch_projs.parameters():
                parameter.normal_(0.0, 0.05)
    else:
        controlnet = ControlNetModel.from_unet(unet)
    fill_zero_layers(controlnet, seed=seed)
    folder = Path(folder)
    controlnet.eval().save_pretrained(folder, safe_serialization=True)
    return folder


def make_sd15_depth_controlnet(*, dtype=None, device=None):
    """The full-size SD 1.5 ControlNet architecture (lllyasviel/control_v11f1p_sd15_depth's config) with random
    weights, unsaved: the same cost as the real depth ControlNet, for benchmarks."""
    from diffusers import ControlNetModel

    controlnet = ControlNetModel(
        in_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        conditioning_embedding_out_channels=(16, 32, 96, 256),
    )
    fill_zero_layers(controlnet)
    return controlnet.to(device=device, dtype=dtype).eval()


def save_controlnet_single_file(folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Save the ControlNet in ``folder`` as ONE original-layout ``.safetensors`` file (keys under
    ``control_model.``). Load it back with ``load_controlnet(path, config=folder)``."""
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
    from safetensors.torch import save_file

    from animator.testing.tiny_sd import _unet_to_ldm

    controlnet = ControlNetModel.from_pretrained(folder)
    top = DIFFUSERS_TO_LDM_MAPPING["controlnet"]["layers"]
    encoder, rest = {}, {}
    for key, value in controlnet.state_dict().items():
        (encoder if key.startswith(("down_blocks.", "mid_block.")) else rest)[key] = value
    config = {**controlnet.config, "up_block_types": ()}
    state = {key.removeprefix("model.diffusion_model."): value for key, value in _unet_to_ldm(encoder, config).items()}
    blocks = len(controlnet.controlnet_cond_embedding.blocks)
    for key, value in rest.items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[0] == "controlnet_down_blocks":
            new = f"zero_convs.{parts[1]}.0.{parts[2]}"
        elif parts[0] == "controlnet_mid_block":
            new = f"middle_block_out.0.{parts[1]}"
        elif parts[1] == "conv_in":
            new = f"input_hint_block.0.{parts[2]}"
        elif parts[1] == "blocks":
            new = f"input_hint_block.{2 * (int(parts[2]) + 1)}.{parts[3]}"
        elif parts[1] == "conv_out":
            new = f"input_hint_block.{2 * (blocks + 1)}.{parts[2]}"
        else:
            raise ValueError(f"no original-layout name for ControlNet weight {key}")
        state[new] = value
    path = Path(path)
    save_file({"control_model." + k: v.contiguous() for k, v in state.items()}, str(path))
    return path
