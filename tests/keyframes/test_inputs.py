"""files_read_by: the one list of files a render reads (start check and `validate --check-files`), and
starts_from_nothing."""

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from animator.cli import main
from animator.keyframes import config_from_dict, files_read_by, load_config, starts_from_nothing


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anim.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


EVERY_INPUT = """
    frames: 10
    init_image: init.png
    coherence: {reference: image, image: ref.png}
    hybrid: {path: hybrid.mp4}
    audio: {path: song.wav, stems: {drums: drums.wav}}
    motion: {zoom: "0:(1 + 0.1*rms)"}
    controlnet:
      - {model: m, source: depth}
      - {model: m, source: image, path: control.png}
      - {model: m, source: video, path: control.mp4}
    sections:
      - {frames: "0:5", start: image, image: s0.png}
      - {frames: "5:", start: noise}
"""


def test_every_kind_of_input_in_file_order(tmp_path):
    config = load_config(write(tmp_path, EVERY_INPUT))
    expected = [
        ("init_image", "init.png"),
        ("coherence.image", "ref.png"),
        ("hybrid.path", "hybrid.mp4"),
        ("audio.path", "song.wav"),
        ("audio.stems.drums", "drums.wav"),  # rms is read: the song and its stems are analysed
        ("controlnet.1.path", "control.png"),
        ("controlnet.2.path", "control.mp4"),
        ("sections.0.image", "s0.png"),
    ]
    assert files_read_by(config) == [(field, (tmp_path / name).resolve()) for field, name in expected]
    resumed = files_read_by(config, resuming=True)
    assert [field for field, _ in resumed] == [field for field, _ in expected[1:]]  # a checkpoint, not init_image


def test_what_is_not_read_is_not_listed(tmp_path):
    path = write(
        tmp_path,
        """
        frames: 4
        coherence: {color: none, reference: image, image: ref.png}
        audio: {path: song.wav, stems: {drums: drums.wav}}
        output: {audio: false}
        """,
    )
    # colour matching is off, nothing reads the audio (no expression uses it, the output does not mux it)
    assert files_read_by(load_config(path)) == []
    muxed = config_from_dict({"frames": 4, "audio": {"path": "/a/song.wav", "stems": {"v": "/a/v.wav"}}})
    assert files_read_by(muxed) == [("audio.path", Path("/a/song.wav"))]  # muxed, not analysed: no stems


def test_video_mode_reads_its_clip_not_an_init_image(tmp_path):
    config = load_config(write(tmp_path, "frames: 4\nmode: video\ninit_image: i.png\nvideo_input: {path: c.mp4}\n"))
    assert files_read_by(config) == [("video_input.path", (tmp_path / "c.mp4").resolve())]


@pytest.mark.parametrize(
    "data, nothing",
    [
        ({}, True),
        ({"init_image": "/i.png"}, False),
        ({"backends": {"denoise": "some/model"}}, False),
        ({"mode": "video", "video_input": {"path": "/c.mp4"}}, False),
        ({"sections": [{"frames": "0:", "start": "image", "image": "/s.png"}]}, False),
        ({"init_image": "/i.png", "sections": [{"frames": "0:2", "start": "image", "image": "/s.png"},
                                               {"frames": "2:", "start": "noise"}]}, True),  # noise needs a model
        ({"backends": {"denoise": "m"}, "sections": [{"frames": "0:", "start": "noise"}]}, False),
    ],
)  # fmt: skip
def test_starts_from_nothing(data, nothing):
    assert starts_from_nothing(config_from_dict({"frames": 4, **data})) is nothing


def test_validate_check_files_reads_the_same_list(tmp_path):
    runner = CliRunner()
    path = write(tmp_path, EVERY_INPUT)
    import numpy as np
    from PIL import Image

    from animator.video import EncodeSettings, VideoWriter

    for name in ("init.png", "ref.png", "hybrid.mp4", "song.wav", "drums.wav", "control.png", "control.mp4"):
        (tmp_path / name).write_bytes(b"")  # every input but the section's image; images and videos are read: real
        if name.endswith(".png"):
            Image.new("RGB", (8, 8)).save(tmp_path / name)
        if name.endswith(".mp4"):
            with VideoWriter(
                tmp_path / name, width=16, height=16, fps=4, settings=EncodeSettings(preset="ultrafast")
            ) as v:
                v.write(np.zeros((16, 16, 3), np.uint8))
    result = runner.invoke(main, ["validate", "--check-files", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:12: sections.0.image" in result.output and "s0.png" in result.output
    (tmp_path / "s0.png").write_bytes(b"")  # there, but not an image
    result = runner.invoke(main, ["validate", "--check-files", str(path)])
    assert result.exit_code == 2 and f"{path}:12: sections.0.image" in result.output and "cannot read" in result.output
    Image.new("RGB", (8, 8)).save(tmp_path / "s0.png")
    (tmp_path / "song.wav").unlink()
    result = runner.invoke(main, ["validate", "--check-files", str(path)])
    assert result.exit_code == 2 and f"{path}:5: audio.path" in result.output
    # without the flag the same file validates (media may come later)
    assert runner.invoke(main, ["validate", str(path)]).exit_code == 0
