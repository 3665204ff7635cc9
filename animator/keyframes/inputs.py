"""What a render of a keyframe file starts from and which files it reads: one list, used by the render's start check
and by ``animator validate --check-files``, so the two never disagree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from animator.choices import CONTROL_FILE_SOURCES

if TYPE_CHECKING:
    from animator.keyframes.sections import AnimationConfig


def files_read_by(config: AnimationConfig, *, resuming: bool = False) -> list[tuple[str, Path]]:
    """(dotted field, path) of every file a render of ``config`` reads, in file order.

    The init image (not when ``resuming``: a resumed render starts from its checkpoint), the input video, the
    colour reference image (when colour coherence uses it), the hybrid video, the soundtrack (when an expression
    analyses it or the output muxes it) and its stems (when analysed), ControlNet image / video sources and the
    images sections start from. Model weights are not listed: a model may be a hub id, and its loader says what is
    missing.
    """
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
    for i, unit in enumerate(config.controlnet):
        if unit.source in CONTROL_FILE_SOURCES and unit.path is not None:
            files.append((f"controlnet.{i}.path", unit.path))
    for i, section in enumerate(config.sections):
        if section.start == "image" and section.image is not None:
            files.append((f"sections.{i}.image", section.image))
    return files


def starts_from_nothing(config: AnimationConfig) -> bool:
    """True when a render of ``config`` would reach a frame it has nothing to make from: the first frame has no init
    image, input video, section image or model, or a section starts from noise without a model."""
    if (config.backends.denoise or "none") != "none":
        return False
    if any(section.start == "noise" for section in config.sections):
        return True
    if config.mode == "video":
        return False
    first_image = bool(config.sections) and config.sections[0].start == "image"
    return config.init_image is None and not first_image


def check_input_files(config: AnimationConfig, *, resuming: bool = False) -> None:
    """Every file of :func:`files_read_by` exists, every video among them holds a video stream ffmpeg reads, and
    every image among them (init image, colour reference, section images, ControlNet images) is read as the render
    reads it, within the pixel limit (:func:`animator.images.load_image`): a text file named ``.png``, a damaged
    image or a pixel bomb is refused before a render makes anything. The render's start check and
    ``animator validate --check-files`` both call this.

    Raises:
        AnimatorError: naming the keyframe file, the line and the field of the file that cannot be read.
    """
    from animator.errors import AnimatorError
    from animator.keyframes.locate import line_of

    images, videos = _image_fields(config), _video_fields(config)
    for field_name, path in files_read_by(config, resuming=resuming):
        where = {"file": config.path, "line": line_of(config, field_name), "field": field_name}
        if not Path(path).is_file():
            raise AnimatorError(
                f"file not found: {path}",
                hint="check the path (relative paths are relative to the keyframe file)",
                **where,
            )
        if field_name in videos:
            from animator.video import check_video

            try:
                check_video(path)  # the streams ffmpeg sees, before any frame is decoded
            except AnimatorError as exc:
                raise AnimatorError(exc.message, hint=exc.hint, **where) from None
        if field_name in images:
            from animator.images import load_image

            try:
                load_image(path, width=8, height=8)  # the render's reader: header, pixel limit, every pixel decoded
            except AnimatorError as exc:
                message = exc.message if str(path) in exc.message else f"image {path}: {exc.message}"
                raise AnimatorError(message, hint=exc.hint, **where) from None


def _video_fields(config: AnimationConfig) -> set[str]:
    """The dotted fields of :func:`files_read_by` that name a video."""
    fields = {"video_input.path", "hybrid.path"}
    return fields | {f"controlnet.{i}.path" for i, unit in enumerate(config.controlnet) if unit.source == "video"}


def _image_fields(config: AnimationConfig) -> set[str]:
    """The dotted fields of :func:`files_read_by` that name an image (the rest are videos and audio)."""
    fields = {"init_image", "coherence.image"}
    fields |= {f"sections.{i}.image" for i in range(len(config.sections))}
    fields |= {f"controlnet.{i}.path" for i, unit in enumerate(config.controlnet) if unit.source == "image"}
    return fields
