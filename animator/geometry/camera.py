"""Pinhole camera, per-frame camera moves and camera paths (OpenCV axes: x right, y down, z forward).

Units and Deforum parity
------------------------
Depth ``z`` is in *scene units*; the render maps model disparity to ``z`` in ``[near, far]`` (default 200 .. 10000).
Translations are scene units per frame, rotations degrees per frame. Deforum's 3D mode (``anim_frame_warp_3d``)
multiplies translations by ``1/200`` (:data:`DEFORUM_TRANSLATION_SCALE`) and warps with a depth that is about 1 near
the camera (MiDaS output mapped through ``(50 - d) / 19``, roughly 1 .. 2.6). It never unprojects through the
intrinsics: it moves the point ``(x_grid, y_grid, z)`` (``x_grid`` in [-1, 1] across the frame) with pytorch3d's
``X @ R + T`` and re-projects it with ``f / z``. What that means, with ``P = 1 / tan(fov / 2)``:

* ``translation_x`` / ``translation_y``: Deforum shifts the picture by ``f * t / 200 / z_deforum`` pixels, we by
  ``f * t / z``. With our near plane at 200 (:data:`DEFORUM_DEPTH_SCALE`) ``z = 200 * z_deforum`` near the camera,
  so the factors cancel and **these values import unchanged** (:data:`DEFORUM_TRANSLATION_TO_SCENE` = 1).
* ``rotation_3d_x`` / ``rotation_3d_y``: both move the image centre by ``f * tan(angle)``: **unchanged**.
* ``translation_z`` and ``rotation_3d_z``: because Deforum's points sit at grid coordinates instead of
  unprojected positions, its zoom and roll come out ``P / z_deforum`` times stronger than the same move of a real
  camera (2.7x at the default fov 40 and Deforum depth 1). :func:`deforum_motion_to_scene` multiplies them by that
  factor so an imported file zooms and rolls by a comparable amount.

Far away our depth runs to 10000 where Deforum's stops near 2.6 * 200, so distant scenery moves less than in
Deforum: that is correct parallax, and the reason the near/far settings matter here.

Directions (each derived from Deforum's pytorch3d-based transform and pinned in tests), for a positive value:

=================  ===========================================  ==========================
parameter          camera                                       picture on screen
=================  ===========================================  ==========================
translation_x      moves right (+x)                             moves left
translation_y      moves up (-y)                                moves down
translation_z      moves forward (+z)                           zooms in (grows)
rotation_3d_x      tilts up (pitch)                             moves down
rotation_3d_y      pans right (yaw)                             moves left
rotation_3d_z      rolls clockwise as seen by the viewer        turns counter-clockwise
=================  ===========================================  ==========================

As a matrix: ``dst_from_src = [[R.T, t], [0, 1]]`` with ``R = Rx(rx) @ Ry(ry) @ Rz(rz)`` (right-handed rotations about
the OpenCV axes, angles in radians) and ``t = (-tx, +ty, -tz)``: the same algebra as Deforum's
``X_new = X_old @ R + T`` with ``T = (-tx, ty, -tz) / 200``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from animator.checks import check_finite
from animator.errors import AnimatorError

#: Deforum's 3D mode multiplies translation schedules by this ("matches Disco") before moving its camera.
DEFORUM_TRANSLATION_SCALE = 1.0 / 200.0
#: Our scene-unit depth of what Deforum's depth calls 1 (its nearest depth): the default near plane.
DEFORUM_DEPTH_SCALE = 200.0
#: Factor from a Deforum translation_x/y value to ours: DEFORUM_TRANSLATION_SCALE * DEFORUM_DEPTH_SCALE = 1.
DEFORUM_TRANSLATION_TO_SCENE = DEFORUM_TRANSLATION_SCALE * DEFORUM_DEPTH_SCALE
#: Deforum rotation values are degrees per frame, as ours.
DEFORUM_ROTATION_TO_DEGREES = 1.0


def deforum_translation_to_scene(value: float) -> float:
    """A Deforum ``translation_x/y`` value in our scene units per frame (the factor is 1; see the module docstring)."""
    return value * DEFORUM_TRANSLATION_TO_SCENE


def deforum_motion_to_scene(
    translation_x: float,
    translation_y: float,
    translation_z: float,
    rotation_x: float,
    rotation_y: float,
    rotation_z: float,
    *,
    fov_deg: float = 40.0,
    aspect: float = 1.0,
    deforum_depth: float = 1.0,
) -> tuple[float, float, float, float, float, float]:
    """One frame of Deforum 3D motion (its ``translation_*``, ``rotation_3d_*`` values) in our units.

    Signs never change (ours follow Deforum's). ``translation_z`` and ``rotation_3d_z`` are scaled by
    ``1 / (tan(fov/2) * sqrt(aspect) * deforum_depth)``, the factor by which Deforum's pseudo-3D transform
    exaggerates zoom and roll for content at Deforum depth ``deforum_depth`` (1 = its nearest; the factor is
    ``1 / tan(fov/2)`` vertically and ``1 / (tan(fov/2) aspect)`` horizontally, so their geometric mean is used);
    everything else is unchanged.

    Args:
        fov_deg: Deforum's ``fov`` (vertical, degrees).
        aspect: frame width / height.
        deforum_depth: the Deforum depth to match at (about 1 .. 2.6 for its MiDaS mapping).

    Example:
        >>> [round(v, 3) for v in deforum_motion_to_scene(1.0, 2.0, 1.0, 0.5, 0.5, 1.0, fov_deg=90.0)]
        [1.0, 2.0, 1.0, 0.5, 0.5, 1.0]
    """
    if not 0.0 < fov_deg < 180.0:
        raise AnimatorError(f"must lie strictly between 0 and 180 degrees, got {fov_deg}", field="fov_deg")
    if not deforum_depth > 0:
        raise AnimatorError(f"must be positive, got {deforum_depth}", field="deforum_depth")
    if not aspect > 0:
        raise AnimatorError(f"must be positive (width / height), got {aspect}", field="aspect")
    exaggeration = 1.0 / (math.tan(math.radians(fov_deg) / 2.0) * math.sqrt(aspect) * deforum_depth)
    return (
        translation_x * DEFORUM_TRANSLATION_TO_SCENE,
        translation_y * DEFORUM_TRANSLATION_TO_SCENE,
        translation_z * DEFORUM_TRANSLATION_TO_SCENE * exaggeration,
        rotation_x * DEFORUM_ROTATION_TO_DEGREES,
        rotation_y * DEFORUM_ROTATION_TO_DEGREES,
        rotation_z * DEFORUM_ROTATION_TO_DEGREES * exaggeration,
    )


def _as_tensor(value, name: str, device, dtype) -> torch.Tensor:
    if isinstance(value, (int, float)):  # checked on the host: a check on the device would wait for it
        if not math.isfinite(value):
            raise AnimatorError("contains NaN or infinite values", field=name)
        return torch.tensor(value, device=device, dtype=dtype)
    tensor = torch.as_tensor(value, device=device, dtype=dtype)
    if tensor.ndim > 1:
        raise AnimatorError(f"expected a number or a (B,) tensor, got shape {tuple(tensor.shape)}", field=name)
    check_finite(tensor, name)
    return tensor


def intrinsics_from_fov(fov_deg, height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pinhole intrinsics from a vertical field of view, principal point at the image centre.

    Pixel centres are at integer coordinates (OpenCV, kornia), so the centre is ``((W-1)/2, (H-1)/2)``.

    Args:
        fov_deg: vertical field of view in degrees, in (0, 180); a float or a ``(B,)`` tensor.
        height, width: frame size in pixels.

    Returns:
        ``K`` of shape ``(3, 3)``, or ``(B, 3, 3)`` for a ``(B,)`` ``fov_deg``.

    Example:
        >>> K = intrinsics_from_fov(90.0, 100, 200)
        >>> float(K[0, 0]), float(K[0, 2]), float(K[1, 2])
        (50.0, 99.5, 49.5)
    """
    if int(height) <= 0 or int(width) <= 0:
        raise AnimatorError(f"frame size must be positive, got {height}x{width}", field="height/width")
    fov = _as_tensor(fov_deg, "fov_deg", device, dtype)
    if not 0 < fov_deg < 180 if isinstance(fov_deg, (int, float)) else bool(((fov <= 0) | (fov >= 180)).any()):
        raise AnimatorError(f"must lie strictly between 0 and 180 degrees, got {fov.tolist()}", field="fov_deg")
    focal = (height / 2.0) / torch.tan(torch.deg2rad(fov) / 2.0)
    K = torch.zeros(fov.shape + (3, 3), device=device, dtype=dtype)
    K[..., 0, 0] = focal
    K[..., 1, 1] = focal
    K[..., 0, 2] = (width - 1) / 2.0
    K[..., 1, 2] = (height - 1) / 2.0
    K[..., 2, 2] = 1.0
    return K


def _rotation_x(a: torch.Tensor) -> torch.Tensor:  # (...,) -> (...,3,3), right-handed about +x
    c, s, one, zero = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).reshape(a.shape + (3, 3))


def _rotation_y(a: torch.Tensor) -> torch.Tensor:
    c, s, one, zero = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).reshape(a.shape + (3, 3))


def _rotation_z(a: torch.Tensor) -> torch.Tensor:
    c, s, one, zero = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(a.shape + (3, 3))


def motion_to_pose(
    translation_x,
    translation_y,
    translation_z,
    rotation_x,
    rotation_y,
    rotation_z,
    *,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """One frame's camera move (keyframe values, Deforum's signs) as ``dst_from_src``.

    Args:
        translation_x, translation_y, translation_z: scene units per frame (Deforum values import unchanged).
        rotation_x, rotation_y, rotation_z: degrees per frame (Deforum's ``rotation_3d_*``).
        Each a float or a ``(B,)`` tensor; they broadcast.

    Returns:
        ``dst_from_src`` ``(4, 4)`` or ``(B, 4, 4)``: maps points in the previous frame's camera coordinates to the
        new frame's. See the module docstring for the direction of each parameter.

    Example:
        >>> pose = motion_to_pose(0.0, 0.0, 10.0, 0.0, 0.0, 0.0)
        >>> float(pose[2, 3])  # moving forward brings points 10 units closer
        -10.0
    """
    names = ("translation_x", "translation_y", "translation_z", "rotation_x", "rotation_y", "rotation_z")
    values = [
        _as_tensor(v, n, device, dtype)
        for v, n in zip((translation_x, translation_y, translation_z, rotation_x, rotation_y, rotation_z), names)
    ]
    try:
        tx, ty, tz, rx, ry, rz = torch.broadcast_tensors(*values)
    except RuntimeError as exc:
        raise AnimatorError(f"motion values do not broadcast: {exc}", field="motion_to_pose") from exc
    rotation = _rotation_x(torch.deg2rad(rx)) @ _rotation_y(torch.deg2rad(ry)) @ _rotation_z(torch.deg2rad(rz))
    pose = torch.zeros(tx.shape + (4, 4), device=tx.device, dtype=dtype)
    pose[..., :3, :3] = rotation.transpose(-1, -2)
    pose[..., :3, 3] = torch.stack([-tx, ty, -tz], -1)
    pose[..., 3, 3] = 1.0
    return pose


def invert_pose(pose: torch.Tensor) -> torch.Tensor:
    """Inverse of a rigid ``(...,4,4)`` pose, exact for rotations (transpose instead of a general inverse)."""
    rotation_t = pose[..., :3, :3].transpose(-1, -2)
    inverse = torch.zeros_like(pose)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -(rotation_t @ pose[..., :3, 3:4])[..., 0]
    inverse[..., 3, 3] = 1.0
    return inverse


def camera_path(motions) -> torch.Tensor:
    """Accumulate per-frame moves into each frame's camera pose.

    Args:
        motions: ``(N, 6)`` numpy array or tensor, columns ``translation_x, translation_y, translation_z,
            rotation_x, rotation_y, rotation_z``. Row ``i`` is the move from frame ``i-1`` to frame ``i`` (as Deforum
            applies frame ``i``'s schedule values when it warps into frame ``i``); row 0 is ignored.

    Returns:
        ``world_from_cam`` ``(N, 4, 4)``: frame 0 is the identity (the world frame is frame 0's camera).
        Float64 (accumulated without drift) for numpy input, the input's dtype for a floating tensor.
    """
    if isinstance(motions, np.ndarray):
        motions = torch.from_numpy(np.asarray(motions, dtype=np.float64))
    if not isinstance(motions, torch.Tensor):
        raise AnimatorError(f"expected an (N,6) numpy array or tensor, got {type(motions).__name__}", field="motions")
    if motions.ndim != 2 or motions.shape[1] != 6 or motions.shape[0] < 1:
        raise AnimatorError(f"expected shape (N,6) with N >= 1, got {tuple(motions.shape)}", field="motions")
    out_dtype = motions.dtype if motions.is_floating_point() else torch.float64
    check_finite(motions.to(torch.float64), "motions")
    steps = motion_to_pose(*motions.to(torch.float64).unbind(-1), device=motions.device, dtype=torch.float64)
    src_from_dst = invert_pose(steps)  # world_from_cam[i] = world_from_cam[i-1] @ prev_from_this
    poses = [torch.eye(4, dtype=torch.float64, device=motions.device)]
    for i in range(1, motions.shape[0]):
        poses.append(poses[-1] @ src_from_dst[i])
    return torch.stack(poses).to(out_dtype)


def relative_pose(world_from_cam: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """``dst_from_src`` between two frames of a camera path (for cadence: warp frame ``src``'s image to ``dst``).

    Args:
        world_from_cam: ``(N, 4, 4)`` from :func:`camera_path`.
        src, dst: frame indices in ``[0, N)``.

    Returns:
        ``(4, 4)`` ``dst_from_src``.
    """
    if not isinstance(world_from_cam, torch.Tensor) or world_from_cam.ndim != 3 or world_from_cam.shape[1:] != (4, 4):
        shape = tuple(getattr(world_from_cam, "shape", ()))
        raise AnimatorError(f"expected an (N,4,4) tensor, got {shape}", field="world_from_cam")
    count = world_from_cam.shape[0]
    for name, index in (("src", src), ("dst", dst)):
        if not -count <= int(index) < count:
            raise AnimatorError(f"frame {index} is outside the path of {count} frames", field=name)
    return invert_pose(world_from_cam[dst]) @ world_from_cam[src]


def focal_from_fov(fov_deg: float, height: int) -> float:
    """Focal length in pixels of a vertical field of view (what :func:`intrinsics_from_fov` puts on the diagonal)."""
    return (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
