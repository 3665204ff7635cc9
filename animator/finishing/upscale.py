"""Upscaling a video frame by frame: Lanczos (default, no weights), an upscaler network, or a diffusion pass.

- ``lanczos``: OpenCV's 8x8 Lanczos on 8-bit frames; sharp, fast, invents nothing.
- ``model``: any single-image upscaler spandrel loads (ESRGAN, Real-ESRGAN, Compact, SwinIR, HAT, DAT ... from a
  local ``.pth`` / ``.safetensors``), run in overlapping feathered tiles (:mod:`animator.finishing.tiles`) so a
  4K output fits in memory, half precision on a GPU when the architecture allows. spandrel is the optional extra
  ``animator[upscale]`` (it imports torchvision, which must not enter a CPU-only environment by accident).
  Its output is resized to the asked ``scale`` with Lanczos when the model's own scale differs.
- ``diffusion``: see :mod:`animator.finishing.diffusion_upscale`.

Frames stream through one at a time; the soundtrack is carried over.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from animator.choices import UPSCALE_METHODS
from animator.errors import AnimatorError

__all__ = ["UpscaleResult", "LanczosUpscaler", "ModelUpscaler", "upscale", "output_size"]


@dataclass(frozen=True)
class UpscaleResult:
    output: Path
    frames: int
    width: int
    height: int
    method: str
    seconds: float


def output_size(width: int, height: int, scale: float, *, multiple: int = 2) -> tuple[int, int]:
    """``(width, height)`` times ``scale``, rounded to a multiple of ``multiple`` (2: what 4:2:0 video needs)."""
    if not scale > 0 or not np.isfinite(scale):
        raise AnimatorError(f"the scale must be > 0, got {scale}", field="--scale")
    return (
        max(multiple, int(round(width * scale / multiple)) * multiple),
        max(multiple, int(round(height * scale / multiple)) * multiple),
    )


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    shrinking = size[0] < frame.shape[1]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)


class LanczosUpscaler:
    name = "lanczos"

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return _resize(frame, self.size)


def load_upscaler_model(path: str | os.PathLike):
    """A spandrel ``ImageModelDescriptor`` of a single-image upscaler file.

    Raises:
        AnimatorError: spandrel missing, no such file, a file spandrel cannot read, or a model that is not an
            upscaler (an inpainting or restoration model, scale 1).
    """
    path = Path(path)
    if not path.is_file():
        raise AnimatorError(f"no such model file: {path}", field="--model", hint="give a local .pth or .safetensors")
    try:
        import spandrel
    except ImportError as exc:
        raise AnimatorError(
            "upscaling with --model needs spandrel, which is not installed",
            field="--model",
            hint="pip install 'animator[upscale]' (it brings torchvision: on a CPU-only machine install the CPU "
            "torchvision that matches your torch first), or leave out --model for Lanczos",
        ) from exc
    try:
        descriptor = spandrel.ModelLoader().load_from_file(str(path))
    except Exception as exc:  # spandrel raises its own types, torch's unpickler others, for a file it cannot use
        raise AnimatorError(
            f"{path.name} is not an upscaler spandrel knows ({type(exc).__name__}: {str(exc)[:200]})",
            file=path,
            field="--model",
            hint="give an ESRGAN / Real-ESRGAN / Compact / SwinIR / HAT ... .pth or .safetensors file",
        ) from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale < 2:
        raise AnimatorError(
            f"{path.name} holds a {descriptor.architecture.name} model of scale {descriptor.scale}, not an upscaler",
            file=path,
            field="--model",
            hint="give a super-resolution model (scale 2, 3, 4 or 8)",
        )
    return descriptor


class ModelUpscaler:
    """An upscaler network in tiles, then Lanczos to the asked size when the model's scale differs."""

    name = "model"

    def __init__(
        self,
        path: str | os.PathLike,
        size: tuple[int, int],
        *,
        device: str | torch.device | None = None,
        tile: int = 512,
        overlap: int = 32,
        half: bool | None = None,
    ) -> None:
        from animator.devices import pick_device

        self.descriptor = load_upscaler_model(path)
        self.size, self.tile, self.overlap = size, tile, overlap
        self.device = pick_device("auto") if device is None else torch.device(device)
        if half is None:
            half = self.device.type == "cuda" and bool(self.descriptor.supports_half)
        self.dtype = torch.float16 if half else torch.float32
        self.descriptor.to(self.device)
        self.descriptor.eval()
        if half:
            self.descriptor.half()
        self.scale = int(self.descriptor.scale)
        # ``tile`` counts output pixels (as output.upscale.tile does); 0 runs the whole frame at once
        self.tile_in = max(tile // self.scale, 2 * overlap + 8) if tile > 0 else None

    def _network(self, tile: torch.Tensor) -> torch.Tensor:
        return self.descriptor(tile).float().clamp(0.0, 1.0)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from animator.finishing.tiles import run_tiled

        image = torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].float().div_(255.0)
        big = run_tiled(
            self._network,
            image.to(self.device),
            scale=self.scale,
            tile=self.tile_in or max(image.shape[-2:]),
            overlap=self.overlap,
            dtype=self.dtype,
        )
        out = (big[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return _resize(out, self.size)


def upscale(
    source,
    output: str | os.PathLike,
    *,
    scale: float = 2.0,
    method: str | None = None,
    model: str | os.PathLike | None = None,
    tile: int = 512,
    overlap: int = 32,
    device=None,
    settings=None,
    frames_dir: str | os.PathLike | None = None,
    diffusion: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> UpscaleResult:
    """Writes ``source`` upscaled by ``scale`` to ``output``.

    Args:
        source: a path (video, image folder, run folder) or a :class:`~animator.finishing.frames.FrameSource`.
        scale: output size over input size (rounded to even pixels).
        method: ``lanczos``, ``model`` or ``diffusion``; default ``model`` when ``model`` is given, else lanczos.
        model: for ``model``: an upscaler file; for ``diffusion``: the Stable Diffusion model (``backends.denoise``
            spelling: hub id, folder, single file).
        tile: tile size in output pixels (0: whole frames); overlap: pixels shared by neighbouring tiles, in the
            network's input.
        device: where networks run (default: CUDA when present).
        settings: :class:`animator.video.EncodeSettings`.
        frames_dir: also write every upscaled frame there as PNG.
        diffusion: keyword arguments of :class:`~animator.finishing.diffusion_upscale.DiffusionUpscaler`
            (prompt, strength, steps, seed, flow ...).
        progress: ``progress(done, total)`` after every frame.

    Raises:
        AnimatorError: bad input, a scale that is not > 0, a model file that is not an upscaler.
    """
    import time

    from animator.finishing.frames import FrameSource, check_output, open_frames
    from animator.video import EncodeSettings, VideoWriter, mux_audio

    started = time.perf_counter()
    method = method or ("model" if model is not None else "lanczos")
    if method not in UPSCALE_METHODS:
        raise AnimatorError(
            f"unknown method {method!r}", field="--method", hint="use one of: " + ", ".join(UPSCALE_METHODS)
        )
    if method == "model" and model is None:
        raise AnimatorError("--method model needs --model PATH (an upscaler file)", field="--model")
    if method == "lanczos" and model is not None:
        raise AnimatorError("--model is not used by --method lanczos", field="--model", hint="leave out --method")
    if not isinstance(source, FrameSource):
        source = open_frames(source)
    size = output_size(source.width, source.height, scale, multiple=8 if method == "diffusion" else 2)
    if method == "lanczos":
        upscaler = LanczosUpscaler(size)
    elif method == "model":
        upscaler = ModelUpscaler(model, size, device=device, tile=tile, overlap=overlap)
    else:
        from animator.finishing.diffusion_upscale import DiffusionUpscaler

        upscaler = DiffusionUpscaler(model, size, device=device, tile=tile, overlap=overlap, **(diffusion or {}))
    output = check_output(source, output)
    written = 0
    with VideoWriter(
        output,
        width=size[0],
        height=size[1],
        fps=source.fps,
        settings=settings or EncodeSettings(),
        frames_dir=frames_dir,
    ) as writer:
        for frame in source.frames():
            writer.write(upscaler(frame))
            written += 1
            if progress is not None:
                progress(written, source.count)
    if source.audio is not None:
        mux_audio(output, source.audio)
    return UpscaleResult(
        output=output,
        frames=written,
        width=size[0],
        height=size[1],
        method=method,
        seconds=time.perf_counter() - started,
    )
