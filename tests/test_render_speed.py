"""The render's speed switches: hole handling's UNet cost, compiled models, CUDA graphs.

Speed itself is never asserted (that is benchmarks/bench_render.py's job); these tests check that the switches do
what they say (how many UNet evaluations a frame runs, which modules are compiled) and that a compiled render
gives the eager render's frames.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from animator.backends.speed import speed_up_module, torch_compile_mode
from animator.errors import AnimatorError

SIZE = 64


@pytest.fixture(scope="module")
def keyframes(tmp_path_factory) -> Path:
    """A forward move with a sideways turn: every frame reveals a strip the previous frame did not see."""
    folder = tmp_path_factory.mktemp("anim")
    rng = np.random.default_rng(0)
    image = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(folder / "init.png")
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 4,
        "mode": "3d",
        "seed": 5,
        "init_image": str(folder / "init.png"),
        "coherence": {"color": "none"},
        "motion": {"translation_x": "0:(40)", "rotation_3d_y": "0:(3)"},
        "generation": {"steps": "0:(8)", "strength": "0:(0.5)", "noise": "0:(0)"},
    }
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def unet_calls_per_frame(counts: list[int]):
    """Counts the denoiser's UNet calls between frames (the render's own load_models, wrapped)."""
    module = importlib.import_module("animator.rendering.api")
    original = module.load_models
    calls = [0]

    def load_and_count(config, *prompts):
        models = original(config, *prompts)
        models.denoiser.pipe.unet.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        return models

    def on_event(event):
        from animator.events import FrameRendered

        if isinstance(event, FrameRendered):
            counts.append(calls[0])
            calls[0] = 0

    module.load_models = load_and_count
    try:
        yield on_event
    finally:
        module.load_models = original


def _render(keyframes: Path, model: Path, overrides: dict, counts: list[int] | None = None) -> list[np.ndarray]:
    from animator.rendering import render_frames

    counts = [] if counts is None else counts
    with unet_calls_per_frame(counts) as on_event:
        return [
            event.image.copy()
            for event in render_frames(
                keyframes,
                overrides={"backends.denoise": str(model), "backends.device": "cpu", **overrides},
                callbacks=[on_event],
            )
        ]


def test_filled_holes_cost_the_scheduled_evaluations_and_repainted_holes_the_full_schedule(keyframes, tiny_model):
    """keep-strength 0.5 of 8 steps: img2img runs 4 evaluations; repainting revealed pixels runs all 8."""
    fill_counts, repaint_counts = [], []
    filled = _render(keyframes, tiny_model, {"generation.holes": "fill"}, fill_counts)
    repainted = _render(keyframes, tiny_model, {"generation.holes": "repaint"}, repaint_counts)
    # Frame k's event carries the making of frame k + 1 (queued before frame k is copied out): the first also
    # the init image's own img2img, the last nothing.
    assert fill_counts[1:] == [4, 4, 0]
    assert repaint_counts[1:] == [8, 8, 0]
    # The revealed strip is where the two differ most: repaint draws it anew, fill keeps the filled texture.
    assert not np.array_equal(filled[1], repainted[1])


def test_compile_modes_map_to_torch_compile_modes():
    assert torch_compile_mode("none", torch.device("cpu")) is None
    assert torch_compile_mode("default", torch.device("cpu")) == "default"
    assert torch_compile_mode("cudagraphs", torch.device("cpu")) == "default"  # CUDA graphs need CUDA
    assert torch_compile_mode("cudagraphs", torch.device("cuda")) == "reduce-overhead"
    with pytest.raises(AnimatorError, match="unknown compile setting 'fast'"):
        torch_compile_mode("fast", torch.device("cpu"))


def test_compiled_module_gives_the_eager_result():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 3, 1))
    x = torch.rand(1, 3, 16, 16)
    expected = module(x)
    applied = speed_up_module(
        module, device=torch.device("cpu"), compile="default", channels_last=True, backend="eager"
    )  # dynamo tracing without code generation: fast enough for CI
    assert applied == {"compile": "default"}  # channels_last is a CUDA-only switch
    assert module._compiled_call_impl is not None
    torch.testing.assert_close(module(x), expected)


class _Block(torch.nn.Module):
    """A model's own module (as a diffusers block is): a torch layer and a setting of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.gain = 2.0

    def forward(self, x):
        return self.conv(x) * self.gain


@pytest.mark.skipif(
    not hasattr(torch.compiler, "skip_guard_on_inbuilt_nn_modules_unsafe"),
    reason="torch < 2.7 has no guard filter: every guard stays",
)
def test_a_compiled_model_checks_its_own_settings_but_not_torch_layers():
    """Before each call a compiled model checks the guards of its graph; speed_up_module drops those on torch's own
    layers (hundreds of parameters and settings in a UNet: most of the check's host time) and keeps the rest.

    So: weights replaced by others of the same shape are used (graph inputs, read at each call); a torch layer's
    setting changed after compiling is not looked at (the price: they are fixed once a model is compiled, as they
    are after loading); a setting of the model's own module is, and traces the graph again."""
    from torch._dynamo.exc import RecompileError

    torch.manual_seed(0)
    block = _Block()
    x = torch.rand(1, 3, 8, 8)
    speed_up_module(block, device=torch.device("cpu"), compile="default", backend="eager")
    torch.testing.assert_close(block(x), block.conv(x) * 2.0)
    with torch._dynamo.config.patch(error_on_recompile=True):
        with torch.no_grad():
            block.conv.weight = torch.nn.Parameter(torch.randn_like(block.conv.weight))
        torch.testing.assert_close(block(x), block.conv(x) * 2.0)
        block.conv.padding = (0, 0)
        block(x)  # not re-checked: no new trace (and so no RecompileError)
        block.conv.padding = (1, 1)
        block.gain = 3.0
        with pytest.raises(RecompileError):
            block(x)  # re-checked: a new trace
    torch.testing.assert_close(block(x), block.conv(x) * 3.0)


@pytest.mark.parametrize("maker", ["make_tiny_dpt", "make_tiny_depth_anything"])
def test_a_compiled_transformers_depth_model_is_one_graph(tmp_path, monkeypatch, maker):
    """transformers installs output-capturing hooks on a model's first call, under a lock dynamo cannot trace: DPT
    compiled before it would stay two graphs for good. speed_up_depth primes the model first (dynamo traces with
    the ``eager`` backend here: the same graphs and breaks, no code generation)."""
    import torch._dynamo.utils

    from animator.backends import speed
    from animator.backends.depth import load_depth_estimator
    from animator.testing import tiny_depth

    getattr(tiny_depth, maker)(tmp_path / "depth")
    estimator = load_depth_estimator(str(tmp_path / "depth"), device="cpu")
    traced_module = speed.speed_up_module
    monkeypatch.setattr(
        speed, "speed_up_module", lambda module, **kwargs: traced_module(module, **{**kwargs, "backend": "eager"})
    )
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert speed.speed_up_depth(estimator, compile="default") == {"compile": "default"}
    frame = torch.rand(1, 3, SIZE, SIZE)
    first, second = estimator(frame), estimator(frame)
    torch.testing.assert_close(first, second)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])


# every per-frame value a compiled region sees, changing on every frame
CHANGING = {
    "motion.translation_x": "0:(10+3*t)",
    "motion.translation_z": "0:(5+2*t)",
    "motion.rotation_3d_y": "0:(1+0.5*t)",
    "motion.near": "0:(200+10*t)",
    "motion.far": "0:(9000+100*t)",
    "motion.zoom": "0:(1.01+0.002*t)",
    "motion.angle": "0:(0.5*t)",
    "generation.strength": "0:(0.5+0.03*t)",
    "generation.noise": "0:(0.01+0.002*t)",
    "coherence.color": "lab",
    "coherence.color_strength": "0:(0.5+0.05*t)",
}
PIXEL_ONLY = {"generation.contrast": "0:(1+0.01*t)", "generation.sharpen_amount": "0:(0.1+0.02*t)"}


@pytest.mark.parametrize("mode, feedback", [("3d", "image"), ("3d", "latent"), ("2d", "image"), ("2d", "latent")])
def test_the_loops_compiled_regions_give_the_eager_frames(
    keyframes, tiny_model, tmp_path, monkeypatch, traced, mode, feedback
):
    """``backends.compile`` also compiles the loop's own tensor code (warps, colour matching, depth tracking, the
    latent move), each as one graph: a render with them compiled gives the eager render's frames. The models stay
    eager here (compiling them with TorchInductor takes minutes on a CPU; test_compiled_module_gives_the_eager_result
    checks a compiled module), and the regions are traced with the aot_eager backend.

    Every value the regions see (camera move, near/far, strengths, noise, contrast, sharpening) changes on every
    frame. A value baked into a graph as a constant would trace a new graph each frame (on a GPU: seconds each, and
    past torch.compile's recompile limit the region silently runs eagerly): no compiled function may be traced
    twice. Nor may a region write into its inputs: CUDA graphs skip a function that mutates an input."""
    import torch._dynamo.utils

    from animator import compiling
    from animator.backends import speed
    from animator.testing.tiny_depth import make_tiny_dpt

    monkeypatch.setattr(speed, "speed_up_denoiser", lambda *args, **kwargs: {})
    monkeypatch.setattr(speed, "speed_up_depth", lambda *args, **kwargs: {})
    make_tiny_dpt(tmp_path / "tiny-dpt")
    overrides = {
        "backends.depth": str(tmp_path / "tiny-dpt"),
        "mode": mode,
        "generation.feedback": feedback,
        "frames": 5,
        **CHANGING,
        **(PIXEL_ONLY if feedback == "image" else {}),
    }
    eager = _render(keyframes, tiny_model, overrides)
    regions, mutated, compile_call = set(), set(), compiling.call

    def recording_call(function, compile_mode, *args):
        if compile_mode is not None:
            regions.add(function.__name__)
        tensors = [arg for arg in args if isinstance(arg, torch.Tensor)]
        before = [tensor.clone() for tensor in tensors]  # (inference tensors keep no version counter: compare values)
        outputs = compile_call(function, compile_mode, *args)
        if not all(
            torch.allclose(tensor, copy, rtol=0, atol=0, equal_nan=True) for tensor, copy in zip(tensors, before)
        ):
            mutated.add(function.__name__)
        return outputs

    monkeypatch.setattr(compiling, "call", recording_call)
    torch._dynamo.utils.counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):  # any guard that fails on a later call raises
        compiled = _render(keyframes, tiny_model, {**overrides, "backends.compile": "default"})
    expected = {"_warp"} | ({"_aligned_depth"} if mode == "3d" else set())
    expected |= {"latents_along_grid"} if (mode, feedback) == ("3d", "latent") else set()
    expected |= {"_match_on_the_line"} if feedback == "image" else set()
    assert expected <= regions, regions
    assert not mutated, f"compiled regions wrote into their inputs: {sorted(mutated)}"
    assert len(compiled) == len(eager) == 5
    # The first diffused frame: the same up to rounding (traced code may round differently in the last bit, which
    # can flip a pixel by one level). Later frames are not compared: a random tiny model in a feedback loop
    # amplifies such a flip (seen in 2D: 1, then 10, then 70 levels), whatever the code.
    difference = np.abs(compiled[1].astype(int) - eager[1].astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.05, (difference.max(), difference.mean())


def test_render_record_says_which_speed_switches_ran(keyframes, tiny_model, tmp_path):
    from animator.rendering import render

    render(
        keyframes,
        tmp_path / "out.mp4",
        overrides={"backends.denoise": str(tiny_model), "backends.device": "cpu", "frames": 2},
        run_dir=tmp_path / "run",
        metrics=False,
    )
    import json

    record = json.loads((tmp_path / "run" / "run.json").read_text())
    speed = record["backends"]["denoiser"]["speed"]
    # no compile by default, channels_last only on CUDA; the upsampling layers of the tiny UNet (1) and VAE (3)
    assert speed == {"attention": "sdpa", "subpixel_upsample": {"unet": 1, "vae": 3}}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_and_cuda_graph_renders_on_cuda(keyframes, tiny_model):
    """Compiled models give the eager picture, and CUDA-graph replay gives the compiled one.

    A feedback loop of a random tiny model amplifies any rounding difference frame after frame (seen on an H200:
    eager vs compiled differ by 0.17 levels on the first frame, 6-21 on the next three), so eager and compiled are
    compared on the first frame, one img2img of the init image. CUDA graphs replay the compiled kernels exactly:
    every frame must match the compiled render, or a replayed graph read a stale input or overwrote a kept output.
    """
    base = {"backends.device": "cuda", "backends.depth": "offline"}
    eager_frames = _render(keyframes, tiny_model, {**base, "backends.compile": "none"})
    compiled_frames = _render(keyframes, tiny_model, {**base, "backends.compile": "default"})
    graph_frames = _render(keyframes, tiny_model, {**base, "backends.compile": "cudagraphs"})
    assert len(eager_frames) == len(compiled_frames) == len(graph_frames) == 4

    def mean_difference(a, b) -> float:
        return float(np.abs(a.astype(int) - b.astype(int)).mean())

    assert mean_difference(eager_frames[0], compiled_frames[0]) < 1.0
    replay = [mean_difference(a, b) for a, b in zip(compiled_frames, graph_frames)]
    assert max(replay) < 0.05, replay


def test_cpu_warp_only_tweens_from_8_bit_frames_match_the_float_path(tmp_path):
    """The CPU fast path of warp-only tweens (the anchor's 8-bit frame warped by OpenCV) gives the float path's
    frames within OpenCV's fixed-point interpolation."""
    from dataclasses import replace

    from animator.rendering.api import prepare
    from animator.rendering.camera import move_camera
    from animator.rendering.context import RunContext
    from animator.rendering.feedback import ImageFeedback
    from animator.rendering.models import load_models
    from animator.rendering.tensors import quantize, to_uint8
    from animator.rendering.tweens import tween

    rng = np.random.default_rng(1)
    texture = (rng.random((SIZE // 4, SIZE // 4, 3)) * 255).astype(np.uint8)
    Image.fromarray(texture).resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(tmp_path / "init.png")
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 8,
        "mode": "3d",
        "init_image": str(tmp_path / "init.png"),
        "motion": {"translation_z": "0:(30)", "rotation_3d_y": "0:(1.5)", "translation_x": "0:(5)"},
    }
    path = tmp_path / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    config, plan = prepare(path)
    ctx = RunContext.start(config, plan, load_models(config))
    anchor = ImageFeedback().first_frame(ctx, 0, None)
    later = replace(anchor, index=7)  # a warp-only tween reads only the earlier anchor
    for index in (1, 4, 6):
        fast = tween(ctx, replace(anchor, host_image=None), later, index)  # makes the 8-bit frame
        assert np.array_equal(
            tween(ctx, replace(anchor, host_image=to_uint8(anchor.image)), later, index), fast
        )  # as emitted: the same frame
        slow = quantize(move_camera(ctx, anchor, index).image)  # the float path (GPUs)
        assert fast.dtype == torch.uint8 and slow.dtype == torch.float32
        difference = np.abs(to_uint8(fast).astype(int) - to_uint8(slow).astype(int))
        assert difference.mean() < 0.5 and difference.max() <= 8, (index, difference.mean(), difference.max())


@pytest.mark.parametrize(
    "mode, feedback, holes",
    [
        ("3d", "image", "fill"),
        ("3d", "latent", "fill"),
        ("2d", "image", "fill"),
        ("3d", "image", "repaint"),
        ("3d", "latent", "repaint"),
    ],
)
def test_frames_read_back_from_the_device_only_where_they_must(
    keyframes, tiny_model, tmp_path, monkeypatch, mode, feedback, holes
):
    """On a GPU each read-back (``.item()``, ``bool(t)``, ``.cpu()`` ...) stalls the frame loop until the GPU has
    caught up; this counts them on the CPU, on the GPU's code path (whole-image hole masks), in a 3D render with
    learned depth, LAB colour coherence, noise and cadence 2. Every frame reads back once: the finished frame for
    the video, with its NaN check in the same copy. The models' and the warp's inputs are not checked again, and
    the depth tracker picks its fit or its fallback on the device. Also with latent feedback, and in 2D. With
    ``holes: repaint`` the sampler reads the per-pixel strength range once more: it decides the schedule."""
    import importlib

    import animator.color as color_module
    import animator.geometry.warp3d as warp3d_module
    from animator.events import FrameRendered
    from animator.rendering import render_frames
    from animator.testing.host_reads import HostReads
    from animator.testing.tiny_depth import make_tiny_dpt

    loop_module = importlib.import_module("animator.rendering.loop")
    monkeypatch.setattr(warp3d_module, "_dense_holes", lambda device: True)
    # checkpoints (every 2 s, deliberate read-backs) only at the first frame, however slow the machine is today
    monkeypatch.setattr(loop_module, "CHECKPOINT_EVERY_S", float("inf"))
    # the CPU's table shortcut for 8-bit frames in colour matching is checked by reading values: CPU only
    monkeypatch.setattr(color_module, "_looks_quantised", lambda sample: False)
    make_tiny_dpt(tmp_path / "tiny-dpt")
    overrides = {
        "backends.denoise": str(tiny_model),
        "backends.depth": str(tmp_path / "tiny-dpt"),
        "backends.device": "cpu",
        "frames": 7,
        "cadence": 2,
        "coherence.color": "lab",
        "generation.noise": "0:(0.02)",
        "mode": mode,
        "generation.feedback": feedback,
        "generation.holes": holes,
    }
    reads, per_frame = HostReads(), []

    def take(event):
        if isinstance(event, FrameRendered):
            per_frame.append((event.index, dict(reads.where)))
            reads.where.clear()

    with reads:
        for _ in render_frames(keyframes, overrides=overrides, callbacks=[take]):
            pass
    assert [index for index, _ in per_frame] == list(range(7))
    # Frames are counted when their events come, and on the CPU a frame's copy is made when it starts. The tween
    # (odd frame) is handed on after the next anchor's copy has started and the one after it is queued: its event
    # carries its own copy, the next anchor's, and the making of the anchor after that. The anchors' events then
    # carry nothing. One copy per frame in all.
    for index, where in per_frame[1:]:
        expected = {}
        if index % 2:
            expected = {"tensors.py to_uint8": 2}
            if holes == "repaint" and index + 3 < 7:
                expected["diffusers_backend.py _sample"] = 1
        assert _by_function(where) == expected, f"frame {index}: {where}"


@pytest.mark.parametrize(
    "cadence, expected",
    [
        (
            1,
            [
                "copy 0",
                "queue 1",
                "wait 0",
                "copy 1",
                "queue 2",
                "wait 1",
                "copy 2",
                "queue 3",
                "wait 2",
                "copy 3",
                "wait 3",
            ],
        ),
        # in-betweens: each one's copy is waited for after the next in-between (or the next diffused frame) is queued
        (
            3,
            [
                "copy 0",
                "queue 3",
                "wait 0",
                "tween 1",
                "copy 1",
                "tween 2",
                "copy 2",
                "wait 1",
                "copy 3",
                "queue 6",
                "wait 2",
                "wait 3",
                "tween 4",
                "copy 4",
                "tween 5",
                "copy 5",
                "wait 4",
                "copy 6",
                "wait 5",
                "wait 6",
            ],
        ),
    ],
)
def test_a_frames_copy_to_the_host_starts_before_the_next_frame_is_queued(
    keyframes, tiny_model, monkeypatch, cadence, expected
):
    """On a GPU a copy waits, in stream order, for every kernel queued before it: frame k's copy must be started
    before frame k + 1's work is queued, and waited for only after, or the host would wait for frame k + 1 too and
    the GPU would idle while the host queued frame k + 2. With a cadence the same holds from one in-between to the
    next. The order is the same on the CPU, so it is checked here (copies are numbered in the order they start,
    which is the frames' order)."""
    import importlib

    loop_module = importlib.import_module("animator.rendering.loop")
    from animator.rendering.feedback import ImageFeedback

    order: list[str] = []
    advance, host_copy, tween = ImageFeedback.next_frame, loop_module.HostCopy, loop_module.tween

    class RecordingCopy(host_copy):
        def __init__(self, image):
            super().__init__(image)
            self.index = len([entry for entry in order if entry.startswith("copy")])
            order.append(f"copy {self.index}")

        def result(self):
            order.append(f"wait {self.index}")
            return super().result()

    def recording_advance(self, ctx, state, dst, *args, **kwargs):
        order.append(f"queue {dst}")
        return advance(self, ctx, state, dst, *args, **kwargs)

    def recording_tween(ctx, prev, nxt, index, *args, **kwargs):
        order.append(f"tween {index}")
        return tween(ctx, prev, nxt, index, *args, **kwargs)

    monkeypatch.setattr(loop_module, "HostCopy", RecordingCopy)
    monkeypatch.setattr(ImageFeedback, "next_frame", recording_advance)
    monkeypatch.setattr(loop_module, "tween", recording_tween)
    frames = _render(keyframes, tiny_model, {"frames": 7 if cadence > 1 else 4, "cadence": cadence})
    assert len(frames) == (7 if cadence > 1 else 4)
    assert order == expected, order


def test_host_copy_gives_to_uint8s_frame_and_refuses_nan():
    from animator.rendering.tensors import HostCopy, to_uint8

    image = torch.rand(1, 3, 5, 7)
    assert np.array_equal(HostCopy(image).result(), to_uint8(image))
    image[0, 1, 2, 3] = float("nan")
    with pytest.raises(AnimatorError, match="NaN or infinite"):
        HostCopy(image).result()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_host_copy_on_cuda_matches_the_cpu_and_does_not_wait_when_started():
    from animator.rendering.tensors import HostCopy, to_uint8

    image = torch.rand(1, 3, 64, 96)
    on_gpu = image.cuda()  # (an upload from pageable memory: itself a wait, so before the check)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # starting the copy must not make the host wait
    try:
        started = HostCopy(on_gpu)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert np.array_equal(started.result(), to_uint8(image))
    broken = image.clone()
    broken[0, 0, 0, 0] = float("inf")
    with pytest.raises(AnimatorError, match="NaN or infinite"):
        HostCopy(broken.cuda()).result()


def _by_function(where: dict) -> dict:
    """``"folder/file.py:line function"`` -> ``"file.py function"``: line numbers change with every edit."""
    counts: dict[str, int] = {}
    for site, count in where.items():
        file_and_line, function = site.split(" ")
        key = f"{file_and_line.split('/')[-1].split(':')[0]} {function}"
        counts[key] = counts.get(key, 0) + count
    return counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_frames_synchronise_only_where_they_must(keyframes, tiny_model, tmp_path):
    """On CUDA, torch's sync debug mode flags every operation that makes the host wait for the GPU (read-backs,
    and copies from ordinary host memory, which wait for the copy). A diffused frame of a 3D render with learned
    depth and LAB coherence may wait at the one place the CPU count above names (the frame's copy), and two more
    (slack for waits inside libraries: bincount and diffusers' add_noise were two, both removed); the message
    lists where each wait came from (file:line), for whoever has to remove one."""
    import warnings

    from animator.events import FrameRendered
    from animator.rendering import render_frames
    from animator.testing.tiny_depth import make_tiny_dpt

    make_tiny_dpt(tmp_path / "tiny-dpt")
    overrides = {
        "backends.denoise": str(tiny_model),
        "backends.depth": str(tmp_path / "tiny-dpt"),
        "backends.device": "cuda",
        "frames": 5,
        "coherence.color": "lab",
    }
    per_frame: list[list[str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            seen = 0
            for event in render_frames(keyframes, overrides=overrides):
                if isinstance(event, FrameRendered):
                    sites = [
                        f"{Path(w.filename).name}:{w.lineno}"
                        for w in caught[seen:]
                        if "synchronizing" in str(w.message)
                    ]
                    per_frame.append(sites)
                    seen = len(caught)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    steady = per_frame[2:]  # past the first frame and the first compile-free warm-up
    assert steady and all(len(sites) <= 3 for sites in steady), per_frame


@pytest.mark.parametrize("feedback", ["image", "latent"])
def test_compiled_models_do_not_recompile_across_steps_and_frames(
    keyframes, tiny_model, tmp_path, monkeypatch, traced, feedback
):
    """The UNet, the VAE's networks and the depth model, compiled (traced by dynamo with the ``eager`` backend: the
    guards a GPU render has, without code generation), are traced once each while the step count, the strength (so
    every timestep), the guidance scale, the prompt and the camera change every frame. A timestep passed as a Python
    number would trace a graph per value (16 per quality frame; tried: this test fails), and so would a frame whose
    memory layout differs from the others' (the init image's did)."""
    import torch._dynamo.utils

    from animator.backends import speed
    from animator.events import FrameRendered
    from animator.rendering import render_frames
    from animator.testing.tiny_depth import make_tiny_dpt

    traced_module = speed.speed_up_module
    monkeypatch.setattr(
        speed, "speed_up_module", lambda module, **kwargs: traced_module(module, **{**kwargs, "backend": "eager"})
    )
    make_tiny_dpt(tmp_path / "tiny-dpt")
    overrides = {
        "backends.denoise": str(tiny_model),
        "backends.device": "cpu",
        "backends.compile": "default",
        "backends.depth": str(tmp_path / "tiny-dpt"),
        "generation.feedback": feedback,
        "frames": 7,
        "generation.steps": "0:(5+t)",
        "generation.strength": "0:(0.3+0.08*t)",
        "generation.cfg": "0:(3+0.5*t)",
        "motion.translation_z": "0:(5+2*t)",
        "prompts": {"0": "a red house", "3": "a blue lake at night"},
    }
    graphs_after_frame = []

    def on_event(event):
        if isinstance(event, FrameRendered):
            graphs_after_frame.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])

    torch._dynamo.utils.counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):  # any guard that fails on a later call raises
        frames = list(render_frames(keyframes, overrides=overrides, callbacks=[on_event]))
    assert len(frames) == 7
    assert graphs_after_frame == [graphs_after_frame[0]] * 7, graphs_after_frame


def test_cudnn_benchmark_is_left_alone_off_cuda(keyframes, monkeypatch):
    from animator.rendering.api import prepare
    from animator.rendering.models import load_models

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    config, _ = prepare(keyframes, overrides={"backends.device": "cpu", "backends.cudnn_benchmark": False})
    load_models(config)
    assert torch.backends.cudnn.benchmark is True  # a CPU render does not touch the process-wide setting


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cudnn_benchmark_follows_the_keyframe_file_on_cuda(keyframes, monkeypatch):
    from animator.rendering.api import prepare
    from animator.rendering.models import load_models

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored after
    for wanted in (True, False):
        config, _ = prepare(keyframes, overrides={"backends.device": "cuda", "backends.cudnn_benchmark": wanted})
        load_models(config)
        assert torch.backends.cudnn.benchmark is wanted
