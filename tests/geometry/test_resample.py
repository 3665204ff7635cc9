"""animator.geometry.resample: grid_sample's modes unchanged, and a Catmull-Rom kernel checked on constructed data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from animator.errors import AnimatorError
from animator.geometry.resample import resample

H, W = 12, 16


def pixel_grid(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B,h,w,2) normalised grid sampling source pixel coordinates (u, v) (align_corners=False)."""
    return torch.stack([(2 * u + 1) / W - 1, (2 * v + 1) / H - 1], -1)[None].float()


def coordinates():
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    return x, y


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_grid_sample_modes_are_grid_sample(mode, padding):
    image = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(0))
    grid = torch.rand(2, 7, 9, 2, generator=torch.Generator().manual_seed(1)) * 2.6 - 1.3  # also outside the frame
    expected = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)
    assert torch.equal(resample(image, grid, mode=mode, padding=padding), expected)


def test_catmull_rom_at_pixel_centres_is_the_image():
    x, y = coordinates()
    image = torch.rand(1, 4, H, W, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(resample(image, pixel_grid(x, y), mode="catmull_rom"), image, rtol=0, atol=1e-6)


def test_catmull_rom_reproduces_a_linear_ramp_between_pixels():
    x, y = coordinates()
    ramp = (0.37 * x + 0.11 * y)[None, None].float()
    u, v = x - 0.3, y + 0.45
    sampled = resample(ramp, pixel_grid(u, v), mode="catmull_rom")
    inside = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # all four taps inside the frame
    torch.testing.assert_close(sampled[inside], (0.37 * u + 0.11 * v)[None, None].float()[inside], rtol=0, atol=1e-5)


def test_catmull_rom_interpolates_a_smooth_wave_better_than_bilinear():
    x, y = coordinates()

    def wave(u, v):
        return torch.sin(0.9 * u + 0.4 * v)[None, None].float()

    u, v = x + 0.5, y - 0.35
    inside = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    truth = wave(u, v)[inside]
    errors = {
        mode: float((resample(wave(x, y), pixel_grid(u, v), mode=mode)[inside] - truth).abs().max())
        for mode in ("catmull_rom", "bilinear")
    }
    assert errors["catmull_rom"] < 0.25 * errors["bilinear"], errors


@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_catmull_rom_outside_the_frame_uses_the_padding(padding):
    """At whole-pixel positions outside the frame every kernel returns one pixel: the edge (border) or its mirror
    (reflection), the same pixel grid_sample's nearest mode picks."""
    x, y = coordinates()
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    grid = pixel_grid(x - 3, y + 2)  # left and bottom columns/rows fall outside
    expected = F.grid_sample(image, grid, mode="nearest", padding_mode=padding, align_corners=False)
    torch.testing.assert_close(resample(image, grid, mode="catmull_rom", padding=padding), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("padding, numpy_mode", [("border", "edge"), ("reflection", "symmetric")])
def test_catmull_rom_taps_beyond_the_edge_come_from_the_padding(padding, numpy_mode):
    """Between the edge pixels' centres and the frame's edge the kernel's outer taps fall outside: the result
    equals sampling an image padded explicitly (edge pixels repeated, or mirrored about the outer edge as
    grid_sample's reflection does), where every tap lies inside."""
    import numpy as np

    image = torch.rand(1, 2, H, W, generator=torch.Generator().manual_seed(5))
    x, y = coordinates()
    u, v = x * (W - 1.2) / (W - 1) + 0.1, y * (H - 1.4) / (H - 1) + 0.3  # fractional, inside [0, W-1]
    ours = resample(image, pixel_grid(u, v), mode="catmull_rom", padding=padding)
    pad = 3
    padded = torch.from_numpy(np.pad(image.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=numpy_mode))
    size_h, size_w = H + 2 * pad, W + 2 * pad
    grid = torch.stack([(2 * (u + pad) + 1) / size_w - 1, (2 * (v + pad) + 1) / size_h - 1], -1)[None].float()
    expected = resample(padded, grid, mode="catmull_rom")  # taps all inside the padded image
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)  # (float32 positions in two frames)


def test_catmull_rom_is_one_compiled_graph(traced):
    from animator import compiling

    x, y = coordinates()
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(4))
    grid = pixel_grid(x * 0.93 + 0.4, y * 1.05 - 0.2)

    def sample(image, grid):
        return resample(image, grid, mode="catmull_rom", padding="reflection")

    torch.testing.assert_close(compiling.call(sample, "default", image, grid), sample(image, grid))


@pytest.mark.parametrize("kwargs, field", [({"mode": "lanczos"}, "mode"), ({"padding": "zeros"}, "padding")])
def test_unknown_choices_are_refused(kwargs, field):
    with pytest.raises(AnimatorError) as caught:
        resample(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), **kwargs)
    assert caught.value.field == field


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_catmull_rom_on_cuda_matches_the_cpu(padding):
    image = torch.rand(2, 4, H, W, generator=torch.Generator().manual_seed(6))
    grid = torch.rand(2, 10, 13, 2, generator=torch.Generator().manual_seed(7)) * 2.4 - 1.2
    on_cpu = resample(image, grid, mode="catmull_rom", padding=padding)
    on_gpu = resample(image.cuda(), grid.cuda(), mode="catmull_rom", padding=padding)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-5, atol=1e-5)
