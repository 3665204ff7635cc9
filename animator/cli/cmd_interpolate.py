"""``animator interpolate IN -o OUT.mp4 (--factor N | --fps F)``: more frames per second, in sync with the sound."""

from __future__ import annotations

import click

from animator.choices import INTERPOLATE_METHODS
from animator.cli.finishing_options import encode_options, frames_dir_option, input_fps_option, open_input, progress_bar


@click.command("interpolate")
@click.argument("source", metavar="IN", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="the video to write")
@click.option("--factor", type=int, default=None, help="N x the frames at N x the fps (N >= 2)")
@click.option("--fps", type=float, default=None, help="the output frame rate (above the input's)")
@click.option(
    "--method",
    type=click.Choice(INTERPOLATE_METHODS),
    default="flow",
    show_default=True,
    help="flow: optical flow both ways; camera: a 3D run folder's camera path and depth; rife: RIFE v4.6 "
    "(--model flownet.pkl); blend: a cross-fade",
)
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="rife: the RIFE v4.6 flownet.pkl")
@click.option("--slowmo", is_flag=True, help="keep the input's fps (N x slower, no sound) instead of raising it")
@frames_dir_option
@click.option(
    "--flow",
    "preset",
    type=click.Choice(["ultrafast", "fast", "medium", "dis_fine", "farneback", "raft_small", "raft_large"]),
    default="fast",
    show_default=True,
    help="the flow method's estimator: a DIS preset (ultrafast, fast, medium), or dis_fine, farneback, "
    "raft_small / raft_large (the raft extra; best on a GPU)",
)
@click.option(
    "--flow-size",
    type=click.IntRange(min=16),
    default=256,
    show_default=True,
    help="estimate flow at this many pixels on the longer side",
)
@input_fps_option
@click.option("--device", default=None, help="where the camera method and RAFT run (default: a GPU when there is one)")
@encode_options
def command(
    source: str,
    output: str,
    factor: int | None,
    fps: float | None,
    method: str,
    model: str | None,
    slowmo: bool,
    frames_dir: str | None,
    preset: str,
    flow_size: int,
    input_fps: float | None,
    device: str | None,
    crf: int,
    x264_preset: str,
) -> None:
    """Make new frames between the frames of IN (a video, a folder of images, or a render's run folder).

    \b
    With --factor N the output has N x the frames at N x the fps: frame k*N is input frame k unchanged, the
    frames between are new, and the last frame is held for the final N-1 frames, so the duration and the
    soundtrack (carried over) stay in sync. --fps F gives any higher rate. A run folder gives its lossless frames.
    \b
      animator interpolate render.mp4 -o smooth.mp4 --factor 2
      animator interpolate runs/demo-20261126-041500 -o smooth.mp4 --fps 60 --method camera
    """
    from animator.finishing.interpolate import interpolate
    from animator.video import EncodeSettings

    frames = open_input(source, input_fps)
    with progress_bar(f"interpolate ({method})") as progress:
        result = interpolate(
            frames,
            output,
            factor=factor,
            fps=fps,
            method=method,
            slowmo=slowmo,
            frames_dir=frames_dir,
            flow=preset,
            flow_size=flow_size,
            model=model,
            settings=EncodeSettings(crf=crf, preset=x264_preset),
            device=device,
            progress=progress,
        )
    click.echo(
        f"{result.output}: {result.frames} frames at {result.fps:g} fps from {result.input_frames} at "
        f"{result.input_fps:g} fps ({method}, {result.frames / max(result.seconds, 1e-9):.1f} frames/s)"
    )
