"""Sub-pixel upsampling: diffusers' Upsample2D computed as one 2x2 convolution at the input's resolution.

The truth is the definition itself (nearest 2x upsampling, then the 3x3 convolution, written here with
``torch.nn.functional``), compared in float64 so that only a wrong formula can fail; the whole diffusion model is
then checked through the render's own loading path.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.upsampling import Upsample2D
from torch.utils.flop_counter import FlopCounterMode

from animator.backends.subpixel import (
    phase_kernels,
    subpixel_upsample_conv,
    use_subpixel_upsampling,
    uses_subpixel_upsampling,
)


def _definition(layer: Upsample2D, x: torch.Tensor) -> torch.Tensor:
    conv = layer.conv if layer.name == "conv" else layer.Conv2d_0
    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), conv.weight, conv.bias, padding=1)


def _switched(layer):
    switched = copy.deepcopy(layer)
    assert use_subpixel_upsampling(switched) == 1
    return switched


@pytest.mark.parametrize(
    "channels, out_channels, height, width, bias",
    [
        (8, 8, 16, 16, True),
        (6, 10, 7, 11, True),  # odd, non-square, more output channels
        (5, 3, 1, 2, False),  # one-pixel rows (every tap at a border), no bias
    ],
)
def test_the_sub_pixel_convolution_equals_upsampling_then_convolution(channels, out_channels, height, width, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, out_channels, 3, padding=1, bias=bias).double()
    x = torch.randn(3, channels, height, width, dtype=torch.float64)
    out = subpixel_upsample_conv(x, conv.weight, conv.bias)
    expected = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    assert out.shape == (3, out_channels, 2 * height, 2 * width)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.fixture
def sub_pixel_calls(monkeypatch):
    """How often the layers took the sub-pixel path."""
    from animator.backends import subpixel

    calls = []
    original = subpixel.subpixel_upsample_conv
    monkeypatch.setattr(
        subpixel,
        "subpixel_upsample_conv",
        lambda *args, **kwargs: calls.append(args[0].shape) or original(*args, **kwargs),
    )
    return calls


@pytest.mark.parametrize("height, width, name", [(8, 8, "conv"), (9, 13, "Conv2d_0")])
def test_switched_layers_equal_upsampling_then_convolution(height, width, name, sub_pixel_calls):
    torch.manual_seed(0)
    layer = Upsample2D(6, use_conv=True, out_channels=10, name=name).double()
    x = torch.randn(2, 6, height, width, dtype=torch.float64)
    expected = _definition(layer, x)
    torch.testing.assert_close(_switched(layer)(x), expected, rtol=0, atol=1e-12)
    # an explicit output size of exactly 2x is the same layer
    torch.testing.assert_close(_switched(layer)(x, output_size=(2 * height, 2 * width)), expected, rtol=0, atol=1e-12)
    assert len(sub_pixel_calls) == 2


def test_inputs_smaller_than_8x8_keep_diffusers_path(sub_pixel_calls):
    torch.manual_seed(0)
    layer = Upsample2D(4, use_conv=True).double()
    for shape in ((1, 4, 4, 4), (1, 4, 7, 30)):
        x = torch.randn(*shape, dtype=torch.float64)
        torch.testing.assert_close(_switched(layer)(x), layer(x), rtol=0, atol=0)
    assert sub_pixel_calls == []
    _switched(layer)(torch.randn(1, 4, 8, 30, dtype=torch.float64))
    assert len(sub_pixel_calls) == 1


def test_phase_kernels_sum_the_taps_that_read_one_input_pixel():
    weight = torch.arange(9.0).reshape(1, 1, 3, 3)  # rows (0 1 2), (3 4 5), (6 7 8)
    kernels = phase_kernels(weight).reshape(2, 2, 2, 2)  # (row phase, column phase, 2x2)
    # even rows and columns read (i-1, i): taps (w0, w1 + w2) along each axis
    assert kernels[0, 0].tolist() == [[0.0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]]
    # odd rows, even columns: rows (w0 + w1, w2), columns (w0, w1 + w2)
    assert kernels[1, 0].tolist() == [[0 + 3, 1 + 2 + 4 + 5], [6, 7 + 8]]
    assert kernels[1, 1].tolist() == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]]


def test_half_precision_stays_within_rounding_and_keeps_channels_last():
    torch.manual_seed(1)
    layer = Upsample2D(16, use_conv=True)
    x = torch.randn(1, 16, 12, 12)
    expected = _definition(layer.double(), x.double())
    layer = layer.to(torch.bfloat16)
    out = _switched(layer)(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    reference = layer(x.to(torch.bfloat16))  # diffusers' own bfloat16 path, for scale
    ours_error = (out.double() - expected).abs().max()
    theirs_error = (reference.double() - expected).abs().max()
    assert ours_error <= 2 * theirs_error, (ours_error, theirs_error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_half_precision_matches_the_definition():
    torch.manual_seed(4)
    layer = Upsample2D(64, use_conv=True).double()
    x = torch.randn(2, 64, 32, 32, dtype=torch.float64)
    expected = _definition(layer, x)
    fast = _switched(layer).to("cuda", torch.float16).to(memory_format=torch.channels_last)
    out = fast(x.to("cuda", torch.float16).contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    reference = layer.to("cuda", torch.float16)(x.to("cuda", torch.float16))  # diffusers' own half path
    ours_error = (out.double().cpu() - expected).abs().max()
    theirs_error = (reference.double().cpu() - expected).abs().max()
    assert ours_error <= 2 * theirs_error + 1e-3, (ours_error, theirs_error)


def test_other_layers_keep_diffusers_path():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8, 9, dtype=torch.float64)

    # an output size that is not 2x (a UNet's upsample_size for odd latents)
    layer = Upsample2D(4, use_conv=True).double()
    switched = _switched(layer)
    torch.testing.assert_close(switched(x, output_size=(17, 19)), layer(x, output_size=(17, 19)), rtol=0, atol=0)

    # a transposed convolution and a 1x1 kernel are left to diffusers
    for other in (Upsample2D(4, use_conv_transpose=True), Upsample2D(4, use_conv=True, kernel_size=1, padding=0)):
        other = other.double()
        torch.testing.assert_close(_switched(other)(x), other(x), rtol=0, atol=0)

    # a convolution wrapped by an adapter (PEFT's LoRA layers subclass or wrap Conv2d) runs its own forward
    class Adapted(torch.nn.Conv2d):
        calls = 0

        def forward(self, input):
            Adapted.calls += 1
            return super().forward(input) + 1.0

    adapted = Upsample2D(4, use_conv=True).double()
    plain = adapted.conv
    adapted.conv = Adapted(4, 4, 3, padding=1).double()
    adapted.conv.load_state_dict(plain.state_dict())
    out = _switched(adapted)(x)
    assert Adapted.calls == 1
    torch.testing.assert_close(out, _definition(adapted, x) + 1.0, rtol=0, atol=1e-12)

    # hooks on the convolution (accelerate's sequential CPU offload moves its weights in one) must run
    hooked = _switched(Upsample2D(4, use_conv=True).double())
    seen = []
    hooked.conv.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    torch.testing.assert_close(hooked(x), _definition(hooked, x), rtol=0, atol=1e-12)
    assert seen == [(2, 4, 16, 18)]


def test_kept_phase_kernels_follow_weight_changes():
    """Eager calls keep the summed kernels; weights changed in place or replaced must still be used."""
    torch.manual_seed(5)
    layer = _switched(Upsample2D(4, use_conv=True).double())
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    with torch.inference_mode():
        layer(x)  # as a render calls it
    kept = layer.__dict__["_animator_phase_kernels"][1]
    with torch.no_grad():  # no autograd: the kept kernels are used from here on
        layer(x)
        assert layer.__dict__["_animator_phase_kernels"][1] is kept
        layer.conv.weight.mul_(-2.0)  # in place (load_state_dict does this)
        torch.testing.assert_close(layer(x), _definition(layer, x), rtol=0, atol=1e-12)
        layer.conv.weight.data = torch.randn_like(layer.conv.weight)  # replaced (fuse_lora does this)
        torch.testing.assert_close(layer(x), _definition(layer, x), rtol=0, atol=1e-12)
        layer.float()
        torch.testing.assert_close(layer(x.float()), _definition(layer, x.float()), rtol=1e-5, atol=1e-5)
    assert "_animator_phase_kernels" not in str(list(layer.state_dict()))


def test_weights_replaced_twice_between_calls_are_not_mistaken_for_the_kept_ones():
    """A freed weight's address is soon reused by the next tensor of its size, with the same (zero) version: the
    key alone would match (seen: 33 stale results in 50 rounds). The kept storage keeps its address taken."""
    torch.manual_seed(9)
    layer = _switched(Upsample2D(4, use_conv=True).double())
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(20):
            layer(x)
            layer.conv.weight.data = torch.randn_like(layer.conv.weight)
            layer.conv.weight.data = torch.randn_like(layer.conv.weight)
            torch.testing.assert_close(layer(x), _definition(layer, x), rtol=0, atol=1e-12)


def test_weights_made_in_inference_mode_are_summed_per_call():
    """Inference tensors have no version counter: a change in place could not be seen, so nothing is kept."""
    torch.manual_seed(8)
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    with torch.inference_mode():
        layer = _switched(Upsample2D(4, use_conv=True).double())
        assert layer.conv.weight.is_inference()
        first = layer(x)
        layer.conv.weight.mul_(3.0)  # allowed in inference mode, invisible to a version check
        torch.testing.assert_close(layer(x), _definition(layer, x), rtol=0, atol=1e-12)
        assert not torch.equal(layer(x), first)
    assert "_animator_phase_kernels" not in layer.__dict__


def test_gradients_reach_the_weights():
    torch.manual_seed(6)
    layer = Upsample2D(3, use_conv=True).double()
    switched = _switched(layer)
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    _definition(layer, x).square().sum().backward()
    switched(x).square().sum().backward()
    torch.testing.assert_close(switched.conv.weight.grad, layer.conv.weight.grad, rtol=1e-10, atol=1e-10)


def test_compiled_layer_sums_the_kernels_in_its_graph():
    """torch.compile traces the sub-pixel path in one graph (no kept tensor baked in as a constant)."""
    from animator.testing.traced import checked_aot_eager

    torch.manual_seed(7)
    layer = _switched(Upsample2D(4, use_conv=True))
    x = torch.randn(2, 4, 8, 11)
    compiled = torch.compile(layer, backend=checked_aot_eager, fullgraph=True, dynamic=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), _definition(layer, x), rtol=1e-5, atol=1e-5)
        layer.conv.weight.mul_(0.5)  # a weight changed after compiling is read at the next call
        torch.testing.assert_close(compiled(x), _definition(layer, x), rtol=1e-5, atol=1e-5)
    assert "_animator_phase_kernels" not in layer.__dict__


def test_a_norm_before_upsampling_is_applied():
    torch.manual_seed(3)
    layer = Upsample2D(6, use_conv=True, norm_type="ln_norm", eps=1e-6, elementwise_affine=True).double()
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 6, 8, 10, dtype=torch.float64)
    torch.testing.assert_close(_switched(layer)(x), layer(x), rtol=0, atol=1e-12)


def test_switching_keeps_parameters_names_and_class_checks():
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
    )
    keys = list(unet.state_dict())
    assert not uses_subpixel_upsampling(unet)
    assert use_subpixel_upsampling(unet) == 1
    assert use_subpixel_upsampling(unet) == 1  # idempotent: still one layer, not switched twice
    assert uses_subpixel_upsampling(unet)
    assert list(unet.state_dict()) == keys
    upsampler = unet.up_blocks[0].upsamplers[0]
    assert isinstance(upsampler, Upsample2D) and type(upsampler).__name__ == "SubpixelUpsample2D"


def test_arithmetic_is_four_ninths():
    layer = Upsample2D(32, use_conv=True)
    x = torch.empty(1, 32, 64, 64, device="meta")

    def flops(module):
        with FlopCounterMode(display=False) as counter:
            module.to("meta")(x)
        return counter.get_total_flops()

    ratio = flops(_switched(layer)) / flops(layer)
    assert ratio == pytest.approx(4 / 9 * (65 / 64) ** 2)  # the (H+1)x(W+1) phase map holds one extra row, column


def test_a_render_with_it_gives_the_frames_of_one_without(tiny_model, init_image, monkeypatch):
    """Through the user-facing path (keyframe fields, the render's model loading), the default against off."""
    import numpy as np

    from animator.rendering import render_frames

    data = {
        "width": 64,
        "height": 64,
        "frames": 3,
        "mode": "3d",
        "seed": 3,
        "init_image": str(init_image),
        "motion": {"translation_z": "0:(20)", "rotation_3d_y": "0:(2)"},
        "generation": {"steps": "0:(6)", "strength": "0:(0.5)"},
        "backends": {"denoise": str(tiny_model), "device": "cpu", "dtype": "float32"},
    }
    frames = {}
    from animator.rendering import api as render_module

    loaded = []
    load_models = render_module.load_models
    monkeypatch.setattr(
        render_module, "load_models", lambda *args: loaded.append(load_models(*args)) or loaded[-1]
    )  # kept to look into
    for subpixel in (True, False):
        overrides = {"backends.subpixel_upsample": subpixel}
        frames[subpixel] = [event.image for event in render_frames(data, overrides=overrides)]
    # the render's layers took the sub-pixel path with kept kernels (its weights are not inference tensors)
    upsampler = loaded[0].denoiser.pipe.vae.decoder.up_blocks[0].upsamplers[0]
    assert type(upsampler).__name__ == "SubpixelUpsample2D" and "_animator_phase_kernels" in upsampler.__dict__
    assert type(loaded[1].denoiser.pipe.vae.decoder.up_blocks[0].upsamplers[0]).__name__ == "Upsample2D"
    assert len(frames[True]) == 3
    # frame 0 is one img2img of the init image: float32 rounding of the summed weights may move a pixel by one
    # level. Later frames feed back, and a random tiny model amplifies such a flip, whatever the code.
    difference = np.abs(frames[True][0].astype(int) - frames[False][0].astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.05, (difference.max(), difference.mean())
    assert not np.array_equal(frames[True][1], frames[True][0])  # the frames are pictures of a moving camera


def test_the_switch_applies_on_the_cpu_and_to_compiled_models_only(tiny_model):
    """Uncompiled on a GPU diffusers' layers are kept (measured faster there: their few kernel launches beat the
    sub-pixel form's extra ones). The GPU case is the decision alone: the tiny model stays on the CPU and only the
    device the denoiser reports is CUDA's (no GPU here). ``Module.compile`` compiles at the first call, which these
    models never get: only the decision runs."""
    from animator.backends import speed
    from animator.backends.denoise import load_denoiser

    def switched(device: str, compile: str):
        denoiser = load_denoiser(str(tiny_model), device="cpu", dtype="float32")
        denoiser._device_cache = torch.device(device)  # what _execution_device answers
        applied = speed.speed_up_denoiser(denoiser, compile=compile, subpixel_upsample=True)
        return applied.get("subpixel_upsample"), uses_subpixel_upsampling(denoiser.pipe.vae)

    assert switched("cpu", "none") == ({"unet": 1, "vae": 3}, True)
    assert switched("cuda", "none") == ("not applied: uncompiled on cuda", False)
    assert switched("cuda", "cudagraphs") == ({"unet": 1, "vae": 3}, True)
    assert switched("cpu", "default") == ({"unet": 1, "vae": 3}, True)
