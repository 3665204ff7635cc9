"""Reliability: locked run folders and outputs, damaged run files, full disks; every failure a user can cause is the
project's error (exit status 2, a message naming what and where, no traceback), and nothing is half-written.

Processes are real (subprocesses holding locks, killed with SIGKILL); the full disk is ``/dev/full`` (every write
fails with ENOSPC) or a small tmpfs where the machine lets us mount one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.run_folder import CHECKPOINT, JOURNAL, RunFolder, output_lock, write_atomic

HOLD = textwrap.dedent(
    """
    import sys
    from animator.run_folder import RunFolder
    with RunFolder(sys.argv[1]).lock(output=sys.argv[2] if len(sys.argv) > 2 else None):
        print("locked", flush=True)
        sys.stdin.read()  # hold until the test closes our stdin (or kills us)
    """
)


def _holder(*args: Path) -> subprocess.Popen:
    """A process holding ``RunFolder(args[0]).lock(output=args[1])`` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_a_locked_run_folder_and_gets_it_after_a_kill_9(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        with pytest.raises(AnimatorError, match="run folder .*run is in use by another animator process") as caught:
            with RunFolder(run).lock():
                pass
        assert f"pid {holder.pid}" in str(caught.value) and caught.value.hint
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up code runs: the kernel drops the lock
        holder.wait()
    with RunFolder(run).lock() as folder:  # no stale lock
        assert folder.path == run
    assert not (run / ".lock").exists()


def test_one_output_is_locked_across_run_folders_and_spellings(tmp_path, monkeypatch):
    (tmp_path / "videos").mkdir()
    holder = _holder(tmp_path / "run-a", tmp_path / "videos" / "out.mp4")
    try:
        monkeypatch.chdir(tmp_path / "videos")
        with pytest.raises(AnimatorError, match="the output .*out.mp4 is in use"):
            with RunFolder(tmp_path / "run-b").lock(output="../videos/./out.mp4"):
                pass
        assert not (tmp_path / "run-b").exists()  # the refused render made no run folder
        with RunFolder(tmp_path / "run-b").lock(output="other.mp4"):  # another output is free
            pass
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    with output_lock(tmp_path / "videos" / "out.mp4"):  # released by a clean exit, and its file removed
        pass
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == []


def test_the_lock_keeps_a_run_folder_that_holds_a_run(tmp_path):
    run = RunFolder(tmp_path / "run")
    with run.lock():
        run.create(source_text="frames: 2\n", source_name="a.yaml", record={"output": "x.mp4"})
    assert (tmp_path / "run" / "run.json").is_file() and not (tmp_path / "run" / ".lock").exists()


# ------------------------------------------------------------------------------------------- full disk, damaged files


def test_a_full_disk_is_one_clear_error_and_leaves_no_temporary_file(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux) to make every write fail with ENOSPC")
    (tmp_path / ".run.json.tmp").symlink_to("/dev/full")  # the temporary name leads onto a full device
    with pytest.raises(AnimatorError, match="cannot write .*run.json: No space left on device") as caught:
        write_atomic(tmp_path / "run.json", b"{}" * 10000)
    assert "free some space" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no .run.json.tmp, no run.json


def _run_with_checkpoint(tmp_path: Path, data: bytes | None) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.create(source_text="frames: 2\n", source_name="a.yaml", record={"start": 0})
    if data is not None:
        (folder.path / CHECKPOINT).write_bytes(data)
    return folder


def _good_checkpoint() -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"index": 3, "image": torch.zeros(4, 4, 3, dtype=torch.uint8), "depth": None}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda good: b"", "damaged"),
        (lambda good: good[: len(good) // 2], "damaged"),
        (lambda good: good[:100], "damaged"),
        (lambda good: b"\x00" * 4096, "damaged"),
        (lambda good: b"PK\x03\x04" + os.urandom(2000), "damaged"),
    ],
    ids=["empty", "half", "first-100-bytes", "zeros", "random-zip"],
)
def test_a_damaged_checkpoint_is_the_projects_error_with_what_to_do(tmp_path, damage, message):
    folder = _run_with_checkpoint(tmp_path, damage(_good_checkpoint()))
    with pytest.raises(AnimatorError, match=message) as caught:
        folder.load_checkpoint()
    assert caught.value.file == str(folder.path / CHECKPOINT)
    assert "remove" in caught.value.hint and "resume again" in caught.value.hint


def test_a_checkpoint_of_something_else_is_refused_and_a_good_one_loads(tmp_path):
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    folder = _run_with_checkpoint(tmp_path, buffer.getvalue())
    with pytest.raises(AnimatorError, match="not a checkpoint of this program .*index, image"):
        folder.load_checkpoint()
    (folder.path / CHECKPOINT).write_bytes(_good_checkpoint())
    assert folder.load_checkpoint()["index"] == 3


def test_a_truncated_journal_frame_names_the_frame_and_what_to_do(tmp_path):
    from animator.images import save_frame

    folder = _run_with_checkpoint(tmp_path, None)
    frame = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    save_frame(folder.path / JOURNAL / "000000.qoi", frame)
    save_frame(folder.path / JOURNAL / "000001.qoi", frame)
    path = folder.path / JOURNAL / "000001.qoi"
    path.write_bytes(path.read_bytes()[:30])
    (folder.path / JOURNAL / ".000002.qoi").write_bytes(b"qoif")  # a killed save's hidden name: not a frame
    assert np.array_equal(folder.journal_frame(0), frame)
    assert folder.journal_frame_count() == 2
    with pytest.raises(AnimatorError, match="frame 1 of the run's journal is damaged") as caught:
        folder.journal_frame(1)
    assert "--frames 1:" in caught.value.hint
    with pytest.raises(AnimatorError, match="frame 1 of the run's journal"):
        list(folder.journal_frames())


def test_a_damaged_run_record_is_the_projects_error(tmp_path):
    folder = _run_with_checkpoint(tmp_path, None)
    (folder.path / "run.json").write_bytes(b'{"status": "runn')
    with pytest.raises(AnimatorError, match="the run record is damaged"):
        folder.record()


# ------------------------------------------------------------------------------------------------------------ signals


def _photo(path: Path, size: int = 64) -> Path:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).resize((size, size)).save(path)
    return path


def _long_render_file(folder: Path, frames: int = 5000) -> Path:
    """A warp-only render (no model: offline depth) long enough to be stopped part-way."""
    import yaml

    data = {
        "width": 64,
        "height": 64,
        "fps": 12,
        "frames": frames,
        "seed": 5,
        "init_image": str(_photo(folder / "init.png")),
        "output": {"preset": "ultrafast"},
        "coherence": {"color": "none"},
        "motion": {"translation_z": "0:(2)"},
    }
    path = folder / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start_render(*args, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "animator", "render", *map(str, args), "--no-metrics"]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_frames(run: Path, proc: subprocess.Popen, count: int = 3, seconds: float = 240) -> None:
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if len(list((run / JOURNAL).glob("0*.qoi"))) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the render did not get going: " + (proc.stderr.read() if proc.poll() is not None else ""))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_render_like_ctrl_c(tmp_path, signum):
    import json

    keyframes = _long_render_file(tmp_path)
    proc = _start_render(keyframes, "-o", "out.mp4", "--run-dir", "run", cwd=tmp_path)
    _wait_for_frames(tmp_path / "run", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "animator render --resume run" in stderr  # the resume hint
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "out.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []  # the partial video is gone


# -------------------------------------------------------------------------------------------------------- concurrency

WRITE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from animator.errors import AnimatorError
    from animator.run_folder import RunFolder
    from animator.video import EncodeSettings, VideoWriter

    run, output, shade = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        with RunFolder(run).lock(output=output):
            print("locked", flush=True)
            settings = EncodeSettings(preset="ultrafast", crf=0, pix_fmt="yuv444p")
            with VideoWriter(output, width=64, height=48, fps=12, settings=settings) as writer:
                for _ in range(12):
                    writer.write(np.full((48, 64, 3), shade, np.uint8))
                sys.stdin.read()  # finish when the test says so
    except AnimatorError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    """
)


def test_two_processes_writing_one_output_one_is_refused_the_others_video_plays(tmp_path):
    from animator.video import partial_files, probe, read_frames

    output = tmp_path / "out.mp4"

    def writer(run: str, shade: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", WRITE, str(tmp_path / run), str(output), str(shade)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = writer("run-a", 40)
    assert first.stdout.readline().strip() == "locked"
    second = writer("run-b", 200)
    _, refusal = second.communicate(timeout=120)
    assert second.returncode == 2 and "is in use by another animator process" in refusal and str(output) in refusal
    first.stdin.close()
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert probe(output).frames == 12
    assert all(abs(int(frame.mean()) - 40) <= 1 for frame in read_frames(output))  # the first writer's frames
    assert partial_files(output) == [] and not (tmp_path / "run-b").exists()


def _render_settings(folder: Path, frames: int) -> Path:
    return _long_render_file(folder, frames=frames)


def test_two_renders_to_one_output_one_is_refused_the_others_video_plays(tmp_path):
    from animator.video import partial_files, probe

    keyframes = _render_settings(tmp_path, frames=400)  # ~10 s of frames: both start within it, one takes the lock
    renders = [_start_render(keyframes, "-o", "out.mp4", "--run-dir", run, cwd=tmp_path) for run in ("a", "b")]
    results = [p.communicate(timeout=600) for p in renders]
    codes = [p.returncode for p in renders]
    assert sorted(codes) == [0, 2], [err[-1000:] for _, err in results]
    refusal = results[codes.index(2)][1]
    assert "out.mp4 is in use by another animator process" in refusal and "Traceback" not in refusal
    assert probe(tmp_path / "out.mp4").frames == 400 and partial_files(tmp_path / "out.mp4") == []


def test_two_resumes_of_one_run_folder_one_is_refused_the_others_video_plays(tmp_path):
    from animator.video import probe

    keyframes = _render_settings(tmp_path, frames=300)
    proc = _start_render(keyframes, "-o", "out.mp4", "--run-dir", "run", cwd=tmp_path)
    _wait_for_frames(tmp_path / "run", proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    first = _start_render("--resume", "run", cwd=tmp_path)
    second = _start_render("--resume", "run", cwd=tmp_path)
    results = [p.communicate(timeout=600) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], [err[-1000:] for _, err in results]
    refusal = next(err for p, (_, err) in zip((first, second), results) if p.returncode == 2)
    assert "run folder run is in use" in refusal and "Traceback" not in refusal
    assert probe(tmp_path / "out.mp4").frames == 300


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KB tmpfs: a real full disk part-way through a render (needs mount rights: root in a container)."""
    folder = tmp_path / "small"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root with mount rights)")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_render_whose_run_folder_fills_its_disk_is_one_clear_error_and_leaves_no_temporary_file(tmp_path, small_disk):
    import json

    keyframes = _long_render_file(tmp_path, frames=300)  # ~10 KB a journal frame: the disk fills near frame 40
    proc = _start_render(keyframes, "-o", "out.mp4", "--run-dir", small_disk / "run", "-q", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr and stderr.count("error:") == 1
    assert "No space left on device" in stderr and "free some space" in stderr
    run = small_disk / "run"
    assert [p.name for p in run.rglob(".*")] == []  # no .run.json.tmp, no half-written hidden journal frame
    # marked interrupted, unless not even run.json's few hundred bytes fit (then that is the one error reported)
    status = json.loads((run / "run.json").read_text())["status"]
    assert status == "interrupted" or f"cannot write {run / 'run.json'}" in stderr
    assert not (tmp_path / "out.mp4").exists() and [p for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_resuming_a_run_with_a_damaged_checkpoint_or_journal_frame_is_a_clear_error(tmp_path):
    import shutil

    keyframes = _long_render_file(tmp_path)
    proc = _start_render(keyframes, "-o", "out.mp4", "--run-dir", "run", cwd=tmp_path)
    _wait_for_frames(tmp_path / "run", proc, count=8)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert (tmp_path / "run" / CHECKPOINT).is_file()
    shutil.copytree(tmp_path / "run", tmp_path / "run-b")
    (tmp_path / "run" / CHECKPOINT).write_bytes(b"")  # emptied (once: only click's "Aborted!")
    first_frame = tmp_path / "run-b" / JOURNAL / "000000.qoi"
    first_frame.write_bytes(first_frame.read_bytes()[:40])  # truncated
    for run, pattern in [("run", r"checkpoint.pt: the checkpoint is damaged"), ("run-b", r"frame 0 of the run's")]:
        done = subprocess.run(
            [sys.executable, "-m", "animator", "render", "--resume", run, "-q"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert re.search(pattern, done.stderr) and "hint:" in done.stderr, done.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_sigterm_stops_a_depth_video_without_leaving_its_unfinished_file(tmp_path):
    import time

    from animator.video import EncodeSettings, VideoWriter, partial_files

    source = tmp_path / "clip.mp4"
    with VideoWriter(source, width=64, height=48, fps=24, settings=EncodeSettings(preset="ultrafast")) as writer:
        for i in range(3000):
            writer.write(np.full((48, 64, 3), i % 256, np.uint8))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "animator", "depth", "clip.mp4", "-o", "depth.mp4"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not partial_files(tmp_path / "depth.mp4"):
        time.sleep(0.05)
    assert proc.poll() is None, "depth finished before it could be stopped: " + proc.stderr.read()[-500:]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr[-2000:]
    assert partial_files(tmp_path / "depth.mp4") == [] and not (tmp_path / "depth.mp4").exists()
