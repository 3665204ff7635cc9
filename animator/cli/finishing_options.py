"""What ``animator interpolate`` and ``animator upscale`` share: both read the frames of a video, a folder of images
or a render's run folder, show a progress bar while a finishing pass runs, and encode the result with x264."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

# the frame rate of a folder of images; a video or a run folder brings its own
input_fps_option = click.option(
    "--input-fps", type=float, default=None, help="the frame rate of a folder of images (default 24)"
)
frames_dir_option = click.option(
    "--frames-dir", type=click.Path(file_okay=False), default=None, help="also write every frame as PNG"
)


def encode_options(command):
    """``--crf`` and ``--preset`` (x264), passed to the command as ``crf`` and ``x264_preset``."""
    command = click.option(
        "--preset",
        "x264_preset",
        default="medium",
        show_default=True,
        help="x264 speed preset (ultrafast ... veryslow): faster presets make bigger files",
    )(command)
    return click.option(
        "--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="x264 quality (lower: better)"
    )(command)


def open_input(source: str, input_fps: float | None):
    """The frames of ``source`` (:func:`animator.finishing.frames.open_frames`); its note, if any, on stderr."""
    from animator.finishing.frames import open_frames

    frames = open_frames(source, fps=input_fps)
    if frames.note:
        click.echo(f"note: {frames.note}", err=True)
    return frames


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr, fed by the ``progress(done, total)`` callback that the finishing passes call."""
    import sys

    from tqdm import tqdm

    with tqdm(unit="frame", desc=desc, file=sys.stderr, disable=None, dynamic_ncols=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress
