"""``animator metrics VIDEO``: the flicker metric of any video (lower is steadier)."""

from __future__ import annotations

import json

import click


@click.command("metrics")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option(
    "--flow",
    "estimator",
    default="dis_medium",
    show_default=True,
    help="flow estimator: dis_ultrafast, dis_fast, dis_medium, dis_fine, farneback, raft_small, raft_large",
)
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="measure only the first N frames")
@click.option(
    "--max-side",
    type=click.IntRange(min=16),
    default=None,
    help="shrink frames to at most this many pixels on the longer side first (faster on HD video)",
)
@click.option("--json", "as_json", is_flag=True, help="print the full report (with the per-frame series) as JSON")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="save the per-frame series as a PNG plot")
def command(
    video: str, estimator: str, max_frames: int | None, max_side: int | None, as_json: bool, plot: str | None
) -> None:
    """Measure the flicker of VIDEO: mean warp error between consecutive frames over flow-consistent pixels.

    \b
    Units are 8-bit grey levels (0-255); motion the optical flow can follow costs nothing, content that
    changes in place (shimmer, boiling textures, brightness pumping) does. For scale: a clean camera pan
    over a photograph scores about 1.5 (interpolation error); the same pan with 4% per-frame noise about 10.
    """
    import sys

    from tqdm import tqdm

    from animator.metrics import flicker_of_video

    # on a terminal only (disable=None): the count of frame pairs measured and the rate, on stderr
    with tqdm(unit="pair", desc="flicker", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
        report = flicker_of_video(
            video,
            estimator=estimator,
            max_frames=max_frames,
            max_side=max_side,
            progress=lambda done: bar.update(done - bar.n),
        )
    summary = report.to_dict()
    if plot:
        _plot_series(report, plot, title=video)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"flicker of {video} ({summary['frames']} frames, flow {summary['estimator']}, 0-255 units)")
    click.echo(f"  mean   {summary['mean']:8.3f}")
    click.echo(f"  median {summary['median']:8.3f}")
    click.echo(f"  p95    {summary['p95']:8.3f}")
    if summary["worst_pair"] is not None:
        pair = summary["worst_pair"]
        click.echo(f"  max    {summary['max']:8.3f}  (frames {pair} -> {pair + 1})")
    checked = 100.0 * summary["mean_consistent_fraction"]
    click.echo(f"  pixels checked {checked:.1f}% (the rest were occluded or untrackable)")
    if checked < 50.0:
        # The metric averages over trackable pixels only: when most are not, consecutive frames barely resemble
        # each other, which is itself the worst kind of flicker (or a cut-heavy edit).
        click.echo(
            "  note: under half the pixels could be followed from frame to frame; the frames change too much "
            "for the mean to tell the whole story"
        )
    if plot:
        click.echo(f"  plot   {plot}")


def _plot_series(report, path: str, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(8, 3), dpi=100)
    axes.plot(range(1, report.frames), report.series, lw=1.2)
    axes.axhline(report.mean, color="grey", ls="--", lw=0.8, label=f"mean {report.mean:.2f}")
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_xlabel("frame (error against the frame before)")
    axes.set_ylabel("warp error (0-255)")
    axes.set_title(f"flicker: {title}", fontsize=9)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
