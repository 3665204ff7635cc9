"""`animator depth` on images and videos, with the offline prior and a tiny model folder (the user's --model path)."""

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from click.testing import CliRunner

from animator.cli import main
from animator.testing.tiny_depth import make_tiny_depth_anything


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A real photograph (skimage's astronaut, 128x171 after subsampling), written as a JPEG."""
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    cv2.imwrite(str(path), np.ascontiguousarray(data.astronaut()[::4, ::3, ::-1]))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 6-frame 66x50 video: a bright square moving over a gradient."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), (66, 50), fps=12, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for index in range(6):
        frame = np.tile(np.linspace(0, 200, 66, dtype=np.uint8), (50, 1))[..., None].repeat(3, 2)
        frame[10:25, 5 + 6 * index : 20 + 6 * index] = (250, 40, 40)
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()
    return path


def _run(*args):
    return CliRunner().invoke(main, ["depth", *map(str, args)], catch_exceptions=False)


def test_image_to_16bit_png_with_the_offline_note(photo, tmp_path):
    out = tmp_path / "depth.png"
    result = _run(photo, "-o", out)
    assert result.exit_code == 0, result.output
    assert "learned model is much better" in result.stderr and "--model depth-anything" in result.stderr
    depth = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (128, 171)
    assert depth.min() == 0 and depth.max() == 65535
    # offline prior: the bottom of a photo is nearer (brighter) than its top
    assert depth[-10:].mean() > depth[:10].mean()


def test_image_colormap_with_a_model_folder(photo, tmp_path):
    folder = tmp_path / "model"
    make_tiny_depth_anything(folder)
    out = tmp_path / "depth_colour.png"
    result = _run(photo, "-o", out, "--model", folder, "--colormap", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "learned model" not in result.stderr
    picture = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert picture.dtype == np.uint8 and picture.shape == (128, 171, 3)
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # a colour map, not a flat image


def test_video_to_colour_mapped_mp4(clip, tmp_path):
    out = tmp_path / "clip_depth.mp4"
    result = _run(clip, "-o", out, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "6 frames" in result.stdout
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = [np.frombuffer(raw, np.uint8) for raw in reader]
    assert meta["size"] == (66, 50) and len(frames) == 6


def test_errors_exit_2_with_a_message(photo, clip, tmp_path):
    result = CliRunner().invoke(main, ["depth", str(photo), "-o", str(tmp_path / "x.png"), "--model", "nope-model"])
    assert result.exit_code == 2 and "unknown depth model" in result.output
    result = CliRunner().invoke(main, ["depth", str(photo), "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "16-bit depth needs a .png" in result.output
    result = CliRunner().invoke(main, ["depth", str(clip), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "written as a video" in result.output
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    result = CliRunner().invoke(main, ["depth", str(not_an_image), "-o", str(tmp_path / "y.png")])
    assert result.exit_code == 2 and "cannot read this image" in result.output
