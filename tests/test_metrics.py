"""The flicker metric and `animator metrics`, on sequences whose temporal behaviour the test builds."""

import json

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from animator.backends.flow.synthetic import render
from animator.errors import AnimatorError
from animator.metrics import FlickerReport, flicker, flicker_of_video

skimage_data = pytest.importorskip("skimage.data")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

SIZE = (96, 128)


@pytest.fixture(scope="module")
def panning() -> torch.Tensor:
    """(6,3,H,W): a photograph panned 2.5 px right and 1 px down per frame (temporally consistent)."""
    texture = skimage_data.coffee()
    frames = [render(texture, lambda x, y, k=k: (x - 2.5 * k + 60.0, y - 1.0 * k + 60.0), SIZE) for k in range(6)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def to_uint8_frames(frames: torch.Tensor) -> list[np.ndarray]:
    return [(f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for f in frames]


def test_consistent_motion_scores_low_and_flicker_scores_high(panning):
    generator = torch.Generator().manual_seed(0)
    noisy = (panning + 0.04 * torch.randn(panning.shape, generator=generator)).clamp(0, 1)
    gains = 1.0 + 0.08 * torch.randn(len(panning), 1, 1, 1, generator=generator)  # per-frame brightness jitter
    pumping = (panning * gains).clamp(0, 1)
    steady = flicker(panning)
    assert isinstance(steady, FlickerReport) and steady.series.shape == (5,) and steady.frames == 6
    assert steady.mean < 2.0  # the pan is followed by the flow: only interpolation error is left (0-255 units)
    assert flicker(noisy).mean > 3.0 * steady.mean + 3.0
    assert flicker(pumping).mean > 3.0 * steady.mean + 3.0
    # the series locates a single bad frame
    glitched = panning.clone()
    glitched[3] = (glitched[3] + 0.15).clamp(0, 1)
    series = flicker(glitched).series
    assert set(np.argsort(series)[-2:]) == {2, 3}  # pairs (2,3) and (3,4) involve frame 3


def test_units_are_grey_levels():
    base = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(1)) * 0.5
    frames = torch.cat([base, base + 10.0 / 255.0])  # every pixel 10 grey levels brighter, no motion
    assert flicker(frames, estimator="dis_fast").mean == pytest.approx(10.0, abs=0.5)


def test_uint8_frames_and_report_dict(panning):
    from_arrays = flicker(iter(to_uint8_frames(panning)))
    from_tensor = flicker(panning)
    assert from_arrays.mean == pytest.approx(from_tensor.mean, abs=0.3)
    summary = from_arrays.to_dict()
    assert summary["frames"] == 6 and len(summary["series"]) == 5 and summary["units"].endswith("0-255")
    assert summary["max"] >= summary["p95"] >= summary["median"] >= 0.0
    json.dumps(summary)
    # measured on frames shrunk to half size: one value per pair still, and noise still stands out
    small = flicker(panning, max_side=64)
    noisy = (panning + 0.04 * torch.randn(panning.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert small.series.shape == (5,) and 0.0 < small.mean < 0.6 * flicker(noisy, max_side=64).mean
    with pytest.raises(AnimatorError, match="max_side"):
        flicker(panning, max_side=4)
    single = flicker(panning[:1])
    assert single.mean == 0.0 and single.series.shape == (0,)


def test_bad_frames():
    with pytest.raises(AnimatorError, match="no frames"):
        flicker([])
    with pytest.raises(AnimatorError, match="same size"):
        flicker([np.zeros((32, 32, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)])
    with pytest.raises(AnimatorError, match="uint8"):
        flicker([np.zeros((32, 32, 3), np.float32)])
    with pytest.raises(AnimatorError, match=r"\(N,3,H,W\)"):
        flicker(torch.zeros(4, 1, 8, 8))


def measured_on_threads(monkeypatch) -> list[str]:
    """The names of the threads each frame pair is measured on (the real measurement still runs)."""
    import threading

    from animator import metrics

    names: list[str] = []
    measure = metrics._pair_flicker

    def recording(*args):
        names.append(threading.current_thread().name)
        return measure(*args)

    monkeypatch.setattr(metrics, "_pair_flicker", recording)
    return names


def test_pairs_measured_on_worker_threads_give_the_one_thread_values(panning, monkeypatch):
    frames = to_uint8_frames(panning)
    glitched = [frame.copy() for frame in frames]
    glitched[3] = np.clip(glitched[3].astype(int) + 30, 0, 255).astype(np.uint8)
    threads = measured_on_threads(monkeypatch)
    serial = flicker(iter(glitched), estimator="dis_fast", workers=1)
    assert set(threads) == {"MainThread"}
    threads.clear()
    done: list[int] = []
    torch_threads = torch.get_num_threads()
    parallel = flicker(iter(glitched), estimator="dis_fast", workers=3, progress=done.append)
    assert threads and all(name.startswith("flicker") for name in threads)  # each its own DIS (one shared crashes)
    assert torch.get_num_threads() == torch_threads  # one torch thread per worker only while measuring
    # same values, in frame order (pairs finish out of order on threads), and progress counts up to every pair
    np.testing.assert_allclose(parallel.series, serial.series, rtol=1e-6)
    np.testing.assert_allclose(parallel.consistent_fraction, serial.consistent_fraction, rtol=1e-6)
    assert set(np.argsort(parallel.series)[-2:]) == {2, 3} and done == [1, 2, 3, 4, 5]
    assert parallel.estimator == serial.estimator == "dis_fast"


def test_an_estimator_object_is_never_shared_between_threads(panning, monkeypatch):
    from animator.backends.flow import load_flow_estimator

    threads = measured_on_threads(monkeypatch)
    report = flicker(panning, estimator=load_flow_estimator("dis_fast"), workers=4)
    assert report.series.shape == (5,) and set(threads) == {"MainThread"}
    with pytest.raises(AnimatorError, match="workers"):
        flicker(panning, estimator="dis_fast", workers=0)


def test_a_bad_frame_mid_stream_stops_the_workers():
    import threading

    frames = [np.zeros((32, 32, 3), np.uint8)] * 4 + [np.zeros((32, 48, 3), np.uint8)]
    with pytest.raises(AnimatorError, match="frame 4 is 48x32"):
        flicker(iter(frames), estimator="dis_fast", workers=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("flicker")]
    with pytest.raises(AnimatorError, match="flow"):  # an unknown estimator fails before any thread starts
        flicker(iter(frames[:2]), estimator="dis_slowest", workers=2)


def write_video(path, frames: list[np.ndarray], fps: int = 12) -> None:
    height, width = frames[0].shape[:2]
    # lossless x264 in 4:4:4, so the decoded frames differ from the originals by colour-conversion rounding only
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv444p",
        output_params=["-crf", "0"],
        macro_block_size=1,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


@pytest.fixture(scope="module")
def panning_video(tmp_path_factory, panning):
    path = tmp_path_factory.mktemp("video") / "pan.mp4"
    write_video(path, to_uint8_frames(panning))
    return path


def test_flicker_of_video_matches_the_frames(panning_video, panning):
    report = flicker_of_video(panning_video)
    assert report.frames == 6
    assert report.mean == pytest.approx(flicker(panning).mean, abs=0.5)
    assert flicker_of_video(panning_video, max_frames=3).frames == 3


def test_flicker_of_bad_videos(tmp_path):
    with pytest.raises(AnimatorError, match="not found"):
        flicker_of_video(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(AnimatorError, match="cannot read") as info:
        flicker_of_video(text)
    assert str(text) in str(info.value)
    empty = tmp_path / "empty.mp4"
    import subprocess

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=32x32:d=1",
            "-frames:v",
            "0",
            "-c:v",
            "libx264",
            str(empty),
        ],
        check=True,
    )
    with pytest.raises(AnimatorError, match="no video frames"):
        flicker_of_video(empty)


def test_cli_metrics(panning_video, panning, tmp_path):
    from animator.cli import main

    runner = CliRunner()
    plain = runner.invoke(main, ["metrics", str(panning_video)])
    assert plain.exit_code == 0, plain.output
    assert "flicker of" in plain.output and "mean" in plain.output
    plot = tmp_path / "series.png"
    as_json = runner.invoke(main, ["metrics", str(panning_video), "--json", "--plot", str(plot)])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["frames"] == 6 and data["mean"] == pytest.approx(flicker(panning).mean, abs=0.5)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = runner.invoke(main, ["metrics", str(tmp_path / "nope.mp4")])
    assert missing.exit_code == 2 and "not found" in missing.output


# ------------------------------------------------------------------------------------------------------------ drift


def lab_frame(lab: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 sRGB of a CIELAB image (skimage's conversion: independent of the OpenCV one measured)."""
    from skimage.color import lab2rgb

    return (lab2rgb(lab) * 255.0).round().astype(np.uint8)


def test_drift_against_frames_built_in_cielab():
    from skimage.color import deltaE_cie76, rgb2lab

    from animator.metrics import drift

    rng = np.random.default_rng(3)
    lab = np.zeros((48, 64, 3))
    lab[..., 0] = 50.0 + 12.0 * rng.standard_normal((48, 64)).clip(-2, 2)
    lab[..., 1], lab[..., 2] = 10.0 + 4.0 * rng.standard_normal((48, 64)), -8.0 + 4.0 * rng.standard_normal((48, 64))
    flatter = lab.copy()
    flatter[..., 0] = 50.0 + (lab[..., 0] - 50.0) / 2.0  # half the lightness spread
    richer = lab.copy()
    richer[..., 1:] *= 2.0  # twice the chroma
    shifted = lab + np.array([0.0, 6.0, 8.0])  # the mean colour moves by delta E 10
    frames = [lab_frame(x) for x in (lab, flatter, richer, shifted)]
    report = drift(frames)
    assert report.frames == 4
    assert report.contrast[1] == pytest.approx(0.5, abs=0.03)
    assert report.saturation[2] == pytest.approx(2.0, abs=0.06)
    truth = deltaE_cie76(rgb2lab(frames[0]).mean((0, 1)), rgb2lab(frames[3]).mean((0, 1)))
    assert truth == pytest.approx(10.0, abs=0.5) and report.color_shift[3] == pytest.approx(truth, abs=0.3)
    assert report.color_shift[0] == 0.0 and report.sharpness[0] == 1.0
    data = report.to_dict()
    assert data["saturation"]["extreme"] == pytest.approx(report.saturation[2])
    assert len(data["sharpness"]["series"]) == 4


def test_drift_sees_blur_and_burn(panning):
    import cv2

    from animator.metrics import drift

    frame = to_uint8_frames(panning[:1])[0]
    blurred = [cv2.GaussianBlur(frame, (0, 0), sigma) for sigma in (0.6, 1.2, 2.4)]
    sharpness = drift([frame, *blurred]).sharpness
    assert np.all(np.diff(sharpness) < 0) and sharpness[-1] < 0.3
    crunchy = cv2.addWeighted(frame, 2.0, cv2.GaussianBlur(frame, (0, 0), 1.5), -1.0, 0)  # unsharp mask
    assert drift([frame, crunchy]).sharpness[1] > 1.5
    # tensors work as well as uint8 frames
    assert drift(panning[:3]).sharpness == pytest.approx(drift(to_uint8_frames(panning[:3])).sharpness, rel=1e-6)


def test_drift_refuses_nothing_and_bad_frames():
    from animator.metrics import drift

    with pytest.raises(AnimatorError, match="no frames"):
        drift([])
    with pytest.raises(AnimatorError, match="uint8 RGB"):
        drift([np.zeros((8, 8), np.uint8)])


def test_cli_metrics_reports_drift_and_refuses_one_frame(panning_video, panning, tmp_path):
    from animator.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["metrics", str(panning_video), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["drift"]["frames"] == 6 and len(data["drift"]["color_shift"]["series"]) == 6
    assert data["drift"]["color_shift"]["series"][0] == 0.0
    plain = runner.invoke(main, ["metrics", str(panning_video)])
    assert "drift from the first frame" in plain.output and "sharpness" in plain.output
    single = tmp_path / "one.mp4"
    write_video(single, to_uint8_frames(panning[:1]))
    refused = runner.invoke(main, ["metrics", str(single)])
    assert refused.exit_code == 2 and "nothing to measure" in refused.output
