"""Scratch tensors reused from call to call, for temporaries that live only inside one call of the frame loop.

On a CPU a fresh multi-megabyte tensor is handed out by the C allocator as new pages, and faulting those in on
every frame costs about as much as the arithmetic on them. :func:`scratch` keeps one buffer per (name, dtype,
device) per thread, grown to the largest size asked for. A buffer is never handed to callers outside the module
that asked for it: the next call overwrites it. Names carry their module (``"color.linear"``) so modules never
share a buffer by accident.
"""

from __future__ import annotations

import math
import threading

import torch

__all__ = ["scratch"]

_BUFFERS = threading.local()


def scratch(name: str, shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised tensor of ``shape``, reused by later calls with the same name, dtype and device."""
    if torch.compiler.is_compiling():  # compiled code plans its own memory, and CUDA graphs need no global state
        return torch.empty(shape, dtype=dtype, device=device)
    buffers = getattr(_BUFFERS, "by_key", None)
    if buffers is None:
        buffers = _BUFFERS.by_key = {}
    numel = math.prod(shape)  # (np.prod costs more than the lookup itself)
    key = (name, dtype, device)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[key] = torch.empty(numel, dtype=dtype, device=device)
    return buffer[:numel].view(shape)
