"""Camera moves between frames: the exact 3D warp along the keyframed camera path, or the 2D homography."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

if TYPE_CHECKING:
    from animator.geometry import Reprojection3D
    from animator.rendering.context import RunContext
    from animator.rendering.state import FrameState


class Moved(NamedTuple):
    """A frame seen from another frame's camera."""

    image: torch.Tensor  # (1,3,H,W)
    valid: torch.Tensor  # (1,1,H,W) bool: True where a surface of the source frame is visible
    depth: torch.Tensor | None  # (1,1,H,W) z seen from the destination (3D mode), else None


def move_camera(ctx: RunContext, state: FrameState, dst: int) -> Moved:
    """``state``'s frame seen from frame ``dst``'s camera (3D warp with its depth, or the 2D homography)."""
    if ctx.config.mode == "3d":
        return move_3d(ctx, state.image, state.depth, state.index, dst)
    return move_2d(ctx, state.image, state.index, dst)


def move_3d(ctx: RunContext, image: torch.Tensor, depth: torch.Tensor, src: int, dst: int) -> Moved:
    """Frame ``src`` seen from the camera of frame ``dst`` (exact reprojection, z-buffer, hole mask); compiled with
    the models when ``backends.compile`` says so."""
    from animator.geometry import warp_3d

    K, dst_from_src = _camera_between(ctx, src, dst)
    motion = ctx.config.motion
    warped = warp_3d(
        image, depth, K, dst_from_src, sampling=motion.sampling, fill=motion.fill, check_values=False,
        compile_mode=ctx.compile_mode,
    )  # fmt: skip
    return Moved(warped.image, warped.valid, warped.depth)


def reproject_between(ctx: RunContext, depth: torch.Tensor, src: int, dst: int) -> Reprojection3D:
    """Where each pixel of frame ``dst`` lies in frame ``src`` (latent feedback moves its latents along it)."""
    from animator.geometry import reproject_3d

    K, dst_from_src = _camera_between(ctx, src, dst)
    return reproject_3d(
        depth, K, dst_from_src, fill=ctx.config.motion.fill, check_values=False, compile_mode=ctx.compile_mode
    )


def _camera_between(ctx: RunContext, src: int, dst: int):
    """Frame ``dst``'s intrinsics and the move from frame ``src``'s camera to it, made on the host: the warp
    uploads them without waiting for the GPU."""
    from animator.geometry import intrinsics_from_fov, relative_pose

    K = intrinsics_from_fov(ctx.plan.fov(dst), ctx.config.height, ctx.config.width)
    return K, relative_pose(ctx.plan.world_from_cam, src, dst).to(torch.float32)


def homography_between(ctx: RunContext, src: int, dst: int) -> np.ndarray:
    """The 2D motion from frame ``src`` to frame ``dst``: the per-frame homographies composed (inverted if
    dst < src)."""
    from animator.geometry import homography_2d

    config, plan = ctx.config, ctx.plan
    total = np.eye(3)
    for k in range(min(src, dst) + 1, max(src, dst) + 1):
        move = plan.move_2d(k)
        perspective = move.perspective_flip if config.motion.perspective_flip else None
        step = homography_2d(
            move.angle, move.zoom, move.translation_x, move.translation_y, move.transform_center_x,
            move.transform_center_y, config.width, config.height, perspective=perspective,
        )  # fmt: skip
        total = step @ total
    return total if dst >= src else np.linalg.inv(total)


def move_2d(ctx: RunContext, image: torch.Tensor, src: int, dst: int) -> Moved:
    from animator.geometry import warp_2d

    H = homography_between(ctx, src, dst)  # on the host: warp_2d checks it there and uploads it
    warped, valid = warp_2d(
        image, H, border=ctx.config.motion.border, check_values=False, compile_mode=ctx.compile_mode
    )
    return Moved(warped, valid, None)
