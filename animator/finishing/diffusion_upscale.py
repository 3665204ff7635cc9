"""Upscaling by a tiled img2img pass at low strength, kept consistent over time (``--method diffusion``).

Lanczos makes the frame bigger but no sharper; a Stable Diffusion img2img pass at low strength over the big frame
adds the fine detail the model knows. Done frame by frame from the Lanczos upscale alone, that detail is invented
anew every frame and boils. So, as the render's main loop does, each frame starts from the previous *upscaled*
frame carried along the optical flow between the two input frames (estimated small, scaled up), wherever that
flow is forward-backward consistent; only pixels the flow cannot follow (revealed, occluded) start from the Lanczos
upscale. Every tile is denoised with the same seed on every frame, so the added noise does not change either.

The pass runs in overlapping tiles (:func:`animator.finishing.tiles.run_tiled` with scale 1) so a 4K frame never
goes through the VAE whole.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from animator.errors import AnimatorError

__all__ = ["DiffusionUpscaler"]


class DiffusionUpscaler:
    """Lanczos, then img2img in tiles, each frame starting from the previous result moved along the flow.

    Args:
        model: the Stable Diffusion model (``load_denoiser`` spec: hub id in the local cache, folder, file).
        size: output ``(width, height)``, multiples of 8.
        prompt, negative: what the detail should look like (an empty prompt adds generic detail).
        strength: img2img strength (0: keep, 1: repaint); 0.2-0.35 adds detail without changing the picture.
        steps, guidance: sampler steps at strength 1 and CFG scale (default: the model family's).
        seed: the seed every tile of every frame is denoised with.
        flow: the flow estimator (``animator.backends.flow`` name) that carries the previous frame.
        flow_size: the longer side, in pixels, flow is estimated at.
        tile, overlap: tiling, in output pixels (multiples of 8; tile 0: whole frames).
    """

    name = "diffusion"

    def __init__(
        self,
        model: str | os.PathLike | None,
        size: tuple[int, int],
        *,
        prompt: str = "",
        negative: str = "",
        strength: float = 0.3,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        flow: str = "dis_fast",
        flow_size: int = 256,
        device=None,
        tile: int = 512,
        overlap: int = 32,
    ) -> None:
        from animator.backends.denoise import load_denoiser
        from animator.backends.flow import load_flow_estimator

        if model is None or str(model) == "none":
            raise AnimatorError(
                "--method diffusion needs a Stable Diffusion model",
                field="--model",
                hint="give --model with a hub id in your cache, a diffusers folder or a .safetensors file",
            )
        if not 0.0 < strength <= 1.0:
            raise AnimatorError(f"strength must be in (0, 1], got {strength}", field="--strength")
        if size[0] % 8 or size[1] % 8 or tile % 8 or overlap % 8:
            raise AnimatorError(
                f"the diffusion pass works on multiples of 8 pixels: size {size}, tile {tile}, overlap {overlap}",
                field="--tile",
            )
        self.denoiser = load_denoiser(str(model), device=device)
        defaults = self.denoiser.defaults
        self.size, self.tile, self.overlap = size, tile, overlap
        self.prompt, self.negative, self.strength, self.seed = prompt, negative, float(strength), int(seed)
        self.steps = int(steps or defaults.steps)
        self.guidance = float(defaults.guidance if guidance is None else guidance)
        self.flow = load_flow_estimator(flow)
        self.flow_size = int(flow_size)
        self.device = torch.device(getattr(self.denoiser, "device", None) or "cpu")
        self._previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (small input frame, upscaled output)

    def _small(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        scale = min(1.0, self.flow_size / max(height, width))
        size = (max(8, round(height * scale)), max(8, round(width * scale)))
        return torch.nn.functional.interpolate(image, size=size, mode="area") if size != (height, width) else image

    def _start(self, frame: np.ndarray, small: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Where this frame's img2img starts: the previous result carried along the flow, Lanczos elsewhere."""
        from animator.geometry.flow import consistency_mask, resize_flow, warp_by_flow

        if self._previous is None or self._previous[0].shape != small.shape:
            return base
        previous_small, previous_big = self._previous
        to_previous = self.flow(small, previous_small)  # small(x) ~= previous_small(x + flow)
        from_previous = self.flow(previous_small, small)
        reliable = consistency_mask(to_previous, from_previous).float()
        big_flow = resize_flow(to_previous, base.shape[-2:])
        carried = warp_by_flow(previous_big, big_flow.to(previous_big.device), mode="bicubic").clamp(0.0, 1.0)
        mask = torch.nn.functional.interpolate(reliable, size=base.shape[-2:], mode="bilinear", align_corners=False)
        return base * (1.0 - mask.to(base.device)) + carried * mask.to(base.device)

    def _denoise(self, tile: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator(device=tile.device).manual_seed(self.seed)
        return self.denoiser.img2img(
            tile,
            self.prompt,
            negative=self.negative,
            strength=self.strength,
            guidance=self.guidance,
            steps=self.steps,
            generator=generator,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        from animator.finishing.tiles import run_tiled

        big = cv2.resize(frame, self.size, interpolation=cv2.INTER_LANCZOS4)
        base = torch.from_numpy(big).permute(2, 0, 1)[None].float().div_(255.0).to(self.device)
        small = self._small(torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].float() / 255.0)
        start = self._start(frame, small, base)
        tile = self.tile or max(self.size)
        result = run_tiled(self._denoise, start, scale=1, tile=tile, overlap=self.overlap).clamp(0.0, 1.0)
        self._previous = (small, result)
        return (result[0] * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
