"""`animator upscale --model` with tiny upscalers built from spandrel's own architecture classes (random weights),
saved to files and loaded back through the command line. spandrel imports torchvision, so these run in the extras
environment (scripts/test_extras.sh), not in the main one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from finishing_scenes import sliding_scene, write_folder

from animator.images import load_frame
from animator.video import probe

spandrel = pytest.importorskip("spandrel", reason="spandrel (the `upscale` extra) is not installed here")
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402

from animator.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip") / "frames"
    frames = sliding_scene(frames=3, size=(48, 64))[::2]
    write_folder(folder, frames)
    return folder, frames


def compact(scale: int, path) -> torch.nn.Module:
    torch.manual_seed(scale)
    model = Compact(num_feat=8, num_conv=2, upscale=scale).eval()
    torch.save(model.state_dict(), path)
    return model


def cli(*args):
    return CliRunner().invoke(main, ["upscale", *map(str, args)])


def reference(model: torch.nn.Module, frame: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = model(torch.from_numpy(frame.copy()).permute(2, 0, 1)[None].float() / 255.0)
    return (out[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_a_compact_model_loads_back_and_upscales(tmp_path, clip):
    folder, frames = clip
    model = compact(2, tmp_path / "compact-x2.pth")
    out, kept = tmp_path / "big.mp4", tmp_path / "kept"
    result = cli(folder, "-o", out, "--scale", 2, "--model", tmp_path / "compact-x2.pth", "--frames-dir", kept)
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.frames, info.width, info.height) == (3, 128, 96)
    made = [load_frame(p) for p in sorted(kept.glob("*.png"))]
    for frame, upscaled in zip(frames, made):
        assert np.abs(upscaled.astype(int) - reference(model, frame)).max() <= 1


def test_tiles_are_seamless_through_the_cli(tmp_path, clip):
    folder, frames = clip
    model = compact(2, tmp_path / "compact-x2.pth")
    kept = tmp_path / "kept"
    # 4 convolutions: receptive radius 4 = overlap 16 / 4, so 48-pixel input tiles give the untiled result
    result = cli(
        folder, "-o", tmp_path / "t.mp4", "--model", tmp_path / "compact-x2.pth", "--tile", 96, "--overlap", 16,
        "--frames-dir", kept,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    made = [load_frame(p) for p in sorted(kept.glob("*.png"))]
    assert all(np.abs(m.astype(int) - reference(model, f)).max() <= 1 for f, m in zip(frames, made))


def test_an_esrgan_safetensors_file_at_another_scale(tmp_path, clip):
    from safetensors.torch import save_file

    folder, _ = clip
    torch.manual_seed(0)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "esrgan-x4.safetensors")
    result = cli(folder, "-o", tmp_path / "x2.mp4", "--scale", 2, "--model", tmp_path / "esrgan-x4.safetensors")
    assert result.exit_code == 0, result.output
    assert (probe(tmp_path / "x2.mp4").width, probe(tmp_path / "x2.mp4").height) == (128, 96)


def test_files_that_are_not_upscalers_exit_2(tmp_path, clip):
    folder, _ = clip
    compact(1, tmp_path / "restore-x1.pth")
    torch.save({"encoder.weight": torch.zeros(4, 4)}, tmp_path / "other.pth")
    for name, words in (("restore-x1.pth", "not an upscaler"), ("other.pth", "not an upscaler spandrel knows")):
        result = cli(folder, "-o", tmp_path / "out.mp4", "--model", tmp_path / name)
        assert result.exit_code == 2 and words in result.output, result.output
        assert not (tmp_path / "out.mp4").exists()
