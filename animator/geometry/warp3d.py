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

Speed (the render loop calls this every frame): the splat writes into a z-buffer with a one-pixel border, so
points that miss the frame are clamped onto the border instead of masked out; crack fills and holes (a few percent of
the pixels) are handled on their flat index lists (the far side of a hole is the pixel just past its run of holes
along a row or column), so after the splat only the crack test, the backward grid and ``grid_sample`` touch every
pixel. A masked ``torch.where`` over every pixel costs more on a CPU than the arithmetic, and is avoided.

Holes (``~valid``) are then filled as asked (:mod:`animator.geometry.holes`). ``telea`` runs OpenCV's inpainting
per image on the host (a copy to the CPU and back); every other fill stays on the tensor's device.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np
import torch

from animator import compiling
from animator.checks import batched_matrix, check_choice, check_shape, check_tensor
from animator.choices import FILLS as FILL_MODES
from animator.choices import SAMPLINGS as SAMPLING_MODES
from animator.errors import AnimatorError
from animator.geometry.camera import invert_pose
from animator.geometry.holes import DenseHoles, SparseHoles, inpaint_telea, inpaint_telea_depth
from animator.geometry.resample import resample
from animator.workspace import scratch

__all__ = ["warp_3d", "reproject_3d", "Warped3D", "Reprojection3D", "SAMPLING_MODES", "FILL_MODES"]


# A crack fill is consistent when its predicted source z lies within the source depths around where it lands,
# widened by this fraction (float32 round-off plus the half-pixel offset of a nearest-pixel splat).
_DEPTH_TOLERANCE = 0.02


def _workspace(name: str, shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scratch tensor reused by later calls (:mod:`animator.workspace`)."""
    return scratch(f"warp3d.{name}", shape, dtype, device)


class Reprojection3D(NamedTuple):
    """Where every destination pixel of a 3D camera move comes from: the geometry of :func:`reproject_3d`, without
    any image. Anything aligned with the source frame (an image, latents, features) can follow it."""

    grid: (
        torch.Tensor
    )  # BxHxWx2 grid_sample grid (align_corners=False) into the source: holes where their fill depth lands
    valid: torch.Tensor  # Bx1xHxW bool, True where a source surface is visible
    depth: torch.Tensor  # Bx1xHxW z of what the destination sees; holes from their far side (telea: inpainted), > 0


class Warped3D(NamedTuple):
    """The source frame seen from the destination camera (:func:`warp_3d`)."""

    image: torch.Tensor  # Bx3xHxW in the source image's dtype, holes filled as asked
    valid: torch.Tensor  # Bx1xHxW bool, True where a source surface is visible
    depth: torch.Tensor  # Bx1xHxW z of what the destination sees, always positive so it can be warped again


def warp_3d(
    image: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    dst_from_src: torch.Tensor,
    *,
    sampling: str = "bilinear",
    fill: str = "none",
    compile_mode: str | None = None,
    check_values: bool = True,
) -> Warped3D:
    """Show the source image from the destination camera, with occlusion and hole masks.

    Args:
        image: ``(B, 3, H, W)`` float in [0, 1], the source frame (any channel count works), or uint8.
        depth: ``(B, 1, H, W)`` z > 0 of every source pixel in the source camera, in scene units.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics (same for both cameras), pixel centres at integers.
        dst_from_src: ``(4, 4)`` or ``(B, 4, 4)`` rigid move from source to destination camera coordinates.
        sampling: ``"bilinear"``, ``"bicubic"`` or ``"catmull_rom"`` (both clamped to [0, 1]; in a feedback loop
            bicubic sharpens a little more every frame, Catmull-Rom does not: see :mod:`animator.geometry.resample`).
        fill: what invalid pixels show: ``"none"`` black; ``"border"``/``"reflection"`` the source sampled with
            that padding at the reprojection of a background depth (Deforum-like smear); ``"telea"`` OpenCV
            inpainting (host, per image); ``"background"`` the valid pixel on the far side of the hole (of the
            nearest valid pixels left, right, above and below, the one with the largest depth).
        compile_mode: a ``torch.compile`` mode (``"default"``, ``"reduce-overhead"`` for CUDA graphs) to run the
            warp as one compiled graph (after the input checks, which stay eager), or None for eager. On a GPU the
            eager warp is ~60 small kernel launches, which cost more than their arithmetic at 512x512; compiled,
            they fuse into a few (see :mod:`animator.compiling`). Compiling takes ~30 s per variant (sampling,
            fill, size); 8-bit images and ``telea`` (OpenCV on the host) always run eager.
        check_values: check that the image is finite and the depth positive (one read-back from the device,
            which on a GPU waits for everything queued before it). The render passes False: it checks each
            finished frame once instead.

    Returns:
        :class:`Warped3D` ``(image, valid, depth)``.

    Example:
        >>> from animator.geometry import intrinsics_from_fov, motion_to_pose
        >>> image, depth = torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 200.0)
        >>> K = intrinsics_from_fov(40.0, 32, 32)
        >>> warped = warp_3d(image, depth, K, motion_to_pose(0, 0, 0, 0, 0, 0))
        >>> bool(warped.valid.all()), torch.allclose(warped.image, image, atol=1e-5)
        (True, True)
    """
    image, depth, K, dst_from_src = _check_inputs(image, depth, K, dst_from_src, sampling, fill, check_values)
    K, dst_from_src = _batched_camera(K, dst_from_src, image)
    if fill == "telea" or image.dtype == torch.uint8:  # OpenCV on the host: never compiled
        compile_mode = None
    warped, valid, warped_depth, _ = compiling.call(_warp, compile_mode, image, depth, K, dst_from_src, sampling, fill)
    return Warped3D(warped, valid, warped_depth)


def reproject_3d(
    depth: torch.Tensor,
    K: torch.Tensor,
    dst_from_src: torch.Tensor,
    *,
    fill: str = "none",
    compile_mode: str | None = None,
    check_values: bool = True,
) -> Reprojection3D:
    """The geometry of :func:`warp_3d` alone: for each destination pixel where it lies in the source, whether it
    is a real surface, and its depth. Latent feedback moves latents along ``grid`` (:mod:`animator.latents`).

    Args:
        depth, K, dst_from_src: as for :func:`warp_3d` (``depth`` fixes the batch and frame size).
        fill: as for :func:`warp_3d`; it decides where holes sample from (the far side's depth for
            ``border``/``reflection``) and how the returned depth is completed (``telea``: inpainted).

    Returns:
        :class:`Reprojection3D` ``(grid, valid, depth)``: the grid is the one :func:`warp_3d` samples the image
        with, so ``grid_sample(image, grid)`` equals its image wherever ``valid``.
    """
    _check_geometry(depth, K, dst_from_src, fill, check_values)
    K, dst_from_src = _batched_camera(K, dst_from_src, depth)
    if fill == "telea":
        compile_mode = None
    _, valid, warped_depth, grid = compiling.call(_warp, compile_mode, None, depth, K, dst_from_src, "bilinear", fill)
    # eager, the grid is the warp's workspace, which the next warp overwrites: the caller gets a copy of its own
    return Reprojection3D(grid if compile_mode is not None else grid.clone(), valid, warped_depth)


def _batched_camera(K, dst_from_src, like: torch.Tensor):
    """K and the pose as batched matrices in the compute dtype (float64 for float64 inputs, else float32)."""
    compute_dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    K = batched_matrix(K, "K", 3, like.shape[0], like.device, compute_dtype)
    return K, batched_matrix(dst_from_src, "dst_from_src", 4, like.shape[0], like.device, compute_dtype)


def _warp(image, depth, K, dst_from_src, sampling: str, fill: str):
    """The warp on checked inputs (K, dst_from_src batched in the compute dtype): ``(warped, valid, depth, grid)``,
    ``warped`` None when ``image`` is None (the reprojection alone). Nothing here reads a value back to the host
    (on GPUs: see :func:`_dense_holes`), so it compiles to one graph."""
    z_src = depth.to(K.dtype)
    src_from_dst = invert_pose(dst_from_src)

    # 1-2. destination depth: z-buffered splat (inf where nothing landed), one-pixel cracks closed; 4. which pixels
    # show a real surface; 3. holes get the depth of the valid pixel on their far side (background): the returned
    # depth needs it, and so do the border/reflection smear and the background fill
    z_splat = _splat_depth(z_src, K, dst_from_src)  # Bx1x(H+2)x(W+2), an inf border around the image
    find_holes = _find_holes_dense if _dense_holes(depth.device) else _find_holes_sparse
    z_lookup, valid, holes = find_holes(z_src, z_splat, K, src_from_dst)
    grid = _source_grid(z_lookup, K, src_from_dst)  # BxHxWx2
    warped = None
    if image is not None:
        # border/reflection: holes show the source at the reprojection of a background depth, a smear as Deforum's
        warped = _sample(image, grid, sampling, padding="reflection" if fill == "reflection" else "border")
        if fill == "none":
            warped = holes.clear(warped)
        elif fill == "background":
            warped = holes.copy_far_side(warped)
        elif fill == "telea":
            warped = inpaint_telea(warped, valid)
        warped = warped.to(image.dtype)
    warped_depth = inpaint_telea_depth(z_lookup, valid) if fill == "telea" else z_lookup
    return warped, valid, warped_depth.to(depth.dtype), grid


def _check_inputs(image, depth, K, dst_from_src, sampling, fill, check_values: bool = True):
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        # 8-bit frames: sampled by OpenCV on the CPU (see _sample_uint8)
        if image.device.type != "cpu":
            raise AnimatorError(
                f"uint8 images are warped on the CPU only, got one on {image.device}",
                field="image",
                hint="pass a float image in [0, 1] on the GPU",
            )
        if fill == "telea":
            raise AnimatorError("fill 'telea' needs a float image", field="fill", hint="pass image.float() / 255")
    else:
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
    if check_values:
        # reductions instead of elementwise masks (NaN and inf survive a sum, NaN survives amin), read back in ONE
        # device-to-host copy: on a GPU every read-back stalls the queue of kernels
        image_total, smallest, total = torch.stack(
            [image.sum(dtype=torch.float32), depth.amin().float(), depth.sum(dtype=torch.float32)]
        ).tolist()
        if not math.isfinite(image_total):
            raise AnimatorError("contains NaN or infinite values", field="image")
        _check_depth_values(smallest, total)
    check_choice(sampling, "sampling", SAMPLING_MODES)
    _check_camera(K, dst_from_src, fill)
    return image, depth, K, dst_from_src


def _check_geometry(depth, K, dst_from_src, fill, check_values: bool = True) -> None:
    """:func:`reproject_3d`'s inputs: :func:`_check_inputs` without an image."""
    check_tensor(depth, "depth")
    check_shape(depth, "depth", "B,1,H,W")
    if check_values:
        smallest, total = torch.stack([depth.amin().float(), depth.sum(dtype=torch.float32)]).tolist()
        _check_depth_values(smallest, total)
    _check_camera(K, dst_from_src, fill)


def _check_depth_values(smallest: float, total: float) -> None:
    if math.isnan(smallest) or math.isnan(total):
        raise AnimatorError("contains NaN", field="depth", hint="check the depth model output")
    if not smallest > 0 or math.isinf(total):
        raise AnimatorError(
            f"must be positive and finite everywhere (z in scene units), min is {float(smallest):g}",
            field="depth",
            hint="map disparity to z with near > 0 before warping",
        )


def _check_camera(K, dst_from_src, fill) -> None:
    check_choice(fill, "fill", FILL_MODES)
    for name, value in (("K", K), ("dst_from_src", dst_from_src)):
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            raise AnimatorError(f"expected a floating-point tensor, got dtype {value.dtype}", field=name)


def _rays(K: torch.Tensor, height: int, width: int):
    """Normalised image coordinates of the pixel centres, kept separable: (Bx1x1xW x/z, Bx1xHx1 y/z)."""
    cols = torch.arange(width, device=K.device, dtype=K.dtype).view(1, 1, 1, width)
    rows = torch.arange(height, device=K.device, dtype=K.dtype).view(1, 1, height, 1)
    x_over_z = (cols - K[:, 0, 2].view(-1, 1, 1, 1)) / K[:, 0, 0].view(-1, 1, 1, 1)
    y_over_z = (rows - K[:, 1, 2].view(-1, 1, 1, 1)) / K[:, 1, 1].view(-1, 1, 1, 1)
    return x_over_z, y_over_z


def _move_and_project(z: torch.Tensor, K: torch.Tensor, pose: torch.Tensor, rays=None, out=None):
    """Unproject every pixel of Bx1xHxW ``z`` through ``K``, move by ``pose`` (Bx4x4), project through ``K``.

    ``rays`` overrides the unprojection (from :func:`_rays` of other intrinsics); ``out``: two Bx1xHxW tensors
    (views are fine) to write u and v to.
    Returns (u, v, z_moved), each Bx1xHxW (scratch tensors, or ``out``), u/v in pixels. The same algebra as kornia's
    ``depth_to_3d_v2`` + ``transform_points`` + ``project_points``, regrouped as ``X_i = z (R_i . ray) + t_i`` with
    the ray term built from a row and a column vector, which does a third of the full-size tensor work, and run in
    place on three buffers (the warp's speed target: every full-size temporary costs as much as the arithmetic).
    """
    x_over_z, y_over_z = rays if rays is not None else _rays(K, z.shape[-2], z.shape[-1])
    moved = []
    for i, name in enumerate("xyz"):
        r = pose[:, i, :3].reshape(-1, 3, 1, 1, 1)
        ray_term = _workspace(name, z.shape, z.dtype, z.device)
        torch.add(r[:, 0] * x_over_z + r[:, 2], r[:, 1] * y_over_z, out=ray_term)  # Bx1xHxW
        moved.append(torch.addcmul(pose[:, i, 3].view(-1, 1, 1, 1), z, ray_term, out=ray_term))
    x, y, z_moved = moved
    # points behind the camera get a huge coordinate instead of a sign flip (they never count as inside)
    inv_z = torch.clamp(z_moved, min=1e-6, out=_workspace("inv_z", z.shape, z.dtype, z.device)).reciprocal_()
    out_u, out_v = out if out is not None else (x, y)
    # (a multiply and an add, not one addcmul: addcmul(scalar, full, scalar) misses the CPU's vectorised loop and
    # takes 3x as long at 512x512; compiled, both are the same fused kernel)
    u = torch.mul(x.mul_(inv_z), K[:, 0, 0].view(-1, 1, 1, 1), out=out_u).add_(K[:, 0, 2].view(-1, 1, 1, 1))
    v = torch.mul(y.mul_(inv_z), K[:, 1, 1].view(-1, 1, 1, 1), out=out_v).add_(K[:, 1, 2].view(-1, 1, 1, 1))
    return u, v, z_moved


def _splat_depth(z_src: torch.Tensor, K: torch.Tensor, dst_from_src: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW source z -> Bx1x(H+2)x(W+2) destination z (nearest wins), inf where no point lands.

    The image sits inside a one-pixel border that stays inf: every point that misses the frame is clamped onto
    that border, so the scatter needs no mask (a masked ``where`` over every pixel costs more than the scatter),
    and :func:`_close_cracks` reads its neighbours from the same buffer without padding.
    """
    batch, _, height, width = z_src.shape
    u, v, z = _move_and_project(z_src, K, dst_from_src)
    # Points at or behind z = 1e-6 must miss too: ``ahead - z`` is > 0 exactly for them (``ahead`` is the next float
    # after 1e-6), and a huge multiple of it moves them far above the frame, onto the top border.
    ahead = _NEXT_FLOAT_AFTER_1E6[z.dtype]
    behind = torch.sub(ahead, z, out=_workspace("behind", z.shape, z.dtype, z.device)).clamp_min_(0.0)
    row = v.sub_(behind.mul_(torch.finfo(z.dtype).max / 1e8)).clamp_(-1, height).round_()
    col = u.clamp_(-1, width).round_()
    padded_width, padded_pixels = width + 2, (height + 2) * (width + 2)
    if batch * padded_pixels >= 2**24 and row.dtype != torch.float64:  # float32 holds integers exactly below 2**24
        row, col = row.double(), col.double()
    offsets = torch.arange(batch, device=z.device, dtype=row.dtype).view(batch, 1, 1, 1) * padded_pixels
    flat = row.add_(1.0).mul_(padded_width).add_(col).add_(offsets + 1.0)
    flat = _workspace("flat", flat.shape, torch.long, z.device).copy_(flat)
    buffer = _workspace("z_buffer", (batch * padded_pixels,), z.dtype, z.device).fill_(float("inf"))
    buffer.scatter_reduce_(0, flat.view(-1), z.reshape(-1), reduce="amin")
    buffer = buffer.view(batch, 1, height + 2, width + 2)
    for border in (buffer[..., 0, :], buffer[..., -1, :], buffer[..., :, 0], buffer[..., :, -1]):
        border.fill_(float("inf"))
    return buffer


# the smallest z in front of the camera, per dtype (plain floats: torch.compile traces them as constants)
_NEXT_FLOAT_AFTER_1E6 = {
    torch.float32: float(np.nextafter(np.float32(1e-6), np.float32(1.0))),
    torch.float64: float(np.nextafter(1e-6, 1.0)),
}


def _close_cracks(padded: torch.Tensor):
    """Fill one-pixel cracks in a splatted depth map (Bx1x(H+2)x(W+2) with an inf border, inf = nothing landed).

    A crack is a pixel with splatted neighbours on two opposite sides (left-right, up-down or a diagonal) that is
    either empty, or shows something farther than both: when a near surface is magnified, points from behind it
    fall through its cracks and would otherwise win those pixels. The crack takes the farther depth of the pair
    (then the nearest over pairs); the consistency check decides later whether that fill is real.

    Returns (filled z: a new Bx1xHxW tensor, the cracks' flat indices into it: a sorted long tensor).
    """
    z, candidate, is_crack = _find_cracks(padded)
    crack = is_crack.view(-1).nonzero().squeeze(1)
    z.view(-1)[crack] = candidate.view(-1)[crack]
    return z, crack


def _close_cracks_dense(padded: torch.Tensor):
    """:func:`_close_cracks` without index lists: (filled z, Bx1xHxW bool crack mask)."""
    z, candidate, is_crack = _find_cracks(padded)
    return torch.where(is_crack, candidate, z), is_crack


def _find_cracks(padded: torch.Tensor):
    """(z: a new Bx1xHxW copy of the inside of ``padded``, each pixel's crack fill candidate (a scratch buffer),
    Bx1xHxW bool: is a crack) for :func:`_close_cracks`."""
    height, width = padded.shape[-2] - 2, padded.shape[-1] - 2

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    pairs = [((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1))]
    scratch = [_workspace(name, padded[..., 1:-1, 1:-1].shape, padded.dtype, padded.device) for name in "xy"]
    candidate = torch.maximum(shifted(*pairs[0][0]), shifted(*pairs[0][1]), out=scratch[0])
    farther = scratch[1]
    for a, b in pairs[1:]:
        torch.minimum(candidate, torch.maximum(shifted(*a), shifted(*b), out=farther), out=candidate)
    z = shifted(0, 0).contiguous()
    is_crack = z > torch.mul(candidate, 1 + _DEPTH_TOLERANCE, out=farther)  # also true for empty pixels
    return z, candidate, is_crack


def _source_grid(z_dst: torch.Tensor, K: torch.Tensor, src_from_dst: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW destination z -> BxHxWx2 ``grid_sample`` grid (align_corners=False) of where each pixel is in the source.

    The pixel-to-[-1, 1] normalisation is folded into the projection's intrinsics: ``2 (u + 0.5) / W - 1``.
    """
    height, width = z_dst.shape[-2:]
    # rows scaled and shifted by numbers, not by tensors made here: on a GPU a tensor made from host numbers is an
    # upload that waits for everything queued before it
    K_grid = torch.stack([K[:, 0] * (2.0 / width), K[:, 1] * (2.0 / height), K[:, 2]], dim=1)
    shift = torch.zeros_like(K_grid)
    shift[:, 0, 2], shift[:, 1, 2] = 1.0 / width - 1.0, 1.0 / height - 1.0
    K_grid = K_grid + shift
    # unproject with the pixel intrinsics, project with the grid ones
    rays = _rays(K, height, width)
    if torch.compiler.is_compiling():  # traced code cannot write into strided views; the compiler fuses the stack
        u, v, _ = _move_and_project(z_dst, K_grid, src_from_dst, rays=rays)
        return torch.stack([u[:, 0], v[:, 0]], dim=-1)
    grid = _workspace("grid", (z_dst.shape[0], height, width, 2), z_dst.dtype, z_dst.device)
    uv = (grid[..., 0].unsqueeze(1), grid[..., 1].unsqueeze(1))  # written in place: no stacking copy
    _move_and_project(z_dst, K_grid, src_from_dst, rays=rays, out=uv)
    return grid


def _crack_fill_consistent(z_src, z_dst, crack, K, src_from_dst) -> torch.Tensor:
    """For each crack fill (flat indices into Bx1xHxW ``z_dst``): True when its reprojection lands in the source
    frame on a surface at the predicted depth.

    Crack fills are sparse, so only they are reprojected (per image: a batch is a handful of frames); a fill is
    kept when its predicted source z lies within the span of the source depths around where it lands (the one to
    four pixels nearer than 0.75 px on both axes, widened by ``_DEPTH_TOLERANCE``). A fill that bridged a depth
    edge predicts a depth the source does not show there and is dropped.
    """
    height, width = z_dst.shape[-2:]
    pixels = height * width
    result = torch.zeros(crack.shape, dtype=torch.bool, device=crack.device)
    if crack.numel() == 0:
        return result
    item = torch.div(crack, pixels, rounding_mode="floor")
    for i in range(z_dst.shape[0]):
        mine = (item == i).nonzero().squeeze(1) if z_dst.shape[0] > 1 else None
        flat = crack if mine is None else crack[mine] - i * pixels
        if flat.numel() == 0:
            continue
        z = z_dst[i].view(-1).take(flat)[None]
        agrees = _reprojection_agrees(
            z, (flat // width)[None], (flat % width)[None], z_src[i : i + 1], K[i : i + 1], src_from_dst[i : i + 1]
        )[0]
        if mine is None:
            result = agrees
        else:
            result[mine] = agrees
    return result


def _reprojection_agrees(z, row, col, z_src, K, src_from_dst) -> torch.Tensor:
    """For destination pixels (``row``, ``col``: BxN long) at depth ``z`` (BxN): True where the point lands in the
    source frame (Bx1xHxW depth ``z_src``) on a surface at its predicted depth, within the span of the one to four
    source depths around where it lands (nearer than 0.75 px on both axes), widened by ``_DEPTH_TOLERANCE``."""
    batch = z.shape[0]
    height, width = z_src.shape[-2:]
    fx, fy, cx, cy = (K[:, a, b].view(-1, 1) for a, b in ((0, 0), (1, 1), (0, 2), (1, 2)))
    point = torch.stack([(col.to(z.dtype) - cx) * (z / fx), (row.to(z.dtype) - cy) * (z / fy), z], 1)  # Bx3xN
    x, y, z_pred = (src_from_dst[:, :3, :3] @ point + src_from_dst[:, :3, 3:4]).unbind(1)  # in the source camera
    ahead = z_pred > 1e-6
    inv_z = torch.where(ahead, z_pred, torch.ones_like(z_pred)).reciprocal()
    u, v = fx * x * inv_z + cx, fy * y * inv_z + cy
    inside = ahead & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    u, v = torch.where(inside, u, torch.zeros_like(u)), torch.where(inside, v, torch.zeros_like(v))  # no NaN indices
    col0, col1 = (torch.round(u + d).clamp_(0, width - 1).long() for d in (-0.25, 0.25))
    row0, row1 = (torch.round(v + d).clamp_(0, height - 1).long() for d in (-0.25, 0.25))
    source = z_src.reshape(batch, -1)
    around = torch.stack([source.gather(1, r * width + c) for r in (row0, row1) for c in (col0, col1)])  # 4xBxN
    low, high = around.amin(0) * (1 - _DEPTH_TOLERANCE), around.amax(0) * (1 + _DEPTH_TOLERANCE)
    return inside & (z_pred >= low) & (z_pred <= high)


def _sample(image: torch.Tensor, grid: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    if image.dtype == torch.uint8:
        if mode in _CV_INTERPOLATION:
            return _sample_uint8(image, grid, mode, padding)
        # OpenCV has no Catmull-Rom: 8-bit frames take the float path and are rounded back to 8 bits
        return resample(image.float(), grid, mode=mode, padding=padding).round_().clamp_(0, 255).to(torch.uint8)
    source = image if image.dtype in (torch.float32, torch.float64) else image.float()
    out = resample(source, grid, mode=mode, padding=padding)
    return out.clamp(0.0, 1.0) if mode != "bilinear" else out


_CV_INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_CV_BORDER = {"border": cv2.BORDER_REPLICATE, "reflection": cv2.BORDER_REFLECT}


def _sample_uint8(image: torch.Tensor, grid: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    """``grid_sample`` for 8-bit BxCxHxW CPU images, by ``cv2.remap``: the result is rounded to 8 bits like the
    image (OpenCV interpolates in fixed point, within a level or two of rounding the float result), at a third of
    the cost on a small CPU. A channels-last image (a ``permute`` of HxWxC frames) is read without a copy.

    ``padding`` border = BORDER_REPLICATE and reflection = BORDER_REFLECT are grid_sample's paddings for
    ``align_corners=False`` (both mirror about the outer pixel edges).
    """
    height, width = image.shape[-2:]
    # normalised (align_corners=False) -> pixel coordinates: ((g + 1) * size - 1) / 2. Over rows of (x, y) pairs
    # (scale and offset repeated along a row): a 2-long innermost axis keeps the CPU from vectorising (10x slower)
    batch, out_height, out_width, _ = grid.shape  # the output's size (the image's scales the coordinates)
    half = grid.new_tensor([width / 2, height / 2]).repeat(out_width)
    rows = grid.reshape(batch, out_height, out_width * 2)
    maps = torch.addcmul(half - 0.5, rows, half).to(torch.float32).view(grid.shape).numpy()  # BxHxWx2
    results = []
    for item in range(image.shape[0]):
        planes = [image[item].permute(1, 2, 0)] if image.shape[1] <= 4 else [plane[..., None] for plane in image[item]]
        remapped = [
            cv2.remap(
                np.ascontiguousarray(plane.numpy()),
                maps[item],
                None,
                _CV_INTERPOLATION[mode],
                borderMode=_CV_BORDER[padding],
            )
            for plane in planes
        ]
        result = remapped[0] if len(remapped) == 1 else np.stack(remapped, axis=-1)
        results.append(result.reshape(out_height, out_width, -1))
    # BxCxHxW over HxWxC memory (channels-last): handing the frame on as HxWxC needs no transposing copy
    return torch.from_numpy(np.stack(results) if len(results) > 1 else results[0][None]).permute(0, 3, 1, 2)


def _dense_holes(device: torch.device) -> bool:
    """Hole bookkeeping as whole-image tensors on GPUs, as index lists on the CPU.

    Holes are a few percent of the pixels, so on the CPU listing them (``nonzero``) and working on the lists is
    the fast way. On a GPU each ``nonzero`` or boolean index waits for the device to finish everything queued
    (the list's length decides the next allocation), which stalls the frame loop several times per warp; there the
    same steps run as full-size, wait-free tensor operations (cummax scans instead of runs of holes). Compiled
    code takes them everywhere: index lists have data-dependent sizes, which break a compiled graph.
    """
    return device.type != "cpu" or torch.compiler.is_compiling()


def _find_holes_sparse(z_src, z_splat, K, src_from_dst):
    """(z to look the source up with, valid, holes) of a splatted destination depth, as index lists."""
    z_dst, crack = _close_cracks(z_splat)  # Bx1xHxW, flat indices of the crack fills
    # a splatted pixel is a visible surface by construction; a crack fill must agree with the source depth
    valid = z_dst < float("inf")
    valid.view(-1)[crack] = _crack_fill_consistent(z_src, z_dst, crack, K, src_from_dst)
    z_lookup, holes = SparseHoles.of(z_src, z_dst, valid)
    return z_lookup, valid, holes


def _find_holes_dense(z_src, z_splat, K, src_from_dst):
    """:func:`_find_holes_sparse` as whole-image tensors (GPUs, compiled graphs)."""
    z_dst, is_crack = _close_cracks_dense(z_splat)
    valid = torch.where(is_crack, _consistent_dense(z_src, z_dst, is_crack, K, src_from_dst), z_dst < float("inf"))
    z_lookup, holes = DenseHoles.of(z_src, z_dst, valid)
    return z_lookup, valid, holes


def _consistent_dense(z_src, z_dst, is_crack, K, src_from_dst) -> torch.Tensor:
    """:func:`_crack_fill_consistent` for every pixel at once (only its value on cracks is used)."""
    batch, _, height, width = z_dst.shape
    z = torch.where(is_crack, z_dst, torch.ones_like(z_dst)).view(batch, -1)  # finite everywhere: no NaN indices
    pixel = torch.arange(height * width, device=z.device).expand(batch, -1)
    return _reprojection_agrees(z, pixel // width, pixel % width, z_src, K, src_from_dst).view_as(is_crack)
