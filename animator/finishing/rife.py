"""RIFE v4.6 (Huang et al., ECCV 2022; Practical-RIFE's v4.6 model) in-betweens from a weight file the user has.

The network (IFNet) estimates, coarse to fine in four blocks at 1/8, 1/4, 1/2 and full scale, the flows from the
in-between at time ``t`` to both frames and a blending mask; both frames are warped to ``t`` and blended by the mask.
Each block: two stride-2 convolutions, eight residual convolutions with a learned per-channel scale (``beta``), a
transposed convolution and a pixel shuffle back to the block's input scale (4 flow channels + 1 mask + 1 unused).

Written here from the architecture's description; it loads the published ``flownet.pkl`` state dict (keys
``block0.conv0.0.0.weight`` ..., with or without DataParallel's ``module.`` prefix) from a path the user gives.
No weights are downloaded. Frames are padded to a multiple of 64 pixels (the coarsest block works at 1/32 of the
frame after its convolutions) with replicated edges, and cropped back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from animator.errors import AnimatorError

__all__ = ["IFNet", "RifeTweener", "load_ifnet"]

_SCALES = (8, 4, 2, 1)
_PAD = 64


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, True))


class _ResConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class _IFBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, channels // 2, 2), _conv(channels // 2, channels, 2))
        self.convblock = nn.Sequential(*(_ResConv(channels) for _ in range(8)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(channels, 4 * 6, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B,C,H,W) at full size -> (flow (B,4,H,W) in pixels, mask logit (B,1,H,W)), computed at 1/scale."""
        x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5]


class IFNet(nn.Module):
    """RIFE v4.6's flow network: ``(img0, img1, t)`` -> the frame at ``t``, all ``(B,3,H,W)`` in [0, 1], ``H`` and
    ``W`` multiples of 64."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = _IFBlock(7, 192)  # img0, img1, t
        self.block1 = _IFBlock(8 + 4, 128)  # warped img0, warped img1, t, mask; + the flow so far
        self.block2 = _IFBlock(8 + 4, 96)
        self.block3 = _IFBlock(8 + 4, 64)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        from animator.geometry.flow import warp_by_flow

        time = torch.full_like(img0[:, :1], float(t))
        flow = mask = None
        warped0, warped1 = img0, img1
        for block, scale in zip((self.block0, self.block1, self.block2, self.block3), _SCALES):
            if flow is None:
                flow, mask = block(torch.cat((img0, img1, time), 1), None, scale)
            else:
                step, mask_step = block(torch.cat((warped0, warped1, time, mask), 1), flow, scale)
                flow, mask = flow + step, mask + mask_step
            # flow[:, :2] leads from the in-between to img0, flow[:, 2:] to img1 (backward warps)
            warped0 = warp_by_flow(img0, flow[:, :2], border="replicate")
            warped1 = warp_by_flow(img1, flow[:, 2:4], border="replicate")
        weight = torch.sigmoid(mask)
        return warped0 * weight + warped1 * (1.0 - weight)


def load_ifnet(path: str | os.PathLike, *, device=None) -> IFNet:
    """An :class:`IFNet` with the weights of a RIFE v4.6 ``flownet.pkl`` (a torch state dict).

    Raises:
        AnimatorError: no such file, not a torch state dict, or weights of another network or RIFE version.
    """
    path = Path(path)
    if not path.is_file():
        raise AnimatorError(f"no such RIFE weight file: {path}", field="--model", hint="give RIFE v4.6's flownet.pkl")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises many types for a file that is not a state dict
        raise AnimatorError(
            f"{path.name} is not a torch state dict ({type(exc).__name__})", file=path, field="--model"
        ) from None
    if not isinstance(state, dict):
        raise AnimatorError(f"{path.name} holds a {type(state).__name__}, not a state dict", file=path, field="--model")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    net = IFNet()
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or wrong:
        example = (missing or wrong)[0]
        raise AnimatorError(
            f"{path.name} is not RIFE v4.6's IFNet: {len(missing)} weights missing, {len(wrong)} of another shape "
            f"(e.g. {example})",
            file=path,
            field="--model",
            hint="give the flownet.pkl of RIFE v4.6 (Practical-RIFE's train_log), or use --method flow",
        )
    net.load_state_dict({key: state[key] for key in expected})
    return net.eval().to(device or "cpu")


class RifeTweener:
    """In-betweens by RIFE v4.6 (``pair(a, b)`` then ``at(t)``, 8-bit frames like the other methods)."""

    name = "rife"

    def __init__(self, path: str | os.PathLike, *, device=None) -> None:
        from animator.devices import pick_device

        self.device = pick_device("auto") if device is None else torch.device(device)
        self.net = load_ifnet(path, device=self.device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.net.to(self.dtype)

    def _tensor(self, frame: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].to(self.device, self.dtype) / 255.0
        height, width = image.shape[-2:]
        pad = (0, -width % _PAD, 0, -height % _PAD)
        return F.pad(image, pad, mode="replicate") if any(pad) else image

    def pair(self, a: np.ndarray, b: np.ndarray, index: int = 0) -> Callable[[float], np.ndarray]:
        height, width = a.shape[:2]
        image_a, image_b = self._tensor(a), self._tensor(b)

        def at(t: float) -> np.ndarray:
            with torch.inference_mode():
                made = self.net(image_a, image_b, t)[..., :height, :width]
            return (made[0].float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

        return at
