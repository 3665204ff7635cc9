"""Entry checks shared by the tensor functions (geometry, colour, flow): shapes, dtypes and values, each error naming
the argument."""

from __future__ import annotations

import numpy as np
import torch

from animator.devices import upload
from animator.errors import AnimatorError


def check_tensor(value, name: str, layout: str = "") -> torch.Tensor:
    """A floating-point tensor (``layout``, such as ``"(B,3,H,W)"``, only shapes the message)."""
    if not isinstance(value, torch.Tensor):
        shaped = f" {layout}" if layout else ""
        raise AnimatorError(f"{name} must be a torch.Tensor{shaped}, got {type(value).__name__}", field=name)
    if not value.is_floating_point():
        raise AnimatorError(
            f"{name} must be a floating-point tensor, got dtype {value.dtype}",
            field=name,
            hint="convert uint8 images with image.float() / 255 (images are float in [0, 1])",
        )
    return value


def check_bchw(value, name: str, channels: int | None = 3, min_pixels: int = 1) -> torch.Tensor:
    """A float batch ``(B,C,H,W)`` (images, flow, depth) with ``channels`` channels (``None``: any) and at least
    ``min_pixels`` pixels."""
    layout = f"(B,{'C' if channels is None else channels},H,W)"
    check_tensor(value, name, layout)
    if value.ndim != 4 or (channels is not None and value.shape[1] != channels):
        raise AnimatorError(f"{name} must have shape {layout}, got {tuple(value.shape)}", field=name)
    if value.shape[2] * value.shape[3] < min_pixels:
        raise AnimatorError(f"{name} must have at least {min_pixels} pixels, got {tuple(value.shape)}", field=name)
    return value


def check_shape(value: torch.Tensor, name: str, pattern: str) -> None:
    """``pattern`` such as ``"B,3,H,W"``: letters are free sizes, digits must match."""
    parts = pattern.split(",")
    ok = value.ndim == len(parts) and all(not p.isdigit() or value.shape[i] == int(p) for i, p in enumerate(parts))
    if not ok:
        raise AnimatorError(f"{name} must have shape ({pattern}), got {tuple(value.shape)}", field=name)


def check_finite(value: torch.Tensor, name: str) -> None:
    if not torch.isfinite(value).all():
        raise AnimatorError(f"{name} contains NaN or infinite values", field=name)


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AnimatorError(f"unknown value {value!r}", field=name, hint="use one of: " + ", ".join(choices))


def batched_matrix(value, name: str, size: int, batch: int, device, dtype) -> torch.Tensor:
    """A ``(size,size)`` or ``(B,size,size)`` matrix as ``(B,size,size)`` on ``device``/``dtype``, checked."""
    if not isinstance(value, torch.Tensor):
        raise AnimatorError(f"{name} must be a torch.Tensor, got {type(value).__name__}", field=name)
    if value.ndim == 2:
        value = value[None]
    if value.ndim != 3 or value.shape[-2:] != (size, size) or value.shape[0] not in (1, batch):
        raise AnimatorError(
            f"expected shape ({size},{size}) or ({batch},{size},{size}), got {tuple(value.shape)}", field=name
        )
    if value.device.type == "cpu":  # camera matrices are made on the host: check them there, upload without waiting
        if not np.isfinite(value.detach().numpy()).all():
            raise AnimatorError(f"{name} contains NaN or infinite values", field=name)
        return upload(value.to(dtype), device).expand(batch, size, size)
    check_finite(value, name)
    return value.to(device=device, dtype=dtype).expand(batch, size, size)
