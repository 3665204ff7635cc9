"""``animator schedule FILE``: every per-frame value of a keyframe file, as a table, CSV, JSON or a plot."""

from __future__ import annotations

import click

from animator.cli.frame_range import parse_frame_range


@click.command("schedule")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--frames",
    "frame_range",
    metavar="A:B",
    help="Only frames A..B-1 (Python slice style; A or B may be omitted). Values are those of the full animation.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help='json: {"frames": N, "fps": F, "schedules": {name: [one float per frame]}, '
    '"prompts": [one string per frame]}.',
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Also write a PNG with one subplot per schedule that varies, keyframes marked.",
)
@click.option(
    "--names", help="Comma-separated schedule names to show (default: all for json/csv, the varying ones for table)."
)
def command(file: str, frame_range: str | None, fmt: str, plot: str | None, names: str | None) -> None:
    """Print the per-frame values of every schedule and prompt in FILE."""
    import json

    from animator.errors import AnimatorError
    from animator.keyframes import SCHEDULE_NAMES, evaluate, load_config
    from animator.plan import frame_span

    if plot:
        from animator.cli import check_plot_path

        check_plot_path(plot)
    config = load_config(file)
    first, stop = frame_span(parse_frame_range(frame_range), config.frames)
    evaluated = evaluate(config, range(first, stop))
    wanted = list(SCHEDULE_NAMES)
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in SCHEDULE_NAMES]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], SCHEDULE_NAMES, n=1)
            raise AnimatorError(
                f"unknown schedule {unknown[0]!r}",
                field="--names",
                hint=(f"did you mean {close[0]!r}? " if close else "") + "names: " + ", ".join(SCHEDULE_NAMES),
            )
    shown = wanted
    if not names and config.seed_behavior != "schedule":
        shown = [n for n in wanted if n != "seed"]  # the seed schedule only matters with seed_behavior: schedule
    if fmt == "json":
        data = evaluated.to_json_dict()
        data["schedules"] = {k: v for k, v in data["schedules"].items() if k in wanted}
        click.echo(json.dumps(data))
    elif fmt == "csv":
        click.echo(",".join(["frame", *wanted, "sampler", "prompt"]))
        for i in range(evaluated.frames):
            row = [str(first + i), *(f"{evaluated.values[n][i]:.6g}" for n in wanted), evaluated.strings["sampler"][i]]
            click.echo(",".join(row + [json.dumps(str(evaluated.prompts[i]))]))
    else:
        _print_table(evaluated, shown if names else _varying(evaluated, shown), first)
    if plot:
        plot_schedules(evaluated, shown if names else _varying(evaluated, shown), plot, first)
        click.echo(f"wrote {plot}", err=True)


def _varying(evaluated, names: list[str]) -> list[str]:
    import numpy as np

    return [n for n in names if np.ptp(evaluated.values[n]) > 0]


def _print_table(evaluated, names: list[str], first: int) -> None:
    constant = [n for n in evaluated.values if n not in names and n != "seed"]
    header = ["frame", *names]
    widths = [max(6, len(h)) for h in header]
    click.echo("  ".join(h.rjust(w) for h, w in zip(header, widths)) + "  prompt")
    previous_prompt = None
    for i in range(evaluated.frames):
        cells = [str(first + i), *(f"{evaluated.values[n][i]:.4g}" for n in names)]
        prompt = str(evaluated.prompts[i])
        shown = "" if prompt == previous_prompt else (prompt if len(prompt) <= 60 else prompt[:57] + "...")
        previous_prompt = prompt
        click.echo("  ".join(c.rjust(w) for c, w in zip(cells, widths)) + "  " + shown)
    if constant and evaluated.frames:
        text = ", ".join(f"{n}={evaluated.values[n][0]:.4g}" for n in constant)
        click.echo(f"constant: {text}")


def plot_schedules(evaluated, names: list[str], path: str, first: int = 0) -> None:
    """One subplot per schedule, keyframes marked with dots (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = names or ["translation_z"]
    frames = np.arange(first, first + evaluated.frames)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.6 * len(names) + 0.6), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        values = evaluated.values[name]
        ax.plot(frames, values, lw=1.2)
        keys = [k for k in evaluated.keyframes.get(name, ()) if first <= k < first + evaluated.frames]
        ax.plot(keys, values[np.asarray(keys, dtype=int) - first], "o", ms=3, color="tab:red")
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(f"frame ({evaluated.fps:g} fps)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
