"""Depth backends at 512x512: ms per frame on the CPU (and CUDA when present).

    .venv/bin/python benchmarks/bench_depth.py            # table
    .venv/bin/python benchmarks/bench_depth.py --json     # plus one JSON line per row
    .venv/bin/python benchmarks/bench_depth.py --quick    # skip the full-size DPT-Large on the CPU

Full-size architectures get random weights: they cost the same as the pretrained models (DPT-Large = Intel/dpt-large,
Depth Anything V2 Small = depth-anything/Depth-Anything-V2-Small-hf). Each row also times the disparity -> z step
(DepthTracker, align mode) separately, since the render loop pays it every frame whatever the backend.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from animator.backends.depth import DepthTracker, OfflineDepthEstimator  # noqa: E402
from animator.backends.depth.transformers_backend import TransformersDepthEstimator, preprocess_for  # noqa: E402
from animator.testing import tiny_depth  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, image: torch.Tensor, runs: int, warmup: int = 1) -> float:
    """Median ms per call."""
    for _ in range(warmup):
        fn(image)
    _sync(image.device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(image)
        _sync(image.device)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def transformers_estimator(name: str, model_class, config, device: torch.device, dtype: torch.dtype):
    model = model_class(config).eval().to(device=device, dtype=dtype)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return TransformersDepthEstimator(
        model, name=name, source="random weights", preprocess=preprocess_for(config, None, None), batch_size=1
    )


def backends(device: torch.device, quick: bool):
    """(name, factory, runs) for every backend worth timing on ``device``."""
    from transformers import DepthAnythingForDepthEstimation, DPTForDepthEstimation

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    cpu = device.type == "cpu"
    rows = [
        ("offline prior", lambda: OfflineDepthEstimator(), 30),
        (
            "tiny DPT (64x64)",
            lambda: transformers_estimator(
                "tiny-dpt", DPTForDepthEstimation, tiny_depth.tiny_dpt_config(), device, dtype
            ),
            10,
        ),
        (
            "tiny Depth Anything (518)",
            lambda: transformers_estimator(
                "tiny-da", DepthAnythingForDepthEstimation, tiny_depth.tiny_depth_anything_config(), device, dtype
            ),
            10,
        ),
        (
            "Depth Anything V2 Small (518)",
            lambda: transformers_estimator(
                "da-v2-small",
                DepthAnythingForDepthEstimation,
                tiny_depth.depth_anything_v2_small_config(),
                device,
                dtype,
            ),
            2 if cpu else 20,
        ),
    ]
    if not (cpu and quick):
        rows.append(
            (
                "DPT-Large (384)",
                lambda: transformers_estimator(
                    "dpt-large", DPTForDepthEstimation, tiny_depth.dpt_large_config(), device, dtype
                ),
                1 if cpu else 20,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="frame side (square frames)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    parser.add_argument("--quick", action="store_true", help="skip DPT-Large on the CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    if torch.cuda.is_available():
        machine += f", {torch.cuda.get_device_name()}"
    print(f"# depth backends at {args.size}x{args.size}, batch 1 — {machine}")
    frame = torch.rand(1, 3, args.size, args.size)
    # A yardstick for how busy the machine is: on a shared runner every number scales with it.
    print(
        f"# load yardstick: one elementwise multiply of a 3x{args.size}x{args.size} frame = "
        f"{time_call(lambda x: x * 2.0, frame, runs=50):.2f} ms (cpu)"
    )
    print(f"{'backend':32} {'device':6} {'dtype':8} {'ms/frame':>10} {'fps':>8} {'+ tracker ms':>13}")
    results = []
    for device in devices:
        image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
        tracker_ms = _tracker_ms(image)
        for name, factory, runs in backends(device, args.quick):
            estimator = factory()
            ms = time_call(estimator, image, runs)
            dtype = str(getattr(estimator, "dtype", torch.float32)).replace("torch.", "")
            row = {
                "backend": name,
                "device": device.type,
                "dtype": dtype,
                "size": args.size,
                "ms": round(ms, 2),
                "fps": round(1000 / ms, 2),
                "tracker_ms": round(tracker_ms, 2),
                "runs": runs,
                "machine": machine,
            }
            results.append(row)
            print(f"{name:32} {device.type:6} {dtype:8} {ms:10.1f} {1000 / ms:8.2f} {tracker_ms:13.2f}", flush=True)
            del estimator
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.json:
        for row in results:
            print(json.dumps(row))


def _tracker_ms(image: torch.Tensor) -> float:
    """DepthTracker in align mode against a reference depth, per frame."""
    tracker = DepthTracker(near=0.5, far=50.0)
    disparity = image[:, :1] + 0.1
    reference = tracker(disparity)
    return time_call(lambda d: tracker(d, reference_depth=reference), disparity * 1.5, runs=10)


if __name__ == "__main__":
    main()
