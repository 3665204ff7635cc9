"""The render: a keyframe file in, a finished video (or a stream of frames) out.

Each diffused frame is made from the previous one, top to bottom in :func:`advance`:

    depth of the previous frame -> move the camera (3D warp or 2D homography) -> colour coherence, sharpening,
    contrast, noise -> img2img denoise (revealed pixels repainted when generation.holes says so) -> depth of the result

With ``generation.feedback: latent`` (:func:`advance_in_latents`) the previous frame's latents are moved instead of
its pixels, and the VAE only decodes.

Frames between two diffused frames (cadence > 1) are made in :func:`tween` by warping both neighbours to the
in-between camera and blending them. :func:`render` streams the frames into ffmpeg, keeps the run folder that makes
the run reproducible and resumable, and reports progress through callbacks (the CLI bar, the notebook live view).
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from animator.devices import profiled, upload
from animator.errors import AnimatorError
from animator.events import FrameRendered, MetricProgress, RenderCallback, RenderFinished, RenderStarted
from animator.plan import FrameParams, RenderPlan, frame_span, make_plan

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig

NO_DENOISER_NOTE = (
    "denoise: none (warp-only render). Point --model at a diffusers model "
    "(e.g. stabilityai/sd-turbo, a local folder or a .safetensors file) for a diffusion render"
)


# --------------------------------------------------------------------------------------------- state and backends


@dataclass
class FrameState:
    """What carries from one diffused frame to the next. Small on purpose: it is the resume checkpoint."""

    index: int
    image: torch.Tensor  # (1,3,H,W) in [0,1], quantised to 8 bits (what was written to the video)
    depth: torch.Tensor | None = None  # (1,1,H,W) z of `image` (3D mode)
    depth_age: int = 0  # frames since the depth model last looked (the depth is carried by warping)
    raw: torch.Tensor | None = None  # (1,3,H,W) the input video frame at `index` (video mode)
    hybrid_raw: torch.Tensor | None = None  # (1,3,H,W) the hybrid-motion video frame at `index`
    frame: np.ndarray | None = None  # (H,W,3) uint8 host copy of `image` once it was emitted (CPU tweens use it)
    latents: torch.Tensor | None = None  # (1,4,H/8,W/8) the denoised latents `image` was decoded from (latent feedback)
    tracker: dict | None = None  # the depth tracker's state right after this frame (DepthTracker.snapshot)

    def to_checkpoint(self, frame: np.ndarray) -> dict[str, Any]:
        """``frame``: the state's image as the (H,W,3) uint8 host copy already made for the video."""
        return {
            "index": self.index,
            "image": torch.from_numpy(frame),
            "depth_age": self.depth_age,
            "depth": None if self.depth is None else self.depth.float().cpu(),
            "latents": None if self.latents is None else self.latents.cpu(),
        }


@dataclass
class Backends:
    """Models and helpers, loaded once per run."""

    device: torch.device
    denoiser: Any  # animator.backends.denoise.Denoiser
    depth: Any = None  # animator.backends.depth.DepthEstimator (3D mode)
    tracker: Any = None  # animator.backends.depth.DepthTracker (3D mode)
    flow: Any = None  # animator.backends.flow.FlowEstimator (video mode)
    color_reference: Any = None  # animator.color.ColorReference, set from the first frame or an image
    diffuses: bool = False  # False for the `none` denoiser: a warp-only render
    latent_feedback: bool = False  # generation.feedback: latent, with a denoiser that takes latents
    latent_reference: Any = None  # animator.latents.LatentStatistics: latent feedback's colour reference
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {}
        for name in ("denoiser", "depth", "flow"):
            backend = getattr(self, name)
            if backend is not None:
                described[name] = (
                    backend.describe() if hasattr(backend, "describe") else getattr(backend, "name", str(backend))
                )
        if self.diffuses:
            described["feedback"] = "latent" if self.latent_feedback else "image"  # what the frames start from
        return described


def load_backends(config: AnimationConfig) -> Backends:
    from animator.backends.denoise import load_denoiser
    from animator.backends.speed import speed_up_denoiser, speed_up_depth, torch_compile_mode
    from animator.devices import pick_device, pick_dtype

    b = config.backends
    device = pick_device(b.device)
    dtype = pick_dtype(device, b.dtype)
    if device.type == "cuda":  # before any model runs: cuDNN picks its algorithms on each shape's first call
        torch.backends.cudnn.benchmark = b.cudnn_benchmark
    denoiser = load_denoiser(
        b.denoise,
        device=device,
        dtype=dtype,
        vae=b.vae,
        model_config=b.model_config,
        lora=tuple((entry.path, entry.scale) for entry in b.lora),
        sampler=b.sampler,
    )
    speed_up_denoiser(denoiser, compile=b.compile, channels_last=b.channels_last, subpixel_upsample=b.subpixel_upsample)
    if hasattr(denoiser, "check_values"):
        denoiser.check_values = False  # every finished frame is checked once (to_uint8): no read-back per input
    backends = Backends(device=device, denoiser=denoiser, diffuses=(b.denoise or "none") != "none")
    if not backends.diffuses:
        backends.notes.append(NO_DENOISER_NOTE)
    if config.generation.feedback == "latent":
        from animator.backends.denoise.base import LatentDenoiser

        backends.latent_feedback = backends.diffuses and isinstance(denoiser, LatentDenoiser)
        if not backends.latent_feedback:
            backends.notes.append("feedback: latent needs a diffusion model; without one the pixels are warped")
    if b.compile != "none":
        backends.notes.append(
            f"compile: {b.compile} - the first frames wait while the models compile "
            + (
                "(about a minute per model and frame size)"
                if device.type == "cuda"
                else "(on a CPU that can take many minutes and rarely pays off: use compile: none)"
            )
        )
    if config.mode == "3d":
        from animator.backends.depth import DepthTracker, load_depth_estimator

        backends.depth = load_depth_estimator(b.depth, device=device, resolution=b.depth_resolution)
        speed_up_depth(backends.depth, compile=b.compile, channels_last=b.channels_last)
        backends.tracker = DepthTracker(
            near=200.0,
            far=10000.0,
            mode=config.coherence.depth_stability,
            compile_mode=torch_compile_mode(b.compile, device),
        )
        if b.depth == "offline":
            from animator.backends.depth import OFFLINE_NOTE

            backends.notes.append(OFFLINE_NOTE)
    hybrid_flow = config.hybrid is not None and config.hybrid.motion == "optical_flow"
    if config.mode == "video" or config.motion.cadence_flow or hybrid_flow:
        from animator.backends.flow import load_flow_estimator

        backends.flow = load_flow_estimator(b.flow, device=device)
    if config.coherence.color != "none" and config.coherence.reference == "image":
        reference = load_image_tensor(config.coherence.image, config, device)
        backends.color_reference = _color_reference(reference, config)
        if backends.latent_feedback:
            from animator.latents import LatentStatistics

            backends.latent_reference = LatentStatistics.of(denoiser.encode(reference))
    return backends


# --------------------------------------------------------------------------------------------- tensor edges


def to_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H,W,3) uint8 -> (1,3,H,W) float in [0,1] on ``device``, contiguous: the frames the loop makes are, and a
    compiled model given another memory layout compiles (and on a GPU records) a second graph for it."""
    if not frame.flags.writeable:  # frames decoded by ffmpeg are read-only views of its buffer
        frame = frame.copy()
    # uploaded without waiting for the GPU (video mode reads a frame while the previous one is still queued)
    pixels = upload(torch.from_numpy(np.ascontiguousarray(frame)), device).permute(2, 0, 1)[None]
    return pixels.to(memory_format=torch.contiguous_format, dtype=torch.float32).div_(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) [0,1] (or already uint8) -> (H,W,3) uint8 on the host: the one host copy per frame.

    The frame loop's only check of its values (the models' inputs go unchecked: each check would make the host wait
    for a GPU): a float frame with NaN or infinite values raises, read back in the same copy as the pixels."""
    if image.dtype == torch.uint8:
        return np.ascontiguousarray(image[0].permute(1, 2, 0).cpu().numpy())
    flat, shape = _frame_bytes(image)
    return _checked_frame(flat.cpu().numpy(), shape)


def _frame_bytes(image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """The frame's HxWx3 bytes, flat, and one more byte: 1 when every value of ``image`` is finite."""
    pixels = image[0].clamp(0, 1).mul(255).round_().to(torch.uint8).permute(1, 2, 0)  # HxWx3 (NaN would give 0)
    finite = torch.isfinite(image).all().to(torch.uint8).view(1)
    return torch.cat([pixels.reshape(-1), finite]), tuple(pixels.shape)


def _checked_frame(copied: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    if not copied[-1]:
        raise AnimatorError(
            "a frame came out with NaN or infinite values",
            field="backends.dtype",
            hint="half precision can overflow in some models and VAEs: try backends.dtype: "
            "bfloat16 or float32, or a VAE made for float16",
        )
    return copied[:-1].reshape(shape)


class HostCopy:
    """A frame's copy to the host (as :func:`to_uint8`), started now and waited for by :meth:`result`.

    On CUDA the copy goes into pinned memory without waiting, behind the frame's own kernels, and an event marks its
    end. The loop starts it before it queues the next frame: a copy started after that would wait, in the stream's
    order, for the next frame's kernels too, and the GPU would idle while the host then queued the frame after.
    Elsewhere the copy is made at once (a CPU has no queue to keep ahead of)."""

    def __init__(self, image: torch.Tensor) -> None:
        self._frame: np.ndarray | None = None
        if image.device.type != "cuda" or image.dtype == torch.uint8:
            self._frame = to_uint8(image)
            return
        self._flat, self._shape = _frame_bytes(image)  # (kept referenced until the copy has been waited for)
        self._staging = torch.empty(self._flat.shape, dtype=torch.uint8, pin_memory=True)
        self._staging.copy_(self._flat, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record(torch.cuda.current_stream(image.device))  # the stream the copy went on (any GPU)

    def result(self) -> np.ndarray:
        """The (H,W,3) uint8 frame; waits for the copy (raises for a frame with NaN or infinite values)."""
        if self._frame is None:
            self._copied.synchronize()
            self._frame = _checked_frame(self._staging.numpy(), self._shape)  # the array keeps the pinned buffer
            self._flat = self._staging = None
        return self._frame


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Rounds to the 8-bit values the video receives, so the next frame starts from exactly what was written
    (this is what makes a resumed render bit-identical to an uninterrupted one)."""
    return image.clamp(0, 1).mul(255).round_().div_(255)


def load_image_tensor(path, config: AnimationConfig, device: torch.device) -> torch.Tensor:
    from animator.video import load_image

    return to_tensor(load_image(path, width=config.width, height=config.height), device)


# --------------------------------------------------------------------------------------------- timing


class StageTimer:
    """Milliseconds per stage for the current frame (synchronising CUDA only when asked: profiling costs speed)."""

    def __init__(self, device: torch.device, *, sync: bool) -> None:
        self.sync = sync and device.type == "cuda"
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        if self.sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with profiled(f"stage:{stage}"):
            yield
        if self.sync:
            torch.cuda.synchronize()
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1000

    def take(self) -> dict[str, float]:
        taken, self.ms = self.ms, {}
        return taken


# --------------------------------------------------------------------------------------------- camera moves


def move_3d(
    image,
    depth,
    plan: RenderPlan,
    src: int,
    dst: int,
    config: AnimationConfig,
    return_depth: bool = True,
    return_grid: bool = False,
    return_image: bool = True,
):
    """Frame ``src`` seen from the camera of frame ``dst`` (exact reprojection, z-buffer, hole mask); compiled
    with the models when ``backends.compile`` says so."""
    from animator.backends.speed import torch_compile_mode
    from animator.geometry import intrinsics_from_fov, relative_pose, warp_3d

    # K and the pose are made on the host; warp_3d uploads them without waiting for the GPU
    fov = float(plan.schedules.values["fov"][dst])
    K = intrinsics_from_fov(fov, config.height, config.width)
    dst_from_src = relative_pose(plan.world_from_cam, src, dst).to(torch.float32)
    return warp_3d(
        image,
        depth,
        K,
        dst_from_src,
        sampling=config.motion.sampling,
        fill=config.motion.fill,
        return_depth=return_depth,
        return_grid=return_grid,
        return_image=return_image,
        check_values=False,
        compile_mode=torch_compile_mode(config.backends.compile, image.device),
    )


def homography_between(plan: RenderPlan, config: AnimationConfig, src: int, dst: int) -> np.ndarray:
    """The 2D motion from frame ``src`` to frame ``dst``: the per-frame homographies composed (inverted if
    dst < src)."""
    from animator.geometry import homography_2d

    v = plan.schedules.values
    total = np.eye(3)
    for k in range(min(src, dst) + 1, max(src, dst) + 1):
        perspective = None
        if config.motion.perspective_flip:
            perspective = tuple(float(v[f"perspective_flip_{p}"][k]) for p in ("theta", "phi", "gamma", "fv"))
        step = homography_2d(
            float(v["angle"][k]),
            float(v["zoom"][k]),
            float(v["translation_x"][k]),
            float(v["translation_y"][k]),
            float(v["transform_center_x"][k]),
            float(v["transform_center_y"][k]),
            config.width,
            config.height,
            perspective=perspective,
        )
        total = step @ total
    return total if dst >= src else np.linalg.inv(total)


def move_2d(image, plan: RenderPlan, src: int, dst: int, config: AnimationConfig):
    from animator.backends.speed import torch_compile_mode
    from animator.geometry import warp_2d

    H = homography_between(plan, config, src, dst)  # on the host: warp_2d checks it there and uploads it
    warped, valid = warp_2d(
        image,
        H,
        border=config.motion.border,
        check_values=False,
        compile_mode=torch_compile_mode(config.backends.compile, image.device),
    )
    return warped, valid, None


def move_camera(state: FrameState, plan: RenderPlan, dst: int, config: AnimationConfig, *, with_depth: bool = True):
    """(warped, valid, warped_depth) of ``state``'s frame seen from frame ``dst``'s camera (depth None in 2D mode,
    or when ``with_depth`` is False: tweens need no depth, and filling it costs a third of the warp)."""
    if config.mode == "3d":
        if not with_depth:
            return (*move_3d(state.image, state.depth, plan, state.index, dst, config, return_depth=False), None)
        return move_3d(state.image, state.depth, plan, state.index, dst, config)
    return move_2d(state.image, plan, state.index, dst, config)


# --------------------------------------------------------------------------------------------- one frame


def estimate_depth(image, backends: Backends, params: FrameParams, reference=None):
    """z of ``image``, aligned to the previous frame's warped depth so surfaces keep their depth over time."""
    with profiled("model:depth"):
        disparity = backends.depth(image)
    warped_depth, valid = reference if reference is not None else (None, None)
    return backends.tracker(
        disparity,
        reference_depth=warped_depth,
        reference_valid=valid,
        near=params.values["near"],
        far=params.values["far"],
    )


def _color_reference(image, config: AnimationConfig):
    from animator.color import ColorReference

    return ColorReference(image, space=config.coherence.color)


def take_first_frame_as_color_reference(state: FrameState, config: AnimationConfig, backends: Backends) -> None:
    """With ``coherence.reference: first``, every frame's colours are matched to the render's first frame (its
    latents' statistics, with latent feedback)."""
    if config.coherence.reference != "first" or config.coherence.color == "none":
        return
    if backends.color_reference is None:
        backends.color_reference = _color_reference(state.image, config)
    if backends.latent_reference is None and state.latents is not None:
        from animator.latents import LatentStatistics

        backends.latent_reference = LatentStatistics.of(state.latents)


def prepare_init(
    warped,
    params: FrameParams,
    config: AnimationConfig,
    backends: Backends,
    generator,
    reference=None,
    *,
    match_colors: bool = True,
):
    """Colour coherence, anti-blur, contrast and noise on the warped frame: what the denoiser starts from."""
    from animator.backends.speed import torch_compile_mode
    from animator.color import add_noise, adjust_contrast, match_color, unsharp_mask

    v, g = params.values, config.generation
    image = warped
    reference = reference if reference is not None else backends.color_reference
    if match_colors and config.coherence.color != "none" and reference is not None and v["color_strength"] > 0:
        image = match_color(
            image,
            reference,
            space=config.coherence.color,
            strength=v["color_strength"],
            compile_mode=torch_compile_mode(config.backends.compile, image.device),
        )
    if v["sharpen_amount"] > 0:
        image = unsharp_mask(image, v["sharpen_amount"], sigma=g.sharpen_sigma, threshold=g.sharpen_threshold)
    if v["contrast"] != 1.0:
        image = adjust_contrast(image, v["contrast"])
    # Noise feeds the diffusion model something to turn into detail; without a denoiser it would only accumulate.
    if backends.diffuses and v["noise"] > 0:
        image = add_noise(
            image,
            v["noise"],
            generator=generator,
            kind=g.noise_type,
            octaves=g.perlin_octaves,
            persistence=g.perlin_persistence,
        )
    return image


def sampling_settings(params: FrameParams, generator) -> dict[str, Any]:
    """The denoiser's keyword arguments for frame ``params`` (all but strength and the mask): negative prompt,
    guidance, steps, generator, sampler."""
    v = params.values
    return {
        "negative": params.prompt.negative,
        "guidance": v["cfg"],
        "steps": max(int(round(v["steps"])), 1),
        "generator": generator,
        "sampler": params.sampler,
    }


def img2img_strength(params: FrameParams) -> float:
    """generation.strength has Deforum's meaning: the share of the previous frame that is kept. The denoiser takes
    the img2img (diffusers) strength: how much is repainted."""
    return 1.0 - params.values["strength"]


def denoise(init, params: FrameParams, backends: Backends, generator, full_denoise_mask=None):
    if not backends.diffuses:
        return init
    return backends.denoiser.img2img(
        init,
        params.prompt.mix,
        strength=img2img_strength(params),
        full_denoise_mask=full_denoise_mask,
        **sampling_settings(params, generator),
    )


def frame_generator(params: FrameParams, device: torch.device) -> torch.Generator:
    """All randomness of a frame comes from its own seed: same file + seed, same frames (and resumes)."""
    return torch.Generator(device=device).manual_seed(int(params.seed))


def advance(
    state: FrameState,
    dst: int,
    plan: RenderPlan,
    config: AnimationConfig,
    backends: Backends,
    timer: StageTimer,
    raw: torch.Tensor | None = None,
    hybrid_raw: torch.Tensor | None = None,
) -> FrameState:
    """Makes diffused frame ``dst`` from the diffused frame in ``state``."""
    if backends.latent_feedback:
        return advance_in_latents(state, dst, plan, config, backends, timer)
    params = plan.params(dst)
    generator = frame_generator(params, backends.device)
    reference = None
    with timer("warp"):
        if config.mode == "video":
            warped, full_denoise_mask = stylize_from_video(state, raw, params, backends, config)
            reference = _color_reference(raw, config) if config.coherence.reference == "video" else None
            warped_depth = valid = None
        else:
            warped, valid, warped_depth = move_camera(state, plan, dst, config)
            full_denoise_mask = (~valid).float() if config.generation.holes == "repaint" else None
        if config.generation.holes == "fill":  # holes stay as motion.fill / the flow warp filled them
            full_denoise_mask = None
        if hybrid_raw is not None:
            warped = follow_hybrid_video(warped, state.hybrid_raw, hybrid_raw, config, backends)
    alpha = params.values["composite_alpha"] if hybrid_raw is not None else 0.0
    with timer("coherence"):
        # Colour matching counters drift; a warp-only render with no contrast or sharpening has none to counter
        # (it only moves pixels), and matching would shift the palette as the view's content changes.
        match_colors = backends.diffuses or config.mode == "video" or plan.recolours()
        init = prepare_init(warped, params, config, backends, generator, reference, match_colors=match_colors)
        if alpha > 0 and config.hybrid.before_generation:
            init = init * (1 - alpha) + hybrid_raw * alpha
    with timer("denoise"):
        image = denoise(init, params, backends, generator, full_denoise_mask)
        if alpha > 0 and not config.hybrid.before_generation:
            image = image * (1 - alpha) + hybrid_raw * alpha
        image = quantize(image)
    depth, depth_age = None, 0
    if config.mode == "3d":
        with timer("depth"):
            depth, depth_age = next_depth(image, state, dst, warped_depth, valid, params, config, backends)
    return FrameState(index=dst, image=image, depth=depth, depth_age=depth_age, raw=raw, hybrid_raw=hybrid_raw)


def advance_in_latents(
    state: FrameState, dst: int, plan: RenderPlan, config: AnimationConfig, backends: Backends, timer: StageTimer
) -> FrameState:
    """:func:`advance` with latent feedback: the previous frame's latents follow the camera (no VAE encode), get
    colour coherence and noise as latents, are denoised, and decoded once for the video and the depth model."""
    params = plan.params(dst)
    generator = frame_generator(params, backends.device)
    with timer("warp"):
        latents, revealed, valid, warped_depth = move_latents(state, plan, dst, config)
        full_denoise_mask = revealed.float() if config.generation.holes == "repaint" else None
    with timer("coherence"):
        init = prepare_init_latents(latents, params, config, backends, generator)
    with timer("denoise"):
        latents = backends.denoiser.img2img_latents(
            init,
            params.prompt.mix,
            strength=img2img_strength(params),
            full_denoise_mask=full_denoise_mask,
            **sampling_settings(params, generator),
        )
        image = quantize(backends.denoiser.decode(latents))
    depth, depth_age = None, 0
    if config.mode == "3d":
        with timer("depth"):
            depth, depth_age = next_depth(image, state, dst, warped_depth, valid, params, config, backends)
    return FrameState(index=dst, image=image, depth=depth, depth_age=depth_age, latents=latents)


def move_latents(state: FrameState, plan: RenderPlan, dst: int, config: AnimationConfig):
    """(latents, revealed, valid, warped_depth): ``state``'s latents seen from frame ``dst``'s camera, the latent
    pixels the move revealed (Bx1xhxw bool), and in 3D the pixel-resolution valid mask and depth the depth tracker
    and the carried depth need. 3D moves the latents along the exact warp's own sampling grid (see
    :mod:`animator.latents`)."""
    from animator import compiling
    from animator.backends.speed import torch_compile_mode
    from animator.geometry import warp_2d
    from animator.latents import LATENT_SAMPLING, homography_at_latents, latent_factor, latents_along_grid

    factor = latent_factor((config.height, config.width), state.latents)
    compile_mode = torch_compile_mode(config.backends.compile, state.latents.device)
    if config.mode == "2d":
        H = homography_at_latents(homography_between(plan, config, state.index, dst), factor)
        latents, latent_valid = warp_2d(
            state.latents.float(),
            H,
            border=config.motion.border,
            check_values=False,
            sampling=LATENT_SAMPLING,
            bounded=False,
            compile_mode=compile_mode,
        )
        return latents, ~latent_valid, None, None
    _, valid, warped_depth, grid = move_3d(
        state.image, state.depth, plan, state.index, dst, config, return_grid=True, return_image=False
    )  # the latents follow the grid: no pixels needed
    latents, revealed = compiling.call(
        latents_along_grid, compile_mode, state.latents, grid, valid, factor, config.motion.fill
    )
    return latents, revealed, valid, warped_depth


def prepare_init_latents(latents, params: FrameParams, config: AnimationConfig, backends: Backends, generator):
    """Latent feedback's :func:`prepare_init`: colour coherence as latent statistics, then noise."""
    from animator.latents import add_latent_noise, match_latent_statistics

    v, g = params.values, config.generation
    reference = backends.latent_reference
    if config.coherence.color != "none" and reference is not None and v["color_strength"] > 0:
        latents = match_latent_statistics(latents, reference.to(latents.device), strength=v["color_strength"])
    return add_latent_noise(
        latents,
        v["noise"],
        generator=generator,
        kind=g.noise_type,
        octaves=g.perlin_octaves,
        persistence=g.perlin_persistence,
    )


def next_depth(
    image,
    state: FrameState,
    dst: int,
    warped_depth,
    valid,
    params: FrameParams,
    config: AnimationConfig,
    backends: Backends,
):
    """Depth of a new diffused frame: estimated, or the previous depth carried along the warp.

    Without a denoiser the picture is only moved, so the warped depth *is* its depth (re-estimating would only
    add the model's noise); with one, the model looks again every ``backends.depth_every`` frames and the warped
    depth is carried in between.
    """
    age = state.depth_age + (dst - state.index)
    if not backends.diffuses or age < config.backends.depth_every:
        return warped_depth, age
    return estimate_depth(image, backends, params, reference=(warped_depth, valid)), 0


def follow_hybrid_video(warped, hybrid_prev, hybrid_cur, config: AnimationConfig, backends: Backends):
    """Hybrid motion: the camera motion of the hybrid video between its two frames, applied to our frame."""
    from animator.backends.flow.video_input import estimate_camera_motion

    if config.hybrid.motion == "none" or hybrid_prev is None:
        return warped
    motion = estimate_camera_motion(hybrid_prev, hybrid_cur, method=config.hybrid.motion, estimator=backends.flow)
    return motion.apply(warped)


@dataclass(frozen=True)
class SegmentFlow:
    """For flow-guided cadence: the previous diffused frame seen from the next one's camera, and the optical flow
    that remains between them (what the denoiser moved, beyond the camera), both ways."""

    prev_at_next: torch.Tensor
    forward: torch.Tensor  # prev_at_next(x) ~ next(x + forward(x))
    backward: torch.Tensor


def segment_flow(
    prev: FrameState, nxt: FrameState, plan: RenderPlan, config: AnimationConfig, backends: Backends
) -> SegmentFlow:
    prev_at_next, _, _ = move_camera(prev, plan, nxt.index, config, with_depth=False)
    return SegmentFlow(prev_at_next, backends.flow(prev_at_next, nxt.image), backends.flow(nxt.image, prev_at_next))


def tween(
    prev: FrameState,
    nxt: FrameState,
    index: int,
    plan: RenderPlan,
    config: AnimationConfig,
    residual: SegmentFlow | None = None,
    fade: bool = True,
) -> torch.Tensor:
    """A cadence in-between: both diffused neighbours warped to frame ``index``'s camera and blended by position.

    Where only one neighbour sees a pixel, that one is used; the blend weight moves linearly from the previous
    frame to the next, so motion is continuous and the next diffused frame fades in instead of popping. With
    ``residual`` (flow-guided cadence) the content first slides along the optical flow between the two diffused
    frames, by the tween's position, and is then moved with the camera. ``fade=False`` (warp-only renders, where both
    neighbours show the same picture) is the previous frame alone, its holes filled as ``motion.fill`` says.
    """
    from animator.geometry.flow import flow_tween

    w = (index - prev.index) / (nxt.index - prev.index)
    if not fade:  # warp-only: the previous anchor seen from here, holes filled by motion.fill (as the anchors are)
        if config.mode == "3d" and prev.image.device.type == "cpu" and config.motion.fill != "telea":
            # On the CPU the anchor's 8-bit frame is warped by OpenCV straight to the 8-bit tween: a third of the
            # float warp's sampling cost, and no rounding pass (within a level of the float path). The anchor's
            # image is quantised, so its 8-bit frame is exact, emitted or (after a resume) made here once.
            if prev.frame is None:
                prev.frame = to_uint8(prev.image)
            as_uint8 = torch.from_numpy(prev.frame).permute(2, 0, 1)[None]
            return move_camera(replace(prev, image=as_uint8), plan, index, config, with_depth=False)[0]
        return quantize(move_camera(prev, plan, index, config, with_depth=False)[0])
    from_prev, valid_prev, _ = move_camera(prev, plan, index, config, with_depth=False)
    from_next, valid_next, _ = move_camera(nxt, plan, index, config, with_depth=False)
    weight_next = torch.where(
        valid_prev & valid_next,
        torch.full_like(valid_prev, w, dtype=from_prev.dtype),
        (valid_next & ~valid_prev).to(from_prev.dtype),
    )
    weight_next = torch.where(~valid_prev & ~valid_next, torch.full_like(weight_next, w), weight_next)
    blend = from_prev * (1 - weight_next) + from_next * weight_next
    if residual is not None:
        slid = flow_tween(residual.prev_at_next, nxt.image, residual.forward, residual.backward, w)
        slid_here, valid_slid, _ = move_camera(replace(nxt, image=slid), plan, index, config, with_depth=False)
        blend = torch.where(valid_slid, slid_here, blend)
    return quantize(blend)


def stylize_from_video(
    state: FrameState, raw: torch.Tensor, params: FrameParams, backends: Backends, config: AnimationConfig
):
    """Video-input init: the previous output carried along the input video's flow, blended with the raw frame."""
    from animator.backends.flow.video_input import stylize_init

    return stylize_init(state.image, state.raw, raw, estimator=backends.flow, flow_blend=params.values["flow_blend"])


def first_frame(
    plan: RenderPlan,
    config: AnimationConfig,
    backends: Backends,
    start: int,
    raw: torch.Tensor | None,
    timer: StageTimer,
) -> FrameState:
    """The init image (or input video frame), diffused once when a model is set; txt2img when there is no image."""
    params = plan.params(start)
    generator = frame_generator(params, backends.device)
    latents = None
    with timer("denoise"):
        if raw is not None:
            image = denoise(raw, params, backends, generator)
        elif config.init_image is not None:
            init = load_image_tensor(config.init_image, config, backends.device)
            if backends.latent_feedback:
                image, latents = denoise_to_latents(init, params, backends, generator)
            else:
                image = denoise(init, params, backends, generator)
        elif backends.diffuses:
            size = {"height": config.height, "width": config.width}
            if backends.latent_feedback:
                latents = backends.denoiser.txt2img_latents(
                    params.prompt.mix, **size, **sampling_settings(params, generator)
                )
                image = backends.denoiser.decode(latents)
            else:
                image = backends.denoiser.txt2img(params.prompt.mix, **size, **sampling_settings(params, generator))
        else:
            raise AnimatorError(
                "there is nothing to start from: no init_image and no diffusion model",
                field="init_image",
                file=config.path,
                hint="set init_image in the keyframe file, or give --model",
            )
    image = quantize(image.to(backends.device, torch.float32))
    depth = None
    if config.mode == "3d":
        with timer("depth"):
            depth = estimate_depth(image, backends, params)
    return FrameState(index=start, image=image, depth=depth, raw=raw, latents=latents)


def denoise_to_latents(image, params: FrameParams, backends: Backends, generator):
    """(image, latents) of the first frame with latent feedback: the init image encoded once and denoised (at
    strength 0 the image stays as it is and its latents are the encoded ones)."""
    strength = img2img_strength(params)
    latents = backends.denoiser.img2img_latents(
        backends.denoiser.encode(image), params.prompt.mix, strength=strength, **sampling_settings(params, generator)
    )
    return (image if strength <= 0 else backends.denoiser.decode(latents)), latents


# --------------------------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Emitted:
    index: int
    image: np.ndarray  # (H,W,3) uint8
    diffused: bool
    seed: int
    timings_ms: dict[str, float]
    checkpoint: dict[str, Any] | None  # the loop state after this frame, on diffused frames


CHECKPOINT_EVERY_S = 2.0


def frame_loop(
    plan: RenderPlan,
    config: AnimationConfig,
    backends: Backends,
    *,
    start: int,
    stop: int,
    resume_state: FrameState | None = None,
    profile: bool = False,
    checkpoint_every_s: float | None = None,
) -> Iterator[Emitted]:
    """Yields frames ``start .. stop-1`` in order (from ``resume_state`` when resuming, else from the init).

    Every frame's copy to the host is started, then the next piece of work is queued (the next diffused frame
    after a diffused one, the next in-between after an in-between), and only then is the copy waited for and the
    frame yielded: making a frame never waits for the device, so on a GPU the next frame computes while the host
    copies this one out and the encoder takes it.

    A diffused frame carries a checkpoint (the loop state to resume from) when ``checkpoint_every_s`` (default
    :data:`CHECKPOINT_EVERY_S`) seconds have passed since the last one, and the first diffused frame always does.
    Fast renders would otherwise copy the depth to the host and pickle it for every frame; a resume re-renders the
    few frames after the checkpoint, to the same pixels.
    """
    if checkpoint_every_s is None:
        checkpoint_every_s = CHECKPOINT_EVERY_S
    timer = StageTimer(backends.device, sync=profile)
    video = InputVideo.for_video_input(config, backends.device) if config.mode == "video" else None
    hybrid = InputVideo.for_hybrid(config, backends.device) if config.hybrid is not None else None
    last_checkpoint = [-float("inf")]

    def emit(state_or_image, index: int, diffused: bool, copy: HostCopy) -> Emitted:
        with timer("to_host"):
            frame = copy.result()
        checkpoint = None
        if isinstance(state_or_image, FrameState):
            state_or_image.frame = frame
            now = time.perf_counter()
            if now - last_checkpoint[0] >= checkpoint_every_s:
                last_checkpoint[0] = now
                checkpoint = state_or_image.to_checkpoint(frame)
                if backends.tracker is not None:  # as it was after this frame: the next one is made already
                    checkpoint["tracker"] = backends.tracker.state_dict(state_or_image.tracker)
                if backends.latent_reference is not None:
                    reference = backends.latent_reference
                    checkpoint["latent_reference"] = {"mean": reference.mean.cpu(), "std": reference.std.cpu()}
        # the stages run since the last event: in time order, so that they add up to the time between events
        return Emitted(index, frame, diffused, int(plan.seeds[index]), timer.take(), checkpoint)

    # Frames whose copy to the host has started, oldest first: a copy waits, in the device's order, for all work
    # queued before it, so it is started before the next frame is queued and waited for (hand_on) only after.
    started: list[tuple[FrameState | torch.Tensor, int, bool, HostCopy]] = []

    def start_copy(frame: FrameState | torch.Tensor, index: int, diffused: bool) -> None:
        with timer("to_host"):
            started.append((frame, index, diffused, HostCopy(frame.image if isinstance(frame, FrameState) else frame)))

    def hand_on(keep: int = 0) -> Iterator[Emitted]:
        while len(started) > keep:
            yield emit(*started.pop(0))

    if resume_state is None:
        state = first_frame(plan, config, backends, start, video.frame(start) if video else None, timer)
        state.hybrid_raw = hybrid.frame(start) if hybrid else None
        take_first_frame_as_color_reference(state, config, backends)
        state.tracker = backends.tracker.snapshot() if backends.tracker is not None else None
        unsent = state
    else:
        state, unsent = resume_state, None  # the resumed-from frame is in the video already
    for k0, k1 in plan.segments(state.index, stop):
        if unsent is not None:
            start_copy(unsent, k0, True)
        nxt = advance(
            state,
            k1,
            plan,
            config,
            backends,
            timer,
            raw=video.frame(k1) if video else None,
            hybrid_raw=hybrid.frame(k1) if hybrid else None,
        )
        nxt.tracker = backends.tracker.snapshot() if backends.tracker is not None else None
        yield from hand_on()  # frame k0 (and the last in-between before it) while frame k1 computes
        residual = None
        if config.motion.cadence_flow and k1 - k0 > 1:
            with timer("flow"):
                residual = segment_flow(state, nxt, plan, config, backends)
        for index in range(k0 + 1, k1):
            with timer("tween"):
                image = tween(state, nxt, index, plan, config, residual, fade=backends.diffuses)
            start_copy(image, index, False)
            yield from hand_on(keep=1)  # the in-between before this one, while this one computes
        state = unsent = nxt
    if unsent is not None:
        start_copy(unsent, unsent.index, True)
    yield from hand_on()


class InputVideo:
    """Frames of an input video (every n-th, from/to) as tensors at the render size, read once, in order."""

    def __init__(
        self,
        path,
        config: AnimationConfig,
        device: torch.device,
        *,
        every_nth: int = 1,
        start: int = 0,
        end: int | None = None,
        field: str = "video_input.path",
    ) -> None:
        from animator.video import read_frames

        self._frames = read_frames(path, every_nth=every_nth, start=start, end=end, size=(config.width, config.height))
        self._device = device
        self._index = -1
        self._current = None
        self._field = field

    @classmethod
    def for_video_input(cls, config: AnimationConfig, device: torch.device) -> InputVideo:
        vi = config.video_input
        return cls(vi.path, config, device, every_nth=vi.every_nth, start=vi.from_frame, end=vi.to_frame)

    @classmethod
    def for_hybrid(cls, config: AnimationConfig, device: torch.device) -> InputVideo:
        return cls(config.hybrid.path, config, device, field="hybrid.path")

    def frame(self, index: int) -> torch.Tensor:
        while self._index < index:
            try:
                self._current = next(self._frames)
            except StopIteration:
                raise AnimatorError(
                    f"the input video has no frame {index} (after every_nth/from/to)",
                    field=self._field,
                    hint="lower `frames`, or use a longer video",
                ) from None
            self._index += 1
        return to_tensor(self._current, self._device)


# --------------------------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class RenderResult:
    output: Path | None
    run_dir: Path | None
    frames: int
    stats: dict[str, Any]


def _load(config_or_path, overrides: dict | None, base_dir: str | None = None) -> AnimationConfig:
    from animator.keyframes import config_from_dict, load_config

    if isinstance(config_or_path, (str, os.PathLike)):
        return load_config(config_or_path, overrides=overrides, base_dir=base_dir)
    if isinstance(config_or_path, dict):
        return config_from_dict(config_or_path, source="<dict>", overrides=overrides)
    if overrides:  # a loaded config: re-read its own text with the overrides applied, so they are validated too
        if config_or_path.path is not None:
            return load_config(config_or_path.path, overrides=overrides)
        raise AnimatorError(
            "overrides need a keyframe file path or a dict, not a config built in memory",
            field="overrides",
            hint="pass the dict or the path instead",
        )
    return config_or_path


def prepare(
    config_or_path,
    *,
    overrides: dict | None = None,
    base_seed: int | None = None,
    base_dir: str | None = None,
    resuming: bool = False,
):
    """Config and plan for a render (shared by render, render_frames, the notebook preview and benchmarks), after
    checking that it can start (:func:`_check_startable`). ``base_dir``: the folder relative paths of a keyframe file
    resolve against (default: the file's own); ``resuming``: for a resumed run."""
    from animator.keyframes import evaluate

    config = _load(config_or_path, overrides, base_dir)
    _check_startable(config, resuming=resuming)
    schedules = evaluate(config)
    plan = make_plan(config, schedules, base_seed=base_seed)
    return config, plan


def _paths_relative_to(record: dict) -> str | None:
    """The folder a resumed run's keyframe file resolves relative paths against: recorded at the start (run folders
    from before it was recorded: the original file's folder)."""
    if record.get("base_dir"):
        return record["base_dir"]
    source = record.get("source")
    return str(Path(source).resolve().parent) if source and source != "None" else None


def _check_startable(config: AnimationConfig, *, resuming: bool = False) -> None:
    """What would stop the render part-way (the first frame, the soundtrack at the end), found before any model loads
    or a run folder is made: files the render will read that are not there, and nothing to start from. A resumed
    render starts from its checkpoint: it needs no init image."""
    from animator.keyframes.config import line_of, starts_from_nothing

    for field_name, path in _files_the_render_reads(config):
        if resuming and field_name == "init_image":
            continue
        if not Path(path).is_file():
            raise AnimatorError(
                f"no such file: {path}",
                file=config.path,
                line=line_of(config, field_name),
                field=field_name,
                hint="check the path (relative paths are relative to the keyframe file)",
            )
    if resuming:
        return
    if starts_from_nothing(config):
        raise AnimatorError(
            "there is nothing to start from: no init_image and no diffusion model",
            file=config.path,
            field="init_image",
            hint="set init_image in the keyframe file, or give --model",
        )


def _files_the_render_reads(config: AnimationConfig) -> Iterator[tuple[str, Path]]:
    from animator.keyframes.evaluate import uses_audio

    if config.mode == "video":
        yield "video_input.path", config.video_input.path
    elif config.init_image is not None:
        yield "init_image", config.init_image
    if config.coherence.color != "none" and config.coherence.reference == "image" and config.coherence.image:
        yield "coherence.image", config.coherence.image
    if config.hybrid is not None:
        yield "hybrid.path", config.hybrid.path
    if config.audio is not None:
        analysed = uses_audio(config)
        if analysed or config.output.audio:
            yield "audio.path", config.audio.path
        if analysed:
            yield from ((f"audio.stems.{name}", stem) for name, stem in config.audio.stems.items())


def render_frames(
    config_or_path,
    *,
    overrides: dict | None = None,
    frames: range | int | None = None,
    callbacks: Sequence[RenderCallback] = (),
) -> Iterator[FrameRendered]:
    """Renders in memory and yields a :class:`FrameRendered` event per frame (no video, no run folder).

    The same loop as :func:`render`; the notebook preview and tests use it.
    """
    config, plan = prepare(config_or_path, overrides=overrides)
    start, stop = frame_span(frames, plan.frames)  # before minutes of loading models
    backends = load_backends(config)
    _notify(
        callbacks,
        RenderStarted(
            total_frames=stop - start,
            first_frame=start,
            width=config.width,
            height=config.height,
            fps=config.fps,
            run_dir=None,
            notes=tuple(backends.notes),
        ),
    )
    clock = _Clock(stop - start)
    for emitted in frame_loop(plan, config, backends, start=start, stop=stop):
        event = clock.event(emitted, plan.frames)
        _notify(callbacks, event)
        yield event
    _notify(callbacks, RenderFinished(output=None, frames=clock.done, elapsed_s=clock.elapsed(), run_dir=None))


def render(
    config_or_path=None,
    output: str | os.PathLike | None = None,
    *,
    overrides: dict | None = None,
    frames: range | int | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[RenderCallback] = (),
    frames_dir: str | os.PathLike | None = None,
    metrics: bool = True,
    profile: bool = False,
) -> RenderResult:
    """Renders a keyframe file to a video. ``animator render`` on the command line calls exactly this.

    Args:
        config_or_path: a keyframe file path, a loaded config, or a dict in the keyframe-file layout (None with
            ``resume``).
        output: the video to write (default: ``output.path`` of the file, else ``<file stem>.mp4``).
        overrides: dotted keyframe-file fields to replace, e.g. ``{"backends.denoise": "stabilityai/sd-turbo"}``.
        frames: render only this range of frame indices (an int N: the first N frames).
        run_dir: the run folder (default ``runs/<stem>-<time>``).
        resume: a run folder of an interrupted render: continue from its last complete frame.
        callbacks: called with every :mod:`animator.events` event (progress bars, live previews).
        frames_dir: also keep every frame as PNG there.
        metrics: compute the flicker metric of the result into the run folder.
        profile: synchronise CUDA around stages so per-stage timings are exact (slower).
    """
    from animator.run_folder import JOURNAL_FORMAT, RunFolder, default_run_dir
    from animator.video import EncodeSettings, VideoWriter, export_gif, mux_audio

    if config_or_path is None and resume is None:
        raise AnimatorError(
            "give a keyframe file (or config) to render, or resume=<run folder>",
            hint='animator.render("keyframes/demo.yaml", "demo.mp4")',
        )
    callbacks = list(callbacks) + _notebook_callbacks(callbacks)
    if resume is not None:
        folder = RunFolder(resume)
        record = folder.record()
        if record.get("status") == "complete":
            raise AnimatorError(f"the run in {folder.path} is already complete: {record['output']}", field="--resume")
        config, plan = prepare(
            folder.keyframes_path(),
            overrides=record.get("overrides"),
            base_seed=record["seed"],
            base_dir=_paths_relative_to(record),
            resuming=True,
        )
        output = Path(record["output"])
        start, stop = record["start"], record["stop"]
        frames_dir = record.get("frames_dir")
        backends = load_backends(config)
    else:
        config, plan = prepare(config_or_path, overrides=overrides)
        start, stop = frame_span(frames, plan.frames)
        output = Path(output or config.output.path or f"{Path(config.path or 'render').stem}.mp4")
        folder = RunFolder(run_dir or default_run_dir(config.path))
        folder.check_free()
        backends = load_backends(config)  # before the folder is made: a model that cannot load leaves none behind
        folder.create(
            source_text=config.source_text,
            source_name=str(config.path or "keyframes.yaml"),
            record={
                "source": str(config.path),
                "overrides": overrides or {},
                "output": str(output.resolve()),
                "start": start,
                "stop": stop,
                "seed": int(plan.seeds[0]) if config.seed == -1 else config.seed,
                "frames_dir": str(frames_dir)
                if frames_dir
                else (config.output.frames_dir and str(config.output.frames_dir)),
                # the folder the file's relative paths (init image, audio, video) resolve against, for --resume: the
                # run folder holds a copy of the file, somewhere else
                "base_dir": str((Path(config.path).parent if config.path else Path.cwd()).resolve()),
                "versions": _versions(),
            },
        )
        folder.write_table("schedules.csv", plan.schedules.values)
        folder.write_table("seeds.csv", {"seed": plan.seeds})
    folder.update({"backends": backends.describe()})

    resume_state = _restore(folder, config, backends) if resume is not None else None
    out = config.output
    writer = VideoWriter(
        output,
        width=config.width,
        height=config.height,
        fps=config.fps,
        settings=EncodeSettings(codec=out.codec, crf=out.crf, preset=out.preset, pix_fmt=out.pix_fmt),
        frames_dir=folder.journal,
        first_index=start,
        frame_format=JOURNAL_FORMAT,
    )
    first = start if resume_state is None else resume_state.index + 1
    _notify(
        callbacks,
        RenderStarted(
            total_frames=stop - first,
            first_frame=first,
            width=config.width,
            height=config.height,
            fps=config.fps,
            run_dir=folder.path,
            notes=tuple(backends.notes),
        ),
    )
    clock = _Clock(stop - first)
    stage_totals: dict[str, float] = {}
    try:
        if resume_state is not None:  # the frames already finished go into the new video from the lossless journal
            for index in range(start, resume_state.index + 1):
                writer.write(folder.journal_frame(index))
        with _cores_left_for_encoding(backends):
            for emitted in frame_loop(
                plan, config, backends, start=start, stop=stop, resume_state=resume_state, profile=profile
            ):
                checkpoint = emitted.checkpoint
                writer.write(
                    emitted.image, after=(lambda c=checkpoint: folder.save_checkpoint(c)) if checkpoint else None
                )
                for stage, ms in emitted.timings_ms.items():
                    stage_totals[stage] = stage_totals.get(stage, 0.0) + ms
                _notify(callbacks, clock.event(emitted, plan.frames))
        writer.close()
    except BaseException:
        writer.abort()
        folder.update({"status": "interrupted"})
        raise
    _add_soundtrack(config, output, start, mux_audio)
    if config.output.gif:
        export_gif(output, output.with_suffix(".gif"), fps=min(config.fps, 25))
    stats = {
        "frames": clock.done,
        "elapsed_s": clock.elapsed(),
        "fps": clock.done / max(clock.elapsed(), 1e-9),
        "ms_per_frame_by_stage": {k: v / max(clock.done, 1) for k, v in stage_totals.items()},
    }
    if metrics:
        try:
            stats["flicker"] = _flicker(
                folder, lambda done, total: _notify(callbacks, MetricProgress("flicker", done, total))
            )
        except KeyboardInterrupt:  # the video is complete: Ctrl-C while it is measured skips only the metric
            stats["flicker"] = {"skipped": "interrupted"}
    folder.finish(keep_frames_in=Path(frames_dir) if frames_dir else None, stats=stats)
    result = RenderResult(output=output, run_dir=folder.path, frames=clock.done, stats=stats)
    _notify(
        callbacks,
        RenderFinished(
            output=output,
            frames=clock.done,
            elapsed_s=clock.elapsed(),
            run_dir=folder.path,
            stats={k: v for k, v in stats.items() if isinstance(v, (int, float))},
        ),
    )
    return result


# --------------------------------------------------------------------------------------------- helpers of render()


@contextmanager
def _cores_left_for_encoding(backends: Backends) -> Iterator[None]:
    """A warp-only render on the CPU leaves one core to ffmpeg and the journal writer, which need about as much CPU
    as the warp itself: torch's threads busy-waiting on every core would fight them (on 2 cores the demo runs at
    ~40 frames/s with one torch thread, ~34 with two). Diffusion renders keep every core: there the model is the
    work and the encoder idles."""
    if backends.device.type != "cpu" or backends.diffuses:
        yield
        return
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, min(before, cores - 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Clock:
    """Frames per second and ETA over the frames this run has made."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def event(self, emitted: Emitted, animation_frames: int) -> FrameRendered:
        self.done += 1
        elapsed = self.elapsed()
        fps = self.done / max(elapsed, 1e-9)
        return FrameRendered(
            index=emitted.index,
            total_frames=animation_frames,
            image=emitted.image,
            diffused=emitted.diffused,
            seed=emitted.seed,
            elapsed_s=elapsed,
            fps=fps,
            eta_s=(self.total - self.done) / max(fps, 1e-9),
            timings_ms=emitted.timings_ms,
        )


def _notify(callbacks: Sequence[RenderCallback], event) -> None:
    for callback in callbacks:
        callback(event)


def _notebook_callbacks(given: Sequence[RenderCallback]) -> list[RenderCallback]:
    """Inside Jupyter every render gets a live view, unless the caller already passed one."""
    try:
        from animator.notebook import LiveView, in_notebook
    except ImportError:
        return []
    if in_notebook() and not any(isinstance(c, LiveView) for c in given):
        return [LiveView()]
    return []


def _restore(folder, config: AnimationConfig, backends: Backends) -> FrameState | None:
    checkpoint = folder.load_checkpoint()
    if checkpoint is None:
        return None
    device = backends.device
    state = FrameState(
        index=int(checkpoint["index"]),
        image=to_tensor(checkpoint["image"].numpy(), device),
        depth=None if checkpoint["depth"] is None else checkpoint["depth"].to(device),
        depth_age=int(checkpoint.get("depth_age", 0)),
        latents=None if checkpoint.get("latents") is None else checkpoint["latents"].to(device),
    )
    if backends.latent_feedback and state.latents is None:
        raise AnimatorError(
            f"the checkpoint in {folder.path} holds no latents: it was not rendered with latent feedback",
            field="generation.feedback",
            hint="resume with the settings the run was started with",
        )
    if backends.tracker is not None and checkpoint.get("tracker") is not None:
        backends.tracker.load_state_dict(checkpoint["tracker"])
    if checkpoint.get("latent_reference") is not None:
        from animator.latents import LatentStatistics

        backends.latent_reference = LatentStatistics(**checkpoint["latent_reference"]).to(device)
    if config.mode == "video":
        state.raw = InputVideo.for_video_input(config, device).frame(state.index)
    if config.hybrid is not None:
        state.hybrid_raw = InputVideo.for_hybrid(config, device).frame(state.index)
    first = to_tensor(folder.journal_frame(folder.record()["start"]), device)
    take_first_frame_as_color_reference(FrameState(index=folder.record()["start"], image=first), config, backends)
    return state


def _add_soundtrack(config: AnimationConfig, output: Path, start: int, mux_audio) -> None:
    """The audio of the keyframe file (or of the input video), from the time of the first rendered frame."""
    if not config.output.audio:
        return
    if config.audio is not None:
        mux_audio(output, config.audio.path, offset_s=config.audio.offset + start / config.fps)
    elif config.mode == "video" and config.video_input.keep_audio:
        from animator.video import probe

        source = probe(config.video_input.path)
        if source.has_audio:
            offset = (config.video_input.from_frame + start * config.video_input.every_nth) / (source.fps or config.fps)
            mux_audio(output, source.path, offset_s=offset)


def _flicker(folder, progress: Callable[[int, int], None]) -> dict[str, Any] | None:
    """Flicker metric of the finished frames (read from the lossless journal); ``progress(done, total)`` as it goes."""
    try:
        from animator.metrics import flicker
    except ImportError:
        return None
    pairs = max(folder.journal_frame_count() - 1, 0)
    progress(0, pairs)
    # dis_fast at <= 256 px: scores that compare across render sizes; ~15 ms a frame on two CPU cores
    report = flicker(
        folder.journal_frames(), estimator="dis_fast", max_side=256, progress=lambda done: progress(done, pairs)
    )
    return report.to_dict()


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for name in ("animator", "torch", "diffusers", "transformers", "kornia", "opencv-python-headless", "numpy", "qoi"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return versions


class _CallableModule(types.ModuleType):
    """This module's name is also the package's render function: ``animator.render(...)``. A package attribute
    resolves to the function (``animator.__getattr__``), but code that imports this module first (``from
    animator.render import render_frames``) makes Python bind ``animator.render`` to the module instead, and
    ``animator.render("demo.yaml")`` would then fail depending on import order. Calling the module renders."""

    def __call__(self, *args, **kwargs) -> RenderResult:
        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
