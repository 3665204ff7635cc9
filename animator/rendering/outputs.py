"""What a render does around its frames: the soundtrack, the flicker metric, the versions in the run record, and the
CPU cores left to the encoder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig
    from animator.rendering.context import RunContext
    from animator.rendering.models import Models
    from animator.run_folder import RunFolder


def add_soundtrack(config: AnimationConfig, output: Path, start: int) -> None:
    """The audio of the keyframe file (or of the input video), from the time of the first rendered frame."""
    from animator.video import mux_audio

    if not config.output.audio:
        return
    if config.audio is not None:
        mux_audio(output, config.audio.path, offset_s=config.audio.offset + start / config.fps)
    elif config.mode == "video" and config.video_input.keep_audio:
        from animator.video import probe

        source = probe(config.video_input.path)
        if source.has_audio:
            offset = (config.video_input.from_frame + start * config.video_input.every_nth) / (source.fps or config.fps)
            mux_audio(output, source.path, offset_s=offset)


def finish_video(ctx: RunContext, folder: RunFolder, output: Path, notify: Callable[[object], None]) -> None:
    """The keyframe file's finishing passes (``output.interpolate``, ``output.upscale``) over the run's lossless
    frames, written to ``output``, and the GIF (``output.gif``) of the finished video."""
    config = ctx.config
    if config.output.interpolate is not None or config.output.upscale is not None:
        from animator.events import MetricProgress
        from animator.finishing.pipeline import finish

        finish(
            folder.path,
            config,
            output,
            device=ctx.device,
            progress=lambda stage, done, total: notify(MetricProgress(stage, done, total)),
        )
    if config.output.gif:
        from animator.video import export_gif

        export_gif(output, output.with_suffix(".gif"), fps=min(config.fps, 25))


def measure(folder: RunFolder, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Flicker and drift of the finished frames (read from the lossless journal); ``progress(metric, done,
    total)`` as they go. Ctrl-C while they are measured skips only the metrics: the video is complete."""
    try:
        return {"flicker": flicker(folder, progress), "drift": drift(folder, progress)}
    except KeyboardInterrupt:
        return {"flicker": {"skipped": "interrupted"}}


def flicker(folder: RunFolder, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Flicker metric of the finished frames: frame-to-frame change the motion does not explain."""
    from animator.metrics import flicker as measure_flicker

    pairs = max(folder.journal_frame_count() - 1, 0)
    progress("flicker", 0, pairs)
    # dis_fast at <= 256 px: scores that compare across render sizes; ~15 ms a frame on two CPU cores
    report = measure_flicker(
        folder.journal_frames(),
        estimator="dis_fast",
        max_side=256,
        progress=lambda done: progress("flicker", done, pairs),
    )
    return report.to_dict()


def drift(folder: RunFolder, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Per-frame sharpness, colour shift, saturation and contrast against the first frame (burn, colour drift)."""
    from animator.metrics import drift as measure_drift

    frames = folder.journal_frame_count()
    progress("drift", 0, frames)
    return measure_drift(folder.journal_frames(), progress=lambda done: progress("drift", done, frames)).to_dict()


def versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {}
    for name in ("animator", "torch", "diffusers", "transformers", "kornia", "opencv-python-headless", "numpy", "qoi"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


@contextmanager
def cores_left_for_encoding(models: Models) -> Iterator[None]:
    """A warp-only render on the CPU leaves one core to ffmpeg and the journal writer, which need about as much CPU
    as the warp itself: torch's threads busy-waiting on every core would fight them (on 2 cores the demo runs at
    ~40 frames/s with one torch thread, ~34 with two). Diffusion renders keep every core: there the model is the
    work and the encoder idles."""
    if models.device.type != "cpu" or models.diffuses:
        yield
        return
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, min(before, cores - 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
