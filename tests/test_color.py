"""Colour coherence, contrast, noise and sharpening (animator/color.py), checked against constructed ground truth."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

kornia = pytest.importorskip("kornia")
skimage_data = pytest.importorskip("skimage.data")

from animator.color import (  # noqa: E402
    ColorReference,
    add_noise,
    adjust_contrast,
    match_color,
    perlin_noise,
    unsharp_mask,
)
from animator.errors import AnimatorError  # noqa: E402

torch.set_num_threads(1)


def photo(name: str, size: int = 96) -> torch.Tensor:
    """A real photograph from skimage.data as (1, 3, size, size) in [0, 1]."""
    array = getattr(skimage_data, name)()
    image = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(image, size=(size, size), mode="area")


def channels(image: torch.Tensor, space: str) -> torch.Tensor:
    """(1, 3, H, W) RGB -> (3, H*W) in the space, computed here with kornia (hue in radians in [0, 2*pi))."""
    if space == "lab":
        values = kornia.color.rgb_to_lab(image)
    elif space == "hsv":
        values = kornia.color.rgb_to_hsv(image)
        values[:, 0] = torch.remainder(values[:, 0], 2 * math.pi)
    else:
        values = image
    return values.flatten(2)[0]


PROBABILITIES = torch.linspace(0.02, 0.98, 49)


def quantile_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Largest quantile difference per channel. (C, N), (C, M) -> (C,)."""
    return (torch.quantile(a, PROBABILITIES, dim=1) - torch.quantile(b, PROBABILITIES, dim=1)).abs().amax(dim=0)


# --- histogram matching ----------------------------------------------------------------------------------------


def washed_out_warm(image: torch.Tensor) -> torch.Tensor:
    """The kind of drift coherence has to undo: lower contrast and a warm cast (stays inside the RGB gamut)."""
    return (0.8 * image + 0.1) * torch.tensor([1.05, 1.0, 0.9]).view(1, 3, 1, 1)


@pytest.mark.parametrize(
    "space, make_reference, tolerance",
    [
        # LAB against the same scene drifted: matching a *different* photo in LAB can ask for colours outside the
        # RGB gamut, and clipping them back moves those values (the rocket, for example, ends up ~2 units off).
        ("lab", lambda: washed_out_warm(photo("chelsea")), torch.tensor([0.1, 0.1, 0.1])),
        ("rgb", lambda: washed_out_warm(photo("chelsea")), torch.tensor([0.004, 0.004, 0.004])),
        ("rgb", lambda: photo("coffee"), torch.tensor([0.004, 0.004, 0.004])),
    ],
    ids=["lab-drifted", "rgb-drifted", "rgb-other-photo"],
)
def test_match_color_makes_channel_quantiles_equal_the_reference(space, make_reference, tolerance):
    # The cat has no large ties (a tie cannot be split between quantiles).
    image, reference = photo("chelsea"), make_reference()
    before = quantile_gap(channels(image, space), channels(reference, space))
    matched = match_color(image, ColorReference(reference, space=space))
    after = quantile_gap(channels(matched, space), channels(reference, space))
    assert (before > 5 * tolerance).all(), "the test images must differ to begin with"
    assert (after <= tolerance).all(), f"quantile gaps after matching {after.tolist()} (before {before.tolist()})"


def test_match_color_in_hsv_matches_saturation_value_and_the_hue_histogram():
    image, reference = photo("chelsea"), photo("coffee")
    matched = match_color(image, reference, space="hsv")
    got, want, start = channels(matched, "hsv"), channels(reference, "hsv"), channels(image, "hsv")
    assert (quantile_gap(got[1:], want[1:]) < 0.01).all()
    hue_histogram = lambda hue: torch.histc(hue, bins=36, min=0, max=2 * math.pi) / hue.numel()  # noqa: E731
    before = (hue_histogram(start[0]) - hue_histogram(want[0])).abs().sum()
    after = (hue_histogram(got[0]) - hue_histogram(want[0])).abs().sum()
    assert before > 0.3 and after < 0.1 * before, f"hue histogram L1 distance {after:.3f} after, {before:.3f} before"


def hue_ramp_image(low_degrees: float, high_degrees: float, size: int = 64) -> torch.Tensor:
    """Saturated colours with hues spread evenly over [low, high] degrees (may cross 0), as (1, 3, size, size)."""
    hue = torch.linspace(low_degrees, high_degrees, size * size).view(1, 1, size, size)
    hue = torch.remainder(torch.deg2rad(hue), 2 * math.pi)
    hsv = torch.cat([hue, torch.full_like(hue, 0.9), torch.full_like(hue, 0.8)], dim=1)
    return kornia.color.hsv_to_rgb(hsv)


def test_hue_matching_wraps_around_red_instead_of_crossing_the_circle():
    # Reds from -30 to +30 degrees matched to reds from -10 to +50: every hue must turn by +20 degrees the short way.
    image, reference = hue_ramp_image(-30, 30), hue_ramp_image(-10, 50)
    matched = match_color(image, reference, space="hsv")
    turn = torch.remainder(channels(matched, "hsv")[0] - channels(image, "hsv")[0] + math.pi, 2 * math.pi) - math.pi
    assert torch.rad2deg(turn).sub(20).abs().max() < 1.5


def test_strength_zero_is_identity_and_half_is_halfway_in_rgb():
    image, reference = photo("chelsea", 48), photo("coffee", 48)
    assert torch.equal(match_color(image, reference, strength=0.0), image)
    full = match_color(image, reference, space="rgb", strength=1.0)
    half = match_color(image, reference, space="rgb", strength=0.5)
    torch.testing.assert_close(half, (image + full) / 2, atol=1e-5, rtol=0)


def test_match_color_keeps_batch_items_apart_and_stays_in_range():
    images = torch.cat([photo("chelsea", 32), photo("astronaut", 32)])
    reference = photo("coffee", 32)
    together = match_color(images, ColorReference(reference))
    for i in range(2):
        torch.testing.assert_close(together[i : i + 1], match_color(images[i : i + 1], reference), atol=1e-3, rtol=0)
    assert together.min() >= 0 and together.max() <= 1 and together.dtype == images.dtype


def test_match_color_takes_any_float_dtype_against_a_float32_reference():
    reference = ColorReference(photo("coffee", 32))
    image = photo("chelsea", 32)
    as_double = match_color(image.double(), reference)
    assert as_double.dtype == torch.float64
    torch.testing.assert_close(as_double.float(), match_color(image, reference), atol=1e-3, rtol=0)


def test_match_color_maps_equal_values_to_equal_values():
    # A flat region must stay flat (a sort-based rank transfer would turn it into a raster-order gradient).
    image = photo("chelsea", 48).clone()
    image[..., :16, :16] = 0.5
    matched = match_color(image, photo("coffee", 48), space="rgb")
    patch = matched[..., :16, :16]
    assert (patch.amax(dim=(-2, -1)) - patch.amin(dim=(-2, -1))).max() < 1e-6


def test_match_color_rejects_bad_input_naming_the_argument():
    image = photo("chelsea", 16)
    with pytest.raises(AnimatorError, match="image"):
        match_color(image[0], image)
    with pytest.raises(AnimatorError, match="space"):
        match_color(image, image, space="xyz")
    with pytest.raises(AnimatorError, match="space"):
        match_color(image, ColorReference(image, space="hsv"), space="lab")
    with pytest.raises(AnimatorError, match="strength"):
        match_color(image, image, strength=1.5)
    with pytest.raises(AnimatorError, match="batch"):
        match_color(torch.cat([image] * 3), ColorReference(torch.cat([image] * 2)))


# --- contrast --------------------------------------------------------------------------------------------------


def test_contrast_clips_instead_of_wrapping():
    image = torch.full((1, 3, 8, 8), 0.5)
    image[..., 0, 0] = 0.95  # bright pixel
    image[..., 0, 1] = 0.05  # dark pixel
    out = adjust_contrast(image, 2.0)
    assert torch.all(out[..., 0, 0] == 1.0)
    assert torch.all(out[..., 0, 1] == 0.0)


def test_contrast_scales_distance_to_the_mean_grey():
    image = 0.4 + 0.1 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    luma = (0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]).mean(dim=(-2, -1)).view(-1, 1, 1, 1)
    torch.testing.assert_close(adjust_contrast(image, 1.5), (image - luma) * 1.5 + luma)
    torch.testing.assert_close(adjust_contrast(image, 0.0), luma.expand_as(image))
    assert torch.equal(adjust_contrast(image, 1.0), image)
    with pytest.raises(AnimatorError, match="contrast"):
        adjust_contrast(image, -1.0)


# --- noise -----------------------------------------------------------------------------------------------------


def neighbour_correlation(noise: torch.Tensor) -> float:
    """Correlation between horizontally adjacent pixels of (B, C, H, W) noise."""
    left, right = noise[..., :-1].flatten(), noise[..., 1:].flatten()
    return torch.corrcoef(torch.stack([left, right]))[0, 1].item()


@pytest.mark.parametrize("kind", ["gaussian", "perlin"])
def test_noise_is_seeded_by_the_generator_only(kind):
    grey = torch.full((1, 3, 64, 64), 0.5)
    first = add_noise(grey, 0.2, generator=torch.Generator().manual_seed(7), kind=kind)
    again = add_noise(grey, 0.2, generator=torch.Generator().manual_seed(7), kind=kind)
    other = add_noise(grey, 0.2, generator=torch.Generator().manual_seed(8), kind=kind)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 0.01


@pytest.mark.parametrize("kind", ["gaussian", "perlin"])
def test_noise_is_zero_mean_with_std_amount_in_minus_one_one_space(kind):
    grey = torch.full((2, 3, 96, 96), 0.5)
    amount = 0.1
    added = (add_noise(grey, amount, generator=torch.Generator().manual_seed(3), kind=kind) - grey) * 2  # [-1,1] units
    assert abs(added.mean().item()) < 0.01
    assert added.std().item() == pytest.approx(amount, rel=0.05)


def test_perlin_noise_is_spatially_correlated_and_gaussian_is_not():
    grey = torch.full((1, 3, 128, 128), 0.5)
    perlin = add_noise(grey, 0.1, generator=torch.Generator().manual_seed(1), kind="perlin") - grey
    gaussian = add_noise(grey, 0.1, generator=torch.Generator().manual_seed(1), kind="gaussian") - grey
    assert neighbour_correlation(perlin) > 0.8
    assert abs(neighbour_correlation(gaussian)) < 0.05


def test_perlin_octave_equals_the_textbook_per_pixel_formula():
    # Rebuild one octave pixel by pixel from the same lattice gradients: four corner dot products, quintic fade.
    height, width, cells_y, cells_x = 12, 20, 3, 5
    noise = perlin_noise((1, height, width), generator=torch.Generator().manual_seed(5), octaves=1, cells=5)
    angles = torch.rand((1, cells_y + 1, cells_x + 1), generator=torch.Generator().manual_seed(5)) * 2 * math.pi
    fade = lambda t: t**3 * (t * (t * 6 - 15) + 10)  # noqa: E731
    expected = torch.zeros(height, width)
    for row in range(height):
        for col in range(width):
            y, x = (row + 0.5) * cells_y / height, (col + 0.5) * cells_x / width
            y0, x0 = min(int(y), cells_y - 1), min(int(x), cells_x - 1)
            dots = {}
            for dy in (0, 1):
                for dx in (0, 1):
                    angle = angles[0, y0 + dy, x0 + dx]
                    dots[dy, dx] = math.cos(angle) * (x - x0 - dx) + math.sin(angle) * (y - y0 - dy)
            u, v = fade(x - x0), fade(y - y0)
            top = dots[0, 0] + u * (dots[0, 1] - dots[0, 0])
            bottom = dots[1, 0] + u * (dots[1, 1] - dots[1, 0])
            expected[row, col] = top + v * (bottom - top)
    torch.testing.assert_close(noise[0], expected, atol=1e-5, rtol=0)


def test_noise_rejects_missing_generator_and_unknown_kind():
    image = torch.full((1, 3, 8, 8), 0.5)
    with pytest.raises(AnimatorError, match="generator"):
        add_noise(image, 0.1, generator=None)
    with pytest.raises(AnimatorError, match="kind"):
        add_noise(image, 0.1, generator=torch.Generator(), kind="pink")
    assert torch.equal(add_noise(image, 0.0, generator=torch.Generator()), image)


# --- unsharp mask ----------------------------------------------------------------------------------------------


def step_edge(size: int = 32) -> torch.Tensor:
    image = torch.full((1, 3, size, size), 0.3)
    image[..., size // 2 :] = 0.7
    return image


def test_unsharp_mask_raises_edge_contrast_and_leaves_flat_regions():
    image = step_edge()
    sharp = unsharp_mask(image, 1.0, sigma=1.0)
    edge = 16
    # Just across the edge the dark side gets darker and the bright side brighter (overshoot).
    assert torch.all(sharp[..., edge - 1] < image[..., edge - 1] - 0.01)
    assert torch.all(sharp[..., edge] > image[..., edge] + 0.01)
    # Far from the edge (beyond the +-3 sigma kernel) nothing changes.
    torch.testing.assert_close(sharp[..., : edge - 4], image[..., : edge - 4], atol=1e-6, rtol=0)
    torch.testing.assert_close(sharp[..., edge + 4 :], image[..., edge + 4 :], atol=1e-6, rtol=0)


def test_unsharp_mask_amount_zero_and_threshold_leave_the_image():
    image = step_edge()
    assert torch.equal(unsharp_mask(image, 0.0), image)
    # The edge's detail is at most 0.2 here: a threshold above it leaves everything alone.
    torch.testing.assert_close(unsharp_mask(image, 1.0, threshold=0.25), image, atol=0, rtol=0)
    with pytest.raises(AnimatorError, match="sigma"):
        unsharp_mask(image, 1.0, sigma=0.0)


# --- colour drift over a loopback ------------------------------------------------------------------------------


def drift_step(frame: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One loopback step that drifts colour the way img2img loops do: warm tint, contrast, noise, blur."""
    warm = torch.tensor([1.03, 1.0, 0.96]).view(1, 3, 1, 1)
    frame = (frame * warm).clamp(0, 1)
    frame = adjust_contrast(frame, 1.04)
    frame = add_noise(frame, 0.02, generator=generator)
    return kornia.filters.gaussian_blur2d(frame, (3, 3), (0.5, 0.5))


def mean_lab_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return (kornia.color.rgb_to_lab(a) - kornia.color.rgb_to_lab(b)).norm(dim=1).mean().item()


@pytest.mark.parametrize("space", ["lab", "hsv", "rgb"])
def test_color_coherence_reduces_drift_over_a_60_frame_loopback(space):
    first = photo("astronaut", 64)
    reference = ColorReference(first, space=space)
    drifting, coherent = first, first
    for frame in range(60):
        drifting = drift_step(drifting, torch.Generator().manual_seed(frame))
        coherent = match_color(drift_step(coherent, torch.Generator().manual_seed(frame)), reference)
    without, with_coherence = mean_lab_distance(drifting, first), mean_lab_distance(coherent, first)
    assert without > 20, "the loop must drift to begin with"
    assert with_coherence < 0.5 * without, f"drift {with_coherence:.1f} with coherence vs {without:.1f} without"


# --- devices ---------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_results_match_the_cpu():
    image, reference = photo("chelsea", 64), photo("coffee", 64)
    for space in ("lab", "hsv", "rgb"):
        cpu = match_color(image, reference, space=space)
        gpu = match_color(image.cuda(), ColorReference(reference.cuda(), space=space))
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-3, rtol=0)
    generator = torch.Generator().manual_seed(0)  # a CPU generator: the same noise on any device
    noisy = add_noise(image.cuda(), 0.1, generator=generator, kind="perlin")
    torch.testing.assert_close(
        noisy.cpu(), add_noise(image, 0.1, generator=torch.Generator().manual_seed(0), kind="perlin")
    )
    torch.testing.assert_close(unsharp_mask(image.cuda(), 0.5).cpu(), unsharp_mask(image, 0.5), atol=1e-5, rtol=0)


def test_compiled_matching_is_one_graph_per_space_for_every_strength(traced, monkeypatch):
    """``compile_mode`` runs LAB / RGB matching as one compiled graph (``fullgraph``: a read-back such as
    bincount's output size would raise) that gives the eager result; the per-frame strength is an input, not a
    constant, so a strength schedule does not compile a graph per value."""
    from animator import compiling
    from animator.testing.traced import checked_aot_eager

    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return checked_aot_eager(graph_module, example_inputs)

    monkeypatch.setattr(compiling, "BACKEND", counting_backend)
    image, reference = washed_out_warm(photo("astronaut", 64)), photo("coffee", 64)
    for space in ("lab", "rgb"):
        prepared = ColorReference(reference, space=space)
        for strength in (1.0, 0.6, 0.25):
            eager = match_color(image, prepared, strength=strength)
            compiled = match_color(image, prepared, strength=strength, compile_mode="default")
            torch.testing.assert_close(compiled, eager, atol=2e-5, rtol=0)
    assert len(graphs) == 2
