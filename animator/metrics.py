"""Quality metrics of a finished video: flicker (the temporal inconsistency a viewer sees) and drift (what long
feedback loops do to a picture: burn, colour drift, blur), see :func:`drift`.

**Flicker** of consecutive frames ``i`` and ``i+1``: estimate the flow from frame ``i+1`` to frame ``i``, warp
frame ``i`` onto frame ``i+1`` with it (bicubic), and take the mean absolute difference to frame ``i+1`` over the
pixels whose flow passes the forward-backward consistency check (occlusions, motion boundaries and pixels entering
the frame are left out: a warp cannot predict them, so they are not flicker). Differences are in **8-bit grey
levels, 0-255**, averaged over the three RGB channels. Motion that the flow follows costs nothing; content that
changes or shimmers in place does. A sequence rendered with flow-consistent inits scores lower than the same frames
made independently. Read it with ``consistent_fraction``: frames so unlike each other that the flow cannot follow
most pixels leave few pixels to score, and a low fraction is then the stronger sign of flicker.

Example:
    >>> import torch
    >>> still = torch.rand(1, 3, 32, 32).expand(5, -1, -1, -1)
    >>> flicker(still).mean
    0.0
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from animator.errors import AnimatorError

__all__ = ["FlickerReport", "flicker", "flicker_of_video", "read_video_frames", "DriftReport", "DriftMeter", "drift"]


@dataclass(frozen=True)
class FlickerReport:
    """Warp error between consecutive frames, in 0-255 grey levels."""

    series: np.ndarray  # (N-1,) flicker of frame pair (i, i+1)
    consistent_fraction: np.ndarray  # (N-1,) share of pixels the consistency check kept for each pair
    estimator: str  # the flow estimator that measured it

    @property
    def mean(self) -> float:
        """Mean over all frame pairs (0.0 for a single frame)."""
        return float(self.series.mean()) if self.series.size else 0.0

    @property
    def frames(self) -> int:
        return int(self.series.size + 1)

    def to_dict(self) -> dict:
        """Plain JSON-able numbers: mean, median, p95, max (with the pair index), the series."""
        series = self.series
        worst = int(series.argmax()) if series.size else None
        return {
            "metric": "flicker",
            "units": "mean abs warp error, 0-255",
            "estimator": self.estimator,
            "frames": self.frames,
            "mean": self.mean,
            "median": float(np.median(series)) if series.size else 0.0,
            "p95": float(np.percentile(series, 95)) if series.size else 0.0,
            "max": float(series.max()) if series.size else 0.0,
            "worst_pair": worst,
            "mean_consistent_fraction": float(self.consistent_fraction.mean()) if series.size else 1.0,
            "series": [round(float(v), 4) for v in series],
        }


def _frames_checked(frames) -> Iterator[np.ndarray | torch.Tensor]:
    """Yield each frame as given (a ``(1,3,H,W)`` float tensor in [0,1] or an ``(H,W,3)`` uint8 array), checking
    that every frame has the first one's size; :func:`_as_tensor` converts (on a worker thread)."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
            raise AnimatorError(
                f"frames as a tensor must be float (N,3,H,W) in [0,1], got {tuple(frames.shape)} {frames.dtype}",
                field="frames",
            )
        yield from (frame[None] for frame in frames)
        return
    first_shape = None
    for index, frame in enumerate(frames):
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise AnimatorError(
                f"frame {index} must be an (H,W,3) uint8 RGB array, got {array.shape} {array.dtype}", field="frames"
            )
        if first_shape is None:
            first_shape = array.shape
        elif array.shape != first_shape:
            raise AnimatorError(
                f"frame {index} is {array.shape[1]}x{array.shape[0]} but frame 0 is {first_shape[1]}x{first_shape[0]}",
                field="frames",
                hint="every frame of a video must have the same size",
            )
        yield np.array(array, copy=True)  # the caller may reuse its buffer once the next frame is asked for


def _as_tensor(frame: np.ndarray | torch.Tensor, max_side: int | None) -> torch.Tensor:
    """A checked frame as a ``(1,3,h,w)`` float tensor in [0,1], shrunk to ``max_side``."""
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
    return _shrink(frame, max_side)


def _shrink(frame: torch.Tensor, max_side: int | None) -> torch.Tensor:
    height, width = frame.shape[-2:]
    if max_side is None or max(height, width) <= max_side:
        return frame
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return torch.nn.functional.interpolate(frame, size=size, mode="area")


def _pair_flicker(estimator, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[float, float]:
    from animator.geometry.flow import consistency_mask, warp_by_flow

    flow_b_to_a = estimator(frame_b, frame_a)  # b(x) ~= a(x + flow)
    flow_a_to_b = estimator(frame_a, frame_b)
    reliable = consistency_mask(flow_b_to_a, flow_a_to_b).float()  # 1x1xHxW on b's grid
    # Bicubic: bilinear interpolation blurs fine texture by up to a grey level or two on its own, which would read
    # as flicker on any moving detail.
    predicted = warp_by_flow(frame_a, flow_b_to_a, mode="bicubic").clamp(0.0, 1.0)
    error = (predicted - frame_b).abs().mean(dim=1, keepdim=True) * 255.0
    kept = float(reliable.sum())
    if kept == 0.0:
        # Nothing could be tracked (a hard cut, noise): every pixel changed unpredictably, which is what a viewer
        # sees, so score the whole frame rather than drop the pair.
        return float(error.mean()), 0.0
    return float((error * reliable).sum() / kept), kept / reliable.numel()


# Flow estimators that are cheap to make once per thread (OpenCV's; one DIS object must not be shared by threads:
# two concurrent calls crash the process). Others (RAFT: a network) measure one pair at a time.
_PER_THREAD_ESTIMATORS = ("dis_ultrafast", "dis_fast", "dis_medium", "dis_fine", "farneback")
_MAX_WORKERS = 8


class _PerThread:
    """A flow estimator made by name once in every thread that calls it."""

    def __init__(self, name: str) -> None:
        self.name, self._local = name, threading.local()

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from animator.backends.flow import load_flow_estimator

        estimator = getattr(self._local, "estimator", None)
        if estimator is None:
            estimator = self._local.estimator = load_flow_estimator(self.name)
        return estimator(source, target)


def _workers(estimator, workers: int | None) -> int:
    if workers is not None:
        if workers < 1:
            raise AnimatorError(f"workers must be >= 1, got {workers}", field="workers")
        return workers if isinstance(estimator, str) and estimator in _PER_THREAD_ESTIMATORS else 1
    if not (isinstance(estimator, str) and estimator in _PER_THREAD_ESTIMATORS):
        return 1
    # torch's thread count says how many cores this process means to use (tests set it to one): one pair per core
    return max(1, min(torch.get_num_threads(), _MAX_WORKERS))


@contextlib.contextmanager
def _one_torch_thread_per_worker(threads: int) -> Iterator[None]:
    """torch's operations on one frame this small gain little from a second thread (measured: 22.6 -> 20.4 ms a
    pair), so with several workers each runs single-threaded and the workers share the cores instead: on this
    project's 2-core CPU a 240-frame 512x512 video measured 5.5 s on one worker, 4.0 s on two with torch's two
    threads each, 3.2-3.7 s on two with one thread each."""
    if threads == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def flicker(
    frames: Iterable[np.ndarray] | torch.Tensor,
    *,
    estimator="dis_medium",
    max_side: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> FlickerReport:
    """Flicker of a frame sequence (see the module docstring for the definition).

    Args:
        frames: ``(N,3,H,W)`` float tensor in [0,1], or any iterable of ``(H,W,3)`` uint8 RGB arrays (streamed:
            a few frames per worker are held at a time).
        estimator: a flow estimator or its name (``animator.backends.flow``).
        max_side: measure on frames shrunk (area averaging) so their longer side is at most this many pixels:
            about 4x faster per halving. Values depend on the measuring size (finer detail per pixel costs more
            interpolation error), so compare videos measured at the same ``max_side``. ``None``: full size.
        workers: frame pairs measured at the same time, each on a thread with its own estimator (OpenCV's flow
            and torch's operations on one frame use about one core; torch runs one thread per worker meanwhile).
            Default: torch's thread count, at most 8. Only OpenCV estimators given by name run in parallel; an
            estimator object or RAFT measures one pair at a time. The values do not depend on it (beyond float
            rounding: torch's sums differ in the last bits with its thread count).
        progress: called with the number of frame pairs measured so far, after each one.

    Returns:
        a :class:`FlickerReport` with ``.mean``, ``.series`` ``(N-1,)`` and ``.to_dict()``; values in 0-255.

    Raises:
        AnimatorError: no frames, frames of different sizes or of the wrong type.
    """
    from animator.backends.flow import load_flow_estimator

    if max_side is not None and max_side < 16:
        raise AnimatorError(f"max_side must be >= 16 pixels, got {max_side}", field="max_side")
    threads = _workers(estimator, workers)
    if threads > 1:
        flow_model = _PerThread(estimator)
        load_flow_estimator(estimator)  # an unknown name fails here, before any thread starts
    else:
        flow_model = load_flow_estimator(estimator) if isinstance(estimator, str) else estimator
    name = (
        flow_model.name
        if isinstance(flow_model, _PerThread)
        else getattr(flow_model, "name", type(flow_model).__name__)
    )
    results: list[tuple[float, float]] = []
    count = 0

    def measure(frame_a: Future, frame_b: Future) -> tuple[float, float]:
        # both frames were queued before this pair, so they are done or being made by another worker: no deadlock
        with torch.inference_mode():
            return _pair_flicker(flow_model, frame_a.result(), frame_b.result())

    def prepare(frame) -> torch.Tensor:
        with torch.inference_mode():
            return _as_tensor(frame, max_side)

    pending: collections.deque[Future] = collections.deque()

    def collect(keep: int) -> None:
        while len(pending) > keep:
            results.append(pending.popleft().result())
            if progress is not None:
                progress(len(results))

    with (
        _one_torch_thread_per_worker(threads),
        ThreadPoolExecutor(threads, thread_name_prefix="flicker") if threads > 1 else _Inline() as pool,
    ):
        previous = None
        try:
            for frame in _frames_checked(frames):
                count += 1
                current = pool.submit(prepare, frame)
                if previous is not None:
                    pending.append(pool.submit(measure, previous, current))
                    collect(keep=2 * threads)  # bounded: a long video is never held in memory
                previous = current
            collect(keep=0)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    if count == 0:
        raise AnimatorError("no frames to measure", field="frames", hint="give at least one frame (two for a value)")
    return FlickerReport(
        series=np.asarray([value for value, _ in results], dtype=np.float64),
        consistent_fraction=np.asarray([fraction for _, fraction in results], dtype=np.float64),
        estimator=name,
    )


class _Inline:
    """A stand-in for a one-thread executor: runs each call at once, on the caller's thread."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def submit(function, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def read_video_frames(path: str, max_frames: int | None) -> Iterator[np.ndarray]:
    """The first ``max_frames`` (None: all) frames of a video as (H,W,3) uint8 RGB; missing, unreadable and
    frameless files raise :class:`AnimatorError`."""
    import imageio_ffmpeg

    if not os.path.isfile(path):
        raise AnimatorError("video file not found", file=path, hint="check the path")
    reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
    try:
        meta = next(reader)
    except Exception as exc:  # ffmpeg could not open or parse it
        text = str(exc)
        if "does not contain any stream" in text or "Stream map" in text:
            raise AnimatorError(
                "the file has no video frames", file=path, hint="check that the file holds a video stream"
            ) from exc
        first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise AnimatorError(
            f"ffmpeg cannot read this file as a video ({first_line})",
            file=path,
            hint="give any file ffmpeg can decode (mp4, mov, webm, gif, ...)",
        ) from exc
    width, height = meta["size"]
    produced = 0
    try:
        for raw in reader:
            if max_frames is not None and produced >= max_frames:
                break
            yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            produced += 1
    except RuntimeError as exc:  # ffmpeg failed mid-stream (a truncated file)
        raise AnimatorError(f"ffmpeg failed while decoding frame {produced}: {exc}", file=path) from exc
    finally:
        reader.close()
    if produced == 0:
        raise AnimatorError("the video has no frames", file=path, hint="check that the file holds a video stream")


def flicker_of_video(
    path: str | os.PathLike,
    *,
    estimator="dis_medium",
    max_frames: int | None = None,
    max_side: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> FlickerReport:
    """:func:`flicker` of a video file (anything ffmpeg reads), decoded with ``imageio_ffmpeg.read_frames``.

    Args:
        path: the video.
        estimator: a flow estimator or its name.
        max_frames: measure only the first this many frames.
        max_side: shrink frames so their longer side is at most this (see :func:`flicker`).
        workers, progress: as for :func:`flicker`.

    Raises:
        AnimatorError: missing, unreadable or zero-frame file.
    """
    path = os.fspath(path)
    if max_frames is not None and max_frames < 1:
        raise AnimatorError(f"max_frames must be >= 1, got {max_frames}", field="max_frames")
    return flicker(
        read_video_frames(path, max_frames), estimator=estimator, max_side=max_side, workers=workers, progress=progress
    )


# ------------------------------------------------------------------------------------------------------------ drift


@dataclass(frozen=True)
class DriftReport:
    """How far every frame has drifted from the first, one value per frame (frame 0 is the reference).

    - ``sharpness``: variance of the Laplacian of the grey frame over frame 0's (high-frequency energy). Below 1:
      the picture softens (repeated resampling); above 1: it sharpens or grows noise and crunchy edges ("burn").
    - ``color_shift``: CIE76 delta E between the mean CIELAB colour of the frame and of frame 0 (about 2.3 is a
      just noticeable difference; a feedback loop's colour drift climbs steadily).
    - ``saturation``: mean CIELAB chroma over frame 0's (above 1: colours burn towards saturation).
    - ``contrast``: standard deviation of CIELAB lightness over frame 0's (RMS contrast).
    """

    sharpness: np.ndarray  # (N,)
    color_shift: np.ndarray  # (N,)
    saturation: np.ndarray  # (N,)
    contrast: np.ndarray  # (N,)

    SERIES = ("sharpness", "color_shift", "saturation", "contrast")

    @property
    def frames(self) -> int:
        return int(self.sharpness.size)

    def to_dict(self) -> dict:
        """Plain JSON-able numbers: for each measure its final value, its extreme and the per-frame series."""
        out: dict = {
            "metric": "drift",
            "units": "ratios to frame 0 (sharpness, saturation, contrast); delta E CIE76 (color_shift)",
            "frames": self.frames,
        }
        for name in self.SERIES:
            series = getattr(self, name)
            extreme = series.max() if name == "color_shift" else series[np.abs(np.log(series)).argmax()]
            out[name] = {
                "last": float(series[-1]),
                "extreme": float(extreme),
                "series": [round(float(v), 4) for v in series],
            }
        return out


def _frame_statistics(frame: np.ndarray) -> tuple[float, np.ndarray, float, float]:
    """(Laplacian variance of grey, mean L a b, mean chroma, std of L) of an (H,W,3) uint8 RGB frame."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    lab = cv2.cvtColor(frame.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2Lab)  # L 0-100, a b
    lightness = lab[..., 0]
    chroma = np.sqrt(lab[..., 1] ** 2 + lab[..., 2] ** 2)
    mean_lab = lab.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    return (
        float(laplacian.var(dtype=np.float64)),
        mean_lab,
        float(chroma.mean(dtype=np.float64)),
        float(lightness.std(dtype=np.float64)),
    )


class DriftMeter:
    """Accumulates :class:`DriftReport` values one frame at a time (so a video is measured while it streams past
    another metric): ``meter.add(frame)`` for every ``(H,W,3)`` uint8 RGB frame, then ``meter.report()``."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, np.ndarray, float, float]] = []

    def add(self, frame: np.ndarray | torch.Tensor) -> None:
        if isinstance(frame, torch.Tensor):  # (1,3,H,W) or (3,H,W) float in [0,1]
            image = frame[0] if frame.ndim == 4 else frame
            frame = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise AnimatorError(f"drift needs (H,W,3) uint8 RGB frames, got {shape}", field="frames")
        self._rows.append(_frame_statistics(np.ascontiguousarray(frame)))

    def report(self) -> DriftReport:
        if not self._rows:
            raise AnimatorError("no frames to measure", field="frames", hint="give at least two frames")
        sharp, lab, chroma, spread = zip(*self._rows)
        tiny = 1e-9  # a flat first frame (no detail, no colour) still gives finite ratios
        lab = np.stack(lab)
        return DriftReport(
            sharpness=np.asarray(sharp) / max(sharp[0], tiny),
            color_shift=np.linalg.norm(lab - lab[0], axis=1),
            saturation=np.asarray(chroma) / max(chroma[0], tiny),
            contrast=np.asarray(spread) / max(spread[0], tiny),
        )


def drift(frames: Iterable[np.ndarray] | torch.Tensor, *, progress: Callable[[int], None] | None = None) -> DriftReport:
    """Drift of a frame sequence against its first frame (see :class:`DriftReport`).

    Args:
        frames: any iterable of ``(H,W,3)`` uint8 RGB frames (streamed: one is held at a time; a run folder's
            ``RunFolder.journal_frames()`` works), or an ``(N,3,H,W)`` float tensor in [0,1].
        progress: called with the number of frames measured so far.

    Example:
        >>> still = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
        >>> report = drift([still[0], still[0], still[0] // 2])   # the last frame at half the amplitude
        >>> [round(float(v), 1) for v in report.sharpness]         # a quarter of the high-frequency energy
        [1.0, 1.0, 0.3]
    """
    meter = DriftMeter()
    for index, frame in enumerate(frames, start=1):
        meter.add(frame)
        if progress is not None:
            progress(index)
    return meter.report()
