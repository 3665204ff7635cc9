"""Where a traced frame's GPU time goes: kernel time per loop stage and model, and the GPU's idle time.

    .venv/bin/python benchmarks/bench_render.py --configs quality --trace-dir traces/     # on a GPU
    .venv/bin/python benchmarks/analyze_trace.py traces/trace-quality-512.json.gz --frames 4

Reads a ``torch.profiler`` Chrome trace (``.json`` or ``.json.gz``; ``bench_render`` traces 4 frames). Every GPU
event (kernel, copy, memset) is charged to the ranges that were open on the host thread when it was launched: the
frame loop's stage (``stage:denoise``, ``stage:warp`` ...) and the model (``model:unet``, ``model:vae_decode``,
``model:vae_encode``, ``model:depth``), which renders mark only while a profiler records
(:func:`animator.devices.profiled`); kernels replayed by a CUDA graph are charged through the graph's launch.
Ranges the trace lacks show as ``-``; a compiled region with no model range is named by its
``Torch-Compiled Region`` id.

Idle time is split into the gaps between the kernels of one CUDA-graph replay (the GPU's own launch latency, which
only fewer, larger kernels reduce) and the rest (the GPU waiting for the host, or for eager glue between graphs).
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")
RANGE_CATEGORIES = ("user_annotation", "cpu_op")
GRAPH_LAUNCH = "cudaGraphLaunch"


def load_events(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as file:
        data = json.load(file)
    events = data["traceEvents"] if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise ValueError(f"{path}: not a Chrome trace (no traceEvents list)")
    return events


class _Ranges:
    """The host ranges of one thread that name a stage, a model or a compiled region, for lookups by time."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, str]] = []

    def add(self, start: float, end: float, name: str) -> None:
        self.items.append((start, end, name))

    def finish(self) -> None:
        self.items.sort()
        self.starts = [start for start, _, _ in self.items]

    def open_at(self, time: float) -> list[str]:
        """Names of the ranges open at ``time``, outermost first."""
        stop = bisect.bisect_right(self.starts, time)
        return [name for start, end, name in self.items[:stop] if end >= time]


def _kind(name: str) -> str | None:
    if name.startswith("stage:"):
        return "stage"
    if name.startswith("model:"):
        return "model"
    if name.startswith("Torch-Compiled Region"):
        return "region"
    return None


def _union(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def analyze(events: list[dict]) -> dict:
    """Per (stage, model) label: busy microseconds, idle microseconds inside its CUDA-graph replays, GPU events;
    and the whole trace's span, busy and idle time."""
    ranges: dict[tuple, _Ranges] = defaultdict(_Ranges)
    launches: dict[int, tuple[tuple, float, str]] = {}
    gpu: list[tuple[float, float, int | None]] = []
    for event in events:
        category, args = event.get("cat"), event.get("args") or {}
        if event.get("ph") != "X" or "ts" not in event:
            continue
        start, end = float(event["ts"]), float(event["ts"]) + float(event.get("dur", 0.0))
        if category in RANGE_CATEGORIES and _kind(event.get("name", "")):
            ranges[(event.get("pid"), event.get("tid"))].add(start, end, event["name"])
        elif category in LAUNCH_CATEGORIES and "correlation" in args:
            launches[args["correlation"]] = ((event.get("pid"), event.get("tid")), start, event.get("name", ""))
        elif category in GPU_CATEGORIES and end > start:
            gpu.append((start, end, args.get("correlation")))
    if not gpu:
        raise ValueError("the trace holds no GPU events: was it recorded on CUDA?")
    for thread_ranges in ranges.values():
        thread_ranges.finish()

    labels: dict[str, dict] = defaultdict(lambda: {"busy_us": 0.0, "events": 0})
    graph_replays: dict[int, list[tuple[float, float]]] = defaultdict(list)
    replay_label: dict[int, str] = {}
    for start, end, correlation in gpu:
        label = "other (launch not in the trace)"
        launch = launches.get(correlation)
        if launch is not None:
            thread, time, launch_name = launch
            open_ranges = ranges[thread].open_at(time) if thread in ranges else []
            stage = next((name[6:] for name in reversed(open_ranges) if name.startswith("stage:")), "-")
            model = next((name[6:] for name in reversed(open_ranges) if name.startswith("model:")), None)
            if model is None:
                region = next((name for name in reversed(open_ranges) if name.startswith("Torch-Compiled")), None)
                model = region.replace("Torch-Compiled Region", "compiled") if region else "-"
            label = f"{stage} / {model}"
            if launch_name == GRAPH_LAUNCH:
                graph_replays[correlation].append((start, end))
                replay_label[correlation] = label
        labels[label]["busy_us"] += end - start
        labels[label]["events"] += 1
    for correlation, spans in graph_replays.items():
        inside = max(end for _, end in spans) - min(start for start, _ in spans) - _union(spans)
        labels[replay_label[correlation]]["graph_idle_us"] = (
            labels[replay_label[correlation]].get("graph_idle_us", 0.0) + inside
        )
    span = max(end for _, end, _ in gpu) - min(start for start, _, _ in gpu)
    busy = _union([(start, end) for start, end, _ in gpu])
    graph_idle = sum(label.get("graph_idle_us", 0.0) for label in labels.values())
    return {
        "span_us": span,
        "busy_us": busy,
        "idle_us": span - busy,
        "graph_idle_us": graph_idle,
        "labels": {name: dict(values) for name, values in labels.items()},
    }


def report(result: dict, frames: int) -> str:
    per = 1e3 * frames  # microseconds -> ms per frame
    lines = [
        f"per frame ({frames} traced): span {result['span_us'] / per:.2f} ms, kernels busy "
        f"{result['busy_us'] / per:.2f} ms ({result['busy_us'] / result['span_us']:.1%}), idle "
        f"{result['idle_us'] / per:.2f} ms = {result['graph_idle_us'] / per:.2f} between the kernels of CUDA-graph "
        f"replays + {(result['idle_us'] - result['graph_idle_us']) / per:.2f} elsewhere",
        "",
        f"{'stage / model':42} {'busy ms':>8} {'share':>6} {'graph gaps ms':>13} {'GPU events':>10}",
    ]
    ordered = sorted(result["labels"].items(), key=lambda item: -item[1]["busy_us"])
    for name, values in ordered:
        lines.append(
            f"{name[:42]:42} {values['busy_us'] / per:8.2f} {values['busy_us'] / result['busy_us']:6.1%} "
            f"{values.get('graph_idle_us', 0.0) / per:13.2f} {values['events'] / frames:10.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", help="a torch.profiler Chrome trace (.json or .json.gz)")
    parser.add_argument("--frames", type=int, default=4, help="frames the trace holds (bench_render: 4)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    path = Path(args.trace)
    if not path.is_file():
        parser.error(f"no such file: {path}")
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    try:
        result = analyze(load_events(path))
    except (ValueError, KeyError, json.JSONDecodeError, OSError) as exc:
        parser.error(f"cannot read {path}: {exc}")
    print(report(result, args.frames))
    if args.json:
        print(json.dumps({"frames": args.frames, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
