"""The ``animator`` command line.

Each command lives in its own module ``animator/cli/cmd_*.py`` and exposes a click command (or group) named
``command``; this module discovers them, so adding a command never touches a shared file. Command modules must
import torch, diffusers and the other heavy libraries inside their functions: ``animator --help`` has to answer in
well under half a second.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click

from animator import __version__
from animator.errors import AnimatorError


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C: whatever cleans up after Ctrl-C (the render marks
    its run interrupted, removes its partial video, prints how to resume) runs for these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Within the block, the first of ``signums`` raises :class:`Stopped` in the main thread; later ones are ignored
    so they cannot interrupt the clean-up. The previous handlers come back on exit."""

    def handler(signum, frame):
        for other in signums:
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


# what a --plot may be written as (matplotlib's Agg canvas writes each; tests/test_reliability.py checks that)
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps", ".ps")


def check_plot_path(path: str | os.PathLike, option: str = "--plot") -> Path:
    """Refuses, before any work, a plot file matplotlib cannot write: an unknown suffix, a missing or read-only
    folder. Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise AnimatorError(
            f"cannot write a plot as {path.suffix or 'a file without a suffix'!r}",
            file=path,
            field=option,
            hint="use one of: " + ", ".join(PLOT_SUFFIXES),
        )
    folder = path.parent
    if not folder.is_dir():
        raise AnimatorError(
            f"the folder {folder} does not exist", file=path, field=option, hint=f"create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK | os.X_OK) or path.is_dir():
        raise AnimatorError(
            f"cannot write into {folder}" if not path.is_dir() else "is a folder",
            file=path,
            field=option,
            hint="choose a file in a folder you can write to",
        )
    return path


# errno values of an OSError on a path that mean the user's disk or path, not our code: the CLI prints them as errors
_USER_OS_ERRORS = {
    errno.ENOSPC: "free some space on that disk, or write somewhere else",
    errno.EDQUOT: "your disk quota is used up: free some space, or write somewhere else",
    errno.EROFS: "that file system is read-only: write somewhere else",
    errno.EACCES: "you may not write or read there: check the permissions, or choose another path",
    errno.EPERM: "you may not write or read there: check the permissions, or choose another path",
    errno.ENOENT: "check the path (a folder in it may be missing)",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "give a file, not a folder",
}


def _os_error_message(exc: OSError) -> str:
    """``path: reason`` and a hint, from an OSError on a path the user gave."""
    where = os.fspath(exc.filename) + (f" -> {os.fspath(exc.filename2)}" if exc.filename2 else "")
    return str(AnimatorError(exc.strerror or str(exc), file=where, hint=_USER_OS_ERRORS[exc.errno]))


class _Main(click.Group):
    """The one error boundary: :class:`AnimatorError`, and an OSError on a path the user gave (full or read-only disk,
    no permission, missing path: :data:`_USER_OS_ERRORS`), become a clean message and exit status 2 (no traceback);
    anything else is a bug of ours and keeps its traceback. SIGTERM / SIGHUP (see :func:`stop_on_signals`) exit
    with 128 + the signal's number, as a shell reports a process the signal killed."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnimatorError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(2)
        except OSError as exc:
            if exc.errno not in _USER_OS_ERRORS or not exc.filename:
                raise  # not about a path the user gave: a bug of ours keeps its traceback
            click.secho(f"error: {_os_error_message(exc)}", fg="red", err=True)
            ctx.exit(2)
        except Stopped as exc:
            click.secho(f"stopped by {exc}", fg="yellow", err=True)
            ctx.exit(128 + exc.signum)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="animator")
def main() -> None:
    """Render Deforum-style AI animations from keyframe files.

    \b
    Start here:
      animator render keyframes/demo.yaml -o demo.mp4     render the demo (offline, no model needed)
      animator schedule keyframes/demo.yaml               see every per-frame value
      animator validate my.yaml                           check a keyframe file
      animator import deforum settings.txt -o my.yaml     convert a Deforum settings file
    """


def _register_commands() -> None:
    package = sys.modules[__name__]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            main.add_command(module.command)


_register_commands()
