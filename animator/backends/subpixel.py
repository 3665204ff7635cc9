"""Nearest 2x upsampling + 3x3 convolution, computed at the input's resolution (a sub-pixel convolution).

Every upsampling layer of the SD UNets and VAE decoders (diffusers' ``Upsample2D``) repeats each pixel 2x2 and
then runs a 3x3 convolution over the enlarged map. Each output pixel of that convolution sees only 2x2 distinct
input pixels (its 3x3 window covers at most two rows and two columns of copies), so the same result is four 2x2
convolutions of the input, one per output phase (row parity a, column parity b), with the 3x3 weights summed
along the taps that read the same input pixel:

    phase a = 0 reads input rows (i-1, i):  taps (w0, w1 + w2)
    phase a = 1 reads input rows (i, i+1):  taps (w0 + w1, w2)          (the same for columns)

The four phases run as one convolution with 4x the output channels over the input padded by one pixel (its
(H+1)x(W+1) output holds phase (a, b) at offset (a, b)), and are interleaved into the 2Hx2W result. Arithmetic:
16 multiply-adds per output channel and input pixel instead of 36 (4/9), and the 4x enlarged copy of the input is
never written. For SD 1.5 at 512x512 the VAE decoder's three upsamplers are 28% of its arithmetic (696 of 2515
GFLOP), the UNet's 8.5% (136 of 1607 GFLOP per CFG evaluation); this saves 15% and 4.3% of them (less than 5/9
of the upsamplers' share: the phase map is one row and column larger than the input, which counts at 8x8).

The result equals the original up to floating-point rounding (the summed weights are rounded once, in the
weights' dtype). The layer keeps its parameters and their names (state dicts, LoRA loading and saving are
unchanged): :func:`use_subpixel_upsampling` swaps the layer's class for :class:`SubpixelUpsample2D`, whose
``forward`` takes this path, and falls back to diffusers' own ``forward`` for anything else (a transposed convolution,
another kernel
size, a convolution wrapped by a LoRA adapter or with hooks, an explicit output size that is not 2x, an input
smaller than 8x8, where the sub-pixel form saves little: SD 1.5 at 512x512 upsamples 8x8, 16x16 and 32x32 maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.upsampling import Upsample2D
from torch import nn

__all__ = [
    "SubpixelUpsample2D",
    "use_subpixel_upsampling",
    "uses_subpixel_upsampling",
    "subpixel_upsample_conv",
    "phase_kernels",
]


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """(4*out, in, 2, 2) kernels of the four output phases, ordered (row parity, column parity, out channel),
    from a (out, in, 3, 3) kernel that runs after a nearest 2x upsampling.

    Phase 0 reads input rows (i-1, i) with taps (w0, w1 + w2), phase 1 rows (i, i+1) with (w0 + w1, w2); columns
    alike. Made of tensor operations only (no table uploaded from the host: on a GPU that would be a wait)."""
    exact = torch.promote_types(weight.dtype, torch.float32)  # half weights are summed in float32, rounded once

    def by_phase(kernel: torch.Tensor, dim: int) -> torch.Tensor:  # 3 taps along dim -> (phase, ..., 2 taps, ...)
        w0, w1, w2 = kernel.unbind(dim)
        return torch.stack([torch.stack([w0, w1 + w2], dim), torch.stack([w0 + w1, w2], dim)])

    rows = by_phase(weight.to(exact), 2)  # (a, out, in, 2, 3)
    kernels = by_phase(rows, 4).transpose(0, 1)  # (b, a, out, in, 2, 2) -> (a, b, out, in, 2, 2)
    kernels = kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).to(weight.dtype)
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        kernels = kernels.contiguous(memory_format=torch.channels_last)  # the layout the layer's weights were given
    return kernels


def subpixel_upsample_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, kernels: torch.Tensor | None = None
) -> torch.Tensor:
    """``conv2d(interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)`` for a 3x3 ``weight``,
    without forming the upsampled input (see the module's docstring). ``kernels``: ``phase_kernels(weight)``,
    when the caller keeps them."""
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    kernels = phase_kernels(weight) if kernels is None else kernels
    # a 2x2 kernel over the input zero-padded by one pixel: (H+1)x(W+1) outputs, no padded copy made
    phases = F.conv2d(x, kernels, None if bias is None else bias.repeat(4), padding=1)
    phases = phases.unflatten(1, (2, 2, out_channels))  # (B, a, b, C, H+1, W+1)
    rows = [torch.stack([phases[:, a, b, :, a : a + height, b : b + width] for b in (0, 1)], dim=-1) for a in (0, 1)]
    out = torch.stack(rows, dim=3).reshape(batch, out_channels, 2 * height, 2 * width)  # (B, C, H, a, W, b)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)  # keep the network's layout on CUDA
    return out


# Smaller inputs keep diffusers' path: the phase map's extra row and column cost most there (at 4x4 the arithmetic
# is 0.69x, at 2x2 1.0x the original's), and on a CPU the 1280-channel UNet layers at 2x2 and 4x4 measured 0.6-0.7x
# the original's speed, while 8x8 and larger measured 1.1-2.2x (benchmarks/bench_upsample.py).
MIN_SIDE = 8


def _takes_subpixel_path(layer, hidden_states: torch.Tensor, output_size) -> bool:
    conv = layer.conv if layer.name == "conv" else getattr(layer, "Conv2d_0", None)
    if not (layer.interpolate and layer.use_conv and not layer.use_conv_transpose and type(conv) is nn.Conv2d):
        return False  # a LoRA adapter wraps the Conv2d in its own class: diffusers' path runs it
    if conv._forward_pre_hooks or conv._forward_hooks or hasattr(conv, "_hf_hook"):
        return False  # hooks on the convolution (accelerate's sequential offload brings its weights) must run
    if not (
        conv.kernel_size == (3, 3)
        and conv.padding == (1, 1)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    ):
        return False
    height, width = hidden_states.shape[-2:]
    if min(height, width) < MIN_SIDE:
        return False
    return output_size is None or tuple(output_size) == (2 * height, 2 * width)


def _kept_phase_kernels(layer, conv: nn.Conv2d) -> torch.Tensor | None:
    """The phase kernels of ``conv``'s current weights, made once and kept on the layer (None: make them per call).

    Summing the 3x3 weights reads and writes ~3x the layer's weights, which for the UNet's 1280-channel layers at
    small feature maps costs about what the smaller convolution saves. Eager calls keep them, keyed by the
    weight's storage and version counter, so weights replaced (``.to()``, ``fuse_lora``) or changed in place
    (``load_state_dict``, ``copy_``) are re-summed at the next call. Compiled graphs sum them inside the graph
    (fused into one kernel; the weights stay graph inputs, read at every call), training sums them per call so
    that gradients reach the weights, and so do weights made under ``inference_mode`` (they have no version
    counter to tell a change)."""
    weight = conv.weight
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and weight.requires_grad):
        return None
    if weight.is_inference():  # made under inference_mode: no version counter says whether it changed
        return None
    key = (weight.data_ptr(), weight._version, weight.dtype, weight.device, tuple(weight.shape))
    kept = layer.__dict__.get("_animator_phase_kernels")
    if kept is None or kept[0] != key:
        with torch.inference_mode(False), torch.no_grad():  # an ordinary tensor, usable outside inference mode
            # the weights' storage is held with the key, so that its address cannot be reused by another weight
            # tensor (replaced twice between two calls) that would then match the key
            kept = (key, phase_kernels(weight), weight.untyped_storage())
        layer.__dict__["_animator_phase_kernels"] = kept  # a plain attribute: not in the state dict
    return kept[1]


class SubpixelUpsample2D(Upsample2D):
    """diffusers' ``Upsample2D``, computed as a sub-pixel convolution where it can be (see the module's docstring).
    :func:`use_subpixel_upsampling` gives loaded layers this class: ``isinstance(layer, Upsample2D)`` still holds."""

    def forward(self, hidden_states: torch.Tensor, output_size=None, *args, **kwargs) -> torch.Tensor:
        if args or kwargs or not _takes_subpixel_path(self, hidden_states, output_size):
            return super().forward(hidden_states, output_size, *args, **kwargs)
        if self.norm is not None:  # as diffusers: a channels-last norm before upsampling
            hidden_states = self.norm(hidden_states.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        conv = self.conv if self.name == "conv" else self.Conv2d_0
        return subpixel_upsample_conv(hidden_states, conv.weight, conv.bias, kernels=_kept_phase_kernels(self, conv))


def use_subpixel_upsampling(model: nn.Module) -> int:
    """Switches every diffusers ``Upsample2D`` in ``model`` to the sub-pixel path, in place; returns how many.

    Idempotent; parameters, buffers and their names are untouched."""
    switched = 0
    for module in model.modules():
        if type(module) is Upsample2D:
            module.__class__ = SubpixelUpsample2D
        if type(module) is SubpixelUpsample2D:
            switched += 1
    return switched


def uses_subpixel_upsampling(model: nn.Module) -> bool:
    """Whether :func:`use_subpixel_upsampling` switched any layer of ``model``."""
    return any(type(module) is SubpixelUpsample2D for module in model.modules())
