"""2D mode: one homography per frame (zoom, angle, translation, transform centre, perspective flip) and its warp.

Deforum parity (``anim_frame_warp_2d``, ``get_flip_perspective_matrix``), for a positive value:

==========================  ===========================================================
parameter                   picture on screen
==========================  ===========================================================
angle (degrees)             turns counter-clockwise (``cv2.getRotationMatrix2D``)
zoom (factor, 1 = still)    grows when > 1, about the transform centre
translation_x / _y (pixels) moves right / down (note: the *opposite* of 3D mode's x)
perspective theta           turns clockwise (in the image plane)
perspective phi             tilts the top edge away (top narrower than bottom)
perspective gamma           swings the right edge away (right narrower than left)
perspective fv (degrees)    field of view of the virtual camera: smaller = weaker perspective
==========================  ===========================================================

The matrix is ``flip @ rotate_zoom_about_centre @ translate`` as in Deforum, with two differences on purpose:
Deforum drops the translation when perspective flip is on (``np.matmul(bM, rot_mat, trans_mat)`` passes the
translation as numpy's ``out`` argument) and we keep it; and Deforum's flip pivots about ``(s/2, s/2)`` with ``s``
its enlarged side length (``M @ post_trans`` applies the re-centring on the wrong side), where ours pivots about the
image centre, so a pure flip no longer drifts the picture diagonally.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from animator import compiling
from animator.checks import batched_matrix, check_choice, check_finite, check_shape, check_tensor
from animator.choices import BORDERS as BORDER_MODES
from animator.errors import AnimatorError
from animator.geometry.resample import RESAMPLE_MODES, resample

__all__ = ["homography_2d", "warp_2d", "BORDER_MODES"]


def _finite_number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise AnimatorError(f"expected a number, got {value!r}", field=name) from exc
    if not math.isfinite(number):
        raise AnimatorError(f"must be finite, got {number}", field=name)
    return number


def _perspective_flip(theta: float, phi: float, gamma: float, fv: float, width: int, height: int) -> np.ndarray:
    """Homography of the picture plane turned in 3D and re-photographed, pivoting about the image centre.

    The picture stands centred at distance ``h`` in front of a pinhole camera of focal length ``h`` (so at rest it
    maps onto itself), with ``h = diagonal / (2 sin(fv/2))`` as in Deforum. Deforum's axes have z toward the viewer;
    turning its rotations into our z-forward axes flips the sign of the x and y angles.
    """
    if not 0.0 < fv < 180.0:
        raise AnimatorError(f"must lie strictly between 0 and 180 degrees, got {fv}", field="perspective.fv")
    distance = math.hypot(width, height) / (2.0 * math.sin(math.radians(fv) / 2.0))
    a, b, c = math.radians(-phi), math.radians(-gamma), math.radians(theta)
    rot_x = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rot_y = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rot_z = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    rotation = rot_x @ rot_y @ rot_z
    # plane point (x, y, 0) -> rotation @ (x, y, 0) + (0, 0, h) -> projected with focal h
    plane_to_camera = np.column_stack([rotation[:, 0], rotation[:, 1], [0.0, 0.0, distance]])
    camera = np.diag([distance, distance, 1.0])
    centre = np.array([[1, 0, (width - 1) / 2.0], [0, 1, (height - 1) / 2.0], [0, 0, 1]])
    uncentre = np.array([[1, 0, -(width - 1) / 2.0], [0, 1, -(height - 1) / 2.0], [0, 0, 1]])
    flip = centre @ camera @ plane_to_camera @ uncentre
    return flip / flip[2, 2]


def homography_2d(
    angle: float,
    zoom: float,
    translation_x: float,
    translation_y: float,
    center_x: float,
    center_y: float,
    width: int,
    height: int,
    *,
    perspective: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """One 2D-mode frame as a ``(3, 3)`` float64 homography ``dst_from_src`` in pixels (OpenCV's forward map).

    Args:
        angle: degrees, counter-clockwise on screen (Deforum's ``angle``).
        zoom: scale factor per frame, > 0 (1 = no zoom).
        translation_x, translation_y: pixels per frame, right / down.
        center_x, center_y: transform centre as a fraction of the frame (0.5, 0.5 = the middle), Deforum's
            ``transform_center_x/y``; the pivot pixel is ``(center_x (W-1), center_y (H-1))``.
        width, height: frame size in pixels.
        perspective: ``(theta, phi, gamma, fv)`` in degrees for Deforum's perspective flip, or None.

    Returns:
        ``H`` such that ``cv2.warpPerspective(src, H, (W, H))`` and :func:`warp_2d` produce the frame.

    Example:
        >>> H = homography_2d(0.0, 1.0, 5.0, 0.0, 0.5, 0.5, 64, 64)
        >>> float(H[0, 2]), float(H[1, 2])
        (5.0, 0.0)
    """
    names = ("angle", "zoom", "translation_x", "translation_y", "center_x", "center_y")
    angle, zoom, tx, ty, cx, cy = (
        _finite_number(v, n) for v, n in zip((angle, zoom, translation_x, translation_y, center_x, center_y), names)
    )
    if zoom <= 0:
        raise AnimatorError(f"must be positive (1 = no zoom), got {zoom}", field="zoom")
    if int(width) <= 0 or int(height) <= 0:
        raise AnimatorError(f"frame size must be positive, got {width}x{height}", field="width/height")
    pivot_x, pivot_y = cx * (width - 1), cy * (height - 1)
    # the same matrix cv2.getRotationMatrix2D(pivot, angle, zoom) builds: y points down, so +angle is CCW on screen
    cos_a, sin_a = zoom * math.cos(math.radians(angle)), zoom * math.sin(math.radians(angle))
    rotate_zoom = np.array(
        [
            [cos_a, sin_a, (1 - cos_a) * pivot_x - sin_a * pivot_y],
            [-sin_a, cos_a, sin_a * pivot_x + (1 - cos_a) * pivot_y],
            [0.0, 0.0, 1.0],
        ]
    )
    translate = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
    transform = rotate_zoom @ translate
    if perspective is not None:
        if len(perspective) != 4:
            raise AnimatorError(f"expected (theta, phi, gamma, fv), got {perspective!r}", field="perspective")
        theta, phi, gamma, fv = (
            _finite_number(v, f"perspective.{n}") for v, n in zip(perspective, ("theta", "phi", "gamma", "fv"))
        )
        transform = _perspective_flip(theta, phi, gamma, fv, int(width), int(height)) @ transform
    return transform


def warp_2d(
    image: torch.Tensor,
    H,
    *,
    border: str = "replicate",
    sampling: str = "bilinear",
    check_values: bool = True,
    compile_mode: str | None = None,
    bounded: bool = True,
):
    """Warp images by homographies, as ``cv2.warpPerspective(src, H, (W, H))`` does, batched in torch.

    Args:
        image: ``(B, 3, H, W)`` float in [0, 1].
        H: ``(3, 3)`` or ``(B, 3, 3)`` ``dst_from_src`` in pixels (numpy or tensor), e.g. from :func:`homography_2d`.
        border: what pixels from outside the source show: ``"replicate"`` (edge), ``"wrap"`` (tile),
            ``"reflect"`` (mirror, OpenCV's BORDER_REFLECT).
        sampling: ``"bilinear"``, ``"bicubic"``, ``"nearest"`` or ``"catmull_rom"`` (see
            :mod:`animator.geometry.resample`: what a feedback loop of unbounded data such as latents wants).
        check_values: check that the image is finite (a read-back, which on a GPU waits for its queue; the render
            passes False and checks each finished frame instead). ``H`` given on the host is checked there.
        compile_mode: a ``torch.compile`` mode to run the warp (after the checks) as one compiled graph (see
            :mod:`animator.compiling`), None for eager.
        bounded: the values are an image in [0, 1], so cubic overshoot (bicubic, catmull_rom) is clamped back;
            False for unbounded data (latents).

    Returns:
        ``(warped (B, 3, H, W), valid (B, 1, H, W) bool)``: ``valid`` is False where the destination pixel comes
        from outside the source frame (the border mode made it up).
    """
    check_tensor(image, "image")
    check_shape(image, "image", "B,C,H,W")
    if check_values:
        check_finite(image, "image")
    check_choice(border, "border", BORDER_MODES)
    check_choice(sampling, "sampling", RESAMPLE_MODES)
    batch, _, height, width = image.shape
    given = H if isinstance(H, torch.Tensor) else torch.from_numpy(np.array(H, dtype=np.float64))
    # shape and finiteness checked where H is (on the host for homography_2d's numpy: no GPU waited for), then moved
    matrices = batched_matrix(given, "H", 3, batch, image.device, torch.float64)
    on_host = given.device.type == "cpu"
    determinant = np.linalg.det(given.detach().double().numpy()) if on_host else torch.linalg.det(matrices)
    if float(abs(determinant).min()) < 1e-12:
        raise AnimatorError("is singular (zoom 0 or a degenerate perspective)", field="H")
    return compiling.call(_warp, compile_mode, image, matrices, border, sampling, bounded)


def _warp(image: torch.Tensor, dst_from_src: torch.Tensor, border: str, sampling: str, bounded: bool):
    """:func:`warp_2d` after its checks: pure tensor code (one compiled graph with a compile mode)."""
    batch, _, height, width = image.shape
    src_from_dst = torch.linalg.inv(dst_from_src)

    # each destination pixel centre, mapped back into the source (float64 for the division, then float32)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=torch.float64),
        torch.arange(width, device=image.device, dtype=torch.float64),
        indexing="ij",
    )
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)
    mapped = pixels @ src_from_dst.transpose(-1, -2)  # Bx(HW)x3
    w = mapped[..., 2]
    w = torch.where(w.abs() > 1e-12, w, torch.full_like(w, 1e-12))
    u, v = (mapped[..., 0] / w).view(batch, height, width), (mapped[..., 1] / w).view(batch, height, width)
    valid = (
        (mapped[..., 2].view(batch, height, width) > 0)
        & (u >= -0.5)
        & (u <= width - 0.5)
        & (v >= -0.5)
        & (v <= height - 0.5)
    )

    source = image if image.dtype in (torch.float32, torch.float64) else image.float()
    if border == "wrap":
        # tile: wrap the coordinates into the frame, and pad one pixel circularly so interpolation crosses the seam
        u = torch.remainder(u + 0.5, width) - 0.5 + 1.0
        v = torch.remainder(v + 0.5, height) - 0.5 + 1.0
        source = F.pad(source, (1, 1, 1, 1), mode="circular")
        grid_w, grid_h, padding = width + 2, height + 2, "border"
    else:
        grid_w, grid_h, padding = width, height, ("border" if border == "replicate" else "reflection")
    grid = torch.stack([(2 * u + 1) / grid_w - 1, (2 * v + 1) / grid_h - 1], -1).to(source.dtype)
    warped = resample(source, grid, mode=sampling, padding=padding)
    if sampling in ("bicubic", "catmull_rom") and bounded:
        warped = warped.clamp(0.0, 1.0)
    return warped.to(image.dtype), valid[:, None]
