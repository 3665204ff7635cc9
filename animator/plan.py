"""Everything about a render that is known before the first frame: per-frame values, seeds, which frames are anchors
(made from the previous anchor: diffused when there is a model; the frames between are tweens), and the camera path.
Pure functions of the keyframe file; the frame loop only reads from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from animator.choices import SEED_BEHAVIORS
from animator.errors import AnimatorError

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig, EvaluatedSchedules, FramePrompt

MOTION_3D = ("translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z")


def frame_span(frames: range | int | None, total: int) -> tuple[int, int]:
    """Which frames of a ``total``-frame animation to render, as (start, stop): ``frames`` is None (all), a range of
    frame indices read as a slice (a stop past the end means "to the end"), or a whole number N (the first N
    frames). Shared by :func:`animator.render`, ``animator schedule`` and the notebook preview, so that they
    agree on what a range means."""
    if frames is None:
        return 0, total
    if isinstance(frames, int) and not isinstance(frames, bool):
        if frames < 1:
            raise AnimatorError(f"frames={frames}: give a positive number of frames or a range", field="frames")
        frames = range(min(frames, total))
    if not isinstance(frames, range):
        raise AnimatorError(
            f"frames must be a range of frame indices or a number of frames, got {frames!r}",
            field="frames",
            hint="e.g. frames=range(0, 48), or frames=48 for the first 48",
        )
    start, stop = frames.start, min(frames.stop, total)
    problem = (
        f"{frames} has a step"
        if frames.step != 1
        else f"starts at {start}: frame indices start at 0"
        if start < 0
        else f"starts at frame {start}, after the animation's last frame ({total - 1})"
        if start >= total
        else f"{start}:{frames.stop} selects no frames"
        if start >= stop
        else None
    )
    if problem:
        raise AnimatorError(
            f"the frame range {problem}",
            field="frames",
            hint=f"use A:B (range(A, B) in Python) with 0 <= A < B <= {total} (the animation has {total} frames)",
        )
    return start, stop


def resolve_seeds(
    behavior: str,
    seed: int,
    frames: int,
    *,
    iter_n: int = 1,
    schedule: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One seed per frame, following Deforum's seed behaviours (its ``next_seed``), recorded in the run folder.

    - iter: +1 every ``iter_n`` frames           - fixed: the same seed for every frame
    - ladder: +2, -1, +2, -1 ... (a slow climb)   - alternate: +1, -1, +1 ... (two seeds taking turns)
    - random: a fresh random seed per frame      - schedule: ``generation.seed`` evaluated per frame
    ``seed == -1`` picks a random base seed (the caller records it, so a run can be reproduced).
    """
    rng = rng or np.random.default_rng()
    if seed == -1:
        seed = int(rng.integers(0, 2**32 - 1))
    n = max(int(iter_n), 1)
    f = np.arange(frames)
    if behavior == "iter":
        seeds = seed + (f + n - 1) // n  # Deforum steps the seed on frames 1, 1+n, 1+2n ...
    elif behavior == "fixed":
        seeds = np.full(frames, seed)
    elif behavior == "ladder":
        seeds = seed + f // 2 + 2 * (f % 2)  # s, s+2, s+1, s+3, s+2, s+4 ...
    elif behavior == "alternate":
        seeds = seed + (f % 2)  # s, s+1, s, s+1 ...
    elif behavior == "random":
        seeds = rng.integers(0, 2**32 - 1, size=frames)
    elif behavior == "schedule":
        if schedule is None:
            raise AnimatorError(
                "seed_behavior is 'schedule' but there is no generation.seed schedule", field="seed_behavior"
            )
        seeds = np.round(schedule).astype(np.int64)
    else:
        raise AnimatorError(
            f"unknown seed behaviour {behavior!r}",
            field="seed_behavior",
            hint="use one of: " + ", ".join(SEED_BEHAVIORS),
        )
    return (np.asarray(seeds, dtype=np.int64) % (2**32)).astype(np.int64)


def anchor_frames(frames: int, cadence: int, keyframes: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """The anchor frames: every ``cadence``-th frame, every keyframe, and the last frame. The loop makes each from
    the anchor before it (the denoiser runs on them when there is one) and the frames between by tweening.

    Deforum places diffused frames on multiples of the cadence only, so keyframes fall on in-between frames and
    the last ``cadence - 1`` frames are dropped. Here a keyframe always lands on an anchor (the gap around it
    becomes shorter) and every frame up to the last is written.
    """
    if cadence < 1:
        raise AnimatorError(f"cadence must be >= 1, got {cadence}", field="cadence")
    chosen = set(range(0, frames, cadence)) | {k for k in keyframes if 0 <= k < frames} | {frames - 1, 0}
    return sorted(chosen)


@dataclass(frozen=True)
class FrameParams:
    """The values one anchor frame is made with: the schedules the loop reads, at this frame."""

    index: int
    prompt: FramePrompt
    seed: int
    sampler: str | None  # None: the denoiser's default
    strength: float  # share of the previous frame kept, 0..1 (Deforum's meaning); the denoiser runs at 1 - strength
    cfg: float  # classifier-free guidance scale
    steps: int  # sampler steps (>= 1) for a full denoise; img2img runs the share that strength leaves
    noise: float  # noise added to the warped frame before denoising
    contrast: float  # contrast multiplier of the warped frame (1: unchanged)
    sharpen_amount: float  # unsharp-mask amount of the warped frame (0: off)
    color_strength: float  # how strongly colours are pulled to the coherence reference, 0..1
    composite_alpha: float  # share of the hybrid video frame composited in (hybrid mode)
    flow_blend: float  # video mode: share of the previous output carried along the input's flow
    near: float  # scene depth of the nearest surface (the depth model's disparity maps into near..far)
    far: float  # scene depth of the farthest surface


@dataclass(frozen=True)
class Move2D:
    """One frame's 2D camera move (``mode: 2d``), in Deforum's terms."""

    angle: float  # degrees, counter-clockwise
    zoom: float  # scale per frame (1: none)
    translation_x: float  # pixels per frame
    translation_y: float
    transform_center_x: float  # pivot of angle and zoom, as a share of the width
    transform_center_y: float
    perspective_flip: tuple[float, float, float, float]  # theta, phi, gamma (degrees), fv (field of view)


@dataclass(frozen=True)
class RenderPlan:
    width: int
    height: int
    fps: float
    frames: int  # frames in the animation
    schedules: EvaluatedSchedules
    seeds: np.ndarray  # (frames,) int64
    anchors: tuple[int, ...]  # sorted indices of the anchor frames (the rest are tweens between two anchors)
    world_from_cam: object | None  # (frames, 4, 4) tensor for 3D mode, else None

    def value(self, name: str, index: int) -> float:
        """Schedule ``name`` at frame ``index``."""
        return float(self.schedules.values[name][index])

    def params(self, index: int) -> FrameParams:
        def value(name: str) -> float:
            return self.value(name, index)

        sampler = self.schedules.strings.get("sampler")
        return FrameParams(
            index=index,
            prompt=self.schedules.prompts[index],
            seed=int(self.seeds[index]),
            sampler=sampler[index] if sampler else None,
            strength=value("strength"),
            cfg=value("cfg"),
            steps=max(int(round(value("steps"))), 1),
            noise=value("noise"),
            contrast=value("contrast"),
            sharpen_amount=value("sharpen_amount"),
            color_strength=value("color_strength"),
            composite_alpha=value("composite_alpha"),
            flow_blend=value("flow_blend"),
            near=value("near"),
            far=value("far"),
        )

    def fov(self, index: int) -> float:
        """Vertical field of view of frame ``index``'s camera, degrees."""
        return self.value("fov", index)

    def move_2d(self, index: int) -> Move2D:
        names = ("angle", "zoom", "translation_x", "translation_y", "transform_center_x", "transform_center_y")
        flip = tuple(self.value(f"perspective_flip_{p}", index) for p in ("theta", "phi", "gamma", "fv"))
        return Move2D(**{name: self.value(name, index) for name in names}, perspective_flip=flip)

    def recolours(self) -> bool:
        """True when contrast or sharpening is scheduled on some frame: both shift colours frame after frame."""
        values = self.schedules.values
        return bool(np.any(np.asarray(values["contrast"]) != 1.0) or np.any(np.asarray(values["sharpen_amount"]) > 0))

    def segments(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Consecutive pairs of anchors (k0, k1) with start <= k0 < k1 < stop.

        ``start`` and the last frame ``stop - 1`` are always anchors, so a partial render (``--frames A:B``) starts
        from a made frame and writes every frame up to its end.
        """
        marks = sorted({k for k in self.anchors if start <= k < stop} | {start, stop - 1})
        return list(zip(marks, marks[1:]))


def schedule_keyframes(schedules: EvaluatedSchedules) -> set[int]:
    """Frames where any schedule or the prompt has a keyframe: these become anchors under cadence."""
    marks: set[int] = set()
    for frames in schedules.keyframes.values():
        marks.update(int(f) for f in frames)
    return marks


def deforum_motions(motions: np.ndarray, fov: np.ndarray, aspect: float) -> np.ndarray:
    """Per-frame Deforum 3D motion values in our scene units (zoom and roll rescaled; see animator.geometry.camera)."""
    from animator.geometry import deforum_motion_to_scene

    return np.array([deforum_motion_to_scene(*row, fov_deg=float(f), aspect=aspect) for row, f in zip(motions, fov)])


#: Without a denoiser nothing new is painted, so frames are warped straight from an anchor frame this many frames
#: apart instead of from the previous frame: one resampling per anchor instead of one per frame (repeated bilinear
#: resampling is what blurs a warp-only loopback).
WARP_ONLY_ANCHOR_INTERVAL = 8


def anchor_interval(config: AnimationConfig) -> int:
    """Frames from one anchor to the next."""
    if config.mode == "video":
        return 1  # every input frame is stylised from its own raw frame
    if (config.backends.denoise or "none") == "none":
        return max(config.cadence, WARP_ONLY_ANCHOR_INTERVAL)
    return config.cadence


def make_plan(config: AnimationConfig, schedules: EvaluatedSchedules, *, base_seed: int | None = None) -> RenderPlan:
    """Turns an evaluated keyframe file into the plan the frame loop follows."""
    _refuse_pixel_steps_with_latent_feedback(config, schedules)
    seeds = resolve_seeds(
        config.seed_behavior,
        config.seed if base_seed is None else base_seed,
        schedules.frames,
        iter_n=config.seed_iter_n,
        schedule=schedules.values.get("seed"),
    )
    cadence = anchor_interval(config)
    keyframes = schedule_keyframes(schedules) if cadence > 1 else set()
    world_from_cam = None
    if config.mode == "3d":
        from animator.geometry import camera_path

        motions = np.stack([schedules.values[name] for name in MOTION_3D], axis=1)  # (frames, 6)
        if config.motion.units == "deforum":
            motions = deforum_motions(motions, schedules.values["fov"], config.width / config.height)
        motions[0] = 0.0  # frame 0 is where the camera starts: its move is not applied to anything
        world_from_cam = camera_path(motions)
    return RenderPlan(
        width=config.width,
        height=config.height,
        fps=config.fps,
        frames=schedules.frames,
        schedules=schedules,
        seeds=seeds,
        anchors=tuple(anchor_frames(schedules.frames, cadence, keyframes)),
        world_from_cam=world_from_cam,
    )


def _refuse_pixel_steps_with_latent_feedback(config: AnimationConfig, schedules: EvaluatedSchedules) -> None:
    """Contrast and sharpening work on the previous frame's pixels, which latent feedback never forms."""
    if config.generation.feedback != "latent":
        return
    for name, neutral in (("contrast", 1.0), ("sharpen_amount", 0.0)):
        changed = np.flatnonzero(schedules.values[name] != neutral)
        if changed.size:
            raise AnimatorError(
                f"{name} is {schedules.values[name][changed[0]]:g} at frame {int(changed[0])}, but it "
                "works on pixels, which latent feedback never forms before denoising",
                file=config.path,
                field=f"generation.{name}",
                hint=f"remove generation.{name}, or use generation.feedback: image (the default)",
            )
