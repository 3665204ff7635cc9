"""Image files: the pictures a user gives (init images, colour references, control images, ``animator depth``
inputs) and the lossless frame files of run folders and frame folders.

- :func:`load_image` reads an image scaled to cover the frame and centre-cropped; it and :func:`check_image_pixels`
  refuse images over :data:`MAX_IMAGE_PIXELS` from the file's header, before decoding a pixel.
- :func:`save_frame` / :func:`load_frame` write and read lossless frames (PNG or QOI), never half a file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError

# The largest image read (init images, colour references, `animator depth` inputs): 64 megapixels (8192x8192). A
# decoded image takes 3 bytes a pixel and resizing doubles that, so this bounds an image read to about 400 MB; a PNG of
# a few kilobytes can declare 20000x20000 pixels (1.2 GB decoded). Checked from the file's header before decoding.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


FRAME_FORMATS = ("png", "qoi")


def save_frame(path: Path, frame: np.ndarray) -> None:
    """A lossless (H, W, 3) uint8 RGB frame as ``.png`` or ``.qoi`` (by ``path``'s suffix), written under a hidden
    name and renamed: a killed run never leaves half a file.

    QOI (qoiformat.org) is lossless like PNG and encodes about ten times faster (512x512: ~3 ms against ~26 ms
    for PNG at compression 1 on a small CPU), which is why the resume journal uses it: on a 2-core machine a PNG per
    frame takes as much CPU as the frame itself.
    """
    hidden = path.with_name(f".{path.name}")
    try:
        if path.suffix == ".qoi":
            import qoi

            hidden.write_bytes(qoi.encode(np.ascontiguousarray(frame)))
        else:
            from PIL import Image

            Image.fromarray(frame).save(hidden, format="PNG", compress_level=1)
        os.replace(hidden, path)
    except BaseException:
        try:
            hidden.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def load_frame(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a frame written by :func:`save_frame`; a damaged file raises :class:`AnimatorError`."""
    path = Path(path)
    try:
        if path.suffix == ".qoi":
            import qoi

            data = path.read_bytes()
            # QOI's header: "qoif", width, height (big-endian u32), channels, colourspace; then the pixels
            if len(data) < 22 or data[:4] != b"qoif":
                raise ValueError(f"not a QOI image ({len(data)} bytes)")
            if int.from_bytes(data[4:8], "big") * int.from_bytes(data[8:12], "big") > MAX_IMAGE_PIXELS:
                raise ValueError("its header declares more than MAX_IMAGE_PIXELS pixels")
            return qoi.decode(data)[..., :3]
        check_image_pixels(path)
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except AnimatorError:
        raise
    except (OSError, ValueError, RuntimeError, SyntaxError) as exc:  # PIL reports a damaged PNG as SyntaxError
        raise AnimatorError(f"cannot read the frame ({exc})", file=path) from None


def load_image(path: str | os.PathLike, *, width: int, height: int) -> np.ndarray:
    """Reads an image as (height, width, 3) uint8 RGB, scaled to cover the frame and centre-cropped (no distortion)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise AnimatorError(f"no such image: {path}", hint="check the path (relative to the keyframe file)")
    check_image_pixels(path)
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise AnimatorError(
            f"cannot read image {path}: {exc}", hint="give a PNG, JPEG, WebP or TIFF image that opens in a viewer"
        ) from None
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)), dtype=np.uint8).copy()


def check_image_pixels(path: str | os.PathLike) -> tuple[int, int] | None:
    """The (width, height) an image file declares, read from its header without decoding; :class:`AnimatorError`
    when it is over :data:`MAX_IMAGE_PIXELS`. None for a file PIL cannot identify (the caller's reader decides)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError as exc:  # over PIL's own limit, which is larger than ours
        raise _too_many_pixels(path, None, re.search(r"\d{6,}", str(exc))) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_many_pixels(path, (width, height))
    return width, height


def _too_many_pixels(path: Path, size: tuple[int, int] | None, count: re.Match | None = None) -> AnimatorError:
    if size:
        declared = f"{size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels)"
    else:
        declared = f"{int(count.group()) / 1e6:.0f} megapixels" if count else "too many pixels"
    return AnimatorError(
        f"the image declares {declared}; the limit is {MAX_IMAGE_PIXELS / 2**20:.0f} megapixels (e.g. 8192x8192)",
        file=path,
        hint="scale the image down first (a frame is rarely over 2048 pixels a side); see docs/limits.md",
    )
