"""The ControlNet units' residuals for one UNet evaluation.

Each unit in its guidance window runs once per sampling step on the step's (scaled) latents and adds its down and
mid residuals to the UNet's skip connections; several units' residuals are summed (as diffusers'
``MultiControlNetModel`` does). Per unit and frame:

- **weight** scales its residuals; a unit at weight 0 is not run at all (its residuals would be zeros).
- **guidance_start / guidance_end** pick the steps it runs on, counted over the steps this frame's sampling runs,
  which with img2img are the ones left after strength truncated the schedule (diffusers' rule): step ``i`` of
  ``n`` is in the window when ``i / n >= start`` and ``(i + 1) / n <= end``. Outside the window it is not called.
- **mode** decides how it shares classifier-free guidance with the prompt:
  ``balanced`` adds the residuals to both halves (unconditional and conditional) at the same weight;
  ``prompt`` does the same with weights falling off towards the encoder's input, ``0.825 ** (12 - i)`` for SD 1.5's
  13 residuals (Automatic1111's "my prompt is more important");
  ``control`` runs the ControlNet on the conditional half only, with diffusers' guess-mode weights
  (``logspace(-1, 0)``: 0.1 at the input up to 1 at the middle) and zeros for the unconditional half, so CFG
  pushes towards the control as well as the prompt ("ControlNet is more important", diffusers' ``guess_mode``).

The UNet gets residuals on every step of a frame that has control inputs (zeros where no unit is in its window):
a compiled UNet then keeps one graph for the whole render, and adding zeros leaves its result bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from animator.backends.controlnet.units import ControlInput, ControlNetUnit
from animator.backends.denoise.base import check_image
from animator.devices import profiled, upload

__all__ = ["ScaledControlNet", "ControlRun", "in_window", "residual_scales", "residual_shapes"]

# Automatic1111's soft-injection falloff per residual ("my prompt is more important")
_PROMPT_FALLOFF = 0.825


class ScaledControlNet(torch.nn.Module):
    """A ControlNet whose residuals come out multiplied by a tensor of per-residual scales: ``(*down, mid)``.

    The scales (the frame's weight, shaped by the unit's mode) are an input tensor, not a Python float: a compiled
    ControlNet would be traced again for every new float, and a weight schedule changes every frame. The control
    type token of a ControlNet-Union model is a buffer, fixed per unit.
    """

    def __init__(self, controlnet, union_index: int | None = None) -> None:
        super().__init__()
        self.controlnet = controlnet
        self.union_index = union_index
        if union_index is not None:
            one_hot = torch.zeros(1, controlnet.config.num_control_type)
            one_hot[0, union_index] = 1.0
            self.register_buffer("control_type", one_hot, persistent=False)

    def forward(self, sample, timestep, encoder_hidden_states, image, scales, added_cond_kwargs=None):
        kwargs = {"added_cond_kwargs": added_cond_kwargs} if added_cond_kwargs else {}
        if self.union_index is not None:
            kwargs["control_type"] = self.control_type.to(sample.dtype).expand(sample.shape[0], -1)
            kwargs["control_type_idx"] = [self.union_index]
            image = [image]
        down, mid = self.controlnet(
            sample,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            controlnet_cond=image,
            conditioning_scale=1.0,
            return_dict=False,
            **kwargs,
        )
        return (*(residual * scales[i] for i, residual in enumerate(down)), mid * scales[len(down)])


def in_window(step: int, steps: int, start: float, end: float) -> bool:
    """Whether step ``step`` (0-based) of the ``steps`` a frame runs lies in the window [start, end] (diffusers'
    ``controlnet_keep`` rule: the step's whole span must lie inside).

    >>> [in_window(i, 4, 0.25, 0.75) for i in range(4)]
    [False, True, True, False]
    """
    return not (step / steps < start or (step + 1) / steps > end)


def residual_scales(mode: str, count: int, weight: float) -> list[float]:
    """The ``count`` residuals' scales (down residuals from the input side, the mid residual last).

    >>> [round(scale, 4) for scale in residual_scales("control", 3, 2.0)]  # 2 * (0.1, 0.316, 1)
    [0.2, 0.6325, 2.0]
    >>> [round(scale, 4) for scale in residual_scales("prompt", 3, 1.0)]  # 0.825 ** 2, 0.825, 1
    [0.6806, 0.825, 1.0]
    """
    if mode == "prompt":
        return [weight * _PROMPT_FALLOFF ** (count - 1 - i) for i in range(count)]
    if mode == "control":
        return [weight * 10 ** (-1 + i / (count - 1)) for i in range(count)]
    return [weight] * count


def residual_shapes(unet_config, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
    """Shapes of the residuals a ControlNet gives a UNet with ``unet_config`` for ``batch`` latents of
    ``height`` x ``width``: conv_in's output, each down block's layers and downsampler, then the middle."""
    channels = list(unet_config["block_out_channels"])
    shapes = [(batch, channels[0], height, width)]
    for block, width_channels in enumerate(channels):
        shapes += [(batch, width_channels, height, width)] * unet_config["layers_per_block"]
        if block < len(channels) - 1:  # a stride-2 convolution with padding 1: ceil
            height, width = math.ceil(height / 2), math.ceil(width / 2)
            shapes.append((batch, width_channels, height, width))
    shapes.append((batch, channels[-1], height, width))
    return shapes


@dataclass
class _Entry:
    unit: ControlNetUnit
    image: torch.Tensor  # (2B or B)x3xHxW in the UNet's dtype
    scales: torch.Tensor  # (residual_count,) on the device
    steps: frozenset[int]  # the steps it runs on
    cond_only: bool


class ControlRun:
    """The control of one sampling run (one frame): call it at each step for the UNet's residual arguments.

    Args:
        inputs: the frame's control inputs, one per unit.
        steps: how many steps this run takes (``len(timesteps)``, after img2img truncation).
        batch: latents per UNet input half; ``use_cfg``: whether the UNet input holds two halves.
        latent_size: (h, w) of the latents; ``image_size``: (H, W) of the pixels the control images must have.
    """

    def __init__(
        self,
        inputs: Sequence[ControlInput],
        *,
        steps: int,
        batch: int,
        use_cfg: bool,
        latent_size: tuple[int, int],
        image_size: tuple[int, int],
        unet_config,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.use_cfg = use_cfg
        self.entries: list[_Entry] = []
        for item in inputs:
            weight = float(item.weight)
            active = frozenset(i for i in range(steps) if in_window(i, steps, float(item.start), float(item.end)))
            if weight == 0 or not active:
                continue
            unit = item.unit
            check_image(item.image, f"control image of controlnet.{unit.index}", values=False)
            cond_only = unit.cond_only and use_cfg
            image = _prepare_image(item.image, batch, image_size, device, dtype)
            if use_cfg and not cond_only:
                image = torch.cat([image, image])
            scales = upload(torch.tensor(residual_scales(unit.settings.mode, unit.residual_count, weight)), device)
            self.entries.append(_Entry(unit, image, scales.to(dtype), active, cond_only))
        halves = 2 if use_cfg else 1
        self._zero_shapes = residual_shapes(unet_config, batch * halves, *latent_size)
        self._device, self._dtype = device, dtype

    def __call__(self, step: int, model_input: torch.Tensor, timestep, conditioning: dict) -> dict:
        """``down_block_additional_residuals`` and ``mid_block_additional_residual`` for the UNet at ``step``."""
        total = None
        for entry in self.entries:
            if step in entry.steps:
                residuals = self._run(entry, model_input, timestep, conditioning)
                total = residuals if total is None else [a + b for a, b in zip(total, residuals)]
        if total is None:  # no unit in its window: zeros keep one UNet graph (x + 0 is x exactly)
            total = [torch.zeros(shape, device=self._device, dtype=self._dtype) for shape in self._zero_shapes]
        return {"down_block_additional_residuals": tuple(total[:-1]), "mid_block_additional_residual": total[-1]}

    def _run(self, entry: _Entry, model_input, timestep, conditioning: dict) -> list[torch.Tensor]:
        sample = model_input
        hidden = conditioning["encoder_hidden_states"]
        added = conditioning.get("added_cond_kwargs")
        if entry.cond_only:  # the conditional half only: the second one (the UNet input is [uncond, cond])
            sample, hidden = sample.chunk(2)[1], hidden.chunk(2)[1]
            added = {key: value.chunk(2)[1] for key, value in added.items()} if added else None
        with profiled("model:controlnet"):
            residuals = list(entry.unit.runner(sample, timestep, hidden, entry.image, entry.scales, added))
        if entry.cond_only:
            residuals = [torch.cat([torch.zeros_like(r), r]) for r in residuals]
        return residuals


def _prepare_image(image: torch.Tensor, batch: int, size: tuple[int, int], device, dtype) -> torch.Tensor:
    """A control image as the ControlNet takes it: Bx3xHxW in [0, 1] at the frame's pixel size.

    Always a new tensor made here (inside the sampler's inference mode): a compiled ControlNet guards on how its
    inputs were made, and a caller's tensor handed through as it is would trace it a second time."""
    image = image.to(device=device, dtype=torch.float32, copy=True)
    if tuple(image.shape[-2:]) != tuple(size):
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    if image.shape[0] != batch:
        image = image.expand(batch, -1, -1, -1)
    return image.to(dtype)
