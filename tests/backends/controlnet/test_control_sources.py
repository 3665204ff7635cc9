"""Control images from what the loop has: depth with its holes filled from the background, Canny edges, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from animator.backends.controlnet import ControlSettings
from animator.backends.controlnet.sources import FrameView, canny_control, depth_control, fill_holes, make_source
from animator.errors import AnimatorError

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 32, 48


def _scene():
    """A wall at z=10 with a box at z=2 in front (columns 10-19), and a strip the camera revealed right of the box
    (columns 20-25: a hole). The revealed strip lies behind the box: its true surface is the wall."""
    depth = torch.full((1, 1, H, W), 10.0)
    depth[..., 8:24, 10:20] = 2.0
    valid = torch.ones(1, 1, H, W, dtype=torch.bool)
    valid[..., :, 20:26] = False
    return depth, valid


def test_holes_take_the_farthest_depth_around_them():
    depth, valid = _scene()
    filled = fill_holes(torch.where(valid, depth, torch.zeros_like(depth)), valid)
    assert torch.equal(filled[valid], depth[valid])  # valid pixels keep their depth
    assert torch.all(filled[~valid] == 10.0)  # the wall continues into the hole, the box does not spread into it


def test_depth_control_is_normalised_inverse_depth_near_bright():
    depth, valid = _scene()
    depth = torch.where(valid, depth, torch.full_like(depth, float("nan")))  # holes as a warp may leave them
    control = depth_control(depth, valid)
    assert control.shape == (1, 3, H, W)
    assert torch.equal(control[:, 0], control[:, 1]) and torch.equal(control[:, 1], control[:, 2])
    box, wall, hole = control[0, 0, 10, 12], control[0, 0, 2, 2], control[0, 0, 12, 22]
    assert box == pytest.approx(1.0) and wall == pytest.approx(0.0) and hole == pytest.approx(0.0)
    # inverse depth, not depth: a surface at z=4 between them sits at (1/4 - 1/10) / (1/2 - 1/10) = 0.375
    depth[..., 0:4, 0:4] = 4.0
    assert depth_control(depth, valid)[0, 0, 1, 1] == pytest.approx(0.375)


def test_canny_finds_the_edges_of_a_square():
    image = torch.zeros(1, 3, H, W)
    image[..., 8:24, 12:36] = 1.0
    edges = canny_control(image, 100, 200)
    assert edges.shape == (1, 3, H, W)
    found = edges[0, 0] > 0.5
    on_border = torch.zeros(H, W, dtype=torch.bool)
    on_border[7:25, 11:37] = True
    on_border[9:23, 13:35] = False  # a band of two pixels around the square's outline
    assert found.any() and not found[~on_border].any()
    assert found[8:24, 12].any() and found[8:24, 35].any()  # left and right sides
    assert torch.equal(canny_control(image, 100, 200), edges)  # deterministic


def test_image_source_reads_once_and_missing_files_are_errors(tmp_path):
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[:, : W // 2] = (255, 0, 0)
    Image.fromarray(pixels).save(tmp_path / "pose.png")
    source = make_source(ControlSettings(source="image", path=tmp_path / "pose.png"), width=W, height=H, field="cn.0")
    frame = FrameView(index=3, image=torch.zeros(1, 3, H, W))
    image = source(frame)
    assert image.shape == (1, 3, H, W)
    assert image[0, 0, :, 2].min() == 1.0 and image[0, 0, :, -2].max() == 0.0
    with pytest.raises(AnimatorError, match="no such image file") as caught:
        make_source(ControlSettings(source="image", path=tmp_path / "gone.png"), width=W, height=H, field="cn.1")
    assert caught.value.field == "cn.1.path"
    with pytest.raises(AnimatorError, match="needs `path`"):
        make_source(ControlSettings(source="video"), width=W, height=H, field="cn.2")


def test_video_source_gives_frame_i_for_frame_i_and_holds_the_last(tmp_path):
    from animator.video import VideoWriter

    levels = [0, 60, 120, 180]
    with VideoWriter(tmp_path / "control.mp4", width=W, height=H, fps=8) as writer:
        for level in levels:
            writer.write(np.full((H, W, 3), level, dtype=np.uint8))
    source = make_source(ControlSettings(source="video", path=tmp_path / "control.mp4"), width=W, height=H, field="c")

    def level_at(index):
        return float(source(FrameView(index=index, image=torch.zeros(1, 3, H, W))).mean() * 255)

    assert [round(level_at(i) / 60) for i in range(4)] == [0, 1, 2, 3]
    assert round(level_at(6) / 60) == 3  # past the end: the last frame held
    assert round(level_at(1) / 60) == 1  # an earlier frame (a resumed render) reopens the stream


def test_annotators_need_their_extra_and_a_local_folder(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "controlnet_aux", None)  # as without the extra installed (import fails)
    with pytest.raises(AnimatorError, match="needs the controlnet-aux annotators") as caught:
        make_source(ControlSettings(source="hed", annotator=tmp_path), width=W, height=H, field="controlnet.1")
    assert caught.value.field == "controlnet.1.source"


def test_unknown_source_and_bad_canny_thresholds():
    with pytest.raises(AnimatorError, match="unknown ControlNet source 'segment_anything'") as caught:
        make_source(ControlSettings(source="segment_anything"), width=W, height=H, field="controlnet.0")
    assert caught.value.field == "controlnet.0.source"
    with pytest.raises(AnimatorError, match="canny_low .* must be below canny_high"):
        make_source(ControlSettings(source="canny", canny_low=200, canny_high=100), width=W, height=H, field="c")
