"""A compiled ControlNet (``backends.compile``) traces once while its weight and guidance window change on every
frame, and the UNet it feeds keeps one graph too; the compiled frames are the eager ones. Traced with torch.compile's
``eager`` backend: the same graphs, guards and recompiles as TorchInductor, without minutes of code generation."""

from __future__ import annotations

import pytest
import torch

from animator.backends.controlnet import ControlInput, ControlSettings, load_unit

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
# (weight, start, end) per frame: every value changes, and frame 2 leaves steps without any unit (zero residuals)
FRAMES = [(1.0, 0.0, 1.0), (0.4, 0.25, 1.0), (0.8, 0.0, 0.5), (0.0, 0.0, 1.0)]


def _frames(denoiser, units, frames=FRAMES) -> list[torch.Tensor]:
    image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    control_image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    made = []
    for weight, start, end in frames:
        control = [ControlInput(unit, control_image, weight=weight, start=start, end=end) for unit in units]
        made.append(
            denoiser.img2img(
                image,
                "a lighthouse",
                strength=0.5,
                guidance=6.0,
                steps=8,
                generator=torch.Generator().manual_seed(1),
                control=control,
            )  # fmt: skip
        )
    return made


def test_changing_schedules_never_trace_again(tiny_model, tiny_controlnet, monkeypatch):
    """Two units (balanced: the CFG pair; control: the conditional half) and the UNet: three graphs, all traced on
    the first frame; the next frames change weight, start and end and trace nothing. (Each unit is its own graph of
    the same code, so torch counts the second unit as a recompile: the check counts graphs, not recompiles.)"""
    import torch._dynamo.utils

    from animator.backends import speed
    from animator.backends.denoise import load_denoiser

    denoiser = load_denoiser(str(tiny_model), device="cpu")
    units = [
        load_unit(0, str(tiny_controlnet), ControlSettings(), denoiser),
        load_unit(1, str(tiny_controlnet), ControlSettings(mode="control"), denoiser),
    ]
    eager = _frames(denoiser, units)

    traced_module = speed.speed_up_module
    monkeypatch.setattr(
        speed, "speed_up_module", lambda module, **kwargs: traced_module(module, **{**kwargs, "backend": "eager"})
    )
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert speed.speed_up_controlnets(units, compile="cudagraphs") == [{"compile": "default"}] * 2  # (on the CPU)
    speed.speed_up_module(denoiser.pipe.unet, device=torch.device("cpu"), compile="default")
    try:
        compiled = _frames(denoiser, units, FRAMES[:1])
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 3
        compiled += _frames(denoiser, units, FRAMES[1:])
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 3
        assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    finally:
        torch._dynamo.reset()
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    assert units[0].info["speed"] == {"compile": "default"}
