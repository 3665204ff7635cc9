"""animator.geometry.flow against ground truth built here: rendered frames with known flows and occlusions."""

import pytest
import torch

from animator.backends.flow.synthetic import (
    render,
    sliding_patch_frames,
    sliding_patch_pair,
    smooth_flow_field,
    warped_pair,
)
from animator.errors import AnimatorError
from animator.geometry.flow import (
    clean_mask,
    consistency_mask,
    flow_tween,
    leaves_frame,
    resize_flow,
    warp_by_flow,
)

skimage_data = pytest.importorskip("skimage.data")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def textures():
    return skimage_data.astronaut(), skimage_data.chelsea(), skimage_data.coffee()


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    mse = ((a - b) ** 2).mean(dim=1, keepdim=True)[where].mean()
    return float(10.0 * torch.log10(1.0 / mse))


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum())


# ------------------------------------------------------------------------------------------------- warp_by_flow


def test_warp_direction_matches_the_convention():
    image = torch.arange(5 * 7, dtype=torch.float32).view(1, 1, 5, 7)
    flow = torch.zeros(1, 2, 5, 7)
    flow[:, 0], flow[:, 1] = 2.0, 1.0  # out(x, y) = image(x + 2, y + 1)
    out = warp_by_flow(image, flow)
    assert torch.equal(out[0, 0, :4, :5], image[0, 0, 1:, 2:])


def test_warp_subpixel_is_bilinear():
    ramp = torch.arange(8, dtype=torch.float32).view(1, 1, 1, 8).expand(1, 1, 4, 8)  # value = x
    flow = torch.full((1, 2, 4, 8), 0.0)
    flow[:, 0] = 0.25
    out = warp_by_flow(ramp, flow)
    assert torch.allclose(out[..., :-1], ramp[..., :-1] + 0.25, atol=1e-5)


@pytest.mark.parametrize("border, expected_outside", [("zeros", 0.0), ("replicate", 6.0), ("reflection", 5.0)])
def test_warp_border_modes(border, expected_outside):
    ramp = torch.arange(7, dtype=torch.float32).view(1, 1, 1, 7).expand(1, 1, 3, 7).contiguous()
    flow = torch.zeros(1, 2, 3, 7)
    flow[:, 0] = 1.0  # the last column reads x = 7, one pixel beyond the right edge
    out = warp_by_flow(ramp, flow, border=border)
    assert out[0, 0, 1, -1].item() == pytest.approx(expected_outside, abs=1e-5)


def test_warp_any_channels_batch_broadcast_and_half():
    depth = torch.rand(1, 1, 6, 9) + 1.0
    flows = torch.zeros(3, 2, 6, 9)
    flows[1, 0], flows[2, 1] = 1.0, 1.0
    out = warp_by_flow(depth, flows)
    assert out.shape == (3, 1, 6, 9)
    assert torch.equal(out[0], depth[0])
    assert torch.allclose(out[1, :, :, :-1], depth[0, :, :, 1:])
    assert torch.allclose(out[2, :, :-1], depth[0, :, 1:])
    half = warp_by_flow(depth.half(), flows)
    assert half.dtype == torch.float16 and torch.allclose(half.float(), out, atol=1e-2)


def test_warp_with_true_flow_reproduces_the_source(textures):
    astronaut = textures[0]
    pair = warped_pair(astronaut, smooth_flow_field((120, 160)), scale=1.5, origin=(150.0, 60.0))
    consistent = ~(pair.occluded | pair.leaves_frame)
    assert psnr(warp_by_flow(pair.target, pair.flow), pair.source, consistent) >= 35.0
    # A warp the wrong way round must fail the same check (the test can tell directions apart).
    assert psnr(warp_by_flow(pair.target, -pair.flow), pair.source, consistent) < 25.0


def test_warp_sliding_patch_with_true_flow_on_consistent_pixels(textures):
    astronaut, chelsea, _ = textures
    pair = sliding_patch_pair(astronaut, chelsea, size=(96, 128), bg_step=(2.0, 1.0), fg_step=(10.0, 0.0))
    consistent = ~(pair.occluded | pair.leaves_frame)
    warped = warp_by_flow(pair.target, pair.flow)
    assert psnr(warped, pair.source, consistent) >= 35.0
    # ... and the occluded pixels are exactly where it cannot (they show the patch instead of the background).
    assert psnr(warped, pair.source, pair.occluded) < 20.0


def test_warp_rejects_bad_input():
    with pytest.raises(AnimatorError, match="flow"):
        warp_by_flow(torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(AnimatorError, match="height x width"):
        warp_by_flow(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(AnimatorError, match="border"):
        warp_by_flow(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 8), border="wrap")
    with pytest.raises(AnimatorError, match="floating"):
        warp_by_flow(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 2, 8, 8))


def test_resize_flow_scales_values():
    flow = torch.zeros(1, 2, 10, 20)
    flow[:, 0], flow[:, 1] = 4.0, -2.0
    half = resize_flow(flow, (5, 10))
    assert half.shape == (1, 2, 5, 10)
    assert torch.allclose(half[:, 0], torch.tensor(2.0)) and torch.allclose(half[:, 1], torch.tensor(-1.0))


# ------------------------------------------------------------------------------------------------ consistency


def test_consistency_with_true_flows_finds_exactly_the_occluded_pixels(textures):
    astronaut, chelsea, _ = textures
    pair = sliding_patch_pair(astronaut, chelsea, size=(96, 128), bg_step=(2.0, 1.0), fg_step=(10.0, 0.0))
    assert pair.occluded.sum() > 200  # the scene really has an occlusion
    unreliable = ~consistency_mask(pair.flow, pair.flow_back, motion_boundaries=False, out_of_frame=False)
    assert iou(unreliable, pair.occluded) >= 0.99


def test_consistency_out_of_frame_and_motion_boundaries(textures):
    astronaut, chelsea, _ = textures
    pair = sliding_patch_pair(astronaut, chelsea, size=(96, 128), bg_step=(3.0, 0.0), fg_step=(10.0, 0.0))
    reliable = consistency_mask(pair.flow, pair.flow_back, motion_boundaries=False, out_of_frame=True)
    # Background moving 3 px right: the last 3 columns leave the frame, except where the patch (10 px) sits.
    assert pair.leaves_frame[..., -3:].all() and not pair.leaves_frame[..., :-3].any()
    assert not reliable[..., -3:].any()
    assert torch.equal(leaves_frame(pair.flow), pair.leaves_frame)

    with_boundaries = consistency_mask(pair.flow, pair.flow_back, motion_boundaries=True, out_of_frame=False)
    only_boundaries = ~with_boundaries & consistency_mask(
        pair.flow, pair.flow_back, motion_boundaries=False, out_of_frame=False
    )
    # The patch's top and bottom edges (rows 29/30 and 65/66) are motion boundaries; the smooth interior is not.
    assert only_boundaries[0, 0, 30, 30:50].all() and only_boundaries[0, 0, 29, 30:50].all()
    assert not only_boundaries[0, 0, 40:60, 35:50].any() and not only_boundaries[0, 0, 5:20, 5:100].any()


def test_consistency_tolerates_small_flow_noise():
    generator = torch.Generator().manual_seed(0)
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, 0] = 5.0
    noisy_back = -flow + 0.2 * torch.randn(flow.shape, generator=generator)
    reliable = consistency_mask(flow, noisy_back, motion_boundaries=False, out_of_frame=False)
    assert reliable.all()  # 0.2 px noise is far below beta = 0.5 px^2
    strict = consistency_mask(flow, noisy_back, alpha=0.0, beta=0.0, motion_boundaries=False, out_of_frame=False)
    assert not strict.all()


def test_consistency_rejects_bad_input():
    with pytest.raises(AnimatorError, match="flow_bw"):
        consistency_mask(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 9))
    with pytest.raises(AnimatorError, match="alpha"):
        consistency_mask(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), alpha=-1.0)


# ----------------------------------------------------------------------------------------------------- clean


def test_clean_mask_drops_islands_dilates_and_blurs():
    mask = torch.zeros(1, 1, 40, 40, dtype=torch.bool)
    mask[0, 0, 5, 5] = True  # a 1-pixel speck
    mask[0, 0, 20:30, 20:30] = True  # a real 100-pixel region
    hard = clean_mask(mask, min_island=8, dilate=0, blur=0)
    assert hard.dtype == torch.float32 and hard[0, 0, 5, 5] == 0.0
    assert torch.equal(hard.bool(), mask & (torch.arange(40).view(1, 1, 40, 1) >= 20))
    grown = clean_mask(mask, min_island=8, dilate=2, blur=0)
    assert grown[0, 0, 18:32, 18:32].all() and grown.sum() == 14 * 14
    soft = clean_mask(mask, min_island=8, dilate=2, blur=1.5)
    assert 0.0 <= soft.min() and soft.max() <= 1.0
    assert soft[0, 0, 25, 25] == pytest.approx(1.0) and 0.0 < soft[0, 0, 25, 16] < 0.5
    kept = clean_mask(mask, min_island=0, dilate=0, blur=0)
    assert kept[0, 0, 5, 5] == 1.0


def test_clean_mask_rejects_bad_input():
    with pytest.raises(AnimatorError, match="mask"):
        clean_mask(torch.zeros(1, 3, 8, 8, dtype=torch.bool))
    with pytest.raises(AnimatorError, match=">= 0"):
        clean_mask(torch.zeros(1, 1, 8, 8, dtype=torch.bool), dilate=-1)


# ----------------------------------------------------------------------------------------------------- tween


def _translated(texture, shift_x: float, size=(80, 112)) -> torch.Tensor:
    """The texture rendered with its content moved ``shift_x`` px to the right, ``(1,3,H,W)``."""
    image = render(texture, lambda x, y: (x - shift_x + 60.0, y + 60.0), size)
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def test_flow_tween_keeps_the_full_motion(textures):
    """A 12 px motion: the tween at t sits 12 t px along (Deforum's cadence would shrink it to <= 1 px)."""
    coffee = textures[2]
    prev_img, next_img = _translated(coffee, 0.0), _translated(coffee, 12.0)
    fw, bw = torch.zeros(1, 2, 80, 112), torch.zeros(1, 2, 80, 112)
    fw[:, 0], bw[:, 0] = 12.0, -12.0  # prev(x) = next(x + 12)
    interior = torch.zeros(1, 1, 80, 112, dtype=torch.bool)
    interior[..., 4:-4, 14:-14] = True
    for position in (0.25, 0.5, 0.75):
        truth = _translated(coffee, 12.0 * position)  # rendered independently of the tween
        tween = flow_tween(prev_img, next_img, fw, bw, position)
        assert psnr(tween, truth, interior) >= 35.0, position
        # A tween that lags by one pixel scores clearly worse: the check sees magnitude errors.
        lag = (12.0 - 1.0 / position) / 12.0
        lagging = flow_tween(prev_img, next_img, fw * lag, bw * lag, position)
        assert psnr(lagging, truth, interior) < psnr(tween, truth, interior) - 5.0, position


def test_flow_tween_handles_occlusions(textures):
    """A patch sliding 16 px over a still background: at t = 0.5 it is 8 px along; the background it reveals on
    its left and the background it has not yet covered on its right come out right, not smeared or doubled."""
    astronaut, chelsea, _ = textures
    frames = sliding_patch_frames(astronaut, chelsea, size=(96, 128), frames=3, bg_step=(0.0, 0.0), fg_step=(8.0, 0.0))
    pair = sliding_patch_pair(astronaut, chelsea, size=(96, 128), bg_step=(0.0, 0.0), fg_step=(16.0, 0.0))
    tween = flow_tween(frames[:1], frames[2:], pair.flow, pair.flow_back, 0.5)
    truth = frames[1:2]
    rows = slice(32, 64)  # the patch covers rows 30..65 and, at t = 0.5, columns 32..67
    for columns in (slice(24, 32), slice(32, 68), slice(68, 76)):  # revealed / patch / about to be covered
        region = (slice(None), slice(None), rows, columns)
        assert (tween[region] - truth[region]).abs().mean() < 0.01, columns


def test_flow_tween_endpoints_and_errors():
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    zero = torch.zeros(1, 2, 8, 8)
    assert torch.equal(flow_tween(a, b, zero, zero, 0.0), a)
    assert torch.equal(flow_tween(a, b, zero, zero, 1.0), b)
    assert torch.allclose(flow_tween(a, b, zero, zero, 0.25), 0.75 * a + 0.25 * b, atol=1e-6)
    with pytest.raises(AnimatorError, match="position"):
        flow_tween(a, b, zero, zero, 1.5)
    with pytest.raises(AnimatorError, match="next_img"):
        flow_tween(a, torch.rand(1, 3, 8, 9), zero, zero, 0.5)
