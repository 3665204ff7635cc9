"""The frame loop: anchors made one from the next, the frames between them tweened, every frame handed on in order.

Reads top to bottom: the first anchor (or the resumed one), then for every pair of anchors: make the next anchor,
hand on the frames whose copy to the host is done, tween the frames between, repeat.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from animator.rendering.context import RunContext
from animator.rendering.feedback import choose_feedback
from animator.rendering.inputs import InputVideo
from animator.rendering.state import FrameState
from animator.rendering.tensors import HostCopy
from animator.rendering.tweens import segment_flow, tween

#: Seconds between checkpoints: fast renders would otherwise copy the depth to the host and pickle it every frame;
#: a resume re-renders the few frames after the checkpoint, to the same pixels.
CHECKPOINT_EVERY_S = 2.0


@dataclass(frozen=True)
class Emitted:
    index: int
    image: np.ndarray  # (H,W,3) uint8
    anchor: bool  # made from the previous anchor (False: a tween between two anchors)
    seed: int
    timings_ms: dict[str, float]
    checkpoint: dict[str, Any] | None  # the loop state after this frame, on anchors


def frame_loop(
    ctx: RunContext,
    *,
    start: int,
    stop: int,
    resume_state: FrameState | None = None,
    checkpoint_every_s: float | None = None,
) -> Iterator[Emitted]:
    """Yields frames ``start .. stop-1`` in order (from ``resume_state`` when resuming, else from the init).

    Every frame's copy to the host is started, then the next piece of work is queued (the next anchor after an
    anchor, the next in-between after an in-between), and only then is the copy waited for and the frame yielded:
    making a frame never waits for the device, so on a GPU the next frame computes while the host copies this one
    out and the encoder takes it.

    An anchor carries a checkpoint (the loop state to resume from) when ``checkpoint_every_s`` seconds have passed
    since the last one (default :data:`CHECKPOINT_EVERY_S`); the first anchor always does.
    """
    if checkpoint_every_s is None:
        checkpoint_every_s = CHECKPOINT_EVERY_S
    config, plan, run, timer = ctx.config, ctx.plan, ctx.run, ctx.timer
    feedback = choose_feedback(ctx)
    video = InputVideo.of_video_input(config, ctx.device) if config.mode == "video" else None
    hybrid = InputVideo.of_hybrid(config, ctx.device) if config.hybrid is not None else None
    last_checkpoint = -float("inf")

    def snapshot_tracker(state: FrameState) -> None:
        state.tracker = run.tracker.snapshot() if run.tracker is not None else None

    # Frames whose copy to the host has started, oldest first: a copy waits, in the device's order, for all work
    # queued before it, so it is started before the next frame is queued and waited for (hand_on) only after.
    started: list[tuple[FrameState | torch.Tensor, int, HostCopy]] = []

    def start_copy(frame: FrameState | torch.Tensor, index: int) -> None:
        with timer("to_host"):
            started.append((frame, index, HostCopy(frame.image if isinstance(frame, FrameState) else frame)))

    def hand_on(keep: int = 0) -> Iterator[Emitted]:
        nonlocal last_checkpoint
        while len(started) > keep:
            frame, index, copy = started.pop(0)
            with timer("to_host"):
                host_image = copy.result()
            checkpoint = None
            if isinstance(frame, FrameState):
                frame.host_image = host_image
                now = time.perf_counter()
                if now - last_checkpoint >= checkpoint_every_s:
                    last_checkpoint = now
                    checkpoint = frame.to_checkpoint(host_image)
                    run.add_to_checkpoint(checkpoint, frame)
            # the stages run since the last event: in time order, so that they add up to the time between events
            anchor = isinstance(frame, FrameState)
            yield Emitted(index, host_image, anchor, int(plan.seeds[index]), timer.take(), checkpoint)

    # 1. the first anchor: the init image, input video frame or txt2img (or the resumed anchor, already written)
    if resume_state is None:
        state = feedback.first_frame(ctx, start, video.frame(start) if video else None)
        state.hybrid_frame = hybrid.frame(start) if hybrid else None
        run.take_first_frame_as_reference(state, config)
        snapshot_tracker(state)
        unsent = state
    else:
        state, unsent = resume_state, None
    for k0, k1 in plan.segments(state.index, stop):
        if unsent is not None:
            start_copy(unsent, k0)
        # 2. the next anchor, while anchor k0 (and the last in-between before it) is copied out and handed on
        nxt = feedback.next_frame(
            ctx, state, k1, video.frame(k1) if video else None, hybrid.frame(k1) if hybrid else None
        )
        snapshot_tracker(nxt)
        yield from hand_on()
        # 3. the frames between the two anchors, each handed on while the one after it computes
        residual = None
        if config.motion.cadence_flow and k1 - k0 > 1:
            with timer("flow"):
                residual = segment_flow(ctx, state, nxt)
        for index in range(k0 + 1, k1):
            with timer("tween"):
                image = tween(ctx, state, nxt, index, residual)
            start_copy(image, index)
            yield from hand_on(keep=1)
        state = unsent = nxt
    # 4. the last anchor
    if unsent is not None:
        start_copy(unsent, unsent.index)
    yield from hand_on()
