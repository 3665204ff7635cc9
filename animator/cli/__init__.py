"""The ``animator`` command line.

Each command lives in its own module ``animator/cli/cmd_*.py`` and exposes a click command (or group) named
``command``; this module discovers them, so adding a command never touches a shared file. Command modules must
import torch, diffusers and the other heavy libraries inside their functions: ``animator --help`` has to answer in
well under half a second.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from animator import __version__
from animator.errors import AnimatorError


class _Main(click.Group):
    """Turns :class:`AnimatorError` into a clean message and exit status 2 (no traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnimatorError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(2)


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
