"""Importers against the whole shared corpus: every schedule Deforum parses must evaluate equal after import."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from animator.errors import AnimatorError
from animator.keyframes import TimeBase, evaluate, load_config
from animator.keyframes.importers import (
    convert_deforum,
    convert_parseq,
    convert_schedule,
    import_deforum,
    import_parseq,
)
from animator.keyframes.importers.deforum import SCHEDULE_KEYS

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
DEFORUM_FILES = sorted(p.stem for p in (CORPUS / "deforum").glob("*.json"))
PARSEQ_FILES = sorted(p.stem for p in (CORPUS / "parseq").glob("*.json"))


def _import_and_load(result, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(result.to_yaml())
    return path, load_config(path)


def test_corpus_is_complete(corpus_dir):
    assert len(DEFORUM_FILES) == 49 and len(PARSEQ_FILES) == 3


@pytest.mark.parametrize("name", DEFORUM_FILES)
def test_deforum_import_matches_deforums_own_values(name, corpus_dir, tmp_path):
    result = import_deforum(corpus_dir / "deforum" / f"{name}.json")
    path, config = _import_and_load(result, tmp_path, name)
    text = path.read_text()
    assert text.startswith("# Imported from a Deforum settings file") and f"Source: {name}.json" in text
    expected = json.loads((corpus_dir / "deforum_expected" / f"{name}.json").read_text())
    if expected["max_frames"] is None:  # the notebook still: nothing to compare, but it must load and evaluate
        assert config.frames == 1 and len(config.prompts) == 2
        return
    assert config.frames == expected["max_frames"]
    timebase = TimeBase(frames=config.frames, fps=config.fps, seed=float(config.seed))
    assert expected["schedules"], name
    for key, reference in expected["schedules"].items():
        section, field = SCHEDULE_KEYS[key]
        got = getattr(getattr(config, section), field).evaluate(timebase)[: len(reference)]
        np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-6, err_msg=f"{name}: {key}")
    # the file as a whole evaluates (audio files named by the settings do not exist here: not needed)
    evaluated = evaluate(config)
    assert len(evaluated.prompts) == config.frames


def test_duplicate_json_keys_last_wins_with_a_warning(corpus_dir):
    result = import_deforum(corpus_dir / "deforum" / "s4f3ty-elastic-vision.json")
    assert any("delete_imgs" in w and "more than once" in w for w in result.warnings)


def test_keyframes_past_max_frames_dropped_and_noted(corpus_dir):
    result = import_deforum(corpus_dir / "deforum" / "eudk-settingsfile.json")
    assert any(w.startswith("rotation_3d_z:") and "dropped" in w for w in result.warnings)
    assert "dropped" in result.to_yaml()


def test_hidden_malformed_keyframe_is_explained(corpus_dir):
    result = import_deforum(corpus_dir / "deforum" / "s4f3ty-flashbacks-30s.json")
    assert any("malformed" in w and "359" in w for w in result.warnings)
    assert any("listed twice" in w for w in result.warnings)


def test_unsupported_settings_are_warned_and_kept_as_comments(corpus_dir):
    result = import_deforum(corpus_dir / "deforum" / "s4f3ty-flashbacks-30s.json")
    yaml_text = result.to_yaml()
    assert "not supported here" in " ".join(result.warnings)
    for key in result.not_imported:
        assert f"#   {key}:" in yaml_text


def test_notebook_prompts_text_to_index(corpus_dir, tmp_path):
    result = import_deforum(corpus_dir / "deforum" / "notebook-image-20230101125957.json")
    _, config = _import_and_load(result, tmp_path, "nb")
    assert config.prompts[0][0] == "0" and "lake" in config.prompts[0][1]


# Where Deforum's parser crashes, ours parses correctly or raises a clear error.
def test_commas_inside_calls_parse_where_deforum_crashes():
    tb = TimeBase(frames=10)
    text, notes = convert_schedule("0:(max(t, 3)), 5:(where(t > 6, 1, 0))", tb)
    schedule_values = load_config_values(text, 10)
    np.testing.assert_allclose(schedule_values, [3, 3, 3, 3, 4, 0, 0, 1, 1, 1])


def test_missing_frame_zero_holds_where_deforum_crashes():
    text, notes = convert_schedule("5:(2), 8:(4)", TimeBase(frames=10))
    assert any("frame 0" in n for n in notes)
    np.testing.assert_allclose(load_config_values(text, 10), [2, 2, 2, 2, 2, 2, 2.6666666, 3.3333333, 4, 4], rtol=1e-6)


def test_expression_values_deforum_holds_keep_holding():
    # 5.68e-05 is not a "plain number" for Deforum: it holds until the next keyframe instead of ramping
    text, _ = convert_schedule("0:(5.68e-05), 4:(1)", TimeBase(frames=6))
    np.testing.assert_allclose(load_config_values(text, 6), [5.68e-05] * 4 + [1, 1])
    text, _ = convert_schedule("0:(0.5), 4:(1)", TimeBase(frames=6))
    np.testing.assert_allclose(load_config_values(text, 6), [0.5, 0.625, 0.75, 0.875, 1, 1])


@pytest.mark.parametrize(
    "bad, words",
    [
        ("0:(), 5:(1)", "malformed"),
        ("0:(1+), 5:(1)", "cannot parse"),
        ("0:(1), 20:(2)", None),
        ("0 (1)", "frame:"),
        ("0:(__import__('os')), 5:(1)", "not allowed"),
    ],
)
def test_deforum_crashes_become_clear_errors(bad, words):
    timebase = TimeBase(frames=10)
    if words is None:  # everything past max_frames: keyframe at 0 kept, 20 dropped with a note
        text, notes = convert_schedule(bad, timebase)
        assert text == "0:(1)" and "dropped" in notes[0]
        return
    with pytest.raises(AnimatorError, match=words):
        convert_schedule(bad, timebase)


def test_strength_keeps_deforums_meaning(tmp_path):
    # generation.strength is Deforum's strength_schedule (the share of the frame kept): imported as it is, no 1 - x.
    result = convert_deforum(
        {"max_frames": 20, "animation_mode": "3D", "strength_schedule": "0:(0.65), 10:(0.45), 15:(0.5+0*t)"}
    )
    _, config = _import_and_load(result, tmp_path, "strength")
    strength = evaluate(config).values["strength"]
    # linear 0.65 -> 0.45 over frames 0..10, on to the expression's 0.5 at 15 (as Deforum fills gaps), which holds
    np.testing.assert_allclose(strength[[0, 5, 10, 14, 15, 19]], [0.65, 0.55, 0.45, 0.49, 0.5, 0.5])
    assert not any("1 -" in w for w in result.warnings)


def test_imported_yaml_strength_is_deforums_numbers(corpus_dir):
    # The YAML a user reads shows the very numbers of the settings file, so it can be compared with Deforum by eye.
    settings = json.loads((corpus_dir / "deforum" / "s4f3ty-spacewalk.json").read_text())
    deforum_pairs = re.findall(r"(\d+)\s*:\s*\(([0-9.]+)\)", settings["strength_schedule"])
    assert len(deforum_pairs) == 6  # 0:(0.47), 89: (0.4), 90: (0.42), 134: (0.45), 135: (0.42), 170: (0.38)
    data = yaml.safe_load(import_deforum(corpus_dir / "deforum" / "s4f3ty-spacewalk.json").to_yaml())
    written = data["generation"]["strength"]
    assert written == ", ".join(f"{frame}:({value})" for frame, value in deforum_pairs)
    assert written == "0:(0.47), 89:(0.4), 90:(0.42), 134:(0.45), 135:(0.42), 170:(0.38)"


def test_convert_deforum_old_key_styles(tmp_path):
    settings = {
        "width": 640,
        "height": 360,
        "max_frames": 10,
        "animation_mode": "2D",
        "sampler_name": "DPM++ 2M Karras",
        "zoom": "0:(1.01)",
        "seed": 4,
        "scale": 6.5,
        "flip_2d_perspective": True,
        "fps": 30,
    }
    result = convert_deforum(settings)
    _, config = _import_and_load(result, tmp_path, "old")
    assert (config.width, config.height, config.mode, config.fps) == (640, 360, "2d", 30)
    assert config.backends.sampler == "dpm++_2m_karras" and config.motion.perspective_flip
    assert evaluate(config).values["cfg"][0] == 6.5


@pytest.mark.parametrize("name", PARSEQ_FILES)
def test_parseq_import_reproduces_rendered_frames(name, corpus_dir, tmp_path):
    manifest = json.loads((corpus_dir / "parseq" / f"{name}.json").read_text())
    frames = manifest["rendered_frames"]
    _, config = _import_and_load(import_parseq(corpus_dir / "parseq" / f"{name}.json"), tmp_path, name)
    evaluated = evaluate(config)
    assert config.frames == len(frames)
    assert [str(p) for p in evaluated.prompts] == [_tidy(f["deforum_prompt"]) for f in frames]
    if "angle" in manifest["managedFields"]:
        np.testing.assert_allclose(evaluated.values["angle"], [f["angle_delta"] for f in frames])
        np.testing.assert_allclose(evaluated.values["seed"], np.round([f["seed"] for f in frames]))
        assert config.seed_behavior == "schedule"
    assert config.fps == manifest["options"]["output_fps"]


def test_parseq_strength_is_imported_unchanged(tmp_path):
    # No corpus manifest manages strength, so one is built here: Parseq's strength has Deforum's meaning, as ours.
    kept = [0.65, 0.6, 0.3, 0.0, 1.0]
    manifest = {
        "managedFields": ["strength"],
        "options": {"output_fps": 10},
        "rendered_frames": [{"frame": i, "strength": v, "deforum_prompt": "a"} for i, v in enumerate(kept)],
    }
    result = convert_parseq(manifest)
    _, config = _import_and_load(result, tmp_path, "parseq_strength")
    np.testing.assert_allclose(evaluate(config).values["strength"], kept, atol=1e-12)
    assert not any("1 -" in w for w in result.warnings)


def _tidy(prompt: str) -> str:
    from animator.keyframes.prompts import split_prompt

    positive, negative = split_prompt(prompt)
    return f"{positive} --neg {negative}" if negative else positive


def load_config_values(schedule_text: str, frames: int) -> np.ndarray:
    from animator.keyframes import config_from_dict

    return evaluate(config_from_dict({"frames": frames, "motion": {"zoom": schedule_text}})).values["zoom"]
