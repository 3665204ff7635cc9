"""``animator import deforum|parseq FILE -o out.yaml``: convert Deforum settings and Parseq manifests."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("import")
def command() -> None:
    """Convert Deforum settings files and Parseq manifests into keyframe files."""


def check_target(source: str, output: str | None) -> Path:
    """Where to write: ``-o`` (a keyframe file suffix, an existing folder) or FILE's stem + .yaml here."""
    import os

    from animator.errors import AnimatorError
    from animator.keyframes.importers._yaml import WRITERS

    target = Path(output) if output else Path(Path(source).stem + ".yaml")
    if target.suffix.lower() not in WRITERS:
        raise AnimatorError(
            f"cannot write a keyframe file as {target.suffix or 'a file without a suffix'!r}",
            file=target,
            field="-o",
            hint="use one of: " + ", ".join(WRITERS),
        )
    if not target.parent.is_dir():
        raise AnimatorError(
            f"the folder {target.parent} does not exist",
            file=target,
            field="-o",
            hint=f"create it first (mkdir -p {target.parent}) or choose another -o",
        )
    if not os.access(target.parent, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(target.parent).f_flag & os.ST_RDONLY)
        raise AnimatorError(
            f"cannot write into {target.parent}: " + ("Read-only file system" if read_only else "Permission denied"),
            file=target,
            field="-o",
            hint="choose a folder you can write to",
        )
    return target


def _write(result, source: str, target: Path) -> None:
    """Writes the converted file only once it loads: a temporary name next to it, checked, then renamed (a file
    already at ``target`` is kept when the conversion fails)."""
    import os

    from animator.errors import AnimatorError
    from animator.keyframes import load_config

    tmp = target.with_name(f".{target.stem}.import-{os.getpid()}{target.suffix}")
    try:
        try:
            tmp.write_text(result.text(target.suffix), encoding="utf-8")
        except OSError as exc:
            from animator.run_folder import DISK_ERRORS, disk_error

            if exc.errno in DISK_ERRORS:  # a full disk: named by the file asked for, not our temporary name
                raise disk_error(exc, target) from None
            raise
        try:
            load_config(tmp)
        except AnimatorError as exc:  # a value of the source out of range (fps NaN, a seed of 1e50 ...)
            raise AnimatorError(
                f"the converted settings do not make a valid keyframe file: {exc.message}",
                file=source,
                field=exc.field,
                hint=exc.hint or "fix that setting in the source file and import again",
            ) from None
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {target}")


@command.command("deforum")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write: .yaml, .yml, .toml or .json (default: FILE's stem + .yaml here).",
)
def deforum(file: str, output: str | None) -> None:
    """Convert a Deforum settings file (*_settings.txt / .json, webui or notebook keys)."""
    from animator.keyframes.importers import import_deforum

    target = check_target(file, output)  # before reading: a bad -o fails fast
    _write(import_deforum(file), file, target)


@command.command("parseq")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write: .yaml, .yml, .toml or .json (default: FILE's stem + .yaml here).",
)
def parseq(file: str, output: str | None) -> None:
    """Convert a Parseq manifest (JSON with rendered_frames)."""
    from animator.keyframes.importers import import_parseq

    target = check_target(file, output)
    _write(import_parseq(file), file, target)
