"""2D mode: the homography against OpenCV and Deforum's conventions, and warp_2d against cv2.warpPerspective."""

import math

import cv2
import numpy as np
import pytest
import torch

from animator.errors import AnimatorError
from animator.geometry import homography_2d, warp_2d

WIDTH, HEIGHT = 128, 96


def smooth_image(height=HEIGHT, width=WIDTH) -> np.ndarray:
    """HxWx3 float32 in [0, 1]: gentle waves, so bilinear resampling differences stay tiny."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack(
        [
            0.5 + 0.4 * np.sin(x / 9.0 + y / 13.0),
            0.5 + 0.4 * np.cos(x / 11.0 - y / 7.0),
            0.5 + 0.3 * np.sin((x + y) / 17.0),
        ],
        -1,
    ).astype(np.float32)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def apply(H: np.ndarray, points) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    mapped = np.c_[points, np.ones(len(points))] @ H.T
    return mapped[:, :2] / mapped[:, 2:]


@pytest.mark.parametrize(
    "angle, zoom, tx, ty, cx, cy",
    [
        (0, 1, 0, 0, 0.5, 0.5),
        (7.5, 1.04, 3, -2, 0.5, 0.5),
        (-20, 0.9, -5, 8, 0.25, 0.75),
        (90, 2.0, 0, 0, 0.0, 1.0),
    ],
)
def test_homography_equals_opencv_rotation_then_translation(angle, zoom, tx, ty, cx, cy):
    H = homography_2d(angle, zoom, tx, ty, cx, cy, WIDTH, HEIGHT)
    rotate = np.vstack([cv2.getRotationMatrix2D((cx * (WIDTH - 1), cy * (HEIGHT - 1)), angle, zoom), [0, 0, 1]])
    translate = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)
    assert H.dtype == np.float64 and H.shape == (3, 3)
    assert np.allclose(H, rotate @ translate, atol=1e-9)


@pytest.mark.parametrize(
    "border, cv_border",
    [
        ("replicate", cv2.BORDER_REPLICATE),
        ("wrap", cv2.BORDER_WRAP),
        ("reflect", cv2.BORDER_REFLECT),
    ],
)
@pytest.mark.parametrize("perspective", [None, (5.0, 8.0, -6.0, 53.0)])
def test_warp_2d_matches_cv2_warp_perspective(border, cv_border, perspective):
    image = smooth_image()
    H = homography_2d(12.0, 0.8, 9.0, -6.0, 0.4, 0.55, WIDTH, HEIGHT, perspective=perspective)
    expected = cv2.warpPerspective(image, H, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv_border)
    warped, valid = warp_2d(to_tensor(image), H, border=border)
    difference = np.abs(warped[0].permute(1, 2, 0).numpy() - expected)
    # OpenCV rounds interpolation weights to 1/32 pixel; beyond that the two agree everywhere, borders included
    assert difference.mean() < 0.003
    assert np.quantile(difference, 0.999) < 0.03
    assert not valid.all() and valid.any()  # zoomed out: the corners come from outside the source


def test_valid_marks_what_came_from_outside_the_frame():
    warped, valid = warp_2d(to_tensor(smooth_image()), homography_2d(0, 1, 10, 0, 0.5, 0.5, WIDTH, HEIGHT))
    assert not valid[0, 0, :, :10].any() and valid[0, 0, :, 11:].all()
    # replicate border: the strip repeats the source's first column
    assert torch.allclose(warped[0, :, :, :10], to_tensor(smooth_image())[0, :, :, :1].expand(-1, -1, 10), atol=1e-6)


def test_batched_homographies():
    image = to_tensor(smooth_image()).repeat(2, 1, 1, 1)
    matrices = np.stack([homography_2d(5, 1.1, 0, 0, 0.5, 0.5, WIDTH, HEIGHT), np.eye(3)])
    warped, valid = warp_2d(image, torch.from_numpy(matrices))
    assert torch.allclose(warped[1], image[1], atol=1e-6) and valid[1].all()
    single, _ = warp_2d(image[:1], matrices[0])
    assert torch.allclose(warped[0], single[0], atol=1e-6)


@pytest.mark.parametrize("border", ["replicate", "wrap", "reflect"])
def test_compiled_warp_2d_is_one_graph_and_gives_the_eager_result(border, traced):
    """``compile_mode`` runs the warp as ONE compiled graph (a graph break would raise: ``fullgraph``), giving the
    eager warp's pixels and mask; the next frame's homography is new data for the same graph, not a new graph."""
    import torch._dynamo.utils

    from animator import compiling

    image = to_tensor(smooth_image())
    torch._dynamo.utils.counters.clear()
    for angle in (12.0, -3.0):
        H = homography_2d(angle, 0.8, 9.0, -6.0, 0.4, 0.55, WIDTH, HEIGHT, perspective=(5.0, 8.0, -6.0, 53.0))
        eager = warp_2d(image, H, border=border)
        compiled = warp_2d(image, H, border=border, compile_mode="default")
        torch.testing.assert_close(compiled[0], eager[0], rtol=1e-5, atol=1e-5)
        assert torch.equal(compiled[1], eager[1])
    assert compiling._compiled.cache_info().currsize == 1
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_bicubic_clamps_images_but_not_unbounded_data():
    data = to_tensor(smooth_image()) * 8.0 - 4.0  # latent-like values in [-4, 4]
    H = homography_2d(3.0, 1.05, 0.5, 0.25, 0.5, 0.5, WIDTH, HEIGHT)
    image, _ = warp_2d(data, H, sampling="bicubic")
    latents, _ = warp_2d(data, H, sampling="bicubic", bounded=False)
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert latents.min() < -3.0 and latents.max() > 3.0
    assert torch.allclose(latents.clamp(0, 1), image)


# ---- directions, as Deforum's 2D mode moves the picture ----

CENTRE = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)


def test_angle_turns_counter_clockwise_on_screen():
    right_of_centre = (CENTRE[0] + 30, CENTRE[1])
    moved = apply(homography_2d(10, 1, 0, 0, 0.5, 0.5, WIDTH, HEIGHT), [right_of_centre])[0]
    assert moved[1] < right_of_centre[1] - 4  # y points down: the right side goes up
    assert np.hypot(moved[0] - CENTRE[0], moved[1] - CENTRE[1]) == pytest.approx(30)


def test_zoom_grows_about_the_transform_centre():
    H = homography_2d(0, 1.5, 0, 0, 0.25, 0.5, WIDTH, HEIGHT)
    pivot = (0.25 * (WIDTH - 1), 0.5 * (HEIGHT - 1))
    assert np.allclose(apply(H, [pivot])[0], pivot)
    assert np.allclose(apply(H, [(pivot[0] + 10, pivot[1])])[0], (pivot[0] + 15, pivot[1]))


def test_translation_moves_right_and_down():
    assert np.allclose(
        apply(homography_2d(0, 1, 4, 3, 0.5, 0.5, WIDTH, HEIGHT), [CENTRE])[0], (CENTRE[0] + 4, CENTRE[1] + 3)
    )


def deforum_flip(theta, phi, gamma, fv):
    """Deforum's perspective flip (warpMatrix + get_flip_perspective_matrix), re-derived for this test.

    The picture's corners (+-W/2, +-H/2, 0), rotated by Rx(phi) Ry(gamma) Rz(theta), pushed to z = -h with
    h = diagonal / (2 sin(fv/2)), projected with an OpenGL perspective (w = -z, cot(fv/2) scaling) onto a square of
    side s = diagonal / cos(fv/2); the homography maps the corners there, then is right-multiplied by a shift of
    ((W-s)/2, (H-s)/2).
    """
    half = math.radians(fv / 2)
    diagonal = math.hypot(WIDTH, HEIGHT)
    h, side = diagonal / (2 * math.sin(half)), diagonal / math.cos(half)
    rotate = _rot("x", phi) @ _rot("y", gamma) @ _rot("z", theta)
    corners = np.array(
        [
            [-WIDTH / 2, HEIGHT / 2, 0],
            [WIDTH / 2, HEIGHT / 2, 0],
            [WIDTH / 2, -HEIGHT / 2, 0],
            [-WIDTH / 2, -HEIGHT / 2, 0],
        ]
    )
    moved = corners @ rotate.T - np.array([0, 0, h])
    projected = moved[:, :2] / (math.tan(half) * -moved[:, 2:])
    source = (corners[:, :2] + [WIDTH / 2, HEIGHT / 2]).astype(np.float32)
    target = ((projected + 1) * 0.5 * side).astype(np.float32)
    shift = np.array([[1, 0, (WIDTH - side) / 2], [0, 1, (HEIGHT - side) / 2], [0, 0, 1]])
    return cv2.getPerspectiveTransform(source, target) @ shift


def _rot(axis, degrees):
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _outline(H):
    """top/bottom edge length ratio, right/left ratio, and the angle of the top edge in degrees (y down)."""
    tl, tr, br, bl = apply(H, [(0, 0), (WIDTH, 0), (WIDTH, HEIGHT), (0, HEIGHT)])
    length = np.linalg.norm
    angle = math.degrees(math.atan2(tr[1] - tl[1], tr[0] - tl[0]))
    return length(tr - tl) / length(br - bl), length(br - tr) / length(bl - tl), angle


@pytest.mark.parametrize(
    "flip, what",
    [
        ((10, 0, 0, 50), "turns clockwise"),
        ((0, 10, 0, 50), "top recedes"),
        ((0, 0, 10, 50), "right recedes"),
        ((0, -12, 0, 80), "bottom recedes"),
        ((-8, 0, -9, 40), "left recedes"),
    ],
)
def test_perspective_flip_matches_deforum_in_shape(flip, what):
    ours = _outline(homography_2d(0, 1, 0, 0, 0.5, 0.5, WIDTH, HEIGHT, perspective=flip))
    theirs = _outline(deforum_flip(*flip))
    top_bottom, right_left, top_angle = ours
    checks = {
        "turns clockwise": top_angle > 5,
        "top recedes": top_bottom < 0.97,
        "right recedes": right_left < 0.97,
        "bottom recedes": top_bottom > 1.03,
        "left recedes": right_left > 1.03,
    }
    assert checks[what]
    # the same keystone as Deforum (its pivot differs, which moves the picture, not its shape)
    assert ours[0] == pytest.approx(theirs[0], rel=0.03) and ours[1] == pytest.approx(theirs[1], rel=0.03)
    if flip[0]:
        assert np.sign(ours[2]) == np.sign(theirs[2])


def test_perspective_flip_at_rest_is_the_identity_and_keeps_translation():
    assert np.allclose(homography_2d(0, 1, 0, 0, 0.5, 0.5, WIDTH, HEIGHT, perspective=(0, 0, 0, 53)), np.eye(3))
    # Deforum drops the translation when the flip is on; we keep it
    with_shift = homography_2d(0, 1, 6, -4, 0.5, 0.5, WIDTH, HEIGHT, perspective=(0, 0, 0, 53))
    assert np.allclose(apply(with_shift, [CENTRE])[0], (CENTRE[0] + 6, CENTRE[1] - 4))
    flipped = homography_2d(0, 1, 6, -4, 0.5, 0.5, WIDTH, HEIGHT, perspective=(0, 10, 0, 53))
    unshifted = homography_2d(0, 1, 0, 0, 0.5, 0.5, WIDTH, HEIGHT, perspective=(0, 10, 0, 53))
    assert np.allclose(flipped, unshifted @ np.array([[1, 0, 6], [0, 1, -4], [0, 0, 1]]))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(zoom=0.0), "zoom"),
        (dict(angle=float("nan")), "angle"),
        (dict(translation_x="left"), "translation_x"),
        (dict(perspective=(0, 0, 0, 0)), "perspective.fv"),
        (dict(perspective=(0, 0, 0)), "perspective"),
    ],
)
def test_homography_refuses_bad_values(kwargs, field):
    args = dict(
        angle=0, zoom=1, translation_x=0, translation_y=0, center_x=0.5, center_y=0.5, width=WIDTH, height=HEIGHT
    )
    args.update(kwargs)
    with pytest.raises(AnimatorError) as info:
        homography_2d(**args)
    assert info.value.field == field


def test_warp_2d_refuses_bad_input():
    image = to_tensor(smooth_image())
    for call, field in [
        (lambda: warp_2d(image, np.eye(3), border="smart"), "border"),
        (lambda: warp_2d(image, np.eye(4)), "H"),
        (lambda: warp_2d(image, np.zeros((3, 3))), "H"),
        (lambda: warp_2d(image[0], np.eye(3)), "image"),
        (lambda: warp_2d(image, np.full((3, 3), np.nan)), "H"),
    ]:
        with pytest.raises(AnimatorError) as info:
            call()
        assert info.value.field == field
