"""Motion-compensated in-betweens from optical flow in both directions (the ``flow`` interpolation method).

For a pair of frames ``a`` and ``b`` and a time ``t`` in (0, 1):

1. Estimate the flow both ways, ``fw`` (``a(x) ~= b(x + fw(x))``) and ``bw`` (``b(x) ~= a(x + bw(x))``), on grey
   copies shrunk to ``flow_size`` pixels on their longer side: a flow field is smooth, so half resolution costs
   little accuracy and a quarter of the time.
2. Forward-backward consistency (Sundaram et al. 2010) says which pixels of ``a`` are still visible in ``b`` and
   the other way round.
3. A pixel ``y`` of the in-between was at ``y - t fw(y)`` in ``a`` and is at ``y - (1 - t) bw(y)`` in ``b``. Each
   side is weighted by its distance in time (``1 - t`` and ``t``), by whether its surface is visible in both frames,
   and by whether its claim is self-consistent (the surface found there really moves to ``y``), so a pixel that one
   frame cannot see comes from the other. Steps 2-3 run at the flow's resolution; the two warps and the blend of
   the full-size frames (OpenCV ``remap`` and ``blendLinear`` on 8-bit images) are the only full-size work.

This is :func:`animator.geometry.flow.flow_tween`'s rule (the cadence tweens of the render), rewritten for speed on
8-bit host frames: the finishing pass runs once per output frame of a whole video.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from animator.errors import AnimatorError

__all__ = ["FlowTweener", "FLOW_PRESETS"]

FLOW_PRESETS = ("ultrafast", "fast", "medium")  # OpenCV DIS, called directly on 8-bit grey frames
# any other estimator of animator.backends.flow (dis_fine, farneback, raft_small, raft_large) by its name
OTHER_ESTIMATORS = ("dis_fine", "farneback", "raft_small", "raft_large")
# a surface seen by only one frame still fills a pixel that no surface seen by both claims (as in flow_tween)
_OCCLUDED_WEIGHT = 1e-3
# consistency tolerances in squared flow-resolution pixels (as animator.geometry.flow.consistency_mask)
_ALPHA, _BETA = 0.01, 0.5


def _grid(height: int, width: int) -> np.ndarray:
    """``(H, W, 2)`` float32 pixel coordinates (x, y): an OpenCV map that reads every pixel where it is."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.ascontiguousarray(np.stack([xs, ys], axis=-1))


def _remap(image: np.ndarray, grid: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``image(x + offset(x))``, bilinear, edges replicated; ``offset`` ``(H, W, 2)`` in pixels."""
    import cv2

    return cv2.remap(image, grid + offset, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _squared(flow: np.ndarray) -> np.ndarray:
    """``|flow|^2`` per pixel, ``(H, W)`` (einsum: numpy's sum over a last axis of two is several times slower)."""
    return np.einsum("hwc,hwc->hw", flow, flow)


class FlowTweener:
    """Makes in-between frames of consecutive frame pairs along their optical flow.

    Args:
        preset: OpenCV DIS preset, ``ultrafast``, ``fast`` or ``medium`` (see ``bench_finish.py`` for the
            quality and speed of each), or another estimator of :mod:`animator.backends.flow` by name
            (``dis_fine``, ``farneback``, ``raft_small``, ``raft_large``: RAFT needs the ``raft`` extra and a GPU
            to be quick).
        device: where a RAFT estimator runs.
        flow_size: the longer side, in pixels, the flow is estimated at (frames no larger are used as they are).

    Use: ``at = tweener.pair(a, b)`` once per pair (estimates the flows), then ``at(t)`` for every in-between.
    """

    name = "flow"

    def __init__(self, preset: str = "fast", flow_size: int = 256, *, device=None) -> None:
        import cv2

        if preset not in FLOW_PRESETS + OTHER_ESTIMATORS:
            raise AnimatorError(
                f"unknown flow estimator {preset!r}",
                field="--flow",
                hint="use one of: " + ", ".join(FLOW_PRESETS + OTHER_ESTIMATORS),
            )
        if flow_size < 16:
            raise AnimatorError(f"the flow size must be >= 16 pixels, got {flow_size}", field="--flow-size")
        self.preset, self.flow_size = preset, int(flow_size)
        self._grids: dict[tuple[int, int], np.ndarray] = {}
        if preset in OTHER_ESTIMATORS:
            from animator.backends.flow import load_flow_estimator

            self._estimator, self._dis = load_flow_estimator(preset, device=device), None
            self._device = device or "cpu"
            return
        self._estimator = None
        self._dis = cv2.DISOpticalFlow_create(
            {
                "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
            }[preset]
        )

    def _grid(self, height: int, width: int) -> np.ndarray:
        if (height, width) not in self._grids:
            self._grids[(height, width)] = _grid(height, width)
        return self._grids[(height, width)]

    def _small_grey(self, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if grey.shape != (size[1], size[0]):
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def _flows(self, a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if self._dis is not None:
            grey_a, grey_b = self._small_grey(a, size), self._small_grey(b, size)
            return self._dis.calc(grey_a, grey_b, None), self._dis.calc(grey_b, grey_a, None)
        import cv2
        import torch

        def tensor(frame: np.ndarray) -> torch.Tensor:
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if frame.shape[:2] != size[::-1] else frame
            return torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].float().div(255.0).to(self._device)

        small_a, small_b = tensor(a), tensor(b)
        with torch.inference_mode():
            both = torch.cat([self._estimator(small_a, small_b), self._estimator(small_b, small_a)])
        fw, bw = both.permute(0, 2, 3, 1).float().cpu().numpy()
        return np.ascontiguousarray(fw), np.ascontiguousarray(bw)

    def _visible(self, fw: np.ndarray, bw: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """``(h, w)`` float32, 1 where the pixel of the first frame comes back from the second (not occluded)."""
        back = _remap(bw, grid, fw)
        round_trip = _squared(fw + back)
        tolerance = _ALPHA * (_squared(fw) + _squared(back)) + _BETA
        height, width = fw.shape[:2]
        target = grid + fw
        tx, ty = target[..., 0], target[..., 1]
        inside = (tx >= -0.5) & (tx <= width - 0.5) & (ty >= -0.5) & (ty <= height - 0.5)
        return ((round_trip <= tolerance) & inside).astype(np.float32)

    def pair(self, a: np.ndarray, b: np.ndarray, index: int = 0) -> Callable[[float], np.ndarray]:
        """Estimates the flows between ``a`` and ``b`` (``(H, W, 3)`` uint8) and returns ``at(t)`` -> the in-between
        frame at ``t`` in (0, 1), ``(H, W, 3)`` uint8. ``index`` (of ``a`` in its sequence) is not needed here."""
        import cv2

        height, width = a.shape[:2]
        scale = min(1.0, self.flow_size / max(height, width))
        size = (max(8, round(width * scale)), max(8, round(height * scale)))  # (w, h) for OpenCV
        fw, bw = self._flows(a, b, size)  # h x w x 2 each, a(x) ~= b(x + fw), b(x) ~= a(x + bw)
        grid = self._grid(size[1], size[0])
        visible_a, visible_b = self._visible(fw, bw, grid), self._visible(bw, fw, grid)
        full_grid = self._grid(height, width)
        to_full = np.float32(width / size[0]), np.float32(height / size[1])
        # a miss of one full-size pixel counts as one, whatever the flow's resolution
        miss_scale = np.float32(1.0 / (to_full[0] * to_full[1]))

        def at(t: float) -> np.ndarray:
            to_a, to_b = -t * fw, -(1.0 - t) * bw  # h x w x 2, from the in-between to each frame
            claim_a = np.exp(-0.5 * miss_scale * _squared(to_a + t * _remap(fw, grid, to_a)))
            claim_b = np.exp(-0.5 * miss_scale * _squared(to_b + (1.0 - t) * _remap(bw, grid, to_b)))
            seen_a = _remap(visible_a, grid, to_a) + _OCCLUDED_WEIGHT
            seen_b = _remap(visible_b, grid, to_b) + _OCCLUDED_WEIGHT
            weight_a = (1.0 - t) * claim_a * seen_a
            weight_b = t * claim_b * seen_b
            total = weight_a + weight_b
            # where neither side has a claim (both flows wrong), the plain cross-fade
            neither = total < 1e-4 * _OCCLUDED_WEIGHT
            share_a = np.where(neither, np.float32(1.0 - t), weight_a / np.maximum(total, 1e-30)).astype(np.float32)
            # to full size: flows in full-size pixels, the share resampled smoothly
            if size != (width, height):
                to_a = cv2.resize(to_a, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(to_full)
                to_b = cv2.resize(to_b, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(to_full)
                share_a = cv2.resize(share_a, (width, height), interpolation=cv2.INTER_LINEAR)
            from_a = _remap(a, full_grid, to_a)
            from_b = _remap(b, full_grid, to_b)
            return cv2.blendLinear(from_a, from_b, share_a, np.float32(1.0) - share_a)

        return at
