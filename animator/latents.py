"""Latent feedback: the previous frame's latents moved with the camera, instead of its pixels re-encoded.

A Stable Diffusion VAE maps an image to a latent grid ``factor`` (8) times coarser, where each latent pixel stands
for a ``factor x factor`` block whose centre is the latent pixel's centre. With pixel centres at integers (as
everywhere in :mod:`animator.geometry`), latent pixel ``j`` sits at image x ``factor * j + (factor - 1) / 2``, and
``grid_sample``'s normalised coordinates (``align_corners=False``) name the same place at both resolutions. So a
camera move computed on the image (the 3D warp's sampling grid, or a 2D homography) moves the latents exactly:

- 3D: the warp's grid at each latent pixel's centre (the mean of the grid at the pixels around that centre) says
  where that latent pixel comes from; a latent pixel is revealed when any pixel of its block is.
- 2D: the homography conjugated by the pixel-to-latent map, ``H_latent = S H S^-1``.

Colour coherence, done on pixels in the image loop, becomes matching each latent channel's mean and standard
deviation to a reference's (the VAE's four channels carry brightness and colour; their statistics drift as the
colours do), and noise is added to the latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from animator.errors import AnimatorError

__all__ = [
    "LATENT_SAMPLING",
    "LatentStatistics",
    "latent_factor",
    "grid_at_latents",
    "revealed_at_latents",
    "sample_latents",
    "latents_along_grid",
    "homography_at_latents",
    "match_latent_statistics",
    "add_latent_noise",
]


def latent_factor(image_size: tuple[int, int], latents: torch.Tensor) -> int:
    """How many image pixels one latent pixel spans (8 for Stable Diffusion), the same along both axes."""
    height, width = image_size
    h, w = latents.shape[-2:]
    if height % h or width % w or height // h != width // w:
        raise AnimatorError(f"latents of {h}x{w} do not tile an image of {height}x{width}", field="latents")
    return height // h


def grid_at_latents(grid: torch.Tensor, factor: int) -> torch.Tensor:
    """(B,H,W,2) per-pixel ``grid_sample`` grid -> (B,H/f,W/f,2): its value at each latent pixel's centre.

    The centre lies between the middle two pixels of the block for an even factor (their mean: bilinear at the
    centre), on the middle pixel for an odd one.
    """
    middle = (factor - 1) // 2
    offsets = (middle, middle + 1) if factor % 2 == 0 else (middle,)
    picked = [grid[:, dy::factor, dx::factor] for dy in offsets for dx in offsets]
    return torch.stack(picked).mean(0)


def revealed_at_latents(valid: torch.Tensor, factor: int) -> torch.Tensor:
    """(B,1,H,W) bool valid pixels -> (B,1,H/f,W/f) bool: True where any pixel of the latent's block is revealed
    (the same rule as the denoiser's max-pooled repaint mask)."""
    return F.max_pool2d((~valid).float(), factor) > 0


# A feedback loop resamples the latents once per frame: Catmull-Rom keeps their detail where bilinear averages it
# away (a latent field with detail up to 0.35 cycles per pixel keeps ~half its spread after 20 frames of a 1% zoom,
# which decodes as a washed-out picture), and unlike PyTorch's bicubic it never amplifies anything
# (see animator.geometry.resample; tests/test_latents.py measures both).
LATENT_SAMPLING = "catmull_rom"


def sample_latents(
    latents: torch.Tensor, grid: torch.Tensor, *, padding: str = "border", mode: str = LATENT_SAMPLING
) -> torch.Tensor:
    """Latents resampled at ``grid`` (latent resolution, from :func:`grid_at_latents`), in float32, unclamped."""
    from animator.geometry.resample import resample

    return resample(latents.float(), grid.to(torch.float32), mode=mode, padding=padding)


def latents_along_grid(
    latents: torch.Tensor, grid: torch.Tensor, valid: torch.Tensor, factor: int, fill: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D latent feedback's move: ``(moved latents, revealed)`` from the pixel warp's ``grid`` and ``valid`` mask.

    ``fill`` is ``motion.fill``: ``reflection`` mirrors at the frame's edge, ``none`` leaves zero latents (no
    content) where anything was revealed, as the pixel loop leaves holes black; the rest repeat the edge. Pure
    tensor code (one compiled graph with :mod:`animator.compiling`)."""
    moved = sample_latents(
        latents, grid_at_latents(grid, factor), padding="reflection" if fill == "reflection" else "border"
    )
    revealed = revealed_at_latents(valid, factor)
    if fill == "none":
        moved = moved.masked_fill(revealed, 0.0)
    return moved, revealed


def homography_at_latents(H: np.ndarray, factor: int) -> np.ndarray:
    """A (3,3) pixel homography ``dst_from_src`` as the same move on the latent grid: ``S H S^-1`` with ``S`` the
    map from pixel to latent coordinates, ``x_latent = (x + 0.5) / f - 0.5``."""
    shift = 0.5 / factor - 0.5
    to_latent = np.array([[1.0 / factor, 0.0, shift], [0.0, 1.0 / factor, shift], [0.0, 0.0, 1.0]])
    return to_latent @ np.asarray(H, dtype=np.float64) @ np.linalg.inv(to_latent)


@dataclass(frozen=True)
class LatentStatistics:
    """Each latent channel's mean and standard deviation, (B,C,1,1) each: the colour reference of latent feedback."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, latents: torch.Tensor) -> LatentStatistics:
        values = latents.float()
        return cls(values.mean(dim=(2, 3), keepdim=True), values.std(dim=(2, 3), keepdim=True))

    def to(self, device) -> LatentStatistics:
        return LatentStatistics(self.mean.to(device), self.std.to(device))


def match_latent_statistics(latents: torch.Tensor, reference: LatentStatistics, strength: float = 1.0) -> torch.Tensor:
    """Shifts and scales each channel of each latent image to the reference's mean and standard deviation;
    ``strength`` blends between the input (0) and the matched latents (1). Returns float32."""
    values = latents.float()
    own = LatentStatistics.of(values)
    matched = (values - own.mean) * (reference.std / own.std.clamp_min(1e-6)) + reference.mean
    return values + strength * (matched - values) if strength < 1.0 else matched


def add_latent_noise(
    latents: torch.Tensor,
    amount: float,
    *,
    generator: torch.Generator,
    kind: str = "gaussian",
    octaves: int = 4,
    persistence: float = 0.5,
) -> torch.Tensor:
    """``latents + amount * noise``, the noise standardised (zero mean, unit deviation: the latents' own scale) and,
    for ``perlin``, smooth over space and shared by the channels. Drawn on the generator's device. Returns float32."""
    values = latents.float()
    if amount <= 0:
        return values
    batch, channels, height, width = values.shape
    if kind == "gaussian":
        noise = torch.randn((batch, channels, height, width), generator=generator, device=generator.device)
    else:
        from animator.color import _standardize, perlin_noise

        noise = _standardize(
            perlin_noise(
                (batch, height, width), generator=generator, octaves=octaves, persistence=persistence
            ).unsqueeze(1)
        )
    return values + amount * noise.to(values.device)
