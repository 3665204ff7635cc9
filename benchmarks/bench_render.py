"""Benchmark the whole render: ms per frame, the stage split, memory, and the floors it is judged against.

Every configuration drives the real render (``animator.render``: frame loop, ffmpeg stream, resume journal)
on ``keyframes/demo.yaml`` with overrides and an explicit frame range, and prints one JSON line. A table follows.

Configurations (``--configs``):

- ``warp-only``: the demo as shipped (offline depth, no denoiser) at each ``--sizes`` size. ms/frame, fps, the
  stage split, peak RSS of an N-frame and a 2N-frame render (does memory grow with the frame count?).
- ``quality``: 25 steps, keep-strength 0.35 (denoise 0.65, so 16 UNet evaluations), CFG 7; the model's own VAE,
  depth every other frame.
- ``turbo``: 1 UNet evaluation, guidance 0 (no CFG); the tiny VAE, depth every frame at a 256 input.
  Both with ``--compile`` (default: CUDA graphs on CUDA), channels-last, and ``generation.holes: fill`` (revealed
  pixels denoised at the frame's strength: the UNet runs exactly the evaluations counted by the floor).
  Both with the full-size SD 1.5 architecture (random weights: the cost of the real ones) saved once to a
  temporary folder and loaded by ``backends.denoise: <folder>`` exactly as a user's model, plus a full-size
  DPT-Large depth model (random weights), at each ``--sizes`` size. CUDA only unless ``--cpu-full``.
- ``quality-latent``, ``turbo-latent``: the same with ``generation.feedback: latent`` (the previous frame's
  latents warped instead of its pixels re-encoded: a frame runs the VAE decoder only).
- ``turbo-small-depth``, ``turbo-latent-small-depth``: turbo with Depth Anything V2 Small (random weights, its
  real architecture) at a 266-pixel input on every frame instead of DPT-Large: the depth model the README
  recommends, a 14th of DPT-Large's parameters.
- ``quality-controlnet``, ``turbo-controlnet``: quality and turbo with one depth ControlNet unit (the SD 1.5
  depth ControlNet's architecture, lllyasviel/control_v11f1p_sd15_depth, random weights) fed the loop's own depth:
  one ControlNet evaluation per UNet evaluation. Their UNet floor is the bare ControlNet + UNet evaluations (the
  ControlNet's residuals added), and the naive baseline a ``StableDiffusionControlNetImg2ImgPipeline`` call
  given the naive loop's depth map.
- ``tiny``: quality, turbo, turbo-latent, quality-controlnet and turbo-controlnet with the tiny test SD pipeline
  (and a tiny ControlNet made from its UNet) and tiny DPT at 64x64 on the CPU (CI runs this).

For each diffusion configuration the same run also measures

- the UNet floor: the bare UNet evaluations of that configuration (same module, dtype and batch, CFG included),
  timed with ``torch.cuda.synchronize`` + ``perf_counter``; ``ratio_to_unet_floor = ours / floor`` (and
  ``interval_ratio_to_unet_floor``: ``frame_interval_ms / floor``, the ratio of a long render);
- the other models bare, the same way: the VAE (decode, plus encode with image feedback) and the depth model at
  its configured input; ``models_floor_ms`` = UNet floor + VAE + depth / depth_every, the frame's cost if the loop
  between the models were free (``ratio_to_models_floor``: what the loop itself adds);
- the models' arithmetic (``*_gflop``, counted on ``meta`` copies) and ``flop_bound_ratio`` = all models' GFLOP /
  the UNet's: the ratio to the UNet floor a frame could reach if every model ran as efficiently as the UNet
  (e.g. SD 1.5 at 512: the VAE decoder alone is ~10% of 16 CFG evaluations, its encoder another ~4%);
- a naive Deforum-style baseline on the same loaded models: per frame the depth model with a numpy round trip, a
  ``cv2.remap`` parallax zoom, a numpy/cv2 LAB histogram match, numpy noise, one
  ``StableDiffusionImg2ImgPipeline`` call with PIL in and PIL out, and a PNG save; ``speedup = naive / ours``.

Timings are steady state: the first ``--warmup`` frames of every run are not counted; ms/frame covers the rest of
the run up to the finished video (so encoding that lags behind is counted; ``finish_ms`` is the part after the
last frame: x264 encoding what its look-ahead held, closing the file, paid once per render and here spread over
the timed frames; ``frame_interval_ms`` leaves it out: the time between the frames' events, what a long render
settles at while the encoder keeps up). The stage split is the loop's own
``timings_ms``; ``encode_io`` is the remainder (ffmpeg pipe, resume journal, checkpoints, waiting for them).
On CUDA the split comes from a second, profiled pass (a ``RunContext`` with ``profile=True`` synchronises around
stages).
A third pass on CUDA traces a few frames with ``torch.profiler`` (unsynchronised, as rendered): ``gpu_busy``, the
share of that time some kernel runs (1.0: the loop keeps the GPU fed, what is left is the models' own speed; lower:
the GPU waits for the host), ``gpu_kernel_ms`` per frame and ``top_kernels``. ``--trace-dir DIR`` keeps each trace
as a gzipped Chrome trace (also on a CPU, where only the host side is recorded).

    .venv/bin/python benchmarks/bench_render.py                                # everything this machine can run
    .venv/bin/python benchmarks/bench_render.py --configs warp-only,tiny --sizes 512
    .venv/bin/python benchmarks/bench_render.py --configs quality,turbo --sizes 512,768 --frames 48   # on CUDA
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

DEMO = ROOT / "keyframes" / "demo.yaml"
ALL_CONFIGS = (
    "warp-only",
    "tiny",
    "quality",
    "turbo",
    "quality-latent",
    "turbo-latent",
    "turbo-small-depth",
    "turbo-latent-small-depth",
    "quality-controlnet",
    "turbo-controlnet",
)
TINY_SIZE = 64
# A render of more frames than this ought to use about the same memory; above it, call it growth.
RSS_GROWTH_TOLERANCE_MB = 32.0


@dataclass(frozen=True)
class Diffusion:
    """One diffusion configuration: our settings, and the diffusers img2img settings with the same UNet work."""

    name: str
    steps: int
    keep: float  # generation.strength (Deforum's meaning: share of the warped frame kept)
    cfg: float
    naive_steps: int  # diffusers img2img runs int(steps * strength) UNet evaluations
    naive_strength: float
    # the fast-path switches this configuration renders with (backends.*); "tiny" vae: a TAESD-sized AutoencoderTiny
    vae: str = "auto"
    depth_every: int = 1
    depth_resolution: int | None = None
    feedback: str = "image"  # generation.feedback: latent skips the VAE encode of every frame
    depth: str = "dpt-large"  # the depth model: "dpt-large" (Intel/dpt-large) or "da-v2-small" (Depth Anything V2 S)
    controlnet: bool = False  # one depth ControlNet unit (source: depth), run with every UNet evaluation

    @property
    def denoise(self) -> float:
        return 1.0 - self.keep

    @property
    def unet_evals(self) -> int:
        """UNet evaluations per frame this configuration asks for (the floor counts exactly these)."""
        from animator.backends.denoise.diffusers_backend import steps_for_strength

        steps = steps_for_strength(self.steps, self.denoise)
        return math.floor(steps * self.denoise + 1e-6)

    @property
    def unet_batch(self) -> int:
        return 2 if self.cfg > 1.0 else 1  # CFG runs the unconditional and conditional halves as one batch


# Quality: the model's own VAE; DPT-Large at its 384 input every other frame (the warped depth carried between).
QUALITY = Diffusion("quality", steps=25, keep=0.35, cfg=7.0, naive_steps=25, naive_strength=0.65, depth_every=2)
# Turbo: 1 UNet evaluation (a 1-step schedule is raised to 2 so that denoise 0.65 runs one), the tiny VAE, and
# DPT-Large on every frame at a reduced 256 input.
TURBO = Diffusion(
    "turbo", steps=1, keep=0.35, cfg=0.0, naive_steps=2, naive_strength=0.65, vae="tiny", depth_resolution=256
)
# The same with latent feedback: the previous frame's latents warped, so a frame runs the VAE decoder only.
QUALITY_LATENT = replace(QUALITY, name="quality-latent", feedback="latent")
TURBO_LATENT = replace(TURBO, name="turbo-latent", feedback="latent")
# Turbo with the depth model this project recommends: Depth Anything V2 Small (ViT-S, ~25M parameters, a 14th of
# DPT-Large) at a 266-pixel input (19 x 19 patches, about DPT-Large's 256), on every frame.
TURBO_SMALL_DEPTH = replace(TURBO, name="turbo-small-depth", depth="da-v2-small", depth_resolution=266)
TURBO_LATENT_SMALL_DEPTH = replace(TURBO_SMALL_DEPTH, name="turbo-latent-small-depth", feedback="latent")
# One depth ControlNet unit on the loop's own depth (the SD 1.5 depth ControlNet's architecture).
QUALITY_CONTROLNET = replace(QUALITY, name="quality-controlnet", controlnet=True)
TURBO_CONTROLNET = replace(TURBO, name="turbo-controlnet", controlnet=True)
FULL_SIZE = (
    QUALITY,
    TURBO,
    QUALITY_LATENT,
    TURBO_LATENT,
    TURBO_SMALL_DEPTH,
    TURBO_LATENT_SMALL_DEPTH,
    QUALITY_CONTROLNET,
    TURBO_CONTROLNET,
)
TINY = (QUALITY, TURBO, TURBO_LATENT, QUALITY_CONTROLNET, TURBO_CONTROLNET)


# --------------------------------------------------------------------------------------------- measuring


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb(field: str = "VmRSS") -> float | None:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process in MiB, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if field == "VmHWM":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return None


class RenderProbe:
    """Callback for ``render``: per-frame timestamps, stage timings, RSS and UNet evaluations."""

    def __init__(self) -> None:
        self.frames: list[Any] = []  # (elapsed_s, timings_ms) per frame: never the image, or the probe's
        # own memory would grow with the frame count it is meant to check
        self.rss: list[float | None] = []
        self.unet_calls: list[int] = []  # cumulative UNet calls when each frame was emitted
        self.unet_counter = [0]
        self.finished = None

    def __call__(self, event) -> None:
        from animator.events import FrameRendered, RenderFinished

        if isinstance(event, FrameRendered):
            self.frames.append((event.elapsed_s, dict(event.timings_ms)))
            self.rss.append(rss_mb())
            self.unet_calls.append(self.unet_counter[0])
        elif isinstance(event, RenderFinished):
            self.finished = event

    def steady(self, warmup: int) -> dict[str, Any]:
        """ms/frame from the end of the warm-up (``warmup`` >= 1 frames) to the finished video; mean stage split
        and UNet evaluations of the timed frames."""
        if not 1 <= warmup < len(self.frames) or self.finished is None:
            raise RuntimeError(f"the render emitted {len(self.frames)} frames; need the {warmup} warm-up and more")
        timed = self.frames[warmup:]
        ms_per_frame = (self.finished.elapsed_s - self.frames[warmup - 1][0]) * 1000 / len(timed)
        stages: dict[str, float] = {}
        for _, timings_ms in timed:
            for stage, ms in timings_ms.items():
                stages[stage] = stages.get(stage, 0.0) + ms / len(timed)
        # The loop queues frame k + 1 before it emits frame k: between the events of frames warmup - 1 and the last,
        # the UNet ran for the frames after `warmup`, one fewer than the timed frames.
        calls = self.unet_calls[warmup - 1 :]
        # What the run spent after its last frame (x264 encoding the frames its look-ahead held, closing the video,
        # the run record): paid once per render, here spread over the timed frames' ms/frame
        finish_ms = (self.finished.elapsed_s - self.frames[-1][0]) * 1000
        # The same frames between frame events, without that one-time end: the rate a long render settles at when
        # the encoder keeps up (it does on a GPU machine; on a small CPU, where it does not, the backlog shows only
        # once the queue is full, so ms_per_frame is the figure there)
        interval_ms = (self.frames[-1][0] - self.frames[warmup - 1][0]) * 1000 / len(timed)
        return {
            "ms_per_frame": ms_per_frame,
            "finish_ms": finish_ms,
            "frame_interval_ms": interval_ms,
            "stages": stages,
            "frames": len(timed),
            "unet_evals_per_frame": (calls[-1] - calls[0]) / max(len(timed) - 1, 1),
        }


@contextlib.contextmanager
def captured_backends(on_load=None):
    """Keeps the Models that ``render`` loads (to time their UNet and run baselines on the same models).

    Only wraps ``animator.rendering.api.load_models``: the render itself is the library's, unchanged.
    """
    module = importlib.import_module("animator.rendering.api")
    original = module.load_models
    box: dict[str, Any] = {}

    def load_and_keep(config, *prompts):
        backends = original(config, *prompts)
        box["backends"] = backends
        if on_load is not None:
            on_load(backends)
        return backends

    module.load_models = load_and_keep
    try:
        yield box
    finally:
        module.load_models = original


def run_render(overrides: dict, *, frames: int, workdir: Path, probe: RenderProbe, on_load=None) -> dict:
    """One real render of demo.yaml (frames 0..frames-1) to an mp4 in ``workdir``; returns the captured backends."""
    from animator.rendering import render

    workdir.mkdir(parents=True, exist_ok=True)
    with captured_backends(on_load) as box:
        render(
            DEMO,
            workdir / "out.mp4",
            overrides=overrides,
            frames=range(0, frames),
            run_dir=workdir / "run",
            callbacks=[probe],
            metrics=False,
        )
    if len(probe.frames) != frames:
        raise RuntimeError(f"render(frames=range(0, {frames})) emitted {len(probe.frames)} frames, not {frames}")
    return box


def frame_overrides(overrides: dict, frames: int) -> dict:
    """The demo has 240 frames; longer benchmark runs lengthen the animation (schedules stay valid)."""
    from animator.keyframes import load_config

    if frames > load_config(DEMO).frames:
        return {**overrides, "frames": frames}
    return overrides


def profiled_split(overrides: dict, backends, *, frames: int, warmup: int) -> dict[str, float]:
    """Stage split with CUDA synchronised around every stage (``frame_loop(profile=True)``), same loaded models."""
    from animator.rendering.api import prepare
    from animator.rendering.context import RunContext
    from animator.rendering.loop import frame_loop

    config, plan = prepare(DEMO, overrides=overrides)
    stages: dict[str, float] = {}
    timed = 0
    ctx = RunContext.start(config, plan, backends, profile=True)
    for emitted in frame_loop(ctx, start=0, stop=min(warmup + frames, plan.frames)):
        if emitted.index < warmup:
            continue
        timed += 1
        for stage, ms in emitted.timings_ms.items():
            stages[stage] = stages.get(stage, 0.0) + ms
    return {stage: ms / max(timed, 1) for stage, ms in stages.items()}


def busy_time(intervals: list[tuple[float, float]]) -> tuple[float, float]:
    """``(busy, span)``: the length of the union of ``(start, end)`` intervals (kernels on several streams may
    overlap: counted once) and of the span from the first start to the last end."""
    busy, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    span = max(end for _, end in intervals) - min(start for start, _ in intervals) if intervals else 0.0
    return busy, span


def device_activity(overrides: dict, backends, *, frames: int, warmup: int, trace: Path | None) -> dict:
    """How busy the GPU is while the loop runs unsynchronised, from a ``torch.profiler`` trace of ``frames`` frames
    after ``warmup`` (same loaded models): ``gpu_busy`` is the share of the traced kernels' span in which some
    kernel runs (below 1: the GPU waited for the host; the profiler's own host cost makes it a little pessimistic),
    ``gpu_kernel_ms`` the busy time per frame, ``top_kernels`` where it goes. ``trace``: also written there as a
    gzipped Chrome trace (chrome://tracing, Perfetto). On a CPU only the trace is made (no kernels to time)."""
    import gzip

    from torch.profiler import ProfilerActivity, profile

    from animator.rendering.api import prepare
    from animator.rendering.context import RunContext
    from animator.rendering.loop import frame_loop

    config, plan = prepare(DEMO, overrides=overrides)
    cuda = backends.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    ctx = RunContext.start(config, plan, backends)
    loop = frame_loop(ctx, start=0, stop=min(warmup + frames + 1, plan.frames))
    for _ in range(warmup):
        next(loop)
    with profile(activities=activities) as recording:
        traced = sum(1 for _ in zip(range(frames), loop))
        if cuda:
            torch.cuda.synchronize(backends.device)
    loop.close()
    if trace is not None:
        trace.parent.mkdir(parents=True, exist_ok=True)
        raw = trace.with_suffix("")  # profiler writes plain JSON; kept gzipped (a few MB instead of tens)
        recording.export_chrome_trace(str(raw))
        with open(raw, "rb") as plain, gzip.open(trace, "wb") as packed:
            packed.writelines(plain)
        raw.unlink()
    if not cuda:
        return {"gpu_busy": None, "gpu_kernel_ms": None, "top_kernels": None}
    kernels = [
        (event.time_range.start, event.time_range.end, event.name)
        for event in recording.events()
        if event.device_type == torch.autograd.DeviceType.CUDA and event.time_range.end > event.time_range.start
    ]
    if not kernels:
        return {"gpu_busy": None, "gpu_kernel_ms": None, "top_kernels": None}
    busy_us, span_us = busy_time([(start, end) for start, end, _ in kernels])
    by_name: dict[str, float] = {}
    for start, end, name in kernels:
        by_name[name] = by_name.get(name, 0.0) + (end - start)
    top = sorted(by_name.items(), key=lambda item: -item[1])[:8]
    return {
        "gpu_busy": round(busy_us / span_us, 3),
        "gpu_kernel_ms": round(busy_us / 1e3 / traced, 2),
        "top_kernels": {name[:80]: round(us / 1e3 / traced, 2) for name, us in top},
    }


def rounded(stages: dict[str, float]) -> dict[str, float]:
    return {stage: round(ms, 2) for stage, ms in stages.items()}


# --------------------------------------------------------------------------------------------- warp-only


def bench_warp_only(size: int, args, device: str, workdir: Path) -> dict:
    """demo.yaml as shipped (at ``size``): N frames, then 2N frames to see whether peak memory grows."""
    overrides = {} if size == 512 else {"width": size, "height": size}
    if device != "auto":
        overrides["backends.device"] = device
    runs = {}
    for frames in (args.frames, 2 * args.frames):
        total = args.warmup + frames
        probe = RenderProbe()
        gc.collect()
        exact_peak = reset_peak_rss()
        box = run_render(
            frame_overrides(overrides, total), frames=total, workdir=workdir / f"warp-{size}-{frames}", probe=probe
        )
        backends = box.pop("backends")
        steady = probe.steady(args.warmup)
        sampled = [r for r in probe.rss if r is not None]
        runs[frames] = {
            **steady,
            "peak_rss_mb": rss_mb("VmHWM") if exact_peak else max(sampled, default=None),
            "rss_mid_mb": sampled[len(sampled) // 2] if sampled else None,
            "rss_end_mb": sampled[-1] if sampled else None,
            "device": str(backends.device),
        }
        if frames == args.frames and backends.device.type == "cuda":  # see bench_diffusion
            runs[frames]["stages"] = profiled_split(
                frame_overrides(overrides, total), backends, frames=min(args.frames, 12), warmup=args.warmup
            )
        del backends, box
    first, second = runs[args.frames], runs[2 * args.frames]
    stages = dict(first["stages"])
    stages["encode_io"] = max(first["ms_per_frame"] - sum(stages.values()), 0.0)
    peaks = first["peak_rss_mb"], second["peak_rss_mb"]
    grows = None if None in peaks else peaks[1] - peaks[0] > RSS_GROWTH_TOLERANCE_MB
    return {
        "config": "warp-only",
        "size": f"{size}x{size}",
        "device": first["device"],
        "model": "none",
        "depth_model": "offline",
        "frames": first["frames"],
        "warmup": args.warmup,
        "ms_per_frame": round(first["ms_per_frame"], 2),
        "fps": round(1000 / first["ms_per_frame"], 2),
        "stages_ms": rounded(stages),
        "stages_profiled": first["device"].startswith("cuda"),
        "finish_ms": round(first["finish_ms"], 1),
        "frame_interval_ms": round(first["frame_interval_ms"], 2),
        "ms_per_frame_2n": round(second["ms_per_frame"], 2),
        "peak_rss_mb": _round1(first["peak_rss_mb"]),
        "memory": {
            "frames_n": first["frames"] + args.warmup,
            "peak_rss_mb_n": _round1(peaks[0]),
            "frames_2n": second["frames"] + args.warmup,
            "peak_rss_mb_2n": _round1(peaks[1]),
            "rss_mid_mb_2n": _round1(second["rss_mid_mb"]),
            "rss_end_mb_2n": _round1(second["rss_end_mb"]),
            "peak_exact": exact_peak,
            "grows": grows,
        },
    }


def _round1(value):
    return None if value is None else round(value, 1)


# --------------------------------------------------------------------------------------------- models on disk


def make_sd15_folder(folder: Path) -> Path:
    """The SD 1.5 architecture with random weights, saved once as a diffusers folder (fp16 halves disk and load)."""
    from animator.testing.tiny_sd import make_sd15_architecture

    if not (folder / "model_index.json").is_file():
        import diffusers.utils.logging as diffusers_logging

        verbosity = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # random weights cast to fp16: its "keep in float32" note is noise
        try:
            pipe = make_sd15_architecture(dtype=torch.float16)
            pipe.save_pretrained(folder, safe_serialization=True)
        finally:
            diffusers_logging.set_verbosity(verbosity)
        del pipe
        gc.collect()
    return folder


def make_dpt_large_folder(folder: Path) -> Path:
    """DPT-Large (Intel/dpt-large's architecture, 384x384 input) with random weights, as a save_pretrained folder."""
    from animator.testing.tiny_depth import make_dpt_large

    if not (folder / "config.json").is_file():
        make_dpt_large(folder)
        gc.collect()
    return folder


def make_depth_anything_folder(folder: Path) -> Path:
    """Depth Anything V2 Small (its architecture and preprocessing) with random weights, as a save_pretrained folder."""
    from animator.testing.tiny_depth import make_depth_anything_v2_small

    if not (folder / "config.json").is_file():
        make_depth_anything_v2_small(folder)
        gc.collect()
    return folder


def make_taesd_folder(folder: Path) -> Path:
    """An ``AutoencoderTiny`` of TAESD's architecture (diffusers' default config) with random weights."""
    from diffusers import AutoencoderTiny

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        AutoencoderTiny().to(torch.float16).save_pretrained(folder, safe_serialization=True)
    return folder


def make_controlnet_folder(folder: Path) -> Path:
    """The SD 1.5 depth ControlNet's architecture with random weights (output layers filled: a unit with an
    effect), saved once as a diffusers folder in fp16."""
    from animator.testing.tiny_controlnet import make_sd15_depth_controlnet

    if not (folder / "config.json").is_file():
        make_sd15_depth_controlnet(dtype=torch.float16).save_pretrained(folder, safe_serialization=True)
        gc.collect()
    return folder


def make_tiny_folders(workdir: Path) -> tuple[Path, Path, Path]:
    """The tiny SD pipeline (with its tiny VAE), a tiny ControlNet made from its UNet, and the tiny DPT."""
    from animator.testing.tiny_controlnet import make_tiny_controlnet
    from animator.testing.tiny_depth import make_tiny_dpt
    from animator.testing.tiny_sd import make_tiny_sd

    sd, dpt, controlnet = workdir / "tiny-sd", workdir / "tiny-dpt", workdir / "tiny-controlnet"
    if not (sd / "model_index.json").is_file():
        make_tiny_sd(sd, tiny_vae=True)  # sd/tiny_vae: the turbo configuration's "tiny" VAE
    if not (dpt / "config.json").is_file():
        make_tiny_dpt(dpt)
    if not (controlnet / "config.json").is_file():
        make_tiny_controlnet(controlnet, unet_folder=sd / "unet")
    return sd, dpt, controlnet


# --------------------------------------------------------------------------------------------- floors


def median_ms(work, device: torch.device, *, repeats: int, warmup: int = 3) -> float:
    """Median ms of ``work()`` over ``repeats`` timed calls, after ``warmup`` untimed ones (allocator, cuDNN/cuBLAS
    heuristics, compiled graphs), synchronised on CUDA so that the GPU's work is what is timed."""
    with torch.inference_mode():
        for _ in range(warmup):
            work()
        times = []
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            work()
            sync(device)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def unet_floor_ms(denoiser, setting: Diffusion, size: int, *, repeats: int, controlnets=()) -> float:
    """Median ms of ``setting.unet_evals`` bare UNet evaluations (same module, dtype, batch) back to back; with
    ``controlnets`` (the run's loaded units) each evaluation is each unit's ControlNet, then the UNet given the
    summed residuals."""
    unet = denoiser.pipe.unet
    device = denoiser._execution_device
    with torch.inference_mode():
        embeddings = denoiser.prompts.resolve("a misty valley at dawn", "blurry")  # 77 tokens, as every prompt
        cond = embeddings.cond.to(device=device, dtype=unet.dtype)
        hidden = (
            torch.cat([embeddings.uncond.to(device=device, dtype=unet.dtype), cond])
            if setting.unet_batch == 2
            else cond
        )
        latent = size // denoiser.vae_scale_factor
        latents = torch.randn(
            setting.unet_batch, unet.config.in_channels, latent, latent, device=device, dtype=unet.dtype
        )
        timestep = torch.tensor(500.0, device=device)
        control = torch.rand(setting.unet_batch, 3, size, size, device=device, dtype=unet.dtype)
        units = [
            (c.unit.runner, torch.ones(c.unit.residual_count, device=device, dtype=unet.dtype)) for c in controlnets
        ]

    def evaluate() -> None:
        for _ in range(setting.unet_evals):
            residuals = {}
            for runner, scales in units:
                *down, mid = runner(latents, timestep, hidden, control, scales)
                if residuals:
                    down = [a + b for a, b in zip(residuals["down_block_additional_residuals"], down)]
                    mid = residuals["mid_block_additional_residual"] + mid
                residuals = {"down_block_additional_residuals": tuple(down), "mid_block_additional_residual": mid}
            unet(latents, timestep, encoder_hidden_states=hidden, return_dict=False, **residuals)

    return median_ms(evaluate, device, repeats=repeats)


def model_gflops(backends, setting: Diffusion, size: int) -> dict[str, float]:
    """Arithmetic of a frame's models in GFLOP (torch's FlopCounterMode, multiply-adds counted as 2), counted on
    copies built on the ``meta`` device from the loaded models' configs: no weights, no device, nothing run.

    ``unet``: the frame's evaluations (CFG batch included); ``vae``: decode, plus encode with image feedback;
    ``depth``: one depth-model call at its configured input, divided by ``depth_every``. ``flop_bound_ratio``
    (UNet + VAE + depth) / UNet is what the frame would cost relative to the UNet floor if every model ran at the
    UNet's efficiency and the loop between them were free: a device-independent floor for ``ratio_to_unet_floor``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    def gflop(work) -> float:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            work()
        return counter.get_total_flops() / 1e9

    def on_meta(module):
        with torch.device("meta"):
            return (
                type(module).from_config(module.config)
                if hasattr(type(module), "from_config")
                else type(module)(module.config)
            )

    def meta(*shape):
        return torch.empty(*shape, device="meta")

    from animator.backends.subpixel import use_subpixel_upsampling, uses_subpixel_upsampling

    pipe = backends.denoiser.pipe
    unet, vae = on_meta(pipe.unet), on_meta(pipe.vae)
    for loaded, copy in ((pipe.unet, unet), (pipe.vae, vae)):
        if uses_subpixel_upsampling(loaded):  # count the arithmetic the render's layers run
            use_subpixel_upsampling(copy)
    latent = size // backends.denoiser.vae_scale_factor
    batch = setting.unet_batch
    per_eval = gflop(
        lambda: unet(
            meta(batch, unet.config.in_channels, latent, latent),
            torch.tensor(500.0),
            encoder_hidden_states=meta(batch, 77, unet.config.cross_attention_dim),
        )
    )
    flops = {
        "unet": per_eval * setting.unet_evals,
        "vae": gflop(lambda: vae.decoder(meta(1, vae.config.latent_channels, latent, latent))),
    }
    for controlnet in getattr(backends, "controlnets", ()):  # the floor's own work: ControlNet + UNet
        copy = on_meta(controlnet.unit.controlnet)
        flops["controlnet"] = flops.get("controlnet", 0.0) + setting.unet_evals * gflop(
            lambda model=copy: model(
                meta(batch, model.config.in_channels, latent, latent),
                torch.tensor(500.0),
                encoder_hidden_states=meta(batch, 77, model.config.cross_attention_dim),
                controlnet_cond=meta(batch, 3, size, size),
                return_dict=False,
            )
        )
    if setting.feedback == "image":
        flops["vae"] += gflop(lambda: vae.encoder(meta(1, 3, size, size)))
    depth = backends.depth
    if depth is not None and getattr(depth, "model", None) is not None:
        model = on_meta(depth.model)
        height, width = depth.preprocess.target_size(size, size)
        flops["depth"] = gflop(lambda: model(pixel_values=meta(1, 3, height, width))) / setting.depth_every
    rounded_flops = {f"{name}_gflop": float(f"{value:.4g}") for name, value in flops.items()}
    floor_flops = flops["unet"] + flops.get("controlnet", 0.0)
    return {**rounded_flops, "flop_bound_ratio": round(sum(flops.values()) / floor_flops, 3)}


def model_floors_ms(backends, setting: Diffusion, size: int, *, repeats: int) -> dict[str, float]:
    """What a frame spends in its other models, bare (same loaded, compiled modules): the VAE (decode, plus the
    encode of image feedback) and the depth model at its configured input (per call; it runs every
    ``depth_every``-th frame). With the UNet floor, the frame's cost if the loop between the models were free."""
    denoiser, device = backends.denoiser, backends.device
    with torch.inference_mode():
        image = torch.rand(1, 3, size, size, device=device)
        latents = denoiser.encode(image)

    def vae() -> None:
        encoded = denoiser.encode(image) if setting.feedback == "image" else latents
        denoiser.decode(encoded)

    floors = {"vae_ms": median_ms(vae, device, repeats=repeats)}
    if backends.depth is not None:
        floors["depth_model_ms"] = median_ms(lambda: backends.depth(image), device, repeats=repeats)
    return floors


def match_histograms_lab(image: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 RGB matched to a reference's LAB histograms channel by channel (numpy CDF mapping)."""
    import cv2

    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    for channel in range(3):
        source_cdf = np.cumsum(np.bincount(lab[..., channel].ravel(), minlength=256)).astype(np.float64)
        reference_cdf = np.cumsum(np.bincount(reference_lab[..., channel].ravel(), minlength=256)).astype(np.float64)
        lookup = np.interp(source_cdf / source_cdf[-1], reference_cdf / reference_cdf[-1], np.arange(256))
        lab[..., channel] = lookup.round().astype(np.uint8)[lab[..., channel]]
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def parallax_zoom(image: np.ndarray, disparity: np.ndarray, amount: float = 0.01) -> np.ndarray:
    """A forward move as Deforum's numpy-side code would do it: near pixels (high disparity) zoom more."""
    import cv2

    height, width = image.shape[:2]
    d = (disparity - disparity.min()) / max(float(np.ptp(disparity)), 1e-6)
    scale = (1.0 + amount * (0.5 + d)).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return cv2.remap(
        image, cx + (xs - cx) / scale, cy + (ys - cy) / scale, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def naive_ms_per_frame(
    model: Path,
    depth: Path,
    setting: Diffusion,
    size: int,
    *,
    device: torch.device,
    frames: int,
    warmup: int,
    workdir: Path,
    prompt: str,
    negative: str,
    controlnet: Path | None = None,
) -> dict:
    """A Deforum-style loop: numpy between every step, a diffusers img2img pipeline call per frame.

    The models are loaded as such a loop loads them: the pipeline as saved (its own VAE), eager, the depth model at
    its own input size, both in the dtype our render picked for ``device``. With ``controlnet`` the pipeline is
    diffusers' ControlNet img2img pipeline, given the frame's depth map (normalised disparity) as its control image.
    """
    import cv2
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionImg2ImgPipeline
    from PIL import Image

    from animator.backends.depth import load_depth_estimator
    from animator.devices import pick_dtype
    from animator.images import load_image

    dtype = pick_dtype(device)
    extra = {}
    pipeline_class = StableDiffusionImg2ImgPipeline
    if controlnet is not None:
        from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline

        pipeline_class = StableDiffusionControlNetImg2ImgPipeline
        extra["controlnet"] = ControlNetModel.from_pretrained(controlnet, torch_dtype=dtype)
    pipe = pipeline_class.from_pretrained(
        model, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False, **extra
    ).to(device)
    pipe.set_progress_bar_config(disable=True)
    control_kwargs = {}  # the control image of the ControlNet pipeline, per frame
    depth_model = load_depth_estimator(str(depth), device=device)
    workdir.mkdir(parents=True, exist_ok=True)
    previous = load_image(DEMO.parent / "../examples/init.jpg", width=size, height=size)
    reference_lab = cv2.cvtColor(previous, cv2.COLOR_RGB2LAB)
    rng = np.random.default_rng(0)
    calls = [0]
    hook = pipe.unet.register_forward_pre_hook(lambda module, inputs: calls.__setitem__(0, calls[0] + 1))
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)  # euler_a, as the demo
    times = []
    try:
        for index in range(warmup + frames):
            sync(device)
            start = time.perf_counter()
            tensor = torch.from_numpy(previous).to(device).permute(2, 0, 1)[None].float() / 255
            disparity = depth_model(tensor)[0, 0].float().cpu().numpy()
            warped = parallax_zoom(previous, disparity)
            matched = match_histograms_lab(warped, reference_lab)
            noisy = np.clip(matched + rng.normal(0, 0.02 * 255, matched.shape), 0, 255).astype(np.uint8)
            if controlnet is not None:
                span = max(float(np.ptp(disparity)), 1e-6)
                depth_map = ((disparity - disparity.min()) / span * 255).astype(np.uint8)
                control_kwargs = {"control_image": Image.fromarray(depth_map).convert("RGB").resize((size, size))}
            result = pipe(
                prompt=prompt,
                negative_prompt=negative,
                image=Image.fromarray(noisy),
                strength=setting.naive_strength,
                guidance_scale=setting.cfg,
                num_inference_steps=setting.naive_steps,
                output_type="pil",
                generator=torch.Generator(device=device).manual_seed(index),
                **control_kwargs,
            ).images[0]
            result.save(workdir / f"{index:05d}.png")
            previous = np.array(result.convert("RGB"))  # PIL arrays are read-only; torch wants writable
            sync(device)
            if index >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    finally:
        hook.remove()
        del pipe, depth_model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"ms_per_frame": statistics.mean(times), "unet_evals_per_frame": calls[0] / (warmup + frames)}


# --------------------------------------------------------------------------------------------- diffusion


def bench_diffusion(
    setting: Diffusion,
    size: int,
    *,
    model: Path,
    depth: Path,
    tiny_vae: Path,
    label: str,
    device: str,
    args,
    workdir: Path,
    controlnet: Path | None = None,
) -> dict:
    """Our render of ``setting`` at ``size``, then in the same process its UNet floor and the naive baseline.

    ``model`` / ``depth``: the diffusers and depth folders (their names go into the row); ``tiny_vae``: the folder
    used where the setting asks for the tiny VAE; ``label``: the row's configuration name; ``controlnet``: the
    ControlNet folder of a setting with a unit.
    """
    speed = {
        "backends.compile": compile_setting(args.compile, device),
        "backends.channels_last": True,
        "backends.subpixel_upsample": args.subpixel_upsample == "on",
        "backends.cudnn_benchmark": args.cudnn_benchmark == "on",
        "backends.vae": str(tiny_vae) if setting.vae == "tiny" else setting.vae,
        "backends.depth_every": setting.depth_every,
        "backends.depth_resolution": setting.depth_resolution,
        "generation.holes": "fill",
        "generation.feedback": setting.feedback,
    }
    overrides = {
        "width": size,
        "height": size,
        "backends.denoise": str(model),
        "backends.depth": str(depth),
        "backends.device": device,
        "generation.steps": f"0:({setting.steps})",
        "generation.strength": f"0:({setting.keep})",
        "generation.cfg": f"0:({setting.cfg})",
        **speed,
    }
    if setting.controlnet:
        overrides["controlnet"] = [{"model": str(controlnet), "source": "depth"}]
    total = args.warmup + args.frames
    overrides = frame_overrides(overrides, total)
    probe = RenderProbe()
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(torch_device)
    gc.collect()
    exact_peak = reset_peak_rss()
    hooks = []

    controlnet_calls = [0]

    def count_unet_calls(backends) -> None:
        counter = probe.unet_counter
        hooks.append(
            backends.denoiser.pipe.unet.register_forward_pre_hook(
                lambda module, inputs: counter.__setitem__(0, counter[0] + 1)
            )
        )
        for unit in getattr(backends, "controlnets", ()):
            hooks.append(
                unit.unit.controlnet.register_forward_pre_hook(
                    lambda *_: controlnet_calls.__setitem__(0, controlnet_calls[0] + 1)
                )
            )

    box = run_render(
        overrides, frames=total, workdir=workdir / f"{label}-{size}", probe=probe, on_load=count_unet_calls
    )
    for hook in hooks:
        hook.remove()
    backends = box.pop("backends")
    peak_gpu = torch.cuda.max_memory_allocated(torch_device) / 2**20 if torch_device.type == "cuda" else None
    peak_rss = rss_mb("VmHWM") if exact_peak else max((r for r in probe.rss if r is not None), default=None)
    steady = probe.steady(args.warmup)
    stages = dict(steady["stages"])
    profiled = torch_device.type == "cuda"
    if profiled:  # unsynchronised stage times on CUDA measure kernel launches, not work
        stages = profiled_split(overrides, backends, frames=min(args.frames, 12), warmup=args.warmup)
    stages["encode_io"] = max(steady["ms_per_frame"] - sum(stages.values()), 0.0)
    activity = {}
    if profiled or args.trace_dir:
        trace = Path(args.trace_dir) / f"trace-{label}-{size}.json.gz" if args.trace_dir else None
        try:
            activity = device_activity(overrides, backends, frames=min(args.frames, 4), warmup=args.warmup, trace=trace)
        except Exception as exc:  # a profiler failure (CUPTI, CUDA graphs) must not cost the row its timings
            activity = {"gpu_busy": None, "activity_error": f"{type(exc).__name__}: {exc}"[:300]}

    floor = unet_floor_ms(
        backends.denoiser, setting, size, repeats=args.floor_repeats, controlnets=getattr(backends, "controlnets", ())
    )
    floors = model_floors_ms(backends, setting, size, repeats=args.floor_repeats)
    flops = model_gflops(backends, setting, size)
    models_floor = floor + floors["vae_ms"] + floors.get("depth_model_ms", 0.0) / setting.depth_every
    from animator.rendering import prepare

    prompt = prepare(DEMO, overrides=overrides)[1].params(0).prompt  # the demo's first prompt, as the render used
    dtype = str(backends.denoiser.dtype).replace("torch.", "")
    device_name = str(backends.device)
    del backends, box
    gc.collect()
    if torch_device.type == "cuda":
        torch.cuda.empty_cache()
    naive = naive_ms_per_frame(
        model,
        depth,
        setting,
        size,
        device=torch_device,
        frames=args.naive_frames,
        warmup=1,
        workdir=workdir / f"{label}-{size}-naive",
        prompt=prompt.positive,
        negative=prompt.negative,
        controlnet=controlnet if setting.controlnet else None,
    )
    ours = steady["ms_per_frame"]
    row = {
        "config": label,
        "size": f"{size}x{size}",
        "device": device_name,
        "model": model.name,
        "depth_model": depth.name,
        "dtype": dtype,
        "speed": {**{key.split(".")[-1]: value for key, value in speed.items()}, "vae": setting.vae},
        "steps": setting.steps,
        "denoise": round(setting.denoise, 3),
        "cfg": setting.cfg,
        "frames": steady["frames"],
        "warmup": args.warmup,
        "ms_per_frame": round(ours, 2),
        "fps": round(1000 / ours, 2),
        "finish_ms": round(steady["finish_ms"], 1),
        "frame_interval_ms": round(steady["frame_interval_ms"], 2),
        "stages_ms": rounded(stages),
        "stages_profiled": profiled,
        **activity,
        "unet_evals_nominal": setting.unet_evals,
        "unet_batch": setting.unet_batch,
        "unet_evals_per_frame": _round1(steady["unet_evals_per_frame"]),
        **({"controlnet_evals_per_frame": round(controlnet_calls[0] / total, 1)} if setting.controlnet else {}),
        "unet_floor_ms": round(floor, 2),
        "ratio_to_unet_floor": round(ours / floor, 3),
        "interval_ratio_to_unet_floor": round(steady["frame_interval_ms"] / floor, 3),
        **{key: round(ms, 2) for key, ms in floors.items()},
        "models_floor_ms": round(models_floor, 2),
        "ratio_to_models_floor": round(ours / models_floor, 3),
        **flops,
        "naive_ms_per_frame": round(naive["ms_per_frame"], 2),
        "naive_unet_evals_per_frame": round(naive["unet_evals_per_frame"], 1),
        "speedup_vs_naive": round(naive["ms_per_frame"] / ours, 3),
        "peak_gpu_mb": _round1(peak_gpu),
        "peak_rss_mb": _round1(peak_rss),
    }
    return row


# --------------------------------------------------------------------------------------------- driver


def compile_setting(name: str, device: str) -> str:
    """``--compile auto``: CUDA graphs on CUDA (the fast path), none on the CPU (compiling costs more than it saves
    in a few benchmark frames there)."""
    if name == "auto":
        return "cudagraphs" if torch.device(device).type == "cuda" else "none"
    return name


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def parse_list(text: str, known: tuple[str, ...] | None = None, *, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if known is not None:
        unknown = [item for item in items if item not in known]
        if unknown:
            raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(known)})")
    return items


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in parse_list(text, what="size"):
        if not item.isdigit() or int(item) < 64 or int(item) % 8:
            raise SystemExit(f"--sizes: {item!r} is not a multiple of 8 of at least 64")
        sizes.append(int(item))
    return sizes


def skipped(config: str, size: int, reason: str) -> dict:
    return {"config": config, "size": f"{size}x{size}", "skipped": reason}


def run_all(args) -> list[dict]:
    configs = parse_list(args.configs, ALL_CONFIGS, what="configuration")
    sizes = parse_sizes(args.sizes)
    device = pick_device(args.device)
    rows: list[dict] = []
    started = time.perf_counter()

    def emit(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    def say(message: str) -> None:
        if not args.json_only:
            print(f"# {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        workdir = Path(tmp)
        if "warp-only" in configs:
            for size in sizes:
                say(f"warp-only {size}x{size}: {args.warmup}+{args.frames} and {args.warmup}+{2 * args.frames} frames")
                emit(bench_warp_only(size, args, args.device, workdir))
        if "tiny" in configs:
            say("tiny SD + tiny DPT at 64x64 on the CPU")
            model, depth, controlnet = make_tiny_folders(workdir)
            for setting in TINY:
                setting = replace(setting, depth_resolution=None)  # the tiny DPT's own 64 px (256 would upscale)
                emit(
                    bench_diffusion(
                        setting,
                        TINY_SIZE,
                        model=model,
                        depth=depth,
                        tiny_vae=model / "tiny_vae",
                        label=f"tiny-{setting.name}",
                        device="cpu",
                        args=args,
                        workdir=workdir,
                        controlnet=controlnet,
                    )
                )
        full = [setting for name in configs for setting in FULL_SIZE if setting.name == name]  # given order
        if full and device == "cpu" and not args.cpu_full:
            for setting in full:
                for size in sizes:
                    emit(
                        skipped(
                            setting.name,
                            size,
                            "no CUDA device: the full-size SD 1.5 render takes minutes a "
                            "frame on a CPU (pass --cpu-full to run it anyway)",
                        )
                    )
            full = []
        if full:
            say("building the SD 1.5 architecture and DPT-Large with random weights (once)")
            models = Path(args.models_dir) if args.models_dir else workdir  # kept between runs when given
            model = make_sd15_folder(models / "sd15-random")
            depths = {"dpt-large": make_dpt_large_folder(models / "dpt-large-random")}
            if any(setting.depth == "da-v2-small" for setting in full):
                depths["da-v2-small"] = make_depth_anything_folder(models / "depth-anything-v2-small-random")
            tiny_vae = make_taesd_folder(models / "taesd-random")
            controlnet = None
            if any(setting.controlnet for setting in full):
                controlnet = make_controlnet_folder(models / "controlnet-sd15-depth-random")
            for size in sizes:  # every configuration at the first size before any at the next
                for setting in full:
                    elapsed = time.perf_counter() - started
                    if args.time_budget_s is not None and elapsed > args.time_budget_s:
                        emit(
                            skipped(
                                setting.name,
                                size,
                                f"--time-budget-s {args.time_budget_s:g} spent ({elapsed:.0f} s elapsed)",
                            )
                        )
                        continue
                    say(f"{setting.name} {size}x{size} on {device} (compile: {compile_setting(args.compile, device)})")
                    try:
                        emit(
                            bench_diffusion(
                                setting,
                                size,
                                model=model,
                                depth=depths[setting.depth],
                                tiny_vae=tiny_vae,
                                label=setting.name,
                                device=device,
                                args=args,
                                workdir=workdir,
                                controlnet=controlnet,
                            )
                        )
                    except Exception as exc:  # one broken configuration must not cost the others' figures
                        if not args.keep_going:
                            raise
                        import traceback

                        traceback.print_exc()
                        emit(
                            {
                                "config": setting.name,
                                "size": f"{size}x{size}",
                                "error": f"{type(exc).__name__}: {exc}"[:500],
                            }
                        )
                        gc.collect()
                        if device.startswith("cuda"):
                            torch.cuda.empty_cache()
    return rows


def _cell(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """The readable summary: one line per configuration."""
    header = [
        "config",
        "size",
        "device",
        "ms/frame",
        "fps",
        "interval ms",
        "UNet evals",
        "UNet floor ms",
        "ours/floor",
        "interval/floor",
        "FLOP bound",
        "models floor ms",
        "ours/models",
        "GPU busy",
        "naive ms",
        "naive/ours",
        "peak GPU MB",
        "peak RSS MB",
        "stages ms/frame",
    ]
    lines = [header]
    for row in rows:
        if "error" in row:
            row = {**row, "skipped": "FAILED: " + row["error"]}
        if "skipped" in row:
            lines.append([row["config"], row["size"], "-", "skipped: " + row["skipped"]] + [""] * (len(header) - 4))
            continue
        evals = row.get("unet_evals_per_frame")
        evals_text = (
            "-"
            if "unet_evals_nominal" not in row
            else f"{_cell(evals)} ({row['unet_evals_nominal']}x{row['unet_batch']})"
        )
        stages = " ".join(f"{name} {ms:.1f}" for name, ms in row["stages_ms"].items())
        lines.append(
            [
                row["config"],
                row["size"],
                row["device"],
                _cell(row["ms_per_frame"]),
                _cell(row["fps"]),
                _cell(row.get("frame_interval_ms")),
                evals_text,
                _cell(row.get("unet_floor_ms")),
                _cell(row.get("ratio_to_unet_floor"), 2),
                _cell(row.get("interval_ratio_to_unet_floor"), 2),
                _cell(row.get("flop_bound_ratio"), 2),
                _cell(row.get("models_floor_ms")),
                _cell(row.get("ratio_to_models_floor"), 2),
                _cell(row.get("gpu_busy"), 2),
                _cell(row.get("naive_ms_per_frame")),
                _cell(row.get("speedup_vs_naive"), 2),
                _cell(row.get("peak_gpu_mb"), 0),
                _cell(row.get("peak_rss_mb"), 0),
                stages,
            ]
        )
    widths = [
        max(len(line[i]) for line in lines if len(line) > i and not line[3].startswith("skipped"))
        for i in range(len(header))
    ]
    out = []
    for line in lines:
        if line[3].startswith("skipped"):
            out.append("  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths)) + "  " + line[3])
        else:
            out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    notes = []
    for row in rows:
        memory = row.get("memory")
        if memory:
            verdict = {True: "GROWS", False: "does not grow", None: "unknown"}[memory["grows"]]
            notes.append(
                f"{row['config']} {row['size']}: peak RSS {_cell(memory['peak_rss_mb_n'], 0)} MB after "
                f"{memory['frames_n']} frames, {_cell(memory['peak_rss_mb_2n'], 0)} MB after "
                f"{memory['frames_2n']} frames: memory {verdict} with the frame count "
                f"(tolerance {RSS_GROWTH_TOLERANCE_MB:.0f} MB); 2N-run ms/frame {row['ms_per_frame_2n']:.1f}"
            )
    return "\n".join(out + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=48, help="timed frames per render (default 48)")
    parser.add_argument("--warmup", type=int, default=2, help="frames rendered first and not timed (default 2)")
    parser.add_argument(
        "--sizes",
        default="512,768",
        help="square sizes for warp-only, quality and turbo (tiny is always 64); default 512,768",
    )
    parser.add_argument(
        "--configs", default=",".join(ALL_CONFIGS), help="comma list of: " + ", ".join(ALL_CONFIGS) + " (default: all)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    parser.add_argument(
        "--cpu-full",
        action="store_true",
        help="run quality/turbo with the full-size models even on a CPU (minutes per frame)",
    )
    parser.add_argument(
        "--naive-frames",
        type=int,
        default=None,
        help="timed frames of the naive baseline (default: --frames, at most 12)",
    )
    parser.add_argument(
        "--compile",
        default="auto",
        choices=("auto", "none", "default", "cudagraphs"),
        help="backends.compile for quality/turbo (auto: cudagraphs on CUDA, none on the CPU)",
    )
    parser.add_argument(
        "--subpixel-upsample",
        default="on",
        choices=("on", "off"),
        help="backends.subpixel_upsample for quality/turbo (default on, as in renders)",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        default="off",
        choices=("on", "off"),
        help="backends.cudnn_benchmark for quality/turbo (default off, as in renders; CUDA only)",
    )
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=None,
        help="start no further quality/turbo configuration after this many seconds (rows say skipped)",
    )
    parser.add_argument(
        "--models-dir",
        default=None,
        help="keep the random-weight SD 1.5 / DPT-Large / TAESD folders here and reuse them "
        "(saves ~30 s per run; default: a temporary folder)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="a quality/turbo configuration that fails prints an error row and the next one runs",
    )
    parser.add_argument("--floor-repeats", type=int, default=5, help="repeats of the UNet floor timing (median)")
    parser.add_argument(
        "--trace-dir",
        default=None,
        help="write a torch.profiler Chrome trace of a few frames of each diffusion configuration "
        "here (trace-CONFIG-SIZE.json.gz; open in chrome://tracing or ui.perfetto.dev)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own choice; 1 is kinder on a shared machine)",
    )
    parser.add_argument("--json-only", action="store_true", help="print only the JSON lines (no table, no progress)")
    args = parser.parse_args(argv)
    if args.naive_frames is None:
        args.naive_frames = min(args.frames, 12)
    for name in ("frames", "warmup", "naive_frames", "floor_repeats", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            # a warm-up of 0 would time the first frame, which loads the init image and is never steady
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    from animator.errors import AnimatorError

    try:
        rows = run_all(args)
    except AnimatorError as exc:
        raise SystemExit(f"bench_render: {exc}") from exc
    if not args.json_only:
        print()
        print(table(rows))
        print(f"\nmachine: {machine()}")
    return rows


def machine() -> str:
    import platform

    text = (
        f"{platform.machine()} {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name()}"
    return text


if __name__ == "__main__":
    main()
