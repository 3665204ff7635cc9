"""Loading keyframe files: every field validated, errors with file:line:field, did-you-mean, overrides, formats."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.keyframes import AnimationConfig, config_from_dict, evaluate, load_config


def write(tmp_path: Path, text: str, name: str = "anim.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_minimal_file_gets_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, "frames: 12\n"))
    assert isinstance(config, AnimationConfig)
    assert (config.width, config.height, config.fps, config.frames) == (512, 512, 24.0, 12)
    assert config.mode == "3d" and config.seed_behavior == "iter" and config.cadence == 1
    assert config.backends.denoise == "none" and config.backends.depth == "offline"
    values = evaluate(config).values
    assert np.all(values["zoom"] == 1.0) and np.all(values["fov"] == 40) and np.all(values["strength"] == 0.65)
    assert config.source_text == "frames: 12\n"


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, "frames: 12\n"))
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        config.frames = 3  # type: ignore[misc]


def test_unknown_key_names_file_line_and_suggests(tmp_path):
    path = write(
        tmp_path,
        """
        frames: 12
        motion:
          translation_z: "0:(1)"
          rotaton_3d_y: "0:(1)"
        """,
    )
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path) and err.line == 4 and err.field == "motion.rotaton_3d_y"
    assert "did you mean `motion.rotation_3d_y`" in str(err)


def test_unknown_top_level_key_suggests(tmp_path):
    with pytest.raises(AnimatorError, match="did you mean `prompts`"):
        load_config(write(tmp_path, "frames: 12\nprompt:\n  0: a cat\n"))


@pytest.mark.parametrize(
    "body, field, line, words",
    [
        ("frames: 12\nwidth: 500\n", "width", 2, "multiple of 8"),
        ("frames: 12\nwidth: big\n", "width", 2, "whole number"),
        ("frames: 0\n", "frames", 1, "outside"),
        ("frames: ten\n", "frames", 1, "frame count"),
        ("frames: 12\nfps: -3\n", "fps", 2, "outside"),
        ("frames: 12\nmode: 4d\n", "mode", 2, "unknown value"),
        ("frames: 12\nseed_behavior: itr\n", "seed_behavior", 2, "did you mean 'iter'"),
        ('frames: 12\nmotion:\n  zoom: "0:(1"\n', "motion.zoom", 3, "unclosed"),
        ('frames: 12\nmotion:\n  zoom: "0:(bass)"\n', "motion.zoom", 3, "audio"),
        ('frames: 12\ngeneration:\n  strength: "0:(1.5)"\n', "generation.strength", 3, "outside"),
        ('frames: 12\ngeneration:\n  sampler: "0:(eulr_a)"\n', "generation.sampler", 3, "did you mean 'euler_a'"),
        ("frames: 12\nbackends:\n  device: gpu\n", "backends.device", 3, "cuda"),
        ("frames: 12\nmotion: 5\n", "motion", 2, "mapping"),
        ("frames: 12\nmode: video\n", "mode", 2, "video_input"),
        ('frames: 12\nmotion:\n  zoom: "0:(1), 8b:(2)"\n', "motion.zoom", 3, "bpm"),
        ('frames: 12\nprompts:\n  0: "a `t[0]` cat"\n', "prompts.0", 3, "subscripts"),
        ("frames: 12\nmotion:\n  perspective_flip: maybe\n", "motion.perspective_flip", 3, "true or false"),
        ("width: 512\n", "frames", None, "missing"),
    ],
)
def test_wrong_values_name_file_line_field_and_expectation(tmp_path, body, field, line, words):
    path = write(tmp_path, body)
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    err = info.value
    assert err.field == field
    assert err.file == str(path)
    assert err.line == line
    assert words in str(err)


def test_injection_in_a_keyframe_file_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "X"
    path = write(
        tmp_path,
        f"""
        frames: 12
        motion:
          zoom: "0:(__import__('os').system('touch {marker}'))"
        """,
    )
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    assert info.value.field == "motion.zoom" and info.value.line == 3
    assert not marker.exists()


def test_yaml_syntax_error_has_a_line(tmp_path):
    with pytest.raises(AnimatorError) as info:
        load_config(write(tmp_path, "frames: 12\nmotion:\n  zoom: [1,\n"))
    assert "YAML" in str(info.value) and info.value.line is not None


def test_json_and_toml_load_the_same_and_locate_lines(tmp_path):
    data = {"frames": 10, "fps": 12, "motion": {"translation_z": "0:(1), 9:(2)"}, "prompts": {"0": "a cat"}}
    json_path = tmp_path / "a.json"
    json_path.write_text(json.dumps(data, indent=2))
    toml_path = write(
        tmp_path,
        """
        frames = 10
        fps = 12
        [motion]
        translation_z = "0:(1), 9:(2)"
        [prompts]
        0 = "a cat"
        """,
        "a.toml",
    )
    yaml_config, json_config, toml_config = (
        load_config(p) for p in (write(tmp_path, json.dumps(data)), json_path, toml_path)
    )
    for config in (json_config, toml_config):
        assert config.motion == yaml_config.motion and config.prompts == yaml_config.prompts
    bad = dict(data, motion={"translation_z": "0:(1), 9:(2)", "zooom": 1})
    json_path.write_text(json.dumps(bad, indent=2))
    with pytest.raises(AnimatorError) as info:
        load_config(json_path)
    assert info.value.line == 6 and "did you mean `motion.zoom`" in str(info.value)
    toml_path.write_text(toml_path.read_text().replace("[prompts]", "zooom = 1\n[prompts]"))
    with pytest.raises(AnimatorError) as info:
        load_config(toml_path)
    assert info.value.line == 5


def test_relative_paths_resolve_against_the_file(tmp_path):
    sub = tmp_path / "shots"
    sub.mkdir()
    config = load_config(write(sub, "frames: 4\ninit_image: ../img/a.png\naudio:\n  path: song.wav\n"))
    assert config.init_image == (tmp_path / "img" / "a.png").resolve()
    assert config.audio.path == (sub / "song.wav").resolve()


def test_overrides_apply_before_validation(tmp_path):
    path = write(tmp_path, "duration: 10s\nfps: 24\nbackends:\n  denoise: none\n")
    config = load_config(path, overrides={"frames": 12, "backends.denoise": "my/model", "width": 256})
    assert config.frames == 12 and config.backends.denoise == "my/model" and config.width == 256
    with pytest.raises(AnimatorError, match="multiple of 8"):
        load_config(path, overrides={"width": 100})


def test_duration_and_time_frames(tmp_path):
    assert load_config(write(tmp_path, "duration: 2.5s\nfps: 10\n")).frames == 25
    assert load_config(write(tmp_path, "frames: 3s\nfps: 8\n")).frames == 24


def test_schedule_mapping_with_interpolation_and_dict_keys():
    config = config_from_dict(
        {
            "frames": 21,
            "motion": {"zoom": {"keys": "0:(1), 10:(2), 20:(1)", "interpolation": "step"}, "angle": {0: 0, "1s": 24}},
            "fps": 24,
        }
    )
    values = evaluate(config).values
    assert np.all(values["zoom"][:10] == 1) and np.all(values["zoom"][10:20] == 2)
    np.testing.assert_allclose(values["angle"][:21], np.arange(21))


def test_config_from_dict_errors_name_source():
    with pytest.raises(AnimatorError) as info:
        config_from_dict({"frames": 5, "hight": 512}, source="notebook")
    assert info.value.file == "notebook" and "did you mean `height`" in str(info.value)


def test_audio_variables_allowed_only_with_audio_and_bands_become_variables():
    config = config_from_dict(
        {
            "frames": 5,
            "audio": {"path": "x.wav", "bands": {"sub": [20, 60]}, "stems": {"drums": "d.wav"}},
            "motion": {"translation_z": "0:(1 + sub + drums_rms + beat)"},
        }
    )
    assert {"sub", "drums_rms", "beat", "rms"} <= set(config.audio_variables)
    with pytest.raises(AnimatorError, match="unknown name `bass`"):
        config_from_dict(
            {
                "frames": 5,
                "audio": {"path": "x.wav", "bands": {"sub": [20, 60]}},
                "motion": {"translation_z": "0:(bass)"},
            }
        )


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_KEYS = [
    "frames",
    "width",
    "fps",
    "seed",
    "mode",
    "prompts",
    "motion",
    "generation",
    "backends",
    "audio",
    "bpm",
    "duration",
    "cadence",
    "zoom",
    "translation_z",
    "strength",
    "sampler",
    "path",
    "bands",
    "lora",
    "0",
    "5s",
]
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 600),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["0:(1)", "3d", "10s", "audio", "0:(t", "8b", "euler_a"]),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6))
def test_random_settings_load_or_raise_animator_error(data):
    try:
        config = config_from_dict(data)
    except AnimatorError:
        return
    try:
        evaluate(config)
    except AnimatorError:
        pass
