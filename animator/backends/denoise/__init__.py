"""Img2img denoising: the step that turns each warped frame into a new picture.

- :func:`load_denoiser` turns a model spec into a :class:`Denoiser`: ``"none"`` (identity, warp-only), a hub id in
  the local Hugging Face cache, a diffusers folder, or a single ``.safetensors`` / ``.ckpt`` checkpoint.
- :data:`SAMPLERS` maps sampler names (euler_a, dpm++_2m_karras, lcm ...) to diffusers schedulers.
- :class:`PromptCache` encodes each distinct prompt once and mixes embeddings at prompt transitions.

Example:
    >>> denoiser = load_denoiser("stabilityai/sd-turbo")          # doctest: +SKIP
    >>> frame = denoiser.img2img(warped, "a castle at dusk", strength=0.5, guidance=0.0, steps=2,
    ...                          generator=torch.Generator().manual_seed(7),
    ...                          full_denoise_mask=(~valid).float())   # doctest: +SKIP
"""

from animator.backends.denoise.base import DenoiseDefaults, Denoiser, LatentDenoiser
from animator.backends.denoise.identity import IdentityDenoiser
from animator.backends.denoise.loading import KINDS, defaults_for, load_denoiser
from animator.backends.denoise.prompts import PromptCache, PromptEmbeddings, PromptInput
from animator.backends.denoise.samplers import SAMPLERS, SamplerSpec, build_scheduler, sampler_names

__all__ = [
    "PromptInput",
    "Denoiser",
    "LatentDenoiser",
    "DenoiseDefaults",
    "IdentityDenoiser",
    "load_denoiser",
    "KINDS",
    "defaults_for",
    "SAMPLERS",
    "SamplerSpec",
    "build_scheduler",
    "sampler_names",
    "PromptCache",
    "PromptEmbeddings",
]
