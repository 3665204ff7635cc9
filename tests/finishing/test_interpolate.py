"""`animator interpolate`: the frame-count and sync rules, the flow method against known in-betweens, every error."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from finishing_scenes import psnr, sliding_scene, write_folder

from animator.cli import main
from animator.errors import AnimatorError
from animator.finishing.flow_interp import FlowTweener
from animator.finishing.frames import open_frames
from animator.finishing.interpolate import BlendTweener, interpolate, output_times
from animator.images import load_frame
from animator.video import VideoWriter, probe

pytest.importorskip("skimage.data")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scene() -> list[np.ndarray]:
    return sliding_scene(frames=4)


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory, scene) -> object:
    folder = tmp_path_factory.mktemp("scene") / "frames"
    write_folder(folder, scene[::2])
    return folder


def cli(*args):
    return CliRunner().invoke(main, ["interpolate", *map(str, args)])


def test_output_times_follow_the_factor_rule():
    times = list(output_times(3, 3.0, exact_factor=3))
    assert times == [(0, 0.0), (0, 1 / 3), (0, 2 / 3), (1, 0.0), (1, 1 / 3), (1, 2 / 3), (2, 0.0), (2, 0.0), (2, 0.0)]
    # 24 -> 60 fps: frame j shows input time j * 24 / 60; 10 frames become 25, the last ones hold frame 9
    times = list(output_times(10, 2.5))
    assert len(times) == 25 and times[0] == (0, 0.0) and times[5] == (2, 0.0)
    assert times[1] == (0, pytest.approx(0.4)) and times[-1] == (9, 0.0)


def test_flow_in_betweens_are_closer_to_the_truth_than_a_blend(scene):
    flow, blend = FlowTweener("fast", 256), BlendTweener()
    for k in range(3):
        a, truth, b = scene[2 * k], scene[2 * k + 1], scene[2 * k + 2]
        made, faded = flow.pair(a, b)(0.5), blend.pair(a, b)(0.5)
        assert psnr(made, truth) > psnr(faded, truth) + 5.0
        assert psnr(made, truth) > 28.0


@pytest.mark.parametrize("estimator", ["dis_fine", "farneback"])
def test_flow_from_the_render_s_other_estimators(scene, estimator):
    a, truth, b = scene[0], scene[1], scene[2]
    made = FlowTweener(estimator, 128).pair(a, b)(0.5)
    assert psnr(made, truth) > psnr(BlendTweener().pair(a, b)(0.5), truth) + 3.0


def test_flow_at_a_reduced_size_stays_close_to_full_size(scene):
    a, truth, b = scene[0], scene[1], scene[2]
    full = psnr(FlowTweener("medium", 128).pair(a, b)(0.5), truth)
    half = psnr(FlowTweener("medium", 64).pair(a, b)(0.5), truth)
    assert half > full - 3.0


def test_factor_keeps_every_input_frame_and_holds_the_last(tmp_path, scene, scene_folder):
    out, frames = tmp_path / "x3.mp4", tmp_path / "frames"
    result = cli(scene_folder, "-o", out, "--factor", 3, "--input-fps", 8, "--frames-dir", frames)
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.frames, info.fps) == (12, 24.0)
    written = [load_frame(p) for p in sorted(frames.glob("*.png"))]
    assert len(written) == 12
    for k, original in enumerate(scene[::2]):
        assert np.array_equal(written[3 * k], original)  # frame k*N is input frame k, unchanged
    assert np.array_equal(written[10], scene[6]) and np.array_equal(written[11], scene[6])
    # the new frames are in between: a third of the way is closer to the truth at 1/3 than either neighbour
    for k in range(3):
        middle = (written[3 * k + 1].astype(np.int32) + written[3 * k + 2]) // 2
        assert psnr(middle, scene[2 * k + 1]) > psnr(scene[2 * k], scene[2 * k + 1])


def test_fps_and_slowmo(tmp_path, scene_folder):
    assert cli(scene_folder, "-o", tmp_path / "f.mp4", "--fps", 20, "--input-fps", 8).exit_code == 0
    info = probe(tmp_path / "f.mp4")
    assert (info.frames, info.fps) == (10, 20.0)
    assert cli(scene_folder, "-o", tmp_path / "s.mp4", "--factor", 2, "--slowmo", "--input-fps", 8).exit_code == 0
    info = probe(tmp_path / "s.mp4")
    assert (info.frames, info.fps) == (8, 8.0)


def _video_with_sound(path, frames, fps):
    import subprocess

    from animator.video import ffmpeg_exe

    silent = path.with_name("silent.mp4")
    with VideoWriter(silent, width=frames[0].shape[1], height=frames[0].shape[0], fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    seconds = len(frames) / fps
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-c:v", "copy", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip


def test_the_soundtrack_is_carried_over_in_sync(tmp_path, scene):
    source = tmp_path / "in.mp4"
    _video_with_sound(source, scene[::2] * 3, fps=6)  # 12 frames, 2 s
    out = tmp_path / "out.mp4"
    result = interpolate(source, out, factor=2, method="blend")
    info = probe(out)
    assert result.frames == info.frames == 24 and info.fps == 12.0
    assert info.has_audio and info.audio_duration_s == pytest.approx(2.0, abs=0.1)
    assert info.frames / info.fps == pytest.approx(probe(source).frames / probe(source).fps)
    with pytest.raises(AnimatorError, match="the output .* is the input"):
        interpolate(source, source, factor=2)
    assert probe(source).has_audio and probe(source).frames == 12
    slow = tmp_path / "slow.mp4"
    interpolate(source, slow, factor=2, method="blend", slowmo=True)
    assert not probe(slow).has_audio


@pytest.mark.parametrize(
    "args, words",
    [
        (["--factor", 1], "whole number >= 2"),
        (["--factor", 0], "whole number >= 2"),
        (["--fps", 6], "must be above the input's 8"),
        (["--fps", 8], "must be above the input's 8"),
        ([], "either a factor or an output fps"),
        (["--factor", 2, "--fps", 16], "either a factor or an output fps"),
        (["--factor", 2, "--method", "camera"], "needs a run folder"),
    ],
)
def test_bad_settings_exit_2_and_write_nothing(tmp_path, scene_folder, args, words):
    out = tmp_path / "out.mp4"
    result = cli(scene_folder, "-o", out, "--input-fps", 8, *args)
    assert result.exit_code == 2 and words in result.output
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_exit_2(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    mixed = tmp_path / "mixed"
    write_folder(mixed, [np.zeros((16, 16, 3), np.uint8)])
    from animator.images import save_frame

    save_frame(mixed / "0001.png", np.zeros((16, 24, 3), np.uint8))
    for source, words in (
        (tmp_path / "missing.mp4", "no such file"),
        (text, "cannot read a video stream"),
        (empty, "holds no images"),
        (mixed, "every image of the folder must have the same size"),
    ):
        result = cli(source, "-o", tmp_path / "out.mp4", "--factor", 2)
        assert result.exit_code == 2 and words in result.output, result.output
        assert not (tmp_path / "out.mp4").exists()
    broken = tmp_path / "broken"
    write_folder(broken, [np.zeros((16, 16, 3), np.uint8)] * 2)
    (broken / "0001.png").write_bytes(b"not a png")
    with pytest.raises(AnimatorError, match="cannot read the image"):
        interpolate(open_frames(broken), tmp_path / "out.mp4", factor=2)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4"] == ["notes.mp4"]
