"""Counting the places where the frame loop reads a tensor's value back to the host.

On a GPU every read-back (``.item()``, ``.tolist()``, ``bool(tensor)``, ``float(tensor)``, ``.cpu()``,
``torch.equal``, ``nonzero``, boolean-mask indexing) waits until every kernel queued before it has finished: the host stops
queueing work ahead and the GPU idles while it catches up. A frame loop that should run at the speed of its models
has to keep these few and deliberate. They are the same calls on the CPU, so tests count them on the CPU, where
there is no GPU to ask.

    >>> import torch
    >>> with HostReads() as reads:
    ...     _ = float(torch.ones(3).sum())
    >>> reads.count
    1
"""

from __future__ import annotations

import traceback
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["HostReads"]

_READS = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__float__, torch.Tensor.__int__,
    torch.Tensor.__index__, torch.Tensor.cpu, torch.Tensor.nonzero, torch.nonzero,
    torch.Tensor.masked_select, torch.masked_select, torch.equal, torch.Tensor.equal,
}


class HostReads(TorchFunctionMode):
    """Records every read-back inside the ``with`` block, by the first frame of the caller's code outside torch.

    ``count``: how many; ``where``: a Counter of ``"file:line function"`` strings, for telling which call it was.
    A boolean-mask index (``x[mask]``) is counted too: its result's size depends on the values.
    """

    def __init__(self) -> None:
        super().__init__()
        self.where: Counter[str] = Counter()

    @property
    def count(self) -> int:
        return sum(self.where.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _READS or (func is torch.Tensor.__getitem__ and _has_bool_mask(args[1])):
            self.where[_caller()] += 1
        return func(*args, **kwargs)


def _has_bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, torch.Tensor) and item.dtype == torch.bool for item in items)


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace("\\", "/")
        if "/torch/" not in path and "/host_reads.py" not in path:
            return f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
    return "?"
