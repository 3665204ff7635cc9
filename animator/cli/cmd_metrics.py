"""``animator metrics VIDEO``: the flicker metric of any video (lower is steadier) and its drift from the first frame
(sharpness, colour, saturation, contrast)."""

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

    
    Drift, each frame against the first: sharpness (Laplacian energy ratio: < 1 softer, > 1 crunchier),
    colour shift (delta E of the mean CIELAB colour; ~2.3 is just noticeable), saturation and contrast ratios.
    """
    import os
    import sys

    from tqdm import tqdm

    from animator.errors import AnimatorError
    from animator.metrics import DriftMeter, flicker, read_video_frames

    if plot:
        from animator.cli import check_plot_path

        check_plot_path(plot)  # before the measuring, so a typo fails fast
    path = os.fspath(video)
    meter = DriftMeter()

    def measured_frames():
        for frame in read_video_frames(path, max_frames):
            meter.add(frame)  # drift on the main thread while the flicker workers take the frame pairs
            yield frame

    # on a terminal only (disable=None): the count of frame pairs measured and the rate, on stderr
    with tqdm(unit="pair", desc="flicker", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
        report = flicker(
            measured_frames(),
            estimator=estimator,
            max_side=max_side,
            progress=lambda done: bar.update(done - bar.n),
        )
    if report.frames < 2:
        raise AnimatorError(
            "the video has one frame: there is nothing to measure (flicker and drift compare frames)",
            file=path,
            hint="give a video of at least two frames",
        )
    drift = meter.report()
    summary = report.to_dict() | {"drift": drift.to_dict()}
    if plot:
        _plot_series(report, plot, title=video, drift=drift)
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
    click.echo("drift from the first frame (last frame; most extreme)")
    for name, label in (
        ("sharpness", "sharpness x"),
        ("color_shift", "colour dE"),
        ("saturation", "saturation x"),
        ("contrast", "contrast x"),
    ):
        values = summary["drift"][name]
        click.echo(f"  {label:<13}{values['last']:8.3f}  ({values['extreme']:.3f})")
    if plot:
        click.echo(f"  plot   {plot}")


def _plot_series(report, path: str, *, title: str, drift=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if drift is None:
        figure, axes = plt.subplots(figsize=(8, 3), dpi=100)
    else:
        figure, (axes, lower) = plt.subplots(2, 1, figsize=(8, 5.5), dpi=100, sharex=True)
        frames = range(drift.frames)
        for name, label in (("sharpness", "sharpness"), ("saturation", "saturation"), ("contrast", "contrast")):
            lower.plot(frames, getattr(drift, name), lw=1.2, label=label)
        lower.axhline(1.0, color="grey", ls=":", lw=0.8)
        lower.set_ylabel("ratio to frame 0")
        lower.set_xlabel("frame")
        colour = lower.twinx()
        colour.plot(frames, drift.color_shift, lw=1.2, color="black", ls="--", label="colour shift (dE)")
        colour.set_ylabel("colour shift (delta E)")
        handles = lower.get_legend_handles_labels()[0] + colour.get_legend_handles_labels()[0]
        lower.legend(handles=handles, loc="upper left", fontsize=8)
        lower.set_title("drift from the first frame", fontsize=9)
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
