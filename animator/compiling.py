"""``torch.compile`` for the frame loop's own tensor code: the 3D warp, colour matching, the depth tracker's fit.

The models are compiled as modules (:mod:`animator.backends.speed`). Between them, a frame runs a few hundred small
tensor operations of ours; on a GPU each costs a kernel launch (~5-10 us of host time) for a few microseconds of
work, so eager they take longer than their arithmetic. Compiled, they fuse into a few kernels, and with CUDA graphs
(``mode="reduce-overhead"``) replay as one launch. Each compiled function:

- is traced as ONE graph (``fullgraph=True``): a graph break raises instead of quietly running half eager, and
  tests trace every compiled function this way (with the ``aot_eager`` backend: the same graph, no code generation);
- has static shapes (``dynamic=False``): a render's frame size never changes, and CUDA graphs need them;
- must not read values back to the host (``.item()``, ``bool(t)``) or make tensors whose size depends on values.

Under CUDA graphs a function's outputs live in its graph's memory pool and the next replay overwrites them:
:func:`call` hands back copies, because the loop keeps some (a tween warps two frames before blending them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["call", "BACKEND"]

# TorchInductor generates the fused kernels; tests set "aot_eager" (the same traced graph, seconds instead of a minute)
BACKEND = "inductor"


@functools.cache
def _compiled(function: Callable, mode: str, backend: str) -> Callable:
    options = {"mode": mode} if backend == "inductor" else {}
    return torch.compile(function, fullgraph=True, dynamic=False, backend=backend, **options)


def call(function: Callable, mode: str | None, *args: Any) -> Any:
    """``function(*args)``, compiled with ``torch.compile`` mode ``mode`` (None: eager). Compiled once per function,
    mode and backend; torch.compile itself re-traces for other shapes and for other values of non-tensor arguments
    (``sampling="bicubic"``, a different fill)."""
    if mode is None:
        return function(*args)
    outputs = _compiled(function, mode, BACKEND)(*args)
    if mode == "reduce-overhead":
        outputs = torch.utils._pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, outputs)
    return outputs


def reset() -> None:
    """Forget every compiled function (tests switching :data:`BACKEND`)."""
    _compiled.cache_clear()
    torch._dynamo.reset()
