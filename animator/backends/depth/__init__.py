"""Depth backends: image -> relative inverse depth (disparity), and the one mapping from disparity to z.

>>> from animator.backends.depth import load_depth_estimator, DepthTracker
>>> estimator = load_depth_estimator("offline")  # or "depth-anything/Depth-Anything-V2-Small-hf", a folder, a .pt
>>> tracker = DepthTracker(near=0.5, far=50.0)
>>> import torch
>>> depth = tracker(estimator(torch.rand(1, 3, 64, 96)))   # Bx1xHxW positive z
>>> depth.shape
torch.Size([1, 1, 64, 96])

``spec`` for :func:`load_depth_estimator`:

- ``"offline"``: the built-in prior (no weights; see :mod:`animator.backends.depth.offline`). A learned model is better.
- a Hugging Face id: ``depth-anything/Depth-Anything-V2-Small-hf`` (or -Base-hf, -Large-hf,
  V1 ``LiheYoung/depth-anything-small-hf``),
  ``Intel/dpt-large``, ``Intel/dpt-hybrid-midas``, ``Intel/dpt-beit-large-512``, ``Intel/dpt-swinv2-tiny-256`` ...
  Loaded from the local cache (``hf download ID`` once); offline and missing -> an error saying that.
- short names: ``depth-anything-v2-small`` / ``-base`` / ``-large``, ``dpt-large``, ``dpt-hybrid``, ``dpt-beit-large``.
- a folder written by ``save_pretrained`` (config.json + model.safetensors, optionally preprocessor_config.json).
- an original MiDaS ``.pt`` file (``dpt_large_384.pt``, ``dpt_base_384.pt``, Deforum's ``dpt_large-midas-2f21e586.pt``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from animator.backends.depth.mapping import DepthTracker, disparity_percentiles, disparity_to_depth
from animator.backends.depth.offline import OfflineDepthEstimator
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "DepthEstimator",
    "DepthTracker",
    "OfflineDepthEstimator",
    "disparity_percentiles",
    "disparity_to_depth",
    "load_depth_estimator",
    "MODEL_ALIASES",
    "OFFLINE_NOTE",
    "offline_note",
]

# Short names a user can type instead of a hub id.
MODEL_ALIASES = {
    "depth-anything-v2-small": "depth-anything/Depth-Anything-V2-Small-hf",
    "depth-anything-v2-base": "depth-anything/Depth-Anything-V2-Base-hf",
    "depth-anything-v2-large": "depth-anything/Depth-Anything-V2-Large-hf",
    "depth-anything-small": "LiheYoung/depth-anything-small-hf",
    "dpt-large": "Intel/dpt-large",
    "dpt-hybrid": "Intel/dpt-hybrid-midas",
    "dpt-beit-large": "Intel/dpt-beit-large-512",
}


def offline_note(option: str = "--depth") -> str:
    """The one-line note a CLI or notebook shows when the offline prior is in use (``option``: the flag to name)."""
    return (
        "depth: using the built-in offline prior (no weights). A learned model is much better: "
        f"`hf download depth-anything/Depth-Anything-V2-Small-hf` once, then {option} "
        "depth-anything/Depth-Anything-V2-Small-hf"
    )


OFFLINE_NOTE = offline_note()
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")
_TIMM_ONLY = ("midas_v21_small", "midas_v21", "midas_v21_small_256", "midas_v21_384")


@runtime_checkable
class DepthEstimator(Protocol):
    """Image -> relative inverse depth.

    ``__call__(image)``: ``# Bx3xHxW`` float RGB in [0, 1] on any device -> ``# Bx1xHxW`` float32 disparity
    (larger = nearer, unknown scale and shift) at the input size, on the same device. Any aspect ratio.
    ``describe()``: ``{"name", "class", "source", "library versions", ...}`` for run records.
    """

    name: str

    def __call__(self, image: Tensor) -> Tensor: ...

    def describe(self) -> dict: ...


def load_depth_estimator(
    spec: str = "offline",
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    resolution: int | None = None,
    batch_size: int = 4,
) -> DepthEstimator:
    """Load a depth estimator once per run (see the module docstring for ``spec``).

    Args:
        spec: ``"offline"``, a hub id or short name, a ``save_pretrained`` folder, or a MiDaS ``.pt`` file.
        device: ``"auto"``/None (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"`` ...
        dtype: ``"auto"``/None (float16 on GPUs, float32 on the CPU), ``"float32"``, ``"bfloat16"``, or a torch dtype.
        resolution: model input size (Depth Anything: short side, rounded to multiples of 14); None: the model's own.
        batch_size: frames per forward pass.

    Raises:
        AnimatorError: unknown name, missing file or folder, model not in the cache while offline, damaged weights.
            Nothing is kept half-loaded: the estimator exists only once everything has loaded.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise AnimatorError(
            f"expected a depth model name or path, got {spec!r}",
            field="depth",
            hint="use offline, a Hugging Face id, a folder or a MiDaS .pt file",
        )
    spec = spec.strip()
    if spec.lower() in ("offline", "default", "prior"):
        return OfflineDepthEstimator()
    if spec.lower() in _TIMM_ONLY:
        raise AnimatorError(
            f"{spec!r} (MiDaS v2.1) needs timm, which is not part of animator's install",
            field="depth",
            hint="use depth-anything/Depth-Anything-V2-Small-hf (as small and better) or Intel/dpt-large",
        )
    spec = MODEL_ALIASES.get(spec.lower(), spec)

    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return _load_transformers(
            path, name=spec, is_folder=True, device=device, dtype=dtype, resolution=resolution, batch_size=batch_size
        )
    if path.is_file():
        return _load_checkpoint_file(
            path, name=spec, device=device, dtype=dtype, batch_size=batch_size, resolution=resolution
        )
    if _looks_like_path(spec):
        raise AnimatorError(
            "no such file or folder",
            file=spec,
            field="depth",
            hint="give an existing model folder, a MiDaS .pt file, a Hugging Face id or offline",
        )
    if _HUB_ID.fullmatch(spec):
        return _load_transformers(
            spec, name=spec, is_folder=False, device=device, dtype=dtype, resolution=resolution, batch_size=batch_size
        )
    raise AnimatorError(
        f"unknown depth model {spec!r}",
        field="depth",
        hint="use offline, a Hugging Face id such as depth-anything/Depth-Anything-V2-Small-hf or Intel/dpt-large, "
        "a short name (" + ", ".join(MODEL_ALIASES) + "), a save_pretrained folder, or a MiDaS .pt file",
    )


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~", "\\"))
        or spec.lower().endswith(_CHECKPOINT_SUFFIXES)
        or spec.count("/") > 1
        or (os.sep != "/" and os.sep in spec)
    )


def _device_and_dtype(device, dtype) -> tuple[torch.device, torch.dtype]:
    import torch

    from animator.devices import pick_device, pick_dtype

    device = device if isinstance(device, torch.device) else pick_device(device)
    dtype = dtype if isinstance(dtype, torch.dtype) else pick_dtype(device, dtype)
    if device.type == "cpu" and dtype != torch.float32:
        dtype = torch.float32  # half precision convolutions on the CPU are slow or missing: float32 there
    return device, dtype


def _place(model, device, dtype):
    import torch

    model = model.to(device=device, dtype=dtype)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def _load_transformers(location, *, name, is_folder, device, dtype, resolution, batch_size):
    from animator.backends import hub
    from animator.backends.depth.transformers_backend import (
        TransformersDepthEstimator,
        load_pretrained_model,
        output_is_metric_depth,
        preprocess_for,
        read_preprocessor_config,
    )

    device, dtype = _device_and_dtype(device, dtype)

    def load(local_files_only: bool):
        model = load_pretrained_model(location, is_folder=False, local_files_only=local_files_only)
        return model, read_preprocessor_config(location, is_folder=False, download=not local_files_only)

    if is_folder:
        model = load_pretrained_model(location, is_folder=True)
        preprocessor = read_preprocessor_config(location, is_folder=True)
    else:
        model, preprocessor = hub.load_by_id(str(location), "config.json", load, what="depth model", field="depth")
    preprocess = preprocess_for(model.config, preprocessor, resolution)
    return TransformersDepthEstimator(
        _place(model, device, dtype),
        name=name,
        source=str(Path(location).resolve()) if is_folder else str(location),
        preprocess=preprocess,
        output_is_depth=output_is_metric_depth(model.config),
        batch_size=batch_size,
    )


def _load_checkpoint_file(path: Path, *, name, device, dtype, batch_size, resolution):
    from animator.backends.depth.midas_checkpoint import load_midas_checkpoint
    from animator.backends.depth.transformers_backend import TransformersDepthEstimator, preprocess_for

    if path.suffix.lower() not in _CHECKPOINT_SUFFIXES:
        raise AnimatorError(
            f"unsupported weight file type {path.suffix!r}",
            file=path,
            field="depth",
            hint="expected an original MiDaS checkpoint (.pt) or a save_pretrained folder",
        )
    device, dtype = _device_and_dtype(device, dtype)
    model = load_midas_checkpoint(path)
    preprocess = preprocess_for(model.config, None, resolution)  # MiDaS DPT: mean = std = 0.5, square input
    return TransformersDepthEstimator(
        _place(model, device, dtype),
        name=name,
        source=str(path.resolve()),
        preprocess=preprocess,
        batch_size=batch_size,
    )
