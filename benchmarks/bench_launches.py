"""Kernel launches per frame outside the models and compiled graphs: what a GPU frame pays beyond its models.

On a GPU a one-step frame is launch-bound: every eager tensor operation between the models costs ~5-10 us of host
time, whatever its size. With ``backends.compile: cudagraphs`` each model and each compiled region of the loop (the
3D warp, colour matching, the depth fit) replays as one CUDA graph, and what is left is the eager glue between them.
This counts that glue, per frame and per stage, on the CPU (see :mod:`animator.testing.launches`): no GPU needed,
so the figure can be watched in every session, and a change that adds launches shows up here before a GPU run.

Each configuration renders the demo with the tiny test models at 64x64 (the operation count does not depend on the
frame size) twice: ``graphs`` as a CUDA-graphs render would run it (compile mode set, every compiled region and
model counted once) and ``eager`` (``compile: none``, models still counted once each). Prints one JSON line per
configuration and mode, then a table.

    .venv/bin/python benchmarks/bench_launches.py                      # all configurations
    .venv/bin/python benchmarks/bench_launches.py --configs turbo --top 12
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

DEMO = ROOT / "keyframes" / "demo.yaml"
SIZE = 64
# name -> overrides on top of the tiny models (1 step, no CFG: the turbo regime, where launches matter most)
TURBO = {
    "generation.steps": "0:(1)",
    "generation.strength": "0:(0.35)",
    "generation.cfg": "0:(0)",
    "coherence.color": "lab",
    "backends.depth_every": 1,
    "generation.holes": "fill",
}
CONFIGS = {
    "turbo": TURBO,
    "turbo-latent": {**TURBO, "generation.feedback": "latent"},
    "turbo-2d": {**TURBO, "mode": "2d"},
    "turbo-repaint": {**TURBO, "generation.holes": "repaint"},
    "quality": {**TURBO, "generation.steps": "0:(25)", "generation.cfg": "0:(7)", "backends.depth_every": 2},
}


@contextmanager
def stage_labels(counter, host_s: Counter):
    """Prefixes counted operations with the frame loop's stage (the loop marks its stages with ``StageTimer``) and
    adds each stage's host seconds (its wall time less the time inside models and compiled regions) to ``host_s``."""
    from animator.rendering.timing import StageTimer

    timer_call = StageTimer.__call__

    @contextmanager
    def labelled(timer, stage):
        counter.label = f"{stage}/"
        start, inside = time.perf_counter(), counter.inside_s
        try:
            with timer_call(timer, stage):
                yield
        finally:
            counter.label = "between/"
            host_s[stage] += (time.perf_counter() - start) - (counter.inside_s - inside)

    StageTimer.__call__ = labelled
    try:
        yield
    finally:
        StageTimer.__call__ = timer_call


@contextmanager
def models_not_compiled():
    """The ``graphs`` mode sets ``backends.compile`` so the loop takes its compiled code paths, but nothing may
    actually compile (minutes on a CPU): the models' speed-up step is skipped; compiled regions run eagerly."""
    from animator.backends import speed

    saved = speed.speed_up_denoiser, speed.speed_up_depth
    speed.speed_up_denoiser = speed.speed_up_depth = lambda *args, **kwargs: {}
    try:
        yield
    finally:
        speed.speed_up_denoiser, speed.speed_up_depth = saved


def count(name: str, graphs: bool, *, models: tuple[Path, ...], frames: int, warmup: int, timed: int) -> dict:
    """Launches per frame of configuration ``name``, after ``warmup`` frames, over ``frames`` frames; then the host's
    own time per frame over ``timed`` more frames, not counted (counting slows every operation down)."""
    from animator.rendering.api import prepare
    from animator.rendering.context import RunContext
    from animator.rendering.loop import frame_loop
    from animator.rendering.models import load_models
    from animator.testing.launches import LaunchCount

    sd, depth = models[:2]  # the tiny SD pipeline and DPT (the ControlNet is not used here)
    overrides = {
        "width": SIZE,
        "height": SIZE,
        "backends.denoise": str(sd),
        "backends.depth": str(depth),
        "backends.device": "cpu",
        "backends.vae": str(sd / "tiny_vae"),
        "cadence": 1,
        "backends.compile": "cudagraphs" if graphs else "none",
        **CONFIGS[name],
    }
    config, plan = prepare(DEMO, overrides=overrides)
    with models_not_compiled():
        backends = load_models(config)
    counter = LaunchCount()
    pipe = backends.denoiser.pipe
    counter.opaque(pipe.unet, *(part for part in (pipe.vae.encoder, pipe.vae.decoder)))
    if backends.depth is not None and getattr(backends.depth, "model", None) is not None:
        counter.opaque(backends.depth.model)
    totals: Counter[str] = Counter()
    scalars: Counter[str] = Counter()
    # One more frame than yielded: the loop makes frame k + 1 before it yields frame k, so each counted yield
    # carries the making of exactly one frame.
    loop = frame_loop(RunContext.start(config, plan, backends), start=0, stop=warmup + frames + timed + 1)
    host_s: Counter[str] = Counter()
    with stage_labels(counter, host_s), counter.graphs_as_one() if graphs else nullcontext():
        for _ in range(warmup):
            next(loop)
        with counter:
            for _ in range(frames):
                next(loop)
                launched, host = counter.take()
                totals += launched
                scalars += host
        host_s.clear()
        start, inside = time.perf_counter(), counter.inside_s
        for _ in range(timed):
            next(loop)
        wall, inside = time.perf_counter() - start, counter.inside_s - inside
    counter.release()
    by_stage: Counter[str] = Counter()
    for key, n in totals.items():
        by_stage[key.split("/")[0]] += n
    return {
        "config": name,
        "mode": "graphs" if graphs else "eager",
        "frames": frames,
        "launches_per_frame": round(sum(totals.values()) / frames, 1),
        "scalar_ops_per_frame": round(sum(scalars.values()) / frames, 1),
        "host_ms_per_frame": round(1e3 * (wall - inside) / timed, 2),
        "host_ms_by_stage": {stage: round(1e3 * s / timed, 2) for stage, s in host_s.most_common()},
        "stages": {stage: round(n / frames, 1) for stage, n in by_stage.most_common()},
        "ops": {key: round(n / frames, 1) for key, n in totals.most_common()},
    }


def table(rows: list[dict], top: int) -> str:
    lines = [f"{'config':14} {'mode':7} {'launches/frame':>14} {'host scalars':>12} {'host ms':>8}  launches by stage"]
    for row in rows:
        stages = "  ".join(f"{stage} {n:g}" for stage, n in row["stages"].items())
        lines.append(
            f"{row['config']:14} {row['mode']:7} {row['launches_per_frame']:>14g} "
            f"{row['scalar_ops_per_frame']:>12g} {row['host_ms_per_frame']:>8.2f}  {stages}"
        )
    lines.append("")
    for row in rows:
        if row["mode"] == "graphs":
            ops = ", ".join(f"{key} {n:g}" for key, n in list(row["ops"].items())[:top])
            lines.append(f"{row['config']} (graphs), most frequent: {ops}")
    lines.append("")
    for row in rows:
        if row["mode"] == "graphs":
            stages = ", ".join(f"{stage} {ms:.2f}" for stage, ms in row["host_ms_by_stage"].items())
            lines.append(f"{row['config']} (graphs), host ms by stage: {stages}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma list of: " + ", ".join(CONFIGS))
    parser.add_argument("--frames", type=int, default=6, help="counted frames (default 6)")
    parser.add_argument("--warmup", type=int, default=3, help="frames before counting (default 3)")
    parser.add_argument("--timed", type=int, default=12, help="frames timed after counting (default 12)")
    parser.add_argument("--top", type=int, default=10, help="most frequent operations listed per configuration")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON lines")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from: {', '.join(CONFIGS)}")
    if min(args.frames, args.warmup, args.timed) < 1:
        parser.error("--frames, --warmup and --timed must be at least 1")
    torch.set_num_threads(1)

    from bench_render import make_tiny_folders

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-launches-") as tmp:
        models = make_tiny_folders(Path(tmp))
        for name in names:
            for graphs in (True, False):
                row = count(name, graphs, models=models, frames=args.frames, warmup=args.warmup, timed=args.timed)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if not args.json_only:
        from animator.testing.launches import SCALAR_SIZE

        print()
        print(table(rows, args.top))
        print(
            "\nlaunches: ATen operations outside the models (each model call: 1) and, in graphs mode, outside "
            "compiled regions (each: 1); views not counted. Measured on the CPU: the count is the GPU's. host "
            f"scalars: operations on tensors of at most {SCALAR_SIZE} elements, numbers: in graphs mode the camera's "
            "and the samplers' tables, which the loop keeps on the host (no launch on a GPU); eager, also the depth "
            "tracker's per-image numbers, which live on the device. host ms: a frame's wall time less the time inside "
            "models and compiled regions, not counting (the host's own work per frame: Python, dispatch, the eager "
            "glue, here at 64x64 where the glue computes next to nothing); a GPU frame cannot be faster than it."
        )
    return rows


if __name__ == "__main__":
    main()
