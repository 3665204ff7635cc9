"""Control images: what each unit's ControlNet sees on a frame, made from what the render loop already has.

- ``depth``: the loop's own depth for the frame (the previous frame's tracked depth, warped with it): no second
  depth model runs, and the map is as stable over time as the render's depth. Holes (pixels the camera move
  reveals) are filled from the farther of the surfaces beside them, so the background's structure continues into
  them (revealed pixels are, by construction, behind what covered them). Then it is turned into what depth ControlNets
  were trained on (MiDaS-style relative inverse depth, normalised per image): near bright, far dark.
- ``canny``: OpenCV's Canny edges of the warped frame (thresholds from the unit).
- ``warped``: the warped previous frame itself (tile / temporal ControlNets).
- ``image``: one picture (a path), scaled to cover the frame; ``video``: a video's frame i for render frame i,
  read as a stream (the last frame is held once the video ends).
- the controlnet-aux annotators (``hed``, ``lineart``, ``openpose`` ...) on the warped frame: an optional extra,
  its weights loaded from a local folder only.

A source is made once per run (:func:`make_source`: files and extras are checked there, before the first frame)
and called per frame with a :class:`FrameView`; it returns 1x3xHxW float in [0, 1] on the frame's device.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from animator.choices import CONTROL_FILE_SOURCES
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from animator.backends.controlnet.units import ControlSettings

__all__ = ["FrameView", "make_source", "depth_control", "canny_control", "fill_holes", "ANNOTATORS"]

# controlnet-aux detector class and the weights it reads, per annotator source
ANNOTATORS = {
    "hed": ("HEDdetector", "ControlNetHED.pth"),
    "lineart": ("LineartDetector", "sk_model.pth, sk_model2.pth"),
    "lineart_anime": ("LineartAnimeDetector", "netG.pth"),
    "openpose": ("OpenposeDetector", "body_pose_model.pth, hand_pose_model.pth, facenet.pth"),
    "softedge": ("PidiNetDetector", "table5_pidinet.pth"),
    "mlsd": ("MLSDdetector", "mlsd_large_512_fp32.pth"),
    "normalbae": ("NormalBaeDetector", "scannet.pt"),
}


@dataclass(frozen=True)
class FrameView:
    """What the loop has for a frame when it denoises it."""

    index: int  # the frame's index in the render
    image: Tensor | None  # 1x3xHxW [0, 1]: the warped previous frame (the init image on a first frame, or None)
    depth: Tensor | None = None  # 1x1xHxW z of ``image`` (warped tracked depth), None where the loop has none
    valid: Tensor | None = None  # 1x1xHxW bool, False where the warp revealed a pixel (a hole in ``depth``)

    @property
    def device(self):
        """Where the frame's tensors are (the CPU for a first frame made from text, which has none)."""
        import torch

        present = self.image if self.image is not None else self.depth
        return present.device if present is not None else torch.device("cpu")


Source = Callable[[FrameView], "Tensor"]


def fill_holes(depth: Tensor, valid: Tensor) -> Tensor:
    """Fill the pixels where ``valid`` is False with the farther of the nearest valid depths on either side.

    Revealed pixels were hidden behind something nearer, so of the surfaces on either side of a hole the farther
    one is what continues into it (the background behind a foreground edge, not the edge itself). Rows first
    (nearest valid pixel to the left and to the right), then columns for rows that had none; a frame with no valid
    pixel at all is flat.

    >>> import torch
    >>> z = torch.tensor([[[[2.0, 0.0, 0.0, 9.0], [5.0, 0.0, 1.0, 1.0]]]])
    >>> fill_holes(z, z > 0).tolist()
    [[[[2.0, 9.0, 9.0, 9.0], [5.0, 5.0, 1.0, 1.0]]]]
    """
    import torch

    filled = torch.where(valid, depth, torch.zeros_like(depth))
    for dim in (-1, -2):
        filled, valid = _fill_along(filled, valid, dim)
    return torch.where(valid, filled, torch.ones_like(filled))


def _fill_along(depth: Tensor, valid: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """One pass of :func:`fill_holes` along ``dim``: (filled depth, where it is now known)."""
    import torch

    size = depth.shape[dim]
    shape = [1] * depth.ndim
    shape[dim] = size
    index = torch.arange(size, device=depth.device).view(shape).expand_as(depth)
    left = torch.where(valid, index, torch.full_like(index, -1)).cummax(dim).values  # last valid at or before
    right = torch.where(valid, index, torch.full_like(index, size)).flip(dim).cummin(dim).values.flip(dim)
    has_left, has_right = left >= 0, right < size
    left_z = depth.gather(dim, left.clamp(min=0))
    right_z = depth.gather(dim, right.clamp(max=size - 1))
    sides = torch.where(has_left & has_right, torch.maximum(left_z, right_z), torch.where(has_left, left_z, right_z))
    return torch.where(valid, depth, sides), valid | has_left | has_right


def depth_control(depth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Bx1xHxW z (holes where ``valid`` is False, or z not finite or <= 0) -> Bx3xHxW in [0, 1], near bright.

    Inverse depth, normalised per image to [0, 1] (what MiDaS-annotated depth ControlNets were trained on)."""
    import torch

    usable = torch.isfinite(depth) & (depth > 0)
    if valid is not None:
        usable = usable & valid.to(torch.bool)
    depth = torch.where(usable, depth, torch.zeros_like(depth))
    filled = fill_holes(depth.float(), usable)
    inverse = 1.0 / filled.clamp_min(1e-6)
    low = inverse.amin(dim=(1, 2, 3), keepdim=True)
    high = inverse.amax(dim=(1, 2, 3), keepdim=True)
    normalised = (inverse - low) / (high - low).clamp_min(1e-12)  # a flat scene: all 0 (no structure to follow)
    return normalised.expand(-1, 3, -1, -1).clamp(0, 1)


def canny_control(image: Tensor, low: int, high: int) -> Tensor:
    """Bx3xHxW [0, 1] -> Bx3xHxW {0, 1}: Canny edges (OpenCV, on the 8-bit grey image; white edges on black)."""
    import cv2
    import numpy as np
    import torch

    frames = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    edges = np.stack([cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), low, high) for frame in frames])
    return _to_tensor(np.repeat(edges[..., None], 3, axis=-1), image.device)


def _to_tensor(frames: np.ndarray, device) -> Tensor:
    """BxHxWx3 (or HxWx3) uint8 -> Bx3xHxW float in [0, 1] on ``device``."""
    import numpy as np
    import torch

    tensor = torch.from_numpy(np.array(frames))  # a copy: frames read from ffmpeg are read-only
    if tensor.ndim == 3:
        tensor = tensor[None]
    return tensor.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32) / 255.0


def make_source(settings: ControlSettings, *, width: int, height: int, field: str) -> Source:
    """The unit's control-image source; ``field`` (``controlnet.0``) prefixes the fields its errors name.

    Files are checked and annotators loaded here, so a missing image or extra is an error before the first frame."""
    source = settings.source
    if source == "depth":
        return _depth_source
    if source == "canny":
        if not settings.canny_low < settings.canny_high:
            raise AnimatorError(
                f"canny_low ({settings.canny_low}) must be below canny_high ({settings.canny_high})",
                field=f"{field}.canny_low",
                hint="gradients above canny_high start an edge, above canny_low continue it; e.g. 100 and 200",
            )
        return lambda frame: canny_control(frame.image, settings.canny_low, settings.canny_high)
    if source == "warped":
        return lambda frame: frame.image.float().clamp(0, 1)
    if source in CONTROL_FILE_SOURCES:
        path = _existing_file(settings.path, source, f"{field}.path")
        if source == "image":
            return _ImageSource(path, width, height, f"{field}.path")
        return _VideoSource(path, width, height, f"{field}.path")
    if source in ANNOTATORS:
        return _AnnotatorSource(source, settings.annotator, width, height, field)
    raise AnimatorError(
        f"unknown ControlNet source {source!r}",
        field=f"{field}.source",
        hint="use one of: depth, canny, warped, image, video, " + ", ".join(ANNOTATORS),
    )


def _depth_source(frame: FrameView) -> Tensor:
    if frame.depth is None:
        raise AnimatorError(
            "source: depth needs the render's depth, and this frame has none (a 2d or video-mode render)",
            field="controlnet.source",
            hint="use mode: 3d for the depth source, or a canny / warped / image source",
        )
    return depth_control(frame.depth, frame.valid)


def _existing_file(path, source: str, field: str) -> Path:
    if path is None:
        raise AnimatorError(f"source: {source} needs `path`, the {source} file", field=field)
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise AnimatorError(
            f"no such {source} file: {path}", field=field, hint="a relative path is relative to the keyframe file"
        )
    return path


class _ImageSource:
    """One picture for every frame, read and scaled once (to cover the frame, centre-cropped)."""

    def __init__(self, path: Path, width: int, height: int, field: str) -> None:
        from animator.images import load_image

        try:
            self.pixels = load_image(path, width=width, height=height)
        except AnimatorError as exc:
            raise exc.with_location(field=field) from None
        self.tensors: dict = {}

    def __call__(self, frame: FrameView) -> Tensor:
        device = frame.device
        if device not in self.tensors:
            self.tensors[device] = _to_tensor(self.pixels, device)
        return self.tensors[device]


class _VideoSource:
    """Frame i of a video for render frame i, read as a stream (reopened only when a frame before the last one
    read is asked for, as after a resume); past the video's end its last frame is held."""

    def __init__(self, path: Path, width: int, height: int, field: str) -> None:
        from animator.video import probe

        try:
            probe(path)  # unreadable or not a video: an error now, not at the first frame
        except AnimatorError as exc:
            raise exc.with_location(field=field) from None
        self.path, self.size, self.field = path, (width, height), field
        self.frames: Iterator | None = None
        self.position = -1  # index of self.current in the video
        self.current = None

    def __call__(self, frame: FrameView) -> Tensor:
        from animator.video import read_frames

        if self.frames is None or frame.index < self.position:
            self.frames = read_frames(self.path, size=self.size)
            self.position, self.current = -1, None
        while self.position < frame.index:
            pixels = next(self.frames, None)
            if pixels is None:
                if self.current is None:
                    raise AnimatorError(f"the video {self.path} has no frames", field=self.field)
                break  # past the end: hold the last frame
            self.current, self.position = pixels, self.position + 1
        return _to_tensor(self.current, frame.device)


class _AnnotatorSource:
    """A controlnet-aux annotator on the warped frame; its weights from a local folder (never downloaded)."""

    def __init__(self, name: str, folder, width: int, height: int, field: str) -> None:
        class_name, files = ANNOTATORS[name]
        try:
            import controlnet_aux
        except ImportError:
            raise AnimatorError(
                f"source: {name} needs the controlnet-aux annotators, which are not installed",
                field=f"{field}.source",
                hint="pip install controlnet-aux (it brings timm and torchvision: on a CPU-only machine install "
                "torchvision's CPU build first), or use source: depth, canny or warped, which need nothing extra",
            ) from None
        if folder is None or not Path(os.fspath(folder)).expanduser().is_dir():
            raise AnimatorError(
                f"source: {name} needs `annotator`, a local folder holding its weights ({files})",
                field=f"{field}.annotator",
                hint="download them once, e.g. `hf download lllyasviel/Annotators " + files.split(",")[0] + " "
                "--local-dir <folder>`; annotators are never downloaded during a render",
            )
        try:
            self.detector = getattr(controlnet_aux, class_name).from_pretrained(
                str(Path(os.fspath(folder)).expanduser()), local_files_only=True
            )
        except Exception as exc:  # controlnet-aux raises OSError / FileNotFoundError / torch load errors
            raise AnimatorError(
                f"could not load the {name} annotator from {folder}: {exc}",
                field=f"{field}.annotator",
                hint=f"the folder must hold {files}",
            ) from exc
        self.size = (width, height)

    def __call__(self, frame: FrameView) -> Tensor:
        import numpy as np
        from PIL import Image

        pixels = (frame.image[0].detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        result = self.detector(Image.fromarray(pixels), output_type="pil")
        result = result.convert("RGB").resize(self.size, Image.Resampling.BILINEAR)
        return _to_tensor(np.asarray(result), frame.image.device)
