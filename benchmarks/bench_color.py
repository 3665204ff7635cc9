"""Milliseconds per call of the per-frame colour treatments (animator/color.py) at 512x512.

    .venv/bin/python benchmarks/bench_color.py [--size 512] [--repeats 20] [--threads N] [--json]

Runs on the CPU, and on CUDA too when it is available. Prints a table (median ms over ``--repeats`` calls after a
warm-up); ``--json`` adds one JSON line per row. "8-bit frame" is an image holding only the values k/255, as the render
loop's frames do (the sRGB curve then comes from a 256-entry table).

The "before" column holds figures measured on the 2-core project CPU (2 torch threads, 512x512) before the speed pass
of the LAB path (kornia's rgb_to_lab / lab_to_rgb, a two-gather look-up); compare them with "ms/frame" only there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from animator.color import ColorReference, add_noise, adjust_contrast, match_color, unsharp_mask

# case -> median ms before the speed pass (2-core CPU, 2 threads, 512x512)
BEFORE_MS = {"match_color lab": 36.7, "match_color lab, 8-bit frame": 37.3}


def median_ms(function, device: torch.device, repeats: int) -> float:
    function()  # warm-up: kernels, caches, lazy imports
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cases(image: torch.Tensor, reference: torch.Tensor):
    generator = torch.Generator(device=image.device).manual_seed(0)
    for space in ("lab", "hsv", "rgb"):
        prepared = ColorReference(reference, space=space)
        yield f"match_color {space}", lambda p=prepared: match_color(image, p)
    lab_reference = ColorReference(reference, space="lab")
    frame = (image * 255).round() / 255  # what the render loop passes: 8-bit values
    yield "match_color lab, 8-bit frame", lambda: match_color(frame, lab_reference)
    yield "match_color lab strength 0.5", lambda: match_color(image, lab_reference, strength=0.5)
    yield "ColorReference lab (once per run)", lambda: ColorReference(reference, space="lab")
    yield "adjust_contrast", lambda: adjust_contrast(image, 1.05)
    yield "add_noise gaussian", lambda: add_noise(image, 0.05, generator=generator)
    yield "add_noise perlin (4 octaves)", lambda: add_noise(image, 0.05, generator=generator, kind="perlin")
    yield "unsharp_mask sigma 1", lambda: unsharp_mask(image, 0.5, sigma=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        generator = torch.Generator().manual_seed(1)
        image = torch.rand(1, 3, args.size, args.size, generator=generator).to(device)
        reference = torch.rand(1, 3, args.size, args.size, generator=generator).to(device) * 0.8 + 0.1
        name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        for case, function in cases(image, reference):
            rows.append(
                {"device": name, "case": case, "size": args.size, "ms": median_ms(function, device, args.repeats)}
            )

    width = max(len(r["case"]) for r in rows)
    print(
        f"{'device':<28} {'operation':<{width}} {'before':>8} {'ms/frame':>9}   "
        f"({args.size}x{args.size}, median of {args.repeats})"
    )
    for row in rows:
        known = row["device"].startswith("cpu") and args.size == 512
        row["before_ms"] = BEFORE_MS.get(row["case"]) if known else None
        before = f"{row['before_ms']:>8.1f}" if row["before_ms"] is not None else f"{'-':>8}"
        print(f"{row['device']:<28} {row['case']:<{width}} {before} {row['ms']:>9.2f}")
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
