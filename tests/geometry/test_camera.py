"""Camera intrinsics, per-frame poses, camera paths, and Deforum parity of every 3D motion parameter."""

import math

import numpy as np
import pytest
import torch

from animator.errors import AnimatorError
from animator.geometry import (
    camera_path,
    deforum_motion_to_scene,
    intrinsics_from_fov,
    motion_to_pose,
    relative_pose,
    warp_3d,
)

WIDTH, HEIGHT, FOV = 128, 96, 40.0


def _rotation(axis: str, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def deforum_shift(motion, u, v, z_deforum):
    """Pixel displacement Deforum's 3D mode gives the picture at pixel (u, v), re-derived for this test.

    From anim_frame_warp_3d / transform_image_3d (sd-webui-deforum): T = (-tx, ty, -tz) / 200; R = pytorch3d
    euler_angles_to_matrix(radians(rx, ry, rz), "XYZ") = Rx @ Ry @ Rz; the point is (x_grid, y_grid, depth) with
    x_grid = linspace(-1, 1, W)[u]; both cameras are FoVPerspectiveCameras (ndc x = x / (tan(fov/2) aspect z),
    ndc y = y / (tan(fov/2) z)) and the new camera maps X -> X @ R + T; the frame is resampled at
    grid - (ndc_new - ndc_old), so the picture moves by +(ndc_new - ndc_old), times W/2, H/2 in pixels.
    """
    tx, ty, tz, rx, ry, rz = motion
    translate = np.array([-tx, ty, -tz]) / 200.0
    rotate = _rotation("x", rx) @ _rotation("y", ry) @ _rotation("z", rz)
    point = np.array([-1 + 2 * u / (WIDTH - 1), -1 + 2 * v / (HEIGHT - 1), z_deforum])
    tan_half, aspect = math.tan(math.radians(FOV) / 2), WIDTH / HEIGHT

    def ndc(p):
        return np.array([p[0] / (tan_half * aspect * p[2]), p[1] / (tan_half * p[2])])

    offset = ndc(point @ rotate + translate) - ndc(point)
    return offset * np.array([WIDTH / 2, HEIGHT / 2])


def our_shift(motion, u, v, z):
    """Pixel displacement our exact camera gives the surface seen at pixel (u, v) at depth z."""
    K = intrinsics_from_fov(FOV, HEIGHT, WIDTH, dtype=torch.float64).numpy()
    pose = motion_to_pose(*motion, dtype=torch.float64).numpy()
    point = z * np.linalg.solve(K, [u, v, 1.0])
    moved = pose[:3, :3] @ point + pose[:3, 3]
    projected = K @ moved
    return projected[:2] / projected[2] - np.array([u, v])


# one parameter at a time: (motion, what the picture does on screen, per Deforum's 3D mode)
PARAMETERS = {
    "translation_x": ((10, 0, 0, 0, 0, 0), "left"),
    "translation_y": ((0, 10, 0, 0, 0, 0), "down"),
    "translation_z": ((0, 0, 10, 0, 0, 0), "grows"),
    "rotation_3d_x": ((0, 0, 0, 2, 0, 0), "down"),
    "rotation_3d_y": ((0, 0, 0, 0, 2, 0), "left"),
    "rotation_3d_z": ((0, 0, 0, 0, 0, 2), "counter-clockwise"),
}
# pixels away from the centre in each quadrant, and Deforum depths from near to far
PROBES = [(96.0, 72.0), (20.0, 30.0), (100.0, 15.0), (30.0, 80.0), (63.5, 47.5)]


def _on_screen(shift, u, v, expected):
    cx, cy = (WIDTH - 1) / 2, (HEIGHT - 1) / 2
    if expected == "left":
        return shift[0] < 0 and abs(shift[0]) > abs(shift[1])
    if expected == "down":
        return shift[1] > 0 and abs(shift[1]) > abs(shift[0])
    radial = np.array([u - cx, v - cy])
    if expected == "grows":
        return radial @ shift > 0 or np.allclose(radial, 0)
    if expected == "counter-clockwise":  # y points down: counter-clockwise on screen is (dx, dy) ~ (ry, -rx)
        return np.cross(radial, shift) < 0 or np.allclose(radial, 0)
    raise AssertionError(expected)


@pytest.mark.parametrize("name", list(PARAMETERS))
@pytest.mark.parametrize("z_deforum", [1.0, 1.8])
def test_every_motion_parameter_moves_the_picture_as_deforum_does(name, z_deforum):
    motion, expected = PARAMETERS[name]
    ours_motion = deforum_motion_to_scene(*motion, fov_deg=FOV, aspect=WIDTH / HEIGHT, deforum_depth=z_deforum)
    for u, v in PROBES:
        theirs = deforum_shift(motion, u, v, z_deforum)
        ours = our_shift(ours_motion, u, v, 200.0 * z_deforum)
        assert _on_screen(theirs, u, v, expected), "the reference itself disagrees with the documented direction"
        assert _on_screen(ours, u, v, expected), f"{name} at ({u}, {v})"
        # magnitude: comparable (Deforum's is an approximation that varies across the frame; ours is exact)
        if np.linalg.norm(theirs) > 0.05:
            ratio = np.linalg.norm(ours) / np.linalg.norm(theirs)
            assert 0.65 < ratio < 1.5, f"{name} at ({u}, {v}): ours {ours}, Deforum {theirs}"


def test_translation_and_pan_magnitudes_equal_deforum_at_the_centre():
    u, v = (WIDTH - 1) / 2, (HEIGHT - 1) / 2
    for motion in [(7, 0, 0, 0, 0, 0), (0, -5, 0, 0, 0, 0), (0, 0, 0, 1.5, 0, 0), (0, 0, 0, 0, -3, 0)]:
        # unchanged values: Deforum's translations and pans import one to one
        assert np.allclose(our_shift(motion, u, v, 200.0), deforum_shift(motion, u, v, 1.0), atol=1e-6)
    assert deforum_motion_to_scene(3, -2, 0, 1, -1, 0, fov_deg=FOV)[:2] == (3, -2)


def test_warp_moves_a_marker_like_the_pose_says():
    # the whole pipeline: a bright square on a wall 200 away; translation_x 10 moves it f*10/200 px left
    image = torch.zeros(1, 3, HEIGHT, WIDTH)
    image[..., 40:56, 56:72] = 1.0
    depth = torch.full((1, 1, HEIGHT, WIDTH), 200.0)
    K = intrinsics_from_fov(FOV, HEIGHT, WIDTH)
    warped, _, _ = warp_3d(image, depth, K, motion_to_pose(10.0, 0, 0, 0, 0, 0))
    columns = torch.arange(WIDTH, dtype=torch.float32)
    before = (image[0, 0].sum(0) * columns).sum() / image[0, 0].sum()
    after = (warped[0, 0].sum(0) * columns).sum() / warped[0, 0].sum()
    expected = float(K[0, 0]) * 10.0 / 200.0
    assert after - before == pytest.approx(-expected, abs=0.3)


def test_intrinsics_from_vertical_fov():
    K = intrinsics_from_fov(90.0, 100, 300)
    assert torch.allclose(K, torch.tensor([[50.0, 0, 149.5], [0, 50.0, 49.5], [0, 0, 1]]))
    # a ray through the top edge of the frame makes half the fov with the axis
    top = torch.linalg.solve(intrinsics_from_fov(40.0, 96, 128), torch.tensor([63.5, -0.5, 1.0]))
    assert math.degrees(math.atan2(-top[1], top[2])) == pytest.approx(20.0, abs=0.3)
    batched = intrinsics_from_fov(torch.tensor([40.0, 60.0]), 96, 128)
    assert batched.shape == (2, 3, 3) and batched[0, 0, 0] > batched[1, 0, 0]


@pytest.mark.parametrize("fov", [0.0, 180.0, -5.0, float("nan")])
def test_intrinsics_refuse_impossible_fov(fov):
    with pytest.raises(AnimatorError) as info:
        intrinsics_from_fov(fov, 96, 128)
    assert info.value.field == "fov_deg"


def test_motion_to_pose_is_rigid_and_batched():
    poses = motion_to_pose(torch.tensor([1.0, 0.0]), 2.0, 3.0, torch.tensor([10.0, -20.0]), 5.0, 7.0)
    assert poses.shape == (2, 4, 4)
    rotation = poses[:, :3, :3]
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(2))
    single = motion_to_pose(0.0, 2.0, 3.0, -20.0, 5.0, 7.0)
    assert torch.allclose(poses[1], single)
    with pytest.raises(AnimatorError) as info:
        motion_to_pose(float("nan"), 0, 0, 0, 0, 0)
    assert info.value.field == "translation_x"


def test_camera_path_accumulates_and_relative_pose_spans_frames():
    motions = np.zeros((5, 6))
    motions[1:, 2] = 10.0  # forward 10 per frame
    motions[1:, 4] = 3.0  # and pan 3 degrees per frame
    path = camera_path(motions)
    assert path.shape == (5, 4, 4)
    assert torch.allclose(path[0], torch.eye(4, dtype=path.dtype))
    # each step of the path is that frame's move
    for i in range(1, 5):
        assert torch.allclose(relative_pose(path, i - 1, i), motion_to_pose(*motions[i], dtype=torch.float64))
    # the camera has turned 12 degrees to the right in total, and going back is the inverse
    forward_axis = path[4, :3, 2]
    assert math.degrees(math.atan2(forward_axis[0], forward_axis[2])) == pytest.approx(12.0)
    span = relative_pose(path, 1, 4)
    assert torch.allclose(span @ relative_pose(path, 4, 1), torch.eye(4, dtype=span.dtype), atol=1e-9)
    # three equal steps compose into the span
    step = motion_to_pose(*motions[2], dtype=torch.float64)
    assert torch.allclose(span, step @ step @ step, atol=1e-9)


def test_camera_path_and_relative_pose_check_their_input():
    with pytest.raises(AnimatorError) as info:
        camera_path(np.zeros((4, 5)))
    assert info.value.field == "motions"
    with pytest.raises(AnimatorError):
        camera_path(np.full((2, 6), np.nan))
    with pytest.raises(AnimatorError) as info:
        relative_pose(camera_path(np.zeros((3, 6))), 0, 3)
    assert info.value.field == "dst"
