"""A tiny ray caster for the geometry tests: scenes whose depth, colour and visibility are known exactly.

Objects are infinite planes and axis-aligned boxes in world coordinates (OpenCV axes: x right, y down, z forward),
each with a smooth procedural texture (periods of 10+ pixels at the test sizes, so bilinear resampling is
accurate). A camera is ``world_from_cam`` (4x4) plus intrinsics ``K``; pixel centres are at integers. Everything is
float64 so the ground truth is exact to far below what the tests measure.
"""

from __future__ import annotations

import math

import torch

DTYPE = torch.float64


def stripes(direction, phases, period: float):
    """Colour = 0.5 + 0.35 sin(2 pi p.direction / period + phase_c), per channel c."""
    direction = torch.tensor(direction, dtype=DTYPE)
    direction = direction / direction.norm()
    phases = torch.tensor(phases, dtype=DTYPE)

    def colour(points: torch.Tensor) -> torch.Tensor:  # Nx3 -> Nx3
        along = points @ direction
        return 0.5 + 0.35 * torch.sin(2 * math.pi * along[:, None] / period + phases)

    return colour


class Plane:
    def __init__(self, point, normal, colour):
        self.point = torch.tensor(point, dtype=DTYPE)
        self.normal = torch.tensor(normal, dtype=DTYPE)
        self.colour = colour

    def intersect(self, origin: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        denom = dirs @ self.normal
        safe = torch.where(denom.abs() > 1e-12, denom, torch.full_like(denom, 1e-12))
        t = ((self.point - origin) @ self.normal) / safe
        return torch.where((t > 1e-9) & (denom.abs() > 1e-12), t, torch.full_like(t, math.inf))


class Box:
    def __init__(self, low, high, colour):
        self.low = torch.tensor(low, dtype=DTYPE)
        self.high = torch.tensor(high, dtype=DTYPE)
        self.colour = colour

    def intersect(self, origin: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        safe = torch.where(dirs.abs() > 1e-12, dirs, torch.full_like(dirs, 1e-12))
        t0, t1 = (self.low - origin) / safe, (self.high - origin) / safe
        near = torch.minimum(t0, t1).amax(1)
        far = torch.maximum(t0, t1).amin(1)
        hit = (near <= far) & (near > 1e-9)
        return torch.where(hit, near, torch.full_like(near, math.inf))


def intrinsics(fov_deg: float, height: int, width: int) -> torch.Tensor:
    focal = (height / 2) / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=DTYPE)


def cast(objects, K, world_from_cam, pixels: torch.Tensor):
    """Cast rays through ``pixels`` (Nx2, u v). Returns colour Nx3, camera z N (inf on a miss), world points Nx3."""
    K, world_from_cam = K.to(DTYPE), world_from_cam.to(DTYPE)
    rays_cam = torch.stack(
        [(pixels[:, 0] - K[0, 2]) / K[0, 0], (pixels[:, 1] - K[1, 2]) / K[1, 1], torch.ones(len(pixels), dtype=DTYPE)],
        1,
    )  # z = 1, so the ray parameter is camera z
    origin = world_from_cam[:3, 3]
    dirs = rays_cam @ world_from_cam[:3, :3].T
    hits = torch.stack([obj.intersect(origin, dirs) for obj in objects])  # OxN
    z, which = hits.min(0)
    points = origin + z[:, None] * dirs
    colour = torch.zeros(len(pixels), 3, dtype=DTYPE)
    for index, obj in enumerate(objects):
        mask = (which == index) & torch.isfinite(z)
        if mask.any():
            colour[mask] = obj.colour(points[mask])
    return colour, z, points


def pixel_grid(height: int, width: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(height, dtype=DTYPE), torch.arange(width, dtype=DTYPE), indexing="ij")
    return torch.stack([cols.reshape(-1), rows.reshape(-1)], 1)


def render(objects, K, world_from_cam, height: int, width: int):
    """Image (1,3,H,W) float64, depth (1,1,H,W), world points (H*W,3) of the view."""
    colour, z, points = cast(objects, K, world_from_cam, pixel_grid(height, width))
    if not torch.isfinite(z).all():
        raise ValueError("the test scene must cover every pixel")
    image = colour.T.reshape(1, 3, height, width)
    return image, z.reshape(1, 1, height, width), points


def true_visibility(objects, K, world_from_cam_src, points_dst: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(1,1,H,W) bool: True where the surface a destination pixel sees is visible in the source view.

    Each destination surface point is projected into the source camera; it is visible when it lands inside the
    frame and the source ray through that exact (sub-pixel) position hits nothing nearer.
    """
    cam_from_world = torch.linalg.inv(world_from_cam_src.to(DTYPE))
    local = points_dst @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    u = K[0, 0] * local[:, 0] / local[:, 2] + K[0, 2]
    v = K[1, 1] * local[:, 1] / local[:, 2] + K[1, 2]
    inside = (local[:, 2] > 0) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    _, z_seen, _ = cast(objects, K, world_from_cam_src, torch.stack([u, v], 1))
    unoccluded = z_seen >= local[:, 2] * (1 - 1e-6)
    return (inside & unoccluded).reshape(1, 1, height, width)


def pose(rotation_deg=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """world_from_cam from rotations about x, y, z (applied in that order, right-handed) and a camera position."""
    ax, ay, az = (math.radians(a) for a in rotation_deg)
    rx = torch.tensor([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]], dtype=DTYPE)
    ry = torch.tensor([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]], dtype=DTYPE)
    rz = torch.tensor([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]], dtype=DTYPE)
    out = torch.eye(4, dtype=DTYPE)
    out[:3, :3] = rz @ ry @ rx
    out[:3, 3] = torch.tensor(translation, dtype=DTYPE)
    return out


def room_with_box():
    """A textured back wall at z=600, a floor 150 below the camera, and a box floating at z 280..340."""
    wall = Plane((0, 0, 600), (0, 0, 1), stripes((1.0, 0.6, 0.0), (0.0, 2.0, 4.0), period=70.0))
    # the floor is seen at a grazing angle: stripes run mostly across x so the image never aliases
    floor = Plane((0, 150, 0), (0, 1, 0), stripes((1.0, 0.0, 0.1), (1.0, 3.0, 5.0), period=60.0))
    box = Box((-60, -50, 280), (20, 60, 340), stripes((1.0, -1.0, 0.3), (3.0, 0.5, 1.5), period=45.0))
    return [wall, floor, box]


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    mask = mask.expand_as(a)
    mse = ((a - b)[mask] ** 2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a & b).sum() / (a | b).sum()).item()
