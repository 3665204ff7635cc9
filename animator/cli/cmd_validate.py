"""``animator validate FILE...``: check keyframe files; "ok: ..." per good file, the error per bad one, and exit
0 when all are good, 2 otherwise."""

from __future__ import annotations

import sys

import click


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--check-files",
    is_flag=True,
    help="Also check that every file a render of the keyframe file reads (init image, videos, audio, images) exists.",
)
@click.pass_context
def command(ctx: click.Context, files: tuple[str, ...], check_files: bool) -> None:
    """Check FILES (one or more keyframe files): syntax, every field, every schedule and prompt at every frame.

    Prints "ok: ..." for each good file and the error (file, line, field, what to do) for each bad one; the exit
    status is 0 when every file is good, 2 otherwise. Files a keyframe file names (init image, audio, video) are
    checked only with --check-files, so a shared keyframe file can be validated before its media are in place;
    audio is analysed only when an expression needs it and the file exists.
    """
    from animator.errors import AnimatorError

    failed = 0
    for file in files:
        try:
            line, notes = _validate(file, check_files)
            click.echo(line)
            sys.stdout.flush()  # in order with the notes and errors on stderr, also through a pipe
            for note in notes:
                click.echo(f"note: {note}", err=True)
        except AnimatorError as exc:
            failed += 1
            click.secho(f"error: {exc}", fg="red", err=True)
    if len(files) > 1:
        click.echo(f"{len(files) - failed} of {len(files)} files ok" + (f", {failed} with errors" if failed else ""))
    if failed:
        ctx.exit(2)


def _validate(file: str, check_files: bool) -> tuple[str, list[str]]:
    """The "ok: ..." line of a good keyframe file and notes about it; AnimatorError for a bad one."""
    from animator.keyframes import evaluate, load_config, starts_from_nothing
    from animator.keyframes.evaluate import uses_audio
    from animator.keyframes.inputs import check_input_files

    config = load_config(file)
    if check_files:
        check_input_files(config)  # the render's start check: every file there, every image readable
    notes = []
    if config.audio is not None and uses_audio(config) and not config.audio.path.is_file():
        notes.append(f"audio.path {config.audio.path} does not exist yet; audio-driven schedules were not evaluated")
    else:
        evaluate(config)  # expressions that fail at some frame (division by zero ...) are caught here
    if starts_from_nothing(config):
        notes.append(
            "no init_image and no model (backends.denoise: none): a render needs --model or an init_image to start from"
        )
    duration = config.frames / config.fps
    return (
        f"ok: {file}: {config.mode} {config.width}x{config.height}, {config.frames} frames at {config.fps:g} fps "
        f"({duration:.1f} s), {len(config.prompts)} prompt keyframe(s), denoise {config.backends.denoise}, "
        f"depth {config.backends.depth}"
    ), notes
