"""Tiny real depth models (random weights, real transformers classes) for tests, benchmarks and examples.

Each builder writes what a user would have on disk, so tests go through exactly the user's loading path:

- :func:`make_tiny_dpt`: a plain-ViT ``DPTForDepthEstimation`` folder (``save_pretrained`` layout),
- :func:`make_tiny_depth_anything`: a ``DepthAnythingForDepthEstimation`` folder with a tiny DINOv2 backbone,
- :func:`make_tiny_midas_checkpoint`: an original-MiDaS-layout ``.pt`` file (``pretrained.model.blocks.N...``,
  ``scratch.refinenetN...``) made by renaming a tiny DPT's weights, plus that DPT for comparison.

The full-size configs (:func:`dpt_large_config`, :func:`depth_anything_v2_small_config`) have the cost of the
pretrained models: benchmarks time them with random weights (:func:`make_dpt_large`,
:func:`make_depth_anything_v2_small` write them as folders).
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def tiny_dpt_config():
    """A 4-block ViT DPT at 64x64 (patch 16), ~0.9M parameters, same structure as Intel/dpt-large."""
    from transformers import DPTConfig

    return DPTConfig(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=256,
        image_size=64,
        patch_size=16,
        layer_norm_eps=1e-6,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[16, 32, 64, 64],
        fusion_hidden_size=32,
        head_hidden_size=32,
        readout_type="project",
        reassemble_factors=[4, 2, 1, 0.5],
    )


def tiny_depth_anything_config():
    """Depth Anything with a 4-block DINOv2 backbone of width 32 (patch 14), ~0.14M parameters."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )


def dpt_large_config():
    """Intel/dpt-large's architecture (ViT-L/16 at 384, ~343M parameters)."""
    from transformers import DPTConfig

    return DPTConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        image_size=384,
        patch_size=16,
        backbone_out_indices=[5, 11, 17, 23],
        neck_hidden_sizes=[256, 512, 1024, 1024],
        fusion_hidden_size=256,
        readout_type="project",
    )


def depth_anything_v2_small_config():
    """depth-anything/Depth-Anything-V2-Small-hf's architecture (ViT-S/14 DINOv2, ~25M parameters)."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        image_size=518,
        patch_size=14,
        out_indices=[3, 6, 9, 12],
        reshape_hidden_states=False,
        apply_layernorm=True,
        layerscale_value=1.0,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=384,
        neck_hidden_sizes=[48, 96, 192, 384],
        fusion_hidden_size=64,
        head_hidden_size=32,
    )


def _build(model_class, config, seed: int, probe_size: int):
    """A seeded model whose output visibly depends on its input.

    transformers' init (normal, std 0.02) gives a tiny network ~1e-8 outputs, nearly all cut by the final ReLU, so
    any two implementations would "agree". PyTorch's default per-layer init keeps activations alive; the last
    convolution is then rescaled on a fixed probe batch so the disparity has mean ~3 and spread ~1 (almost all > 0).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config).eval()
        for module in model.modules():
            if module is not model and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        last_conv = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        captured = {}
        hook = last_conv.register_forward_hook(lambda mod, args, out: captured.setdefault("out", out))
        with torch.no_grad():
            model(pixel_values=torch.randn(2, 3, probe_size, probe_size))
            hook.remove()
            mean, std = captured["out"].mean(), captured["out"].std().clamp_min(1e-12)
            last_conv.weight.div_(std)
            last_conv.bias.copy_((last_conv.bias - mean) / std + 3.0)
    return model


def make_tiny_dpt(folder: str | Path, *, seed: int = 0, preprocessor: bool = True):
    """Write a tiny plain-ViT DPT to ``folder`` (``save_pretrained``) and return the model.

    With ``preprocessor`` a ``preprocessor_config.json`` like Intel/dpt-large's (64x64, mean = std = 0.5) is written.
    """
    return _make_dpt(folder, tiny_dpt_config(), 64, seed=seed, preprocessor=preprocessor)


def make_dpt_large(folder: str | Path, *, seed: int = 0, preprocessor: bool = True):
    """Write DPT-Large (Intel/dpt-large's architecture, 384x384 input) with random weights to ``folder``: the real
    model's cost, for benchmarks. Returns the model."""
    return _make_dpt(folder, dpt_large_config(), 384, seed=seed, preprocessor=preprocessor)


def _make_dpt(folder: str | Path, config, size: int, *, seed: int, preprocessor: bool):
    from transformers import DPTForDepthEstimation

    model = _build(DPTForDepthEstimation, config, seed, size)
    folder = Path(folder)
    _save_quietly(model, folder)
    if preprocessor:
        _write_preprocessor(
            folder,
            "DPTImageProcessor",
            {"height": size, "width": size},
            [0.5] * 3,
            [0.5] * 3,
            keep_aspect_ratio=False,
            multiple_of=1,
        )
    return model


def make_tiny_depth_anything(folder: str | Path, *, seed: int = 0, preprocessor: bool = True):
    """Write a tiny Depth Anything (DINOv2 backbone) to ``folder`` and return the model.

    With ``preprocessor`` its ``preprocessor_config.json`` asks for a 56-pixel short side in multiples of 14.
    """
    return _make_depth_anything(folder, tiny_depth_anything_config(), 56, seed=seed, preprocessor=preprocessor)


def make_depth_anything_v2_small(folder: str | Path, *, seed: int = 0, preprocessor: bool = True):
    """Write Depth Anything V2 Small (depth-anything/Depth-Anything-V2-Small-hf's architecture and preprocessing,
    518-pixel short side) with random weights to ``folder``: the real model's cost, for benchmarks."""
    return _make_depth_anything(folder, depth_anything_v2_small_config(), 518, seed=seed, preprocessor=preprocessor)


def _make_depth_anything(folder: str | Path, config, size: int, *, seed: int, preprocessor: bool):
    from transformers import DepthAnythingForDepthEstimation

    model = _build(DepthAnythingForDepthEstimation, config, seed, size)
    folder = Path(folder)
    _save_quietly(model, folder)
    if preprocessor:
        _write_preprocessor(
            folder,
            "DPTImageProcessor",
            {"height": size, "width": size},
            [0.485, 0.456, 0.406],
            [0.229, 0.224, 0.225],
            keep_aspect_ratio=True,
            multiple_of=14,
        )
    return model


def _save_quietly(model, folder: Path) -> None:
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _write_preprocessor(folder: Path, kind: str, size: dict, mean, std, *, keep_aspect_ratio: bool, multiple_of: int):
    config = {
        "image_processor_type": kind,
        "do_resize": True,
        "size": size,
        "keep_aspect_ratio": keep_aspect_ratio,
        "ensure_multiple_of": multiple_of,
        "do_normalize": True,
        "image_mean": mean,
        "image_std": std,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2))


# transformers name -> original MiDaS name, the inverse of animator.backends.depth.midas_checkpoint's table.
_TO_MIDAS = (
    (r"dpt\.embeddings\.cls_token", "pretrained.model.cls_token"),
    (r"dpt\.embeddings\.position_embeddings", "pretrained.model.pos_embed"),
    (r"dpt\.embeddings\.patch_embeddings\.projection\.(\w+)", "pretrained.model.patch_embed.proj.{0}"),
    (r"dpt\.encoder\.layer\.(\d+)\.layernorm_before\.(\w+)", "pretrained.model.blocks.{0}.norm1.{1}"),
    (r"dpt\.encoder\.layer\.(\d+)\.layernorm_after\.(\w+)", "pretrained.model.blocks.{0}.norm2.{1}"),
    (r"dpt\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(\w+)", "pretrained.model.blocks.{0}.attn.proj.{1}"),
    (r"dpt\.encoder\.layer\.(\d+)\.intermediate\.dense\.(\w+)", "pretrained.model.blocks.{0}.mlp.fc1.{1}"),
    (r"dpt\.encoder\.layer\.(\d+)\.output\.dense\.(\w+)", "pretrained.model.blocks.{0}.mlp.fc2.{1}"),
    (r"dpt\.layernorm\.(\w+)", "pretrained.model.norm.{0}"),
    (r"neck\.reassemble_stage\.readout_projects\.(\d)\.0\.(\w+)", "pretrained.act_postprocess{p1}.0.project.0.{1}"),
    (r"neck\.reassemble_stage\.layers\.(\d)\.projection\.(\w+)", "pretrained.act_postprocess{p1}.3.{1}"),
    (r"neck\.reassemble_stage\.layers\.(\d)\.resize\.(\w+)", "pretrained.act_postprocess{p1}.4.{1}"),
    (r"neck\.convs\.(\d)\.weight", "scratch.layer{p1}_rn.weight"),
    (r"neck\.fusion_stage\.layers\.(\d)\.projection\.(\w+)", "scratch.refinenet{rev}.out_conv.{1}"),
    (
        r"neck\.fusion_stage\.layers\.(\d)\.residual_layer(\d)\.convolution(\d)\.(\w+)",
        "scratch.refinenet{rev}.resConfUnit{1}.conv{2}.{3}",
    ),
    (r"head\.head\.(\d)\.(\w+)", "scratch.output_conv.{0}.{1}"),
)


def midas_state_dict_from_dpt(model) -> dict:
    """The weights of a plain-ViT ``DPTForDepthEstimation`` under the original MiDaS names (fused ``qkv``)."""
    import torch

    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for block in range(model.config.num_hidden_layers):
        prefix = f"dpt.encoder.layer.{block}.attention.attention."
        for kind in ("weight", "bias"):
            out[f"pretrained.model.blocks.{block}.attn.qkv.{kind}"] = torch.cat(
                [state.pop(prefix + part + "." + kind) for part in ("query", "key", "value")]
            )
    for key, tensor in state.items():
        for pattern, template in _TO_MIDAS:
            match = re.fullmatch(pattern, key)
            if match:
                groups = match.groups()
                index = int(groups[0]) if groups and groups[0].isdigit() else 0
                out[template.format(*groups, p1=index + 1, rev=4 - index)] = tensor.clone()
                break
        else:
            raise KeyError(f"no MiDaS name for {key}")
    # The original checkpoints also carry timm's (unused) classifier head.
    hidden = model.config.hidden_size
    out["pretrained.model.head.weight"] = torch.zeros(1000, hidden)
    out["pretrained.model.head.bias"] = torch.zeros(1000)
    return out


def make_tiny_midas_checkpoint(path: str | Path, *, seed: int = 0):
    """Write a tiny original-layout MiDaS DPT ``.pt`` to ``path``; return the transformers DPT it was made from."""
    import torch
    from transformers import DPTForDepthEstimation

    model = _build(DPTForDepthEstimation, tiny_dpt_config(), seed, 64)
    torch.save(midas_state_dict_from_dpt(model), str(path))
    return model
