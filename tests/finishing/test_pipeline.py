"""finish(): the keyframe file's output.upscale and output.interpolate applied to a render's frames; and where a
run folder's frames are read from."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import animator
from animator.finishing.frames import open_frames
from animator.images import load_frame
from animator.video import probe

pytestmark = pytest.mark.usefixtures("one_thread")


def write_keyframes(path, init_image, **output) -> object:
    data = {
        "width": 96,
        "height": 64,
        "fps": 6,
        "frames": 4,
        "mode": "2d",
        "seed": 5,
        "init_image": str(init_image),
        "motion": {"translation_x": "0:(2)"},
        "output": {"preset": "ultrafast", **output},
        "coherence": {"color": "none"},
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, init_image):
    folder = tmp_path_factory.mktemp("run")
    keyframes = write_keyframes(folder / "anim.yaml", init_image)
    kept = folder / "kept"
    result = animator.render(keyframes, folder / "render.mp4", run_dir=folder / "run", frames_dir=kept, metrics=False)
    return result, [load_frame(p) for p in sorted(kept.glob("*.png"))]


def test_a_run_folder_gives_its_lossless_frames(run):
    result, rendered = run
    source = open_frames(result.run_dir)
    assert (source.kind, source.count, source.fps, source.width, source.height) == ("run", 4, 6.0, 96, 64)
    assert all(np.array_equal(a, b) for a, b in zip(source.frames(), rendered))
    assert source.note is None


def test_a_run_folder_without_lossless_frames_reads_its_video(tmp_path, init_image):
    keyframes = write_keyframes(tmp_path / "anim.yaml", init_image)
    result = animator.render(keyframes, tmp_path / "render.mp4", run_dir=tmp_path / "run", metrics=False)
    source = open_frames(result.run_dir)
    assert source.count == 4 and source.video == result.output and "compressed video" in source.note


def test_finish_upscales_then_interpolates_and_keeps_the_unfinished_video(tmp_path, run, init_image):
    from animator.finishing.pipeline import finish
    from animator.keyframes import load_config

    result, rendered = run
    render_copy = tmp_path / "render.mp4"
    render_copy.write_bytes(result.output.read_bytes())
    config = load_config(
        write_keyframes(
            tmp_path / "finished.yaml", init_image, interpolate={"factor": 2}, upscale={"scale": 2, "method": "lanczos"}
        )
    )
    progress = []
    assert finish(result.run_dir, config, render_copy, progress=lambda *a: progress.append(a)) == render_copy
    info = probe(render_copy)
    assert (info.frames, info.fps, info.width, info.height) == (8, 12.0, 192, 128)
    unfinished = result.run_dir / "unfinished.mp4"
    assert (probe(unfinished).frames, probe(unfinished).width) == (4, 96)
    assert progress[-1] == ("finishing", 8, 8)
    # a second run (a resumed finishing stage) starts again from the same frames
    assert finish(result.run_dir, config, render_copy) == render_copy
    assert probe(render_copy).frames == 8 and probe(unfinished).width == 96


def test_finish_without_passes_does_nothing(run, tmp_path, init_image):
    from animator.finishing.pipeline import finish
    from animator.keyframes import load_config

    result, _ = run
    config = load_config(write_keyframes(tmp_path / "plain.yaml", init_image))
    assert finish(result.run_dir, config, tmp_path / "x.mp4") is None and not (tmp_path / "x.mp4").exists()


def test_a_render_with_finishing_passes_writes_the_finished_video(tmp_path, init_image):
    import json

    keyframes = write_keyframes(
        tmp_path / "anim.yaml", init_image, interpolate={"factor": 2}, upscale={"scale": 2, "method": "lanczos"}
    )
    result = animator.render(keyframes, tmp_path / "final.mp4", run_dir=tmp_path / "run")
    info = probe(result.output)
    assert (info.frames, info.fps, info.width, info.height) == (8, 12.0, 192, 128)
    unfinished = probe(result.run_dir / "unfinished.mp4")
    assert (unfinished.frames, unfinished.width) == (4, 96)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["drift"]["frames"] == 4 and metrics["drift"]["sharpness"]["series"][0] == 1.0
    # the finished run (journal gone) still gives the frames before finishing: its unfinished video
    source = open_frames(result.run_dir)
    assert (source.count, source.width, source.video) == (4, 96, result.run_dir / "unfinished.mp4")


def test_a_render_stopped_while_it_finishes_resumes_the_finishing_alone(tmp_path, init_image):
    """Ctrl-C during the finishing passes: the frames are all in the journal, so --resume renders none again and
    only finishes the video."""
    from animator.events import FrameRendered, MetricProgress

    keyframes = write_keyframes(tmp_path / "anim.yaml", init_image, interpolate={"factor": 2})

    def stop_while_finishing(event):
        if isinstance(event, MetricProgress) and event.metric == "finishing" and event.done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        animator.render(keyframes, tmp_path / "final.mp4", run_dir=tmp_path / "run", callbacks=[stop_while_finishing])
    assert not (tmp_path / "final.mp4").exists()
    events = []
    result = animator.render(resume=tmp_path / "run", callbacks=[events.append])
    assert not any(isinstance(event, FrameRendered) for event in events)  # no frame rendered again
    info = probe(result.output)
    assert (info.frames, info.fps) == (8, 12.0)
