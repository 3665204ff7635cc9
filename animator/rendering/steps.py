"""The per-frame steps both feedbacks share: randomness, the denoiser's settings, depth, colour coherence and the
other touches on the warped frame, hybrid motion. Small functions of the run context and the frame's values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from animator.devices import profiled

if TYPE_CHECKING:
    from animator.color import ColorReference
    from animator.plan import FrameParams
    from animator.rendering.context import RunContext
    from animator.rendering.state import FrameState


def frame_generator(params: FrameParams, device: torch.device) -> torch.Generator:
    """All randomness of a frame comes from its own seed: same file + seed, same frames (and resumes)."""
    return torch.Generator(device=device).manual_seed(int(params.seed))


def img2img_strength(params: FrameParams) -> float:
    """generation.strength has Deforum's meaning: the share of the previous frame that is kept. The denoiser takes
    the img2img (diffusers) strength: how much is repainted."""
    return 1.0 - params.strength


def sampling_settings(params: FrameParams, generator: torch.Generator) -> dict[str, Any]:
    """The denoiser's keyword arguments for frame ``params`` (all but strength and the mask): negative prompt,
    guidance, steps, generator, sampler."""
    return {
        "negative": params.prompt.negative,
        "guidance": params.cfg,
        "steps": params.steps,
        "generator": generator,
        "sampler": params.sampler,
    }


def denoise(ctx: RunContext, init: torch.Tensor, params: FrameParams, generator, full_denoise_mask=None, control=None):
    """img2img of ``init`` at the frame's strength (``init`` itself in a warp-only render); ``control`` the frame's
    ControlNet inputs (rendering/control.py)."""
    if not ctx.models.diffuses:
        return init
    return ctx.models.denoiser.img2img(
        init,
        params.prompt.mix,
        strength=img2img_strength(params),
        full_denoise_mask=full_denoise_mask,
        control=control,
        **sampling_settings(params, generator),
    )


def prepare_init(
    ctx: RunContext,
    warped: torch.Tensor,
    params: FrameParams,
    generator,
    reference: ColorReference | None = None,
    *,
    match_colors: bool = True,
) -> torch.Tensor:
    """Colour coherence, anti-blur, contrast and noise on the warped frame: what the denoiser starts from."""
    from animator.color import add_noise, adjust_contrast, match_color, unsharp_mask

    coherence, g = ctx.config.coherence, ctx.config.generation
    image = warped
    reference = reference if reference is not None else ctx.run.color_reference
    if match_colors and coherence.color != "none" and reference is not None and params.color_strength > 0:
        image = match_color(
            image, reference, space=coherence.color, strength=params.color_strength, compile_mode=ctx.compile_mode
        )
    if params.sharpen_amount > 0:
        image = unsharp_mask(image, params.sharpen_amount, sigma=g.sharpen_sigma, threshold=g.sharpen_threshold)
    if params.contrast != 1.0:
        image = adjust_contrast(image, params.contrast)
    # Noise feeds the diffusion model something to turn into detail; without a denoiser it would only accumulate.
    if ctx.models.diffuses and params.noise > 0:
        image = add_noise(
            image,
            params.noise,
            generator=generator,
            kind=g.noise_type,
            octaves=g.perlin_octaves,
            persistence=g.perlin_persistence,
        )
    return image


def prepare_init_latents(ctx: RunContext, latents: torch.Tensor, params: FrameParams, generator) -> torch.Tensor:
    """Latent feedback's :func:`prepare_init`: colour coherence as latent statistics, then noise."""
    from animator.latents import add_latent_noise, match_latent_statistics

    g = ctx.config.generation
    reference = ctx.run.latent_reference
    if ctx.config.coherence.color != "none" and reference is not None and params.color_strength > 0:
        latents = match_latent_statistics(latents, reference.to(latents.device), strength=params.color_strength)
    return add_latent_noise(
        latents,
        params.noise,
        generator=generator,
        kind=g.noise_type,
        octaves=g.perlin_octaves,
        persistence=g.perlin_persistence,
    )


def estimate_depth(ctx: RunContext, image: torch.Tensor, params: FrameParams, reference=None) -> torch.Tensor:
    """z of ``image``, aligned to the previous frame's warped depth so surfaces keep their depth over time."""
    with profiled("model:depth"):
        disparity = ctx.models.depth(image)
    warped_depth, valid = reference if reference is not None else (None, None)
    return ctx.run.tracker(
        disparity, reference_depth=warped_depth, reference_valid=valid, near=params.near, far=params.far
    )


def next_depth(ctx: RunContext, image, state: FrameState, dst: int, warped_depth, valid, params: FrameParams):
    """(depth, age) of a new anchor: estimated, or the previous depth carried along the warp.

    Without a denoiser the picture is only moved, so the warped depth *is* its depth (re-estimating would only
    add the model's noise); with one, the model looks again every ``backends.depth_every`` frames and the warped
    depth is carried in between.
    """
    age = state.depth_age + (dst - state.index)
    if not ctx.models.diffuses or age < ctx.config.backends.depth_every:
        return warped_depth, age
    return estimate_depth(ctx, image, params, reference=(warped_depth, valid)), 0


def follow_hybrid_video(ctx: RunContext, warped, hybrid_prev, hybrid_cur):
    """Hybrid motion: the camera motion of the hybrid video between its two frames, applied to our frame."""
    from animator.backends.flow.video_input import estimate_camera_motion

    if ctx.config.hybrid.motion == "none" or hybrid_prev is None:
        return warped
    motion = estimate_camera_motion(hybrid_prev, hybrid_cur, method=ctx.config.hybrid.motion, estimator=ctx.models.flow)
    return motion.apply(warped)


def stylize_from_video(ctx: RunContext, state: FrameState, input_frame: torch.Tensor, params: FrameParams):
    """Video-input init: the previous output carried along the input video's flow, blended with the input frame."""
    from animator.backends.flow.video_input import stylize_init

    return stylize_init(
        state.image, state.input_frame, input_frame, estimator=ctx.models.flow, flow_blend=params.flow_blend
    )
