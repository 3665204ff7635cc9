"""End-to-end renders: the CLI and the Python API on tiny sizes, read back with the bundled ffmpeg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from animator.cli import main
from animator.video import probe, read_frames

SIZE = 64


def write_keyframes(folder: Path, init_image: Path | None, **fields) -> Path:
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 12,
        "mode": "3d",
        "seed": 5,
        "output": {"preset": "ultrafast"},
        "coherence": {"color": "none"},
    }
    if init_image is not None:
        data["init_image"] = str(init_image)
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = data[key] | value
        else:
            data[key] = value
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def frames_of(video: Path) -> list[np.ndarray]:
    return list(read_frames(video))


def shift_between(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation of b relative to a (pixels, +x right, +y down) by phase correlation."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow(ga.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb, window)
    return dx, dy


def test_cli_render_3d_writes_what_the_file_asked_for(tmp_path, init_image):
    keyframes = write_keyframes(tmp_path, init_image, motion={"translation_z": "0:(2)"})
    out, run_dir = tmp_path / "out.mp4", tmp_path / "run"
    run_cli("render", keyframes, "-o", out, "--run-dir", run_dir, "-q")
    info = probe(out)
    assert (info.frames, info.width, info.height) == (12, SIZE, SIZE)
    assert info.fps == pytest.approx(12) and info.codec == "h264"
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["backends"]
    assert (run_dir / "keyframes.yaml").read_text() == keyframes.read_text()
    schedules = (run_dir / "schedules.csv").read_text().splitlines()
    assert len(schedules) == 13 and "translation_z" in schedules[0]
    assert len((run_dir / "seeds.csv").read_text().splitlines()) == 13
    assert not (run_dir / "frames").exists()  # the journal is dropped after a complete run
    measured = json.loads((run_dir / "metrics.json").read_text())
    assert "flicker" in measured and "drift" in measured


def test_the_flicker_metric_is_measured_from_the_lossless_frames_with_progress(tmp_path, init_image):
    import animator
    from animator.events import FrameRendered, MetricProgress, RenderFinished
    from animator.metrics import flicker

    keyframes = write_keyframes(tmp_path, init_image, motion={"translation_z": "0:(2)", "rotation_3d_z": "0:(1)"})
    events: list = []
    result = animator.render(keyframes, tmp_path / "out.mp4", run_dir=tmp_path / "run", callbacks=[events.append])
    frames = [e.image for e in events if isinstance(e, FrameRendered)]
    progress = [(e.metric, e.done, e.total) for e in events if isinstance(e, MetricProgress)]
    # after the last frame, before the end: started at 0, then every pair in order; then the drift of every frame
    assert [p for p in progress if p[0] == "flicker"] == [("flicker", done, 11) for done in range(12)]
    assert progress[12][:2] == ("drift", 0) and progress[-1] == ("drift", 12, 12)
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("MetricProgress") == kinds.index("FrameRendered") + 12 and isinstance(events[-1], RenderFinished)
    # the recorded series is the metric of the frames the render made (not of the lossy video), measured on one thread
    expected = flicker(iter(frames), estimator="dis_fast", max_side=256, workers=1)
    np.testing.assert_allclose(result.stats["flicker"]["series"], expected.series, atol=1e-4)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["flicker"]["mean"] == pytest.approx(
        expected.mean
    )


def test_ctrl_c_while_the_metric_is_measured_skips_only_the_metric(tmp_path, init_image):
    import animator
    from animator.events import MetricProgress

    def interrupt_the_metric(event):
        if isinstance(event, MetricProgress) and event.done == 3:
            raise KeyboardInterrupt

    keyframes = write_keyframes(tmp_path, init_image, motion={"translation_z": "0:(2)"})
    result = animator.render(
        keyframes, tmp_path / "out.mp4", run_dir=tmp_path / "run", callbacks=[interrupt_the_metric]
    )
    assert result.stats["flicker"] == {"skipped": "interrupted"} and probe(result.output).frames == 12
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "complete" and not (tmp_path / "run" / "frames").exists()


def test_animator_render_renders_whatever_was_imported_first(tmp_path, init_image):
    # the package's render is a function whatever was imported before it: no module shares its name
    keyframes = write_keyframes(tmp_path, init_image, frames=2)
    code = (
        "import animator\nfrom animator.rendering.api import render_frames\nimport animator.rendering.loop\n"
        f"result = animator.render({str(keyframes)!r}, {str(tmp_path / 'x.mp4')!r}, run_dir={str(tmp_path / 'r')!r},"
        " metrics=False)\nprint(type(result).__name__, result.frames)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["RenderResult", "2"]


def test_2d_translation_moves_the_picture_the_scheduled_way(tmp_path, init_image):
    # Deforum's 2D mode adds translation_x to the affine's x offset: positive moves the picture right.
    keyframes = write_keyframes(
        tmp_path, init_image, mode="2d", frames=6, motion={"translation_x": "0:(2)", "translation_y": "0:(-1)"}
    )
    out = tmp_path / "2d.mp4"
    run_cli("render", keyframes, "-o", out, "--run-dir", tmp_path / "r", "-q", "--no-metrics")
    frames = frames_of(out)
    dx, dy = shift_between(frames[0], frames[5])
    assert dx == pytest.approx(10, abs=1.0) and dy == pytest.approx(-5, abs=1.0)


def test_3d_rotation_and_forward_motion_move_the_picture(tmp_path, init_image):
    # Panning right (rotation_3d_y > 0) moves the picture left by about f * tan(angle) per frame.
    keyframes = write_keyframes(tmp_path, init_image, frames=5, motion={"rotation_3d_y": "0:(1)", "fov": "0:(60)"})
    out = tmp_path / "pan.mp4"
    run_cli("render", keyframes, "-o", out, "--run-dir", tmp_path / "r1", "-q", "--no-metrics")
    frames = frames_of(out)
    focal = SIZE / 2 / np.tan(np.radians(30))
    dx, _ = shift_between(frames[0], frames[4])
    assert dx == pytest.approx(-4 * focal * np.tan(np.radians(1)), abs=1.0)

    # Moving forward: a bright marker right of the centre moves further right (the picture grows).
    marker = np.full((SIZE, SIZE, 3), 60, np.uint8)
    marker[28:36, 44:52] = 255
    Image.fromarray(marker).save(tmp_path / "marker.png")
    keyframes = write_keyframes(tmp_path, tmp_path / "marker.png", frames=6, motion={"translation_z": "0:(15)"})
    out = tmp_path / "dolly.mp4"
    run_cli("render", keyframes, "-o", out, "--run-dir", tmp_path / "r2", "-q", "--no-metrics")
    frames = frames_of(out)

    def marker_x(frame):
        ys, xs = np.nonzero(frame[..., 0] > 160)
        return xs.mean()

    assert marker_x(frames[5]) > marker_x(frames[0]) + 1.0


def test_cadence_keeps_every_frame_and_anchors_on_keyframes(tmp_path, init_image):
    import animator

    keyframes = write_keyframes(
        tmp_path, init_image, frames=11, cadence=3, motion={"translation_z": "0:(1), 5:(4)", "rotation_3d_y": "0:(0.5)"}
    )
    events = list(animator.render_frames(keyframes))
    assert [e.index for e in events] == list(range(11))
    anchors = {e.index for e in events if e.anchor}
    assert {0, 5, 10} <= anchors  # keyframe 5 and the last frame land on anchors
    assert any(not e.anchor for e in events)
    assert not any(e.diffused for e in events)  # warp-only: no frame was diffused
    assert all(e.image.shape == (SIZE, SIZE, 3) for e in events)
    # Tweens move smoothly: each step is smaller than the jump across two steps.
    steps = [np.abs(events[i + 1].image.astype(int) - events[i].image).mean() for i in range(10)]
    assert max(steps) < 3 * np.median(steps) + 1


def test_colour_coherence_reduces_drift_over_a_loopback(tmp_path, init_image):
    import animator

    def drift(color: str) -> float:
        from skimage.color import rgb2lab

        path = write_keyframes(
            tmp_path,
            init_image,
            mode="2d",
            frames=60,
            coherence={"color": color},
            generation={"contrast": "0:(1.04)", "sharpen_amount": "0:(0.3)"},
            motion={"zoom": "0:(1.01)"},
        )
        frames = [e.image for e in animator.render_frames(path)]
        lab0 = rgb2lab(frames[0]).reshape(-1, 3).mean(0)
        return float(np.mean([np.linalg.norm(rgb2lab(f).reshape(-1, 3).mean(0) - lab0) for f in frames[30:]]))

    without, with_lab = drift("none"), drift("lab")
    assert with_lab < 0.5 * without, (with_lab, without)


def test_warp_only_render_without_recolouring_skips_colour_matching(tmp_path, init_image):
    """Nothing but the camera changes a warp-only frame with no contrast or sharpening: colour matching would only
    shift the palette as the view changes, so it is skipped (and its time saved)."""
    import animator

    def frames(color: str) -> list[np.ndarray]:
        path = write_keyframes(
            tmp_path,
            init_image,
            mode="2d",
            frames=12,
            coherence={"color": color},
            motion={"zoom": "0:(1.03)", "angle": "0:(2)"},
        )
        return [e.image for e in animator.render_frames(path)]

    for a, b in zip(frames("none"), frames("lab")):
        assert np.array_equal(a, b)


def _click_wav(path: Path, seconds: float, sr: int = 16000) -> None:
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.2 * np.sin(2 * np.pi * 330 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(sr), f.writeframes(pcm.tobytes())


def test_render_with_audio_muxes_the_soundtrack(tmp_path, init_image):
    _click_wav(tmp_path / "song.wav", 4.0)
    keyframes = write_keyframes(tmp_path, init_image, mode="2d", frames=18, audio={"path": "song.wav", "offset": 0.5})
    out = tmp_path / "music.mp4"
    run_cli("render", keyframes, "-o", out, "--run-dir", tmp_path / "r", "-q", "--no-metrics")
    info = probe(out)
    assert info.has_audio and info.frames == 18
    assert info.audio_duration_s == pytest.approx(18 / 12, abs=0.08)


def test_bad_input_is_a_clear_error(tmp_path):
    keyframes = write_keyframes(tmp_path, None)
    result = CliRunner().invoke(
        main, ["render", str(keyframes), "-o", str(tmp_path / "x.mp4"), "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "init_image" in result.output and "--model" in result.output
    assert "frame/s" not in result.output  # refused before the progress bar starts
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "r").exists()  # and before the run folder is made
    result = CliRunner().invoke(main, ["render", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "missing.yaml" in result.output


def test_what_cannot_start_leaves_no_run_folder(tmp_path, init_image):
    missing_init = write_keyframes(tmp_path, tmp_path / "gone.png")
    result = CliRunner().invoke(
        main, ["render", str(missing_init), "-o", str(tmp_path / "x.mp4"), "--run-dir", str(tmp_path / "r1")]
    )
    assert result.exit_code == 2 and "gone.png" in result.output
    line = 1 + next(i for i, text in enumerate(missing_init.read_text().splitlines()) if text.startswith("init_image:"))
    assert f"{missing_init}:{line}: init_image: file not found" in result.output  # file, line, field
    keyframes = write_keyframes(tmp_path, init_image)
    result = CliRunner().invoke(
        main,
        [
            "render",
            str(keyframes),
            "-o",
            str(tmp_path / "x.mp4"),
            "--run-dir",
            str(tmp_path / "r2"),
            "--model",
            str(tmp_path / "no-model-here"),
        ],
    )
    assert result.exit_code == 2 and "no-model-here" in result.output
    assert not any((tmp_path / name).exists() for name in ("r1", "r2", "x.mp4"))
    # a run folder in use is named before any model loads, and left as it was
    run_cli("render", keyframes, "-o", tmp_path / "a.mp4", "--run-dir", tmp_path / "r3", "-q", "--no-metrics")
    record = (tmp_path / "r3" / "run.json").read_text()
    result = CliRunner().invoke(
        main,
        [
            "render",
            str(keyframes),
            "-o",
            str(tmp_path / "b.mp4"),
            "--run-dir",
            str(tmp_path / "r3"),
            "--model",
            str(tmp_path / "no-model-here"),
        ],
    )
    assert result.exit_code == 2 and "already holds a run" in result.output and "no-model-here" not in result.output
    assert (tmp_path / "r3" / "run.json").read_text() == record and not (tmp_path / "b.mp4").exists()


def test_tiny_diffusers_model_renders_through_model_option(tmp_path, init_image, tiny_model, monkeypatch):
    keyframes = write_keyframes(
        tmp_path,
        init_image,
        frames=4,
        cadence=2,
        generation={"steps": "0:(4)", "strength": "0:(0.5)", "noise": "0:(0.02)"},
        motion={"translation_z": "0:(3)"},
    )
    out = tmp_path / "sd.mp4"
    run_cli("render", keyframes, "-o", out, "--model", tiny_model, "--run-dir", tmp_path / "r", "-q", "--no-metrics")
    frames = frames_of(out)
    assert len(frames) == 4
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert "denoiser" in record["backends"] and record["overrides"]["backends.denoise"] == str(tiny_model)
    # Without an init image the first frame comes from txt2img.
    no_init = write_keyframes(tmp_path, None, frames=2, generation={"steps": "0:(2)"})
    run_cli(
        "render",
        no_init,
        "-o",
        tmp_path / "t2i.mp4",
        "--model",
        tiny_model,
        "--run-dir",
        tmp_path / "r2",
        "-q",
        "--no-metrics",
    )
    assert probe(tmp_path / "t2i.mp4").frames == 2
    # a model folder given relative to the working directory is recorded absolute: --resume finds it from anywhere
    monkeypatch.chdir(tiny_model.parent)
    run_cli(
        "render",
        no_init,
        "-o",
        tmp_path / "rel.mp4",
        "--model",
        tiny_model.name,
        "--run-dir",
        tmp_path / "r3",
        "-q",
        "--no-metrics",
    )
    assert json.loads((tmp_path / "r3" / "run.json").read_text())["overrides"]["backends.denoise"] == str(tiny_model)


def test_resume_finds_the_files_the_keyframe_file_names_relative_to_itself(tmp_path, init_image, monkeypatch):
    import shutil

    import animator
    from animator.events import FrameRendered

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(init_image, project / "start.png")
    shutil.copy(init_image, project / "reference.png")
    # relative paths resolve against the keyframe file's folder; the run folder keeps a copy of the file elsewhere
    keyframes = write_keyframes(
        project,
        Path("start.png"),
        frames=12,
        motion={"translation_z": "0:(3)"},
        coherence={"color": "lab", "reference": "image", "image": "reference.png"},
    )

    def interrupt_after_frame_5(event):
        if isinstance(event, FrameRendered) and event.index == 5:
            raise KeyboardInterrupt

    run_dir = tmp_path / "runs" / "r"
    with pytest.raises(KeyboardInterrupt):
        animator.render(
            keyframes, tmp_path / "a.mp4", run_dir=run_dir, callbacks=[interrupt_after_frame_5], metrics=False
        )
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.chdir(tmp_path)  # resumed from somewhere else, too
    (project / "start.png").rename(tmp_path / "start.png")  # a resume starts from its checkpoint, not the init image
    resumed = animator.render(resume=run_dir, metrics=False)
    assert resumed.output == tmp_path / "a.mp4"
    (tmp_path / "start.png").rename(project / "start.png")
    animator.render(keyframes, tmp_path / "b.mp4", run_dir=tmp_path / "runs" / "whole", metrics=False)
    a, b = frames_of(tmp_path / "a.mp4"), frames_of(tmp_path / "b.mp4")
    assert len(a) == len(b) == 12 and all(np.array_equal(fa, fb) for fa, fb in zip(a, b))


def test_a_stopped_cli_render_says_how_to_continue(tmp_path, capsys):
    from animator.cli.cmd_render import ProgressBar
    from animator.events import FrameRendered, RenderStarted

    image = np.zeros((8, 8, 3), np.uint8)
    before_start = ProgressBar(quiet=True)
    before_start.stopped()  # refused before it started (bad file, model not found): nothing to continue
    assert capsys.readouterr().err == ""
    bar = ProgressBar(quiet=True)
    bar(RenderStarted(total_frames=10, first_frame=0, width=8, height=8, fps=12, run_dir=tmp_path / "run"))
    for index in range(3):
        bar(
            FrameRendered(
                index=index, total_frames=10, image=image, diffused=True, seed=0, elapsed_s=0.1, fps=10.0, eta_s=1.0
            )
        )
    bar.stopped()  # Ctrl-C or an error part-way
    err = capsys.readouterr().err
    assert "stopped after 3 new frame(s)" in err and f"animator render --resume {tmp_path / 'run'}" in err


def test_resume_after_sigkill_is_bit_identical(tmp_path, init_image, tiny_model):
    """Kill a render with SIGKILL part-way, resume it, and compare every frame with an uninterrupted run."""
    keyframes = write_keyframes(
        tmp_path,
        init_image,
        frames=16,
        seed_behavior="iter",
        generation={"steps": "0:(4)", "strength": "0:(0.6)", "noise": "0:(0.05)"},
        motion={"translation_z": "0:(4)", "rotation_3d_y": "0:(0.7)"},
        backends={"denoise": str(tiny_model), "device": "cpu"},
    )
    # One thread per process: the three runs are separate processes, and with several threads a busy machine can
    # change how MKL/oneDNN split their float sums (a 1-level difference that diffusion then amplifies).
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-m", "animator", *map(str, args)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "animator",
            "render",
            str(keyframes),
            "-o",
            str(tmp_path / "a.mp4"),
            "--run-dir",
            str(run_dir),
            "-q",
            "--no-metrics",
            "--frames-dir",
            str(tmp_path / "a"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "checkpoint.pt").exists() and len(list((run_dir / "frames").glob("0*.qoi"))) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the render finished before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "a.mp4").exists()  # never a truncated file under the final name
    done_before = len(list((run_dir / "frames").glob("0*.qoi")))
    assert 5 <= done_before < 16
    # Checkpoints are taken every couple of seconds, not every frame: the resume starts from one that is usually
    # older than the last journal frame and renders the frames after it again, to the same pixels.
    import torch

    checkpoint_index = torch.load(run_dir / "checkpoint.pt", weights_only=True)["index"]
    assert checkpoint_index < done_before

    cli("render", "--resume", run_dir, "-q")
    cli(
        "render",
        keyframes,
        "-o",
        tmp_path / "b.mp4",
        "--run-dir",
        tmp_path / "uninterrupted",
        "-q",
        "--no-metrics",
        "--frames-dir",
        tmp_path / "b",
    )
    a, b = frames_of(tmp_path / "a.mp4"), frames_of(tmp_path / "b.mp4")
    assert len(a) == len(b) == 16
    for i, (fa, fb) in enumerate(zip(a, b)):
        assert np.array_equal(fa, fb), f"frame {i} differs after resume"
    pngs_a = sorted((tmp_path / "a").glob("*.png"))
    pngs_b = sorted((tmp_path / "b").glob("*.png"))
    assert [p.name for p in pngs_a] == [p.name for p in pngs_b] and len(pngs_a) == 16
    for pa, pb in zip(pngs_a, pngs_b):
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb))), pa.name


def _sliding_video(path: Path, frames: int, step: int, size: int = SIZE) -> list[np.ndarray]:
    """A real photograph sliding left by ``step`` px per frame (the camera pans right), written near-losslessly."""
    from skimage import data

    from animator.video import EncodeSettings, VideoWriter

    big = np.asarray(Image.fromarray(data.astronaut()).resize((size * 3, size * 3), Image.Resampling.LANCZOS))
    shots = [np.ascontiguousarray(big[size : 2 * size, size + i * step : 2 * size + i * step]) for i in range(frames)]
    with VideoWriter(
        path, width=size, height=size, fps=12, settings=EncodeSettings(crf=0, preset="ultrafast", pix_fmt="yuv444p")
    ) as writer:
        for shot in shots:
            writer.write(shot)
    return shots


def test_video_input_mode_follows_the_input_video(tmp_path):
    import animator

    raw = _sliding_video(tmp_path / "clip.mp4", 9, 2)
    keyframes = write_keyframes(
        tmp_path,
        None,
        mode="video",
        frames=8,
        video_input={"path": "clip.mp4", "flow_blend": "0:(0.7)"},
        backends={"flow": "dis_fast"},
    )
    frames = [e.image for e in animator.render_frames(keyframes)]
    assert len(frames) == 8

    def psnr(a, b):
        return 10 * np.log10(255.0**2 / np.mean((a[8:-8, 8:-8].astype(float) - b[8:-8, 8:-8]) ** 2))

    # Each output frame lines up with its own input frame (the carried output moved with the video's flow) ...
    for k in (3, 7):
        assert psnr(frames[k], raw[k]) > 24
        assert psnr(frames[k], raw[k]) > psnr(frames[k], raw[k - 2]) + 3


def test_hybrid_motion_moves_the_picture_like_the_video(tmp_path, init_image):
    import animator

    _sliding_video(tmp_path / "pan.mp4", 7, 3, size=128)  # the video's content moves left 3 px per frame
    # 128 px: feature matching (ORB + RANSAC) needs more than 64 px to find the motion.
    keyframes = write_keyframes(
        tmp_path,
        init_image,
        mode="2d",
        frames=6,
        width=128,
        height=128,
        hybrid={"path": "pan.mp4", "motion": "perspective"},
    )
    frames = [e.image for e in animator.render_frames(keyframes)]
    dx, dy = shift_between(frames[0], frames[5])
    assert dx == pytest.approx(-15, abs=1.5) and abs(dy) < 1.5


def test_flow_guided_cadence_renders_every_frame(tmp_path, init_image):
    import animator

    keyframes = write_keyframes(
        tmp_path,
        init_image,
        mode="2d",
        frames=7,
        cadence=3,
        motion={"translation_x": "0:(2)", "cadence_flow": True},
        backends={"flow": "dis_fast"},
    )
    events = list(animator.render_frames(keyframes))
    assert [e.index for e in events] == list(range(7))
    # The tweens follow the motion: frame 1 sits 2 px right of frame 0 (the camera part of the move).
    dx, _ = shift_between(events[0].image, events[1].image)
    assert dx == pytest.approx(2, abs=0.7)


def test_a_frame_with_nan_values_stops_the_render_with_what_to_try():
    """The loop checks each finished frame once (its models' inputs go unchecked: on a GPU every check waits for
    the queue), in the same copy as the pixels: a NaN frame must not reach the video as black pixels."""
    import torch

    from animator.errors import AnimatorError
    from animator.rendering.tensors import to_uint8

    frame = torch.rand(1, 3, 8, 8)
    assert np.array_equal(to_uint8(frame), (frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    frame[0, 1, 2, 3] = float("nan")
    with pytest.raises(AnimatorError, match="NaN or infinite") as caught:
        to_uint8(frame)
    assert caught.value.field == "backends.dtype" and "float32" in caught.value.hint


@pytest.mark.parametrize(
    "frames, words",
    [
        ("20:", "starts at frame 20, after the animation's last frame (11)"),
        ("5:3", "5:3 selects no frames"),
        ("-2:4", "frame indices start at 0"),
    ],
)
def test_a_frame_range_outside_the_animation_is_refused_before_the_run_starts(tmp_path, init_image, frames, words):
    keyframes = write_keyframes(tmp_path, init_image)  # 12 frames
    result = CliRunner().invoke(
        main,
        ["render", str(keyframes), "-o", str(tmp_path / "x.mp4"), "--run-dir", str(tmp_path / "r"), "--frames", frames],
    )
    assert result.exit_code == 2 and words in result.output and "0 <= A < B <= 12" in result.output
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "r").exists()


def test_the_python_api_takes_a_number_of_frames_or_a_range(tmp_path, init_image):
    import animator

    keyframes = write_keyframes(tmp_path, init_image)  # 12 frames
    assert [event.index for event in animator.render_frames(keyframes, frames=3)] == [0, 1, 2]
    assert [event.index for event in animator.render_frames(keyframes, frames=range(10, 20))] == [10, 11]
    for wrong, words in (("0:3", "must be a range"), (0, "positive number"), (range(12, 14), "after the animation")):
        with pytest.raises(animator.AnimatorError, match=words):
            next(animator.render_frames(keyframes, frames=wrong))
