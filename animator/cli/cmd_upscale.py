"""``animator upscale IN -o OUT.mp4 --scale S [--model PATH] [--method M]``: a bigger video, frame by frame."""

from __future__ import annotations

import click

from animator.choices import UPSCALE_METHODS
from animator.cli.finishing_options import encode_options, frames_dir_option, input_fps_option, open_input, progress_bar


@click.command("upscale")
@click.argument("source", metavar="IN", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="the video to write")
@click.option("--scale", type=float, default=2.0, show_default=True, help="output size over input size")
@click.option(
    "--model",
    default=None,
    help="an upscaler file (.pth/.safetensors: ESRGAN, Real-ESRGAN, Compact, SwinIR, HAT ...); with --method "
    "diffusion, the Stable Diffusion model (default: a run folder's own)",
)
@click.option(
    "--method",
    type=click.Choice(UPSCALE_METHODS),
    default=None,
    help="lanczos (default without --model), model (default with it), diffusion (tiled img2img at low strength)",
)
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    default=512,
    show_default=True,
    help="tile size, output pixels (0: whole frames)",
)
@click.option("--overlap", type=click.IntRange(min=0), default=32, show_default=True, help="tile overlap (pixels)")
@click.option("--prompt", default="", help="diffusion: what the added detail should look like")
@click.option("--strength", type=float, default=0.3, show_default=True, help="diffusion: img2img strength")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="diffusion: sampler steps at strength 1")
@click.option("--seed", type=int, default=0, show_default=True, help="diffusion: the seed of every tile")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
@frames_dir_option
@input_fps_option
@encode_options
def command(
    source: str,
    output: str,
    scale: float,
    model: str | None,
    method: str | None,
    tile: int,
    overlap: int,
    prompt: str,
    strength: float,
    steps: int | None,
    seed: int,
    device: str | None,
    frames_dir: str | None,
    input_fps: float | None,
    crf: int,
    x264_preset: str,
) -> None:
    """Upscale IN (a video, a folder of images, or a render's run folder) by --scale.

    \b
    Without --model: Lanczos. With an upscaler file: the network in overlapping tiles (fp16 on a GPU), needs
    the optional extra: pip install 'animator[upscale]'. --method diffusion: a tiled img2img pass at low
    strength, each frame starting from the previous upscaled frame carried along the optical flow.
    \b
      animator upscale render.mp4 -o big.mp4 --scale 2
      animator upscale render.mp4 -o big.mp4 --scale 4 --model ~/models/RealESRGAN_x4plus.pth
    """
    from animator.finishing.upscale import upscale
    from animator.video import EncodeSettings

    frames = open_input(source, input_fps)
    if method == "diffusion" and model is None and frames.run_dir is not None:
        from animator.finishing.pipeline import run_config

        model = run_config(frames.run_dir).backends.denoise
    with progress_bar("upscale") as progress:
        result = upscale(
            frames,
            output,
            scale=scale,
            method=method,
            model=model,
            tile=tile,
            overlap=overlap,
            device=device,
            settings=EncodeSettings(crf=crf, preset=x264_preset),
            frames_dir=frames_dir,
            diffusion={"prompt": prompt, "strength": strength, "steps": steps, "seed": seed},
            progress=progress,
        )
    click.echo(
        f"{result.output}: {result.frames} frames at {result.width}x{result.height} ({result.method}, "
        f"{result.frames / max(result.seconds, 1e-9):.1f} frames/s)"
    )
