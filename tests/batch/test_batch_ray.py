"""Batches on a real local Ray (no mocks): warp-only jobs at 64x64, a few frames each; Ray starts once per module."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

import animator
from animator.video import probe, read_frames

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module; the batch uses the Ray this process started and leaves it running."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def keyframes(folder: Path, name: str, init_image: Path | None, **fields) -> Path:
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 6,
        "mode": "3d",
        "seed": 5,
        "output": {"preset": "ultrafast"},
        "coherence": {"color": "none"},
        "backends": {"device": "cpu"},
        "motion": {"translation_z": "0:(2)"},
    }
    if init_image is not None:
        data["init_image"] = str(init_image)
    data.update(fields)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def summary(folder: Path) -> dict[str, dict]:
    with open(folder / "summary.csv", newline="") as handle:
        return {row["job"]: row for row in csv.DictReader(handle)}


def frames_of(video: Path) -> list[np.ndarray]:
    return list(read_frames(video))


def test_three_jobs_render_their_own_files_and_a_rerun_skips_them(tmp_path, init_image):
    files = [
        keyframes(tmp_path / "in", f"move{z}", init_image, motion={"translation_z": f"0:({z})"}) for z in (0, 3, 6)
    ]
    out = tmp_path / "out"
    rows = animator.batch(files, out, jobs=2, progress=False)
    assert [(r["job"], r["status"], r["frames"]) for r in rows] == [(f"move{z}", "done", 6) for z in (0, 3, 6)]
    videos = [out / f"move{z}.mp4" for z in (0, 3, 6)]
    assert [probe(v).frames for v in videos] == [6, 6, 6]
    assert all(json.loads((out / f"move{z}" / "run" / "run.json").read_text())["status"] == "complete" for z in (0, 3))
    # each job rendered its own file: the same as rendering that file directly, frame for frame
    direct = animator.render(files[1], tmp_path / "direct.mp4", run_dir=tmp_path / "direct", metrics=False)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(videos[1]), frames_of(direct.output)))
    assert not np.array_equal(frames_of(videos[0])[-1], frames_of(videos[2])[-1])  # and the files differ
    assert summary(out)["move3"]["output"] == str(videos[1])

    before = {v: v.stat().st_mtime_ns for v in videos}
    videos[2].unlink()  # this one must be made again; the others are finished
    files[0].write_text(files[0].read_text().replace("frames: 6", "frames: 4"))  # an edited file is a new job
    again = animator.batch(files, out, jobs=2, progress=False)
    assert [r["status"] for r in again] == ["done", "skipped", "done"], again
    assert videos[1].stat().st_mtime_ns == before[videos[1]]
    assert [probe(v).frames for v in videos] == [4, 6, 6] and [r["frames"] for r in again] == [4, 6, 6]


def test_bad_files_fail_alone_with_their_errors_and_exit_status_2(tmp_path, init_image):
    from animator.cli import main

    good = keyframes(tmp_path, "good", init_image)
    unreadable = keyframes(tmp_path, "narrow", init_image, width=63)  # refused when the file is read
    missing_image = keyframes(tmp_path, "noimage", tmp_path / "nowhere.png")  # refused by the render's start check
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(good), str(unreadable), str(missing_image), "-o", str(out)])
    assert result.exit_code == 2, result.output
    rows = summary(out)
    assert rows["good"]["status"] == "done" and probe(out / "good.mp4").frames == 6
    assert rows["narrow"]["status"] == "failed" and rows["noimage"]["status"] == "failed"
    assert f"{unreadable}:" in rows["narrow"]["error"] and "width" in rows["narrow"]["error"]
    assert "nowhere.png" in rows["noimage"]["error"] and "init_image" in rows["noimage"]["error"]
    assert "1 done, 0 skipped, 2 failed" in result.output


def test_sweep_writes_summary_and_a_contact_sheet_of_every_job(tmp_path, init_image):
    from animator.batching.contact import GAP, LABEL_WIDTH, THUMB_WIDTH, frame_indices

    file = keyframes(tmp_path, "anim", init_image, frames=9)
    out = tmp_path / "sweep"
    rows = animator.sweep(file, {"motion.translation_z": [0, 8], "seed": 3}, out, jobs=2, progress=False)
    names = ["anim-translation_z=0", "anim-translation_z=8"]
    assert [(r["job"], r["status"]) for r in rows] == [(n, "done") for n in names]
    assert json.loads(summary(out)[names[1]]["overrides"]) == {"seed": 3, "motion.translation_z": 8}
    sheet = np.asarray(Image.open(out / "contact.png").convert("RGB")).astype(np.float32)
    assert sheet.shape == (GAP + 2 * (THUMB_WIDTH + GAP), LABEL_WIDTH + 5 * (THUMB_WIDTH + GAP) + GAP, 3)
    # every cell is its job's frame at 0, 25, 50, 75, 100 %, and the rows differ where the renders do
    for row, name in enumerate(names):
        frames = frames_of(out / f"{name}.mp4")
        for column, index in enumerate(frame_indices(len(frames))):
            top, left = GAP + row * (THUMB_WIDTH + GAP), LABEL_WIDTH + GAP + column * (THUMB_WIDTH + GAP)
            cell = sheet[top : top + THUMB_WIDTH, left : left + THUMB_WIDTH]
            expected = Image.fromarray(frames[index]).resize((THUMB_WIDTH, THUMB_WIDTH), Image.Resampling.LANCZOS)
            assert np.abs(cell - np.asarray(expected, np.float32)).mean() < 1.0, (name, index)
    last = LABEL_WIDTH + GAP + 4 * (THUMB_WIDTH + GAP)
    rows_last = [sheet[GAP + r * (THUMB_WIDTH + GAP) :][:THUMB_WIDTH, last : last + THUMB_WIDTH] for r in (0, 1)]
    assert np.abs(rows_last[0] - rows_last[1]).mean() > 5.0


def test_a_worker_killed_mid_job_is_replaced_and_the_job_resumes_to_the_same_frames(tmp_path, init_image):
    """SIGKILL the worker process of one job while it renders; Ray restarts the worker and sends the job again,
    which resumes from the run folder's checkpoint. A copy of the same file, never interrupted, is the truth."""
    fields = {"frames": 240, "motion": {"translation_z": "0:(1.5)", "rotation_3d_y": "0:(0.4)"}}
    victim = keyframes(tmp_path / "a", "anim", init_image, **fields)
    truth = keyframes(tmp_path / "b", "anim", init_image, **fields)  # the same file: job name anim-2
    out = tmp_path / "out"
    rows: list = []
    runner = threading.Thread(target=lambda: rows.extend(animator.batch([victim, truth], out, jobs=2, progress=False)))
    runner.start()
    run_dir, worker_file = out / "anim" / "run", out / "anim" / "worker.json"
    deadline, killed = time.time() + 300, None
    while time.time() < deadline and runner.is_alive():
        journal = len(list((run_dir / "frames").glob("*.qoi"))) if (run_dir / "frames").is_dir() else 0
        if (run_dir / "checkpoint.pt").exists() and journal >= 20 and worker_file.exists():
            killed = json.loads(worker_file.read_text())
            os.kill(killed["pid"], signal.SIGKILL)
            break
        time.sleep(0.01)
    runner.join(timeout=600)
    assert killed is not None, "the job finished before its worker could be killed"
    assert [(r["job"], r["status"]) for r in rows] == [("anim", "done"), ("anim-2", "done")]
    after = json.loads(worker_file.read_text())
    assert after["attempt"] == killed["attempt"] + 1 and after["pid"] != killed["pid"]
    a, b = frames_of(out / "anim.mp4"), frames_of(out / "anim-2.mp4")
    assert len(a) == len(b) == 240
    for index, (fa, fb) in enumerate(zip(a, b)):
        assert np.array_equal(fa, fb), f"frame {index} differs after the resume"


def _tone(path: Path, seconds: float) -> Path:
    rate = 8000
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_sections_run_in_parallel_and_a_previous_section_gives_the_sequential_frames(tmp_path, init_image):
    from animator.batching.jobs import Job
    from animator.batching.sections import joined_frames, section_chains
    from animator.images import load_frame
    from animator.keyframes import load_config

    second = tmp_path / "second.png"
    Image.open(init_image).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    sections = [
        {"frames": "0:30", "start": "image", "image": str(init_image)},
        {"frames": "30:40"},  # continues the first: one job renders 0..39 sequentially
        {"frames": "40:80", "start": "image", "image": str(second), "crossfade": 4},  # waits for nothing
    ]
    file = keyframes(
        tmp_path, "song", init_image, frames=80, sections=sections, audio={"path": str(_tone(tmp_path / "t.wav", 8))}
    )
    out = tmp_path / "out"
    rows = animator.batch(file, out, jobs=2, progress=False)
    assert [(r["job"], r["status"], r["frames"]) for r in rows] == [
        ("song-frames0-40", "done", 40), ("song-frames40-80", "done", 40), ("song", "done", 80)
    ]  # fmt: skip
    workers = [json.loads((out / name / "worker.json").read_text()) for name in ("song-frames0-40", "song-frames40-80")]
    assert workers[0]["pid"] != workers[1]["pid"]
    assert workers[0]["started"] < workers[1]["finished"] and workers[1]["started"] < workers[0]["finished"]

    def png(name: str, index: int) -> np.ndarray:
        return load_frame(out / name / "frames" / f"{index:06d}.png")

    sequential = [e.image for e in animator.render_frames(file, frames=range(0, 40))]
    assert all(np.array_equal(png("song-frames0-40", i), sequential[i]) for i in range(40))
    restarted = [
        e.image for e in animator.render_frames(file, overrides={"init_image": str(second)}, frames=range(40, 80))
    ]
    assert all(np.array_equal(png("song-frames40-80", 40 + i), restarted[i]) for i in range(40))
    info = probe(out / "song.mp4")
    assert info.frames == 80 and info.has_audio
    # the join, losslessly: the sequential frames, a cross-fade from frame 39 over 4 frames, the new section
    chains = section_chains(Job(name="song", file=str(file)), load_config(file).sections, tmp_path)
    joined = list(joined_frames(chains, out))
    assert all(np.array_equal(joined[i], sequential[i]) for i in range(40))
    last_before = sequential[39].astype(np.float32)
    for i, weight in enumerate((0.2, 0.4, 0.6, 0.8)):
        expected = np.rint((1 - weight) * last_before + weight * restarted[i])
        assert np.abs(joined[40 + i].astype(np.float32) - expected).max() <= 1.0
    assert all(np.array_equal(joined[40 + i], restarted[i]) for i in range(4, 40))
    # and the video holds those frames (up to the encoder's loss)
    encoded = frames_of(out / "song.mp4")
    assert max(np.abs(e.astype(np.float32) - j).mean() for e, j in zip(encoded, joined)) < 6.0

    # `animator render` of a file with sections is this batch: here every section is finished, so it only copies
    from animator.cli import main

    final = tmp_path / "final.mp4"
    result = CliRunner().invoke(main, ["render", str(file), "-o", str(final), "--run-dir", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert [row["status"] for row in summary(out).values()] == ["skipped"] * 3
    assert final.read_bytes() == (out / "song.mp4").read_bytes()


def test_ctrl_c_stops_the_batch_and_the_same_call_resumes_the_job(tmp_path, init_image):
    """SIGINT to this process (what Ctrl-C sends) while a job renders: the running job is cancelled, its render
    marks the run folder interrupted, the summary says how to resume, and the same call finishes the job."""
    from animator.batching.summary import RESUME_NOTE

    file = keyframes(tmp_path, "long", init_image, frames=400)
    out = tmp_path / "out"
    journal = out / "long" / "run" / "frames"
    running = threading.Event()

    def interrupt() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and running.is_set():
            if journal.is_dir() and len(list(journal.glob("*.qoi"))) >= 10:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    running.set()
    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            animator.batch(file, out, jobs=1, progress=False)
    finally:
        running.clear()
        interrupter.join()
    record = json.loads((out / "long" / "run" / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert 10 <= len(list(journal.glob("*.qoi"))) < 400
    row = summary(out)["long"]
    assert (row["status"], row["error"]) == ("failed", RESUME_NOTE)

    rows = animator.batch(file, out, jobs=1, progress=False)
    assert [(r["status"], r["frames"]) for r in rows] == [("done", 400)]
    assert probe(out / "long.mp4").frames == 400
