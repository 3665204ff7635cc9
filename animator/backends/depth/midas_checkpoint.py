"""Original MiDaS / DPT ``.pt`` checkpoints (isl-org/MiDaS v3/v3.1, isl-org/DPT) onto
``transformers.DPTForDepthEstimation``.

Deforum users already have these on disk (``dpt_large_384.pt``, ``dpt_large-midas-2f21e586.pt``). The original
model is a timm ViT (``pretrained.model.*``) with hooks on four blocks, a reassemble stage
(``pretrained.act_postprocessN``), and a RefineNet decoder (``scratch.*``). transformers' DPT is the same network
with other names; this module renames the keys, splits timm's fused ``qkv`` projection into query/key/value, and
reads the architecture (width, depth, patch size, neck widths) off the tensor shapes, so nothing needs to be
downloaded. Supported: the plain-ViT models (ViT-L/16 and ViT-B/16 at 384). The hybrid (ResNet + ViT), BEiT, Swin and
timm-only v2.1 models are refused with a pointer to their Hugging Face conversions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    from torch import Tensor

# (original-name regex, transformers-name template). {n} is a 1-based stage index in the original; the templates use
# the 0-based index (n-1) or, for the decoder, the reversed index (4-n): MiDaS's refinenet4 runs first and
# transformers numbers its fusion layers in execution order.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"pretrained\.model\.cls_token", "dpt.embeddings.cls_token"),
    (r"pretrained\.model\.pos_embed", "dpt.embeddings.position_embeddings"),
    (r"pretrained\.model\.patch_embed\.proj\.(weight|bias)", "dpt.embeddings.patch_embeddings.projection.{0}"),
    (r"pretrained\.model\.blocks\.(\d+)\.norm1\.(weight|bias)", "dpt.encoder.layer.{0}.layernorm_before.{1}"),
    (r"pretrained\.model\.blocks\.(\d+)\.norm2\.(weight|bias)", "dpt.encoder.layer.{0}.layernorm_after.{1}"),
    (
        r"pretrained\.model\.blocks\.(\d+)\.attn\.proj\.(weight|bias)",
        "dpt.encoder.layer.{0}.attention.output.dense.{1}",
    ),
    (r"pretrained\.model\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", "dpt.encoder.layer.{0}.intermediate.dense.{1}"),
    (r"pretrained\.model\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", "dpt.encoder.layer.{0}.output.dense.{1}"),
    (r"pretrained\.model\.norm\.(weight|bias)", "dpt.layernorm.{0}"),
    (
        r"pretrained\.act_postprocess([1-4])\.0\.project\.0\.(weight|bias)",
        "neck.reassemble_stage.readout_projects.{n0}.0.{1}",
    ),
    (r"pretrained\.act_postprocess([1-4])\.3\.(weight|bias)", "neck.reassemble_stage.layers.{n0}.projection.{1}"),
    (r"pretrained\.act_postprocess([1-4])\.4\.(weight|bias)", "neck.reassemble_stage.layers.{n0}.resize.{1}"),
    (r"scratch\.layer([1-4])_rn\.weight", "neck.convs.{n0}.weight"),
    (r"scratch\.refinenet([1-4])\.out_conv\.(weight|bias)", "neck.fusion_stage.layers.{rev}.projection.{1}"),
    (
        r"scratch\.refinenet([1-4])\.resConfUnit([12])\.conv([12])\.(weight|bias)",
        "neck.fusion_stage.layers.{rev}.residual_layer{1}.convolution{2}.{3}",
    ),
    (r"scratch\.output_conv\.([024])\.(weight|bias)", "head.head.{0}.{1}"),
)
_QKV = re.compile(r"pretrained\.model\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)")
# Keys of the original that the depth model does not use: timm's classifier head.
_DROPPED = re.compile(r"pretrained\.model\.head\.(weight|bias)")
# Present in transformers' DPT but unused for depth (the final LayerNorm after the last block): may be absent.
_OPTIONAL_TARGETS = {"dpt.layernorm.weight", "dpt.layernorm.bias"}


def _rename(key: str) -> str | None:
    for pattern, template in _RENAMES:
        match = re.fullmatch(pattern, key)
        if match:
            groups = match.groups()
            stage = int(groups[0]) if groups and groups[0].isdigit() else 0
            return template.format(*groups, n0=stage - 1, rev=4 - stage)
    return None


def _unsupported_layout(state_dict: dict) -> str | None:
    """Name of a known-but-unsupported MiDaS variant, or None."""
    keys = list(state_dict)
    if any(k.startswith("pretrained.model.patch_embed.backbone") for k in keys):
        return "DPT-Hybrid (ResNet-50 + ViT)"
    if any("relative_position" in k for k in keys):
        return "BEiT or Swin"
    if any(k.startswith("pretrained.model.layers.") for k in keys):
        return "Swin"
    if any(k.startswith("pretrained.layer1.") or k.startswith("pretrained.model.conv_stem") for k in keys):
        return "MiDaS v2.1 (EfficientNet / ResNeXt)"
    return None


def midas_state_dict_to_transformers(state_dict: dict[str, Tensor], hidden_size: int) -> dict[str, Tensor]:
    """Rename an original MiDaS DPT-ViT state dict to ``DPTForDepthEstimation``'s names.

    Args:
        state_dict: the original checkpoint's tensors (``pretrained.model.blocks.N...``, ``scratch.refinenetN...``).
        hidden_size: ViT width (``pos_embed.shape[-1]``), needed to split the fused ``qkv`` projection.

    Raises:
        AnimatorError: a key that is neither known nor ignorable (not a MiDaS DPT-ViT checkpoint).
    """
    converted: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state_dict.items():
        if _DROPPED.fullmatch(key):
            continue
        qkv = _QKV.fullmatch(key)
        if qkv:
            block, kind = qkv.groups()
            # timm stores [query; key; value] stacked along the output dimension.
            for index, part in enumerate(("query", "key", "value")):
                converted[f"dpt.encoder.layer.{block}.attention.attention.{part}.{kind}"] = tensor[
                    index * hidden_size : (index + 1) * hidden_size
                ].clone()
            continue
        new_key = _rename(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = tensor
    if unknown:
        raise AnimatorError(
            f"{len(unknown)} keys do not belong to a MiDaS DPT-ViT checkpoint, e.g. {unknown[:3]}",
            hint="supported .pt files: dpt_large_384.pt, dpt_base_384.pt, dpt_large-midas-2f21e586.pt; "
            "for other models use a Hugging Face id (e.g. Intel/dpt-hybrid-midas) or a save_pretrained folder",
        )
    return converted


def dpt_config_from_midas_state_dict(state_dict: dict[str, Tensor], num_attention_heads: int | None = None):
    """A ``transformers.DPTConfig`` that matches an original MiDaS DPT-ViT checkpoint, read off its tensor shapes.

    Attention heads cannot be read from shapes: ViT-B/L use 64 channels per head, so ``hidden_size // 64``
    unless ``num_attention_heads`` is given.
    """
    from transformers import DPTConfig

    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise AnimatorError(
                f"missing tensor {key!r}: not a MiDaS DPT-ViT checkpoint, or a truncated file",
                hint="re-download the checkpoint",
            )
        return tuple(state_dict[key].shape)

    tokens, hidden = shape("pretrained.model.pos_embed")[1:]
    patch = shape("pretrained.model.patch_embed.proj.weight")[-1]
    grid = round((tokens - 1) ** 0.5)
    if grid * grid != tokens - 1:
        raise AnimatorError(f"position embedding has {tokens - 1} patches, not a square grid")
    blocks = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"pretrained\.model\.blocks\.(\d+)\.", k)))
    heads = num_attention_heads or max(1, hidden // 64)
    if hidden % heads:
        raise AnimatorError(f"hidden size {hidden} is not divisible by {heads} attention heads")
    # MiDaS hooks four evenly spaced blocks: [5, 11, 17, 23] for ViT-L, [2, 5, 8, 11] for ViT-B.
    out_indices = [blocks // 4 * k - 1 for k in range(1, 5)]
    neck = [shape(f"pretrained.act_postprocess{n}.3.weight")[0] for n in range(1, 5)]
    readout = "project" if "pretrained.act_postprocess1.0.project.0.weight" in state_dict else "ignore"
    return DPTConfig(
        hidden_size=hidden,
        num_hidden_layers=blocks,
        num_attention_heads=heads,
        intermediate_size=shape("pretrained.model.blocks.0.mlp.fc1.weight")[0],
        image_size=grid * patch,
        patch_size=patch,
        layer_norm_eps=1e-6,  # timm's ViT (the original backbone) uses 1e-6
        backbone_out_indices=out_indices,
        neck_hidden_sizes=neck,
        fusion_hidden_size=shape("scratch.layer1_rn.weight")[0],
        head_hidden_size=shape("scratch.output_conv.2.weight")[0],
        readout_type=readout,
        reassemble_factors=[4, 2, 1, 0.5],
    )


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.pt``/``.pth``/``.ckpt`` (torch pickle, read with ``weights_only``) or ``.safetensors``
    file."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a damaged file
        raise AnimatorError(
            f"cannot read the weight file: not a valid torch or safetensors state dict ({type(exc).__name__})",
            file=path,
            hint="the file is damaged or incomplete (an interrupted download?): download it again",
        ) from exc
    # Training checkpoints wrap the weights: {"model": state_dict, "optimizer": ...}.
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AnimatorError(
            "the file holds no state dict of tensors",
            file=path,
            hint="expected an original MiDaS DPT checkpoint such as dpt_large_384.pt",
        )
    return state


def load_midas_checkpoint(path: str | Path, num_attention_heads: int | None = None):
    """Build ``DPTForDepthEstimation`` from an original MiDaS DPT-ViT ``.pt`` file (CPU, float32, eval mode).

    Raises:
        AnimatorError: unreadable file, unsupported MiDaS variant, or tensors that do not fit.
    """
    import torch
    from transformers import DPTForDepthEstimation

    path = Path(path)
    state = read_checkpoint(path)
    variant = _unsupported_layout(state)
    if variant is not None:
        raise AnimatorError(
            f"this is a {variant} MiDaS checkpoint; only the plain-ViT DPT checkpoints load from .pt",
            file=path,
            hint="use its Hugging Face conversion instead, e.g. --depth Intel/dpt-hybrid-midas "
            "(after `hf download Intel/dpt-hybrid-midas`)",
        )
    try:
        config = dpt_config_from_midas_state_dict(state, num_attention_heads)
        converted = midas_state_dict_to_transformers(state, config.hidden_size)
    except AnimatorError as exc:
        raise exc.with_location(file=path) from None
    with torch.device("meta"):
        model = DPTForDepthEstimation(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(converted) - _OPTIONAL_TARGETS)
    unexpected = sorted(set(converted) - expected)
    if missing or unexpected:
        raise AnimatorError(
            f"the checkpoint does not match a DPT of its own shape: missing {missing[:3]}, unexpected {unexpected[:3]}",
            file=path,
            hint="a truncated or modified file: download it again",
        )
    for key in _OPTIONAL_TARGETS - set(converted):  # the unused final LayerNorm: identity values
        converted[key] = torch.ones(config.hidden_size) if key.endswith("weight") else torch.zeros(config.hidden_size)
    try:
        # assign=True adopts the checkpoint's tensors into the meta-device model: no random init of 300M weights.
        model.load_state_dict(converted, strict=True, assign=True)
    except RuntimeError as exc:  # shape mismatches
        raise AnimatorError(
            f"tensor shapes do not fit: {str(exc).splitlines()[-1][:300]}",
            file=path,
            hint="a modified or mislabelled file: download it again",
        ) from exc
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = DPTForDepthEstimation(config)  # a buffer the state dict does not carry: build for real
        model.load_state_dict(converted, strict=True)
    return model.float().eval()
