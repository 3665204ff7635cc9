"""animator.notebook: the live view (through its callback, with a fake display sink), plots, preview and play."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("IPython")
pytest.importorskip("matplotlib")

from animator.errors import AnimatorError  # noqa: E402
from animator.events import FrameRendered, MetricProgress, RenderFinished, RenderStarted  # noqa: E402
from animator.notebook import (  # noqa: E402
    LiveView,
    flow_to_color,
    in_notebook,
    play,
    plot_schedules,
    preview,
    show_depth,
    show_flow,
    show_masks,
)

SIZE = 64


class FakeSink:
    """Records what a LiveView would display (the real sinks need a Jupyter front end)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray | None, str]] = []

    def update(self, image, status) -> None:
        self.calls.append((None if image is None else image.copy(), status))

    @property
    def images(self) -> list[np.ndarray]:
        return [image for image, _ in self.calls if image is not None]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frame_event(index: int, total: int = 100) -> FrameRendered:
    image = np.full((8, 12, 3), index, dtype=np.uint8)  # each frame recognisable by its value
    return FrameRendered(
        index=index,
        total_frames=total,
        image=image,
        diffused=False,
        seed=index,
        elapsed_s=index * 0.01,
        fps=100.0,
        eta_s=(total - index - 1) * 0.01,
    )


def run_burst(view: LiveView, clock: FakeClock, *, spacing_s: float, frames: int = 100) -> None:
    view(RenderStarted(total_frames=frames, first_frame=0, width=12, height=8, fps=24, run_dir=None))
    for index in range(frames):
        view(frame_event(index, frames))
        clock.now += spacing_s
    view(RenderFinished(output=None, frames=frames, elapsed_s=frames * spacing_s, run_dir=None))


# --- live view -------------------------------------------------------------------------------------------------


def test_live_view_limits_a_burst_of_100_frames_and_shows_the_last():
    sink, clock = FakeSink(), FakeClock()
    view = LiveView(max_updates_per_s=4, sink=sink, clock=clock)
    run_burst(view, clock, spacing_s=0.01)  # 100 frames in one second
    # One update per 0.25 s over the second (frames 0, 25, 50, 75) plus the last frame at the end.
    shown = [int(image[0, 0, 0]) for image in sink.images]
    assert shown == [0, 25, 50, 75, 99]
    assert "frame 100/100" in [status for image, status in sink.calls if image is not None][-1]
    assert sink.calls[-1][0] is None and sink.calls[-1][1].startswith("done: 100 frames")


def test_live_view_with_all_events_at_one_instant_updates_twice():
    sink, clock = FakeSink(), FakeClock()
    run_burst(LiveView(max_updates_per_s=4, sink=sink, clock=clock), clock, spacing_s=0.0)
    assert [int(image[0, 0, 0]) for image in sink.images] == [0, 99]


def test_live_view_shows_the_last_frame_then_the_metrics_progress_at_its_rate():
    sink, clock = FakeSink(), FakeClock()
    view = LiveView(max_updates_per_s=4, sink=sink, clock=clock)
    view(RenderStarted(total_frames=10, first_frame=0, width=12, height=8, fps=24, run_dir=None))
    for index in range(10):
        view(frame_event(index, 10))  # all at one instant: frame 0 shown, 9 pending
    for done in range(41):  # 40 pairs over 2 s
        view(MetricProgress("flicker", done, 40))
        clock.now += 0.05
    view(RenderFinished(output=None, frames=10, elapsed_s=2.0, run_dir=None))
    assert [int(image[0, 0, 0]) for image in sink.images] == [0, 9]  # the last frame before the metric starts
    statuses = [status for image, status in sink.calls if image is None and "measuring" in status]
    assert statuses[0] == "video written; measuring flicker: 0/40"
    assert statuses[-1].endswith("40/40") and len(statuses) <= 2 * 4 + 2  # ~4 a second, and the end
    assert sink.calls[-1][1].startswith("done: 10 frames")


def test_live_view_shows_every_frame_of_a_slow_render():
    sink, clock = FakeSink(), FakeClock()
    run_burst(LiveView(max_updates_per_s=4, sink=sink, clock=clock), clock, spacing_s=0.5, frames=10)
    assert [int(image[0, 0, 0]) for image in sink.images] == list(range(10))


def test_live_view_status_counts_frames_of_the_rendered_range_and_scales_the_picture():
    sink, clock = FakeSink(), FakeClock()
    view = LiveView(sink=sink, clock=clock, scale=0.5)
    view(RenderStarted(total_frames=5, first_frame=10, width=12, height=8, fps=24, run_dir=None, notes=("a note",)))
    assert "a note" in sink.calls[0][1]
    event = frame_event(11)
    view(event)
    image, status = sink.calls[-1]
    assert image.shape == (4, 6, 3)
    assert re.match(r"frame 12/15 · 100\.0 fps · ETA 0:01", status), status


def test_live_view_rejects_a_bad_rate():
    with pytest.raises(AnimatorError, match="max_updates_per_s"):
        LiveView(max_updates_per_s=0)


def test_not_in_a_notebook_under_pytest():
    assert in_notebook() is False


# --- keyframe files and the real render ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyframes(tmp_path_factory) -> Path:
    from skimage import data

    folder = tmp_path_factory.mktemp("notebook")
    Image.fromarray(data.astronaut()).resize((2 * SIZE, 2 * SIZE), Image.Resampling.LANCZOS).save(folder / "init.png")
    settings = {
        "width": 2 * SIZE,
        "height": 2 * SIZE,
        "fps": 12,
        "frames": 24,
        "mode": "3d",
        "seed": 5,
        "init_image": "init.png",
        "output": {"preset": "ultrafast"},
        "motion": {"translation_z": "0:(0), 12:(4), 23:(1)", "rotation_3d_y": "0:(0), 10:(1)"},
    }
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_live_view_shows_the_last_frame_of_a_real_render(keyframes):
    import animator

    sink = FakeSink()
    events = list(animator.render_frames(keyframes, frames=range(0, 6), callbacks=[LiveView(sink=sink)]))
    assert len(events) == 6
    np.testing.assert_array_equal(sink.images[-1], events[-1].image)
    assert sink.calls[-1][1].startswith("done: 6 frames")


def test_preview_renders_a_small_video_through_the_render_api(keyframes):
    from animator.video import probe

    player = preview(keyframes, frames=6, scale=0.5)
    info = probe(player.path)
    assert (info.frames, info.width, info.height) == (6, SIZE, SIZE)
    assert "<video" in player.data and base64.b64encode(player.path.read_bytes()).decode() in player.data
    for wrong, words in ((0, "positive number"), ("6", "must be a range"), (range(500, 510), "after the animation")):
        with pytest.raises(AnimatorError, match=words):
            preview(keyframes, frames=wrong)


def cli_error(*args) -> str:
    from animator.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return result.output


def test_preview_of_a_missing_file_raises_the_clis_error(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(AnimatorError) as caught:
        preview(missing)
    assert "missing.yaml" in str(caught.value)
    assert f"error: {caught.value}" in cli_error("render", missing)


def test_preview_of_a_bad_field_raises_the_clis_error(tmp_path, keyframes):
    bad = tmp_path / "bad.yaml"
    bad.write_text(keyframes.read_text().replace("width: 128", "width: 100"))  # not a multiple of 8
    with pytest.raises(AnimatorError) as caught:
        preview(bad)
    assert "width" in str(caught.value) and caught.value.line is not None
    assert f"error: {caught.value}" in cli_error("render", bad)


def test_play_embeds_the_file(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    html = play(video, width=320).data
    source = re.search(r'src="data:video/mp4;base64,([^"]+)"', html)
    assert source and base64.b64decode(source.group(1)) == video.read_bytes()
    assert "<video" in html and 'width="320"' in html
    with pytest.raises(AnimatorError, match="no such video"):
        play(tmp_path / "nothing.mp4")


# --- plots -----------------------------------------------------------------------------------------------------


def figure_pixels(figure) -> np.ndarray:
    """The figure rendered by its own canvas, (H, W, 3) uint8."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3]


def assert_drawn(figure, size: tuple[int, int]) -> np.ndarray:
    pixels = figure_pixels(figure)
    assert figure.canvas.get_width_height() == size
    assert pixels.shape == (size[1], size[0], 3)
    assert pixels.std() > 10, "the figure is blank"
    return pixels


def test_plot_schedules_draws_the_varying_schedules_with_keyframes_marked(keyframes):
    figure = plot_schedules(keyframes)
    labels = [axes.get_ylabel() for axes in figure.axes]
    assert "translation_z" in labels and "rotation_3d_y" in labels
    assert "translation_x" not in labels  # constant schedules are left out by default
    assert_drawn(figure, (1000, int(100 * (0.4 + 1.5 * len(labels)))))
    axes = figure.axes[labels.index("translation_z")]
    curve, marks = axes.lines[0], axes.lines[1]
    assert list(marks.get_xdata()) == [0, 12, 23]
    np.testing.assert_allclose(marks.get_ydata(), [0, 4, 1])
    np.testing.assert_allclose(curve.get_ydata()[6], 2.0)  # halfway between the keyframes 0 and 12


def test_plot_schedules_by_name_and_frame_range(keyframes):
    figure = plot_schedules(keyframes, ["translation_z"], frames=range(5, 15))
    (axes,) = figure.axes
    assert list(axes.lines[0].get_xdata()) == list(range(5, 15))
    assert list(axes.lines[1].get_xdata()) == [12]
    with pytest.raises(AnimatorError, match="did you mean 'translation_z'"):
        plot_schedules(keyframes, ["translation_zz"])


def test_show_depth_shows_the_image_and_a_depth_map_of_its_size(keyframes):
    figure = show_depth(keyframes.parent / "init.png")
    assert_drawn(figure, (800, 450))
    depth_image = figure.axes[1].images[0].get_array()
    assert depth_image.shape == (2 * SIZE, 2 * SIZE) and np.ptp(depth_image) > 0


def test_an_image_path_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    # the notebook reads images with the project's pixel check: a PNG declaring 400 megapixels is never decoded
    from animator.testing.images import png_declaring

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(20000, 20000))
    with pytest.raises(AnimatorError, match="the limit is 64 megapixels") as caught:
        show_depth(bomb)
    assert caught.value.file == str(bomb)
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(png_declaring(64, 64)[:40])  # cut inside the header
    with pytest.raises(AnimatorError, match="cannot read the image"):
        show_depth(damaged)


def test_flow_to_color_encodes_direction_as_hue_and_zero_as_white():
    flow = np.zeros((2, 1, 4))
    flow[:, 0, 1] = (2.0, 0.0)  # right
    flow[:, 0, 2] = (0.0, -2.0)  # up
    flow[:, 0, 3] = (-1.0, 0.0)  # left, half speed
    colors = flow_to_color(flow)[0]
    np.testing.assert_allclose(colors[0], [1, 1, 1])
    np.testing.assert_allclose(colors[1], [1, 0, 0])  # hue 0: red
    np.testing.assert_allclose(colors[2], [0.5, 0, 1])  # hue 270 degrees: violet
    np.testing.assert_allclose(colors[3], [0.5, 1, 1])  # hue 180 degrees at half saturation: light cyan


def test_show_flow_of_a_known_shift_is_one_colour():
    from skimage import data

    a = np.asarray(Image.fromarray(data.astronaut()).resize((96, 96)))
    b = np.roll(a, (0, 4), axis=(0, 1))  # b is a moved 4 px right: a(x) = b(x + (4, 0))
    figure = show_flow(a, b, method="dis_medium")
    assert_drawn(figure, (1200, 450))
    colors = figure.axes[2].images[0].get_array()[24:72, 24:72]  # inside, away from the wrapped border
    red = (colors[..., 0] > 0.9) & (colors[..., 1] < 0.3) & (colors[..., 2] < 0.3)
    assert red.mean() > 0.9


def test_show_masks_tints_invalid_pixels_and_checks_sizes():
    image = np.full((32, 48, 3), 0.5)
    valid = np.ones((32, 48))
    valid[:, :10] = 0
    figure = show_masks(image, {"valid": valid})
    assert_drawn(figure, (800, int(100 * (4.0 * 32 / 48 + 0.5))))  # two 4-inch panels at 100 dpi
    overlay = figure.axes[1].images[0].get_array()
    np.testing.assert_allclose(overlay[0, 20], [0.5, 0.5, 0.5])
    assert overlay[0, 5, 0] > 0.6 and overlay[0, 5, 1] < 0.4
    with pytest.raises(AnimatorError, match="masks.valid"):
        show_masks(image, {"valid": valid[:16]})
