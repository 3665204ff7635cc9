"""What carries from one anchor frame to the next, and its checkpoint (what a resumed render starts from)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class FrameState:
    """An anchor frame: a frame the loop made from the previous anchor (diffused when there is a model). Small on
    purpose: it is the resume checkpoint."""

    index: int
    image: torch.Tensor  # (1,3,H,W) in [0,1], quantised to 8 bits (what was written to the video)
    depth: torch.Tensor | None = None  # (1,1,H,W) z of `image` (3D mode)
    depth_age: int = 0  # frames since the depth model last looked (the depth is carried by warping)
    input_frame: torch.Tensor | None = None  # (1,3,H,W) the input video's frame at `index` (video mode)
    hybrid_frame: torch.Tensor | None = None  # (1,3,H,W) the hybrid-motion video's frame at `index`
    host_image: np.ndarray | None = None  # (H,W,3) uint8 copy of `image` once it was emitted (CPU tweens use it)
    latents: torch.Tensor | None = None  # (1,4,H/8,W/8) the denoised latents `image` was decoded from (latent feedback)
    tracker: dict | None = None  # the depth tracker's state right after this frame (DepthTracker.snapshot)

    def to_checkpoint(self, host_image: np.ndarray) -> dict[str, Any]:
        """``host_image``: the state's image as the (H,W,3) uint8 host copy already made for the video."""
        return {
            "index": self.index,
            "image": torch.from_numpy(host_image),
            "depth_age": self.depth_age,
            "depth": None if self.depth is None else self.depth.float().cpu(),
            "latents": None if self.latents is None else self.latents.cpu(),
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], device: torch.device) -> FrameState:
        from animator.rendering.tensors import to_tensor

        depth, latents = checkpoint["depth"], checkpoint.get("latents")
        return cls(
            index=int(checkpoint["index"]),
            image=to_tensor(checkpoint["image"].numpy(), device),
            depth=None if depth is None else depth.to(device),
            depth_age=int(checkpoint.get("depth_age", 0)),
            latents=None if latents is None else latents.to(device),
        )
