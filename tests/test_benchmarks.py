"""benchmarks/bench_render.py still runs end to end: tiny diffusion configs and a small warp-only render.

Runs the script as a user would (a subprocess) and checks its JSON lines: that they parse, carry the documented keys,
and hold positive timings that add up. Speed itself is never asserted (shared CI machines vary too much).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_render.py"

COMMON_KEYS = {
    "config",
    "size",
    "device",
    "model",
    "depth_model",
    "frames",
    "warmup",
    "ms_per_frame",
    "fps",
    "finish_ms",
    "frame_interval_ms",
    "stages_ms",
    "peak_rss_mb",
}
DIFFUSION_KEYS = COMMON_KEYS | {
    "dtype",
    "steps",
    "denoise",
    "cfg",
    "stages_profiled",
    "unet_evals_nominal",
    "unet_batch",
    "unet_evals_per_frame",
    "unet_floor_ms",
    "ratio_to_unet_floor",
    "interval_ratio_to_unet_floor",
    "naive_ms_per_frame",
    "naive_unet_evals_per_frame",
    "speedup_vs_naive",
    "peak_gpu_mb",
    "vae_ms",
    "depth_model_ms",
    "models_floor_ms",
    "ratio_to_models_floor",
    "unet_gflop",
    "vae_gflop",
    "depth_gflop",
    "flop_bound_ratio",
}
WARP_KEYS = COMMON_KEYS | {"ms_per_frame_2n", "memory", "stages_profiled"}
FRAMES = 3


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def rows(traces) -> list[dict]:
    # One torch thread: the test shares 2 cores with the rest of the suite (and oversubscribed threads are slower).
    command = [
        sys.executable,
        str(SCRIPT),
        "--configs",
        "tiny,warp-only",
        "--frames",
        str(FRAMES),
        "--sizes",
        "64",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--floor-repeats",
        "2",
        "--json-only",
        "--trace-dir",
        str(traces),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # --json-only: every stdout line is one JSON object
    return parsed


def test_every_requested_configuration_reports_once(rows):
    assert [(row["config"], row["size"]) for row in rows] == [
        ("warp-only", "64x64"),
        ("tiny-quality", "64x64"),
        ("tiny-turbo", "64x64"),
        ("tiny-turbo-latent", "64x64"),
        ("tiny-quality-controlnet", "64x64"),
        ("tiny-turbo-controlnet", "64x64"),
    ]
    assert not any("skipped" in row for row in rows)


def test_warp_only_row(rows):
    row = rows[0]
    assert WARP_KEYS <= row.keys()
    assert row["model"] == "none" and row["depth_model"] == "offline" and row["device"] == "cpu"
    assert row["frames"] == FRAMES and row["warmup"] == 1
    assert row["ms_per_frame"] > 0 and row["ms_per_frame_2n"] > 0
    assert 0 < row["finish_ms"] < row["ms_per_frame"] * row["frames"]  # closing the video: a part of the total
    # the frames' events and the end add up to the run (to rounding)
    assert row["frame_interval_ms"] * row["frames"] + row["finish_ms"] == pytest.approx(
        row["ms_per_frame"] * row["frames"], rel=0.01, abs=0.5
    )
    assert row["fps"] == pytest.approx(1000 / row["ms_per_frame"], rel=0.01)
    # Three timed frames of a warp-only render are tweens: the anchor they are warped from (8 frames on) is made
    # before frame 0 is sent to the encoder, in the warm-up.
    stages = row["stages_ms"]
    assert {"tween", "to_host", "encode_io"} <= stages.keys()
    assert all(ms >= 0 for ms in stages.values()) and stages["tween"] > 0
    # The split is of the frame time: the stages cannot add up to more than it.
    assert sum(stages.values()) == pytest.approx(row["ms_per_frame"], rel=0.02, abs=0.1)
    memory = row["memory"]
    assert memory["frames_n"] == FRAMES + 1 and memory["frames_2n"] == 2 * FRAMES + 1
    assert memory["peak_rss_mb_n"] > 50 and memory["peak_rss_mb_2n"] > 50  # torch alone is more than this
    assert isinstance(memory["grows"], bool)


DIFFUSION_ROWS = [
    ("tiny-quality", 16, 2),
    ("tiny-turbo", 1, 1),
    ("tiny-turbo-latent", 1, 1),
    ("tiny-quality-controlnet", 16, 2),
    ("tiny-turbo-controlnet", 1, 1),
]


@pytest.mark.parametrize("name, nominal_evals, batch", DIFFUSION_ROWS)
def test_diffusion_rows(rows, name, nominal_evals, batch):
    row = next(r for r in rows if r["config"] == name)
    assert DIFFUSION_KEYS <= row.keys()
    assert row["speed"]["feedback"] == ("latent" if name.endswith("latent") else "image")
    assert row["model"] == "tiny-sd" and row["depth_model"] == "tiny-dpt" and row["device"] == "cpu"
    assert row["peak_gpu_mb"] is None and row["stages_profiled"] is False
    # 25 steps at denoise 0.65 are 16 UNet evaluations, with CFG a batch of 2; turbo is one evaluation, no CFG.
    assert (row["unet_evals_nominal"], row["unet_batch"]) == (nominal_evals, batch)
    # Counted by a hook on the UNet: the render runs at least the nominal work, at most a full schedule.
    assert nominal_evals <= row["unet_evals_per_frame"] <= row["steps"] + 1
    assert row["naive_unet_evals_per_frame"] == nominal_evals  # diffusers img2img: int(steps * strength)
    for key in ("ms_per_frame", "fps", "unet_floor_ms", "naive_ms_per_frame", "peak_rss_mb"):
        assert row[key] > 0, key
    assert row["ratio_to_unet_floor"] == pytest.approx(row["ms_per_frame"] / row["unet_floor_ms"], rel=0.02)
    assert row["interval_ratio_to_unet_floor"] == pytest.approx(
        row["frame_interval_ms"] / row["unet_floor_ms"], rel=0.02
    )
    assert row["speedup_vs_naive"] == pytest.approx(row["naive_ms_per_frame"] / row["ms_per_frame"], rel=0.02)
    assert row["speed"]["subpixel_upsample"] is True  # the render's default
    assert row["speed"]["cudnn_benchmark"] is False  # likewise
    assert row["vae_ms"] > 0 and row["depth_model_ms"] > 0
    depth_every = row["speed"]["depth_every"]
    assert row["models_floor_ms"] == pytest.approx(
        row["unet_floor_ms"] + row["vae_ms"] + row["depth_model_ms"] / depth_every, abs=0.02
    )
    assert row["ratio_to_models_floor"] == pytest.approx(row["ms_per_frame"] / row["models_floor_ms"], rel=0.02)
    # quality's 16 evaluations at batch 2 are 32 batch-1 evaluations' arithmetic; turbo's one is one
    assert row["unet_gflop"] > 0 and row["vae_gflop"] > 0 and row["depth_gflop"] > 0
    floor_gflop = row["unet_gflop"] + row.get("controlnet_gflop", 0.0)  # what the floor runs
    assert row["flop_bound_ratio"] == pytest.approx(
        (floor_gflop + row["vae_gflop"] + row["depth_gflop"]) / floor_gflop, rel=0.01
    )
    stages = row["stages_ms"]
    assert {"warp", "depth", "coherence", "denoise", "encode_io"} <= stages.keys()
    assert stages["denoise"] > 0 and stages["depth"] > 0
    assert sum(stages.values()) == pytest.approx(row["ms_per_frame"], rel=0.02, abs=0.1)


@pytest.mark.parametrize("name, nominal_evals", [("tiny-quality-controlnet", 16), ("tiny-turbo-controlnet", 1)])
def test_controlnet_rows(rows, name, nominal_evals):
    """One depth unit: a ControlNet evaluation per UNet evaluation (counted by a hook on the ControlNet), its
    arithmetic reported, and a floor of ControlNet + UNet above the bare UNet's of the same setting."""
    row = next(r for r in rows if r["config"] == name)
    assert row["controlnet_evals_per_frame"] == pytest.approx(row["unet_evals_per_frame"], abs=0.5)
    assert row["controlnet_gflop"] > 0
    bare = next(r for r in rows if r["config"] == name.removesuffix("-controlnet"))
    assert row["unet_gflop"] == bare["unet_gflop"]
    assert row["naive_unet_evals_per_frame"] == nominal_evals  # diffusers' ControlNet img2img pipeline


def test_cpu_skips_full_size_configs_with_a_reason():
    # The skip path decides before building any model, so this is fast.
    command = [sys.executable, str(SCRIPT), "--configs", "quality", "--sizes", "512", "--device", "cpu", "--json-only"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert row["config"] == "quality" and row["size"] == "512x512" and "--cpu-full" in row["skipped"]


def test_traces_are_written_per_diffusion_config(rows, traces):
    """--trace-dir: a gzipped Chrome trace per diffusion configuration, holding the frame loop's operations; on the
    CPU there are no kernels to time, so the GPU fields are empty."""
    names = sorted(path.name for path in traces.iterdir())
    expected = ("quality", "quality-controlnet", "turbo", "turbo-controlnet", "turbo-latent")
    assert names == [f"trace-tiny-{name}-64.json.gz" for name in expected]
    with gzip.open(traces / "trace-tiny-turbo-64.json.gz", "rt") as handle:
        events = json.load(handle)["traceEvents"]
    assert any(event.get("name") == "aten::grid_sampler_2d" for event in events)  # the warp ran while traced
    for row in rows:
        if row["config"].startswith("tiny-"):
            assert row["gpu_busy"] is None and row["top_kernels"] is None


def test_busy_time_counts_overlapping_kernels_once():
    sys.path.insert(0, str(SCRIPT.parent))
    from bench_render import busy_time

    # 0-4 and 2-6 overlap (two streams): busy 6 of 0..6; then a gap to 10-11
    assert busy_time([(2.0, 6.0), (0.0, 4.0), (10.0, 11.0), (3.0, 5.0)]) == (7.0, 11.0)
    assert busy_time([]) == (0.0, 0.0)


def test_bad_arguments_are_refused():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--configs", "warp-only,fast"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode != 0 and "unknown configuration: fast" in result.stderr


def test_plot_draws_every_measured_row(rows, tmp_path):
    """benchmarks/plot_render.py reads bench_render's output as printed (tables and JSON lines mixed)."""
    from PIL import Image

    printed = tmp_path / "bench.txt"
    printed.write_text("| config | size |\n" + "\n".join(json.dumps(row) for row in rows) + "\nnot json {\n")
    out = tmp_path / "bench.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot_render.py"), str(printed), "-o", str(out), "--width", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    measured = [row for row in rows if "ms_per_frame" in row]
    assert f"{len(measured)} configuration(s)" in result.stdout
    with Image.open(out) as image:
        assert image.width == 1000 and image.height >= 200 * len(measured)  # a panel per row


def test_plot_refuses_input_without_rows(tmp_path):
    empty = tmp_path / "log.txt"
    empty.write_text('compiling...\n{"config": "quality", "skipped": "budget spent"}\n')
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot_render.py"), str(empty), "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "no measured rows" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_bench_flicker_rows_agree_on_the_value():
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_flicker.py"),
        "--frames",
        "4",
        "--size",
        "64",
        "--max-side",
        "64",
        "--workers",
        "1,2",
        "--json",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [row["workers"] for row in rows] == [1, 2] and rows[0]["speedup"] == 1.0
    assert all(row["seconds"] > 0 and row["frames"] == 4 for row in rows)
    assert rows[0]["mean"] == pytest.approx(rows[1]["mean"], abs=1e-3) and rows[0]["mean"] > 0
