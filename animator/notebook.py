"""Jupyter helpers: a live view of a running render, quick previews, and plots of schedules, depth, flow and masks.

Everything here goes through the same API as the command line (:func:`animator.render` and its event callbacks), so
a notebook never runs a second render loop::

    from animator.notebook import plot_schedules, preview, show_depth, play
    plot_schedules("keyframes/demo.yaml")                     # per-frame curves, keyframes marked
    preview("keyframes/demo.yaml", frames=24, scale=0.5)      # low-resolution render, played inline
    result = animator.render("keyframes/demo.yaml", "demo.mp4")   # a live view appears by itself in Jupyter
    play(result.output)

IPython, ipywidgets and matplotlib are imported only when a function needs them: importing this module is cheap.
Figures are :class:`matplotlib.figure.Figure` objects that are not registered with pyplot, so they never pile up
in memory; Jupyter shows a figure returned as the last value of a cell.
"""

from __future__ import annotations

import base64
import difflib
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from animator.errors import AnimatorError
from animator.events import FrameRendered, MetricProgress, RenderFinished, RenderStarted
from animator.plan import frame_span

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

__all__ = [
    "in_notebook", "LiveView", "DisplaySink", "preview", "plot_schedules", "show_depth", "show_flow", "show_masks",
    "show_control", "play", "flow_to_color",
]  # fmt: skip

_PANEL_INCHES = 4.0  # width of one image panel in the figures
_DPI = 100
_MIN_SIDE = 64  # the smallest width or height a keyframe file accepts


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a render attaches a :class:`LiveView` by itself), False elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    # A terminal IPython has no kernel; a Jupyter kernel's shell (ZMQInteractiveShell) does.
    return shell is not None and getattr(shell, "kernel", None) is not None


# ------------------------------------------------------------------------------------------------- live view


class DisplaySink(Protocol):
    """Where a :class:`LiveView` puts its updates.

    ``update(image, status)``: show ``image`` (``(H, W, 3)`` uint8 RGB, or None to keep the current picture) and the
    one-line ``status`` text, replacing what was shown before (never appending new output).
    """

    def update(self, image: np.ndarray | None, status: str) -> None: ...


class LiveView:
    """A render callback that shows the latest frame, ``frame i/N``, fps and ETA in place while a render runs.

    Inside Jupyter :func:`animator.render` attaches one by itself; pass your own to change its settings::

        animator.render("keyframes/demo.yaml", "demo.mp4", callbacks=[LiveView(max_updates_per_s=2, scale=0.5)])

    It never updates more than ``max_updates_per_s`` times a second, so a fast render does not flood the notebook
    (frames that arrive in between are skipped), and the last frame of a render is always shown.

    Args:
        max_updates_per_s: the most picture updates per second (> 0).
        sink: where updates go (see :class:`DisplaySink`). Default: an ipywidgets Image and Label when ipywidgets is
            installed, else IPython display handles updated in place; created at the first event.
        scale: display size relative to the rendered frame (0 < scale <= 1; 0.5 halves width and height).
        clock: seconds as a float, for the rate limit (tests pass a fake one). Default: ``time.monotonic``.
    """

    def __init__(
        self,
        *,
        max_updates_per_s: float = 4.0,
        sink: DisplaySink | None = None,
        scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(max_updates_per_s, (int, float)) or not max_updates_per_s > 0:
            raise AnimatorError(f"max_updates_per_s must be > 0, got {max_updates_per_s!r}", field="max_updates_per_s")
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise AnimatorError(f"scale must be in (0, 1], got {scale!r}", field="scale")
        self.min_interval_s = 1.0 / float(max_updates_per_s)
        self.scale = float(scale)
        self.sink = sink
        self._clock = clock
        self._last_update_s: float | None = None
        self._pending: FrameRendered | None = None  # newest frame not shown yet
        self._last_index = 0  # 1 + the last frame index this run renders (for "frame i/N")
        self.updates = 0  # picture updates so far (all renders)

    def __call__(self, event: Any) -> None:
        if isinstance(event, RenderStarted):
            self._on_started(event)
        elif isinstance(event, FrameRendered):
            self._on_frame(event)
        elif isinstance(event, MetricProgress):
            self._on_metric(event)
        elif isinstance(event, RenderFinished):
            self._on_finished(event)

    def _on_started(self, event: RenderStarted) -> None:
        self._pending, self._last_update_s = None, None
        self._last_index = event.first_frame + event.total_frames
        notes = "".join(f"\n{note}" for note in event.notes)
        self._sink().update(None, f"rendering {event.total_frames} frames at {event.width}x{event.height}{notes}")

    def _on_frame(self, event: FrameRendered) -> None:
        self._pending = event
        now = self._clock()
        if self._last_update_s is None or now - self._last_update_s >= self.min_interval_s:
            self._show_pending(now)

    def _on_metric(self, event: MetricProgress) -> None:
        now = self._clock()
        if event.done == 0:  # the last frame first: it is what the render ends on
            if self._pending is not None:
                self._show_pending(now)
        elif now - (self._last_update_s or 0.0) < self.min_interval_s and event.done < event.total:
            return
        work = "finishing" if event.metric == "finishing" else f"measuring {event.metric}"
        self._sink().update(None, f"video written; {work}: {event.done}/{event.total}")
        self._last_update_s = now

    def _on_finished(self, event: RenderFinished) -> None:
        if self._pending is not None:  # the last frame is always shown, however soon after the previous update
            self._show_pending(self._clock())
        where = f" -> {event.output}" if event.output else ""
        fps = event.frames / max(event.elapsed_s, 1e-9)
        self._sink().update(None, f"done: {event.frames} frames in {_duration(event.elapsed_s)} ({fps:.1f} fps){where}")

    def _show_pending(self, now: float) -> None:
        event, self._pending = self._pending, None
        total = self._last_index or event.total_frames
        status = f"frame {event.index + 1}/{total} · {event.fps:.1f} fps · ETA {_duration(event.eta_s)}"
        self._sink().update(_resize(event.image, self.scale), status)
        self._last_update_s = now
        self.updates += 1

    def _sink(self) -> DisplaySink:
        if self.sink is None:
            self.sink = _default_sink()
        return self.sink


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    from PIL import Image

    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return buffer.getvalue()


def _default_sink() -> DisplaySink:
    try:
        return _WidgetSink()
    except ImportError:
        return _IPythonSink()


class _WidgetSink:
    """An ipywidgets Image above a Label, displayed once and then updated in place."""

    def __init__(self) -> None:
        import ipywidgets
        from IPython.display import display

        self.image = ipywidgets.Image(format="png")
        self.label = ipywidgets.Label(value="")
        self.image.layout.display = "none"  # hidden until the first frame
        display(ipywidgets.VBox([self.image, self.label]))

    def update(self, image: np.ndarray | None, status: str) -> None:
        if image is not None:
            self.image.value = _png_bytes(image)
            self.image.layout.display = None
        self.label.value = status


class _IPythonSink:
    """Plain IPython display handles (``display_id``), for front ends without ipywidgets."""

    def __init__(self) -> None:
        from IPython.display import DisplayHandle

        self.image_handle = DisplayHandle()
        self.status_handle = DisplayHandle()
        self._shown_image = False
        self.status_handle.display({"text/plain": ""}, raw=True)

    def update(self, image: np.ndarray | None, status: str) -> None:
        from IPython.display import Image

        if image is not None:
            picture = Image(data=_png_bytes(image), format="png")
            if self._shown_image:
                self.image_handle.update(picture)
            else:
                self.image_handle.display(picture)
                self._shown_image = True
        self.status_handle.update({"text/plain": status}, raw=True)


# ------------------------------------------------------------------------------------------------- preview / play


def preview(config_or_path, *, frames: int | range = 48, scale: float = 0.5, **render_kw):
    """Renders a quick low-resolution preview and plays it inline.

    The render goes through :func:`animator.render` (the CLI's API) with the size overridden to ``scale`` times the
    file's (rounded to multiples of 8) and only ``frames``, into a temporary folder.

    Args:
        config_or_path: a keyframe file path, a config from :func:`animator.keyframes.load_config`, or a dict in the
            keyframe-file layout.
        frames: how many frames from the start (an int) or which ones (a ``range``).
        scale: size relative to the file's width and height (0 < scale <= 1).
        **render_kw: passed to :func:`animator.render` (``overrides``, ``callbacks``, ``run_dir`` ...).

    Returns:
        The inline player (:func:`play`) of the preview video; its ``path`` attribute is the mp4.

    Raises:
        AnimatorError: a bad path or keyframe file, exactly as ``animator render`` reports it.
    """
    import animator

    if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise AnimatorError(f"scale must be in (0, 1], got {scale!r}", field="scale")
    config = _load_config(config_or_path)
    frame_range = range(*frame_span(frames, config.frames))  # checked before a folder is made
    overrides = dict(render_kw.pop("overrides", None) or {})
    width = overrides.pop("width", None) or config.width
    height = overrides.pop("height", None) or config.height
    # Keyframe files need sides of at least 64 pixels: a smaller scale stops there, keeping the aspect ratio.
    scale = max(scale, _MIN_SIDE / min(width, height))
    overrides.update({"width": _multiple_of_8(width * scale), "height": _multiple_of_8(height * scale)})
    folder = Path(tempfile.mkdtemp(prefix="animator-preview-"))
    render_kw.setdefault("run_dir", folder / "run")
    render_kw.setdefault("metrics", False)  # the flicker metric costs a flow per frame; a preview does not need it
    source = config_or_path if isinstance(config_or_path, (str, os.PathLike, Mapping)) else config
    result = animator.render(source, folder / "preview.mp4", overrides=overrides, frames=frame_range, **render_kw)
    return play(result.output)


def _load_config(config_or_path):
    """The validated config, raising the same AnimatorError as the command line for a bad file."""
    from animator.keyframes import config_from_dict, load_config

    if isinstance(config_or_path, (str, os.PathLike)):
        return load_config(config_or_path)
    if isinstance(config_or_path, Mapping):
        return config_from_dict(config_or_path)
    if hasattr(config_or_path, "width") and hasattr(config_or_path, "frames"):
        return config_or_path
    raise AnimatorError(
        f"expected a keyframe file path, a config or a dict, got {type(config_or_path).__name__}",
        field="config_or_path",
    )


def _multiple_of_8(value: float) -> int:
    return max(_MIN_SIDE, int(round(value / 8.0)) * 8)


def play(video_path: str | os.PathLike, *, width: int | None = None):
    """An inline HTML5 player with the video embedded (base64), so it survives saving and sharing the notebook.

    Args:
        video_path: an ``.mp4`` (H.264 plays in every browser), ``.webm``, ``.mov`` or ``.gif`` file.
        width: display width in pixels (default: the video's own).

    Returns:
        ``IPython.display.HTML`` with a ``<video>`` element (an ``<img>`` for a GIF); ``.path`` is the file.
    """
    from IPython.display import HTML

    path = Path(video_path)
    if not path.is_file():
        raise AnimatorError(
            "no such video file", file=path, field="video_path", hint="render one first, e.g. animator.render(...)"
        )
    kinds = {
        ".mp4": "video/mp4",
        ".m4v": "video/mp4",
        ".webm": "video/webm",
        ".mov": "video/quicktime",
        ".gif": "image/gif",
    }
    kind = kinds.get(path.suffix.lower())
    if kind is None:
        raise AnimatorError(
            f"cannot play {path.suffix or 'a file without suffix'} inline",
            file=path,
            field="video_path",
            hint="use an .mp4, .webm, .mov or .gif file",
        )
    if width is not None and (not isinstance(width, int) or width < 1):
        raise AnimatorError(f"width must be a positive int, got {width!r}", field="width")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    size = f' width="{width}"' if width else ""
    if kind == "image/gif":
        html = f'<img src="data:image/gif;base64,{data}"{size}/>'
    else:
        html = (
            f"<video controls loop autoplay muted playsinline{size}>"
            f'<source src="data:{kind};base64,{data}" type="{kind}"></video>'
        )
    player = HTML(html)
    player.path = path
    return player


# ------------------------------------------------------------------------------------------------- plots


def _new_figure(width_in: float, height_in: float) -> Figure:
    """A figure with its own Agg canvas, not registered with pyplot (nothing accumulates, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _enable_inline_display()
    figure = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _enable_inline_display() -> None:
    """In a kernel, make sure a returned Figure renders as a PNG (the inline backend registers that formatter)."""
    if not in_notebook():
        return
    from IPython import get_ipython

    formatter = get_ipython().display_formatter.formatters["image/png"]
    from matplotlib.figure import Figure

    if Figure not in formatter.type_printers:
        formatter.for_type(Figure, lambda figure: _figure_png(figure))


def _figure_png(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_schedules(config_or_path, names: Sequence[str] | None = None, *, frames: range | None = None) -> Figure:
    """Per-frame curves of schedules, one row each, with their keyframes marked.

    Args:
        config_or_path: a keyframe file path, a loaded config or a dict.
        names: schedules to draw (see ``animator.keyframes.SCHEDULE_NAMES``). Default: every schedule that varies.
        frames: only these frames (default: all).

    Returns:
        A figure with one axes per schedule (frame on x, value on y).
    """
    from animator.keyframes import evaluate

    schedules = evaluate(_load_config(config_or_path))
    names = _schedule_names(schedules, names)
    index = np.arange(schedules.frames)
    if frames is not None:
        if not isinstance(frames, range):
            raise AnimatorError(f"frames must be a range, got {type(frames).__name__}", field="frames")
        index = index[frames.start : frames.stop : frames.step]
        if index.size == 0:
            raise AnimatorError(f"frames {frames} is empty or outside 0..{schedules.frames - 1}", field="frames")

    rows = max(len(names), 1)
    figure = _new_figure(10.0, 0.4 + 1.5 * rows)
    if not names:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "no schedule varies over the animation", ha="center", va="center")
        axes.set_axis_off()
        return figure
    axes_list = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for axes, name in zip(axes_list, names):
        values = np.asarray(schedules.values[name])
        axes.plot(index, values[index], color="tab:blue", linewidth=1.2)
        keys = [k for k in schedules.keyframes.get(name, ()) if index[0] <= k <= index[-1]]
        if keys:
            axes.plot(keys, values[keys], "o", color="tab:red", markersize=4, label="keyframe")
        axes.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        axes.grid(True, alpha=0.3)
    axes_list[-1].set_xlabel(f"frame ({schedules.fps:g} fps)")
    return figure


def _schedule_names(schedules, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [name for name, values in schedules.values.items() if np.ptp(np.asarray(values)) > 0]
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in schedules.values]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(schedules.values), n=1)
        raise AnimatorError(
            f"unknown schedule {unknown[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
            field="names",
            hint="known schedules: " + ", ".join(schedules.values),
        )
    return list(names)


def show_depth(image_or_path, *, model: str = "offline") -> Figure:
    """An image beside its estimated depth (relative inverse depth: bright is near).

    Args:
        image_or_path: an image file, a PIL image, an ``(H, W, 3)`` array (uint8, or float in [0, 1]) or a tensor
            ``(1, 3, H, W)`` / ``(3, H, W)`` in [0, 1].
        model: a depth model spec for :func:`animator.backends.depth.load_depth_estimator` (``offline`` needs no
            weights; ``depth-anything/Depth-Anything-V2-Small-hf`` is much better).
    """
    import torch

    from animator.backends.depth import load_depth_estimator

    picture = _as_array(image_or_path, "image_or_path")
    estimator = load_depth_estimator(model, device="cpu")
    with torch.no_grad():
        disparity = estimator(_as_tensor(picture))[0, 0].float().cpu().numpy()
    figure = _new_figure(2 * _PANEL_INCHES, _PANEL_INCHES * picture.shape[0] / picture.shape[1] + 0.5)
    left, right = figure.subplots(1, 2)
    _image_panel(left, picture, "image")
    shown = right.imshow(disparity, cmap="magma")
    right.set_title(f"depth: {getattr(estimator, 'name', model)} (bright = near)", fontsize=9)
    right.set_axis_off()
    figure.colorbar(shown, ax=right, shrink=0.8, label="relative inverse depth")
    return figure


def show_flow(a, b, *, method: str = "dis_medium") -> Figure:
    """Optical flow between two images as a colour-wheel picture (hue = direction, saturation = speed).

    The flow is the one :mod:`animator.backends.flow` computes: ``a(x) ~= b(x + flow(x))``.

    Args:
        a, b: images as for :func:`show_depth`, the same size.
        method: a flow estimator name (``dis_medium``, ``dis_fast``, ``farneback`` ...).
    """
    import torch

    from animator.backends.flow import load_flow_estimator

    first, second = _as_array(a, "a"), _as_array(b, "b")
    if first.shape != second.shape:
        raise AnimatorError(f"a and b must be the same size, got {first.shape[:2]} and {second.shape[:2]}", field="b")
    with torch.no_grad():
        flow = load_flow_estimator(method)(_as_tensor(first), _as_tensor(second))[0].float().cpu().numpy()
    speed = np.hypot(flow[0], flow[1])
    figure = _new_figure(3 * _PANEL_INCHES, _PANEL_INCHES * first.shape[0] / first.shape[1] + 0.5)
    panels = figure.subplots(1, 3)
    _image_panel(panels[0], first, "a")
    _image_panel(panels[1], second, "b")
    _image_panel(panels[2], flow_to_color(flow), f"flow ({method}), max {speed.max():.1f} px")
    wheel = panels[2].inset_axes([0.78, 0.02, 0.2, 0.2])
    _image_panel(wheel, _color_wheel(64), "")
    return figure


def flow_to_color(flow: np.ndarray, max_speed: float | None = None) -> np.ndarray:
    """``(2, H, W)`` flow in pixels -> ``(H, W, 3)`` float RGB: hue is the direction, saturation the speed.

    Right is red, down is yellow-green, left cyan, up violet (the angle of (dx, dy) in image axes); zero flow is
    white and ``max_speed`` (default: the largest speed in the flow) fully saturated.
    """
    from matplotlib.colors import hsv_to_rgb

    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise AnimatorError(f"flow must have shape (2, H, W), got {flow.shape}", field="flow")
    speed = np.hypot(flow[0], flow[1])
    limit = max_speed if max_speed is not None else max(float(speed.max()), 1e-9)
    hue = (np.arctan2(flow[1], flow[0]) / (2 * np.pi)) % 1.0
    saturation = np.clip(speed / limit, 0.0, 1.0)
    return hsv_to_rgb(np.stack([hue, saturation, np.ones_like(hue)], axis=-1))


def _color_wheel(size: int) -> np.ndarray:
    """The legend of :func:`flow_to_color`: flow pointing from the centre to each pixel, white outside the disc."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    wheel = flow_to_color(np.stack([x, y]), max_speed=size / 2.0)
    wheel[np.hypot(x, y) > size / 2.0] = 1.0
    return wheel


def show_masks(image, masks: Mapping[str, Any]) -> Figure:
    """The image, then one panel per mask: where the mask is 0 (invalid, inconsistent) the picture is tinted red.

    Args:
        image: as for :func:`show_depth`.
        masks: name -> mask of the image's size: ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, bool or float in
            [0, 1] (1 = valid), tensor or array; e.g. the valid and consistency masks of a warp.
    """
    picture = _as_array(image, "image")
    if not isinstance(masks, Mapping) or not masks:
        raise AnimatorError("masks must be a non-empty dict of name -> mask", field="masks")
    height, width = picture.shape[:2]
    figure = _new_figure(_PANEL_INCHES * (1 + len(masks)), _PANEL_INCHES * height / width + 0.5)
    panels = figure.subplots(1, 1 + len(masks), squeeze=False)[0]
    _image_panel(panels[0], picture, "image")
    red = np.array([1.0, 0.1, 0.1])
    for axes, (name, mask) in zip(panels[1:], masks.items()):
        valid = _as_mask(mask, name, (height, width))
        overlay = picture * valid[..., None] + (0.45 * picture + 0.55 * red) * (1 - valid[..., None])
        _image_panel(axes, overlay, f"{name}: {valid.mean():.1%} valid")
    return figure


def show_control(config_or_path, frame: int, **render_kw) -> Figure:
    """Each ControlNet unit's control image for ``frame``: what its ControlNet saw when the frame was diffused.

    A control image depends on everything before it (the warped previous frame, the tracked depth), so frames 0 to
    ``frame`` are rendered through :func:`animator.render_frames` (the CLI's API) and the frame's control inputs
    are recorded on the way; at a reduced ``overrides`` size the images are those of that smaller render.

    Args:
        config_or_path: a keyframe file path, a config or a dict in the keyframe-file layout, with ``controlnet:``.
        frame: the frame index; it must be a diffused frame (with ``cadence`` > 1, an anchor).
        **render_kw: passed to :func:`animator.render_frames` (``overrides``, ``callbacks``).

    Raises:
        AnimatorError: no units in the file, a frame outside the animation, or a frame that is not diffused.
    """
    import animator
    from animator.rendering.control import recording_control

    config = _load_config(config_or_path)
    if not config.controlnet:
        raise AnimatorError("the keyframe file has no controlnet: units", field="controlnet")
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < config.frames:
        raise AnimatorError(f"frame must be a frame index 0..{config.frames - 1}, got {frame!r}", field="frame")
    source = config_or_path if isinstance(config_or_path, (str, os.PathLike, Mapping)) else config
    with recording_control(frame) as record:
        for _ in animator.render_frames(source, frames=range(0, frame + 1), **render_kw):
            pass
    if not record:
        raise AnimatorError(
            f"frame {frame} is not diffused, so no ControlNet saw it",
            field="frame",
            hint=f"with cadence {config.cadence} the diffused frames are the anchors (every {config.cadence}th frame "
            "and the keyframes); pick one of those",
        )
    figure = _new_figure(_PANEL_INCHES * len(record), _PANEL_INCHES * config.height / config.width + 0.5)
    panels = figure.subplots(1, len(record), squeeze=False)[0]
    for axes, (index, (image, weight)) in zip(panels, sorted(record.items())):
        unit = config.controlnet[index]
        title = f"controlnet.{index}: {unit.source}, weight {weight:g}"
        if image is None:
            axes.set_title(title + " (off on this frame)", fontsize=9)
            axes.set_axis_off()
        else:
            _image_panel(axes, image[0].permute(1, 2, 0).numpy(), title)
    return figure


def _image_panel(axes, picture: np.ndarray, title: str) -> None:
    axes.imshow(np.clip(picture, 0, 1))
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()


def _as_array(image, name: str) -> np.ndarray:
    """Any supported image -> ``(H, W, 3)`` float64 RGB in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise AnimatorError("no such image file", file=path, field=name)
        from PIL import Image, UnidentifiedImageError

        from animator.images import check_image_pixels

        check_image_pixels(path)  # a header declaring more than MAX_IMAGE_PIXELS is refused before decoding
        try:
            with Image.open(path) as opened:
                image = np.asarray(opened.convert("RGB"))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
            raise AnimatorError(f"cannot read the image: {exc}", file=path, field=name) from exc
    elif hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    elif hasattr(image, "detach"):  # a torch tensor
        tensor = image.detach().float().cpu()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] != 3:
            raise AnimatorError(
                f"{name} must be a (1, 3, H, W) or (3, H, W) tensor, got {tuple(image.shape)}", field=name
            )
        return tensor.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise AnimatorError(f"{name} must be an (H, W, 3) image, got shape {array.shape}", field=name)
    array = array[..., :3]
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def _as_tensor(picture: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(picture, dtype=np.float32)).permute(2, 0, 1)[None]


def _as_mask(mask, name: str, size: tuple[int, int]) -> np.ndarray:
    array = mask.detach().float().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask, dtype=np.float64)
    array = np.asarray(array, dtype=np.float64)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != size:
        raise AnimatorError(
            f"mask {name!r} has shape {np.shape(mask)}, expected the image's {size}", field=f"masks.{name}"
        )
    return np.clip(array, 0.0, 1.0)
