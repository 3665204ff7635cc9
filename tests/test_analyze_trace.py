"""benchmarks/analyze_trace.py charges GPU time to the loop's stages and models; renders mark them when profiled.

The trace here is built by hand (the CPU has no GPU events), so every number it must report is known; a real
CPU profile of a tiny render then checks that the ranges the script reads are there.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "analyze_trace.py"
sys.path.insert(0, str(ROOT / "benchmarks"))


def _range(name, ts, dur, tid=1, cat="user_annotation"):
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur}


def _launch(name, ts, correlation, tid=1):
    return {
        "ph": "X",
        "cat": "cuda_runtime",
        "name": name,
        "pid": 1,
        "tid": tid,
        "ts": ts,
        "dur": 1,
        "args": {"correlation": correlation},
    }


def _kernel(ts, dur, correlation):
    return {
        "ph": "X",
        "cat": "kernel",
        "name": "k",
        "pid": 0,
        "tid": 7,
        "ts": ts,
        "dur": dur,
        "args": {"correlation": correlation},
    }


def _frame_trace() -> list[dict]:
    """A frame whose GPU timeline is known: a UNet graph replay of two kernels with a 2 us gap, a VAE kernel,
    a warp kernel on another host thread's launch, and a kernel whose launch the trace lost."""
    return [
        _range("stage:denoise", 0, 100),
        _range("model:unet", 10, 30),
        _range("Torch-Compiled Region: 2/0", 12, 20, cat="cpu_op"),
        _launch("cudaGraphLaunch", 15, correlation=1),
        _range("model:vae_decode", 41, 19),
        _launch("cudaLaunchKernel", 45, correlation=2),
        _range("stage:warp", 100, 20, tid=2),
        _range("Torch-Compiled Region: 5/0", 101, 10, tid=2, cat="cpu_op"),
        _launch("cudaGraphLaunch", 105, correlation=3, tid=2),
        _kernel(50, 10, 1),
        _kernel(62, 8, 1),  # the UNet graph: 18 us busy, 2 us between its kernels
        _kernel(75, 5, 2),  # the VAE decoder
        _kernel(121, 4, 3),  # the warp region's graph
        _kernel(126, 4, 99),  # launched outside the trace
        {"ph": "i", "name": "marker", "ts": 0},  # not a complete event: ignored
    ]


def test_gpu_time_is_charged_to_the_stage_and_model_that_launched_it():
    from analyze_trace import analyze

    result = analyze(_frame_trace())
    labels = result["labels"]
    assert labels["denoise / unet"]["busy_us"] == 18 and labels["denoise / unet"]["graph_idle_us"] == 2
    assert labels["denoise / vae_decode"]["busy_us"] == 5 and "graph_idle_us" not in labels["denoise / vae_decode"]
    assert labels["warp / compiled: 5/0"] == {"busy_us": 4, "events": 1, "graph_idle_us": 0}
    assert labels["other (launch not in the trace)"]["busy_us"] == 4
    assert result["span_us"] == 80 and result["busy_us"] == 31  # 50 .. 130; 18 + 5 + 4 + 4
    assert result["idle_us"] == 49 and result["graph_idle_us"] == 2


def test_the_script_prints_per_frame_figures(tmp_path):
    trace = tmp_path / "trace.json.gz"
    with gzip.open(trace, "wt") as file:
        json.dump({"traceEvents": _frame_trace()}, file)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(trace), "--frames", "2", "--json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "span 0.04 ms" in result.stdout and "denoise / unet" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["frames"] == 2 and figures["busy_us"] == 31


def test_a_trace_without_gpu_events_is_refused_with_the_reason(tmp_path):
    trace = tmp_path / "cpu.json"
    trace.write_text(json.dumps({"traceEvents": [_range("stage:warp", 0, 10)]}))
    result = subprocess.run([sys.executable, str(SCRIPT), str(trace)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no GPU events" in result.stderr


def test_renders_mark_stages_and_models_only_while_profiled(tiny_model, init_image):
    import torch
    from torch.profiler import ProfilerActivity, profile

    from animator.devices import profiled
    from animator.rendering import render_frames

    assert isinstance(profiled("stage:warp"), nullcontext)  # no profiler: nothing recorded, nothing paid
    data = {
        "width": 64,
        "height": 64,
        "frames": 2,
        "mode": "3d",
        "init_image": str(init_image),
        "backends": {"denoise": str(tiny_model), "device": "cpu", "depth": "offline"},
        "generation": {"steps": "0:(4)", "strength": "0:(0.5)"},
    }
    with profile(activities=[ProfilerActivity.CPU]) as recording:
        frames = list(render_frames(data))
    assert len(frames) == 2
    names = {event.name for event in recording.events()}
    assert {"stage:denoise", "stage:warp", "model:unet", "model:vae_encode", "model:vae_decode"} <= names
    assert torch.autograd._profiler_enabled() is False
