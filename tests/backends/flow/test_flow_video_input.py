"""Video-input and hybrid-motion helpers on rendered videos whose motion the test knows."""

import numpy as np
import pytest
import torch

from animator.backends.flow import load_flow_estimator
from animator.backends.flow.synthetic import render, sliding_patch_frames
from animator.backends.flow.video_input import MaskOptions, Motion, estimate_camera_motion, stylize_init
from animator.errors import AnimatorError
from animator.metrics import flicker

skimage_data = pytest.importorskip("skimage.data")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

SIZE = (96, 128)
BOX = (24, 30, 36, 36)  # patch at columns 24..59, rows 30..65 in frame 0
BG_STEP, FG_STEP = (2.0, 1.0), (10.0, 0.0)


@pytest.fixture(scope="module")
def video():
    """Background moving (2, 1) px per frame, a cat patch sliding 10 px per frame over it."""
    return sliding_patch_frames(
        skimage_data.astronaut(), skimage_data.chelsea(), size=SIZE, frames=8, bg_step=BG_STEP, fg_step=FG_STEP, box=BOX
    )


@pytest.fixture(scope="module")
def estimator():
    return load_flow_estimator("dis_medium")


def style(frames: torch.Tensor) -> torch.Tensor:
    """A stand-in for a stylised output: a strong per-pixel colour transform, easy to tell from the raw frame."""
    return (1.0 - frames)[:, [1, 2, 0]]


def box_mask(box, shift=(0, 0)) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    left, top = box[0] + shift[0], box[1] + shift[1]
    return ((xs >= left) & (xs < left + box[2]) & (ys >= top) & (ys < top + box[3]))[None, None]


def test_stylize_init_keeps_warped_output_where_consistent_and_raw_frame_where_revealed(video, estimator):
    raw_prev, raw_cur = video[2:3], video[3:4]
    prev_output = style(raw_prev)
    init, full_denoise = stylize_init(prev_output, raw_prev, raw_cur, estimator=estimator, flow_blend=1.0)
    assert init.shape == (1, 3, *SIZE) and full_denoise.shape == (1, 1, *SIZE)

    patch_prev, patch_cur = box_mask(BOX, (20, 0)), box_mask(BOX, (30, 0))
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    # Background of the current frame that the patch hid in the previous one (it came from x - (2, 1)).
    came_from = (
        (xs - BG_STEP[0] >= BOX[0] + 20)
        & (xs - BG_STEP[0] < BOX[0] + 20 + BOX[2])
        & (ys - BG_STEP[1] >= BOX[1])
        & (ys - BG_STEP[1] < BOX[1] + BOX[3])
    )
    revealed = came_from[None, None] & ~patch_cur
    assert revealed.sum() > 150
    # Well away from the patch's edges (DIS blurs motion boundaries over ~15 px) and the frame border.
    far_from_edges = torch.nn.functional.max_pool2d((patch_prev | patch_cur).float(), 33, 1, 16) == 0
    far_from_edges[..., :8, :], far_from_edges[..., -8:, :], far_from_edges[..., :8], far_from_edges[..., -8:] = (
        False,
        False,
        False,
        False,
    )
    inside_patch = box_mask((BOX[0] + 36, BOX[1] + 6, 18, 24))

    def error(a, b, where):
        return float((a - b).abs().mean(dim=1, keepdim=True)[where].mean())

    # revealed pixels: taken from the raw frame, and marked for a full denoise
    assert float(full_denoise[revealed].mean()) > 0.95
    assert error(init, raw_cur, revealed) < 0.03
    # consistent pixels: the previous output carried along the motion (= the stylised current frame)
    for where in (far_from_edges, inside_patch):
        assert float(full_denoise[where].mean()) < 0.01 and float((full_denoise[where] > 0.5).float().mean()) < 0.01
        assert error(init, style(raw_cur), where) < 0.04
        assert error(init, raw_cur, where) > 0.1  # the test can tell the two apart

    half, _ = stylize_init(prev_output, raw_prev, raw_cur, estimator=estimator, flow_blend=0.5)
    assert error(half, 0.5 * (style(raw_cur) + raw_cur), far_from_edges) < 0.03


def test_stylize_init_mask_options_and_bad_input(video, estimator):
    raw_prev, raw_cur = video[0:1], video[1:2]
    _, default_mask = stylize_init(raw_prev, raw_prev, raw_cur, estimator=estimator, flow_blend=1.0)
    _, wider = stylize_init(
        raw_prev, raw_prev, raw_cur, estimator=estimator, flow_blend=1.0, mask_options=MaskOptions(dilate=6)
    )
    assert float(wider.sum()) > float(default_mask.sum()) * 1.3
    with pytest.raises(AnimatorError, match="same shape"):
        stylize_init(raw_prev[..., :-2], raw_prev, raw_cur, estimator=estimator, flow_blend=1.0)
    with pytest.raises(AnimatorError, match="same shape"):
        stylize_init(raw_prev, raw_prev, raw_cur[..., :-2, :], estimator=estimator, flow_blend=1.0)
    with pytest.raises(AnimatorError, match="flow_blend"):
        stylize_init(raw_prev, raw_prev, raw_cur, estimator=estimator, flow_blend=1.5)


def fake_denoise(init: torch.Tensor, raw: torch.Tensor, strength: torch.Tensor, seed: int) -> torch.Tensor:
    """A stand-in for img2img (no diffusion model can run in CPU tests): pulls ``init`` towards the stylised raw
    frame plus seed-dependent low-frequency noise, by ``strength`` per pixel, as SD img2img does at that strength."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 3, SIZE[0] // 8, SIZE[1] // 8, generator=generator)
    noise = torch.nn.functional.interpolate(noise, size=SIZE, mode="bicubic", align_corners=False) * 0.12
    return ((1.0 - strength) * init + strength * (style(raw) + noise)).clamp(0.0, 1.0)


def test_video_input_loop_flickers_less_than_independent_frames(video, estimator):
    """End to end: each frame's init is the flow-warped previous output (low denoise where consistent, full
    denoise where revealed), against the same frames stylised independently from the raw input."""
    independent = torch.cat(
        [fake_denoise(video[i : i + 1], video[i : i + 1], torch.tensor(0.75), seed=i) for i in range(len(video))]
    )
    outputs = [independent[:1]]
    for i in range(1, len(video)):
        init, full_denoise = stylize_init(
            outputs[-1], video[i - 1 : i], video[i : i + 1], estimator=estimator, flow_blend=1.0
        )
        strength = 0.3 + 0.7 * full_denoise
        outputs.append(fake_denoise(init, video[i : i + 1], strength, seed=i))
    consistent = torch.cat(outputs)
    flicker_consistent = flicker(consistent, estimator=estimator)
    flicker_independent = flicker(independent, estimator=estimator)
    assert flicker_consistent.series.shape == (7,)
    assert flicker_consistent.mean < 0.6 * flicker_independent.mean
    # ... while both are stylised as strongly (the consistent one is not just a copy of its first frame)
    assert float((consistent[-1] - style(video[-1:])[0]).abs().mean()) < 0.08


# ------------------------------------------------------------------------------------------------ hybrid motion


def homography_frames(matrix: np.ndarray, size=(240, 320)):
    """Frame 0 shows the astronaut; frame 1 is frame 0 seen through ``cur_from_prev = matrix`` (rendered)."""
    texture = skimage_data.astronaut()
    origin = np.array([150.0, 80.0])
    inverse = np.linalg.inv(matrix)

    def prev_map(x, y):
        return origin[0] + x, origin[1] + y

    def cur_map(x, y):
        w = inverse[2, 0] * x + inverse[2, 1] * y + inverse[2, 2]
        px = (inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]) / w
        py = (inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]) / w
        return prev_map(px, py)

    frames = [render(texture, prev_map, size), render(texture, cur_map, size)]
    return [torch.from_numpy(f).permute(2, 0, 1)[None] for f in frames]


def similarity(angle_deg, scale, shift, center=(159.5, 119.5)):
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = np.array(center)
    matrix = np.eye(3)
    matrix[:2, :2], matrix[:2, 2] = rot, c - rot @ c + np.array(shift)
    return matrix


def interior_error(a, b, border=12):
    return float((a - b)[..., border:-border, border:-border].abs().mean())


@pytest.mark.parametrize(
    "method, truth",
    [
        ("perspective", np.array([[1.02, 0.01, 3.0], [-0.015, 0.99, -2.0], [1e-4, -0.5e-4, 1.0]])),
        ("affine", similarity(2.0, 1.03, (4.0, -3.0))),
    ],
)
def test_feature_based_camera_motion_recovers_the_transform(method, truth):
    raw_prev, raw_cur = homography_frames(truth)
    motion = estimate_camera_motion(raw_prev, raw_cur, method=method)
    assert isinstance(motion, Motion) and motion.matrix.shape == (1, 3, 3) and motion.inliers[0] >= 30
    # compare where the two matrices send the frame's corners (pixels), not the matrix entries
    corners = np.array([[0, 0, 1], [319, 0, 1], [0, 239, 1], [319, 239, 1]], dtype=np.float64).T
    found = motion.matrix[0].numpy() @ corners
    expected = truth @ corners
    assert np.abs(found[:2] / found[2] - expected[:2] / expected[2]).max() < 1.0
    assert interior_error(motion.apply(raw_prev), raw_cur) < 0.02
    assert interior_error(raw_prev, raw_cur) > 0.08  # the frames really differ
    # a generated frame at twice the video's size moves the same way (the motion is rescaled)
    big_prev = torch.nn.functional.interpolate(raw_prev, scale_factor=2, mode="bilinear", align_corners=False)
    big_cur = torch.nn.functional.interpolate(raw_cur, scale_factor=2, mode="bilinear", align_corners=False)
    assert interior_error(motion.apply(big_prev), big_cur, border=24) < 0.025


def test_optical_flow_camera_motion_follows_the_video(video, estimator):
    motion = estimate_camera_motion(video[0:1], video[1:2], method="optical_flow", estimator=estimator)
    assert motion.flow.shape == (1, 2, *SIZE)
    moved = motion.apply(video[0:1])
    assert interior_error(moved, video[1:2]) < 0.5 * interior_error(video[0:1], video[1:2])


def test_camera_motion_on_featureless_frames_is_identity_and_says_so():
    flat = torch.full((1, 3, 64, 64), 0.5)
    motion = estimate_camera_motion(flat, flat, method="perspective")
    assert motion.inliers == (0,)
    assert torch.allclose(motion.matrix[0], torch.eye(3, dtype=motion.matrix.dtype))


def test_camera_motion_bad_input(video):
    with pytest.raises(AnimatorError, match="perspective, affine, optical_flow"):
        estimate_camera_motion(video[0:1], video[1:2], method="homography")
    with pytest.raises(AnimatorError, match="same shape"):
        estimate_camera_motion(video[0:1], video[1:2, :, :-1], method="affine")
