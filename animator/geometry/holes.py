"""Hole bookkeeping of the 3D warp (:mod:`animator.geometry.warp3d`): which destination pixels show no source
surface, the valid pixel on each hole's far side, and the fills that read them.

A hole's far side is the nearest valid pixel left, right, above or below it with the largest depth: revealed pixels
are, by construction, behind what covered them, so the background continues into the hole. Holes are kept two ways
with the same results:

- :class:`SparseHoles`: flat index lists into Bx1xHxW (the CPU path: holes are a few percent of the pixels, and the
  nearest valid pixel along a line is the one just past its run of holes);
- :class:`DenseHoles`: Bx1xHxW masks and per-pixel far-side indices from running maxima / minima (GPUs and compiled
  graphs: no ``nonzero``, so nothing waits for the device and no size depends on the data).

Both give the depth a hole looks the source up with (its far side's), clear holes (``fill: none``) and copy the far
side into them (``fill: background``). :func:`inpaint_telea` and :func:`inpaint_telea_depth` fill holes with OpenCV's
Telea inpainting (``fill: telea``), per image on the host.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["SparseHoles", "DenseHoles", "inpaint_telea", "inpaint_telea_depth"]


class SparseHoles:
    """Holes as flat index lists into Bx1xHxW (the CPU path; see ``warp3d._dense_holes``)."""

    def __init__(self, holes: torch.Tensor, far_side) -> None:
        self.holes, self.far_side = holes, far_side

    @classmethod
    def of(cls, z_src: torch.Tensor, z_dst: torch.Tensor, valid: torch.Tensor):
        """(z to look the source up with, the holes) of a destination depth ``z_dst`` (Bx1xHxW, a new tensor of the
        caller's: its holes are filled in place) whose ``valid`` pixels show a real surface."""
        holes = (~valid).view(-1).nonzero().squeeze(1)  # flat indices into Bx1xHxW
        far_side = _far_side_index(z_dst, holes)
        z_lookup = z_dst
        z_lookup.view(-1)[holes] = _far_side_depth(z_dst, z_src, holes, far_side)
        return z_lookup, cls(holes, far_side)

    def clear(self, values: torch.Tensor) -> torch.Tensor:
        _set_pixels(values, self.holes, 0.0)
        return values

    def copy_far_side(self, values: torch.Tensor) -> torch.Tensor:
        _fill_from_far_side(values, self.holes, self.far_side)
        return values


class DenseHoles:
    """Holes as Bx1xHxW masks and per-pixel far-side indices (the GPU path; see ``warp3d._dense_holes``). Gives the
    sparse path's results: the same rules, evaluated on every pixel and kept where they apply."""

    def __init__(self, valid: torch.Tensor, far_index: torch.Tensor, found: torch.Tensor) -> None:
        self.valid, self.far_index, self.found = valid, far_index, found

    @classmethod
    def of(cls, z_src: torch.Tensor, z_dst: torch.Tensor, valid: torch.Tensor):
        """:meth:`SparseHoles.of` as whole-image tensors (``z_dst`` is not written)."""
        holes = ~valid
        far_index, far_depth, found = _far_side_dense(z_dst, valid)
        fallback = z_src.flatten(1).amax(1).view(-1, 1, 1, 1).expand_as(z_dst)  # no valid pixel: the farthest source z
        z_lookup = torch.where(holes, torch.where(found, far_depth, fallback), z_dst)
        return z_lookup, cls(valid, far_index, found)

    def clear(self, values: torch.Tensor) -> torch.Tensor:
        return torch.where(self.valid, values, torch.zeros((), dtype=values.dtype, device=values.device))

    def copy_far_side(self, values: torch.Tensor) -> torch.Tensor:
        batch, channels = values.shape[:2]
        index = self.far_index.view(batch, 1, -1).expand(batch, channels, -1)
        far = values.reshape(batch, channels, -1).gather(2, index).view_as(values)
        return torch.where(~self.valid & self.found, far, values)


def _runs_neighbours(keys: torch.Tensor, line: int):
    """For sorted flat indices ``keys`` of invalid pixels in lines of length ``line``: the index of the pixel just
    before and just after each one's run of consecutive invalid pixels (both valid by construction), -1 where the
    run touches the start or the end of its line."""
    count = keys.numel()
    starts_run = torch.ones(count, dtype=torch.bool, device=keys.device)
    starts_run[1:] = (keys[1:] != keys[:-1] + 1) | (keys[1:] % line == 0)
    ends_run = torch.ones_like(starts_run)
    ends_run[:-1] = starts_run[1:]
    run = starts_run.cumsum(0) - 1
    first, last = keys[starts_run][run], keys[ends_run][run]
    before = torch.where(first % line != 0, first - 1, -1)
    after = torch.where(last % line != line - 1, last + 1, -1)
    return before, after


def _far_side_index(z_dst: torch.Tensor, holes: torch.Tensor):
    """For every hole (flat index into Bx1xHxW) the flat index of the nearest valid pixel left/right/above/below
    with the largest depth (ties: in that order).

    Holes are few, so this works on their index list: the nearest valid pixel before a hole along a line is the one
    just before its run of holes. Columns are handled as rows by ordering the holes column by column.

    Returns (long index like ``holes``, bool found like ``holes``).
    """
    batch, _, height, width = z_dst.shape
    pixels = height * width
    left, right = _runs_neighbours(holes, width)
    item, within = holes // pixels, holes % pixels
    column_key = item * pixels + (within % width) * height + within // width
    order = torch.argsort(column_key)
    up_key, down_key = _runs_neighbours(column_key[order], height)
    up, down = torch.empty_like(holes), torch.empty_like(holes)
    for key, out in ((up_key, up), (down_key, down)):
        key_item, key_within = key // pixels, key % pixels
        flat = key_item * pixels + (key_within % height) * width + key_within // height
        out[order] = torch.where(key >= 0, flat, -1)
    z_flat = z_dst.view(-1)
    best_depth = torch.full(holes.shape, -float("inf"), dtype=z_dst.dtype, device=z_dst.device)
    best_index = torch.zeros_like(holes)
    for index in (left, right, up, down):
        exists = index >= 0
        candidate_depth = z_flat[index.clamp(min=0)]
        better = exists & (candidate_depth > best_depth)
        best_depth = torch.where(better, candidate_depth, best_depth)
        best_index = torch.where(better, index, best_index)
    return best_index, best_depth > -float("inf")


def _channel_offsets(flat: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Flat pixel indices into Bx1xHxW -> storage offsets of all their channels in BxCxHxW ``values``, which may be
    contiguous or channels-last (the 8-bit path keeps OpenCV's HxWxC memory)."""
    height, width = values.shape[-2:]
    pixels = height * width
    stride_b, stride_c, stride_h, stride_w = values.stride()
    within = flat % pixels
    base = (flat // pixels) * stride_b + (within // width) * stride_h + (within % width) * stride_w
    return (base[None] + torch.arange(values.shape[1], device=flat.device)[:, None] * stride_c).view(-1)


def _storage(values: torch.Tensor) -> torch.Tensor:
    """A 1-D view of a dense tensor's memory (contiguous or channels-last), for :func:`_channel_offsets`."""
    if not (values.is_contiguous() or values.is_contiguous(memory_format=torch.channels_last)):
        raise ValueError("expected a contiguous or channels-last tensor")  # internal: warp_3d makes its own
    return values.as_strided((values.numel(),), (1,))


def _set_pixels(values: torch.Tensor, holes: torch.Tensor, value: float) -> None:
    """Sets every channel of the ``holes`` (flat indices into Bx1xHxW) of BxCxHxW ``values``, in place."""
    _storage(values)[_channel_offsets(holes, values)] = value


def _fill_from_far_side(values: torch.Tensor, holes: torch.Tensor, far_side) -> None:
    """Holes of BxCxHxW ``values`` copy their far-side valid pixel (``far_side`` from :func:`_far_side_index`), in
    place; where none exists they stay as they are."""
    index, found = far_side
    flat = _storage(values)
    flat[_channel_offsets(holes[found], values)] = flat[_channel_offsets(index[found], values)]


def _far_side_dense(z_dst: torch.Tensor, valid: torch.Tensor):
    """:func:`_far_side_index` for every pixel: (flat index within its image of the chosen neighbour, its depth,
    found), each Bx1xHxW; the nearest valid pixel before / after each pixel along rows and columns comes from
    running maxima / minima of the valid pixels' coordinates."""
    batch, _, height, width = z_dst.shape
    cols = torch.arange(width, device=z_dst.device).view(1, 1, 1, width).expand_as(valid)
    rows = torch.arange(height, device=z_dst.device).view(1, 1, height, 1).expand_as(valid)
    left = torch.where(valid, cols, -1).cummax(3).values
    right = torch.where(valid, cols, width).flip(3).cummin(3).values.flip(3)
    up = torch.where(valid, rows, -1).cummax(2).values
    down = torch.where(valid, rows, height).flip(2).cummin(2).values.flip(2)
    z_flat = z_dst.reshape(batch, -1)
    best_depth = torch.full_like(z_dst, -float("inf"))
    best_index = torch.zeros_like(cols)
    for exists, index in (
        (left >= 0, rows * width + left),
        (right < width, rows * width + right),
        (up >= 0, up * width + cols),
        (down < height, down * width + cols),
    ):
        index = torch.where(exists, index, 0)
        depth = z_flat.gather(1, index.reshape(batch, -1)).view_as(z_dst)
        better = exists & (depth > best_depth)
        best_depth = torch.where(better, depth, best_depth)
        best_index = torch.where(better, index, best_index)
    return best_index, best_depth, best_depth > -float("inf")


def _far_side_depth(z_dst: torch.Tensor, z_src: torch.Tensor, holes: torch.Tensor, far_side) -> torch.Tensor:
    """The depth of each hole's far-side pixel; an image with no valid pixel takes its source's largest depth."""
    index, found = far_side
    fallback = z_src.flatten(1).amax(1)[holes // (z_dst.shape[-2] * z_dst.shape[-1])]
    return torch.where(found, z_dst.view(-1)[index], fallback)


def inpaint_telea(image: torch.Tensor, valid: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """OpenCV Telea inpainting of the invalid pixels, per image on the host (8-bit, as cv2.inpaint needs)."""
    out = []
    for picture, mask in zip(image, valid):
        rgb = (picture.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        holes = (~mask[0]).cpu().numpy().astype(np.uint8)
        if rgb.shape[2] != 3:  # cv2.inpaint takes 1 or 3 channels
            filled = np.stack(
                [
                    cv2.inpaint(np.ascontiguousarray(rgb[..., c]), holes, radius, cv2.INPAINT_TELEA)
                    for c in range(rgb.shape[2])
                ],
                -1,
            )
        else:
            filled = cv2.inpaint(rgb, holes, radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled.astype(np.float32) / 255.0).permute(2, 0, 1))
    inpainted = torch.stack(out).to(device=image.device, dtype=image.dtype)
    return torch.where(valid, image, inpainted)


def inpaint_telea_depth(depth: torch.Tensor, valid: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """OpenCV Telea inpainting of the invalid depths, per image on the host (float32, kept positive)."""

    out = []
    for z, mask in zip(depth, valid):
        holes = (~mask[0]).cpu().numpy().astype(np.uint8)
        filled = cv2.inpaint(z[0].detach().float().cpu().numpy(), holes, radius, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled)[None])
    inpainted = torch.stack(out).to(device=depth.device, dtype=depth.dtype)
    # inpainting can only blend valid depths, but keep the promise of a positive depth regardless
    return torch.where(valid | (inpainted <= 0), depth, inpainted)
