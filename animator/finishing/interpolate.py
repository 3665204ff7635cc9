"""Frame interpolation: more frames per second from a video, a folder of frames or a render's run folder.

Frame-count and sync rules (relied on by users who cut to music):

- ``factor=N``: the output has ``N x`` the input's frames at ``N x`` its fps. Output frame ``k*N`` is input frame
  ``k`` unchanged, the ``N-1`` frames after it are new, and the last input frame is held for the final ``N-1``
  frames, so the output lasts exactly as long as the input and the soundtrack (carried over) stays in sync.
- ``fps=F``: the output runs at ``F`` (above the input's rate); output frame ``j`` shows the input's time
  ``j / F``, so a whole multiple of the input's rate is the same as the matching factor.
- ``slowmo=True``: the frames are made as above but played at the input's rate (``N x`` slower), without sound.

Methods (:data:`~animator.choices.INTERPOLATE_METHODS`): ``flow`` (optical flow both ways,
:mod:`animator.finishing.flow_interp`), ``camera`` (a 3D render's own camera path and depth,
:mod:`animator.finishing.camera_interp`), ``rife`` (RIFE v4.6 with the user's weight file,
:mod:`animator.finishing.rife`), ``blend`` (a cross-fade, for comparison). Frames stream through: two input frames
are held at a time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.choices import INTERPOLATE_METHODS
from animator.errors import AnimatorError

__all__ = ["InterpolationResult", "BlendTweener", "output_times", "interpolate", "make_tweener"]


@dataclass(frozen=True)
class InterpolationResult:
    output: Path
    frames: int  # frames written
    fps: float  # the output's frame rate
    input_frames: int
    input_fps: float
    method: str
    seconds: float  # wall time of the whole pass


class BlendTweener:
    """A plain cross-fade ``(1 - t) a + t b``: no motion, for comparison."""

    name = "blend"

    def pair(self, a: np.ndarray, b: np.ndarray, index: int = 0) -> Callable[[float], np.ndarray]:
        import cv2

        return lambda t: cv2.addWeighted(a, 1.0 - t, b, t, 0.0)


def output_times(count: int, ratio: float, *, exact_factor: int | None = None) -> Iterator[tuple[int, float]]:
    """For every output frame, ``(k, t)``: it shows input frame ``k`` moved ``t`` of the way to frame ``k + 1``.

    ``round(count * ratio)`` frames; times past the last input frame hold it (``t = 0``). With ``exact_factor``
    the arithmetic is in whole numbers (``k = j // N``, ``t = (j % N) / N``), so frame ``k*N`` is input ``k``.

    >>> list(output_times(2, 2, exact_factor=2))
    [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.0)]
    """
    total = count * exact_factor if exact_factor else round(count * ratio)
    for j in range(total):
        if exact_factor:
            k, t = divmod(j, exact_factor)
            t = t / exact_factor
        else:
            position = j / ratio
            k = math.floor(position + 1e-9)
            t = position - k
            if t < 1e-6:
                t = 0.0
        if k >= count - 1:
            yield count - 1, 0.0
        else:
            yield k, float(t)


def _ratio(source_fps: float, factor: int | None, fps: float | None) -> tuple[float, int | None]:
    """(output frames per input frame, the whole factor when there is one)."""
    if (factor is None) == (fps is None):
        raise AnimatorError(
            "give either a factor or an output fps (not both)", field="--factor", hint="e.g. --factor 2"
        )
    if factor is not None:
        if int(factor) != factor or factor < 2:
            raise AnimatorError(
                f"the factor must be a whole number >= 2, got {factor}",
                field="--factor",
                hint="--factor 2 doubles the frame rate (1 would change nothing)",
            )
        return float(factor), int(factor)
    if not fps > source_fps:
        raise AnimatorError(
            f"the output fps {fps:g} must be above the input's {source_fps:g}",
            field="--fps",
            hint=f"e.g. --fps {2 * source_fps:g}, or --factor 2",
        )
    ratio = fps / source_fps
    whole = round(ratio)
    return ratio, (whole if abs(ratio - whole) < 1e-6 else None)


def make_tweener(method: str, source, *, flow: str = "fast", flow_size: int = 256, model=None, device=None):
    """The in-between maker for ``method`` (one of :data:`~animator.choices.INTERPOLATE_METHODS`) and a
    :class:`FrameSource`."""
    if method == "flow":
        from animator.finishing.flow_interp import FlowTweener

        return FlowTweener(flow, flow_size, device=device)
    if method == "blend":
        return BlendTweener()
    if method == "camera":
        if source.run_dir is None:
            raise AnimatorError(
                "the camera method needs a run folder of a 3D render (its camera path and depth)",
                field="--method",
                hint="give the render's run folder (runs/<name>-<time>), or use --method flow",
            )
        from animator.finishing.camera_interp import CameraTweener

        return CameraTweener(source.run_dir, first_index=source.first_index, device=device)
    if method == "rife":
        if model is None:
            raise AnimatorError(
                "the rife method needs its weight file",
                field="--model",
                hint="give RIFE v4.6's flownet.pkl with --model (nothing is downloaded), or use --method flow",
            )
        from animator.finishing.rife import RifeTweener

        return RifeTweener(model, device=device)
    raise AnimatorError(
        f"unknown method {method!r}", field="--method", hint="use one of: " + ", ".join(INTERPOLATE_METHODS)
    )


def interpolate(
    source,
    output: str | os.PathLike,
    *,
    factor: int | None = None,
    fps: float | None = None,
    method: str = "flow",
    slowmo: bool = False,
    frames_dir: str | os.PathLike | None = None,
    flow: str = "fast",
    flow_size: int = 256,
    model: str | os.PathLike | None = None,
    settings=None,
    device=None,
    progress: Callable[[int, int], None] | None = None,
) -> InterpolationResult:
    """Writes the interpolated video of ``source`` to ``output`` (see the module docstring for the rules).

    Args:
        source: a path (video, image folder, run folder) or a :class:`~animator.finishing.frames.FrameSource`.
        output: the video to write (under a temporary name until complete).
        factor, fps: how many more frames (exactly one of them).
        method: ``flow``, ``camera``, ``rife`` or ``blend``.
        slowmo: keep the input's fps (the video plays ``factor x`` slower) and drop the sound.
        frames_dir: also write every output frame there as PNG.
        flow, flow_size: the flow method's estimator (DIS preset ``ultrafast`` / ``fast`` / ``medium``, or
            ``dis_fine``, ``farneback``, ``raft_small``, ``raft_large``) and the longer side it estimates flow at.
        model: the rife method's weight file (RIFE v4.6 ``flownet.pkl``).
        settings: :class:`animator.video.EncodeSettings` (default: h264, crf 18).
        device: where the camera method and RAFT run.
        progress: ``progress(done, total)`` after every output frame.

    Raises:
        AnimatorError: bad input, factor < 2, fps not above the input's, an unknown method.
    """
    import time

    from animator.finishing.frames import FrameSource, check_output, open_frames
    from animator.video import EncodeSettings, VideoWriter, mux_audio

    started = time.perf_counter()
    if not isinstance(source, FrameSource):
        source = open_frames(source)
    ratio, whole = _ratio(source.fps, factor, fps)
    out_fps = source.fps if slowmo else (source.fps * whole if whole else float(fps))
    tweener = make_tweener(method, source, flow=flow, flow_size=flow_size, model=model, device=device)
    times = output_times(source.count, ratio, exact_factor=whole)
    total = source.count * whole if whole else round(source.count * ratio)
    output = check_output(source, output)
    written = 0
    with VideoWriter(
        output,
        width=source.width,
        height=source.height,
        fps=out_fps,
        settings=settings or EncodeSettings(),
        frames_dir=frames_dir,
    ) as writer:
        frames = source.frames()

        def read(position: int) -> np.ndarray:
            frame = next(frames, None)
            if frame is None:
                raise AnimatorError(f"the input ended after {position} of {source.count} frames", file=source.path)
            return frame

        index, here, ahead = 0, read(0), None  # ``here`` is input frame ``index``; ``ahead`` the next, once read
        paired, at = None, None
        for k, t in times:
            while index < k:
                here, ahead, index = (ahead if ahead is not None else read(index + 1)), None, index + 1
            if t == 0.0:
                writer.write(here)
            else:
                if ahead is None:
                    ahead = read(index + 1)
                if paired != index:  # the flows (or depths) of a pair are made once for all its in-betweens
                    at, paired = tweener.pair(here, ahead, index), index
                writer.write(at(t))
            written += 1
            if progress is not None:
                progress(written, total)
    if source.audio is not None and not slowmo:
        mux_audio(output, source.audio)
    return InterpolationResult(
        output=output,
        frames=written,
        fps=out_fps,
        input_frames=source.count,
        input_fps=source.fps,
        method=method,
        seconds=time.perf_counter() - started,
    )
