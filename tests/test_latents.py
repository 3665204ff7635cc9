"""Latent feedback's geometry and colour: moving latents with the picture, checked on constructed scenes.

The scenes use a linear stand-in for the VAE encoder, ``encode = average over each 8x8 block``: for it, moving the
image and then encoding must give what moving the encoded latents gives (up to resampling of a smooth texture).
A latent grid placed even half a pixel wrong (the block's corner instead of its centre) fails these checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animator.geometry import homography_2d, intrinsics_from_fov, motion_to_pose, reproject_3d, warp_2d, warp_3d
from animator.latents import (
    LATENT_SAMPLING,
    LatentStatistics,
    add_latent_noise,
    grid_at_latents,
    homography_at_latents,
    latent_factor,
    match_latent_statistics,
    revealed_at_latents,
    sample_latents,
)

SIZE, FACTOR = 256, 8


def encode(image: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(image, FACTOR)


@pytest.fixture(scope="module")
def texture() -> torch.Tensor:
    """Smooth colour waves (periods of 130-190 px, 16-24 latent pixels: bilinear resampling of the latents is
    accurate, and a misplaced latent grid shows), three channels."""
    y, x = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij"
    )
    channels = [
        0.5 + 0.4 * torch.sin(2 * math.pi * (x / 150 + y / 170)),
        0.5 + 0.4 * torch.cos(2 * math.pi * x / 130),
        0.5 + 0.4 * torch.sin(2 * math.pi * (y / 140 - x / 190)),
    ]
    return torch.stack(channels)[None].float()


def _error(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> float:
    return float((a - b).abs().mul(keep).sum() / (keep.sum() * a.shape[1]))


def test_3d_latents_follow_the_warp_grid_to_the_latent_centres(texture):
    depth = torch.full((1, 1, SIZE, SIZE), 300.0)  # a wall: every pixel visible after a small move
    depth += torch.linspace(0, 200, SIZE).view(1, 1, 1, SIZE)  # turned away on one side: parallax varies
    K = intrinsics_from_fov(50.0, SIZE, SIZE)
    pose = motion_to_pose(4.0, -3.0, 10.0, 1.0, -1.0, 2.0)
    warped, valid, _ = warp_3d(texture, depth, K, pose, fill="border")
    grid = reproject_3d(depth, K, pose, fill="border").grid
    truth = encode(warped)
    latent_valid = ~revealed_at_latents(valid, FACTOR)
    assert latent_valid.float().mean() > 0.8
    moved = sample_latents(encode(texture), grid_at_latents(grid, FACTOR))
    corner = sample_latents(encode(texture), grid[:, ::FACTOR, ::FACTOR])  # the block's first pixel, not its centre
    right, wrong = _error(moved, truth, latent_valid), _error(corner, truth, latent_valid)
    assert right < 0.008
    assert wrong > 2.5 * right


def test_2d_latents_follow_the_conjugated_homography(texture):
    H = homography_2d(10.0, 1.3, 5.0, -3.0, 0.4, 0.6, SIZE, SIZE)  # zoom and turn about an off-centre pivot
    warped, valid = warp_2d(texture, H)
    truth = encode(warped)
    keep = F.avg_pool2d(valid.float(), FACTOR) == 1
    moved, moved_valid = warp_2d(encode(texture), homography_at_latents(H, FACTOR))
    naive = np.diag([1 / FACTOR, 1 / FACTOR, 1.0]) @ H @ np.diag([FACTOR, FACTOR, 1.0])  # scaled, centres ignored
    shifted, _ = warp_2d(encode(texture), naive)
    right, wrong = _error(moved, truth, keep), _error(shifted, truth, keep)
    assert right < 0.008
    assert wrong > 2.5 * right
    assert torch.equal(moved_valid[keep], torch.ones_like(moved_valid[keep]))


def _detailed_latents(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A 4-channel field with detail up to 0.35 cycles per latent pixel (sums of waves), at positions (x, y)."""
    generator = torch.Generator().manual_seed(1)
    channels = []
    for _ in range(4):
        value = torch.zeros_like(x)
        for _ in range(40):
            frequency, angle, phase = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
            frequency, angle, phase = 0.05 + 0.30 * frequency, 2 * math.pi * angle, 2 * math.pi * phase
            value += torch.cos(2 * math.pi * frequency * (x * math.cos(angle) + y * math.sin(angle)) + phase)
        channels.append(value / 6)
    return torch.stack(channels)[None].float()


def _positions(side: int):
    return torch.meshgrid(
        torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64), indexing="ij"
    )[::-1]  # x, y


def _grid(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    side = u.shape[-1]
    return torch.stack([(2 * u + 1) / side - 1, (2 * v + 1) / side - 1], -1)[None].float()


INNER = (slice(None), slice(None), slice(16, -16), slice(16, -16))  # away from the border padding


def test_latents_moved_frame_after_frame_keep_their_detail():
    """A feedback loop resamples the latents once per frame. After 20 frames of a 1% zoom the latent sampling
    (Catmull-Rom) keeps most of the field's spread and stays nearer the exact 20-frame zoom than bilinear, which
    averages away ~40% of the spread (decoded: a washed-out picture)."""
    side, zoom, frames = 64, 1.01, 20
    x, y = _positions(side)
    centre = (side - 1) / 2
    grid = _grid((x - centre) / zoom + centre, (y - centre) / zoom + centre)
    scale = zoom**frames
    truth = _detailed_latents((x - centre) / scale + centre, (y - centre) / scale + centre)
    results = {}
    for mode in (LATENT_SAMPLING, "bilinear"):
        latents = _detailed_latents(x, y)
        for _ in range(frames):
            latents = sample_latents(latents, grid, mode=mode)
        spread = float(latents[INNER].std() / truth[INNER].std())
        error = float((latents - truth)[INNER].pow(2).mean().sqrt() / truth[INNER].std())
        results[mode] = spread, error
    ours, bilinear = results[LATENT_SAMPLING], results["bilinear"]
    assert ours[0] > 0.85 and bilinear[0] < 0.7, results
    assert ours[1] < 0.8 * bilinear[1], results


def test_latent_sampling_never_amplifies_in_a_feedback_loop():
    """100 frames of half-pixel motion (the worst sub-pixel offset): the latent sampling never makes the field's
    spread grow. PyTorch's bicubic would (its kernel sharpens some frequencies by up to 3% per frame): a loop
    with it blows detail up several-fold, which is why the latents do not use it."""
    x, y = _positions(64)
    grid = _grid(x - 0.5, y - 0.5)
    for mode, limit in ((LATENT_SAMPLING, 1.0 + 1e-4), ("bicubic", None)):
        latents = _detailed_latents(x, y)
        start, largest = float(latents[INNER].std()), 0.0
        for _ in range(100):
            latents = sample_latents(latents, grid, mode=mode, padding="reflection")
            largest = max(largest, float(latents[INNER].std()) / start)
        if limit is not None:
            assert largest <= limit, (mode, largest)
        else:
            assert largest > 2.0, (mode, largest)


def test_a_latent_is_revealed_when_any_pixel_of_its_block_is():
    valid = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    valid[0, 0, 9, 2] = False
    revealed = revealed_at_latents(valid, 8)
    assert revealed.shape == (1, 1, 2, 2)
    assert revealed.flatten().tolist() == [False, False, True, False]


def test_latent_factor_needs_whole_blocks():
    assert latent_factor((512, 768), torch.zeros(1, 4, 64, 96)) == 8
    with pytest.raises(Exception, match="do not tile"):
        latent_factor((512, 512), torch.zeros(1, 4, 60, 64))


def test_matching_gives_the_reference_statistics_and_keeps_the_structure():
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 16, 16, generator=generator) * 1.7 + 0.4
    reference = LatentStatistics.of(torch.randn(1, 4, 16, 16, generator=generator) * 0.8 - 0.2)
    matched = match_latent_statistics(latents, reference)
    stats = LatentStatistics.of(matched)
    torch.testing.assert_close(stats.mean, reference.mean.expand_as(stats.mean), atol=1e-5, rtol=0)
    torch.testing.assert_close(stats.std, reference.std.expand_as(stats.std), atol=1e-5, rtol=1e-5)
    # a per-channel affine map: the order of values in each channel is kept
    assert torch.equal(matched.flatten(2).argsort(-1), latents.flatten(2).argsort(-1))
    torch.testing.assert_close(match_latent_statistics(latents, reference, strength=0.0), latents)
    half = match_latent_statistics(latents, reference, strength=0.5)
    torch.testing.assert_close(half, (latents + matched) / 2, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["gaussian", "perlin"])
def test_latent_noise_is_seeded_and_standardised(kind):
    latents = torch.zeros(1, 4, 32, 32)
    a = add_latent_noise(latents, 0.3, generator=torch.Generator().manual_seed(3), kind=kind)
    b = add_latent_noise(latents, 0.3, generator=torch.Generator().manual_seed(3), kind=kind)
    assert torch.equal(a, b)
    assert float(a.std()) == pytest.approx(0.3, rel=0.05)
    if kind == "perlin":  # one smooth field shared by the channels
        assert torch.equal(a[:, 0], a[:, 3])
    assert torch.equal(add_latent_noise(latents, 0.0, generator=torch.Generator()), latents)
