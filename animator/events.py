"""Events a render emits. The CLI progress bar, the notebook live view and tests all subscribe to these.

Nothing in the frame loop prints: it calls ``callback(event)`` for every subscriber instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np


@dataclass(frozen=True)
class RenderStarted:
    total_frames: int  # frames this run will emit (after --frames / resume are applied)
    first_frame: int  # index of the first frame emitted (> 0 when resuming or rendering a range)
    width: int
    height: int
    fps: float
    run_dir: Path | None  # where schedules, seeds and settings are recorded (None for in-memory previews)
    # one-line messages for a newcomer (e.g. "offline depth: a learned model is better ...")
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameRendered:
    index: int  # frame index in the animation
    total_frames: int  # total frames of the animation
    image: np.ndarray  # (H, W, 3) uint8 RGB of the finished frame, on the host
    diffused: bool  # True when the denoiser ran on this frame (False for tweens and in warp-only renders)
    seed: int
    elapsed_s: float  # since the render started
    fps: float  # frames per second so far in this run
    eta_s: float  # estimated seconds left
    # stage -> ms spent since the previous frame's event: the loop makes an anchor before it sends out the frame
    # before it (so a GPU computes while the host encodes), so its stages arrive with that earlier event
    timings_ms: dict[str, float] = field(default_factory=dict)
    anchor: bool = False  # made from the previous anchor (diffused when there is a model), not a tween between two


@dataclass(frozen=True)
class RenderFinished:
    output: Path | None  # the finished video (None when no video was asked for)
    frames: int
    elapsed_s: float
    run_dir: Path | None
    stats: dict[str, float] = field(default_factory=dict)  # e.g. flicker metric, mean ms per stage


@dataclass(frozen=True)
class MetricProgress:
    """Work on the finished frames after the last one, before RenderFinished: the finishing passes and the quality
    metrics. Sent once with ``done = 0`` when a piece of work starts, then as it goes."""

    metric: str  # "finishing" (interpolation, upscaling), "flicker" or "drift"
    done: int  # frames (flicker: frame pairs) done so far
    total: int  # frames (flicker: frame pairs) to do


RenderEvent = Union[RenderStarted, FrameRendered, MetricProgress, RenderFinished]
RenderCallback = Callable[[RenderEvent], None]
