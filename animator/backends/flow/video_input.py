"""Flow helpers for video-input mode and hybrid motion, one frame at a time (the render loop owns the video).

- :func:`stylize_init`: the init image of a video-input frame: the previous *output* carried along the motion of
  the raw input video, the raw frame wherever that motion cannot be trusted.
- :func:`estimate_camera_motion`: the input video's camera motion between two raw frames as a :class:`Motion`,
  whose ``apply(image)`` moves a generated frame the same way (hybrid motion).

Frames are ``(B,3,H,W)`` float tensors in [0, 1]; OpenCV work (flow, feature matching) converts at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from animator.backends.flow import FlowEstimator, load_flow_estimator
from animator.backends.flow.opencv import check_image_pair, to_grey_uint8
from animator.errors import AnimatorError
from animator.geometry.flow import clean_mask, consistency_mask, pixel_grid, resize_flow, warp_by_flow

__all__ = ["MaskOptions", "stylize_init", "Motion", "estimate_camera_motion", "CAMERA_MOTION_METHODS"]

CAMERA_MOTION_METHODS = ("perspective", "affine", "optical_flow")


@dataclass(frozen=True)
class MaskOptions:
    """How the consistency mask of a flow is computed and tidied (see ``animator.geometry.flow``)."""

    alpha: float = 0.01  # forward-backward tolerance relative to the squared flow lengths
    beta: float = 0.5  # forward-backward tolerance in squared pixels
    motion_boundaries: bool = True  # also distrust pixels on motion boundaries (flow is blurred across them)
    min_island: int = 8  # drop unreliable specks smaller than this many pixels (flow noise, not occlusion)
    dilate: int = 2  # grow unreliable regions by this many pixels (flow is worst at their edges)
    blur: float = 1.0  # Gaussian sigma in pixels: a soft seam between warped and raw pixels


def _resolve_estimator(estimator: FlowEstimator | str | None) -> FlowEstimator:
    if estimator is None:
        return load_flow_estimator("dis_medium")
    if isinstance(estimator, str):
        return load_flow_estimator(estimator)
    if not callable(estimator):
        raise AnimatorError(
            f"estimator must be a flow estimator or its name, got {type(estimator).__name__}", field="estimator"
        )
    return estimator


def stylize_init(
    prev_output: torch.Tensor,
    raw_prev: torch.Tensor,
    raw_cur: torch.Tensor,
    *,
    estimator: FlowEstimator | str | None = None,
    flow_blend: float,
    mask_options: MaskOptions = MaskOptions(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The init image of a video-input frame, and where it needs a full denoise.

    The previous output (which was made from ``raw_prev``) is warped by the flow between the raw input frames, so it
    lines up with ``raw_cur``. Where that flow is consistent, the init is ``flow_blend * warped + (1 - flow_blend) *
    raw_cur``; where it is not (regions the camera or an object revealed, motion boundaries, pixels that came from
    outside the frame), the init is ``raw_cur`` and the mask is 1 so those pixels get a full denoise.

    Args:
        prev_output: ``(B,3,H,W)`` in [0,1], the previous rendered frame (aligned with ``raw_prev``).
        raw_prev, raw_cur: ``(B,3,H,W)`` in [0,1], the previous and current input-video frames, same size.
        estimator: a :class:`FlowEstimator` (create it once per render) or its name; default ``dis_medium``.
        flow_blend: 1 keeps the warped previous output on reliable pixels, 0 takes the raw frame everywhere.
        mask_options: consistency and clean-up parameters.

    Returns:
        ``init`` ``(B,3,H,W)`` in ``prev_output``'s dtype, and ``full_denoise_mask`` ``(B,1,H,W)`` float in [0,1]
        (1 = unreliable: comes from the raw frame and should be denoised at full strength).
    """
    check_image_pair(raw_prev, raw_cur)
    check_image_pair(prev_output, raw_cur)
    if not 0.0 <= float(flow_blend) <= 1.0:
        raise AnimatorError(f"flow_blend must be in [0, 1], got {flow_blend}", field="flow_blend")
    flow_model = _resolve_estimator(estimator)
    device = prev_output.device
    raw_prev, raw_cur = raw_prev.to(device), raw_cur.to(device)

    # The init lives on the current frame's grid: cur(x) ~= prev(x + flow_cur_to_prev(x)).
    flow_cur_to_prev = flow_model(raw_cur, raw_prev)
    flow_prev_to_cur = flow_model(raw_prev, raw_cur)
    reliable = consistency_mask(
        flow_cur_to_prev,
        flow_prev_to_cur,
        alpha=mask_options.alpha,
        beta=mask_options.beta,
        motion_boundaries=mask_options.motion_boundaries,
    )
    full_denoise_mask = clean_mask(
        ~reliable, min_island=mask_options.min_island, dilate=mask_options.dilate, blur=mask_options.blur
    )
    warped = warp_by_flow(prev_output.float(), flow_cur_to_prev)
    raw = raw_cur.float()
    carried = float(flow_blend) * warped + (1.0 - float(flow_blend)) * raw
    init = (1.0 - full_denoise_mask) * carried + full_denoise_mask * raw
    return init.clamp(0.0, 1.0).to(prev_output.dtype), full_denoise_mask


# --------------------------------------------------------------------------------------------------------------------
# hybrid motion


@dataclass(frozen=True)
class Motion:
    """The camera motion of an input video between two frames, ready to move another image the same way.

    Exactly one of ``matrix`` and ``flow`` is set.
    """

    method: str  # perspective | affine | optical_flow
    size: tuple[int, int]  # (height, width) of the video frames it was measured on
    matrix: torch.Tensor | None = None  # (B,3,3) cur_from_prev homography in pixels (affine: last row 0 0 1)
    flow: torch.Tensor | None = None  # (B,2,H,W) with cur(x) ~= prev(x + flow(x))
    inliers: tuple[int, ...] = ()  # RANSAC inliers per batch item; 0 = too few matches, identity used

    def as_flow(self, size: tuple[int, int] | None = None) -> torch.Tensor:
        """This motion as a ``(B,2,h,w)`` backward flow on a frame of ``size = (h, w)`` (default: the video's)."""
        height, width = size if size is not None else self.size
        if self.flow is not None:
            return resize_flow(self.flow, (height, width))
        # Rescale the pixel homography to the new frame: S M S^-1 with S = diag(w/W, h/H, 1).
        scale = torch.diag(torch.tensor([width / self.size[1], height / self.size[0], 1.0], dtype=torch.float64))
        matrix = scale @ self.matrix.double().cpu() @ torch.linalg.inv(scale)
        prev_from_cur = torch.linalg.inv(matrix)  # Bx3x3
        grid = pixel_grid(height, width, dtype=torch.float64).reshape(2, -1)  # 2xN
        points = torch.cat([grid, torch.ones_like(grid[:1])])  # 3xN homogeneous pixels of the current frame
        sources = prev_from_cur @ points  # Bx3xN
        sources = sources[:, :2] / sources[:, 2:3].clamp(min=1e-12)
        return (sources - grid).reshape(-1, 2, height, width).to(torch.float32)

    def apply(self, image: torch.Tensor, *, border: str = "replicate") -> torch.Tensor:
        """Move ``image`` ``(B,C,h,w)`` (any size: the motion is rescaled) the way the video's camera moved.

        Returns the image as the current video frame's camera would see it, ``(B,C,h,w)``.
        """
        if not isinstance(image, torch.Tensor) or image.ndim != 4:
            raise AnimatorError("image must be a (B,C,H,W) tensor", field="image")
        flow = self.as_flow(tuple(image.shape[-2:])).to(image.device)
        return warp_by_flow(image, flow, border=border)


def _matched_points(grey_prev: np.ndarray, grey_cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ORB features matched both ways (cross-check): ``(N,2)`` float32 pixel positions in prev and in cur."""
    import cv2

    orb = cv2.ORB_create(nfeatures=3000)
    keys_prev, desc_prev = orb.detectAndCompute(grey_prev, None)
    keys_cur, desc_cur = orb.detectAndCompute(grey_cur, None)
    if desc_prev is None or desc_cur is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc_prev, desc_cur)
    points_prev = np.float32([keys_prev[m.queryIdx].pt for m in matches]).reshape(-1, 2)
    points_cur = np.float32([keys_cur[m.trainIdx].pt for m in matches]).reshape(-1, 2)
    return points_prev, points_cur


def _fit_cur_from_prev(points_prev: np.ndarray, points_cur: np.ndarray, method: str) -> tuple[np.ndarray, int]:
    """RANSAC fit of a 3x3 ``cur_from_prev``; identity and 0 inliers when there is too little to fit."""
    import cv2

    identity = np.eye(3)
    # A homography needs 4 correspondences and a similarity 2; ask for margin so RANSAC has a choice.
    if len(points_prev) < (8 if method == "perspective" else 6):
        return identity, 0
    if method == "perspective":
        matrix, inlier_flags = cv2.findHomography(points_prev, points_cur, cv2.RANSAC, 2.0)
    else:
        # Rotation, uniform scale and translation: what a camera pan/zoom/roll does; a full affine would also fit
        # shear, which a camera cannot make and which RANSAC then invents from noise.
        affine, inlier_flags = cv2.estimateAffinePartial2D(
            points_prev, points_cur, method=cv2.RANSAC, ransacReprojThreshold=2.0
        )
        matrix = None if affine is None else np.vstack([affine, [0.0, 0.0, 1.0]])
    if matrix is None or not np.all(np.isfinite(matrix)):
        return identity, 0
    return matrix, int(inlier_flags.sum())


def estimate_camera_motion(
    raw_prev: torch.Tensor,
    raw_cur: torch.Tensor,
    *,
    method: str = "perspective",
    estimator: FlowEstimator | str | None = None,
) -> Motion:
    """The camera motion from ``raw_prev`` to ``raw_cur`` (two input-video frames), for hybrid motion.

    Args:
        raw_prev, raw_cur: ``(B,3,H,W)`` in [0,1], same size.
        method: ``perspective`` (RANSAC homography from ORB matches), ``affine`` (RANSAC rotation + uniform scale +
            translation from ORB matches) or ``optical_flow`` (the dense flow itself: follows every moving thing,
            not only the camera).
        estimator: flow estimator (or its name) for ``optical_flow``; default ``dis_medium``.

    Returns:
        a :class:`Motion`; ``motion.apply(generated_prev)`` moves a generated frame like the video moved. Frames with
        too few feature matches (a fade to black, a flat sky) get the identity, and ``inliers`` 0 says so.
    """
    if method not in CAMERA_MOTION_METHODS:
        raise AnimatorError(
            f"unknown camera motion method {method!r}",
            field="method",
            hint="use one of: " + ", ".join(CAMERA_MOTION_METHODS),
        )
    check_image_pair(raw_prev, raw_cur)
    size = (int(raw_prev.shape[-2]), int(raw_prev.shape[-1]))
    if method == "optical_flow":
        flow = _resolve_estimator(estimator)(raw_cur, raw_prev)
        return Motion(method=method, size=size, flow=flow)
    matrices, inliers = [], []
    for grey_prev, grey_cur in zip(to_grey_uint8(raw_prev), to_grey_uint8(raw_cur.to(raw_prev.device))):
        matrix, count = _fit_cur_from_prev(*_matched_points(grey_prev, grey_cur), method)
        matrices.append(matrix)
        inliers.append(count)
    matrix = torch.from_numpy(np.stack(matrices)).to(torch.float64)
    return Motion(method=method, size=size, matrix=matrix, inliers=tuple(inliers))
