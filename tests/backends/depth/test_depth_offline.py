"""The offline prior on a ray-cast scene with known depth."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from depth_scenes import ground_and_wall_scene  # noqa: E402

from animator.backends.depth import DepthEstimator, OfflineDepthEstimator, disparity_to_depth, load_depth_estimator  # noqa: E402
from animator.errors import AnimatorError  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    image, z = ground_and_wall_scene(96, 128)
    disparity = load_depth_estimator("offline")(image)
    return image, z, disparity


def test_offline_orders_the_planes_near_to_far(scene):
    _, z, disparity = scene
    depth = disparity_to_depth(disparity, near=1.0, far=30.0)
    near_ground = (z > 2) & (z < 4)
    mid_ground = (z > 6) & (z < 10)
    far_ground = (z > 14) & (z < 25)
    wall = z >= 30
    medians = [float(depth[region].median()) for region in (near_ground, mid_ground, far_ground, wall)]
    assert medians == sorted(medians) and len(set(medians)) == 4, medians
    # pixel-level agreement with the true ordering (Spearman rank correlation of disparity and 1/z; ties averaged)
    from scipy.stats import spearmanr

    assert spearmanr(disparity.flatten().numpy(), (1.0 / z).flatten().numpy()).correlation > 0.8


def test_offline_is_smooth_within_flat_regions(scene):
    _, z, disparity = scene
    low, high = torch.quantile(disparity.flatten(), torch.tensor([0.02, 0.98]))
    # the wall is one fronto-parallel plane: away from its bottom edge its disparity barely moves
    wall_interior = z >= 30
    wall_interior[..., 36:, :] = False
    assert float(disparity[wall_interior].std() / (high - low)) < 0.03
    # down the ground plane, disparity rises steadily: no ripples from the checker texture
    column = disparity[0, 0, 60:, 64]
    steps = column.diff()
    assert float((steps < -1e-3 * (high - low)).float().mean()) < 0.05
    assert float(steps.abs().sum() / (column[-1] - column[0])) < 1.1


def test_offline_shapes_batches_and_dtype():
    estimator = OfflineDepthEstimator()
    assert isinstance(estimator, DepthEstimator)
    image = torch.rand(3, 3, 37, 81, dtype=torch.float64)
    disparity = estimator(image)
    assert disparity.shape == (3, 1, 37, 81) and disparity.dtype == torch.float32
    assert torch.isfinite(disparity).all()
    # batching does not mix images
    torch.testing.assert_close(estimator(image[1:2]), disparity[1:2], rtol=1e-4, atol=1e-5)
    big = estimator(torch.rand(1, 3, 300, 500))
    assert big.shape == (1, 1, 300, 500)
    described = estimator.describe()
    assert described["name"] == "offline" and "library versions" in described


@pytest.mark.parametrize(
    "image, hint",
    [
        (torch.rand(1, 4, 8, 8), "(B,3,H,W)"),
        (torch.rand(3, 8, 8), "(B,3,H,W)"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), "float"),
    ],
)
def test_offline_rejects_bad_images(image, hint):
    with pytest.raises(AnimatorError, match=r"image") as info:
        OfflineDepthEstimator()(image)
    assert hint in str(info.value)


@pytest.mark.parametrize("radius", [1, 5, 40])
def test_box_blur_is_the_window_mean_of_existing_pixels(radius):
    from animator.backends.depth.offline import box_blur

    image = torch.rand(1, 2, 19, 27, generator=torch.Generator().manual_seed(radius))
    blurred = box_blur(image, radius)
    height, width = image.shape[-2:]
    for i, j in [(0, 0), (9, 13), (18, 26), (3, 25)]:
        window = image[..., max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
        torch.testing.assert_close(blurred[..., i, j], window.mean((-1, -2)), rtol=1e-5, atol=1e-5)
