"""Kernel launches outside the models and compiled graphs (animator.testing.launches, benchmarks/bench_launches.py).

The counter is checked on operations whose count the test knows; the benchmark runs as a user runs it and must
show the compiled regions doing their job: with the compile mode on, the depth tracker and colour matching are one
graph each, and a one-step frame launches far fewer operations than eager.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from animator import compiling
from animator.testing.launches import LaunchCount

ROOT = Path(__file__).resolve().parents[1]


def test_counts_operations_but_not_views_and_numbers_apart():
    x = torch.ones(8, 8)
    sigma = torch.tensor([14.6, 7.1, 0.0])
    with LaunchCount() as launches:
        y = (x * 2).view(64)[::2].permute(0).detach()  # mul; the rest are views
        y.add_(1)  # add_
        step = sigma[1] ** 2 - sigma[0] ** 2  # a sampler's arithmetic on its table: numbers
        y.mul_(step)  # a frame-sized operation with a number: a launch
    assert launches.count == 3
    assert launches.by_name == {"mul": 1, "add_": 1, "mul_": 1}
    assert launches.scalars == {"pow": 2, "sub": 1}


def test_an_opaque_module_counts_once_per_call_and_only_inside_the_block():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 4))
    launches = LaunchCount().opaque(model)
    x = torch.ones(8, 3)
    model(x)  # outside the block: not counted
    with launches:
        model(x)
        model(x).sum()
    launches.release()
    assert launches.by_name == {"MODEL:Sequential": 2, "sum": 1}
    with launches:
        model(x)  # released: its insides count again
    assert launches.by_name["addmm"] == 2


def test_inside_s_adds_the_time_inside_models_and_regions_only_once_when_nested():
    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.05)
            return x

    outer, inner = Slow(), Slow()
    launches = LaunchCount().opaque(outer, inner)

    def region(x):
        return outer(inner(x))  # a model inside a region, a model inside a model: timed once, as the outermost

    start = time.perf_counter()
    with launches.graphs_as_one():
        compiling.call(region, "reduce-overhead", torch.ones(2))  # outside the block: timed all the same
        time.sleep(0.05)  # not inside anything
    wall = time.perf_counter() - start
    launches.release()
    assert 0.1 <= launches.inside_s <= wall - 0.05


def test_compiled_regions_count_once_and_run_eagerly():
    def region(a, b):
        return (a * b + 1).relu()

    launches, one, two = LaunchCount(), torch.ones(32), torch.full((32,), 2.0)
    compiling.reset()
    with launches.graphs_as_one(), launches:
        out = compiling.call(region, "reduce-overhead", one, two)
        eager = compiling.call(region, None, one, one)
    assert compiling._compiled.cache_info().currsize == 0  # nothing was compiled
    assert torch.equal(out, torch.full((32,), 3.0)) and torch.equal(eager, torch.full((32,), 2.0))
    assert launches.by_name == {"GRAPH:region": 1, "mul": 1, "add": 1, "relu": 1}


def test_bench_launches_reports_stages_and_fewer_launches_with_graphs():
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_launches.py"),
        "--configs",
        "turbo,turbo-2d",
        "--frames",
        "2",
        "--warmup",
        "1",
        "--json-only",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = {(row["config"], row["mode"]): row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {("turbo", "graphs"), ("turbo", "eager"), ("turbo-2d", "graphs"), ("turbo-2d", "eager")}
    graphs, eager = rows["turbo", "graphs"], rows["turbo", "eager"]
    for row in (graphs, eager):
        assert row["launches_per_frame"] == sum(row["stages"].values())
        # one model call each per frame, whatever the mode: UNet, TAESD encoder and decoder, depth model
        for model in ("UNet2DConditionModel", "EncoderTiny", "DecoderTiny"):
            assert row["ops"][f"denoise/MODEL:{model}"] == 1
        assert row["ops"]["depth/MODEL:DPTForDepthEstimation"] == 1
    # graphs: the warp, colour matching and the depth tracker's whole alignment are one compiled region each
    assert graphs["ops"]["warp/GRAPH:_warp"] == 1
    assert graphs["ops"]["coherence/GRAPH:_match_on_the_line"] == 1
    assert graphs["ops"]["depth/GRAPH:_aligned_depth"] == 1
    assert graphs["stages"]["depth"] <= 10, graphs["ops"]  # model, graph, the model's input preparation
    assert graphs["stages"]["coherence"] <= 5, graphs["ops"]  # graph, noise
    assert graphs["launches_per_frame"] < eager["launches_per_frame"] / 4
    # the host's own time: positive, split by stage, the stages within the frame's total
    for row in (graphs, eager):
        assert row["host_ms_per_frame"] > 0 and {"denoise", "warp"} <= set(row["host_ms_by_stage"])
    assert sum(graphs["host_ms_by_stage"].values()) <= graphs["host_ms_per_frame"] * 1.05
