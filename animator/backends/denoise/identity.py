"""``none``: the identity denoiser, so a render can be warp-only (the offline default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from animator.backends.denoise.base import (
    DenoiseDefaults,
    check_image,
    check_mask,
    check_sampling_args,
    check_strength,
)
from animator.backends.denoise.prompts import PromptInput, normalize_prompt
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch
    from torch import Tensor


class IdentityDenoiser:
    """Returns every frame unchanged (after the same argument checks a real model does)."""

    name = "none"
    # Strength 0: a warp-only render has nothing to denoise; steps and guidance only matter to a real model.
    defaults = DenoiseDefaults(steps=1, guidance=0.0, strength=0.0, sampler="euler")

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
        control=None,  # ControlNet inputs: nothing to steer without a model (units refuse to load without one)
    ) -> Tensor:
        """Bx3xHxW [0,1] -> the same image as float32 (the same tensor when it already is float32)."""
        import torch

        check_image(image)
        check_strength(strength)
        check_sampling_args(steps=steps, guidance=guidance, generator=generator)
        normalize_prompt(prompt, negative)
        if full_denoise_mask is not None:
            check_mask(full_denoise_mask, image)
        return image.to(torch.float32)

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
        control=None,
    ) -> Tensor:
        raise AnimatorError(
            "making a first frame from text needs a Stable Diffusion model, but the denoiser is 'none'",
            field="model",
            hint="give an init image, or set a model: a hub id in the local cache (e.g. stabilityai/sd-turbo, "
            "downloaded with `hf download stabilityai/sd-turbo`), a diffusers folder or a .safetensors file",
        )

    def prepare_prompts(self, texts) -> None:
        """Nothing to load: a warp-only render draws nothing from its prompts (their LoRAs and embeddings neither)."""

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": "none",
            "class": type(self).__name__,
            "note": "warp-only: no diffusion model; load one (e.g. stabilityai/sd-turbo) for generated detail",
        }
