"""`animator render`: a keyframe file to a finished video."""

from __future__ import annotations

import sys

import click

from animator.choices import COMPILE_MODES, FEEDBACKS
from animator.cli.frame_range import parse_frame_range


def _absolute_if_local(spec: str) -> str:
    """A model given as a local file or folder, as an absolute path: the run records it, and ``--resume`` from
    another working directory must find the same model (hub ids and names are left as they are)."""
    import os

    path = os.path.expanduser(spec)
    return os.path.abspath(path) if os.path.exists(path) else spec


class ProgressBar:
    """A tqdm bar on stderr fed by render events (frame, fps, ETA), plus the run's notes for newcomers."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.run_dir = None  # the run folder, once the render has started
        self.frames_done = 0  # frames finished in this run
        self.finished = False

    def stopped(self) -> None:
        """The render raised (Ctrl-C, an error): close the bar and say how to continue, when there is a run."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.run_dir is not None and not self.finished and self.frames_done:
            click.secho(
                f"stopped after {self.frames_done} new frame(s); the run folder keeps them: "
                f"`animator render --resume {self.run_dir}` continues where it stopped",
                fg="yellow",
                err=True,
            )

    def __call__(self, event) -> None:
        from animator.events import FrameRendered, MetricProgress, RenderFinished, RenderStarted

        if isinstance(event, RenderStarted):
            self.run_dir = event.run_dir
            if not self.quiet:
                for note in event.notes:
                    click.secho(f"note: {note}", fg="yellow", err=True)
                click.echo(f"run folder: {event.run_dir}  ({event.width}x{event.height}, {event.fps:g} fps)", err=True)
                self.bar = self._bar(event.total_frames, unit="frame")
        elif isinstance(event, FrameRendered):
            self.frames_done += 1
            if self.bar is not None:
                self.bar.set_postfix_str(f"frame {event.index}", refresh=False)
                self.bar.update(1)
        elif isinstance(event, MetricProgress) and self.bar is not None:
            if event.done == 0:  # the video is written; the frames' bar makes way for the metric's
                self.bar.close()
                desc = "finishing" if event.metric == "finishing" else f"{event.metric} (--no-metrics skips it)"
                self.bar = self._bar(event.total, unit="frame", desc=desc)
            else:
                self.bar.update(event.done - self.bar.n)
        elif isinstance(event, RenderFinished):
            self.finished = True
            if self.bar is not None:
                self.bar.close()

    @staticmethod
    def _bar(total: int, **settings):
        from tqdm import tqdm

        return tqdm(total=total, file=sys.stderr, dynamic_ncols=True, **settings)


@click.command("render")
@click.argument("keyframe_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Video to write (.mp4, .webm for vp9, .mov for prores)."
)
@click.option("--model", help="Diffusion model: hub id, diffusers folder or .safetensors file (sets backends.denoise).")
@click.option(
    "--depth", "depth_model", help="Depth model: offline, a hub id, a folder or a MiDaS .pt file (sets backends.depth)."
)
@click.option("--device", help="auto, cpu, cuda, cuda:1, mps (sets backends.device).")
@click.option(
    "--compile",
    "compile_mode",
    type=click.Choice(COMPILE_MODES),
    help="torch.compile the models, cudagraphs adds CUDA graphs (sets backends.compile; GPU).",
)
@click.option(
    "--feedback",
    type=click.Choice(FEEDBACKS),
    help="What each diffused frame starts from: image (warped pixels) or latent (warped latents, no VAE "
    "encode; sets generation.feedback).",
)
@click.option(
    "--frames",
    "frame_range",
    metavar="A:B",
    help="Render only frames A..B-1 (:48 the first 48, 100: from frame 100 on).",
)
@click.option("--size", metavar="WxH", help="Override the frame size, e.g. 256x256 for a quick look.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder (default runs/<name>-<time>).")
@click.option(
    "--resume", type=click.Path(file_okay=False, exists=True), help="Continue an interrupted run from its folder."
)
@click.option("--frames-dir", type=click.Path(file_okay=False), help="Also keep every frame as PNG here.")
@click.option("--gif", is_flag=True, help="Also write an animated GIF next to the video.")
@click.option("--no-metrics", is_flag=True, help="Skip the flicker metric at the end.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any keyframe field by its dotted name (seed=7, generation.strength=0.5, prompts.0=...).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes.")
def command(
    keyframe_file,
    output,
    model,
    depth_model,
    device,
    compile_mode,
    feedback,
    frame_range,
    size,
    run_dir,
    resume,
    frames_dir,
    gif,
    no_metrics,
    sets,
    quiet,
):
    """Render KEYFRAME_FILE into a video.

    \b
    animator render keyframes/demo.yaml -o demo.mp4
    animator render keyframes/demo.yaml --model stabilityai/sd-turbo -o turbo.mp4
    animator render --resume runs/demo-20261126-041500      # after Ctrl-C or a crash
    """
    from animator.errors import AnimatorError
    from animator.rendering import render

    if resume is None and keyframe_file is None:
        raise AnimatorError(
            "give a keyframe file to render, or --resume RUN_DIR",
            hint="animator render keyframes/demo.yaml -o demo.mp4",
        )
    overrides: dict = {}
    if model:
        overrides["backends.denoise"] = _absolute_if_local(model)
    if depth_model:
        overrides["backends.depth"] = _absolute_if_local(depth_model)
    if compile_mode:
        overrides["backends.compile"] = compile_mode
    if feedback:
        overrides["generation.feedback"] = feedback
    if device:
        overrides["backends.device"] = device
    if gif:
        overrides["output.gif"] = True
    if sets:
        from animator.batching.jobs import single_overrides

        overrides.update(single_overrides(sets))
    if size:
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise AnimatorError(f"takes WxH (e.g. 256x256), got {size!r}", field="--size") from None
        if width < 1 or height < 1:
            raise AnimatorError(f"{size}: a frame size is positive", field="--size", hint="e.g. --size 256x256")
        overrides.update({"width": width, "height": height})
    if resume and keyframe_file:
        raise AnimatorError(
            f"--resume continues the run with the copy of the keyframe file in {resume}; {keyframe_file} would not be"
            " read",
            field="--resume",
            hint=f"drop {keyframe_file} to resume, or render it without --resume to start a new run",
        )
    if resume and (overrides or frame_range):
        raise AnimatorError(
            "--resume continues a run exactly as it was started; it takes no other settings but -o",
            field="--resume",
            hint="-o writes the resumed run's video somewhere else; nothing that changes frames can change",
        )
    if resume is None and frame_range is None:  # a file with sections: its sections as a batch, then joined
        from animator.batching.api import render_sections, sections_folder

        folder = sections_folder(keyframe_file, overrides, run_dir)
        if folder is not None:
            from functools import partial

            from animator.cli.cmd_batch import finish

            run = partial(
                render_sections, keyframe_file, output, folder=folder, overrides=overrides, progress=not quiet
            )
            return finish(run, str(folder), quiet)
    from animator.cli import stop_on_signals

    progress = ProgressBar(quiet)
    try:
        with stop_on_signals():  # SIGTERM / SIGHUP stop the render as Ctrl-C does: run marked, hint printed
            result = render(
                keyframe_file,
                output,
                overrides=overrides or None,
                frames=parse_frame_range(frame_range),
                run_dir=run_dir,
                resume=resume,
                callbacks=[progress],
                frames_dir=frames_dir,
                metrics=not no_metrics,
            )
    except BaseException:
        progress.stopped()
        raise
    if not quiet:
        fps = result.stats.get("fps", 0.0)
        click.echo(f"wrote {result.output} ({result.frames} frames, {fps:.1f} frames/s); run folder {result.run_dir}")
        flicker = result.stats.get("flicker")
        if isinstance(flicker, dict) and "mean" in flicker:
            click.echo(f"flicker (mean warp error between consecutive frames): {flicker['mean']:.3f}")
        elif isinstance(flicker, dict) and "skipped" in flicker:
            click.echo(f"flicker metric skipped ({flicker['skipped']})")
    else:
        click.echo(str(result.output))
