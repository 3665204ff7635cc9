"""OpenCV flow estimators: DIS (Kroeger et al. 2016) and Farneback.

OpenCV computes on the host from 8-bit grey images, so each call converts at the edge: the ``(B,3,H,W)`` float
tensors are turned grey on their own device, quantised to uint8, copied to the host, and the flow comes back as a
float32 tensor on the device the images came from.
"""

from __future__ import annotations

import numpy as np
import torch

from animator.devices import upload
from animator.errors import AnimatorError

__all__ = ["DISFlow", "FarnebackFlow", "check_image_pair", "to_grey_uint8"]

# ITU-R BT.601 luma, the weights cv2.cvtColor(RGB2GRAY) uses.
_LUMA = (0.299, 0.587, 0.114)


def check_image_pair(source: torch.Tensor, target: torch.Tensor) -> None:
    """Raise :class:`AnimatorError` unless both are float ``(B,3,H,W)`` tensors of the same shape."""
    for name, image in (("source", source), ("target", target)):
        if not isinstance(image, torch.Tensor):
            raise AnimatorError(f"{name} must be a torch.Tensor (B,3,H,W), got {type(image).__name__}", field=name)
        if image.ndim != 4 or image.shape[1] != 3:
            raise AnimatorError(f"{name} must have shape (B,3,H,W), got {tuple(image.shape)}", field=name)
        if not image.is_floating_point():
            raise AnimatorError(
                f"{name} must be float in [0, 1], got {image.dtype}", field=name, hint="use image.float() / 255"
            )
    if source.shape != target.shape:
        raise AnimatorError(
            f"source {tuple(source.shape)} and target {tuple(target.shape)} must have the same shape",
            field="target",
            hint="resize both frames to one size before estimating flow",
        )


def to_grey_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B,3,H,W)`` float RGB in [0,1] -> ``(B,H,W)`` uint8 grey on the host (the luma is computed on-device)."""
    weights = upload(torch.tensor(_LUMA, dtype=torch.float32), images.device).view(1, 3, 1, 1)  # without a GPU wait
    grey = (images.float().clamp(0.0, 1.0) * weights).sum(dim=1)  # BxHxW
    return (grey * 255.0).round_().to(torch.uint8).cpu().numpy()


def _flows_to_tensor(flows: list[np.ndarray], device: torch.device) -> torch.Tensor:
    stacked = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)  # Bx2xHxW from BxHxWx2
    return upload(stacked.float(), device).contiguous()


class DISFlow:
    """Dense Inverse Search flow (OpenCV), one ``cv2.DISOpticalFlow`` per estimator, created once.

    Presets ``ultrafast``, ``fast``, ``medium`` are OpenCV's. ``fine`` is not an OpenCV preset: MEDIUM refined down to
    the full-resolution scale (finest scale 0 instead of 1) with patches every 2 px instead of 3 and more gradient
    descent and variational iterations: 6-9x slower than medium on a CPU (1 s at 512x512, 3 s at 1024x576 on one
    busy core), half its end-point error, sharper at motion boundaries. For offline metrics more than the loop.
    """

    PRESETS = ("ultrafast", "fast", "medium", "fine")

    def __init__(self, preset: str = "medium") -> None:
        import cv2

        if preset not in self.PRESETS:
            raise AnimatorError(
                f"unknown DIS preset {preset!r}", field="flow", hint="use one of: " + ", ".join(self.PRESETS)
            )
        self.name = f"dis_{preset}"
        opencv_preset = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
            "fine": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[preset]
        self._dis = cv2.DISOpticalFlow_create(opencv_preset)
        if preset == "fine":
            self._dis.setFinestScale(0)
            self._dis.setPatchStride(2)
            self._dis.setGradientDescentIterations(50)
            self._dis.setVariationalRefinementIterations(10)

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` pair in [0,1] -> ``(B,2,H,W)`` float32 flow with ``source(x) ~= target(x + flow(x))``."""
        check_image_pair(source, target)
        grey_source, grey_target = to_grey_uint8(source), to_grey_uint8(target)
        flows = [self._dis.calc(s, t, None) for s, t in zip(grey_source, grey_target)]
        return _flows_to_tensor(flows, source.device)

    def __repr__(self) -> str:
        return f"DISFlow({self.name[len('dis_') :]!r})"


class FarnebackFlow:
    """Gunnar Farneback's polynomial-expansion flow (OpenCV ``calcOpticalFlowFarneback``).

    Parameters: a 5-level pyramid (motions up to ~30 px), a 15 px box window, 5 iterations per level and the
    poly_n = 5 / sigma 1.1 expansion; on camera-like motion (zoom + roll, up to ~20 px) these gave a lower end-point
    error than OpenCV's example values (0.5, 3, 15, 3, 5, 1.2) at every motion size. Smooth, but its error grows past
    ~4 px of motion (~1 px at 4-8 px, several px beyond) where DIS stays under 0.1 px: prefer ``dis_*``.
    """

    name = "farneback"

    def __init__(
        self,
        *,
        pyramid_scale: float = 0.5,
        levels: int = 5,
        window: int = 15,
        iterations: int = 5,
        poly_n: int = 5,
        poly_sigma: float = 1.1,
    ) -> None:
        self.pyramid_scale, self.levels, self.window = pyramid_scale, levels, window
        self.iterations, self.poly_n, self.poly_sigma = iterations, poly_n, poly_sigma

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` pair in [0,1] -> ``(B,2,H,W)`` float32 flow with ``source(x) ~= target(x + flow(x))``."""
        import cv2

        check_image_pair(source, target)
        grey_source, grey_target = to_grey_uint8(source), to_grey_uint8(target)
        flows = [
            cv2.calcOpticalFlowFarneback(
                s,
                t,
                None,
                self.pyramid_scale,
                self.levels,
                self.window,
                self.iterations,
                self.poly_n,
                self.poly_sigma,
                0,
            )
            for s, t in zip(grey_source, grey_target)
        ]
        return _flows_to_tensor(flows, source.device)

    def __repr__(self) -> str:
        return "FarnebackFlow()"
