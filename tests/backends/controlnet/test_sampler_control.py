"""ControlNet units inside the denoiser's sampling loop, with tiny real ControlNets (output layers filled, so a unit
has an effect): weight 0 is no ControlNet bit for bit, the guidance window decides which steps call it (counted on
the model itself), units add up, each mode treats classifier-free guidance its own way, SDXL and ControlNet-Union."""

from __future__ import annotations

import pytest
import torch

from animator.backends.controlnet import ControlInput, ControlSettings, load_unit
from animator.backends.controlnet.residuals import in_window, residual_scales, residual_shapes

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64


def _img2img(denoiser, control, *, steps=8, strength=0.5, guidance=7.0, image=None):
    image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) if image is None else image
    return denoiser.img2img(
        image, "a red house", strength=strength, guidance=guidance, steps=steps,
        generator=torch.Generator().manual_seed(1), control=control,
    )  # fmt: skip


def _control_image(seed=4):
    return torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


class _Calls:
    """Counts a ControlNet's forward calls and the batch each one saw (a hook on the diffusers model itself)."""

    def __init__(self, unit):
        self.batches: list[int] = []
        unit.controlnet.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.batches.append(sample.shape[0])


@pytest.fixture(scope="module")
def unit(tiny_controlnet, sd_denoiser):
    return load_unit(0, str(tiny_controlnet), ControlSettings(), sd_denoiser)


def test_weight_zero_is_no_controlnet_and_a_weight_changes_the_frame(unit, sd_denoiser):
    calls = _Calls(unit)
    plain = _img2img(sd_denoiser, None)
    off = _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=0.0)])
    assert torch.equal(plain, off)
    assert calls.batches == []  # a unit at weight 0 is not run at all
    on = _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=1.0)])
    assert (on - plain).abs().mean() > 0.01
    assert calls.batches == [2] * 4  # 8 steps at strength 0.5: 4 steps, CFG: both halves in one call


@pytest.mark.parametrize(("start", "end"), [(0.0, 1.0), (0.5, 1.0), (0.0, 0.5), (0.25, 0.75), (0.3, 0.9)])
def test_the_guidance_window_counts_the_steps_left_after_strength(unit, sd_denoiser, start, end):
    """Strength 0.5 of 8 steps runs 4; step i of 4 is in [start, end] when i/4 >= start and (i+1)/4 <= end."""
    expected = {(0.0, 1.0): 4, (0.5, 1.0): 2, (0.0, 0.5): 2, (0.25, 0.75): 2, (0.3, 0.9): 1}[(start, end)]
    assert sum(in_window(i, 4, start, end) for i in range(4)) == expected
    calls = _Calls(unit)
    _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=1.0, start=start, end=end)])
    assert len(calls.batches) == expected


def test_a_window_that_misses_every_step_is_no_controlnet(unit, sd_denoiser):
    """Outside its window a unit adds nothing: the UNet gets zero residuals, which leave its result exactly."""
    plain = _img2img(sd_denoiser, None)
    outside = _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=1.0, start=0.9, end=1.0)])
    assert torch.equal(plain, outside)


def test_two_units_add_their_residuals(unit, sd_denoiser, tiny_controlnet):
    """Two units of the same ControlNet and image at weight 0.5 each make the frame one unit at 1.0 makes (residuals
    add); each is called on every step."""
    second = load_unit(1, str(tiny_controlnet), ControlSettings(), sd_denoiser)
    first_calls, second_calls = _Calls(unit), _Calls(second)
    image = _control_image()
    both = _img2img(sd_denoiser, [ControlInput(unit, image, weight=0.5), ControlInput(second, image, weight=0.5)])
    one = _img2img(sd_denoiser, [ControlInput(unit, image, weight=1.0)])
    torch.testing.assert_close(both, one, atol=1e-5, rtol=0)
    assert len(first_calls.batches) == 4 + 4 and len(second_calls.batches) == 4
    half = _img2img(sd_denoiser, [ControlInput(unit, image, weight=0.5)])
    assert (half - one).abs().mean() > 1e-3


def test_modes_under_classifier_free_guidance(tiny_controlnet, sd_denoiser):
    """control runs the ControlNet on the conditional half only (batch 1 of the CFG pair of 2); balanced and
    prompt on both; the three give three different frames; without CFG all see batch 1."""
    frames, batches = {}, {}
    for index, mode in enumerate(("balanced", "prompt", "control")):
        unit = load_unit(index, str(tiny_controlnet), ControlSettings(mode=mode), sd_denoiser)
        calls = _Calls(unit)
        frames[mode] = _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=1.0)])
        batches[mode] = set(calls.batches)
        _img2img(sd_denoiser, [ControlInput(unit, _control_image(), weight=1.0)], guidance=1.0)
        assert calls.batches[4:] == [1] * 4
    assert batches == {"balanced": {2}, "prompt": {2}, "control": {1}}
    assert (frames["balanced"] - frames["prompt"]).abs().mean() > 1e-3
    assert (frames["balanced"] - frames["control"]).abs().mean() > 1e-3


def test_residual_scales_per_mode(unit):
    """The residuals come out of the unit scaled per mode: balanced by the weight, prompt by 0.825 ** (12 - i)
    (Automatic1111's soft injection, 13 residuals for SD 1.5), control by diffusers' guess-mode logspace(-1, 0)."""
    assert residual_scales("balanced", 13, 0.7) == [0.7] * 13
    prompt = residual_scales("prompt", 13, 1.0)
    assert prompt[-1] == 1.0 and prompt[0] == pytest.approx(0.825**12)
    control = residual_scales("control", 13, 2.0)
    torch.testing.assert_close(
        torch.tensor(control, dtype=torch.float64), 2.0 * torch.logspace(-1, 0, 13, dtype=torch.float64)
    )
    # the unit's own output: its raw residuals times the scales
    sample = torch.randn(2, 4, 8, 8)
    hidden = torch.randn(2, 77, 32)
    image = _control_image().expand(2, -1, -1, -1)
    count = unit.residual_count
    scales = torch.tensor(residual_scales("prompt", count, 0.6))
    with torch.no_grad():
        raw = unit.runner(sample, torch.tensor(500), hidden, image, torch.ones(count))
        scaled = unit.runner(sample, torch.tensor(500), hidden, image, scales)
    for i, (a, b) in enumerate(zip(raw, scaled)):
        torch.testing.assert_close(b, a * scales[i])


def test_zero_residual_shapes_match_a_controlnets_residuals(unit, sd_denoiser):
    """The zeros given outside every window have the shapes the ControlNet's residuals have (odd sizes too)."""
    for height, width in ((8, 8), (9, 7)):
        sample = torch.randn(2, 4, height, width)
        image = torch.rand(2, 3, height * 8, width * 8)
        with torch.no_grad():
            residuals = unit.runner(sample, torch.tensor(10), torch.randn(2, 77, 32), image, torch.ones(13))
        assert [tuple(r.shape) for r in residuals] == residual_shapes(sd_denoiser.pipe.unet.config, 2, height, width)


def test_latents_and_txt2img_take_control(unit, sd_denoiser):
    generator = torch.Generator().manual_seed(2)
    latents = sd_denoiser.encode(torch.rand(1, 3, SIZE, SIZE, generator=generator))

    def run(control, text=False):
        g = torch.Generator().manual_seed(5)
        if text:
            return sd_denoiser.txt2img_latents("a cat", height=SIZE, width=SIZE, guidance=5.0, steps=3, generator=g,
                                               control=control)  # fmt: skip
        return sd_denoiser.img2img_latents(latents, "a cat", strength=0.6, guidance=5.0, steps=5, generator=g,
                                           control=control)  # fmt: skip

    control = [ControlInput(unit, _control_image(), weight=1.0)]
    for text in (False, True):
        plain, steered = run(None, text), run(control, text)
        assert steered.shape == plain.shape
        assert (steered - plain).abs().mean() > 1e-3


def test_a_control_image_of_another_size_is_resized(unit, sd_denoiser):
    """A control image is resized to the frame: a 32x32 constant image steers as its 64x64 version does."""
    small = torch.full((1, 3, 32, 32), 0.3)
    large = torch.full((1, 3, SIZE, SIZE), 0.3)
    a = _img2img(sd_denoiser, [ControlInput(unit, small, weight=1.0)])
    b = _img2img(sd_denoiser, [ControlInput(unit, large, weight=1.0)])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_sdxl_controlnet(tiny_sdxl_controlnet, sdxl_denoiser):
    unit = load_unit(0, str(tiny_sdxl_controlnet), ControlSettings(), sdxl_denoiser)
    calls = _Calls(unit)
    plain = _img2img(sdxl_denoiser, None, steps=4)
    off = _img2img(sdxl_denoiser, [ControlInput(unit, _control_image(), weight=0.0)], steps=4)
    on = _img2img(sdxl_denoiser, [ControlInput(unit, _control_image(), weight=1.0)], steps=4)
    assert torch.equal(plain, off)
    assert (on - plain).abs().mean() > 1e-3
    assert calls.batches == [2, 2]
    control = load_unit(1, str(tiny_sdxl_controlnet), ControlSettings(mode="control"), sdxl_denoiser)
    control_calls = _Calls(control)
    _img2img(sdxl_denoiser, [ControlInput(control, _control_image(), weight=1.0)], steps=4)
    assert control_calls.batches == [1, 1]  # SDXL's pooled text and time ids split with the batch


def test_sdxl_controlnet_union_takes_a_control_type(tiny_union_controlnet, sdxl_denoiser):
    """Each control type is its own token: depth and canny steer the same image differently."""
    frames = {}
    for index, control_type in enumerate(("depth", "canny")):
        settings = ControlSettings(control_type=control_type)
        unit = load_unit(index, str(tiny_union_controlnet), settings, sdxl_denoiser)
        assert unit.runner.union_index == {"depth": 1, "canny": 3}[control_type]
        frames[control_type] = _img2img(sdxl_denoiser, [ControlInput(unit, _control_image(), weight=1.0)], steps=4)
    plain = _img2img(sdxl_denoiser, None, steps=4)
    assert (frames["depth"] - plain).abs().mean() > 1e-4
    assert (frames["depth"] - frames["canny"]).abs().mean() > 1e-5


@pytest.mark.parametrize("sampler", ["heun", "dpm++_2m_karras", "ddim"])
def test_every_sampler_evaluation_gets_its_controlnet_call(unit, sd_denoiser, sampler):
    """Second-order samplers evaluate the UNet twice a step: each evaluation gets the ControlNet (a full window)."""
    calls = _Calls(unit)
    unet_calls = []
    hook = sd_denoiser.pipe.unet.register_forward_pre_hook(lambda *_: unet_calls.append(1))
    try:
        image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
        sd_denoiser.img2img(
            image, "a red house", strength=0.5, guidance=7.0, steps=6, sampler=sampler,
            generator=torch.Generator().manual_seed(1), control=[ControlInput(unit, _control_image(), weight=1.0)],
        )  # fmt: skip
    finally:
        hook.remove()
    assert len(calls.batches) == len(unet_calls) >= 3


def test_a_control_image_of_the_wrong_shape_is_an_error(unit, sd_denoiser):
    from animator.errors import AnimatorError

    with pytest.raises(AnimatorError, match=r"control image of controlnet.0 must have shape \(B, 3, H, W\)"):
        _img2img(sd_denoiser, [ControlInput(unit, torch.rand(1, 1, SIZE, SIZE), weight=1.0)])
