"""Speed of the flicker metric (what every render measures after its last frame) by number of worker threads.

    .venv/bin/python benchmarks/bench_flicker.py [--frames 120] [--size 512] [--max-side 256] [--json]

The frames are a photograph (the flow test texture) panned and slowly zoomed, rendered as uint8 RGB frames like a
render's journal; each row measures the same frames with ``dis_fast`` (the render's setting) on 1, 2, ... worker
threads, up to the CPU count. The rows must agree on the mean (the workers change the speed, not the values).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from animator.backends.flow.synthetic import default_texture, render
from animator.metrics import flicker


def panning_frames(count: int, size: int) -> list[np.ndarray]:
    texture = default_texture()
    scale = 480.0 / size  # ~480 texture pixels across the frame

    def mapping(k: int):
        zoom = 1.0 - 0.002 * k
        return lambda x, y: (x * scale * zoom + 40.0 + 1.5 * k, y * scale * zoom + 20.0 + 0.7 * k)

    frames = []
    for k in range(count):
        image = render(texture, mapping(k), (size, size), supersample=1)
        frames.append((np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8))
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120, help="frames of the test video (default 120)")
    parser.add_argument("--size", type=int, default=512, help="square frame size (default 512)")
    parser.add_argument("--max-side", type=int, default=256, help="measuring size, as renders do (default 256)")
    parser.add_argument("--workers", default=None, help="comma list of worker counts (default 1 .. CPU count)")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    counts = [int(c) for c in args.workers.split(",")] if args.workers else list(range(1, min(cores, 8) + 1))
    frames = panning_frames(args.frames, args.size)
    torch.set_num_threads(max(counts))  # the default worker count is torch's thread count
    flicker(iter(frames[:4]), estimator="dis_fast", max_side=args.max_side, workers=max(counts))  # warm-up: imports
    rows = []
    for workers in counts:
        start = time.perf_counter()
        report = flicker(iter(frames), estimator="dis_fast", max_side=args.max_side, workers=workers)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "bench": "flicker",
                "frames": args.frames,
                "size": f"{args.size}x{args.size}",
                "max_side": args.max_side,
                "workers": workers,
                "seconds": round(seconds, 3),
                "ms_per_frame": round(1000.0 * seconds / args.frames, 2),
                "mean": round(report.mean, 4),
            }
        )
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = round(base / row["seconds"], 2)
        if args.json:
            print(json.dumps(row))
    if args.json:
        return
    print(
        f"flicker metric of {args.frames} frames at {args.size}x{args.size}, measured at <= {args.max_side} px "
        f"(dis_fast); {platform.machine()} {cores} CPUs, torch {torch.__version__}"
    )
    print(f"{'workers':>8} {'seconds':>8} {'ms/frame':>9} {'speedup':>8} {'mean':>8}")
    for row in rows:
        print(
            f"{row['workers']:>8} {row['seconds']:>8.2f} {row['ms_per_frame']:>9.2f} {row['speedup']:>8.2f} "
            f"{row['mean']:>8.4f}"
        )


if __name__ == "__main__":
    main()
