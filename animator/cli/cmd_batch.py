"""`animator batch`: many keyframe files as one queue on Ray, a video and a run folder per job, and a summary."""

from __future__ import annotations

import click

ADDRESS_HELP = "Ray cluster to use: auto (the one this machine belongs to) or ray://HOST:10001. Default: a local Ray."
JOBS_HELP = "Jobs at once on the CPU (default: one per core; one with a diffusion model). GPU jobs: one per GPU."


def finish(run, output_dir: str, quiet: bool) -> None:
    """Runs ``run()`` (which returns the summary rows), prints the summary, and exits 2 when a job failed; Ctrl-C
    (or SIGTERM, SIGHUP) says how to resume and exits 128 + the signal's number."""
    import signal
    import sys
    from pathlib import Path

    from animator.batching.summary import format_table
    from animator.cli import stop_on_signals

    summary = Path(output_dir) / "summary.csv"
    try:
        with stop_on_signals():
            rows = run()
    except KeyboardInterrupt as exc:
        click.secho(
            f"stopped; every job keeps its run folder: run the same command again to resume ({summary})",
            fg="yellow",
            err=True,
        )
        sys.exit(128 + getattr(exc, "signum", signal.SIGINT))
    if not quiet:
        click.echo(format_table(rows))
    click.echo(f"summary: {summary}")
    if any(row["status"] == "failed" for row in rows):
        sys.exit(2)


@click.command("batch")
@click.argument("keyframe_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False), help="The batch folder.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a keyframe field in every job.")
@click.option("--address", help=ADDRESS_HELP)
@click.option("--jobs", type=click.IntRange(min=1), help=JOBS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or table (the summary file is still written).")
def command(keyframe_files, output_dir, sets, address, jobs, quiet):
    """Render every KEYFRAME_FILE as one batch into OUTPUT_DIR.

    Each job writes OUTPUT_DIR/<job>.mp4 and its run folder OUTPUT_DIR/<job>/run; OUTPUT_DIR/summary.csv lists
    every job (done, skipped or failed). Running the same command again skips the finished jobs and resumes the
    unfinished ones. A file with `sections:` renders its sections in parallel and joins them.

    \b
    animator batch keyframes/*.yaml -o renders/
    animator batch a.yaml b.yaml -o renders/ --set backends.device=cpu
    animator batch a.yaml -o renders/ --address ray://head:10001
    """
    from animator.batching import batch
    from animator.batching.jobs import single_overrides

    overrides = single_overrides(sets)
    finish(
        lambda: batch(keyframe_files, output_dir, overrides=overrides, address=address, jobs=jobs, progress=not quiet),
        output_dir,
        quiet,
    )
