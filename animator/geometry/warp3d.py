"""The exact 3D warp: unproject every source pixel with its depth, move it, project it, keep the nearest.

How :func:`warp_3d` works, in four steps (all batched tensor ops, CPU or CUDA):

1. **Forward splat with a z-buffer.** Each source pixel becomes a 3D point (as kornia's ``depth_to_3d_v2``), moves by
   ``dst_from_src`` and lands on the nearest destination pixel; ``scatter_reduce(..., "amin")`` keeps the smallest
   ``z`` per pixel, so foreground covers background.
2. **Close cracks.** A surface magnified by a forward move spreads its points more than a pixel apart; a pixel
   with splatted neighbours on two opposite sides that is empty, or shows something farther away through the
   crack, takes their depth. Wider holes stay holes (disocclusions).
3. **Backward sample.** Every destination pixel with a depth is unprojected, moved by ``src_from_dst`` and sampled
   from the source with ``grid_sample`` (bilinear or bicubic), so colours are sub-pixel exact, not splatted.
4. **Validity.** A splatted pixel is valid by construction (a source surface landed there and won the z-buffer);
   a crack fill is valid when it reprojects inside the source frame and its predicted source depth agrees with
   the source depth there. That check rejects fills that bridged a depth edge: nothing is stretched between
   foreground and background. Everything else is a hole: disoccluded, or outside the source frame.

Holes (``~valid``) are then filled as asked. ``telea`` runs OpenCV's inpainting per image on the host (a copy
to the CPU and back); every other fill stays on the tensor's device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from animator.errors import AnimatorError
from animator.geometry._checks import batched_matrix, check_choice, check_shape, check_tensor
from animator.geometry.camera import invert_pose

__all__ = ["warp_3d", "SAMPLING_MODES", "FILL_MODES"]

SAMPLING_MODES = ("bilinear", "bicubic")
FILL_MODES = ("none", "border", "reflection", "telea", "background")

# A crack fill is consistent when its predicted source z lies within the source depths around where it lands,
# widened by this fraction (float32 round-off plus the half-pixel offset of a nearest-pixel splat).
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

    # 1-2. destination depth: z-buffered splat (inf where nothing landed), one-pixel cracks closed
    z_splat = _splat_depth(z_src, K, dst_from_src)  # Bx1xHxW
    z_dst, crack = _close_cracks(z_splat)
    # 4. a splatted pixel is a visible surface by construction; a crack fill must agree with the source depth
    valid = (z_splat < float("inf")) & ~crack
    valid = valid | _crack_fill_consistent(z_src, z_dst, crack, K, src_from_dst)

    # 3. where each destination pixel comes from in the source; holes get the depth of the valid pixel on their
    # far side (background) when something needs it: the returned depth, or the border/reflection smear
    z_valid = torch.where(valid, z_dst, torch.zeros_like(z_dst))
    needs_far_side = return_depth or fill in ("border", "reflection", "background")
    far_side = _far_side_index(z_valid, valid) if needs_far_side else None
    if far_side is not None:
        z_lookup = torch.where(valid, z_dst, _far_side_depth(z_valid, valid, z_src, far_side))
    else:
        z_lookup = torch.where(valid, z_dst, torch.ones_like(z_dst))
    grid = _source_grid(z_lookup, K, src_from_dst)  # BxHxWx2
    # border/reflection: holes show the source at the reprojection of a background depth, a smear as Deforum's
    warped = _sample(image, grid, sampling, padding="reflection" if fill == "reflection" else "border")

    if fill == "none":
        warped = warped * valid
    elif fill == "background":
        warped = _fill_from_far_side(warped, valid, far_side)
    elif fill == "telea":
        warped = _inpaint_telea(warped, valid)
    warped = warped.to(image.dtype)
    if not return_depth:
        return warped, valid
    warped_depth = z_lookup
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
    # two reductions instead of elementwise masks: NaN and inf survive a sum, NaN survives amin (speed target)
    if not torch.isfinite(image.sum(dtype=torch.float32)):
        raise AnimatorError("contains NaN or infinite values", field="image")
    smallest, total = depth.amin(), depth.sum(dtype=torch.float32)
    if torch.isnan(smallest) or torch.isnan(total):
        raise AnimatorError("contains NaN", field="depth", hint="check the depth model output")
    if not smallest > 0 or torch.isinf(total):
        raise AnimatorError(
            f"must be positive and finite everywhere (z in scene units), min is {float(smallest):g}",
            field="depth",
            hint="map disparity to z with near > 0 before warping",
        )
    check_choice(sampling, "sampling", SAMPLING_MODES)
    check_choice(fill, "fill", FILL_MODES)
    for name, value in (("K", K), ("dst_from_src", dst_from_src)):
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            raise AnimatorError(f"expected a floating-point tensor, got dtype {value.dtype}", field=name)
    return image, depth, K, dst_from_src


def _rays(K: torch.Tensor, height: int, width: int):
    """Normalised image coordinates of the pixel centres, kept separable: (Bx1x1xW x/z, Bx1xHx1 y/z)."""
    cols = torch.arange(width, device=K.device, dtype=K.dtype).view(1, 1, 1, width)
    rows = torch.arange(height, device=K.device, dtype=K.dtype).view(1, 1, height, 1)
    x_over_z = (cols - K[:, 0, 2].view(-1, 1, 1, 1)) / K[:, 0, 0].view(-1, 1, 1, 1)
    y_over_z = (rows - K[:, 1, 2].view(-1, 1, 1, 1)) / K[:, 1, 1].view(-1, 1, 1, 1)
    return x_over_z, y_over_z


def _move_and_project(z: torch.Tensor, K: torch.Tensor, pose: torch.Tensor, rays=None):
    """Unproject every pixel of Bx1xHxW ``z`` through ``K``, move by ``pose`` (Bx4x4), project through ``K``.

    ``rays`` overrides the unprojection (from :func:`_rays` of other intrinsics).
    Returns (u, v, z_moved), each Bx1xHxW, u/v in pixels. The same algebra as kornia's ``depth_to_3d_v2`` +
    ``transform_points`` + ``project_points``, regrouped as ``X_i = z (R_i . ray) + t_i`` with the ray term built
    from a row and a column vector, which does a third of the full-size tensor work (the warp's speed target).
    """
    x_over_z, y_over_z = rays if rays is not None else _rays(K, z.shape[-2], z.shape[-1])
    moved = []
    for i in range(3):
        r = pose[:, i, :3].reshape(-1, 3, 1, 1, 1)
        ray_term = (r[:, 0] * x_over_z + r[:, 2]) + r[:, 1] * y_over_z  # Bx1xHxW
        moved.append(torch.addcmul(pose[:, i, 3].view(-1, 1, 1, 1), z, ray_term))
    x, y, z_moved = moved
    # points behind the camera get a huge coordinate instead of a sign flip (they never count as inside)
    inv_z = torch.where(z_moved > 1e-6, z_moved, torch.full_like(z_moved, 1e-6)).reciprocal_()
    u = torch.addcmul(K[:, 0, 2].view(-1, 1, 1, 1), x * inv_z, K[:, 0, 0].view(-1, 1, 1, 1))
    v = torch.addcmul(K[:, 1, 2].view(-1, 1, 1, 1), y * inv_z, K[:, 1, 1].view(-1, 1, 1, 1))
    return u, v, z_moved


def _splat_depth(z_src: torch.Tensor, K: torch.Tensor, dst_from_src: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW source z -> Bx1xHxW destination z (nearest wins), inf where no point lands."""
    batch, _, height, width = z_src.shape
    u, v, z = _move_and_project(z_src, K, dst_from_src)
    col, row = torch.round(u), torch.round(v)
    lands = (z > 1e-6) & (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
    pixels = height * width
    offsets = torch.arange(batch, device=z.device, dtype=z.dtype).view(batch, 1, 1, 1) * pixels
    flat = torch.addcmul(col + offsets, row, torch.full_like(row[:1, :1, :1, :1], width))
    # everything that misses the frame goes to one spare slot past the end
    flat = torch.where(lands, flat, torch.full_like(flat, batch * pixels)).long()
    buffer = torch.full((batch * pixels + 1,), float("inf"), dtype=z.dtype, device=z.device)
    buffer.scatter_reduce_(0, flat.view(-1), z.reshape(-1), reduce="amin")
    return buffer[:-1].view(batch, 1, height, width)


def _close_cracks(z: torch.Tensor):
    """Fill one-pixel cracks in a splatted depth map (Bx1xHxW, inf = nothing landed).

    A crack is a pixel with splatted neighbours on two opposite sides (left-right, up-down or a diagonal) that is
    either empty, or shows something farther than both: when a near surface is magnified, points from behind it
    fall through its cracks and would otherwise win those pixels. The crack takes the farther depth of the pair
    (then the nearest over pairs); the consistency check decides later whether that fill is real.

    Returns (filled z, Bx1xHxW bool: the pixels that were filled).
    """
    padded = F.pad(z, (1, 1, 1, 1), value=float("inf"))
    height, width = z.shape[-2:]

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    pairs = [((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1))]
    candidate = torch.maximum(shifted(*pairs[0][0]), shifted(*pairs[0][1]))
    for a, b in pairs[1:]:
        candidate = torch.minimum(candidate, torch.maximum(shifted(*a), shifted(*b)))
    crack = z > candidate * (1 + _DEPTH_TOLERANCE)  # also true for empty pixels with a finite candidate
    return torch.where(crack, candidate, z), crack


def _source_grid(z_dst: torch.Tensor, K: torch.Tensor, src_from_dst: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW destination z -> BxHxWx2 ``grid_sample`` grid (align_corners=False) of where each pixel is in the source.

    The pixel-to-[-1, 1] normalisation is folded into the projection's intrinsics: ``2 (u + 0.5) / W - 1``.
    """
    height, width = z_dst.shape[-2:]
    scale = torch.tensor([2.0 / width, 2.0 / height, 1.0], dtype=K.dtype, device=K.device).view(1, 3, 1)
    shift = torch.tensor([1.0 / width - 1.0, 1.0 / height - 1.0, 0.0], dtype=K.dtype, device=K.device)
    K_grid = K * scale
    K_grid[:, :, 2] += shift
    # unproject with the pixel intrinsics, project with the grid ones
    u, v, _ = _move_and_project(z_dst, K_grid, src_from_dst, rays=_rays(K, height, width))
    return torch.stack([u[:, 0], v[:, 0]], -1)


def _crack_fill_consistent(z_src, z_dst, crack, K, src_from_dst) -> torch.Tensor:
    """True at crack fills whose reprojection lands in the source frame on a surface at the predicted depth.

    Crack fills are sparse, so only they are reprojected (per image: a batch is a handful of frames); a fill is
    kept when its predicted source z lies within the span of the source depths around where it lands (the one to
    four pixels nearer than 0.75 px on both axes, widened by ``_DEPTH_TOLERANCE``). A fill that bridged a depth
    edge predicts a depth the source does not show there and is dropped.
    """
    height, width = z_dst.shape[-2:]
    result = torch.zeros_like(crack)
    for i in range(z_dst.shape[0]):
        flat = crack[i].view(-1).nonzero().squeeze(1)
        if flat.numel() == 0:
            continue
        (fx, _, cx), (_, fy, cy) = K[i, 0].tolist(), K[i, 1].tolist()
        rotation, translation = src_from_dst[i, :3, :3], src_from_dst[i, :3, 3:4]
        z = z_dst[i].view(-1).take(flat)
        row, col = (flat // width).to(z.dtype), (flat % width).to(z.dtype)
        point = torch.stack([(col - cx) * (z / fx), (row - cy) * (z / fy), z])  # 3xN in the destination camera
        x, y, z_pred = (rotation @ point + translation).unbind(0)  # in the source camera
        ahead = z_pred > 1e-6
        inv_z = torch.where(ahead, z_pred, torch.ones_like(z_pred)).reciprocal()
        u, v = fx * x * inv_z + cx, fy * y * inv_z + cy
        inside = ahead & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
        # the source pixels around (u, v) that bilinear sampling weighs by more than a quarter
        col0, col1 = (torch.round(u + d).clamp_(0, width - 1).long() for d in (-0.25, 0.25))
        row0, row1 = (torch.round(v + d).clamp_(0, height - 1).long() for d in (-0.25, 0.25))
        source = z_src[i].view(-1)
        around = torch.stack([source.take(r * width + c) for r in (row0, row1) for c in (col0, col1)])  # 4xN
        low, high = around.amin(0) * (1 - _DEPTH_TOLERANCE), around.amax(0) * (1 + _DEPTH_TOLERANCE)
        agrees = (z_pred >= low) & (z_pred <= high)
        result[i].view(-1)[flat] = inside & agrees
    return result


def _sample(image: torch.Tensor, grid: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    source = image if image.dtype in (torch.float32, torch.float64) else image.float()
    out = F.grid_sample(source, grid.to(source.dtype), mode=mode, padding_mode=padding, align_corners=False)
    return out.clamp(0.0, 1.0) if mode == "bicubic" else out


def _nearest_valid_along_last_dim(valid: torch.Tensor, flat: torch.Tensor):
    """Flat index of the nearest valid pixel before and after each pixel along the last dimension.

    ``flat`` holds each pixel's flat index in the image and increases along the last dimension, so a running
    max (min) over the valid ones is the nearest one before (after). Missing: -1 before, ``flat.numel()`` after.
    """
    before = torch.where(valid, flat, torch.full_like(flat, -1)).cummax(-1).values
    after = torch.where(valid, flat, torch.full_like(flat, flat.numel())).flip(-1).cummin(-1).values.flip(-1)
    return before, after


def _far_side_index(depth: torch.Tensor, valid: torch.Tensor):
    """For every pixel the flat index of the nearest valid pixel left/right/above/below with the largest depth.

    Returns (Bx1xHxW long index into H*W, Bx1xHxW bool found).
    """
    height, width = depth.shape[-2:]
    flat = torch.arange(height * width, device=depth.device).view(1, 1, height, width).expand_as(depth)
    left, right = _nearest_valid_along_last_dim(valid, flat)
    # columns as rows: cummax along the last, contiguous dimension is several times faster
    up, down = _nearest_valid_along_last_dim(valid.transpose(-1, -2).contiguous(), flat.transpose(-1, -2).contiguous())
    flat_depth = depth.flatten(1)
    best_depth = torch.full_like(depth, -float("inf"))
    best_index = torch.zeros(depth.shape, dtype=torch.long, device=depth.device)
    for index in (left, right, up.transpose(-1, -2), down.transpose(-1, -2)):
        # pairwise: a reduction over a stacked leading dim is slow on the CPU
        exists = (index >= 0) & (index < height * width)
        index = index.clamp(0, height * width - 1)
        candidate_depth = flat_depth.gather(1, index.reshape(index.shape[0], -1)).view_as(depth)
        better = exists & (candidate_depth > best_depth)
        best_depth = torch.where(better, candidate_depth, best_depth)
        best_index = torch.where(better, index, best_index)
    return best_index, best_depth > -float("inf")


def _fill_from_far_side(values: torch.Tensor, valid: torch.Tensor, far_side) -> torch.Tensor:
    """Invalid pixels of ``values`` (BxCxHxW) copy their far-side valid pixel (``far_side`` from
    :func:`_far_side_index`); where none exists they stay as they are."""
    index, found = far_side
    copied = values.flatten(2).gather(2, index.flatten(2).expand(-1, values.shape[1], -1)).view_as(values)
    return torch.where(valid | ~found, values, copied)


def _far_side_depth(depth: torch.Tensor, valid: torch.Tensor, z_src: torch.Tensor, far_side) -> torch.Tensor:
    """Depth with holes filled from the far side; an image with no valid pixel takes its source's largest depth."""
    filled = _fill_from_far_side(depth, valid, far_side)
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
