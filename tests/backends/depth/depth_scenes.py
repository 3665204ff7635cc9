"""Scenes whose true depth the tests construct (shared by the depth tests; not a test module itself)."""

from __future__ import annotations

import numpy as np
import torch


def ground_and_wall_scene(
    height: int = 96,
    width: int = 128,
    *,
    camera_height: float = 1.5,
    wall_z: float = 30.0,
    focal: float = 100.0,
    haze: float = 12.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray-cast a checkered ground plane in front of a textured back wall, seen by a level pinhole camera.

    Aerial perspective as in real outdoor shots: colours fade towards a pale blue haze with ``1 - exp(-z / haze)``.

    Returns:
        image ``# 1x3xHxW`` in [0, 1] and true z ``# 1x1xHxW`` (OpenCV axes: y down, so the ground is at y = +h).
    """
    v, u = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    cx, cy = width / 2, height / 2
    ray_x, ray_y = (u - cx) / focal, (v - cy) / focal
    with np.errstate(divide="ignore"):
        ground_z = np.where(ray_y > 0, camera_height / ray_y, np.inf)
    on_ground = ground_z < wall_z
    z = np.where(on_ground, ground_z, wall_z)
    world_x, world_y = ray_x * z, ray_y * z

    checker = (np.floor(world_x) + np.floor(z)).astype(int) % 2  # 1 m squares on the ground
    ground = np.where(checker[..., None] == 1, [0.15, 0.55, 0.10], [0.45, 0.30, 0.10])  # grass / earth
    rng = np.random.default_rng(0)
    blotches = rng.random((8, 8))
    wall_pattern = blotches[
        (np.clip(world_y + 10, 0, 19.99) / 2.5).astype(int) % 8, (np.clip(world_x + 40, 0, 79.99) / 10).astype(int) % 8
    ]
    wall = np.stack([0.35 + 0.2 * wall_pattern, 0.30 + 0.2 * wall_pattern, 0.25 + 0.2 * wall_pattern], -1)
    colour = np.where(on_ground[..., None], ground, wall)
    fade = 1.0 - np.exp(-z / haze)
    image = (1 - fade[..., None]) * colour + fade[..., None] * np.array([0.75, 0.82, 0.90])
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None].float().clamp(0, 1)
    return image_t, torch.from_numpy(z)[None, None].float()
