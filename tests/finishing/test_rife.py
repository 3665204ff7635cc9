"""RIFE v4.6's IFNet: layer shapes of the published weight file, loading (with DataParallel's prefix) through
`animator interpolate --method rife --model`, output frame count, and files that are not its weights. The weights
are random (none are downloaded); what a trained network draws is not checked here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from finishing_scenes import sliding_scene, write_folder

from animator.cli import main
from animator.errors import AnimatorError
from animator.finishing.rife import IFNet, RifeTweener, load_ifnet
from animator.images import load_frame
from animator.video import probe

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random IFNet saved as the published flownet.pkl is: a state dict with DataParallel's 'module.' prefix."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rife") / "flownet.pkl"
    torch.save({f"module.{k}": v for k, v in IFNet().state_dict().items()}, path)
    return path


def test_the_layers_have_the_published_shapes():
    state = IFNet().state_dict()
    assert state["block0.conv0.0.0.weight"].shape == (96, 7, 3, 3)  # img0, img1, t -> c/2 at stride 2
    assert state["block1.conv0.0.0.weight"].shape == (64, 12, 3, 3)  # + mask and the 4 flow channels
    assert state["block3.convblock.7.beta"].shape == (1, 64, 1, 1)
    assert state["block2.lastconv.0.weight"].shape == (96, 24, 4, 4)  # transposed: 4 x 6 channels to shuffle
    assert len([k for k in state if k.startswith("block0.convblock.")]) == 8 * 3


def test_in_betweens_keep_size_and_range(weights):
    tweener = RifeTweener(weights, device="cpu")
    a, b = (np.random.default_rng(k).integers(0, 256, (50, 70, 3), dtype=np.uint8) for k in range(2))
    made = tweener.pair(a, b)(0.5)
    assert made.shape == (50, 70, 3) and made.dtype == np.uint8
    # t is an input of the network: other times give other frames
    assert not np.array_equal(made, tweener.pair(a, b)(0.25))


def test_rife_through_the_cli(tmp_path, weights):
    folder = tmp_path / "frames"
    scene = sliding_scene(frames=3, size=(64, 96))[::2]
    write_folder(folder, scene)
    out, kept = tmp_path / "x2.mp4", tmp_path / "kept"
    result = CliRunner().invoke(
        main,
        ["interpolate", str(folder), "-o", str(out), "--factor", "2", "--method", "rife", "--model", str(weights)]
        + ["--input-fps", "8", "--frames-dir", str(kept)],
    )
    assert result.exit_code == 0, result.output
    assert (probe(out).frames, probe(out).fps) == (6, 16.0)
    made = [load_frame(p) for p in sorted(kept.glob("*.png"))]
    assert all(np.array_equal(made[2 * k], scene[k]) for k in range(3))


def test_files_that_are_not_rife_weights(tmp_path, weights):
    other = tmp_path / "other.pkl"
    torch.save({"block0.conv0.0.0.weight": torch.zeros(8, 7, 3, 3)}, other)
    text = tmp_path / "notes.pkl"
    text.write_text("not a state dict")
    for path, words in (
        (other, "is not RIFE v4.6's IFNet"),
        (text, "not a torch state dict"),
        (tmp_path / "missing.pkl", "no such RIFE weight file"),
    ):
        with pytest.raises(AnimatorError, match=words):
            load_ifnet(path)
    folder = tmp_path / "frames"
    write_folder(folder, [np.zeros((32, 32, 3), np.uint8)] * 2)
    result = CliRunner().invoke(
        main, ["interpolate", str(folder), "-o", str(tmp_path / "o.mp4"), "--factor", "2", "--method", "rife"]
    )
    assert result.exit_code == 2 and "needs its weight file" in result.output and not (tmp_path / "o.mp4").exists()
