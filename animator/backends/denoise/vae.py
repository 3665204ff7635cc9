"""The VAE side of a diffusers denoiser (:class:`~animator.backends.denoise.diffusers_backend.DiffusersDenoiser`):
images to the latents the UNet takes and back, and the check of latents a caller hands in.

The VAE's own latents and the UNet's differ by a scaling read from the VAE's config: ``scaling_factor``, and either
``shift_factor`` or per-channel ``latents_mean`` / ``latents_std``. :func:`latent_shift_and_std` is the one place
both directions read those statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from animator.devices import profiled, upload
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["encode_image", "decode_latents", "latent_shift_and_std", "normalize_latents", "check_latents"]


def encode_image(vae, image: Tensor, *, device: torch.device, vae_dtype: torch.dtype, unet_dtype: torch.dtype):
    """Bx3xHxW [0,1] -> Bx4xhxw scaled latents in ``unet_dtype`` (the mean of the VAE's distribution)."""
    pixels = image.to(device=device, dtype=vae_dtype) * 2 - 1
    with profiled("model:vae_encode"):
        encoded = vae.encode(pixels)
    if hasattr(encoded, "latent_dist"):
        # The distribution's mean, not a sample: sampling adds fresh noise to every frame, which shows as flicker.
        latents = encoded.latent_dist.mode()
    else:  # AutoencoderTiny is deterministic
        latents = encoded.latents
    return normalize_latents(vae.config, latents).to(unet_dtype)


def decode_latents(vae, latents: Tensor, *, vae_dtype: torch.dtype) -> Tensor:
    """Bx4xhxw scaled latents -> Bx3xHxW float32 in [0,1]."""
    latents = latents.to(vae_dtype)
    shift, std = latent_shift_and_std(vae.config, latents)  # the inverse of normalize_latents
    if std is not None:
        latents = latents * std
    latents = latents / vae.config.scaling_factor + shift
    with profiled("model:vae_decode"):
        pixels = vae.decode(latents).sample
    return (pixels.float() / 2 + 0.5).clamp(0, 1)


def latent_shift_and_std(config, like: Tensor) -> tuple[Tensor | float, Tensor | None]:
    """What scaling the VAE's latents for the UNet takes away and decoding gives back: ``(shift, std)``, per
    channel where the VAE's ``config`` has ``latents_mean`` / ``latents_std``, else ``(shift_factor or 0, None)``."""
    import torch

    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        mean, std = (
            upload(torch.tensor(values, dtype=like.dtype).view(1, -1, 1, 1), like.device) for values in (mean, std)
        )  # from pinned memory: no wait for the GPU
        return mean, std
    return getattr(config, "shift_factor", None) or 0.0, None


def normalize_latents(config, latents: Tensor) -> Tensor:
    """VAE latents -> the UNet's: ``(latents - shift) * scaling_factor / std``."""
    shift, std = latent_shift_and_std(config, latents)
    latents = (latents - shift) * config.scaling_factor
    return latents if std is None else latents / std


def check_latents(latents, *, channels: int, values: bool = True) -> None:
    """Refuses anything but a float (B, ``channels``, h, w) tensor; with ``values``, also NaN or infinite values (a
    read-back, which on a GPU waits for everything queued)."""
    import torch

    if (
        not isinstance(latents, torch.Tensor)
        or latents.ndim != 4
        or latents.shape[1] != channels
        or not latents.is_floating_point()
    ):
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise AnimatorError(
            f"latents must be a float tensor of shape (B, {channels}, h, w), got {shape}",
            field="latents",
            hint="make them with encode(image) or txt2img_latents(...)",
        )
    if values and not bool(torch.isfinite(latents.sum())):  # NaN, inf survive the sum
        raise AnimatorError("latents contain NaN or infinite values", field="latents")
