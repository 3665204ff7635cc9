"""The frames between two anchors (cadence > 1, and every warp-only render): both anchors warped to the in-between
camera and blended, optionally sliding along the optical flow between them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from animator.rendering.camera import move_camera
from animator.rendering.tensors import quantize, to_uint8

if TYPE_CHECKING:
    from animator.rendering.context import RunContext
    from animator.rendering.state import FrameState


@dataclass(frozen=True)
class SegmentFlow:
    """For flow-guided cadence: the previous anchor seen from the next one's camera, and the optical flow that
    remains between them (what the denoiser moved, beyond the camera), both ways."""

    prev_at_next: torch.Tensor
    forward: torch.Tensor  # prev_at_next(x) ~ next(x + forward(x))
    backward: torch.Tensor


def segment_flow(ctx: RunContext, prev: FrameState, nxt: FrameState) -> SegmentFlow:
    prev_at_next = move_camera(ctx, prev, nxt.index).image
    flow = ctx.models.flow
    return SegmentFlow(prev_at_next, flow(prev_at_next, nxt.image), flow(nxt.image, prev_at_next))


def tween(
    ctx: RunContext, prev: FrameState, nxt: FrameState, index: int, residual: SegmentFlow | None = None
) -> torch.Tensor:
    """An in-between: both anchors warped to frame ``index``'s camera and blended by position.

    Where only one anchor sees a pixel, that one is used; the blend weight moves linearly from the previous anchor
    to the next, so motion is continuous and the next anchor fades in instead of popping. With ``residual``
    (flow-guided cadence) the content first slides along the optical flow between the two anchors, by the tween's
    position, and is then moved with the camera. In a warp-only render both anchors show the same picture: the
    in-between is the previous anchor alone, its holes filled as ``motion.fill`` says.
    """
    from animator.geometry.flow import flow_tween

    if not ctx.models.diffuses:
        return _warp_only_tween(ctx, prev, index)
    w = (index - prev.index) / (nxt.index - prev.index)
    from_prev, valid_prev, _ = move_camera(ctx, prev, index)
    from_next, valid_next, _ = move_camera(ctx, nxt, index)
    weight_next = torch.where(
        valid_prev & valid_next,
        torch.full_like(valid_prev, w, dtype=from_prev.dtype),
        (valid_next & ~valid_prev).to(from_prev.dtype),
    )
    weight_next = torch.where(~valid_prev & ~valid_next, torch.full_like(weight_next, w), weight_next)
    blend = from_prev * (1 - weight_next) + from_next * weight_next
    if residual is not None:
        slid = flow_tween(residual.prev_at_next, nxt.image, residual.forward, residual.backward, w)
        slid_here, valid_slid, _ = move_camera(ctx, replace(nxt, image=slid), index)
        blend = torch.where(valid_slid, slid_here, blend)
    return quantize(blend)


def _warp_only_tween(ctx: RunContext, prev: FrameState, index: int) -> torch.Tensor:
    """The previous anchor seen from here, holes filled by motion.fill (as the anchors are)."""
    if ctx.config.mode == "3d" and prev.image.device.type == "cpu" and ctx.config.motion.fill != "telea":
        # On the CPU the anchor's 8-bit frame is warped by OpenCV straight to the 8-bit tween: a third of the
        # float warp's sampling cost, and no rounding pass (within a level of the float path). The anchor's
        # image is quantised, so its 8-bit frame is exact, emitted or (after a resume) made here once.
        if prev.host_image is None:
            prev.host_image = to_uint8(prev.image)
        as_uint8 = torch.from_numpy(prev.host_image).permute(2, 0, 1)[None]
        return move_camera(ctx, replace(prev, image=as_uint8), index).image
    return quantize(move_camera(ctx, prev, index).image)
