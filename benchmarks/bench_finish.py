"""Finishing passes: interpolation quality against known in-between frames, and interpolation / upscaling speed.

    .venv/bin/python benchmarks/bench_finish.py [--size 512] [--frames 120] [--skip speed,upscale] [--json]

Quality (PSNR in dB of every made in-between against the true frame, mean over the in-betweens):

- ``slide``: a photograph panning at sub-pixel steps under a second photograph's patch moving the other way (the
  flow test scenes of :mod:`animator.backends.flow.synthetic`, rendered by supersampled reads, not by warping), at
  ``--size``; the true in-betweens are the same scene rendered at half steps.
- ``room``: the ray-cast room of the geometry tests (a textured wall, floor and a floating box: exact colour and
  depth), seen from a camera that pans, turns and moves forward; the truth is ray cast at the in-between poses
  (rotation slerped, position lerped). ``camera`` gets the true depth here, as a 3D render has its own depth.

Methods: ``blend`` (cross-fade), ``flow`` (DIS preset x flow size), ``camera`` (room only), and the bundled
ffmpeg's ``minterpolate`` (``mi_mode=mci``, motion-compensated), fed lossless frames in the same run (through
4:4:4 YUV, whose rounding costs it a little: its unchanged frames' PSNR is printed as ``ffmpeg_roundtrip_db``).

Speed: ``animator.finishing.interpolate`` from a video file of ``--frames`` frames at ``--size`` to an h264 file
(decoding, the in-betweens and x264 encoding all in the measured time; ``blend``, whose in-between is a single
``addWeighted``, is the decoding + encoding floor), in output frames per second, factor 2; its CPU time (this
process and its ffmpeg children: the work itself, whatever else shares the machine) per output frame, and the frame
rate that CPU time allows on the machine's cores; and upscaling (Lanczos, and a Compact-sized upscaler network with
random weights, which costs what a trained one does) in frames per second. Peak memory is reported after a short
and a long run (flat: frames stream). Prints a table, and JSON lines with ``--json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from animator.finishing.flow_interp import FlowTweener
from animator.finishing.interpolate import BlendTweener, interpolate
from animator.video import VideoWriter, ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
FLOW_VARIANTS = (("ultrafast", 256), ("fast", 256), ("medium", 256), ("fast", 384), ("medium", 512))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------------------------------ scenes


def slide_scene(size: int, pairs: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(inputs, truths): truths[k] lies half way between inputs[k] and inputs[k + 1]."""
    from skimage import data

    from animator.backends.flow.synthetic import sliding_patch_frames

    scale = size / 128.0
    half = sliding_patch_frames(
        data.astronaut(),
        data.coffee(),
        size=(size, size),
        frames=2 * pairs + 1,
        bg_step=(1.65 * scale, 0.7 * scale),
        fg_step=(-2.6 * scale, 1.3 * scale),
        box=(int(60 * scale), int(30 * scale), int(36 * scale), int(36 * scale)),
    )
    frames = [to_uint8(f[None]) for f in half]
    return frames[::2], frames[1::2]


def _raycast():
    spec = importlib.util.spec_from_file_location("raycast", ROOT / "tests" / "geometry" / "geometry_raycast.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def room_scene(size: int, pairs: int):
    """(inputs, depths, truths, K, poses) of the ray-cast room along a camera path."""
    from animator.finishing.camera_interp import interpolate_pose

    rc = _raycast()
    K = rc.intrinsics(50.0, size, size)
    room = rc.room_with_box()
    poses = [rc.pose((0.4 * k, 1.2 * k, 0.3 * k), (5.0 * k, -1.5 * k, 6.0 * k)) for k in range(pairs + 1)]
    inputs, depths, truths = [], [], []
    for k, pose in enumerate(poses):
        image, depth, _ = rc.render(room, K, pose, size, size)
        inputs.append(to_uint8(image.float()))
        depths.append(depth.float())
        if k < pairs:
            truth, _, _ = rc.render(room, K, interpolate_pose(pose, poses[k + 1], 0.5), size, size)
            truths.append(to_uint8(truth.float()))
    return inputs, depths, truths, K.float(), poses


# ----------------------------------------------------------------------------------------------------------- methods


def minterpolate(inputs: list[np.ndarray], fps: float = 12.0) -> tuple[list[np.ndarray], float, float]:
    """(in-betweens, PSNR of its unchanged frames against the inputs, seconds) of ffmpeg's minterpolate mci."""
    height, width = inputs[0].shape[:2]
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
               f"{width}x{height}", "-framerate", f"{fps}", "-i", "-", "-vf",
               f"format=yuv444p,minterpolate=fps={2 * fps}:mi_mode=mci,format=rgb24", "-f", "rawvideo",
               "-"]  # fmt: skip
    # minterpolate ends its output at the last input frame's start time: one more frame makes the last in-between
    padded = [*inputs, inputs[-1]]
    start = time.perf_counter()
    done = subprocess.run(command, input=b"".join(f.tobytes() for f in padded), capture_output=True, check=True)
    seconds = time.perf_counter() - start
    out = np.frombuffer(done.stdout, np.uint8).reshape(-1, height, width, 3)
    kept = float(np.mean([psnr(out[2 * k], inputs[k]) for k in range(len(inputs))]))
    return [out[2 * k + 1] for k in range(len(inputs) - 1)], kept, seconds


def quality_rows(scene: str, inputs, truths, extra: dict | None = None) -> list[dict]:
    rows = []

    def row(method: str, made: list[np.ndarray], seconds: float, **fields) -> None:
        rows.append(
            {
                "bench": "interpolation_quality",
                "scene": scene,
                "size": inputs[0].shape[0],
                "method": method,
                "psnr_db": round(float(np.mean([psnr(m, t) for m, t in zip(made, truths)])), 2),
                "ms_per_in_between": round(1000 * seconds / len(made), 1),
            }
            | fields
        )

    tweeners = [("blend", BlendTweener(), {})] + [
        (f"flow {p}@{s}", FlowTweener(p, s), {"preset": p, "flow_size": s}) for p, s in FLOW_VARIANTS
    ]
    for name, tweener, fields in tweeners:
        start = time.perf_counter()
        made = [tweener.pair(inputs[k], inputs[k + 1], k)(0.5) for k in range(len(truths))]
        row(name, made, time.perf_counter() - start, **fields)
    if extra:
        for name, (made, seconds) in extra.items():
            row(name, made, seconds)
    made, kept, seconds = minterpolate(inputs)
    row("ffmpeg minterpolate mci", made, seconds, ffmpeg_roundtrip_db=round(kept, 2))
    return rows


def camera_in_betweens(inputs, depths, K, poses) -> tuple[list[np.ndarray], float]:
    from animator.finishing.camera_interp import camera_tween

    def tensor(frame):
        return torch.from_numpy(frame.copy()).permute(2, 0, 1)[None].float() / 255.0

    start = time.perf_counter()
    made = [
        to_uint8(camera_tween(tensor(a), da, tensor(b), db, K, pa, pb, 0.5))
        for a, b, da, db, pa, pb in zip(inputs, inputs[1:], depths, depths[1:], poses, poses[1:])
    ]
    return made, time.perf_counter() - start


# ------------------------------------------------------------------------------------------------------------- speed


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ffmpeg decoders and encoders), in seconds: on a
    machine shared with other jobs, wall time measures the neighbours; CPU time measures the work."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_video(path: Path, frames: list[np.ndarray], count: int, fps: float = 12.0) -> None:
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width=width, height=height, fps=fps) as writer:
        for k in range(count):
            writer.write(frames[k % len(frames)] if (k // len(frames)) % 2 == 0 else frames[-1 - k % len(frames)])


def speed_rows(size: int, count: int, folder: Path, preset: str) -> list[dict]:
    from animator.video import EncodeSettings

    inputs, _ = slide_scene(size, 12)
    source = folder / "in.mp4"
    write_video(source, inputs, count)
    rows = []
    x264 = preset
    variants = [("flow", p, s) for p, s in FLOW_VARIANTS[:3]] + [("blend", "fast", 256)]
    cores = len(os.sched_getaffinity(0))
    for method, preset, flow_size in variants:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        result = interpolate(
            source,
            folder / "out.mp4",
            factor=2,
            method=method,
            flow=preset,
            flow_size=flow_size,
            settings=EncodeSettings(preset=x264),
        )
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        rows.append(
            {
                "bench": "interpolation_speed",
                "size": size,
                "method": method,
                "preset": preset if method == "flow" else None,
                "flow_size": flow_size if method == "flow" else None,
                "factor": 2,
                "x264_preset": x264,
                "input_frames": count,
                "output_frames": result.frames,
                "output_fps": round(result.frames / seconds, 1),
                "cpu_ms_per_output_frame": round(1000 * cpu / result.frames, 1),
                # what the machine's cores would write if the work were theirs alone and kept them all busy
                "output_fps_cpu_bound": round(cores * result.frames / cpu, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    # memory is flat in the number of frames: a run 4x as long
    long_source = folder / "long.mp4"
    write_video(long_source, inputs, 4 * count)
    before = peak_rss_mb()
    result = interpolate(long_source, folder / "out.mp4", factor=2, flow="fast", flow_size=256)
    rows.append(
        {
            "bench": "interpolation_memory",
            "size": size,
            "input_frames": 4 * count,
            "output_frames": result.frames,
            "peak_rss_mb_before": round(before, 1),
            "peak_rss_mb_after": round(peak_rss_mb(), 1),
        }
    )
    return rows


def compact_network(scale: int = 4) -> torch.nn.Module:
    """SRVGGNetCompact's shape (Real-ESRGAN's realesr-general-x4v3: 64 channels, 32 convolutions, PReLU, pixel
    shuffle), random weights: the cost of the trained network."""
    layers = [torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.PReLU(64)]
    for _ in range(32):
        layers += [torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.PReLU(64)]
    layers += [torch.nn.Conv2d(64, 3 * scale * scale, 3, padding=1), torch.nn.PixelShuffle(scale)]
    return torch.nn.Sequential(*layers).eval()


def upscale_rows(size: int, frames: int) -> list[dict]:
    from animator.finishing.tiles import run_tiled
    from animator.finishing.upscale import LanczosUpscaler

    inputs, _ = slide_scene(size, 4)
    rows = []
    lanczos = LanczosUpscaler((2 * size, 2 * size))
    start = time.perf_counter()
    for k in range(frames):
        lanczos(inputs[k % len(inputs)])
    rows.append(
        {
            "bench": "upscale_speed",
            "size": size,
            "method": "lanczos x2",
            "fps": round(frames / (time.perf_counter() - start), 1),
        }
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = compact_network().to(device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    net = net.to(dtype)
    small = max(64, size // 4)  # on a CPU a Compact x4 at full size takes seconds a frame
    image = torch.from_numpy(inputs[0][:small, :small].copy()).permute(2, 0, 1)[None].float().div(255).to(device)
    run_tiled(net, image, scale=4, tile=128, overlap=16, dtype=dtype)  # warm-up
    start = time.perf_counter()
    repeats = 2
    for _ in range(repeats):
        run_tiled(net, image, scale=4, tile=128, overlap=16, dtype=dtype)
    seconds = (time.perf_counter() - start) / repeats
    rows.append(
        {
            "bench": "upscale_speed",
            "size": small,
            "method": f"compact x4 tiled ({device}, {str(dtype).removeprefix('torch.')})",
            "fps": round(1.0 / seconds, 2),
            "megapixels_out_per_s": round((4 * small) ** 2 / seconds / 1e6, 2),
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="frame size for the slide scene and speed (512)")
    parser.add_argument("--room-size", type=int, default=384, help="frame size of the ray-cast room (384)")
    parser.add_argument("--pairs", type=int, default=6, help="in-betweens per quality scene (6)")
    parser.add_argument("--frames", type=int, default=120, help="input frames of the speed runs (120)")
    parser.add_argument("--x264-preset", default="medium", help="x264 preset of the speed runs (medium, the default)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: slide, room, speed, upscale")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    rows: list[dict] = []
    if "slide" not in skip:
        rows += quality_rows("slide", *slide_scene(args.size, args.pairs))
    if "room" not in skip:
        inputs, depths, truths, K, poses = room_scene(args.room_size, args.pairs)
        rows += quality_rows("room", inputs, truths, extra={"camera": camera_in_betweens(inputs, depths, K, poses)})
    if "speed" not in skip:
        with tempfile.TemporaryDirectory() as folder:
            rows += speed_rows(args.size, args.frames, Path(folder), args.x264_preset)
    if "upscale" not in skip:
        rows += upscale_rows(args.size, 30)
    for row in rows:
        row["machine"] = machine
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"machine: {machine}")
    for row in rows:
        shown = {k: v for k, v in row.items() if k not in ("bench", "machine")}
        print(f"{row['bench']:<22} " + "  ".join(f"{k}={v}" for k, v in shown.items()))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
