"""`controlnet:` units: defaults, accepted values, per-frame schedules, and every refusal with file, line, field."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.keyframes import ControlNetUnit, evaluate, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anim.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_no_controlnet_section_means_no_units_and_no_extra_schedules(tmp_path):
    config = load_config(write(tmp_path, "frames: 4\n"))
    assert config.controlnet == ()
    assert not any(name.startswith("controlnet") for name in evaluate(config).values)


def test_unit_defaults(tmp_path):
    config = load_config(write(tmp_path, "frames: 4\ncontrolnet:\n  - model: lllyasviel/sd-controlnet-depth\n"))
    (unit,) = config.controlnet
    assert isinstance(unit, ControlNetUnit)
    assert unit.model == "lllyasviel/sd-controlnet-depth"  # no such file here: kept as a hub id
    assert (unit.source, unit.mode, unit.canny_low, unit.canny_high) == ("depth", "balanced", 100, 200)
    assert unit.path is None and unit.config is None and unit.annotator is None and unit.control_type is None
    values = evaluate(config).values
    assert np.all(values["controlnet.0.weight"] == 1.0)
    assert np.all(values["controlnet.0.guidance_start"] == 0.0) and np.all(values["controlnet.0.guidance_end"] == 1.0)


def test_every_field_accepted_and_paths_resolved_against_the_file(tmp_path):
    (tmp_path / "cn").mkdir()
    (tmp_path / "cn" / "depth.safetensors").write_bytes(b"")
    path = write(
        tmp_path,
        """
        frames: 11
        controlnet:
          - model: cn/depth.safetensors
            config: cn_config
            source: image
            path: control.png
            weight: "0:(0), 10:(1)"
            guidance_start: "0:(0.1)"
            guidance_end: "0:(0.9)"
            mode: prompt
            control_type: depth
          - model: some/canny
            source: canny
            canny_low: 50
            canny_high: 120
          - model: some/hed
            source: hed
            annotator: aux
        """,
    )
    first, second, third = load_config(path).controlnet
    assert first.model == str((tmp_path / "cn" / "depth.safetensors").resolve())  # exists: an absolute path
    assert first.config == (tmp_path / "cn_config").resolve() and first.path == (tmp_path / "control.png").resolve()
    assert (first.source, first.mode, first.control_type) == ("image", "prompt", "depth")
    assert (second.source, second.canny_low, second.canny_high) == ("canny", 50, 120)
    assert second.annotator is None and third.source == "hed" and third.annotator == (tmp_path / "aux").resolve()
    values = evaluate(load_config(path)).values
    np.testing.assert_allclose(values["controlnet.0.weight"], np.arange(11) / 10)  # linear ramp 0 -> 1 over 10 frames
    np.testing.assert_allclose(values["controlnet.0.guidance_end"], 0.9)
    np.testing.assert_allclose(values["controlnet.1.weight"], 1.0)


def test_a_bare_string_is_a_unit_with_that_model(tmp_path):
    (unit,) = load_config(write(tmp_path, "frames: 2\ncontrolnet:\n  - some/model\n")).controlnet
    assert unit.model == "some/model" and unit.source == "depth"


@pytest.mark.parametrize(
    "unit, field, line, words",
    [
        ("source: depth\n", "controlnet.0.model", 3, "required"),
        ('model: ""\n', "controlnet.0.model", 3, "empty"),
        ("model: m\n    source: scribble\n", "controlnet.0.source", 4, "unknown value"),
        ("model: m\n    source: image\n", "controlnet.0.source", 4, "needs `path:`"),
        ("model: m\n    path: a.png\n", "controlnet.0.path", 4, "read only by sources image and video"),
        ("model: m\n    annotator: aux\n", "controlnet.0.annotator", 4, "only by the annotator sources"),
        ("model: m\n    canny_low: 300\n", "controlnet.0.canny_low", 4, "outside"),
        ("model: m\n    canny_low: 150\n    canny_high: 100\n", "controlnet.0.canny_high", 5, "above canny_low"),
        ('model: m\n    weight: "0:(-1)"\n', "controlnet.0.weight", 4, "below 0"),
        ('model: m\n    guidance_start: "0:(1.5)"\n', "controlnet.0.guidance_start", 4, "outside [0, 1]"),
        ('model: m\n    guidance_start: "0:(0.6)"\n    guidance_end: "0:(0.4)"\n', "controlnet.0.guidance_start", 4,
         "not below guidance_end"),
        ("model: m\n    mode: strong\n", "controlnet.0.mode", 4, "unknown value"),
        ("model: m\n    control_type: sketchy\n", "controlnet.0.control_type", 4, "unknown value"),
        ("model: m\n    strength: 1\n", "controlnet.0.strength", 4, "unknown key"),
    ],
)  # fmt: skip
def test_refusals_name_file_line_and_field(tmp_path, unit, field, line, words):
    path = write(tmp_path, "frames: 4\ncontrolnet:\n  - " + unit)
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    err = info.value
    assert (err.file, err.field, err.line) == (str(path), field, line)
    assert words in str(err)


def test_not_a_list_is_refused(tmp_path):
    path = write(tmp_path, "frames: 4\ncontrolnet: 3\n")
    with pytest.raises(AnimatorError, match="a list of units") as info:
        load_config(path)
    assert (info.value.field, info.value.line) == ("controlnet", 2)


def test_window_checked_at_every_frame_when_expressions_make_it(tmp_path):
    # guidance_end falls below guidance_start (0.5) at frame 6: only evaluation can know it
    path = write(
        tmp_path,
        'frames: 10\ncontrolnet:\n  - model: m\n    guidance_start: "0:(0.5)"\n    guidance_end: "0:(1 - t/10)"\n',
    )
    config = load_config(path)
    with pytest.raises(AnimatorError, match="at frame 5") as info:
        evaluate(config)
    assert (info.value.field, info.value.line) == ("controlnet.0.guidance_start", 4)


def test_negative_weight_from_an_expression_is_refused_at_its_frame(tmp_path):
    path = write(tmp_path, 'frames: 10\ncontrolnet:\n  - model: m\n    weight: "0:(sin(t))"\n')
    with pytest.raises(AnimatorError, match="negative at frame 4") as info:  # sin(4) < 0, sin(0..3) >= 0
        evaluate(load_config(path))
    assert (info.value.field, info.value.line) == ("controlnet.0.weight", 4)


def test_beat_keys_in_a_unit_need_a_tempo(tmp_path):
    path = write(tmp_path, 'frames: 10\ncontrolnet:\n  - model: m\n    weight: "0:(1), 2b:(0)"\n')
    with pytest.raises(AnimatorError, match="tempo") as info:
        load_config(path)
    assert info.value.field == "controlnet.0.weight"
