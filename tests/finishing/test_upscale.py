"""`animator upscale`: the tiler against untiled runs of real conv nets, Lanczos end to end, the diffusion pass with
the tiny Stable Diffusion model, and every error case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from finishing_scenes import sliding_scene, write_folder

from animator.cli import main
from animator.errors import AnimatorError
from animator.finishing.tiles import run_tiled, tile_starts
from animator.images import load_frame
from animator.video import probe

pytestmark = pytest.mark.usefixtures("one_thread")


def conv_upscaler(scale: int, layers: int) -> torch.nn.Module:
    """A real small upscaler: ``layers`` 3x3 convolutions (receptive radius = layers) and a pixel shuffle."""
    torch.manual_seed(layers)
    body = [torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.ReLU()]
    for _ in range(layers - 2):
        body += [torch.nn.Conv2d(12, 12, 3, padding=1), torch.nn.ReLU()]
    body += [torch.nn.Conv2d(12, 3 * scale * scale, 3, padding=1), torch.nn.PixelShuffle(scale), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*body).eval()


def test_tile_starts_cover_the_frame():
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    assert tile_starts(40, 64, 16) == [0]
    for length, tile, overlap in ((1000, 256, 32), (257, 128, 16)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("scale, layers, overlap", [(2, 4, 16), (4, 3, 12), (3, 8, 32)])
def test_tiles_are_seamless_against_an_untiled_run(scale, layers, overlap):
    net = conv_upscaler(scale, layers)
    image = torch.rand(1, 3, 70, 93)
    with torch.inference_mode():
        whole = net(image)
    tiled = run_tiled(net, image, scale=scale, tile=2 * overlap + 16, overlap=overlap)
    assert tiled.shape == (1, 3, 70 * scale, 93 * scale)
    # receptive radius <= overlap / 4: every output pixel comes from tiles that saw all of its context
    assert (tiled - whole).abs().max() < 1e-5


def test_a_wider_network_than_the_overlap_still_has_no_seam():
    net = conv_upscaler(2, 12)  # receptive radius 12 > overlap / 4 = 2
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        whole = net(image)
    tiled = run_tiled(net, image, scale=2, tile=24, overlap=8)
    error = (tiled - whole).abs()[0].amax(0)  # HxW
    assert error.max() < 0.05 and error.mean() < 0.005


def test_tiler_refuses_a_model_of_another_scale():
    with pytest.raises(AnimatorError, match="not 64x64"):
        run_tiled(conv_upscaler(4, 3), torch.rand(1, 3, 32, 32), scale=2, tile=32, overlap=8)
    with pytest.raises(AnimatorError, match="at least 2 x overlap"):
        run_tiled(conv_upscaler(2, 3), torch.rand(1, 3, 32, 32), scale=2, tile=20, overlap=8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> object:
    folder = tmp_path_factory.mktemp("clip") / "frames"
    write_folder(folder, sliding_scene(frames=3, size=(48, 64))[::2])
    return folder


def cli(*args):
    return CliRunner().invoke(main, ["upscale", *map(str, args)])


def test_lanczos_upscale_by_the_cli(tmp_path, clip):
    out, frames = tmp_path / "big.mp4", tmp_path / "frames"
    result = cli(clip, "-o", out, "--scale", 2.5, "--input-fps", 10, "--frames-dir", frames)
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.frames, info.width, info.height, info.fps) == (3, 160, 120, 10.0)
    first = load_frame(sorted(frames.glob("*.png"))[0])
    original = load_frame(sorted(clip.glob("*.png"))[0])
    import cv2

    assert np.array_equal(first, cv2.resize(original, (160, 120), interpolation=cv2.INTER_LANCZOS4))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--scale", 0], "must be > 0"),
        (["--method", "model"], "needs --model"),
        (["--model", "{tmp}/missing.pth"], "no such model file"),
        (["--model", "{tmp}/notes.pth"], "spandrel"),
        (["--method", "lanczos", "--model", "{tmp}/notes.pth"], "not used by --method lanczos"),
        (["--method", "diffusion"], "needs a Stable Diffusion model"),
    ],
)
def test_bad_settings_exit_2_and_write_nothing(tmp_path, clip, args, words):
    (tmp_path / "notes.pth").write_text("not a model")
    out = tmp_path / "out.mp4"
    result = cli(
        clip, "-o", out, "--input-fps", 10, *(a.format(tmp=tmp_path) if isinstance(a, str) else a for a in args)
    )
    assert result.exit_code == 2 and words in result.output, result.output
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_not_a_video_exits_2(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    result = cli(text, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 2 and "cannot read a video stream" in result.output


def test_diffusion_upscale_starts_from_the_previous_result_moved_along_the_flow(tiny_model):
    import cv2

    from animator.finishing.diffusion_upscale import DiffusionUpscaler

    # the whole picture pans 4 px a frame (8 px at the output size)
    scene = sliding_scene(frames=2, size=(64, 64), bg_step=(4.0, 0.0), fg_step=(4.0, 0.0))[::2]
    upscaler = DiffusionUpscaler(tiny_model, (128, 128), device="cpu", strength=0.4, steps=4, tile=0)
    first = upscaler(scene[0])
    lanczos = [cv2.resize(f, (128, 128), interpolation=cv2.INTER_LANCZOS4) for f in scene]
    assert first.shape == (128, 128, 3)
    assert np.abs(first.astype(int) - lanczos[0]).mean() > 5.0  # the img2img pass changed the picture
    small = torch.from_numpy(scene[1]).permute(2, 0, 1)[None].float() / 255.0
    base = torch.from_numpy(lanczos[1]).permute(2, 0, 1)[None].float() / 255.0
    start = (upscaler._start(scene[1], upscaler._small(small), base)[0].permute(1, 2, 0) * 255).round().numpy()
    # truth: the previous result moved by the pan; the start matches it (away from the edge the pan reveals),
    # not the Lanczos upscale of the new frame
    moved = [np.abs(start[8:-8, 12 + s : 116 + s] - first[8:-8, 12:116]).mean() for s in (-8, 8)]
    assert min(moved) < 4.0
    assert np.abs(start[8:-8, 12:116] - lanczos[1][8:-8, 12:116]).mean() > 3 * min(moved)
    second = upscaler(scene[1])
    assert second.shape == (128, 128, 3)
