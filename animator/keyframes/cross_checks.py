"""Rules that span several fields of a keyframe file (a field alone is checked by its converter in
:mod:`animator.keyframes.fields`). Each raises an AnimatorError naming the file, the line and the field to change."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping

import numpy as np

from animator.choices import CONTROL_ANNOTATOR_SOURCES, CONTROL_FILE_SOURCES, UPSCALE_MODEL_SUFFIXES
from animator.keyframes.fields import Context, range_hint, range_problem
from animator.keyframes.schedule import Schedule, parse_frame_key
from animator.keyframes.sections import (
    NEAR_FAR,
    AnimationConfig,
    CoherenceConfig,
    ControlNetUnit,
    GenerationConfig,
    HybridConfig,
    MotionConfig,
    OutputConfig,
    Section,
    VideoInputConfig,
)


def check_mode_inputs(sections: dict, mode: str, ctx: Context) -> None:
    """What a mode or a reference needs is there: video mode an input video, reference image an image."""
    if mode == "video" and sections["video_input"] is None:
        raise ctx.error(
            "mode", "mode is video but there is no `video_input:` section", hint="add video_input: {path: clip.mp4}"
        )
    if sections["coherence"].reference == "image" and sections["coherence"].image is None:
        raise ctx.error("coherence.reference", "reference is image but coherence.image is not set")


def check_latent_feedback(sections: dict, mode: str, ctx: Context) -> None:
    """Latent feedback moves latents with the camera; what works on the previous frame's pixels cannot run."""
    generation = sections["generation"]
    if generation.feedback != "latent":
        return
    hint = "use generation.feedback: image (the default)"
    if mode not in ("2d", "3d"):
        raise ctx.error(
            "generation.feedback",
            f"latent feedback works in 2d and 3d modes, not in {mode} mode",
            hint=hint + ": video mode blends each input frame in pixels",
        )
    if sections["hybrid"] is not None:
        raise ctx.error(
            "generation.feedback",
            "latent feedback cannot composite a hybrid video (a pixel blend)",
            hint=hint + ", or remove the hybrid section",
        )
    # contrast and sharpen_amount are checked on their evaluated schedules (animator.plan.make_plan)


def check_beats(sections: dict, prompts, bpm, audio, ctx: Context, controlnet=()) -> None:
    """Beat times (``8b``) in a schedule or a prompt key need a tempo: ``bpm:`` or an audio file's beats."""
    if bpm is not None or audio is not None:
        return
    named = dict(sections) | {f"controlnet.{i}": unit for i, unit in enumerate(controlnet)}
    for section_name, section in named.items():
        if section is None:
            continue
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, Schedule) and value.uses_beats:
                raise ctx.error(
                    f"{section_name}.{f.name}",
                    "beat times like `8b` need a tempo",
                    hint="set `bpm:` or add an `audio:` section",
                )
    for key, _ in prompts:
        if parse_frame_key(key).beats is not None:
            raise ctx.error(
                f"prompts.{key}", "beat times like `8b` need a tempo", hint="set `bpm:` or add an `audio:` section"
            )


def check_controlnet_unit(unit: ControlNetUnit, where: str, ctx: Context) -> None:
    """A unit's fields agree: file sources have a path, annotator weights go with an annotator source,
    canny_high > canny_low, and guidance_start < guidance_end."""
    if unit.source in CONTROL_FILE_SOURCES and unit.path is None:
        raise ctx.error(
            f"{where}.source", f"source {unit.source} needs `path:`", hint=f"add path: the {unit.source} file"
        )
    if unit.path is not None and unit.source not in CONTROL_FILE_SOURCES:
        raise ctx.error(
            f"{where}.path",
            f"`path` is read only by sources image and video, not {unit.source}",
            hint="remove it, or set source: image / video",
        )
    if unit.annotator is not None and unit.source not in CONTROL_ANNOTATOR_SOURCES:
        raise ctx.error(
            f"{where}.annotator",
            f"`annotator` weights are read only by the annotator sources, not {unit.source}",
            hint="remove it, or set source to one of " + ", ".join(CONTROL_ANNOTATOR_SOURCES),
        )
    if unit.canny_high <= unit.canny_low:
        raise ctx.error(
            f"{where}.canny_high",
            f"canny_high {unit.canny_high} must be above canny_low {unit.canny_low}",
            hint="e.g. canny_low: 100, canny_high: 200",
        )
    _check_guidance_window(unit, where, ctx)


def _check_guidance_window(unit: ControlNetUnit, where: str, ctx: Context) -> None:
    """guidance_start < guidance_end wherever both are plain numbers at the same keyframe (or one is constant);
    the evaluated values are checked frame by frame in :func:`animator.keyframes.evaluate.evaluate`."""
    starts = {k.key.text: k.number for k in unit.guidance_start.keyframes}
    ends = {k.key.text: k.number for k in unit.guidance_end.keyframes}
    if len(starts) == 1:
        starts = dict.fromkeys(ends, next(iter(starts.values())))
    elif len(ends) == 1:
        ends = dict.fromkeys(starts, next(iter(ends.values())))
    for key, start in starts.items():
        end = ends.get(key)
        if start is not None and end is not None and start >= end:
            raise ctx.error(
                f"{where}.guidance_start",
                f"guidance_start {start:g} at frame {key} is not below guidance_end {end:g}",
                hint="the unit acts from guidance_start to guidance_end: 0 <= start < end <= 1",
            )


def check_sections(sections: list[Section], frames: int, ctx: Context) -> tuple[Section, ...]:
    """Sections in order, contiguous, covering frames 0..frames-1 exactly, each start with what it needs; returns
    them with an open end (``"A:"``) closed at ``frames``."""
    out: list[Section] = []
    expected_start = 0
    for i, section in enumerate(sections):
        where = f"sections.{i}"
        span = section.frames
        if span.stop > frames:
            if span.stop != sys.maxsize:  # an open end (A:) runs to the last frame
                raise ctx.error(
                    f"{where}.frames",
                    f"section {i} ends at frame {span.stop} (exclusive), past the animation's {frames} frames",
                    hint=f"end the last section at {frames} (or write {span.start}: to run to the end)",
                )
            span = range(span.start, frames)
            if span.start >= frames:
                raise ctx.error(
                    f"{where}.frames", f"section {i} starts at frame {span.start}, after the last frame {frames - 1}"
                )
        if span.start != expected_start:
            problem = "overlaps the previous section" if span.start < expected_start else "leaves a gap before it"
            raise ctx.error(
                f"{where}.frames",
                f"section {i} starts at frame {span.start}: it {problem}",
                hint=f"start it at frame {expected_start}, where the previous section ends (stop is exclusive)",
            )
        if i == 0 and section.start == "previous":
            raise ctx.error(
                f"{where}.start",
                "the first section has no previous frame to continue from",
                hint="set start: image (with image:) or start: noise",
            )
        if section.start == "image" and section.image is None:
            raise ctx.error(f"{where}.image", f"section {i} starts from an image but has no `image:`")
        if section.image is not None and section.start != "image":
            raise ctx.error(
                f"{where}.image",
                f"`image` is read only when start is image, not {section.start}",
                hint="set start: image, or remove image",
            )
        if section.crossfade and section.start == "previous":
            raise ctx.error(
                f"{where}.crossfade",
                "crossfade blends into a new start; a section that continues from the previous frame has none",
                hint="remove crossfade, or set start: image / noise",
            )
        if section.crossfade > len(span):
            raise ctx.error(
                f"{where}.crossfade",
                f"crossfade {section.crossfade} is longer than section {i} ({len(span)} frames)",
            )
        out.append(dataclasses.replace(section, frames=span))
        expected_start = span.stop
    if expected_start != frames:
        raise ctx.error(
            f"sections.{len(sections) - 1}.frames",
            f"the sections end at frame {expected_start} (exclusive) but the animation has {frames} frames",
            hint=f"end the last section at {frames} (or write A: to run to the end)",
        )
    return tuple(out)


def check_output(
    output: OutputConfig, raw, fps: float, width: int, height: int, mode: str, ctx: Context
) -> OutputConfig:
    """The rules of output.interpolate and output.upscale that span several fields; returns ``output`` with the
    upscale method that follows from a `model` when none was given."""
    interpolate = output.interpolate
    if interpolate is not None:
        where = "output.interpolate"
        if (interpolate.factor is None) == (interpolate.fps is None):
            raise ctx.error(
                where,
                "give exactly one of `factor` (frames per rendered frame) and `fps` (the output's frame rate)",
                hint="e.g. interpolate: {factor: 2}",
            )
        if interpolate.fps is not None and interpolate.fps <= fps:
            raise ctx.error(
                f"{where}.fps",
                f"fps {interpolate.fps:g} is not above the render's {fps:g} fps",
                hint=f"give more than {fps:g}, or remove interpolate",
            )
        if interpolate.method == "camera" and mode != "3d":
            raise ctx.error(
                f"{where}.method",
                f"method camera reprojects with the 3D camera and depth; this is a {mode} render",
                hint="use method: flow",
            )
        if interpolate.model is not None and interpolate.method != "rife":
            raise ctx.error(f"{where}.model", f"`model` is read only by method rife, not {interpolate.method}")
    upscale = output.upscale
    if upscale is not None:
        where = "output.upscale"
        raw_upscale = raw.get("upscale") if isinstance(raw, dict) else None
        explicit = isinstance(raw_upscale, dict) and raw_upscale.get("method") is not None
        if upscale.model is not None and not explicit:
            upscale = dataclasses.replace(upscale, method="model")
            output = dataclasses.replace(output, upscale=upscale)
        if upscale.scale is not None and (upscale.width is not None or upscale.height is not None):
            raise ctx.error(
                where, "give `scale`, or `width` and / or `height`, not both", hint="e.g. upscale: {scale: 2}"
            )
        if upscale.scale is None and upscale.width is None and upscale.height is None:
            raise ctx.error(where, "give `scale` (e.g. 2) or a `width` and / or `height` in pixels")
        if upscale.scale is not None and upscale.scale <= 1:
            raise ctx.error(f"{where}.scale", f"scale {upscale.scale:g} does not upscale", hint="give more than 1")
        for name, size, rendered in (("width", upscale.width, width), ("height", upscale.height, height)):
            if size is not None and size <= rendered:
                raise ctx.error(
                    f"{where}.{name}", f"{name} {size} is not above the render's {rendered}", hint="give a larger size"
                )
        if upscale.method == "model" and upscale.model is None:
            raise ctx.error(
                f"{where}.method", "method model needs `model:` (super-resolution weights, .pth / .safetensors)"
            )
        if upscale.model is not None:
            if upscale.method != "model":
                raise ctx.error(f"{where}.model", f"`model` is read only by method model, not {upscale.method}")
            if upscale.model.suffix.lower() not in UPSCALE_MODEL_SUFFIXES:
                raise ctx.error(
                    f"{where}.model",
                    f"unknown weights file type {upscale.model.suffix!r}",
                    hint="use " + ", ".join(UPSCALE_MODEL_SUFFIXES),
                )
    return output


# evaluated schedule name -> (the section dataclass holding its range, the section's key in a keyframe file)
_SCHEDULE_SECTIONS = {
    "color_strength": (CoherenceConfig, "coherence"),
    "flow_blend": (VideoInputConfig, "video_input"),
    "composite_alpha": (HybridConfig, "hybrid"),
}
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit numbers; -1 (random) only as the file's `seed:`


def check_schedule_values(config: AnimationConfig, values: Mapping[str, np.ndarray]) -> None:
    """Every evaluated value of every schedule inside its field's range (the ``low`` / ``high`` / ``above`` /
    ``below`` of the field's spec), far above near at every frame, and scheduled seeds from 0 to
    :data:`MAX_SEED`: the error names the file, the line, the field, the value in the file's units and the frame."""
    for name, array in values.items():
        dotted, bounds, extra = _range_of(name)
        bad = ~np.isfinite(array)
        for key, compare in (
            ("low", np.less),
            ("high", np.greater),
            ("above", np.less_equal),
            ("below", np.greater_equal),
        ):
            if bounds.get(key) is not None:
                bad |= compare(array, bounds[key])
        if bad.any():
            frame = int(np.flatnonzero(bad)[0])
            problem = range_problem(float(array[frame]), **bounds)
            hint = range_hint(name.rsplit(".", 1)[-1], **bounds) + (f"; {extra}" if extra else "")
            raise _value_error(config, dotted, array[frame], frame, problem, hint)
    near, far = values.get("near"), values.get("far")
    if near is not None and far is not None and np.any(far <= near):
        frame = int(np.flatnonzero(far <= near)[0])
        raise _value_error(
            config, "motion.far", far[frame], frame, f"not above motion.near ({near[frame]:g})", NEAR_FAR
        )
    seeds = values.get("seed")
    if config.seed_behavior == "schedule" and seeds is not None:
        bad = (seeds < -1) | (seeds > MAX_SEED)
        if bad.any():
            frame = int(np.flatnonzero(bad)[0])
            raise _value_error(
                config,
                "generation.seed",
                seeds[frame],
                frame,
                f"outside -1 .. {MAX_SEED}",
                f"a scheduled seed is a whole number from 0 to {MAX_SEED} (-1, which Deforum files hold, is taken as"
                f" {MAX_SEED})",
            )


def _range_of(name: str) -> tuple[str, dict, str | None]:
    """(dotted field, its range options, a hint about its meaning) of an evaluated schedule."""
    from animator.keyframes.evaluate import GENERATION_SCHEDULES, MOTION_SCHEDULES

    if name.startswith("controlnet."):
        cls, dotted, field_name = ControlNetUnit, name, name.rsplit(".", 1)[1]
    elif name in MOTION_SCHEDULES:
        cls, dotted, field_name = MotionConfig, f"motion.{name}", name
    elif name in GENERATION_SCHEDULES:
        cls, dotted, field_name = GenerationConfig, f"generation.{name}", name
    else:
        cls, section = _SCHEDULE_SECTIONS[name]
        dotted, field_name = f"{section}.{name}", name
    options = {f.name: f for f in dataclasses.fields(cls)}[field_name].metadata["spec"][1]
    bounds = {key: options.get(key) for key in ("low", "high", "above", "below")}
    return dotted, bounds, options.get("hint")


def _value_error(config: AnimationConfig, dotted: str, value: float, frame: int, problem: str, hint: str):
    from animator.errors import AnimatorError
    from animator.keyframes.locate import line_of

    shown = f"{value:.3g}"
    if problem.endswith(" " + shown):  # 1.0004 is not "1, above 1"
        shown = f"{value:.10g}"
    return AnimatorError(
        f"{dotted} is {shown} at frame {frame}, {problem.removeprefix('is ')}",
        file=config.path,
        line=line_of(config, dotted),
        field=dotted,
        hint=hint,
    )
