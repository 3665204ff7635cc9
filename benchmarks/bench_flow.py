"""Speed (and accuracy) of the flow estimators and the flow geometry at 512x512 and 1024x576.

    .venv/bin/python benchmarks/bench_flow.py [--repeats 5] [--json] [--device auto|cpu|cuda]

Frames are rendered from a real photograph (matplotlib's Grace Hopper) moved by a known camera-like flow
(translation + 2% zoom + 1 degree roll), so each estimator also gets its end-point error (EPE, px) against the truth,
averaged over textured pixels (the 70% with the most local gradient; flow is undefined on flat areas).
Times are medians over ``--repeats`` runs after one warm-up; OpenCV estimators run on the host whatever the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from animator.backends.flow import FLOW_ESTIMATORS, load_flow_estimator
from animator.backends.flow.synthetic import default_texture, smooth_flow_field, warped_pair
from animator.devices import pick_device
from animator.errors import AnimatorError
from animator.geometry.flow import clean_mask, consistency_mask, flow_tween, warp_by_flow

SIZES = ((512, 512), (576, 1024))  # (height, width)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median milliseconds of ``fn()`` (synchronising CUDA so the time is the work's, not the launch's)."""
    fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def textured(image: torch.Tensor, border: int = 16) -> torch.Tensor:
    """(1,1,H,W) bool: pixels with local image gradient (where flow is defined at all), away from the border."""
    import cv2
    import numpy as np

    grey = cv2.cvtColor((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    gradient = cv2.GaussianBlur(gradient, (0, 0), 3)
    mask = torch.from_numpy(gradient > np.percentile(gradient, 30))
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = False, False, False, False
    return mask[None, None]


def bench_size(size, device, repeats, texture):
    height, width = size
    scale = 480.0 / max(height, width)  # show ~480 texture pixels across: the photograph is 600x512
    pair = warped_pair(texture, smooth_flow_field(size), scale=scale, origin=(40.0, 10.0))
    source, target, truth = pair.source.to(device), pair.target.to(device), pair.flow.to(device)
    interior = textured(pair.target) & ~pair.leaves_frame
    rows = []
    for name in FLOW_ESTIMATORS:
        try:
            estimator = load_flow_estimator(name)
        except AnimatorError as exc:
            rows.append(
                {
                    "size": f"{width}x{height}",
                    "op": name,
                    "ms": None,
                    "epe": None,
                    "note": "skipped: " + (exc.hint or exc.message).split(" (")[0][:70],
                }
            )
            continue
        flow = estimator(source, target)
        epe = float((flow - truth).norm(dim=1, keepdim=True)[interior.to(device)].mean())
        ms = timed(lambda: estimator(source, target), device, repeats)
        rows.append({"size": f"{width}x{height}", "op": name, "ms": ms, "epe": epe, "note": ""})
    flow_fw = truth
    flow_bw = -truth  # close enough to time the check (its cost does not depend on the values)
    ops = {
        "warp_by_flow (RGB)": lambda: warp_by_flow(target, flow_fw),
        "consistency_mask": lambda: consistency_mask(flow_fw, flow_bw),
        "clean_mask (islands+dilate+blur)": lambda: clean_mask(~consistency_mask(flow_fw, flow_bw)),
        "flow_tween (t=0.5)": lambda: flow_tween(source, target, flow_fw, flow_bw, 0.5),
    }
    for label, fn in ops.items():
        ms = timed(fn, device, repeats)
        rows.append({"size": f"{width}x{height}", "op": label, "ms": ms, "epe": None, "note": ""})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV CPU threads (default: theirs)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    texture = default_texture()
    import cv2

    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    print(
        f"device {device} ({gpu}), torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}, "
        f"torch {torch.__version__}, OpenCV {cv2.__version__}"
    )
    rows = [row for size in SIZES for row in bench_size(size, device, args.repeats, texture)]
    print(f"{'size':>9}  {'operation':<34} {'ms':>9} {'EPE px':>7}  note")
    for row in rows:
        ms = f"{row['ms']:9.1f}" if row["ms"] is not None else f"{'-':>9}"
        epe = f"{row['epe']:7.3f}" if row["epe"] is not None else f"{'':>7}"
        print(f"{row['size']:>9}  {row['op']:<34} {ms} {epe}  {row['note']}")
    if args.json:
        for row in rows:
            print(json.dumps({"bench": "flow", "device": str(device), **row}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
