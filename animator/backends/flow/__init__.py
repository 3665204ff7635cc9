"""Optical-flow estimators behind one small Protocol, chosen by name.

Every estimator takes a pair of images and returns the flow that warps the second onto the first:

    flow = estimator(source, target)    # (B,3,H,W) x 2 in [0,1] -> (B,2,H,W) float32 pixels, same device
    source(x) ~= target(x + flow(x))    # channel 0 = dx, 1 = dy

so ``animator.geometry.flow.warp_by_flow(target, flow)`` rebuilds ``source``.

Names (``load_flow_estimator(name)``):

- ``dis_ultrafast``: OpenCV DIS, ULTRAFAST preset: real-time previews
- ``dis_fast``: OpenCV DIS, FAST preset
- ``dis_medium``: OpenCV DIS, MEDIUM preset (default: ~0.1 px error on textured frames, ~0.17 s at 512x512 on a CPU)
- ``dis_fine``: OpenCV DIS, MEDIUM refined down to full resolution with denser patches (6-9x slower, finer)
- ``farneback``: OpenCV Farneback polynomial expansion (smooth flows, weaker on large motion)
- ``raft_small``: torchvision RAFT small (optional extra ``animator[raft]``, weights needed, GPU recommended)
- ``raft_large``: torchvision RAFT large (same)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from animator.choices import FLOW_ESTIMATORS
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch

__all__ = ["FlowEstimator", "load_flow_estimator", "FLOW_ESTIMATORS"]


@runtime_checkable
class FlowEstimator(Protocol):
    """``(B,3,H,W)`` source and target in ``[0, 1]`` -> flow ``(B,2,H,W)`` float32 pixels on the input's device,
    with ``source(x) ~= target(x + flow(x))``."""

    name: str

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


def load_flow_estimator(
    name: str = "dis_medium", *, device=None, weights: str | os.PathLike | None = None
) -> FlowEstimator:
    """Build the flow estimator called ``name`` (see the module docstring for the list).

    Args:
        name: one of :data:`FLOW_ESTIMATORS`.
        device: where RAFT runs (``None`` = the device of the images it is given). OpenCV estimators always compute
            on the host and hand the flow back on the images' device.
        weights: RAFT only: a ``.pth`` state dict. Default: torchvision's file in the local torch hub cache.

    Raises:
        AnimatorError: unknown name; RAFT without torchvision or without its weights.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key.startswith("dis_") or key == "farneback":
        from animator.backends.flow.opencv import DISFlow, FarnebackFlow

        if key == "farneback":
            return FarnebackFlow()
        if key[len("dis_") :] in DISFlow.PRESETS:
            return DISFlow(key[len("dis_") :])
    if key in ("raft_small", "raft_large"):
        from animator.backends.flow.raft import RAFTFlow

        return RAFTFlow(key[len("raft_") :], device=device, weights=weights)
    import difflib

    close = difflib.get_close_matches(key, FLOW_ESTIMATORS, n=1)
    raise AnimatorError(
        f"unknown flow estimator {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
        field="flow",
        hint="use one of: " + ", ".join(FLOW_ESTIMATORS),
    )
