"""torchvision RAFT (Teed & Deng 2020) as a flow estimator: an optional extra (``pip install animator[raft]``).

torchvision is not in the default install (from PyPI it pulls a CUDA torch of several GB; see DESIGN.md), and no
weights are downloaded at run time: they come from a file the user names or from torchvision's usual place in the
local torch hub cache (``~/.cache/torch/hub/checkpoints/``), where ``torchvision`` itself would have saved them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from animator.backends.flow.opencv import check_image_pair
from animator.errors import AnimatorError

__all__ = ["RAFTFlow"]

# RAFT's encoders downsample by 8: inputs are padded to a multiple of it and the flow is cropped back.
_STRIDE = 8


def _import_raft_builders():
    try:
        from torchvision.models import optical_flow
    except ImportError as exc:  # torchvision missing, or a build that does not match this torch
        raise AnimatorError(
            f"the RAFT flow estimators need torchvision, which could not be imported ({exc})",
            field="flow",
            hint="install the optional extra with `pip install 'animator[raft]'` (a torchvision built for your torch), "
            "or use flow: dis_medium, which needs nothing extra",
        ) from exc
    return optical_flow


class RAFTFlow:
    """RAFT small or large from torchvision, weights from ``weights`` or the local torch hub cache.

    Args:
        size: ``small`` or ``large``.
        device: where the network runs; ``None`` follows the images (moved once on first use).
        weights: a ``.pth`` state dict; ``None`` looks for torchvision's default file in ``torch.hub.get_dir()``.
        num_flow_updates: RAFT's recurrent refinement steps (12 is torchvision's default).
    """

    def __init__(
        self, size: str = "small", *, device=None, weights: str | os.PathLike | None = None, num_flow_updates: int = 12
    ) -> None:
        if size not in ("small", "large"):
            raise AnimatorError(f"unknown RAFT size {size!r}", field="flow", hint="use raft_small or raft_large")
        optical_flow = _import_raft_builders()
        self.name = f"raft_{size}"
        self.num_flow_updates = int(num_flow_updates)
        builder = optical_flow.raft_small if size == "small" else optical_flow.raft_large
        weights_enum = optical_flow.Raft_Small_Weights if size == "small" else optical_flow.Raft_Large_Weights
        default_weights = weights_enum.DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(default_weights.url).name
        path = Path(weights) if weights is not None else cached
        if not path.is_file():
            raise AnimatorError(
                f"no RAFT {size} weights at {path}",
                file=path,
                field="flow",
                hint=f"download {default_weights.url} on a machine with internet and put it at that path "
                "(or pass its path as weights=...)",
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = builder(weights=None, progress=False)
            model.load_state_dict(state)
        except Exception as exc:  # corrupt file, or the other RAFT size's weights
            raise AnimatorError(
                f"could not load RAFT {size} weights from {path}: {exc}",
                file=path,
                field="flow",
                hint=f"use the file torchvision publishes for raft_{size}: {default_weights.url}",
            ) from exc
        self._model = model.eval().requires_grad_(False)
        self._device = torch.device(device) if device is not None else None
        if self._device is not None:
            self._model.to(self._device)

    @torch.inference_mode()
    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` pair in [0,1] -> ``(B,2,H,W)`` float32 flow with ``source(x) ~= target(x + flow(x))``."""
        check_image_pair(source, target)
        device = self._device or source.device
        if next(self._model.parameters()).device != device:
            self._model.to(device)
        height, width = source.shape[-2:]
        pad_h, pad_w = (-height) % _STRIDE, (-width) % _STRIDE
        # RAFT was trained on images normalised to [-1, 1]; replicate padding keeps the border texture plausible.
        pair = [
            F.pad(img.to(device).float() * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
            for img in (source, target)
        ]
        flow = self._model(pair[0], pair[1], num_flow_updates=self.num_flow_updates)[-1]  # Bx2x(H+pad)x(W+pad)
        return flow[..., :height, :width].float().to(source.device).contiguous()

    def __repr__(self) -> str:
        return f"RAFTFlow({self.name[len('raft_') :]!r})"
