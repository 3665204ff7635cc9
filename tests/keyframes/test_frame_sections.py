"""`sections:`: spans in order, contiguous and covering every frame; starts, images and cross-fades; refusals with
file, line and the section's index."""

import textwrap
from pathlib import Path

import pytest

from animator.errors import AnimatorError
from animator.keyframes import Section, config_from_dict, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anim.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_no_sections_by_default(tmp_path):
    assert load_config(write(tmp_path, "frames: 4\n")).sections == ()


def test_spans_starts_images_and_crossfades(tmp_path):
    path = write(
        tmp_path,
        """
        frames: 30
        sections:
          - {frames: "0:10", start: image, image: first.png}
          - frames: [10, 20]
          - {frames: "20:", start: noise, crossfade: 4}
        """,
    )
    sections = load_config(path).sections
    assert all(isinstance(s, Section) for s in sections)
    assert [s.frames for s in sections] == [range(0, 10), range(10, 20), range(20, 30)]  # "20:" runs to the end
    assert [s.start for s in sections] == ["image", "previous", "noise"]
    assert sections[0].image == (tmp_path / "first.png").resolve() and sections[1].image is None
    assert [s.crossfade for s in sections] == [0, 0, 4]


def test_open_start_is_frame_zero_and_the_frames_override_moves_an_open_end(tmp_path):
    data = {"frames": 8, "sections": [{"frames": ":3", "start": "noise"}, {"frames": "3:"}]}
    config = config_from_dict(data, overrides={"frames": 12})
    assert [s.frames for s in config.sections] == [range(0, 3), range(3, 12)]


@pytest.mark.parametrize(
    "body, field, line, words",
    [
        ('  - {frames: "0:10"}\n', "sections.0.start", 3, "no previous frame"),
        ('  - {frames: "0:5", start: noise}\n  - {frames: "6:10"}\n', "sections.1.frames", 4, "gap"),
        ('  - {frames: "0:5", start: noise}\n  - {frames: "4:10"}\n', "sections.1.frames", 4, "overlaps"),
        ('  - {frames: "1:10", start: noise}\n', "sections.0.frames", 3, "gap"),
        ('  - {frames: "0:5", start: noise}\n', "sections.0.frames", 3, "the animation has 10 frames"),
        ('  - {frames: "0:12", start: noise}\n', "sections.0.frames", 3, "past the animation's 10 frames"),
        ('  - {frames: "5:5", start: noise}\n', "sections.0.frames", 3, "selects no frames"),
        ('  - {frames: "a:b", start: noise}\n', "sections.0.frames", 3, "A:B"),
        ("  - {frames: 4, start: noise}\n", "sections.0.frames", 3, "A:B"),
        ('  - {frames: "0:10", start: image}\n', "sections.0.image", 3, "no `image:`"),
        ('  - {frames: "0:10", start: noise, image: a.png}\n', "sections.0.image", 3, "only when start is image"),
        ('  - {frames: "0:10", start: restart}\n', "sections.0.start", 3, "unknown value"),
        ('  - {frames: "0:5", start: noise}\n  - {frames: "5:", crossfade: 2}\n', "sections.1.crossfade", 4,
         "continues from the previous frame"),
        ('  - {frames: "0:5", start: noise}\n  - {frames: "5:", start: noise, crossfade: 6}\n',
         "sections.1.crossfade", 4, "longer than section 1"),
        ('  - {frames: "0:10", start: noise, crossfade: -1}\n', "sections.0.crossfade", 3, "outside"),
        ('  - {frames: "0:10", start: noise, length: 3}\n', "sections.0.length", 3, "unknown key"),
    ],
)  # fmt: skip
def test_refusals_name_file_line_and_section(tmp_path, body, field, line, words):
    path = write(tmp_path, "frames: 10\nsections:\n" + body)
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    err = info.value
    assert (err.file, err.field, err.line) == (str(path), field, line)
    assert words in str(err)


@pytest.mark.parametrize("value", ["[]", "3", "{frames: '0:4'}"])
def test_sections_must_be_a_non_empty_list(tmp_path, value):
    with pytest.raises(AnimatorError, match="a list of sections") as info:
        load_config(write(tmp_path, f"frames: 4\nsections: {value}\n"))
    assert (info.value.field, info.value.line) == ("sections", 2)
