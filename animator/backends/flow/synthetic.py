"""Frames whose true flow and occlusions are known, rendered from real photographs: for tests and benchmarks.

Each frame is *rendered* (supersampled bicubic reads of a texture through a known mapping), not made by warping
another frame with the code under test, so the ground truth does not share that code's mistakes.

- :func:`warped_pair`: a texture moved by a smooth known flow field (camera-like motion).
- :func:`sliding_patch_pair` / :func:`sliding_patch_frames`: a foreground patch sliding over a moving background,
  with the exact flows both ways, the occluded pixels, and the pixels that leave the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "FlowPair",
    "default_texture",
    "render",
    "sliding_patch_frames",
    "sliding_patch_pair",
    "smooth_flow_field",
    "warped_pair",
]

Mapping = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FlowPair:
    """Two frames and their ground truth, all ``(1,C,H,W)`` tensors on the CPU."""

    source: torch.Tensor  # (1,3,H,W) float32 in [0,1]
    target: torch.Tensor  # (1,3,H,W)
    flow: torch.Tensor  # (1,2,H,W) true flow source -> target: source(x) = target(x + flow(x))
    flow_back: torch.Tensor  # (1,2,H,W) true flow target -> source
    occluded: torch.Tensor  # (1,1,H,W) bool: visible in source, hidden behind something in target
    leaves_frame: torch.Tensor  # (1,1,H,W) bool: x + flow(x) is outside the frame


def default_texture() -> np.ndarray:
    """A real photograph shipped with matplotlib (Grace Hopper, 512x600), ``(H,W,3)`` uint8."""
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(matplotlib.image.imread(handle, format="jpg"))[..., :3].copy()


def _as_float(texture: np.ndarray) -> np.ndarray:
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] < 3:
        raise ValueError(f"texture must be (H,W,3), got {texture.shape}")
    texture = texture[..., :3]
    return texture.astype(np.float32) / 255.0 if texture.dtype == np.uint8 else texture.astype(np.float32)


def render(texture: np.ndarray, mapping: Mapping, size: tuple[int, int], supersample: int = 3) -> np.ndarray:
    """``(H,W,3)`` float32: pixel x is the average of the texture at ``mapping(x + s)`` over a ``supersample``^2
    grid of sub-pixel offsets ``s`` (an anti-aliased render, like a camera sensor integrating over a pixel)."""
    import cv2

    texture = _as_float(texture)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((height, width, 3), np.float32)
    offsets = (np.arange(supersample, dtype=np.float32) + 0.5) / supersample - 0.5
    for dy in offsets:
        for dx in offsets:
            tx, ty = mapping(xs + dx, ys + dy)
            out += cv2.remap(
                texture, tx.astype(np.float32), ty.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
            )
    return np.clip(out / supersample**2, 0.0, 1.0)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # 1xCxHxW


def smooth_flow_field(size: tuple[int, int], *, shift=(3.3, -2.1), zoom: float = 0.02, rotation_deg: float = 1.0):
    """A camera-like flow ``(2,H,W)`` float32: a translation plus a zoom and a rotation about the centre."""
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    angle = np.deg2rad(rotation_deg)
    rx, ry = xs - cx, ys - cy
    moved_x = (1.0 + zoom) * (np.cos(angle) * rx - np.sin(angle) * ry)
    moved_y = (1.0 + zoom) * (np.sin(angle) * rx + np.cos(angle) * ry)
    return np.stack([moved_x - rx + shift[0], moved_y - ry + shift[1]]).astype(np.float32)


def warped_pair(texture: np.ndarray, flow: np.ndarray, *, scale: float = 1.0, origin=(20.0, 20.0)) -> FlowPair:
    """``target`` shows the texture from ``origin`` at ``scale`` texture pixels per frame pixel; ``source(x) =
    target(x + flow(x))`` for the given ``(2,H,W)`` flow. Occlusion-free; ``leaves_frame`` from the flow."""
    flow = np.asarray(flow, np.float32)
    size = flow.shape[1:]

    def to_target(x, y):
        return origin[0] + scale * x, origin[1] + scale * y

    def to_source(x, y):
        # The flow is known at pixel centres; read it bilinearly at the sub-pixel sample positions.
        import cv2

        fx = cv2.remap(flow[0], x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy = cv2.remap(flow[1], x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return to_target(x + fx, y + fy)

    source, target = render(texture, to_source, size), render(texture, to_target, size)
    flow_t = torch.from_numpy(flow)[None]
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width]
    gx, gy = xs + flow[0], ys + flow[1]
    leaves = (gx < -0.5) | (gx > width - 0.5) | (gy < -0.5) | (gy > height - 0.5)
    return FlowPair(
        source=_to_tensor(source),
        target=_to_tensor(target),
        flow=flow_t,
        flow_back=torch.full_like(flow_t, float("nan")),  # not needed by the users of this pair
        occluded=torch.zeros(1, 1, height, width, dtype=torch.bool),
        leaves_frame=torch.from_numpy(leaves)[None, None],
    )


def _box_mask(x, y, box) -> np.ndarray:
    left, top, box_w, box_h = box  # pixel centres left .. left+box_w-1 are inside
    return (x >= left - 0.5) & (x < left + box_w - 0.5) & (y >= top - 0.5) & (y < top + box_h - 0.5)


def _sliding_frame(background, foreground, size, bg_offset, box, supersample=3) -> np.ndarray:
    """Background content at ``x - bg_offset``; the patch ``box = (left, top, w, h)`` shows ``foreground`` at
    ``x - (left, top)`` (both anti-aliased by supersampling)."""
    import cv2

    background, foreground = _as_float(background), _as_float(foreground)
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((height, width, 3), np.float32)
    offsets = (np.arange(supersample, dtype=np.float32) + 0.5) / supersample - 0.5
    margin = 40.0  # read the background away from its own border so motion never runs off the photograph
    for dy in offsets:
        for dx in offsets:
            x, y = xs + dx, ys + dy
            bg = cv2.remap(
                background,
                x - bg_offset[0] + margin,
                y - bg_offset[1] + margin,
                cv2.INTER_CUBIC,
                borderMode=cv2.BORDER_REFLECT101,
            )
            fg = cv2.remap(
                foreground, x - box[0] + 10.0, y - box[1] + 10.0, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
            )
            inside = _box_mask(x, y, box)[..., None]
            out += np.where(inside, fg, bg)
    return np.clip(out / supersample**2, 0.0, 1.0)


def sliding_patch_frames(
    background: np.ndarray,
    foreground: np.ndarray,
    *,
    size=(96, 128),
    frames: int = 6,
    bg_step=(2.0, 1.0),
    fg_step=(6.0, 0.0),
    box=(24, 30, 36, 36),
) -> torch.Tensor:
    """``(N,3,H,W)``: frame k has the background moved by ``k * bg_step`` and the patch moved by ``k * fg_step``."""
    rendered = []
    for k in range(frames):
        bg_offset = (k * bg_step[0], k * bg_step[1])
        moved_box = (box[0] + k * fg_step[0], box[1] + k * fg_step[1], box[2], box[3])
        rendered.append(_to_tensor(_sliding_frame(background, foreground, size, bg_offset, moved_box)))
    return torch.cat(rendered)


def sliding_patch_pair(
    background: np.ndarray,
    foreground: np.ndarray,
    *,
    size=(96, 128),
    bg_step=(2.0, 1.0),
    fg_step=(10.0, 0.0),
    box=(24, 30, 36, 36),
) -> FlowPair:
    """Frames 0 and 1 of :func:`sliding_patch_frames` with exact flows, occlusions and out-of-frame pixels.

    Integer steps keep the truth crisp (every pixel is wholly patch or wholly background in both frames).
    """
    frames = sliding_patch_frames(
        background, foreground, size=size, frames=2, bg_step=bg_step, fg_step=fg_step, box=box
    )
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    box_next = (box[0] + fg_step[0], box[1] + fg_step[1], box[2], box[3])
    in_patch, in_patch_next = _box_mask(xs, ys, box), _box_mask(xs, ys, box_next)

    flow = np.empty((2, height, width), np.float32)
    flow[0] = np.where(in_patch, fg_step[0], bg_step[0])
    flow[1] = np.where(in_patch, fg_step[1], bg_step[1])
    flow_back = np.empty((2, height, width), np.float32)
    flow_back[0] = np.where(in_patch_next, -fg_step[0], -bg_step[0])
    flow_back[1] = np.where(in_patch_next, -fg_step[1], -bg_step[1])
    # Background seen in frame 0 that lands under the patch in frame 1.
    occluded = ~in_patch & _box_mask(xs + bg_step[0], ys + bg_step[1], box_next)
    gx, gy = xs + flow[0], ys + flow[1]
    leaves = (gx < -0.5) | (gx > width - 0.5) | (gy < -0.5) | (gy > height - 0.5)
    return FlowPair(
        source=frames[:1],
        target=frames[1:],
        flow=torch.from_numpy(flow)[None],
        flow_back=torch.from_numpy(flow_back)[None],
        occluded=torch.from_numpy(occluded)[None, None],
        leaves_frame=torch.from_numpy(leaves)[None, None],
    )
