"""A torch.compile backend for tests: ``aot_eager`` (the graph TorchInductor would get, traced without code
generation) that also refuses what TorchInductor would compile into something slow."""

from __future__ import annotations

__all__ = ["checked_aot_eager"]

# Accumulating ops that TorchInductor turns into atomic adds, except for some dtypes: for those it falls back to
# aten's sort-based index_put accumulate, one kernel that serialises every duplicate index (an int64 histogram of a
# 512x512 frame: 23 ms on an H100, two thirds of a turbo frame).
_ACCUMULATING = {"index_add", "index_put", "index_put_", "scatter_add", "scatter_add_", "index_add_"}


def _no_slow_accumulate(graph_module, example_inputs):
    """aot_autograd's forward compiler: checks the graph, then runs it eagerly (as aot_eager does)."""
    from functorch.compile import make_boxed_func
    from torch._inductor.utils import needs_fallback_due_to_atomic_add_limitations

    for node in graph_module.graph.nodes:
        name = getattr(node.target, "__name__", "").split(".")[0]
        accumulates = name in _ACCUMULATING and (
            not name.startswith("index_put") or node.kwargs.get("accumulate", len(node.args) > 3 and node.args[3])
        )
        value = node.meta.get("val")
        if accumulates and value is not None and needs_fallback_due_to_atomic_add_limitations(value.dtype):
            raise AssertionError(
                f"{node.format_node()}: TorchInductor has no atomic add for {value.dtype} and falls "
                f"back to a slow sort-based kernel; accumulate in int32 or float32"
            )
    return make_boxed_func(graph_module.forward)


def checked_aot_eager(graph_module, example_inputs):
    """``aot_eager`` that also refuses accumulations TorchInductor would run slowly (see ``_no_slow_accumulate``)."""
    from torch._dynamo.backends.common import aot_autograd

    return aot_autograd(fw_compiler=_no_slow_accumulate)(graph_module, example_inputs)
