"""Input videos read frame by frame: the video a `mode: video` render stylises, and the hybrid-motion video."""

from __future__ import annotations

from pathlib import Path

import torch

from animator.errors import AnimatorError
from animator.rendering.tensors import to_tensor


class InputVideo:
    """Frames of a video (every n-th, from/to) as tensors at the render size, read once, in order."""

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        device: torch.device,
        *,
        every_nth: int = 1,
        start: int = 0,
        end: int | None = None,
        field: str = "video_input.path",
    ) -> None:
        from animator.video import read_frames

        self._frames = read_frames(path, every_nth=every_nth, start=start, end=end, size=size)
        self._device = device
        self._index = -1
        self._current = None
        self._field = field

    @classmethod
    def of_video_input(cls, config, device: torch.device) -> InputVideo:
        """The video a ``mode: video`` render stylises (``video_input``)."""
        vi = config.video_input
        size = (config.width, config.height)
        return cls(vi.path, size, device, every_nth=vi.every_nth, start=vi.from_frame, end=vi.to_frame)

    @classmethod
    def of_hybrid(cls, config, device: torch.device) -> InputVideo:
        """The video whose camera motion a hybrid render follows (``hybrid``)."""
        return cls(config.hybrid.path, (config.width, config.height), device, field="hybrid.path")

    def frame(self, index: int) -> torch.Tensor:
        while self._index < index:
            try:
                self._current = next(self._frames)
            except StopIteration:
                raise AnimatorError(
                    f"the input video has no frame {index} (after every_nth/from/to)",
                    field=self._field,
                    hint="lower `frames`, or use a longer video",
                ) from None
            self._index += 1
        return to_tensor(self._current, self._device)
