"""The files a keyframe file makes a render read: one list, used by the render's start check and by
``animator validate --check-files``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from animator.keyframes.config import AnimationConfig


def files_read_by(config: AnimationConfig, *, resuming: bool = False) -> list[tuple[str, Path]]:
    """(field, path) of every file a render of ``config`` reads. A resumed render starts from its checkpoint, so it
    reads no init image."""
    from animator.keyframes.evaluate import uses_audio

    files: list[tuple[str, Path]] = []
    if config.mode == "video":
        files.append(("video_input.path", config.video_input.path))
    elif config.init_image is not None and not resuming:
        files.append(("init_image", config.init_image))
    coherence = config.coherence
    if coherence.color != "none" and coherence.reference == "image" and coherence.image:
        files.append(("coherence.image", coherence.image))
    if config.hybrid is not None:
        files.append(("hybrid.path", config.hybrid.path))
    if config.audio is not None:
        analysed = uses_audio(config)
        if analysed or config.output.audio:
            files.append(("audio.path", config.audio.path))
        if analysed:
            files.extend((f"audio.stems.{name}", stem) for name, stem in config.audio.stems.items())
    return files
