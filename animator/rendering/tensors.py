"""The loop's tensor edges: frames in from the host and out to it, and the 8-bit rounding that keeps a resumed render
bit-identical to an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from animator.devices import upload
from animator.errors import AnimatorError


def to_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H,W,3) uint8 -> (1,3,H,W) float in [0,1] on ``device``, contiguous: the frames the loop makes are, and a
    compiled model given another memory layout compiles (and on a GPU records) a second graph for it."""
    if not frame.flags.writeable:  # frames decoded by ffmpeg are read-only views of its buffer
        frame = frame.copy()
    # uploaded without waiting for the GPU (video mode reads a frame while the previous one is still queued)
    pixels = upload(torch.from_numpy(np.ascontiguousarray(frame)), device).permute(2, 0, 1)[None]
    return pixels.to(memory_format=torch.contiguous_format, dtype=torch.float32).div_(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) [0,1] (or already uint8) -> (H,W,3) uint8 on the host: the one host copy per frame.

    The frame loop's only check of its values (the models' inputs go unchecked: each check would make the host wait
    for a GPU): a float frame with NaN or infinite values raises, read back in the same copy as the pixels."""
    if image.dtype == torch.uint8:
        return np.ascontiguousarray(image[0].permute(1, 2, 0).cpu().numpy())
    flat, shape = _frame_bytes(image)
    return _checked_frame(flat.cpu().numpy(), shape)


def _frame_bytes(image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """The frame's HxWx3 bytes, flat, and one more byte: 1 when every value of ``image`` is finite."""
    pixels = image[0].clamp(0, 1).mul(255).round_().to(torch.uint8).permute(1, 2, 0)  # HxWx3 (NaN would give 0)
    finite = torch.isfinite(image).all().to(torch.uint8).view(1)
    return torch.cat([pixels.reshape(-1), finite]), tuple(pixels.shape)


def _checked_frame(copied: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    if not copied[-1]:
        raise AnimatorError(
            "a frame came out with NaN or infinite values",
            field="backends.dtype",
            hint="half precision can overflow in some models and VAEs: try backends.dtype: "
            "bfloat16 or float32, or a VAE made for float16",
        )
    return copied[:-1].reshape(shape)


class HostCopy:
    """A frame's copy to the host (as :func:`to_uint8`), started now and waited for by :meth:`result`.

    On CUDA the copy goes into pinned memory without waiting, behind the frame's own kernels, and an event marks its
    end. The loop starts it before it queues the next frame: a copy started after that would wait, in the stream's
    order, for the next frame's kernels too, and the GPU would idle while the host then queued the frame after.
    Elsewhere the copy is made at once (a CPU has no queue to keep ahead of)."""

    def __init__(self, image: torch.Tensor) -> None:
        self._frame: np.ndarray | None = None
        if image.device.type != "cuda" or image.dtype == torch.uint8:
            self._frame = to_uint8(image)
            return
        self._flat, self._shape = _frame_bytes(image)  # (kept referenced until the copy has been waited for)
        self._staging = torch.empty(self._flat.shape, dtype=torch.uint8, pin_memory=True)
        self._staging.copy_(self._flat, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record(torch.cuda.current_stream(image.device))  # the stream the copy went on (any GPU)

    def result(self) -> np.ndarray:
        """The (H,W,3) uint8 frame; waits for the copy (raises for a frame with NaN or infinite values)."""
        if self._frame is None:
            self._copied.synchronize()
            self._frame = _checked_frame(self._staging.numpy(), self._shape)  # the array keeps the pinned buffer
            self._flat = self._staging = None
        return self._frame


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Rounds to the 8-bit values the video receives, so the next frame starts from exactly what was written
    (this is what makes a resumed render bit-identical to an uninterrupted one)."""
    return image.clamp(0, 1).mul(255).round_().div_(255)


def load_image_tensor(path: str | Path, width: int, height: int, device: torch.device) -> torch.Tensor:
    """An image file as a (1,3,height,width) frame on ``device``."""
    from animator.images import load_image

    return to_tensor(load_image(path, width=width, height=height), device)
