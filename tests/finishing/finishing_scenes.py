"""Moving scenes whose true in-between frames are known, for the finishing tests: a photograph sliding under a
second photograph's patch (both at sub-pixel steps), rendered at half steps so the odd frames are the truth."""

from __future__ import annotations

import numpy as np

from animator.backends.flow.synthetic import sliding_patch_frames


def sliding_scene(frames: int = 4, size=(96, 128), bg_step=(3.3, 1.4), fg_step=(-5.2, 2.6)) -> list[np.ndarray]:
    """``2 * frames - 1`` (H,W,3) uint8 frames at half steps: even ones are the input, odd ones the truth."""
    from skimage import data

    half = sliding_patch_frames(
        data.astronaut(),
        data.coffee(),
        size=size,
        frames=2 * frames - 1,
        bg_step=(bg_step[0] / 2, bg_step[1] / 2),
        fg_step=(fg_step[0] / 2, fg_step[1] / 2),
        box=(60, 30, 36, 36),
    )
    return [(f.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8) for f in half]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def write_folder(folder, frames: list[np.ndarray]) -> None:
    from animator.images import save_frame

    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        save_frame(folder / f"{index:04d}.png", frame)
