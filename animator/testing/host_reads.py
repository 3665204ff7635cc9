"""Counting the places where the frame loop reads a tensor's value back to the host.

On a GPU every read-back (``.item()``, ``.tolist()``, ``bool(tensor)``, ``float(tensor)``, ``.cpu()``,
``torch.equal``, ``nonzero``, boolean-mask indexing) waits until every kernel queued before it has finished: the host
stops
queueing work ahead and the GPU idles while it catches up. A frame loop that should run at the speed of its models
has to keep these few and deliberate. They are the same calls on the CPU, so tests count them on the CPU, where
there is no GPU to ask.

A tensor made from host numbers straight on a device (``torch.tensor(values, device=d)``, ``torch.as_tensor``,
``x.new_tensor``) is counted too: on a GPU it is a copy from ordinary host memory, which waits for the queue the
same way. (Loop code makes such tensors on the host and hands them to :func:`animator.devices.upload`, which copies
from pinned memory without waiting; made without a device, they are not counted.)

    >>> import torch
    >>> with HostReads() as reads:
    ...     _ = float(torch.ones(3).sum())
    >>> reads.count
    1
    >>> with HostReads() as reads:
    ...     _ = torch.tensor([1.0, 2.0], device="cpu")  # on a GPU: an upload that waits
    ...     _ = torch.tensor([1.0, 2.0])                 # on the host: free
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
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
    torch.Tensor.cpu,
    torch.Tensor.nonzero,
    torch.nonzero,
    torch.Tensor.masked_select,
    torch.masked_select,
    torch.equal,
    torch.Tensor.equal,
}


# make a tensor from host data (new_tensor: on its own tensor's device, which in the loop is the render's)
_MAKERS = {torch.tensor, torch.as_tensor, torch.Tensor.new_tensor}


class HostReads(TorchFunctionMode):
    """Records every read-back inside the ``with`` block, by the first frame of the caller's code outside torch.

    ``count``: how many; ``where``: a Counter of ``"file:line function"`` strings, for telling which call it was.
    A boolean-mask index (``x[mask]``) is counted too: its result's size depends on the values; so is a tensor made
    from host data with an explicit ``device`` (an upload that waits, on a GPU).
    """

    def __init__(self) -> None:
        super().__init__()
        self.where: Counter[str] = Counter()

    @property
    def count(self) -> int:
        return sum(self.where.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func in _READS
            or (func is torch.Tensor.__getitem__ and _has_bool_mask(args[1]))
            or (func in _MAKERS and _made_on_a_device(func, args, kwargs))
        ):
            self.where[_caller()] += 1
        return func(*args, **kwargs)


def _made_on_a_device(func, args: tuple, kwargs: dict) -> bool:
    if func is torch.Tensor.new_tensor:
        return True
    data = args[0] if args else kwargs.get("data")
    device = kwargs.get("device", args[2] if len(args) > 2 else None)  # as_tensor(data, dtype, device)
    return device is not None and not isinstance(data, torch.Tensor)


def _has_bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, torch.Tensor) and item.dtype == torch.bool for item in items)


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace("\\", "/")
        if "/torch/" not in path and "/host_reads.py" not in path:
            return f"{'/'.join(path.rsplit('/', 2)[-2:])}:{frame.lineno} {frame.name}"  # folder/file
    return "?"
