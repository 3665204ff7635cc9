"""In-betweens of a 3D render from its own camera path and depth (the ``camera`` interpolation method).

A 3D render knows where its camera was at every frame (the keyframe file's motion schedules, accumulated by
:func:`animator.plan.make_plan`). An in-between at time ``t`` between frames ``a`` and ``b`` is seen from the camera
in between (rotation slerped, position lerped, field of view lerped); both neighbours are moved to that camera by
the exact 3D warp (:func:`animator.geometry.warp_3d`, z-buffered, with hole masks) and blended by time where both
see a pixel, taken from the one that sees it where only one does. Depth comes from the config's depth backend,
kept steady over time the way the render keeps it (each frame's depth fitted to the previous frame's, warped).

Example:
    >>> import torch
    >>> from animator.geometry import motion_to_pose
    >>> pose = interpolate_pose(torch.eye(4, dtype=torch.float64), motion_to_pose(0, 0, 10, 0, 0, 0).inverse(), 0.5)
    >>> [round(float(v), 6) for v in pose[:3, 3]]
    [0.0, 0.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from animator.errors import AnimatorError

__all__ = ["interpolate_pose", "camera_tween", "CameraTweener"]


def interpolate_pose(world_from_a: torch.Tensor, world_from_b: torch.Tensor, t: float) -> torch.Tensor:
    """``world_from_cam`` ``(4, 4)`` a fraction ``t`` of the way from pose ``a`` to pose ``b``: the rotation by
    spherical linear interpolation (constant angular speed about one axis), the camera centre linearly."""
    from scipy.spatial.transform import Rotation

    a, b = world_from_a.detach().cpu().double(), world_from_b.detach().cpu().double()
    relative = Rotation.from_matrix((a[:3, :3].T @ b[:3, :3]).numpy())  # a's axes -> b's axes
    step = Rotation.from_rotvec(relative.as_rotvec() * float(t)).as_matrix()
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = a[:3, :3] @ torch.from_numpy(step)
    out[:3, 3] = (1.0 - t) * a[:3, 3] + t * b[:3, 3]
    return out.to(world_from_a.dtype)


def camera_tween(
    image_a: torch.Tensor,
    depth_a: torch.Tensor,
    image_b: torch.Tensor,
    depth_b: torch.Tensor,
    K: torch.Tensor,
    world_from_a: torch.Tensor,
    world_from_b: torch.Tensor,
    t: float,
    *,
    sampling: str = "bilinear",
) -> torch.Tensor:
    """The frame a camera between ``a`` and ``b`` sees, made from both by the exact 3D warp.

    Args:
        image_a, image_b: ``(1,3,H,W)`` float in [0,1].
        depth_a, depth_b: ``(1,1,H,W)`` z of each frame in its own camera.
        K: ``(3,3)`` intrinsics of the in-between camera (used for both warps, as the render's warp does).
        world_from_a, world_from_b: ``(4,4)`` camera poses of the two frames.
        t: time in [0, 1] (0 is ``a``).

    Returns:
        ``(1,3,H,W)`` float in [0,1]: where both frames see a surface, their warps blended ``1 - t : t``; where one
        does, that one; where neither does (revealed by both moves), the far-side fill of both, blended.
    """
    from animator.geometry import invert_pose, warp_3d

    world_from_t = interpolate_pose(world_from_a, world_from_b, t)
    t_from_world = invert_pose(world_from_t.double())
    from_a, valid_a, _ = warp_3d(
        image_a, depth_a, K, (t_from_world @ world_from_a.double()).float(), sampling=sampling, fill="background"
    )
    from_b, valid_b, _ = warp_3d(
        image_b, depth_b, K, (t_from_world @ world_from_b.double()).float(), sampling=sampling, fill="background"
    )
    weight_b = torch.where(valid_a == valid_b, torch.full_like(from_a[:, :1], float(t)), valid_b.to(from_a.dtype))
    return from_a * (1.0 - weight_b) + from_b * weight_b


def _to_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.array(frame)).to(device).permute(2, 0, 1)[None].float() / 255.0


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class CameraTweener:
    """In-betweens of a run folder's 3D render from its camera path and per-frame depth.

    Args:
        run_dir: the run folder (its keyframe copy and run.json rebuild the camera path).
        first_index: the render's frame index of the first frame that :meth:`pair` will be given.
        device: where depth and warps run (default: the config's device choice).

    Raises:
        AnimatorError: not a run folder, a render that is not in 3D mode.
    """

    name = "camera"

    def __init__(self, run_dir: str | Path, *, first_index: int = 0, device: str | torch.device | None = None) -> None:
        from animator.backends.depth import DepthTracker, load_depth_estimator
        from animator.devices import pick_device
        from animator.keyframes import evaluate, load_config
        from animator.plan import make_plan
        from animator.run_folder import RunFolder

        folder = RunFolder(run_dir)
        record = folder.record()
        config = load_config(
            folder.keyframes_path(), overrides=record.get("overrides") or None, base_dir=record.get("base_dir")
        )
        if config.mode != "3d":
            raise AnimatorError(
                f"the camera method needs a 3D render; {run_dir} was rendered in {config.mode!r} mode",
                field="--method",
                hint="use --method flow",
            )
        plan = make_plan(config, evaluate(config), base_seed=record.get("seed"))
        self.device = torch.device(device) if device is not None else pick_device(config.backends.device)
        self.world_from_cam = plan.world_from_cam.double()
        self.fov = np.asarray(plan.schedules.values["fov"], dtype=np.float64)
        self.near = np.asarray(plan.schedules.values["near"], dtype=np.float64)
        self.far = np.asarray(plan.schedules.values["far"], dtype=np.float64)
        self.sampling = config.motion.sampling
        self.first_index = int(first_index)
        self._estimator = load_depth_estimator(
            config.backends.depth, device=self.device, resolution=config.backends.depth_resolution
        )
        self._tracker = DepthTracker(near=200.0, far=10000.0, mode=config.coherence.depth_stability)
        self._last: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (frame index, image, depth)

    def _K(self, fov: float, height: int, width: int) -> torch.Tensor:
        from animator.geometry import intrinsics_from_fov

        return intrinsics_from_fov(float(fov), height, width).to(self.device)

    def _depth(self, index: int, image: torch.Tensor) -> torch.Tensor:
        """z of frame ``index``, fitted to the previous frame's depth warped here (as the render does)."""
        from animator.geometry import relative_pose, warp_3d

        with torch.inference_mode():
            disparity = self._estimator(image)
        reference_depth = reference_valid = None
        if self._last is not None and self._last[0] == index - 1:
            _, last_image, last_depth = self._last
            K = self._K(self.fov[index], *image.shape[-2:])
            pose = relative_pose(self.world_from_cam, index - 1, index).float()
            _, reference_valid, reference_depth = warp_3d(last_image, last_depth, K, pose)
        elif self._last is not None:
            self._tracker.reset()
        return self._tracker(
            disparity,
            reference_depth=reference_depth,
            reference_valid=reference_valid,
            near=float(self.near[index]),
            far=float(self.far[index]),
        )

    def _frame(self, index: int, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self._last is not None and self._last[0] == index:
            return self._last[1], self._last[2]
        if not 0 <= index < len(self.world_from_cam):
            raise AnimatorError(
                f"frame {index} is outside the render's camera path of {len(self.world_from_cam)} frames",
                hint="give the run folder itself (its frames match its keyframe file)",
            )
        image = _to_tensor(frame, self.device)
        depth = self._depth(index, image)
        self._last = (index, image, depth)
        return image, depth

    def pair(self, a: np.ndarray, b: np.ndarray, index: int = 0) -> Callable[[float], np.ndarray]:
        """``at(t)`` for the pair of frames ``index`` and ``index + 1`` of the sequence (``(H, W, 3)`` uint8)."""
        k = self.first_index + int(index)
        image_a, depth_a = self._frame(k, a)
        image_b, depth_b = self._frame(k + 1, b)
        height, width = a.shape[:2]

        def at(t: float) -> np.ndarray:
            K = self._K((1.0 - t) * self.fov[k] + t * self.fov[k + 1], height, width)
            with torch.inference_mode():
                tween = camera_tween(
                    image_a,
                    depth_a,
                    image_b,
                    depth_b,
                    K,
                    self.world_from_cam[k],
                    self.world_from_cam[k + 1],
                    t,
                    sampling=self.sampling,
                )
            return _to_uint8(tween)

        return at
