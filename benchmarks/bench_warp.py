"""Time animator.geometry.warp_3d (and warp_2d) at 512x512 and 1024x576, every fill mode, CPU and CUDA.

    .venv/bin/python benchmarks/bench_warp.py [--repeats 15] [--threads N] [--json]

The scene is a depth map like a depth model's (a smooth ground-to-sky ramp with a few near objects, z in
[200, 10000]) and a typical Deforum move (forward 10, right 2, pan 1 degree). Prints a table of the median wall
and process-CPU time per call (on a busy shared machine the CPU time is the steadier figure). Targets on a 2-core
CPU: the 512x512 warp with masks (default fill "none") at most 25 ms; the render loop's call (fill "background",
return_depth=True) plus the LAB colour match (benchmarks/bench_color.py) at most 35 ms together.

The "before" column holds figures measured on the 2-core project CPU (2 torch threads, median wall ms) before the
speed pass of warp3d.py (float32 index maths on a bordered z-buffer, crack and hole handling on flat index lists);
compare them with "wall ms" only on that machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from animator.geometry import (  # noqa: E402
    homography_2d,
    intrinsics_from_fov,
    motion_to_pose,
    reproject_3d,
    warp_2d,
    warp_3d,
)

SIZES = [(512, 512), (576, 1024)]
FILLS = ["none", "background", "border", "reflection", "telea"]
# (op, fill, size) -> median wall ms before the speed pass, 2-core CPU, 2 threads
BEFORE_MS = {
    ("warp_3d", "none", "512x512"): 14.0,
    ("warp_3d+depth", "background", "512x512"): 33.6,
}


def depth_like_a_model(height: int, width: int, near: float = 200.0, far: float = 10000.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    disparity = 0.15 + 0.7 * ys  # the bottom of the frame is near
    for cx, cy, radius, value in [(0.3, 0.6, 0.15, 0.95), (0.7, 0.4, 0.1, 0.7), (0.5, 0.85, 0.08, 1.0)]:
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 < radius**2
        disparity = torch.where(inside, torch.full_like(disparity, value), disparity)
    return (1.0 / (disparity / near + (1 - disparity) / far))[None, None]


def time_call(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time per call, in ms (CPU time is what a busy machine distorts least)."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000.0, statistics.median(cpu) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        name = (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
        )
        for height, width in SIZES:
            generator = torch.Generator().manual_seed(0)
            image = torch.rand(1, 3, height, width, generator=generator).to(device)
            depth = depth_like_a_model(height, width).to(device)
            K = intrinsics_from_fov(40.0, height, width, device=device)
            pose = motion_to_pose(2.0, 0.0, 10.0, 0.0, 1.0, 0.0, device=device)
            for fill in FILLS:  # image, mask and depth: what the render loop calls
                ms, cpu_ms = time_call(lambda: warp_3d(image, depth, K, pose, fill=fill), device, args.repeats)
                rows.append(dict(op="warp_3d", fill=fill, size=f"{width}x{height}", device=name, ms=ms, cpu_ms=cpu_ms))
            for fill in ("none", "background"):  # the geometry alone: latent feedback's move
                ms, cpu_ms = time_call(lambda: reproject_3d(depth, K, pose, fill=fill), device, args.repeats)
                rows.append(
                    dict(op="reproject_3d", fill=fill, size=f"{width}x{height}", device=name, ms=ms, cpu_ms=cpu_ms)
                )
            H = homography_2d(1.0, 1.02, 2.0, 0.0, 0.5, 0.5, width, height, perspective=(0.5, 1.0, 0.0, 53.0))
            ms, cpu_ms = time_call(lambda: warp_2d(image, H), device, args.repeats)
            rows.append(
                dict(op="warp_2d", fill="replicate", size=f"{width}x{height}", device=name, ms=ms, cpu_ms=cpu_ms)
            )

    print(f"{'op':<15}{'fill':<12}{'size':<11}{'before':>9}{'wall ms':>9}{'cpu ms':>9}  device")
    for row in rows:
        on_cpu = row["device"].endswith("threads)")  # CPU rows are named "<processor> (N threads)"
        before = BEFORE_MS.get((row["op"], row["fill"], row["size"])) if on_cpu else None
        row["before_ms"] = before
        before_text = f"{before:>9.1f}" if before is not None else f"{'-':>9}"
        print(
            f"{row['op']:<15}{row['fill']:<12}{row['size']:<11}{before_text}{row['ms']:>9.1f}{row['cpu_ms']:>9.1f}"
            f"  {row['device']}"
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
