"""The camera method: pose interpolation, the exact 3D in-between on ray-cast scenes (truth known), and a real 3D
render's run folder through `animator interpolate --method camera`."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from finishing_scenes import psnr

from animator.cli import main
from animator.finishing.camera_interp import camera_tween, interpolate_pose
from animator.finishing.flow_interp import FlowTweener
from animator.finishing.interpolate import BlendTweener
from animator.images import load_frame
from animator.video import probe

pytestmark = pytest.mark.usefixtures("one_thread")


def _raycast():
    path = Path(__file__).resolve().parents[1] / "geometry" / "geometry_raycast.py"
    spec = importlib.util.spec_from_file_location("finishing_raycast", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pose_interpolation_slerps_rotation_and_lerps_position():
    rc = _raycast()
    a, b = rc.pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), rc.pose((0.0, 40.0, 0.0), (10.0, -4.0, 30.0))
    assert torch.allclose(interpolate_pose(a, b, 0.0), a) and torch.allclose(interpolate_pose(a, b, 1.0), b)
    quarter = interpolate_pose(a, b, 0.25)
    assert torch.allclose(quarter, rc.pose((0.0, 10.0, 0.0), (2.5, -1.0, 7.5)), atol=1e-9)
    # about a tilted axis too: the rotation at t composed with itself gives the rotation at 2t
    c = rc.pose((20.0, -30.0, 15.0), (0.0, 0.0, 0.0))
    r1, r2 = interpolate_pose(a, c, 0.3)[:3, :3], interpolate_pose(a, c, 0.6)[:3, :3]
    assert torch.allclose(r1 @ r1, r2, atol=1e-9)
    angle = math.degrees(math.acos((torch.trace(r1).item() - 1) / 2))
    full = math.degrees(math.acos((torch.trace(c[:3, :3]).item() - 1) / 2))
    assert angle == pytest.approx(0.3 * full, rel=1e-6)


def _u8(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()


def test_camera_in_between_of_a_ray_cast_room_beats_flow_and_blend():
    rc = _raycast()
    height = width = 96
    K = rc.intrinsics(50.0, height, width)
    room = rc.room_with_box()
    pose_a, pose_b = rc.pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), rc.pose((0.0, 2.0, 0.0), (14.0, -4.0, 12.0))
    image_a, depth_a, _ = rc.render(room, K, pose_a, height, width)
    image_b, depth_b, _ = rc.render(room, K, pose_b, height, width)
    truth, _, _ = rc.render(room, K, interpolate_pose(pose_a, pose_b, 0.5), height, width)
    a, b, truth = _u8(image_a), _u8(image_b), _u8(truth)
    made = camera_tween(
        image_a.float(), depth_a.float(), image_b.float(), depth_b.float(), K.float(), pose_a, pose_b, 0.5
    )
    camera = psnr(_u8(made), truth)
    flow = psnr(FlowTweener("medium", 256).pair(a, b)(0.5), truth)
    blend = psnr(BlendTweener().pair(a, b)(0.5), truth)
    assert camera > 30.0 and camera > flow + 3.0 and camera > blend + 6.0


def test_a_3d_run_folder_through_the_cli(tmp_path, init_image):
    keyframes = tmp_path / "anim.yaml"
    keyframes.write_text(
        yaml.safe_dump(
            {
                "width": 64,
                "height": 64,
                "fps": 6,
                "frames": 5,
                "mode": "3d",
                "seed": 5,
                "init_image": str(init_image),
                "motion": {"rotation_3d_y": "0:(2)"},
                "output": {"preset": "ultrafast"},
                "coherence": {"color": "none"},
            }
        )
    )
    import animator

    kept = tmp_path / "kept"
    result = animator.render(keyframes, tmp_path / "render.mp4", run_dir=tmp_path / "run", frames_dir=kept)
    rendered = [load_frame(p) for p in sorted(kept.glob("*.png"))]
    assert len(rendered) == 5
    out, frames = tmp_path / "smooth.mp4", tmp_path / "frames"
    cli = CliRunner().invoke(
        main,
        ["interpolate", str(result.run_dir), "-o", str(out), "--factor", "2", "--method", "camera"]
        + ["--frames-dir", str(frames)],
    )
    assert cli.exit_code == 0, cli.output
    assert (probe(out).frames, probe(out).fps) == (10, 12.0)
    made = [load_frame(p) for p in sorted(frames.glob("*.png"))]
    for k in range(5):
        assert np.array_equal(made[2 * k], rendered[k])

    def shift(a, b):
        grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b)]
        (dx, _), _ = cv2.phaseCorrelate(*grey, cv2.createHanningWindow((64, 64), cv2.CV_32F))
        return dx

    for k in range(1, 4):  # the in-between sits half way along the camera's pan
        whole, half = shift(rendered[k], rendered[k + 1]), shift(rendered[k], made[2 * k + 1])
        assert abs(whole) > 1.0 and half == pytest.approx(whole / 2, abs=0.35)


def test_camera_needs_a_3d_run(tmp_path, init_image):
    keyframes = tmp_path / "anim.yaml"
    keyframes.write_text(
        yaml.safe_dump({"width": 64, "height": 64, "fps": 6, "frames": 3, "mode": "2d", "init_image": str(init_image)})
    )
    import animator

    result = animator.render(keyframes, tmp_path / "r.mp4", run_dir=tmp_path / "run", frames_dir=tmp_path / "kept")
    cli = CliRunner().invoke(
        main, ["interpolate", str(result.run_dir), "-o", str(tmp_path / "o.mp4"), "--factor", "2", "--method", "camera"]
    )
    assert cli.exit_code == 2 and "needs a 3D render" in cli.output
    assert not (tmp_path / "o.mp4").exists()
