"""Optical-flow geometry: warping by a flow field, forward-backward consistency, mask clean-up, flow tweens.

Pure tensor functions (CPU or CUDA, batched). They never estimate flow themselves; the estimators live in
``animator.backends.flow``. One flow convention everywhere in animator:

    flow (B,2,H,W) in pixels, channel 0 = dx, channel 1 = dy, on the grid of the *source* frame, such that
    source(x) ~= target(x + flow(x))

so ``warp_by_flow(target, flow)`` rebuilds ``source``. A "forward" flow ``flow_fw`` from frame 1 to frame 2 and a
"backward" flow ``flow_bw`` from frame 2 to frame 1 bring a visible pixel back to where it started:
``flow_fw(x) + flow_bw(x + flow_fw(x)) ~= 0``. Where they do not, the pixel is occluded in frame 2 (or the flow is
wrong there): :func:`consistency_mask` marks it unreliable.

Example:
    >>> import torch
    >>> image = torch.rand(1, 3, 8, 8)
    >>> shift_right = torch.zeros(1, 2, 8, 8); shift_right[:, 0] = 1.0   # source(x) = target(x + 1)
    >>> out = warp_by_flow(image, shift_right)
    >>> torch.allclose(out[..., :-1], image[..., 1:])
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from animator.checks import check_bchw
from animator.errors import AnimatorError

__all__ = ["warp_by_flow", "resize_flow", "consistency_mask", "leaves_frame", "clean_mask", "flow_tween", "pixel_grid"]

_PADDING = {"replicate": "border", "zeros": "zeros", "reflection": "reflection"}
_MODES = ("bilinear", "nearest", "bicubic")

# Sundaram, Brox & Keutzer (ECCV 2010), "Dense point trajectories by GPU-accelerated large displacement optical
# flow": a pixel sits on a motion boundary when |grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002. The relative term
# lets fast-moving regions (zooms) have proportionally larger flow gradients before they count as a boundary.
_BOUNDARY_ALPHA = 0.01
_BOUNDARY_BETA = 0.002


# --------------------------------------------------------------------------------------------------------------------
# checks


def _check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape != b.shape:
        raise AnimatorError(
            f"{a_name} {tuple(a.shape)} and {b_name} {tuple(b.shape)} must have the same shape", field=b_name
        )


def _check_same_grid(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
        raise AnimatorError(
            f"{a_name} {tuple(a.shape)} and {b_name} {tuple(b.shape)} must share batch size and height x width",
            field=b_name,
        )


def _check_mask(mask: torch.Tensor, name: str) -> None:
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4 or mask.shape[1] != 1:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise AnimatorError(f"{name} must be a (B,1,H,W) tensor, got {shape}", field=name)


# --------------------------------------------------------------------------------------------------------------------
# warping


def pixel_grid(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates ``(1,2,H,W)``: channel 0 is x (column), channel 1 is y (row)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack((xs, ys))[None]  # 1x2xHxW


def warp_by_flow(
    image: torch.Tensor, flow: torch.Tensor, *, border: str = "replicate", mode: str = "bilinear"
) -> torch.Tensor:
    """Backward-warp ``image`` by ``flow``: ``out(x) = image(x + flow(x))``.

    Args:
        image: ``(B,C,H,W)`` float, any number of channels (RGB, depth, masks, another flow field).
        flow: ``(B,2,H,W)`` pixels on the grid of the output, ``flow[:, 0]`` = dx, ``flow[:, 1]`` = dy.
            ``image`` may have a batch of 1 to be warped by every flow of the batch.
        border: what is read outside the image: ``replicate`` (nearest edge pixel), ``zeros`` or ``reflection``.
        mode: ``bilinear``, ``nearest`` or ``bicubic`` interpolation.

    Returns:
        ``(B,C,H,W)`` tensor of ``image``'s dtype. Sampling runs in float32 even for half images, because half
        precision cannot address pixels of a large frame to better than ~0.5 px.
    """
    check_bchw(image, "image", channels=None)
    check_bchw(flow, "flow", channels=2)
    if border not in _PADDING:
        raise AnimatorError(f"unknown border {border!r}", field="border", hint="use one of: " + ", ".join(_PADDING))
    if mode not in _MODES:
        raise AnimatorError(f"unknown mode {mode!r}", field="mode", hint="use one of: " + ", ".join(_MODES))
    if image.shape[-2:] != flow.shape[-2:] or image.shape[0] not in (1, flow.shape[0]):
        raise AnimatorError(
            f"image {tuple(image.shape)} and flow {tuple(flow.shape)} must share height x width and batch size",
            field="flow",
            hint="resize the flow with animator.geometry.flow.resize_flow, which also scales its pixel values",
        )
    batch = flow.shape[0]
    height, width = flow.shape[-2:]
    coords = pixel_grid(height, width, device=flow.device) + flow.float()  # Bx2xHxW, pixels
    # grid_sample with align_corners=True maps -1 and +1 to the centres of the first and last pixels.
    # divided by numbers, not by a tensor made here (on a GPU, an upload that waits for the queue)
    grid = torch.stack(
        [2.0 * coords[:, 0] / max(width - 1, 1) - 1.0, 2.0 * coords[:, 1] / max(height - 1, 1) - 1.0], dim=-1
    )  # BxHxWx2
    source = image.float().expand(batch, -1, -1, -1)
    warped = F.grid_sample(source, grid, mode=mode, padding_mode=_PADDING[border], align_corners=True)
    return warped.to(image.dtype)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow field to ``size = (height, width)`` and scale its values so they stay in pixels of that size.

    ``(B,2,H,W) -> (B,2,h,w)``: a 10 px motion at 1024 wide is a 5 px motion at 512 wide.
    """
    check_bchw(flow, "flow", channels=2)
    height, width = int(size[0]), int(size[1])
    if flow.shape[-2:] == (height, width):
        return flow
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    return torch.stack([resized[:, 0] * (width / flow.shape[-1]), resized[:, 1] * (height / flow.shape[-2])], dim=1)


# --------------------------------------------------------------------------------------------------------------------
# consistency


def _squared_norm(flow: torch.Tensor) -> torch.Tensor:
    return (flow * flow).sum(dim=1, keepdim=True)  # Bx1xHxW


def _flow_gradient_energy(flow: torch.Tensor) -> torch.Tensor:
    """``|grad u|^2 + |grad v|^2`` by central differences (one-sided at the borders), ``(B,1,H,W)``."""
    padded = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    d_dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2.0
    d_dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2.0
    return (d_dx * d_dx + d_dy * d_dy).sum(dim=1, keepdim=True)


def leaves_frame(flow: torch.Tensor) -> torch.Tensor:
    """``(B,1,H,W)`` bool: True where ``x + flow(x)`` falls outside the frame (over half a pixel beyond an edge)."""
    check_bchw(flow, "flow", channels=2)
    height, width = flow.shape[-2:]
    target = pixel_grid(height, width, device=flow.device, dtype=flow.dtype) + flow
    x, y = target[:, 0:1], target[:, 1:2]
    return (x < -0.5) | (x > width - 0.5) | (y < -0.5) | (y > height - 0.5)


def consistency_mask(
    flow_fw: torch.Tensor,
    flow_bw: torch.Tensor,
    *,
    alpha: float = 0.01,
    beta: float = 0.5,
    motion_boundaries: bool = True,
    out_of_frame: bool = True,
) -> torch.Tensor:
    """Which pixels of frame 1 a flow to frame 2 can be trusted at.

    A pixel is unreliable where (Sundaram et al. 2010):

    - the backward flow does not bring it back (occluded in frame 2, or a flow error):
      ``|w_f + w_b(x + w_f)|^2 > alpha (|w_f|^2 + |w_b(x + w_f)|^2) + beta``;
    - ``motion_boundaries``: it sits on a motion boundary, ``|grad w_f|^2 > 0.01 |w_f|^2 + 0.002``;
    - ``out_of_frame``: ``x + w_f`` leaves the frame, so frame 2 has nothing there.

    Args:
        flow_fw: ``(B,2,H,W)`` flow from frame 1 to frame 2 (``frame1(x) ~= frame2(x + flow_fw(x))``).
        flow_bw: ``(B,2,H,W)`` flow from frame 2 to frame 1.
        alpha: tolerance relative to the squared flow lengths (fast motion is allowed a larger mismatch).
        beta: absolute tolerance in squared pixels (0.5 = a mismatch of ~0.7 px passes).

    Returns:
        ``reliable`` ``(B,1,H,W)`` bool on frame 1's grid.
    """
    check_bchw(flow_fw, "flow_fw", channels=2)
    check_bchw(flow_bw, "flow_bw", channels=2)
    _check_same_shape(flow_fw, "flow_fw", flow_bw, "flow_bw")
    if alpha < 0 or beta < 0:
        raise AnimatorError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}", field="alpha")
    flow_fw, flow_bw = flow_fw.float(), flow_bw.float()
    flow_bw_there = warp_by_flow(flow_bw, flow_fw, border="replicate")  # w_b(x + w_f(x)), Bx2xHxW
    round_trip = _squared_norm(flow_fw + flow_bw_there)
    tolerance = alpha * (_squared_norm(flow_fw) + _squared_norm(flow_bw_there)) + beta
    unreliable = round_trip > tolerance
    if motion_boundaries:
        unreliable |= _flow_gradient_energy(flow_fw) > _BOUNDARY_ALPHA * _squared_norm(flow_fw) + _BOUNDARY_BETA
    if out_of_frame:
        unreliable |= leaves_frame(flow_fw)
    return ~unreliable


# --------------------------------------------------------------------------------------------------------------------
# clean-up


def _drop_small_islands(mask: torch.Tensor, min_island: int) -> torch.Tensor:
    """Remove 8-connected True regions with fewer than ``min_island`` pixels.

    Connected components have no fast tensor form, so this one step runs on the host through OpenCV
    (the mask is one byte per pixel: the round trip is small next to a flow estimate).
    """
    import cv2
    import numpy as np

    kept = []
    for plane in mask[:, 0].to("cpu", torch.uint8).numpy():  # HxW per batch item
        count, labels, stats, _ = cv2.connectedComponentsWithStats(plane, connectivity=8)
        big_enough = stats[:, cv2.CC_STAT_AREA] >= min_island
        big_enough[0] = False  # label 0 is the background (False pixels)
        kept.append(big_enough[labels])
    return torch.from_numpy(np.stack(kept)[:, None]).to(mask.device)


def _gaussian_blur(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    taps = torch.arange(-radius, radius + 1, device=mask.device, dtype=mask.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(mask, (radius, radius, 0, 0), mode="replicate")
    mask = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    padded = F.pad(mask, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel.view(1, 1, -1, 1))


def clean_mask(mask: torch.Tensor, *, min_island: int = 8, dilate: int = 2, blur: float = 1.0) -> torch.Tensor:
    """Tidy a region mask (typically the *unreliable* pixels, ``~consistency_mask(...)``) into a soft mask.

    Steps, each skipped when its parameter is 0: drop True islands smaller than ``min_island`` pixels (speckle from
    flow noise), grow the region by ``dilate`` pixels (a safety margin around occlusions: flow is least accurate at
    their edges), then a Gaussian blur of standard deviation ``blur`` pixels for a soft transition.

    Args:
        mask: ``(B,1,H,W)`` bool (or float > 0.5 = True) marking the region.

    Returns:
        ``(B,1,H,W)`` float32 in ``[0, 1]``, 1 inside the region.
    """
    _check_mask(mask, "mask")
    if min_island < 0 or dilate < 0 or blur < 0:
        raise AnimatorError(
            f"min_island, dilate and blur must be >= 0, got {min_island}, {dilate}, {blur}", field="clean_mask"
        )
    region = mask if mask.dtype == torch.bool else mask > 0.5
    if min_island > 1:
        region = _drop_small_islands(region, int(min_island))
    soft = region.float()
    if dilate > 0:
        soft = F.max_pool2d(soft, kernel_size=2 * int(dilate) + 1, stride=1, padding=int(dilate))
    if blur > 0:
        soft = _gaussian_blur(soft, float(blur)).clamp_(0.0, 1.0)
    return soft


# --------------------------------------------------------------------------------------------------------------------
# tweens


# A surface seen by only one of the two frames still fills a tween pixel that no surface seen by both claims.
_OCCLUDED_WEIGHT = 1e-3


def _claim_weight(to_source: torch.Tensor, flow_at_source: torch.Tensor, fraction: float) -> torch.Tensor:
    """``exp(-d^2 / 2)`` where ``d`` is how far the surface read at ``y + to_source`` lands from ``y`` when it moves
    ``fraction`` of its own flow: ~1 for a consistent claim, ~0 once it misses by 2 px or more. ``(B,1,H,W)``."""
    miss = _squared_norm(to_source + fraction * flow_at_source)
    return torch.exp(-0.5 * miss)


def flow_tween(
    prev_img: torch.Tensor,
    next_img: torch.Tensor,
    flow_prev_to_next: torch.Tensor,
    flow_next_to_prev: torch.Tensor,
    position: float,
) -> torch.Tensor:
    """An in-between frame at ``position`` in ``(0, 1)`` that follows the motion from ``prev_img`` to ``next_img``.

    ``prev_img`` is moved ``position`` of the way along its flow and ``next_img`` is moved back the rest of the way;
    the two are blended by ``position`` and by consistency (a pixel occluded in one frame is taken from the other).
    Flows keep their full magnitude: a 12 px motion puts the half-way tween 6 px along.

    Args:
        prev_img, next_img: ``(B,C,H,W)`` float images.
        flow_prev_to_next: ``(B,2,H,W)`` with ``prev(x) ~= next(x + flow(x))``.
        flow_next_to_prev: ``(B,2,H,W)`` with ``next(x) ~= prev(x + flow(x))``.
        position: 0 is ``prev_img``, 1 is ``next_img``.

    Returns:
        ``(B,C,H,W)`` in the dtype of ``prev_img``.
    """
    check_bchw(prev_img, "prev_img", channels=None)
    check_bchw(next_img, "next_img", channels=None)
    check_bchw(flow_prev_to_next, "flow_prev_to_next", channels=2)
    check_bchw(flow_next_to_prev, "flow_next_to_prev", channels=2)
    _check_same_shape(prev_img, "prev_img", next_img, "next_img")
    _check_same_grid(prev_img, "prev_img", flow_prev_to_next, "flow_prev_to_next")
    _check_same_grid(prev_img, "prev_img", flow_next_to_prev, "flow_next_to_prev")
    if not 0.0 <= float(position) <= 1.0:
        raise AnimatorError(f"position must be in [0, 1], got {position}", field="position")
    t = float(position)
    if t == 0.0:
        return prev_img.clone()
    if t == 1.0:
        return next_img.clone()
    fw, bw = flow_prev_to_next.float(), flow_next_to_prev.float()

    # A pixel at y in the tween was at p = y - t*fw(y) in prev and is at q = y - (1-t)*bw(y) in next. Reading the
    # flows at y (not at p or q, which are unknown) is exact inside a moving region and wrong near its edges, where
    # y may take the flow of a neighbouring surface. So each side is weighted by two checks:
    # 1. its claim is self-consistent: the surface found at p really moves to y (p + t*fw(p) ~= y), else another
    #    surface is at y at time t;
    # 2. its surface is visible in both frames; a surface that the other frame cannot see (about to be covered, or
    #    just revealed) only wins where the other side has no consistent claim at all.
    to_prev, to_next = -t * fw, -(1.0 - t) * bw
    from_prev = warp_by_flow(prev_img.float(), to_prev)
    from_next = warp_by_flow(next_img.float(), to_next)
    claim_prev = _claim_weight(to_prev, warp_by_flow(fw, to_prev), t)
    claim_next = _claim_weight(to_next, warp_by_flow(bw, to_next), 1.0 - t)
    visible_prev = consistency_mask(fw, bw, motion_boundaries=False).float()  # on prev's grid
    visible_next = consistency_mask(bw, fw, motion_boundaries=False).float()  # on next's grid
    weight_prev = (1.0 - t) * claim_prev * (warp_by_flow(visible_prev, to_prev) + _OCCLUDED_WEIGHT)
    weight_next = t * claim_next * (warp_by_flow(visible_next, to_next) + _OCCLUDED_WEIGHT)
    total = weight_prev + weight_next
    # Where neither side has a claim (rare: both flows wrong), fall back to the plain positional blend.
    neither = total < 1e-4 * _OCCLUDED_WEIGHT
    weight_prev = torch.where(neither, torch.full_like(weight_prev, 1.0 - t), weight_prev)
    weight_next = torch.where(neither, torch.full_like(weight_next, t), weight_next)
    tween = (weight_prev * from_prev + weight_next * from_next) / (weight_prev + weight_next)
    return tween.to(prev_img.dtype)
