"""disparity_to_depth and DepthTracker against depth maps the tests construct."""

import pytest
import torch

from animator.backends.depth import DepthTracker, disparity_to_depth
from animator.errors import AnimatorError


def _true_depth(batch=1, height=24, width=32, near=1.0, far=20.0, seed=0):
    """A depth map with a gradient floor, a near box and values exactly at near and far."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    inverse = 1 / far + rows * (1 / near - 1 / far)  # linear in 1/z, like a ground plane
    inverse = inverse + 0.02 * torch.rand(height, width, generator=generator)
    inverse[4:10, 6:14] = 0.7  # a box at z ~ 1.4
    z = (1 / inverse).clamp(near, far)
    z[0, 0], z[-1, -1] = far, near
    return z.expand(batch, 1, height, width).clone()


def test_disparity_to_depth_recovers_z_from_any_affine_disparity():
    z = _true_depth()
    disparity = 7.0 / z - 0.3  # what a model could return
    depth = disparity_to_depth(disparity, near=1.0, far=20.0, low=0.0, high=1.0)
    torch.testing.assert_close(depth, z, rtol=1e-4, atol=1e-5)


def test_disparity_to_depth_documented_example_values():
    disparity = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    depth = disparity_to_depth(disparity, near=2.0, far=8.0, low=0.0, high=1.0)
    # 1/z = d/2 + (1-d)/8: d=0.5 -> 1/z = 0.3125 -> z = 3.2 (inverse-depth interpolation, not z-interpolation: 5.0)
    torch.testing.assert_close(depth.flatten(), torch.tensor([8.0, 3.2, 2.0]))


def test_disparity_to_depth_per_sample_range_and_order():
    disparity = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    depth = disparity_to_depth(disparity, near=torch.tensor([0.5, 2.0]), far=torch.tensor([10.0, 40.0]))
    assert depth.shape == disparity.shape and depth.dtype == torch.float32
    assert depth[0].min() >= 0.5 - 1e-5 and depth[0].max() <= 10.0 + 1e-4
    assert depth[1].min() >= 2.0 - 1e-5 and depth[1].max() <= 40.0 + 1e-3
    order = torch.argsort(disparity[0].flatten())
    assert bool((depth[0].flatten()[order].diff() <= 1e-5).all()), "larger disparity must never be farther"


def test_percentiles_ignore_outliers():
    z = _true_depth()
    disparity = 1.0 / z
    disparity[0, 0, 0, :3] = 1000.0  # three hot pixels
    depth = disparity_to_depth(disparity, near=1.0, far=20.0)
    # without robust normalisation every normal pixel would be squeezed to ~far
    assert depth[0, 0, 12, 20] < 10.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(disparity=torch.rand(1, 3, 4, 4), near=1.0, far=2.0), "disparity"),
        (dict(disparity=torch.rand(1, 1, 4, 4), near=2.0, far=1.0), "far"),
        (dict(disparity=torch.rand(1, 1, 4, 4), near=-1.0, far=2.0), "near"),
        (dict(disparity=torch.rand(2, 1, 4, 4), near=torch.tensor([1.0, 1.0, 1.0]), far=5.0), "near"),
        (dict(disparity=torch.ones(1, 1, 4, 4, dtype=torch.int64), near=1.0, far=5.0), "disparity"),
    ],
)
def test_disparity_to_depth_rejects_bad_arguments(kwargs, field):
    with pytest.raises(AnimatorError) as info:
        disparity_to_depth(**kwargs)
    assert info.value.field == field


def test_tracker_aligns_disparity_to_a_metric_reference():
    z = _true_depth(near=1.0, far=20.0)
    tracker = DepthTracker(near=1.0, far=20.0)
    tracker(torch.rand_like(z))  # first frame: anything
    depth = tracker(0.4 / z + 3.0, reference_depth=z)  # same scene, unknown scale and shift
    torch.testing.assert_close(depth, z, rtol=1e-3, atol=1e-3)
    assert tracker.last_fit["method"] == "align"


def test_tracker_keeps_a_static_scene_within_one_percent_over_30_frames():
    """Static scene, static camera: the warped previous depth is the previous depth itself.

    Per frame the model's disparity is rescaled and shifted, and a bird (a small, very near blob the
    previous frame did not show) flies through: per-frame normalisation (Deforum) moves the whole scene.
    """
    generator = torch.Generator().manual_seed(0)
    z = _true_depth(height=48, width=64)
    static = torch.ones_like(z, dtype=torch.bool)
    tracker = DepthTracker(near=1.0, far=20.0, mode="align")
    plain = DepthTracker(near=1.0, far=20.0, mode="none")
    first = previous = None
    worst_tracked = worst_plain = 0.0
    for frame in range(30):
        scale = float(torch.empty(1).uniform_(0.3, 3.0, generator=generator))
        shift = float(torch.empty(1).uniform_(-1.0, 1.0, generator=generator))
        disparity = scale / z + shift
        bird = torch.zeros_like(static)
        if frame > 0:
            top, left = 4 + frame, 2 * frame
            bird[..., top : top + 8, left : left + 12] = True  # ~3% of the frame, 10x nearer than near
            disparity = torch.where(bird, scale * 10.0 + shift, disparity)
        depth = tracker(disparity, reference_depth=previous, reference_valid=None if previous is None else static)
        plain_depth = plain(disparity)
        if first is None:
            first = depth
            plain_first = plain_depth
        keep = ~bird
        worst_tracked = max(worst_tracked, float(((depth - first).abs() / first)[keep].max()))
        worst_plain = max(worst_plain, float(((plain_depth - plain_first).abs() / plain_first)[keep].max()))
        previous = depth
    assert worst_tracked < 0.01
    assert worst_plain > 0.05, "the test scene must be one where per-frame normalisation fails"


def test_tracker_modes_none_and_smooth():
    z = _true_depth()
    disparity = 1.0 / z
    none = DepthTracker(1.0, 20.0, mode="none")
    torch.testing.assert_close(none(disparity), disparity_to_depth(disparity, 1.0, 20.0))
    smooth = DepthTracker(1.0, 20.0, mode="smooth", momentum=0.5)
    base = smooth(disparity)
    jumped = disparity.clone()
    jumped[..., :4, :] = 5.0  # a flash of very near content
    after = smooth(jumped)
    direct = disparity_to_depth(jumped, 1.0, 20.0)
    rest = (slice(None), slice(None), slice(8, None))
    # the flash moves the smoothed range only half as far as a fresh normalisation would
    assert float((after[rest] - base[rest]).abs().mean()) < 0.75 * float((direct[rest] - base[rest]).abs().mean())


def test_tracker_falls_back_without_enough_valid_reference_and_resets():
    z = _true_depth()
    tracker = DepthTracker(1.0, 20.0, min_valid_fraction=0.5)
    tracker(1.0 / z)
    almost_nothing = torch.zeros_like(z, dtype=torch.bool)
    almost_nothing[..., :2, :2] = True
    depth = tracker(2.0 / z, reference_depth=z, reference_valid=almost_nothing)
    assert tracker.last_fit["method"] == "smooth" and torch.isfinite(depth).all()
    tracker.reset()
    tracker(1.0 / z)
    assert tracker.last_fit["method"] == "normalise"


def test_tracker_clamps_to_this_frames_near_far_and_checks_arguments():
    z = _true_depth()
    tracker = DepthTracker(1.0, 20.0)
    tracker(1.0 / z)
    depth = tracker(1.0 / z, reference_depth=z, near=2.0, far=10.0)
    assert depth.min() >= 2.0 - 1e-5 and depth.max() <= 10.0 + 1e-4
    with pytest.raises(AnimatorError, match="differs"):
        tracker(1.0 / z, reference_depth=z[..., :-1, :])
    with pytest.raises(AnimatorError):
        DepthTracker(1.0, 20.0, mode="histogram")
    with pytest.raises(AnimatorError):
        DepthTracker(5.0, 1.0)


def test_tracker_fits_each_image_of_a_batch_separately():
    z = torch.cat([_true_depth(seed=1), _true_depth(seed=2, near=2.0, far=40.0).clamp(1.0, 20.0)])
    tracker = DepthTracker(near=1.0, far=20.0)
    tracker(torch.rand_like(z))
    disparity = torch.cat([0.5 / z[:1] + 1.0, 4.0 / z[1:] - 0.2])  # a different scale and shift per image
    depth = tracker(disparity, reference_depth=z)
    torch.testing.assert_close(depth, z, rtol=1e-3, atol=1e-3)
    assert len(tracker.last_fit["scale"]) == 2


def test_compiled_tracker_alignment_is_one_graph_and_gives_the_eager_depth(traced):
    """With ``compile_mode`` the whole alignment (robust fit, smoothed fallback, the choice between them) runs as
    one compiled graph (``fullgraph``: a read-back or a value-dependent shape inside it would raise), giving the
    eager tracker's depth, on the fitted path and on the fallback; a scheduled near/far does not compile again."""
    import torch._dynamo.utils

    z = _true_depth(near=1.0, far=20.0)
    valid = torch.ones_like(z, dtype=torch.bool)
    valid[..., :5, :] = False
    nothing_valid = torch.zeros_like(valid)
    runs = []
    torch._dynamo.utils.counters.clear()
    for compile_mode in (None, "default"):
        tracker = DepthTracker(near=1.0, far=20.0, compile_mode=compile_mode)
        tracker(torch.full_like(z, 0.5))  # first frame: anything
        fitted = tracker(0.4 / z + 3.0, reference_depth=z, reference_valid=valid)
        assert tracker.last_fit["method"] == "align"
        fallback = tracker(0.5 / z, reference_depth=z, reference_valid=nothing_valid, near=1.5, far=25.0)
        assert tracker.last_fit["method"] == "smooth"
        runs.append((fitted, fallback, tracker.state_dict()["range"]))
    eager, compiled = runs
    for got, want in zip(compiled[:2] + compiled[2], eager[:2] + eager[2]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled[0], z, rtol=1e-3, atol=1e-3)
    from animator import compiling

    assert compiling._compiled.cache_info().currsize == 1  # the compiled alignment is what ran
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # the second near/far: no new graph
