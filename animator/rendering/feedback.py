"""What each anchor frame starts from, chosen once per run: the previous anchor's pixels (:class:`ImageFeedback`) or
its latents (:class:`LatentFeedback`, ``generation.feedback: latent``: no VAE encode per frame). Each strategy makes
the first frame and every next anchor, in numbered steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch

from animator.rendering.camera import homography_between, move_camera, reproject_between
from animator.rendering.control import first_frame_control, next_frame_control
from animator.rendering.run_state import color_reference
from animator.rendering.state import FrameState
from animator.rendering.steps import (
    denoise,
    estimate_depth,
    follow_hybrid_video,
    frame_generator,
    img2img_strength,
    next_depth,
    prepare_init,
    prepare_init_latents,
    sampling_settings,
    stylize_from_video,
)
from animator.rendering.tensors import load_image_tensor, quantize

if TYPE_CHECKING:
    from animator.plan import FrameParams
    from animator.rendering.context import RunContext


class Feedback(Protocol):
    def first_frame(self, ctx: RunContext, start: int, input_frame: torch.Tensor | None) -> FrameState:
        """The init image, input video frame or txt2img result, diffused once when there is a model."""
        ...

    def next_frame(
        self,
        ctx: RunContext,
        state: FrameState,
        dst: int,
        input_frame: torch.Tensor | None,
        hybrid_frame: torch.Tensor | None,
    ) -> FrameState:
        """Anchor ``dst`` made from the anchor in ``state``."""
        ...


def choose_feedback(ctx: RunContext) -> Feedback:
    return LatentFeedback() if ctx.latent_feedback else ImageFeedback()


class ImageFeedback:
    """Anchors start from the previous anchor's pixels: moved with the camera (or along the input video's flow),
    colour-matched and touched up, then denoised (the denoiser encodes them)."""

    def first_frame(self, ctx: RunContext, start: int, input_frame: torch.Tensor | None) -> FrameState:
        params = ctx.plan.params(start)
        generator = frame_generator(params, ctx.device)
        with ctx.timer("denoise"):
            if input_frame is not None:
                control = first_frame_control(ctx, start, input_frame)
                image = denoise(ctx, input_frame, params, generator, control=control)
            elif ctx.config.init_image is not None:
                init = _init_image(ctx)
                image = denoise(ctx, init, params, generator, control=first_frame_control(ctx, start, init))
            else:  # the start check refuses a render with neither an init image nor a model
                image = ctx.models.denoiser.txt2img(
                    params.prompt.mix, height=ctx.config.height, width=ctx.config.width,
                    control=first_frame_control(ctx, start, None), **sampling_settings(params, generator),
                )  # fmt: skip
        return _first_anchor(ctx, start, image, params, input_frame=input_frame)

    def next_frame(self, ctx, state, dst, input_frame, hybrid_frame) -> FrameState:
        config = ctx.config
        params = ctx.plan.params(dst)
        generator = frame_generator(params, ctx.device)
        reference = None
        # 1. move the previous anchor to this frame: along the input video's flow, or with the camera
        with ctx.timer("warp"):
            if config.mode == "video":
                warped, full_denoise_mask = stylize_from_video(ctx, state, input_frame, params)
                if config.coherence.reference == "video":
                    reference = color_reference(input_frame, config.coherence.color)
                warped_depth = valid = None
            else:
                warped, valid, warped_depth = move_camera(ctx, state, dst)
                full_denoise_mask = (~valid).float() if config.generation.holes == "repaint" else None
            if config.generation.holes == "fill":  # holes stay as motion.fill / the flow warp filled them
                full_denoise_mask = None
            # 2. hybrid motion: the hybrid video's own camera motion, on top
            if hybrid_frame is not None:
                warped = follow_hybrid_video(ctx, warped, state.hybrid_frame, hybrid_frame)
        alpha = params.composite_alpha if hybrid_frame is not None else 0.0
        # 3. colour coherence, sharpening, contrast, noise: what the denoiser starts from
        with ctx.timer("coherence"):
            # Colour matching counters drift; a warp-only render with no contrast or sharpening has none to counter
            # (it only moves pixels), and matching would shift the palette as the view's content changes.
            match_colors = ctx.models.diffuses or config.mode == "video" or ctx.plan.recolours()
            init = prepare_init(ctx, warped, params, generator, reference, match_colors=match_colors)
            if alpha > 0 and config.hybrid.before_generation:
                init = init * (1 - alpha) + hybrid_frame * alpha
        # 4. denoise (revealed pixels repainted when generation.holes says so), rounded to what the video receives
        with ctx.timer("denoise"):
            control = next_frame_control(ctx, state, dst, warped, warped_depth, valid)
            image = denoise(ctx, init, params, generator, full_denoise_mask, control)
            if alpha > 0 and not config.hybrid.before_generation:
                image = image * (1 - alpha) + hybrid_frame * alpha
            image = quantize(image)
        # 5. the new anchor's depth: estimated, or carried along the warp
        depth, depth_age = None, 0
        if config.mode == "3d":
            with ctx.timer("depth"):
                depth, depth_age = next_depth(ctx, image, state, dst, warped_depth, valid, params)
        return FrameState(
            index=dst,
            image=image,
            depth=depth,
            depth_age=depth_age,
            input_frame=input_frame,
            hybrid_frame=hybrid_frame,
        )


class LatentFeedback:
    """Anchors start from the previous anchor's latents: moved along the camera's own warp (no VAE encode), colour
    coherence and noise as latents, denoised, and decoded once for the video and the depth model."""

    def first_frame(self, ctx: RunContext, start: int, input_frame: torch.Tensor | None) -> FrameState:
        params = ctx.plan.params(start)
        generator = frame_generator(params, ctx.device)
        denoiser = ctx.models.denoiser
        with ctx.timer("denoise"):
            if ctx.config.init_image is not None:
                # the init image encoded once and denoised (at strength 0 it stays as it is, with its encoded latents)
                init = _init_image(ctx)
                strength = img2img_strength(params)
                latents = denoiser.img2img_latents(
                    denoiser.encode(init), params.prompt.mix, strength=strength,
                    control=first_frame_control(ctx, start, init), **sampling_settings(params, generator),
                )  # fmt: skip
                image = init if strength <= 0 else denoiser.decode(latents)
            else:
                latents = denoiser.txt2img_latents(
                    params.prompt.mix, height=ctx.config.height, width=ctx.config.width,
                    control=first_frame_control(ctx, start, None), **sampling_settings(params, generator),
                )  # fmt: skip
                image = denoiser.decode(latents)
        return _first_anchor(ctx, start, image, params, latents=latents)

    def next_frame(self, ctx, state, dst, input_frame, hybrid_frame) -> FrameState:
        params = ctx.plan.params(dst)
        generator = frame_generator(params, ctx.device)
        # 1. move the previous anchor's latents to this frame
        with ctx.timer("warp"):
            latents, revealed, valid, warped_depth = _move_latents(ctx, state, dst)
            full_denoise_mask = revealed.float() if ctx.config.generation.holes == "repaint" else None
        # 2. colour coherence and noise, as latents
        with ctx.timer("coherence"):
            init = prepare_init_latents(ctx, latents, params, generator)
        # 3. denoise, and decode once, rounded to what the video receives
        with ctx.timer("denoise"):
            latents = ctx.models.denoiser.img2img_latents(
                init, params.prompt.mix, strength=img2img_strength(params), full_denoise_mask=full_denoise_mask,
                control=next_frame_control(ctx, state, dst, None, warped_depth, valid),
                **sampling_settings(params, generator),
            )  # fmt: skip
            image = quantize(ctx.models.denoiser.decode(latents))
        # 4. the new anchor's depth: estimated, or carried along the warp
        depth, depth_age = None, 0
        if ctx.config.mode == "3d":
            with ctx.timer("depth"):
                depth, depth_age = next_depth(ctx, image, state, dst, warped_depth, valid, params)
        return FrameState(index=dst, image=image, depth=depth, depth_age=depth_age, latents=latents)


def _move_latents(ctx: RunContext, state: FrameState, dst: int):
    """(latents, revealed, valid, warped_depth): ``state``'s latents seen from frame ``dst``'s camera, the latent
    pixels the move revealed (Bx1xhxw bool), and in 3D the pixel-resolution valid mask and depth the depth tracker
    and the carried depth need. 3D moves the latents along the exact warp's own sampling grid (see
    :mod:`animator.latents`)."""
    from animator import compiling
    from animator.geometry import warp_2d
    from animator.latents import LATENT_SAMPLING, homography_at_latents, latent_factor, latents_along_grid

    config = ctx.config
    factor = latent_factor((config.height, config.width), state.latents)
    if config.mode == "2d":
        H = homography_at_latents(homography_between(ctx, state.index, dst), factor)
        latents, latent_valid = warp_2d(
            state.latents.float(), H, border=config.motion.border, check_values=False, sampling=LATENT_SAMPLING,
            bounded=False, compile_mode=ctx.compile_mode,
        )  # fmt: skip
        return latents, ~latent_valid, None, None
    moved = reproject_between(ctx, state.depth, state.index, dst)  # the latents follow the grid: no pixels needed
    latents, revealed = compiling.call(
        latents_along_grid, ctx.compile_mode, state.latents, moved.grid, moved.valid, factor, config.motion.fill
    )
    return latents, revealed, moved.valid, moved.depth


def _init_image(ctx: RunContext) -> torch.Tensor:
    return load_image_tensor(ctx.config.init_image, ctx.config.width, ctx.config.height, ctx.device)


def _first_anchor(ctx: RunContext, start: int, image, params: FrameParams, *, input_frame=None, latents=None):
    """The first frame as an anchor: rounded to 8 bits, with its depth (3D)."""
    image = quantize(image.to(ctx.device, torch.float32))
    depth = None
    if ctx.config.mode == "3d":
        with ctx.timer("depth"):
            depth = estimate_depth(ctx, image, params)
    return FrameState(index=start, image=image, depth=depth, input_frame=input_frame, latents=latents)
