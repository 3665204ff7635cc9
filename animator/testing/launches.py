"""Counting the tensor operations the frame loop runs one by one: on a GPU, one kernel launch each.

A one-step frame is launch-bound on a GPU: each eager tensor operation costs ~5-10 us of host time (Python,
dispatch, the launch) whatever its size, so a few hundred small ones between the models cost milliseconds while the
GPU idles. Compiled regions replay as one CUDA graph, so what is left to count is what runs *between* them. The
operations are the same on the CPU, so they can be counted here, where there is no GPU:

- every ATen operation dispatched inside the ``with`` block counts once, except views and other metadata-only
  operations (``view``, ``select``, ``permute``, ``detach``...), which launch nothing;
- a module passed to :meth:`LaunchCount.opaque` (the UNet, the VAE's networks, the depth model: compiled with CUDA
  graphs, each is one replay) counts once per call, its insides not at all;
- :meth:`LaunchCount.graphs_as_one` makes every :func:`animator.compiling.call` with a compile mode run eagerly
  (no compiler needed) but count once, as its CUDA graph would.

``inside_s`` adds up the seconds spent inside opaque modules and compiled regions, counted or not (outside the
``with`` block too): a frame's wall time less that is the host's own work between them (Python and eager glue), a
cost a GPU frame pays on the host whatever the GPU's speed.

Operations whose tensors all have at most :data:`SCALAR_SIZE` elements (a camera matrix, a sampler's sigma, a
comparison of two numbers) are counted apart, in ``scalars``: the loop keeps such values on the host, where they
launch nothing on a GPU (a few microseconds of Python each all the same).

    >>> import torch
    >>> with LaunchCount() as launches:
    ...     _ = (torch.ones(64) * 2).view(8, 8)
    ...     _ = torch.tensor(0.5) ** 2
    >>> launches.count, sum(launches.scalars.values())  # ones, mul (a view launches nothing); pow, on a number
    (2, 1)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["LaunchCount", "SCALAR_SIZE"]

# Not views by their schema, but metadata-only all the same.
_METADATA_ONLY = {"lift_fresh", "_unsafe_view", "alias", "detach", "_reshape_alias", "as_strided", "t"}
# Tensors this small are host-side numbers in the frame loop: a 4x4 camera pose at most.
SCALAR_SIZE = 16


class LaunchCount(TorchDispatchMode):
    """``count``: operations counted so far; ``by_name``: a Counter of them by ATen name
    (``"MODEL:UNet2DConditionModel"``
    and ``"GRAPH:_warp"`` for opaque modules and compiled regions); ``scalars``: the small-tensor arithmetic counted
    apart. ``label``, when set, is prefixed to the names (the frame loop's stage, say); :meth:`take` returns and
    clears both Counters."""

    def __init__(self) -> None:
        super().__init__()
        self.by_name: Counter[str] = Counter()
        self.scalars: Counter[str] = Counter()
        self.label = ""
        self._opaque_depth = 0
        self._hooks: list = []
        self._active = 0  # opaque modules and compiled regions run outside the block too: count only inside
        self.inside_s = 0.0

    def __enter__(self):
        self._active += 1
        return super().__enter__()

    def __exit__(self, *exc):
        self._active -= 1
        return super().__exit__(*exc)

    @property
    def count(self) -> int:
        return sum(self.by_name.values())

    def take(self) -> tuple[Counter[str], Counter[str]]:
        """``(by_name, scalars)`` so far, both cleared."""
        taken = self.by_name, self.scalars
        self.by_name, self.scalars = Counter(), Counter()
        return taken

    def _add(self, name: str) -> None:
        self.by_name[f"{self.label}{name}"] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self._opaque_depth:
            name = func.overloadpacket.__name__
            if not (func.is_view or name in _METADATA_ONLY):
                tensors = [leaf for leaf in tree_leaves((args, kwargs, out)) if isinstance(leaf, torch.Tensor)]
                if tensors and all(tensor.numel() <= SCALAR_SIZE for tensor in tensors):
                    self.scalars[f"{self.label}{name}"] += 1
                else:
                    self._add(name)
        return out

    # ----------------------------------------------------------------------------------------- opaque parts

    @contextmanager
    def _one(self, name: str) -> Iterator[None]:
        outermost = not self._opaque_depth
        if self._active and outermost:
            self._add(name)
        self._opaque_depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._opaque_depth -= 1
            if outermost:
                self.inside_s += time.perf_counter() - start

    def opaque(self, *modules: torch.nn.Module) -> LaunchCount:
        """Counts each call of each module once (hooks stay until :meth:`release`)."""
        for module in modules:
            entered: list = []

            def before(module, inputs, entered=entered):
                context = self._one(f"MODEL:{type(module).__name__}")
                context.__enter__()
                entered.append(context)

            def after(module, inputs, outputs, entered=entered):
                entered.pop().__exit__(None, None, None)

            self._hooks += [
                module.register_forward_pre_hook(before),
                module.register_forward_hook(after, always_call=True),
            ]  # also when forward raises
        return self

    def release(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    @contextmanager
    def graphs_as_one(self) -> Iterator[None]:
        """While active, compiled regions (:func:`animator.compiling.call` with a mode) run eagerly and count once."""
        from animator import compiling

        compile_call = compiling.call

        def call_as_one_graph(function, mode, *args):
            if mode is None:
                return function(*args)
            with self._one(f"GRAPH:{function.__name__}"):
                return function(*args)

        compiling.call = call_as_one_graph
        try:
            yield
        finally:
            compiling.call = compile_call
