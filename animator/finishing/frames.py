"""Where a finishing pass reads its frames from: a video, a folder of images, or a render's run folder.

:func:`open_frames` looks at the input once (size, fps, frame count, soundtrack) and returns a :class:`FrameSource`
whose :meth:`FrameSource.frames` streams ``(H, W, 3)`` uint8 RGB frames one at a time: nothing holds a whole video.

A run folder gives its lossless frames: the journal (``frames/``, QOI) while it is there, else the PNGs of its
``--frames-dir``; only when neither is left (a finished render removes its journal) does it fall back to the
compressed output video, and says so in :attr:`FrameSource.note`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError

__all__ = ["FrameSource", "open_frames", "check_output", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".qoi")
DEFAULT_FOLDER_FPS = 24.0


@dataclass(frozen=True)
class FrameSource:
    """Facts about a frame sequence, and a way to stream it."""

    path: Path  # what the user gave
    kind: str  # "video" | "folder" | "run"
    width: int
    height: int
    fps: float
    count: int  # number of frames
    audio: Path | None  # a file whose first audio stream belongs to these frames (None: silent)
    files: tuple[Path, ...] = ()  # the image files, for "folder" and a run folder's lossless frames
    video: Path | None = None  # the video file, for "video" and a run folder without lossless frames
    run_dir: Path | None = None  # the run folder, for "run"
    note: str | None = None  # something the user should know about where the frames came from
    first_index: int = 0  # the render's frame index of the first frame (run folders of a partial render: A of A:B)
    # frames made by an earlier pass (upscaled on the fly): called once, yields the frames instead of the files
    stream: Callable[[], Iterator[np.ndarray]] | None = None

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order as ``(H, W, 3)`` uint8 RGB, read one at a time."""
        if self.stream is not None:
            yield from self.stream()
            return
        if self.video is not None:
            from animator.video import read_frames

            yield from read_frames(self.video)
            return
        for path in self.files:
            yield _load_image(path, (self.height, self.width))


def check_output(source: FrameSource, output: str | os.PathLike) -> Path:
    """``output`` as a Path, refused when writing it would replace the input or its soundtrack while they are read."""
    output = Path(output)
    reads = [p for p in (source.video, source.audio, source.path) if p is not None]
    if any(output.resolve() == Path(p).resolve() for p in reads):
        raise AnimatorError(
            f"the output {output} is the input: writing it would replace what is being read",
            field="--output",
            hint="give another -o",
        )
    return output


def _natural_key(path: Path) -> list:
    """``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _load_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    from animator.images import load_frame

    try:
        frame = load_frame(path)
    except Exception as exc:  # PIL / qoi: a file that is not an image
        raise AnimatorError(f"cannot read the image {path}: {exc}", file=path) from exc
    if size is not None and frame.shape[:2] != size:
        raise AnimatorError(
            f"{path.name} is {frame.shape[1]}x{frame.shape[0]}, the first image is {size[1]}x{size[0]}",
            file=path,
            hint="every image of the folder must have the same size",
        )
    return frame


def _image_files(folder: Path) -> tuple[Path, ...]:
    return tuple(
        sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
            key=_natural_key,
        )
    )


def _from_files(path: Path, files: tuple[Path, ...], fps: float, **fields) -> FrameSource:
    first = _load_image(files[0])
    return FrameSource(
        path=path, width=first.shape[1], height=first.shape[0], fps=fps, count=len(files), files=files, **fields
    )


def _from_video(path: Path, **fields) -> FrameSource:
    from animator.video import probe

    info = probe(path)
    if info.frames == 0:
        raise AnimatorError("the video has no frames", file=path, hint="check that the file holds a video stream")
    if info.fps <= 0:
        raise AnimatorError("cannot tell the video's frame rate", file=path, hint="re-encode it with a fixed fps")
    fields.setdefault("audio", path if info.has_audio else None)
    given = fields.pop("given", path)
    return FrameSource(
        path=given,
        width=info.width,
        height=info.height,
        fps=info.fps,
        count=info.frames,
        video=path,
        **fields,
    )


def _run_fps(run_dir: Path, record: dict) -> float:
    from animator.keyframes import load_config

    base_dir = record.get("base_dir")
    config = load_config(
        run_dir / record["keyframes_file"], overrides=record.get("overrides") or None, base_dir=base_dir
    )
    return float(config.fps)


def _from_run(run_dir: Path) -> FrameSource:
    from animator.run_folder import JOURNAL_FORMAT, RunFolder

    folder = RunFolder(run_dir)
    record = folder.record()
    output = Path(record["output"]) if record.get("output") else None
    if output is not None and (run_dir / f"unfinished{output.suffix}").is_file():
        # after finishing passes the render's own video is kept in the run folder (animator.finishing.pipeline),
        # and ``output`` holds the finished one: the frames before finishing are the unfinished video's
        output = run_dir / f"unfinished{output.suffix}"
    soundtrack = None
    if output is not None and output.is_file():
        from animator.video import probe

        soundtrack = output if probe(output).has_audio else None
    journal = tuple(sorted(folder.journal.glob(f"*.{JOURNAL_FORMAT}"))) if folder.journal.is_dir() else ()
    kept = Path(record["frames_dir"]) if record.get("frames_dir") else None
    if not journal and kept is not None and kept.is_dir():
        journal = tuple(p for p in _image_files(kept) if p.suffix == ".png")
    if journal:
        return _from_files(
            run_dir,
            journal,
            _run_fps(run_dir, record),
            kind="run",
            audio=soundtrack,
            run_dir=run_dir,
            first_index=int(record.get("start", 0)),
        )
    if output is None or not output.is_file():
        raise AnimatorError(
            f"the run folder {run_dir} has no frames left: no journal, no --frames-dir, no output video",
            file=run_dir,
            hint="render with --frames-dir to keep the lossless frames, or give the video itself",
        )
    return _from_video(
        output,
        given=run_dir,
        kind="run",
        run_dir=run_dir,
        audio=soundtrack,
        first_index=int(record.get("start", 0)),
        note=f"the run's lossless frames are gone: reading its compressed video {output}",
    )


def open_frames(path: str | os.PathLike, *, fps: float | None = None) -> FrameSource:
    """Looks at a video file, a folder of images or a run folder and returns its :class:`FrameSource`.

    Args:
        path: the input.
        fps: the frame rate of a folder of images (default 24); ignored for videos and run folders, whose rate is
            known.

    Raises:
        AnimatorError: missing path, not a video, an empty folder, images of different sizes, no frames.
    """
    path = Path(path)
    if not path.exists():
        raise AnimatorError(f"no such file or folder: {path}", file=path, hint="give a video, an image folder or a run")
    if fps is not None and fps <= 0:
        raise AnimatorError(f"the input fps must be > 0, got {fps}", field="--input-fps")
    if path.is_dir():
        if (path / "run.json").is_file():
            return _from_run(path)
        files = _image_files(path)
        if not files:
            raise AnimatorError(
                f"the folder {path} holds no images",
                file=path,
                hint="give a folder of " + ", ".join(IMAGE_SUFFIXES) + " frames, a video, or a run folder",
            )
        return _from_files(path, files, fps or DEFAULT_FOLDER_FPS, kind="folder", audio=None)
    return _from_video(path, kind="video")
