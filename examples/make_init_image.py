"""Draws examples/init.jpg, the demo's start frame: a procedural valley with mountain ridges, a lake and a field.

Made from code so the project can ship it under its own licence (MIT) with no third-party rights. It is built to
exercise the depth-aware warp: a sky at infinity, three mountain ridges at increasing distance (atmospheric
perspective), and a textured ground plane whose detail shrinks towards the horizon.

    python examples/make_init_image.py [--size 768] [--seed 7] [-o examples/init.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def fractal_1d(n: int, rng: np.random.Generator, octaves: int = 6, persistence: float = 0.5) -> np.ndarray:
    """Sum of octaves of smoothly interpolated random values: a ridge line in [0, 1]."""
    x = np.linspace(0, 1, n)
    out = np.zeros(n)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        knots = 2 ** (octave + 2) + 1
        values = rng.random(knots)
        out += amplitude * np.interp(x * (knots - 1), np.arange(knots), values)
        total += amplitude
        amplitude *= persistence
    return out / total


def value_noise_2d(h: int, w: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Bilinearly interpolated lattice noise in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.floor(ys).astype(int).clip(0, cells - 1), np.floor(xs).astype(int).clip(0, cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep: no visible lattice
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def draw(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w] / size
    horizon = 0.58
    haze = np.array([0.80, 0.84, 0.90])

    # Sky: a vertical gradient, a warm glow around a low sun, soft clouds.
    sky = np.array([0.30, 0.48, 0.80]) * (1 - yy[..., None] / horizon) + haze * (yy[..., None] / horizon)
    sun = np.exp(-(((xx - 0.68) ** 2 + (yy - 0.40) ** 2) / 0.004))[..., None]
    glow = np.exp(-(((xx - 0.68) ** 2 + (yy - 0.42) ** 2) / 0.05))[..., None]
    clouds = np.clip(value_noise_2d(h, w, rng, 6) * 0.7 + value_noise_2d(h, w, rng, 18) * 0.3 - 0.45, 0, 1)[..., None]
    image = sky * (1 - 0.25 * glow) + np.array([1.0, 0.85, 0.6]) * (0.35 * glow + sun)
    image = image * (1 - clouds) + np.array([0.95, 0.93, 0.92]) * clouds
    image = np.clip(image, 0, 1)

    # Mountain ridges, far to near: each darker, more saturated and less hazy (aerial perspective).
    ridges = [  # (base height above horizon, relief, colour, haze amount)
        (0.12, 0.22, np.array([0.42, 0.50, 0.62]), 0.55),
        (0.06, 0.18, np.array([0.30, 0.40, 0.42]), 0.35),
        (0.00, 0.12, np.array([0.20, 0.32, 0.22]), 0.15),
    ]
    columns = np.arange(w)
    for base, relief, colour, hazing in ridges:
        ridge = horizon - base - relief * fractal_1d(w, rng)
        mask = yy >= (ridge[columns] / 1.0)[None, :]
        texture = value_noise_2d(h, w, rng, 40)[..., None] * 0.25 + 0.85
        shade = np.clip(1.0 - (yy - ridge[None, :]) * 1.5, 0.6, 1.0)[..., None]
        rock = colour * texture * shade
        rock = rock * (1 - hazing) + haze * hazing
        image = np.where(mask[..., None], rock, image)

    # A lake on the horizon, mirroring the sky, then a field whose texture shrinks with distance.
    ground = yy >= horizon
    depth = np.where(ground, 1.0 / np.maximum(yy - horizon, 1e-3), 1e3)  # ground-plane distance ~ 1 / (y - horizon)
    u = (xx - 0.5) * depth
    lake = ground & (yy < horizon + 0.07) & (np.abs(xx - 0.45) < 0.35 - (yy - horizon) * 2)
    lake_colour = np.array([0.36, 0.52, 0.74]) * (0.9 + 0.1 * np.sin(depth * 3.0)[..., None])
    stripes = 0.5 + 0.5 * np.sin(u * 2.2 + value_noise_2d(h, w, rng, 12) * 4)
    grain = value_noise_2d(h, w, rng, 160)
    near = np.clip((yy - horizon) / (1 - horizon), 0, 1)[..., None]
    field = (
        np.array([0.36, 0.52, 0.16]) * (0.75 + 0.3 * stripes[..., None])
        + np.array([0.55, 0.45, 0.12]) * 0.25 * grain[..., None] * near
    )
    field = field * (0.55 + 0.45 * near) + haze * 0.35 * (1 - near) ** 4
    path = ground & (np.abs(u + 0.15 * np.sin(depth * 0.8)) < 0.18)
    field = np.where(path[..., None], np.array([0.62, 0.55, 0.42]) * (0.8 + 0.3 * grain[..., None]), field)
    image = np.where(ground[..., None], np.where(lake[..., None], lake_colour, field), image)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("init.jpg"))
    args = parser.parse_args()
    Image.fromarray(draw(args.size, args.seed)).save(args.output, quality=92)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
