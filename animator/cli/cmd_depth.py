"""``animator depth INPUT -o OUT``: the depth map of an image (16-bit or colour-mapped PNG) or a video
(colour-mapped mp4)."""

from __future__ import annotations

from pathlib import Path

import click

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif")
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")


@click.command("depth")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="output file: .png for an image, .mp4 for a video",
)
@click.option(
    "--model",
    default="offline",
    show_default=True,
    help="offline, a Hugging Face id (depth-anything/Depth-Anything-V2-Small-hf, Intel/dpt-large), "
    "a save_pretrained folder, or a MiDaS .pt file",
)
@click.option(
    "--colormap/--16bit",
    "colormap",
    default=False,
    show_default=True,
    help="images: colour-mapped 8-bit PNG, or 16-bit grey PNG (white = near). Videos are always colour-mapped.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="video frames per model call"
)
@click.option(
    "--resolution",
    type=click.IntRange(min=14),
    default=None,
    help="model input size (Depth Anything: short side); default: the model's own",
)
def command(
    input_path: Path, output: Path, model: str, colormap: bool, device: str, batch_size: int, resolution: int | None
) -> None:
    """Estimate the depth of INPUT (an image or a video) and write it to OUT.

    \b
    Examples:
      animator depth photo.jpg -o photo_depth.png                    16-bit PNG, offline prior
      animator depth photo.jpg -o depth.png --colormap --model depth-anything/Depth-Anything-V2-Small-hf
      animator depth clip.mp4 -o clip_depth.mp4 --model ~/models/dpt_large-midas-2f21e586.pt

    Values are relative inverse depth (white / bright = near), normalised per image; videos use one
    normalisation carried across frames, so the colours do not flicker.
    """
    from animator.backends.depth import load_depth_estimator, offline_note
    from animator.errors import AnimatorError

    is_video = input_path.suffix.lower() in VIDEO_SUFFIXES
    if is_video and output.suffix.lower() not in VIDEO_SUFFIXES:
        raise AnimatorError(
            f"a video's depth is written as a video; got {output.suffix or 'no suffix'!r}",
            file=output,
            hint="use an .mp4 output",
        )
    if not is_video and not colormap and output.suffix.lower() not in SIXTEEN_BIT_SUFFIXES:
        raise AnimatorError(
            f"16-bit depth needs a .png or .tif output, got {output.suffix or 'no suffix'!r}",
            file=output,
            hint="use a .png output, or --colormap for an 8-bit colour image",
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    if is_video:
        from animator.video import check_output

        check_output(output, "h264")  # the container must hold the H.264 written below
    else:
        from animator.images import check_image_pixels

        check_image_pixels(input_path)  # from the header, before the model loads
    estimator = load_depth_estimator(model, device=device, resolution=resolution, batch_size=batch_size)
    if estimator.name == "offline":
        click.echo(offline_note("--model"), err=True)
    if is_video:
        from animator.cli import stop_on_signals
        from animator.video import remove_stale_partials

        remove_stale_partials(output)  # what a killed run of this command left
        with stop_on_signals():  # SIGTERM / SIGHUP unwind like Ctrl-C: the unfinished video is removed
            frames = _depth_video(estimator, input_path, output, batch_size)
        click.echo(f"wrote {output} ({frames} frames, depth: {estimator.name})")
    else:
        _depth_image(estimator, input_path, output, colormap)
        click.echo(f"wrote {output} ({'colour-mapped' if colormap else '16-bit'}, depth: {estimator.name})")


def _depth_image(estimator, input_path: Path, output: Path, colormap: bool) -> None:
    import cv2
    import numpy as np
    import torch

    from animator.backends.depth import disparity_percentiles
    from animator.errors import AnimatorError

    image = _read_image(input_path)
    disparity = estimator(image)  # 1x1xHxW
    if colormap:
        lo, hi = disparity_percentiles(disparity)
        picture = _colour_map(_unit(disparity, lo, hi))
    else:
        # The full range, not percentiles: the 16-bit file is data, and clipping would lose the extremes.
        lo, hi = disparity.amin(), disparity.amax()
        unit = _unit(disparity, lo.view(1), torch.maximum(hi, lo + 1e-12).view(1))
        picture = np.round(unit[0, 0].cpu().numpy() * 65535).astype(np.uint16)
    if not cv2.imwrite(str(output), picture):
        raise AnimatorError("could not write the image", file=output, hint="check the folder and the file suffix")


def _read_image(path: Path):
    """``# 1x3xHxW`` float RGB in [0, 1] from any image OpenCV reads (grey, alpha and 16-bit included)."""
    import cv2
    import numpy as np
    import torch

    from animator.errors import AnimatorError
    from animator.images import check_image_pixels

    check_image_pixels(path)  # a header declaring more than MAX_IMAGE_PIXELS is refused before decoding
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise AnimatorError(
            "cannot read this image (not an image, or a format OpenCV cannot open)",
            file=path,
            hint="use a PNG, JPEG, WebP or TIFF image, or a video (.mp4, .mov, .mkv, .webm)",
        )
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    if pixels.ndim == 2:
        pixels = pixels[..., None].repeat(3, axis=2)
    rgb = pixels[..., [2, 1, 0]] if pixels.shape[2] >= 3 else pixels[..., :1].repeat(3, axis=2)
    return torch.from_numpy(rgb.astype(np.float32) / scale).permute(2, 0, 1)[None].contiguous()


def _unit(disparity, lo, hi):
    return ((disparity - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def _colour_map(unit):
    """``# 1x1xHxW`` in [0, 1] -> HxWx3 uint8 BGR (inferno: bright = near), for OpenCV writers."""
    import cv2
    import numpy as np

    grey = np.round(unit[0, 0].cpu().numpy() * 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)


def _depth_video(estimator, input_path: Path, output: Path, batch_size: int) -> int:
    import os
    import sys

    import imageio_ffmpeg
    import numpy as np
    import torch
    from tqdm import tqdm

    from animator.backends.depth import DepthTracker
    from animator.errors import AnimatorError

    try:
        reader = imageio_ffmpeg.read_frames(str(input_path))
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        from animator.video import ffmpeg_reason

        raise AnimatorError(
            f"cannot read this video ({ffmpeg_reason(str(exc)) if str(exc) else 'no frames'})",
            file=input_path,
            hint="check that the file is a complete video ffmpeg can play",
        ) from exc
    width, height = meta["size"]
    # yuv420p (what players accept) needs even sides: drop a last odd row/column rather than rescale.
    out_w, out_h = width - width % 2, height - height % 2
    from animator.video import partial_path

    partial = partial_path(output)  # renamed into place when complete: a failure never leaves half a video
    writer = imageio_ffmpeg.write_frames(
        str(partial),
        (out_w, out_h),
        fps=meta.get("fps") or 24,
        codec="libx264",
        macro_block_size=1,
        quality=8,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    # One normalisation carried across frames ("smooth" mode): per-frame percentiles would make the colours pump.
    near, far = 1.0, 100.0
    tracker = DepthTracker(near, far, mode="smooth", momentum=0.9)
    total = meta.get("nframes")
    count = 0
    try:
        with tqdm(
            total=total if isinstance(total, int) and total > 0 else None,
            unit="frame",
            file=sys.stderr,
            disable=None,
            desc="depth",
        ) as bar:
            for batch in _batches(reader, batch_size):
                frames = (
                    torch.from_numpy(
                        np.stack([np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in batch])
                    )
                    .permute(0, 3, 1, 2)
                    .float()
                    / 255.0
                )
                disparity = estimator(frames)
                for single in disparity.split(1):
                    depth = tracker(single)
                    unit = (1.0 / depth - 1.0 / far) / (1.0 / near - 1.0 / far)
                    bgr = _colour_map(unit)[:out_h, :out_w]
                    writer.send(np.ascontiguousarray(bgr[..., ::-1]).tobytes())
                    count += 1
                bar.update(len(batch))
        writer.close()
        if count == 0:
            raise AnimatorError("the video has no frames", file=input_path)
        os.replace(partial, output)
    finally:
        reader.close()
        writer.close()  # again after a failure: imageio's close is idempotent
        partial.unlink(missing_ok=True)
    return count


def _batches(frames, size: int):
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
