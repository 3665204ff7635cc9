"""The models a render runs, loaded once per run and typed by their Protocols.

``keep_loaded_models(True)`` makes a long-lived process (a batch worker) keep the models of its last render and hand
them to the next render that asks for the same ones: loading a diffusion model can cost more than a short render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from animator.backends.denoise import Denoiser
    from animator.backends.depth import DepthEstimator
    from animator.backends.flow import FlowEstimator
    from animator.keyframes import AnimationConfig
    from animator.plan import RenderPlan
    from animator.rendering.control import RunControlNet

NO_DENOISER_NOTE = (
    "denoise: none (warp-only render). Point --model at a diffusers model "
    "(e.g. stabilityai/sd-turbo, a local folder or a .safetensors file) for a diffusion render"
)


@dataclass(frozen=True)
class Models:
    """Loaded once per run; nothing here changes while frames are made (run state lives in :class:`RunState`)."""

    device: torch.device
    denoiser: Denoiser  # the `none` denoiser (identity) in a warp-only render
    diffuses: bool  # False for the `none` denoiser: a warp-only render
    depth: DepthEstimator | None = None  # 3D mode
    flow: FlowEstimator | None = None  # video mode, flow-guided cadence, hybrid optical-flow motion
    controlnets: tuple[RunControlNet, ...] = ()  # the keyframe file's ControlNet units (rendering/control.py)
    notes: tuple[str, ...] = ()  # one-line messages for a newcomer (what would make the render better)

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {}
        for name in ("denoiser", "depth", "flow"):
            backend = getattr(self, name)
            if backend is not None:
                describe = getattr(backend, "describe", None)
                described[name] = describe() if describe else getattr(backend, "name", str(backend))
        if self.controlnets:
            described["controlnet"] = [controlnet.describe() for controlnet in self.controlnets]
        return described


_keep = False
_kept: tuple[tuple, Models] | None = None  # (what decided them, the models) of this process's last render


def keep_loaded_models(keep: bool = True) -> None:
    """Keep the models of each render in this process for the next render that uses the same ones (batch workers).
    ``False`` forgets them."""
    global _keep, _kept
    _keep = keep
    if not keep:
        _kept = None


def load_models(config: AnimationConfig, prompts: Sequence[str] = ()) -> Models:
    """The denoiser, depth and flow models ``config`` asks for, on the device it asks for (kept between renders
    when :func:`keep_loaded_models` is on and the same ones are asked for again). ``prompts``: every text the
    render will encode; the LoRAs and embeddings they name load now, so a missing or unfitting one is an error
    before the first frame."""
    global _kept
    key = _models_key(config)
    if _keep and _kept is not None and _kept[0] == key:
        models = _kept[1]
        models.denoiser.prepare_prompts(prompts)
        return models
    models = _load(config, prompts)
    if _keep:
        _kept = (key, models)
    return models


def _models_key(config: AnimationConfig) -> tuple:
    """What decides which models a render loads."""
    from animator.rendering.control import controlnet_key

    b = config.backends
    return (
        b.device, b.dtype, b.denoise, b.vae, b.model_config, tuple((e.path, e.scale) for e in b.lora), b.sampler,
        b.compile, b.channels_last, b.subpixel_upsample, b.depth, b.depth_resolution, b.flow, config.mode,
        needs_flow(config), controlnet_key(config), b.lora_dirs, b.embedding_dirs,
    )  # fmt: skip


def needs_flow(config: AnimationConfig) -> bool:
    hybrid_flow = config.hybrid is not None and config.hybrid.motion == "optical_flow"
    return config.mode == "video" or config.motion.cadence_flow or hybrid_flow


def prompt_texts(plan: RenderPlan) -> list[str]:
    """Every positive and negative text the plan's frames encode, once each."""
    texts = (text for prompt in plan.schedules.prompts for mix in prompt.mix for text in mix[:2])
    return list(dict.fromkeys(text for text in texts if text))


def _load(config: AnimationConfig, prompts: Sequence[str]) -> Models:
    from animator.backends.denoise import load_denoiser
    from animator.backends.speed import speed_up_controlnets, speed_up_denoiser, speed_up_depth
    from animator.devices import pick_device, pick_dtype
    from animator.rendering.control import control_sources, load_controlnets

    b = config.backends
    sources = control_sources(config)  # a missing control image or extra: an error before any model loads
    device = pick_device(b.device)
    dtype = pick_dtype(device, b.dtype)
    if device.type == "cuda":  # before any model runs: cuDNN picks its algorithms on each shape's first call
        torch.backends.cudnn.benchmark = b.cudnn_benchmark
    lora = tuple((entry.path, entry.scale) for entry in b.lora)
    denoiser = load_denoiser(
        b.denoise, device=device, dtype=dtype, vae=b.vae, model_config=b.model_config, lora=lora, sampler=b.sampler,
        lora_dirs=b.lora_dirs, embedding_dirs=b.embedding_dirs,
    )  # fmt: skip
    denoiser.prepare_prompts(prompts)  # before compiling: a LoRA loaded later would make the UNet trace again
    speed_up_denoiser(denoiser, compile=b.compile, channels_last=b.channels_last, subpixel_upsample=b.subpixel_upsample)
    if hasattr(denoiser, "check_values"):
        denoiser.check_values = False  # every finished frame is checked once (to_uint8): no read-back per input
    diffuses = (b.denoise or "none") != "none"
    notes = [] if diffuses else [NO_DENOISER_NOTE]
    if config.generation.feedback == "latent" and not _takes_latents(denoiser, diffuses):
        notes.append("feedback: latent needs a diffusion model; without one the pixels are warped")
    if b.compile != "none":
        notes.append(
            f"compile: {b.compile} - the first frames wait while the models compile "
            + (
                "(about a minute per model and frame size)"
                if device.type == "cuda"
                else "(on a CPU that can take many minutes and rarely pays off: use compile: none)"
            )
        )
    depth = None
    if config.mode == "3d":
        from animator.backends.depth import load_depth_estimator

        depth = load_depth_estimator(b.depth, device=device, resolution=b.depth_resolution)
        speed_up_depth(depth, compile=b.compile, channels_last=b.channels_last)
        if b.depth == "offline":
            from animator.backends.depth import OFFLINE_NOTE

            notes.append(OFFLINE_NOTE)
    flow = None
    if needs_flow(config):
        from animator.backends.flow import load_flow_estimator

        flow = load_flow_estimator(b.flow, device=device)
    controlnets = load_controlnets(config, denoiser, sources)
    speed_up_controlnets([c.unit for c in controlnets], compile=b.compile, channels_last=b.channels_last)
    return Models(
        device=device, denoiser=denoiser, diffuses=diffuses, depth=depth, flow=flow, notes=tuple(notes),
        controlnets=controlnets,
    )  # fmt: skip


def _takes_latents(denoiser, diffuses: bool) -> bool:
    from animator.backends.denoise.base import LatentDenoiser

    return diffuses and isinstance(denoiser, LatentDenoiser)


def uses_latent_feedback(config: AnimationConfig, models: Models) -> bool:
    """``generation.feedback: latent`` with a denoiser that takes latents (otherwise the pixels are warped)."""
    return config.generation.feedback == "latent" and _takes_latents(models.denoiser, models.diffuses)
