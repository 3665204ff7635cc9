"""Camera geometry: intrinsics, poses, the exact 3D warp with z-buffer and masks, and the 2D homography warp.

Pure tensor functions (CPU or CUDA, batched). Conventions (see ../shared/DESIGN.md): images ``(B,3,H,W)`` float in
[0, 1]; depth ``(B,1,H,W)`` positive z; OpenCV camera axes; poses named ``dst_from_src``. The units and the
mapping from Deforum settings are documented in :mod:`animator.geometry.camera` and :mod:`animator.geometry.warp2d`.
"""

from animator.geometry.camera import (
    DEFORUM_DEPTH_SCALE,
    DEFORUM_ROTATION_TO_DEGREES,
    DEFORUM_TRANSLATION_SCALE,
    DEFORUM_TRANSLATION_TO_SCENE,
    camera_path,
    deforum_motion_to_scene,
    deforum_translation_to_scene,
    intrinsics_from_fov,
    invert_pose,
    motion_to_pose,
    relative_pose,
)
from animator.geometry.warp2d import BORDER_MODES, homography_2d, warp_2d
from animator.geometry.warp3d import FILL_MODES, SAMPLING_MODES, Reprojection3D, Warped3D, reproject_3d, warp_3d

__all__ = [
    "BORDER_MODES",
    "DEFORUM_DEPTH_SCALE",
    "DEFORUM_ROTATION_TO_DEGREES",
    "DEFORUM_TRANSLATION_SCALE",
    "DEFORUM_TRANSLATION_TO_SCENE",
    "FILL_MODES",
    "SAMPLING_MODES",
    "camera_path",
    "deforum_motion_to_scene",
    "deforum_translation_to_scene",
    "homography_2d",
    "intrinsics_from_fov",
    "invert_pose",
    "motion_to_pose",
    "relative_pose",
    "reproject_3d",
    "Reprojection3D",
    "warp_2d",
    "Warped3D",
    "warp_3d",
]
