"""Choosing the device and dtype a run computes on; marking work for the profiler."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto`` takes CUDA when present, then Apple MPS, else the CPU; anything else is passed to torch."""
    import torch

    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise AnimatorError(
            f"unknown device {name!r}: {exc}", field="device", hint="use auto, cpu, cuda or cuda:N"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AnimatorError(
            f"device {name!r} asked for, but this torch has no CUDA ({torch.__version__})",
            field="device",
            hint="use --device cpu, or install a CUDA build of torch",
        )
    return device


def pick_dtype(device: torch.device, name: str | None = "auto") -> torch.dtype:
    """``auto``: float16 on CUDA/MPS (bfloat16 where the GPU supports it well is opt-in), float32 on the CPU."""
    import torch

    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if name in (None, "", "auto"):
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if name not in table:
        raise AnimatorError(f"unknown dtype {name!r}", field="dtype", hint="use one of: auto, " + ", ".join(table))
    return table[name]


def upload(tensor: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """A small host tensor (a camera matrix, a table) on ``device``, queued without waiting for the GPU.

    A plain ``.to("cuda")`` from ordinary host memory makes PyTorch wait for the copy, and so for every kernel queued
    before it: the frame loop would stop queueing work ahead. From pinned memory the copy is queued like a kernel
    (PyTorch keeps the pinned block until the copy has run)."""
    import torch

    device = tensor.device if device is None else torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def profiled(name: str):
    """A ``torch.profiler`` range called ``name`` while a profiler records (``bench_render``'s traces, where
    ``benchmarks/analyze_trace.py`` charges each GPU kernel to the range that launched it), else nothing: renders
    pay one flag check."""
    import torch

    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(name)
    return contextlib.nullcontext()
