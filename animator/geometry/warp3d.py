"""The exact 3D warp: unproject every source pixel with its depth, move it, project it, keep the nearest.

How :func:`warp_3d` works, in four steps (all batched tensor ops, CPU or CUDA):

1. **Forward splat with a z-buffer.** Each source pixel becomes a 3D point (``depth_to_3d_v2``), moves by
   ``dst_from_src`` and lands on the nearest destination pixel; ``scatter_reduce(..., "amin")`` keeps the smallest
   ``z`` per pixel, so foreground covers background.
2. **Close cracks.** A surface magnified by a forward move spreads its points more than a pixel apart; a hole pixel
   with splatted neighbours on two opposite sides takes their depth. Wider holes stay holes (disocclusions).
3. **Backward sample.** Every destination pixel with a depth is unprojected, moved by ``src_from_dst`` and sampled
   from the source with ``grid_sample`` (bilinear or bicubic), so colours are sub-pixel exact, not splatted.
4. **Validity.** A destination pixel is valid when it has a depth, reprojects inside the source frame, and its
   predicted source depth agrees with the source depth there. That check rejects crack fills that bridged a
   depth edge: nothing is stretched between foreground and background.

Holes (``~valid``) are then filled as asked. ``telea`` runs OpenCV's inpainting per image on the host (a copy
to the CPU and back); every other fill stays on the tensor's device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.depth import depth_to_3d_v2

from animator.errors import AnimatorError
from animator.geometry._checks import batched_matrix, check_choice, check_finite, check_shape, check_tensor
from animator.geometry.camera import invert_pose

__all__ = ["warp_3d", "SAMPLING_MODES", "FILL_MODES"]

SAMPLING_MODES = ("bilinear", "bicubic")
FILL_MODES = ("none", "border", "reflection", "telea", "background")

# A destination pixel is consistent when its predicted source z lies within the 2x2 source depths around where it
# lands, widened by this fraction (float32 round-off plus the half-pixel offset of a nearest-pixel splat).
_DEPTH_TOLERANCE = 0.02


def warp_3d(
    image: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    dst_from_src: torch.Tensor,
    *,
    sampling: str = "bilinear",
    fill: str = "none",
    return_depth: bool = False,
):
    """Show the source image from the destination camera, with occlusion and hole masks.

    Args:
        image: ``(B, 3, H, W)`` float in [0, 1], the source frame (any channel count works).
        depth: ``(B, 1, H, W)`` z > 0 of every source pixel in the source camera, in scene units.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics (same for both cameras), pixel centres at integers.
        dst_from_src: ``(4, 4)`` or ``(B, 4, 4)`` rigid move from source to destination camera coordinates.
        sampling: ``"bilinear"`` or ``"bicubic"`` (clamped to [0, 1]).
        fill: what invalid pixels show: ``"none"`` black; ``"border"``/``"reflection"`` the source sampled with
            that padding at the reprojection of a background depth (Deforum-like smear); ``"telea"`` OpenCV
            inpainting (host, per image); ``"background"`` the valid pixel on the far side of the hole (of the
            nearest valid pixels left, right, above and below, the one with the largest depth).
        return_depth: also return the destination depth.

    Returns:
        ``(warped, valid)`` or ``(warped, valid, warped_depth)``:
        ``warped (B, 3, H, W)`` in ``image``'s dtype; ``valid (B, 1, H, W)`` bool, True where a source surface
        is visible; ``warped_depth (B, 1, H, W)`` z of what the destination sees, holes filled from the far side
        (``telea``: inpainted), always positive so it can be warped again; ``valid`` says which pixels are real.

    Example:
        >>> from animator.geometry import intrinsics_from_fov, motion_to_pose
        >>> image, depth = torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 200.0)
        >>> K = intrinsics_from_fov(40.0, 32, 32)
        >>> warped, valid = warp_3d(image, depth, K, motion_to_pose(0, 0, 0, 0, 0, 0))
        >>> bool(valid.all()), torch.allclose(warped, image, atol=1e-5)
        (True, True)
    """
    image, depth, K, dst_from_src = _check_inputs(image, depth, K, dst_from_src, sampling, fill)
    compute_dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    z_src = depth.to(compute_dtype)
    K = batched_matrix(K, "K", 3, image.shape[0], image.device, compute_dtype)
    dst_from_src = batched_matrix(dst_from_src, "dst_from_src", 4, image.shape[0], image.device, compute_dtype)
    src_from_dst = invert_pose(dst_from_src)

    # 1-2. destination depth: z-buffered splat, cracks closed
    z_dst = _close_cracks(_splat_depth(z_src, K, dst_from_src))  # Bx1xHxW, inf = nothing landed

    # 3-4. where each destination pixel comes from, and whether that is really what it sees
    has_depth = torch.isfinite(z_dst)
    uv_src, z_pred = _reproject(torch.where(has_depth, z_dst, torch.ones_like(z_dst)), K, src_from_dst)
    valid = has_depth & _inside(uv_src, z_pred, image.shape[-2:]) & _consistent(z_src, uv_src, z_pred)

    need_hole_depth = return_depth or fill in ("border", "reflection")
    hole_depth = _far_side_depth(torch.where(valid, z_dst, torch.zeros_like(z_dst)), valid, z_src) if need_hole_depth else None
    if fill in ("border", "reflection"):
        # holes show the source at the reprojection of the background depth: a smear, as Deforum's padding does
        uv_src, _ = _reproject(hole_depth, K, src_from_dst)
    warped = _sample(image, uv_src, sampling, padding="reflection" if fill == "reflection" else "border")

    if fill == "none":
        warped = warped * valid
    elif fill == "background":
        warped = _fill_from_far_side(warped, torch.where(valid, z_dst, torch.zeros_like(z_dst)), valid)
    elif fill == "telea":
        warped = _inpaint_telea(warped, valid)
    warped = warped.to(image.dtype)
    if not return_depth:
        return warped, valid
    warped_depth = torch.where(valid, z_dst, hole_depth)
    if fill == "telea":
        warped_depth = _inpaint_telea_depth(warped_depth, valid)
    return warped, valid, warped_depth.to(depth.dtype)


def _check_inputs(image, depth, K, dst_from_src, sampling, fill):
    check_tensor(image, "image")
    check_shape(image, "image", "B,C,H,W")
    check_tensor(depth, "depth")
    check_shape(depth, "depth", "B,1,H,W")
    if depth.shape[0] != image.shape[0] or depth.shape[-2:] != image.shape[-2:]:
        raise AnimatorError(
            f"shape {tuple(depth.shape)} does not match image {tuple(image.shape)}: expected "
            f"({image.shape[0]},1,{image.shape[2]},{image.shape[3]})",
            field="depth",
        )
    if depth.device != image.device:
        raise AnimatorError(f"is on {depth.device} but image is on {image.device}", field="depth")
    check_finite(image, "image")
    if torch.isnan(depth).any():
        raise AnimatorError("contains NaN", field="depth", hint="check the depth model output")
    if not (depth > 0).all() or torch.isinf(depth).any():
        raise AnimatorError(
            f"must be positive and finite everywhere (z in scene units), min is {float(depth.min()):g}",
            field="depth",
            hint="map disparity to z with near > 0 before warping",
        )
    check_choice(sampling, "sampling", SAMPLING_MODES)
    check_choice(fill, "fill", FILL_MODES)
    for name, value in (("K", K), ("dst_from_src", dst_from_src)):
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            raise AnimatorError(f"expected a floating-point tensor, got dtype {value.dtype}", field=name)
    return image, depth, K, dst_from_src


def _project(points: torch.Tensor, K: torch.Tensor):
    """Bx...x3 camera points -> (u, v, z), each Bx... (u, v in pixels)."""
    shape = (K.shape[0],) + (1,) * (points.ndim - 2)
    fx, fy = K[:, 0, 0].view(shape), K[:, 1, 1].view(shape)
    cx, cy = K[:, 0, 2].view(shape), K[:, 1, 2].view(shape)
    x, y, z = points.unbind(-1)
    # points behind the camera get a huge coordinate instead of a sign flip (they never count as inside)
    z_safe = torch.where(z > 1e-6, z, torch.full_like(z, 1e-6))
    return fx * x / z_safe + cx, fy * y / z_safe + cy, z


def _transform(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """BxHxWx3 points through Bx4x4 poses."""
    rotation, translation = pose[:, :3, :3], pose[:, :3, 3].view(-1, 1, 1, 3)
    return (points.flatten(1, 2) @ rotation.transpose(-1, -2)).view_as(points) + translation


def _splat_depth(z_src: torch.Tensor, K: torch.Tensor, dst_from_src: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW source z -> Bx1xHxW destination z (nearest wins), inf where no point lands."""
    batch, _, height, width = z_src.shape
    points_dst = _transform(depth_to_3d_v2(z_src[:, 0], K), dst_from_src)  # BxHxWx3
    u, v, z = _project(points_dst, K)
    col, row = torch.round(u), torch.round(v)
    lands = (z > 1e-6) & (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
    pixels = height * width
    offsets = torch.arange(batch, device=z.device).view(batch, 1, 1) * pixels
    flat = (row * width + col).long() + offsets
    flat = torch.where(lands, flat, torch.full_like(flat, batch * pixels))  # one spare slot for the dropped
    buffer = torch.full((batch * pixels + 1,), float("inf"), dtype=z.dtype, device=z.device)
    buffer.scatter_reduce_(0, flat.reshape(-1), z.reshape(-1), reduce="amin")
    return buffer[:-1].view(batch, 1, height, width)


def _close_cracks(z: torch.Tensor) -> torch.Tensor:
    """Fill one-pixel holes that have splatted neighbours on two opposite sides (Bx1xHxW, inf = hole)."""
    padded = F.pad(z, (1, 1, 1, 1), value=float("inf"))
    height, width = z.shape[-2:]

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    # per opposite pair the farther depth (inf unless both sides landed), then the nearest over pairs;
    # a wrong pick is caught by the consistency check
    pairs = [((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1))]
    candidate = torch.stack([torch.maximum(shifted(*a), shifted(*b)) for a, b in pairs]).amin(0)
    return torch.where(torch.isinf(z), candidate, z)


def _reproject(z_dst: torch.Tensor, K: torch.Tensor, src_from_dst: torch.Tensor):
    """Bx1xHxW destination z -> (Bx2xHxW source pixel coords (u, v), Bx1xHxW z in the source camera)."""
    u, v, z = _project(_transform(depth_to_3d_v2(z_dst[:, 0], K), src_from_dst), K)
    return torch.stack([u, v], 1), z[:, None]


def _inside(uv: torch.Tensor, z: torch.Tensor, size) -> torch.Tensor:
    height, width = size
    u, v = uv[:, :1], uv[:, 1:]
    return (z > 1e-6) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)


def _consistent(z_src: torch.Tensor, uv: torch.Tensor, z_pred: torch.Tensor) -> torch.Tensor:
    """True where ``z_pred`` lies within the span of the 2x2 source depths around ``uv`` (Bx1xHxW)."""
    height, width = z_src.shape[-2:]
    padded = F.pad(z_src, (0, 1, 0, 1), mode="replicate")
    span_min = -F.max_pool2d(-padded, 2, stride=1)  # Bx1xHxW: min over the 2x2 block starting at each pixel
    span_max = F.max_pool2d(padded, 2, stride=1)
    col = torch.floor(uv[:, :1]).clamp(0, width - 1).long()
    row = torch.floor(uv[:, 1:]).clamp(0, height - 1).long()
    index = (row * width + col).flatten(1)
    low = span_min.flatten(1).gather(1, index).view_as(z_pred)
    high = span_max.flatten(1).gather(1, index).view_as(z_pred)
    return (z_pred >= low * (1 - _DEPTH_TOLERANCE)) & (z_pred <= high * (1 + _DEPTH_TOLERANCE))


def _sample(image: torch.Tensor, uv: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=uv.dtype, device=uv.device).view(1, 2, 1, 1)
    grid = ((uv + 0.5) * scale - 1.0).permute(0, 2, 3, 1)  # BxHxWx2, align_corners=False convention
    source = image if image.dtype in (torch.float32, torch.float64) else image.float()
    out = F.grid_sample(source, grid.to(source.dtype), mode=mode, padding_mode=padding, align_corners=False)
    return out.clamp(0.0, 1.0) if mode == "bicubic" else out


def _far_side_index(depth: torch.Tensor, valid: torch.Tensor):
    """For every pixel the flat index of the nearest valid pixel left/right/above/below with the largest depth.

    Returns (Bx1xHxW long index, Bx1xHxW bool found).
    """
    height, width = depth.shape[-2:]
    cols = torch.arange(width, device=depth.device).expand_as(depth)
    rows = torch.arange(height, device=depth.device).view(height, 1).expand_as(depth)
    none = torch.full_like(cols, -1)
    left = torch.where(valid, cols, none).cummax(-1).values
    right = (width - 1) - torch.where(valid, (width - 1) - cols, none).flip(-1).cummax(-1).values.flip(-1)
    up = torch.where(valid, rows, none).cummax(-2).values
    down = (height - 1) - torch.where(valid, (height - 1) - rows, none).flip(-2).cummax(-2).values.flip(-2)
    candidates = torch.stack([
        torch.where(left >= 0, rows * width + left, none),
        torch.where(right <= width - 1, rows * width + right, none),
        torch.where(up >= 0, up * width + cols, none),
        torch.where(down <= height - 1, down * width + cols, none),
    ])  # 4xBx1xHxW
    found = candidates >= 0
    flat_depth = depth.flatten(1)
    candidate_depth = torch.stack([flat_depth.gather(1, c.clamp(min=0).flatten(1)).view_as(depth) for c in candidates])
    candidate_depth = torch.where(found, candidate_depth, torch.full_like(candidate_depth, -float("inf")))
    best = candidate_depth.argmax(0, keepdim=True)
    return candidates.gather(0, best)[0].clamp(min=0), found.any(0)


def _fill_from_far_side(values: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Invalid pixels of ``values`` (BxCxHxW) copy the far-side valid pixel; where none exists they stay as they are."""
    index, found = _far_side_index(depth, valid)
    copied = values.flatten(2).gather(2, index.flatten(2).expand(-1, values.shape[1], -1)).view_as(values)
    return torch.where(valid | ~found, values, copied)


def _far_side_depth(depth: torch.Tensor, valid: torch.Tensor, z_src: torch.Tensor) -> torch.Tensor:
    """Depth with holes filled from the far side; an image with no valid pixel takes its source's largest depth."""
    filled = _fill_from_far_side(depth, depth, valid)
    fallback = z_src.flatten(1).amax(1).view(-1, 1, 1, 1).expand_as(depth)
    return torch.where(valid | (filled > 0), filled, fallback)


def _inpaint_telea(image: torch.Tensor, valid: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """OpenCV Telea inpainting of the invalid pixels, per image on the host (8-bit, as cv2.inpaint needs)."""
    import cv2

    out = []
    for picture, mask in zip(image, valid):
        rgb = (picture.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        holes = (~mask[0]).cpu().numpy().astype(np.uint8)
        if rgb.shape[2] != 3:  # cv2.inpaint takes 1 or 3 channels
            filled = np.stack([cv2.inpaint(np.ascontiguousarray(rgb[..., c]), holes, radius, cv2.INPAINT_TELEA)
                               for c in range(rgb.shape[2])], -1)
        else:
            filled = cv2.inpaint(rgb, holes, radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled.astype(np.float32) / 255.0).permute(2, 0, 1))
    inpainted = torch.stack(out).to(device=image.device, dtype=image.dtype)
    return torch.where(valid, image, inpainted)


def _inpaint_telea_depth(depth: torch.Tensor, valid: torch.Tensor, radius: int = 3) -> torch.Tensor:
    import cv2

    out = []
    for z, mask in zip(depth, valid):
        holes = (~mask[0]).cpu().numpy().astype(np.uint8)
        filled = cv2.inpaint(z[0].detach().float().cpu().numpy(), holes, radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled)[None])
    inpainted = torch.stack(out).to(device=depth.device, dtype=depth.dtype)
    # inpainting can only blend valid depths, but keep the promise of a positive depth regardless
    return torch.where(valid | (inpainted <= 0), depth, inpainted)
