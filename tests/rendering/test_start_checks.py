"""What stops a render before it makes anything: inputs that cannot be read and outputs that cannot be written are
refused with the field named, before a model loads or a run folder is made."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from animator.cli import main


def _write(folder: Path, **fields) -> Path:
    data = {"width": 64, "height": 64, "fps": 12, "frames": 4, "mode": "3d", "seed": 3, **fields}
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _render(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["render", *map(str, args), "-q"])
    return result.exit_code, result.output


def test_a_corrupt_input_video_is_refused_naming_its_field_before_a_run_folder(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    path = _write(tmp_path, mode="video", video_input={"path": "clip.mp4"})
    status, output = _render(path, "-o", tmp_path / "out.mp4", "--run-dir", tmp_path / "run")
    assert status == 2 and "video_input.path" in output and "clip.mp4" in output, output
    assert "Traceback" not in output and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["out.png", "out.xyz", "missing/out.mp4"])
def test_an_output_no_encode_could_finish_is_refused_before_a_run_folder(tmp_path, init_image, name):
    path = _write(tmp_path, init_image=str(init_image))
    status, output = _render(path, "-o", tmp_path / name, "--run-dir", tmp_path / "run")
    assert status == 2 and "Traceback" not in output, output
    assert not (tmp_path / "run").exists()


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path):
    import numpy as np

    from animator.video import EncodeSettings, VideoWriter

    path = _write(tmp_path, mode="video", video_input={"path": "clip.mp4"})

    with VideoWriter(
        tmp_path / "clip.mp4", width=64, height=64, fps=12, settings=EncodeSettings(preset="ultrafast")
    ) as w:
        for _ in range(5):
            w.write(np.zeros((64, 64, 3), np.uint8))
    before = (tmp_path / "clip.mp4").read_bytes()
    status, output = _render(path, "-o", tmp_path / "clip.mp4", "--run-dir", tmp_path / "run")
    assert status == 2 and "video_input.path" in output, output
    assert (tmp_path / "clip.mp4").read_bytes() == before and not (tmp_path / "run").exists()


def test_the_python_render_of_a_file_with_sections_says_how_to_render_them(tmp_path, init_image):
    import animator
    from animator.errors import AnimatorError

    sections = [{"frames": "0:2", "start": "image", "image": str(init_image)}, {"frames": "2:4", "start": "previous"}]
    path = _write(tmp_path, init_image=str(init_image), sections=sections)
    with pytest.raises(AnimatorError) as refused:
        animator.render(path, tmp_path / "out.mp4", run_dir=tmp_path / "run")
    assert refused.value.field == "sections" and "animator.batch" in refused.value.hint
    assert not (tmp_path / "run").exists()
    result = animator.render(path, tmp_path / "out.mp4", run_dir=tmp_path / "run", frames=range(0, 4), metrics=False)
    assert result.frames == 4  # a range: one continuous section
