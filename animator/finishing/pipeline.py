"""The keyframe file's finishing passes (``output.upscale``, ``output.interpolate``), run on a render's frames.

:func:`finish` is what ``animator render`` calls after the last frame, while the run folder's lossless journal is
still there. Order: upscale first, then interpolate: the upscaler (the expensive pass, and the one whose detail must
stay steady) then sees each rendered frame once instead of every in-between, and the in-betweens are made at the
final size. Both passes stream in one go (no intermediate video): each upscaled frame goes straight to the
interpolation, whose output goes straight to ffmpeg under a temporary name.

The unfinished video the render wrote is kept in the run folder as ``unfinished<suffix>`` (with its soundtrack,
which the finished video carries over), so the frames before finishing stay next to the run's other records.
Running :func:`finish` again (``--resume`` of the finishing stage) redoes the passes from the same frames.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from animator.errors import AnimatorError

__all__ = ["finish", "run_config", "UNFINISHED"]

UNFINISHED = "unfinished"


def run_config(run_dir: str | os.PathLike):
    """The config a run folder's render used: its keyframe copy with the recorded overrides."""
    from animator.keyframes import load_config
    from animator.run_folder import RunFolder

    folder = RunFolder(run_dir)
    record = folder.record()
    return load_config(
        folder.keyframes_path(), overrides=record.get("overrides") or None, base_dir=record.get("base_dir")
    )


def _upscale_size(upscale, width: int, height: int) -> tuple[int, int]:
    """The finished size: ``scale``, or ``width`` and / or ``height`` (the other side keeps the aspect ratio)."""
    from animator.finishing.upscale import output_size

    if upscale.scale is not None:
        return output_size(width, height, upscale.scale, multiple=8 if upscale.method == "diffusion" else 2)
    if upscale.width is not None and upscale.height is not None:
        return int(upscale.width), int(upscale.height)
    scale = upscale.width / width if upscale.width is not None else upscale.height / height
    return output_size(width, height, scale, multiple=8 if upscale.method == "diffusion" else 2)


def _make_upscaler(upscale, config, size: tuple[int, int], device):
    from animator.finishing.upscale import LanczosUpscaler, ModelUpscaler

    if upscale.method == "lanczos":
        return LanczosUpscaler(size)
    if upscale.method == "model":
        if upscale.model is None:
            raise AnimatorError("output.upscale.method model needs output.upscale.model", field="output.upscale.model")
        return ModelUpscaler(upscale.model, size, device=device, tile=upscale.tile)
    from animator.finishing.diffusion_upscale import DiffusionUpscaler

    return DiffusionUpscaler(
        config.backends.denoise,
        size,
        prompt=_first_prompt(config.prompts),
        strength=upscale.strength,
        seed=max(int(config.seed), 0),
        device=device,
        tile=upscale.tile,
    )


def _first_prompt(prompts: tuple[tuple[str, str], ...]) -> str:
    """The positive prompt of the file's first prompt keyframe (the detail the upscaler adds should match the
    render's), without its ``--neg`` part."""
    return prompts[0][1].split("--neg")[0].strip() if prompts else ""


def finish(
    run_dir: str | os.PathLike,
    config,
    output: str | os.PathLike,
    *,
    device=None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path | None:
    """Applies ``config.output.upscale`` and ``config.output.interpolate`` to the run's frames and writes ``output``.

    Args:
        run_dir: the run folder, with its journal (or --frames-dir PNGs) still in place.
        config: the render's :class:`~animator.keyframes.AnimationConfig`.
        output: the finished video (normally the render's own output path: its unfinished version is moved into
            the run folder first).
        device: where networks run (default: CUDA when present).
        progress: ``progress(stage, done, total)``, stage ``"finishing"``.

    Returns:
        ``output``, or None when the config asks for no finishing pass.
    """
    from animator.finishing.frames import open_frames
    from animator.finishing.interpolate import interpolate
    from animator.video import EncodeSettings, VideoWriter, mux_audio, probe

    interpolation, upscaling = config.output.interpolate, config.output.upscale
    if interpolation is None and upscaling is None:
        return None
    run_dir, output = Path(run_dir), Path(output)
    unfinished = run_dir / f"{UNFINISHED}{output.suffix or '.mp4'}"
    if output.is_file() and not unfinished.exists():
        # the render's own video, kept with its soundtrack; once it is there, ``output`` is an earlier finished
        # version (a finishing stage run again), which the new one replaces
        os.replace(output, unfinished)
    source = open_frames(run_dir)
    if source.video is not None and source.video.resolve() == output.resolve():
        source = open_frames(run_dir)  # the fallback video moved: read it from its new place
    soundtrack = unfinished if unfinished.is_file() and probe(unfinished).has_audio else None
    source = dataclasses.replace(source, audio=soundtrack)
    out = config.output
    settings = EncodeSettings(codec=out.codec, crf=out.crf, preset=out.preset, pix_fmt=out.pix_fmt)
    report = (lambda done, total: progress("finishing", done, total)) if progress is not None else None

    if upscaling is not None:
        size = _upscale_size(upscaling, source.width, source.height)
        upscaler = _make_upscaler(upscaling, config, size, device)
        frames = source
        source = dataclasses.replace(
            source, width=size[0], height=size[1], stream=lambda: (upscaler(f) for f in frames.frames())
        )
    if interpolation is not None:
        interpolate(
            source,
            output,
            factor=interpolation.factor,
            fps=interpolation.fps,
            method=interpolation.method,
            slowmo=interpolation.slowmo,
            model=interpolation.model,
            settings=settings,
            device=device,
            progress=report,
        )
        return output
    with VideoWriter(output, width=source.width, height=source.height, fps=source.fps, settings=settings) as writer:
        for done, frame in enumerate(source.frames(), start=1):
            writer.write(frame)
            if report is not None:
                report(done, source.count)
    if soundtrack is not None:
        mux_audio(output, soundtrack)
    return output
