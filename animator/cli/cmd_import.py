"""``animator import deforum|parseq FILE -o out.yaml``: convert Deforum settings and Parseq manifests."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("import")
def command() -> None:
    """Convert Deforum settings files and Parseq manifests into keyframe files."""


def _write(result, source: str, output: str | None) -> None:
    from animator.keyframes import load_config

    target = Path(output) if output else Path(Path(source).stem + ".yaml")
    text = result.to_yaml()
    target.write_text(text, encoding="utf-8")
    load_config(target)  # what we write must load; a failure here is a bug worth reporting
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {target}")


@command.command("deforum")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the YAML (default: FILE's stem + .yaml here).",
)
def deforum(file: str, output: str | None) -> None:
    """Convert a Deforum settings file (*_settings.txt / .json, webui or notebook keys)."""
    from animator.keyframes.importers import import_deforum

    _write(import_deforum(file), file, output)


@command.command("parseq")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the YAML (default: FILE's stem + .yaml here).",
)
def parseq(file: str, output: str | None) -> None:
    """Convert a Parseq manifest (JSON with rendered_frames)."""
    from animator.keyframes.importers import import_parseq

    _write(import_parseq(file), file, output)
