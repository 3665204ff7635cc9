"""Run an image-to-image network over a large frame in overlapping tiles, with feathered seams.

Any torch module that maps ``(B,3,h,w) -> (B,3,s*h,s*w)`` works (an upscaler from spandrel, a small conv net, an
identity for ``s = 1``). The frame is cut into tiles of ``tile`` input pixels that overlap their neighbours by
``overlap`` pixels; each tile's output is weighted by a ramp that is 0 over the quarter of the overlap nearest its
edge (where the network lacks context), rises across the middle half and is 1 beyond, so every output pixel is a
weighted mean of tiles that saw at least ``overlap / 4`` pixels of context around it. A network whose receptive
field reaches no further than that gives exactly its untiled output; a wider one (ESRGAN's) differs by a small,
smoothly feathered amount, never a visible seam. Only one tile's input and output are on the device at a time.

Example:
    >>> import torch
    >>> net = torch.nn.Upsample(scale_factor=2, mode="nearest")
    >>> image = torch.rand(1, 3, 40, 50)
    >>> torch.allclose(run_tiled(net, image, scale=2, tile=24, overlap=8), net(image))
    True
"""

from __future__ import annotations

import torch

from animator.errors import AnimatorError

__all__ = ["run_tiled", "tile_starts"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap`` shared pixels; the
    last tile ends at the edge. ``tile_starts(100, 40, 10)`` -> ``[0, 30, 60]``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, scale: int, overlap: int, feather_start: bool, feather_end: bool) -> torch.Tensor:
    """``(length * scale,)`` weights along one axis of a tile's output (see the module docstring)."""
    position = (torch.arange(length * scale, dtype=torch.float32) + 0.5) / scale  # in input pixels from the start
    weight = torch.ones_like(position)
    quarter, half = overlap / 4.0, max(overlap / 2.0, 1e-6)
    if feather_start:
        weight = torch.minimum(weight, ((position - quarter) / half).clamp(0.0, 1.0))
    if feather_end:
        weight = torch.minimum(weight, ((length - position - quarter) / half).clamp(0.0, 1.0))
    return weight


def run_tiled(
    model: torch.nn.Module,
    image: torch.Tensor,
    *,
    scale: int,
    tile: int = 512,
    overlap: int = 32,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``model(image)`` computed tile by tile.

    Args:
        model: ``(B,3,h,w) -> (B,3,scale*h,scale*w)``.
        image: ``(1,3,H,W)`` float in [0, 1] (on any device).
        scale: the model's whole-number scale.
        tile: tile size in input pixels (>= 2 * overlap + 8).
        overlap: pixels shared by neighbouring tiles (a multiple of 4 keeps the ramps on whole pixels).
        device, dtype: where and in which precision the model runs (default: ``image``'s device, float32).

    Returns:
        ``(1,3,scale*H,scale*W)`` float32 on ``image``'s device.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise AnimatorError(f"image must be (1,3,H,W), got {tuple(image.shape)}", field="image")
    if overlap < 0 or tile < 2 * overlap + 8:
        raise AnimatorError(
            f"tile {tile} and overlap {overlap}: the tile must be at least 2 x overlap + 8 pixels",
            field="--tile",
            hint="e.g. --tile 512 with the default overlap 32",
        )
    device = torch.device(device) if device is not None else image.device
    dtype = dtype or torch.float32
    _, channels, height, width = image.shape
    out = torch.zeros(1, channels, height * scale, width * scale, dtype=torch.float32, device=image.device)
    total = torch.zeros(1, 1, height * scale, width * scale, dtype=torch.float32, device=image.device)
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for top in rows:
        h = min(tile, height)
        ramp_y = _ramp(h, scale, overlap, top > 0, top + h < height).to(image.device)
        for left in cols:
            w = min(tile, width)
            ramp_x = _ramp(w, scale, overlap, left > 0, left + w < width).to(image.device)
            piece = image[:, :, top : top + h, left : left + w].to(device=device, dtype=dtype)
            with torch.inference_mode():
                result = model(piece)
            if result.shape[-2:] != (h * scale, w * scale):
                raise AnimatorError(
                    f"the model turned a {w}x{h} tile into {result.shape[-1]}x{result.shape[-2]}, "
                    f"not {w * scale}x{h * scale} (scale {scale})",
                    hint="the model's scale differs from the one given, or it is not an upscaler",
                )
            weight = (ramp_y[:, None] * ramp_x[None, :])[None, None]  # 1x1xhxw in output pixels
            y0, x0 = top * scale, left * scale
            region = (slice(None), slice(None), slice(y0, y0 + h * scale), slice(x0, x0 + w * scale))
            out[region] += result.to(device=image.device, dtype=torch.float32) * weight
            total[region] += weight
    return out / total.clamp_min(1e-12)
