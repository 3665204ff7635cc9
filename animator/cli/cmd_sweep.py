"""`animator sweep`: the cross product of keyframe-field values as one batch, with a contact sheet."""

from __future__ import annotations

import click

from animator.cli.cmd_batch import ADDRESS_HELP, JOBS_HELP, finish


@click.command("sweep")
@click.argument("keyframe_file", type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "sets",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help="A keyframe field by its dotted name and its values (YAML scalars; quote a value holding commas).",
)
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False), help="The batch folder.")
@click.option("--address", help=ADDRESS_HELP)
@click.option("--jobs", type=click.IntRange(min=1), help=JOBS_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or table (the summary file is still written).")
def command(keyframe_file, sets, output_dir, address, jobs, quiet):
    """Render KEYFRAME_FILE once per combination of the --set values into OUTPUT_DIR.

    Writes a video and run folder per job, OUTPUT_DIR/summary.csv and OUTPUT_DIR/contact.png (a row per job: its
    frames at 0, 25, 50, 75 and 100 %, labelled with the values that differ). A key with one value is a plain
    override of every job.

    \b
    animator sweep anim.yaml --set seed=1,2,3 --set generation.strength=0.5,0.65 -o sweep/     # 6 jobs
    animator sweep anim.yaml --set prompts.0='"a cat, oil","a dog, ink"' -o prompts/           # quoted commas
    """
    from animator.batching import sweep
    from animator.batching.jobs import parse_sets

    values = parse_sets(sets)
    finish(
        lambda: sweep(keyframe_file, values, output_dir, address=address, jobs=jobs, progress=not quiet),
        output_dir,
        quiet,
    )
