"""The denoiser Protocol, model defaults and the argument checks every denoiser shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from animator.backends.denoise.prompts import PromptInput
from animator.errors import AnimatorError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from torch import Tensor

    from animator.backends.controlnet.units import ControlInput

__all__ = [
    "DenoiseDefaults",
    "Denoiser",
    "LatentDenoiser",
    "check_image",
    "check_strength",
    "check_mask",
    "check_sampling_args",
]


@dataclass(frozen=True)
class DenoiseDefaults:
    """Settings suited to a model family, used when a keyframe file does not set them."""

    steps: int  # sampler steps for strength 1 (img2img runs about steps * strength of them)
    guidance: float  # classifier-free guidance scale; <= 1 turns CFG off (one UNet pass per step)
    strength: float  # img2img strength: 0 keeps the frame, 1 repaints it from noise
    sampler: str  # a key of animator.backends.denoise.SAMPLERS


@runtime_checkable
class Denoiser(Protocol):
    """Img2img on tensors: what the render loop calls on every diffused frame."""

    name: str
    defaults: DenoiseDefaults

    def img2img(
        self,
        image: Tensor,
        prompt: PromptInput,
        *,
        negative: str = "",
        strength: float,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        full_denoise_mask: Tensor | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """Bx3xHxW [0,1] -> Bx3xHxW float32 [0,1] on the same device; ``full_denoise_mask`` Bx1xHxW in [0,1];
        ``control`` the frame's ControlNet inputs (one per unit; denoisers without a UNet ignore them)."""
        ...

    def txt2img(
        self,
        prompt: PromptInput,
        *,
        negative: str = "",
        height: int,
        width: int,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """A first frame from text: 1x3xHxW float32 in [0,1]."""
        ...

    def prepare_prompts(self, texts: Sequence[str]) -> None:
        """Load what the prompts ``texts`` name (LoRAs, embeddings) once, before the first frame."""
        ...

    def describe(self) -> dict:
        """Model source, classes, dtype, scheduler and library versions, for the run record."""
        ...


@runtime_checkable
class LatentDenoiser(Denoiser, Protocol):
    """A denoiser that also works on its latents: what ``generation.feedback: latent`` needs (the diffusers one)."""

    def encode(self, image: Tensor) -> Tensor:
        """Bx3xHxW [0,1] -> Bx4xhxw latents, scaled as the UNet takes them."""
        ...

    def decode(self, latents: Tensor) -> Tensor:
        """Bx4xhxw latents -> Bx3xHxW float32 [0,1]."""
        ...

    def img2img_latents(
        self,
        latents: Tensor,
        prompt: PromptInput,
        *,
        negative: str = "",
        strength: float,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        full_denoise_mask: Tensor | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """:meth:`img2img` from and to latents (``full_denoise_mask`` Bx1xhxw)."""
        ...

    def txt2img_latents(
        self,
        prompt: PromptInput,
        *,
        negative: str = "",
        height: int,
        width: int,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """:meth:`txt2img` before the decode: 1x4x(height/8)x(width/8)."""
        ...


# Values within this of [0, 1] are accepted: resampling and colour ops leave tiny overshoots.
_RANGE_SLACK = 1e-3


def check_image(image, name: str = "image", *, multiple_of: int = 1, values: bool = True) -> None:
    """Raise AnimatorError unless ``image`` is a Bx3xHxW floating tensor in [0, 1] with H, W multiples of
    ``multiple_of``.

    ``values=False`` checks only the shape and dtype: the values need a read-back from the device."""
    import torch

    if not isinstance(image, torch.Tensor):
        raise AnimatorError(
            f"{name} must be a torch.Tensor of shape (B, 3, H, W), got {type(image).__name__}", field=name
        )
    if image.ndim != 4 or image.shape[1] != 3:
        raise AnimatorError(
            f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}",
            field=name,
            hint="images are RGB float tensors (B, 3, H, W) in [0, 1]",
        )
    if not image.is_floating_point():
        raise AnimatorError(
            f"{name} must be a floating tensor in [0, 1], got dtype {image.dtype}",
            field=name,
            hint="convert uint8 frames with image.float() / 255",
        )
    if image.numel() == 0:
        raise AnimatorError(f"{name} is empty: shape {tuple(image.shape)}", field=name)
    if values:
        low, high = torch.stack(torch.aminmax(image)).float().tolist()  # one read-back: each one stalls a GPU queue
        if not (math.isfinite(low) and math.isfinite(high)) or low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise AnimatorError(
                f"{name} values must lie in [0, 1], got [{low:.3g}, {high:.3g}]",
                field=name,
                hint="images in the loop are floats in [0, 1] (not [-1, 1], not 0-255)",
            )
    height, width = image.shape[-2:]
    if height % multiple_of or width % multiple_of:
        raise AnimatorError(
            f"{name} height and width must be multiples of {multiple_of}, got {height}x{width}",
            field=name,
            hint=f"render at a size divisible by {multiple_of} (e.g. 512x512, 768x448)",
        )


def check_strength(strength, name: str = "strength") -> float:
    """A strength as float, or AnimatorError unless it is a number in [0, 1]."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise AnimatorError(f"{name} must be a number in [0, 1], got {strength!r}", field=name) from None
    if not (0.0 <= value <= 1.0):
        raise AnimatorError(
            f"{name} must be in [0, 1], got {strength!r}",
            field=name,
            hint="0 keeps the frame as it is, 1 repaints it from noise",
        )
    return value


def check_mask(mask, image, name: str = "full_denoise_mask", *, values: bool = True) -> None:
    """Raise AnimatorError unless ``mask`` is a Bx1xHxW (or 1x1xHxW) floating/bool tensor in [0, 1] matching ``image``.

    ``values=False`` checks shape and dtype only: the value check reads the mask back, which waits for a GPU."""
    import torch

    if not isinstance(mask, torch.Tensor):
        raise AnimatorError(
            f"{name} must be a torch.Tensor of shape (B, 1, H, W), got {type(mask).__name__}", field=name
        )
    batch, _, height, width = image.shape
    if (
        mask.ndim != 4
        or mask.shape[1] != 1
        or tuple(mask.shape[-2:]) != (height, width)
        or mask.shape[0] not in (1, batch)
    ):
        raise AnimatorError(
            f"{name} must have shape ({batch}, 1, {height}, {width}), got {tuple(mask.shape)}",
            field=name,
            hint="1 where a pixel is repainted fully (revealed), 0 for the scheduled strength",
        )
    if mask.dtype != torch.bool:
        if not mask.is_floating_point():
            raise AnimatorError(f"{name} must be float in [0, 1] or bool, got dtype {mask.dtype}", field=name)
        if not values:
            return
        low, high = float(mask.min()), float(mask.max())
        if not (math.isfinite(low) and math.isfinite(high)) or low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise AnimatorError(f"{name} values must lie in [0, 1], got [{low:.3g}, {high:.3g}]", field=name)


def check_sampling_args(*, steps, guidance, generator) -> None:
    """Raise AnimatorError for a non-positive step count, a negative/non-finite guidance or a missing generator."""
    import torch

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise AnimatorError(f"steps must be an integer >= 1, got {steps!r}", field="steps")
    try:
        guidance_value = float(guidance)
    except (TypeError, ValueError):
        guidance_value = math.nan
    if not math.isfinite(guidance_value) or guidance_value < 0:
        raise AnimatorError(
            f"guidance must be a finite number >= 0, got {guidance!r}",
            field="guidance",
            hint="typical: 5-9 for SD, 0 for Turbo, 1-2 for LCM",
        )
    if not isinstance(generator, torch.Generator):
        raise AnimatorError(
            f"generator must be a torch.Generator, got {type(generator).__name__}",
            field="generator",
            hint="torch.Generator(device).manual_seed(frame_seed)",
        )
