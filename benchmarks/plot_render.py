"""A picture of bench_render's rows: where each configuration's frame time goes, against its floors and targets.

    .venv/bin/python benchmarks/bench_render.py --configs turbo,quality > rows.txt
    .venv/bin/python benchmarks/plot_render.py rows.txt -o bench.png        # JSON lines among other output are fine

One panel per configuration and size. Bars, in ms per frame: the naive Deforum-style loop; ours, split into the
loop's stages; the models' floor (UNet, VAE and depth model bare, the same compiled modules); the UNet floor.
Dashed lines mark the issue's targets where one applies (1.15x the UNet floor for quality, 60 fps for turbo at
512x512 on a GPU, 30 fps for the CPU warp-only render).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STAGE_ORDER = ("denoise", "depth", "warp", "coherence", "flow", "to_host", "encode_io")
_DPI = 100


def read_rows(paths: list[str]) -> list[dict]:
    """The measured rows (JSON objects with ``ms_per_frame``) among the lines of ``paths`` (``-``: stdin)."""
    rows = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue  # the tables and log lines bench_render prints around its JSON
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "ms_per_frame" in row:
                rows.append(row)
    return rows


def target(row: dict) -> tuple[float, str] | None:
    """(ms per frame, label) of the issue's target for this row, where one applies."""
    config, size, device = row.get("config", ""), row.get("size", ""), row.get("device", "")
    if config.startswith("quality") and row.get("unet_floor_ms"):
        return 1.15 * row["unet_floor_ms"], "target: 1.15x UNet floor"
    if config.startswith("turbo") and size == "512x512" and device.startswith("cuda"):
        return 1000 / 60, "target: 60 fps"
    if config == "warp-only" and device == "cpu":
        return 1000 / 30, "target: 30 fps"
    return None


def bars(row: dict) -> list[tuple[str, list[tuple[str, float]]]]:
    """(bar label, [(part, ms)]) from the top of the panel down."""
    out = []
    if row.get("naive_ms_per_frame"):
        out.append(("naive loop", [("naive", row["naive_ms_per_frame"])]))
    stages = row.get("stages_ms") or {}
    ordered = [name for name in STAGE_ORDER if name in stages] + [name for name in stages if name not in STAGE_ORDER]
    out.append(("ours", [(name, stages[name]) for name in ordered] or [("frame", row["ms_per_frame"])]))
    if row.get("models_floor_ms"):
        depth = row.get("models_floor_ms", 0.0) - row.get("unet_floor_ms", 0.0) - row.get("vae_ms", 0.0)
        out.append(
            (
                "models floor",
                [("UNet", row["unet_floor_ms"]), ("VAE", row.get("vae_ms", 0.0)), ("depth model", max(depth, 0.0))],
            )
        )
    if row.get("unet_floor_ms"):
        out.append(("UNet floor", [("UNet", row["unet_floor_ms"])]))
    return out


def title(row: dict) -> str:
    parts = [
        f"{row['config']} {row.get('size', '')} on {row.get('device', '?')}",
        f"{row['ms_per_frame']:.1f} ms/frame ({row.get('fps', 1000 / row['ms_per_frame']):.1f} fps)",
    ]
    if row.get("ratio_to_unet_floor"):
        parts.append(f"{row['ratio_to_unet_floor']:.2f}x UNet floor")
    if row.get("speedup_vs_naive"):
        parts.append(f"{row['speedup_vs_naive']:.1f}x faster than naive")
    if row.get("peak_gpu_mb"):
        parts.append(f"peak GPU {row['peak_gpu_mb'] / 1024:.1f} GB")
    return ", ".join(parts)


def plot(rows: list[dict], path: Path, *, width_px: int = 1400) -> Path:
    from matplotlib.figure import Figure

    colours = {}
    palette = (
        "tab:blue",
        "tab:orange",
        "tab:green",
        "tab:red",
        "tab:purple",
        "tab:brown",
        "tab:pink",
        "tab:olive",
        "tab:cyan",
        "tab:gray",
    )

    def colour(part: str) -> str:
        return colours.setdefault(part, palette[len(colours) % len(palette)])

    panel_px = 230
    figure = Figure(figsize=(width_px / _DPI, panel_px * len(rows) / _DPI + 0.6), dpi=_DPI, layout="constrained")
    axes = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, rows):
        drawn = list(reversed(bars(row)))  # matplotlib's y grows upwards: the first bar goes on top
        goal = target(row)
        # the naive loop is often 5-20x ours: the axis is scaled to the rest, and its bar runs off the edge
        near = [sum(ms for _, ms in parts) for label, parts in drawn if label != "naive loop"]
        split_differs = abs(sum(row.get("stages_ms", {}).values()) - row["ms_per_frame"]) > 0.03 * row["ms_per_frame"]
        right = max(near + [goal[0] if goal else 0.0, row["ms_per_frame"]]) * (1.6 if split_differs else 1.3)
        labelled = set()
        for y, (label, parts) in enumerate(drawn):
            left = 0.0
            for part, ms in parts:
                ax.barh(y, ms, left=left, color=colour(part), label=None if part in labelled else part, height=0.6)
                labelled.add(part)
                left += ms
            if label == "ours" and split_differs:
                # on CUDA the split comes from a synchronised pass, which is slower than the frame itself
                text = f" {row['ms_per_frame']:.1f} (stages from a synchronised pass: {left:.1f})"
                ax.plot([row["ms_per_frame"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2.0)
            else:
                text = f" {left:.1f}"
            if left > right:
                ax.text(right, y, f"{left:.1f} ms \u2192 ", va="center", ha="right", fontsize="small", color="white")
            else:
                ax.text(left, y, text, va="center", fontsize="small")
        ax.set_yticks(range(len(drawn)), [label for label, _ in drawn])
        if goal is not None:
            ax.axvline(goal[0], color="black", linestyle="--", linewidth=1.0, label=goal[1])
        ax.set_xlim(0, right)
        ax.set_xlabel("ms per frame")
        ax.set_title(title(row), fontsize="medium", loc="left")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small")
    figure.savefig(path, dpi=_DPI)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="files with bench_render's JSON lines (- for stdin)")
    parser.add_argument("-o", "--output", default="bench_render.png", help="image to write (.png, .svg, .pdf)")
    parser.add_argument("--width", type=int, default=1400, help="image width in pixels")
    args = parser.parse_args(argv)
    missing = [path for path in args.inputs if path != "-" and not Path(path).is_file()]
    if missing:
        parser.error(f"no such file: {missing[0]}")
    rows = read_rows(args.inputs)
    if not rows:
        parser.error(
            "no measured rows (JSON lines with ms_per_frame) in "
            + ", ".join(args.inputs)
            + ": pass bench_render.py's output"
        )
    output = Path(args.output)
    if not output.parent.is_dir():
        parser.error(f"the folder for {output} does not exist")
    plot(rows, output, width_px=args.width)
    print(f"{output}: {len(rows)} configuration(s): " + ", ".join(f"{r['config']} {r.get('size', '')}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
