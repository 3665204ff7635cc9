"""evaluate(): every schedule at every frame, prompts, seeds, audio variables (real analysis mocked only where
the audio module cannot be used here)."""

from types import SimpleNamespace

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.keyframes import SCHEDULE_NAMES, FramePrompt, config_from_dict, evaluate


def test_every_schedule_name_is_present_with_one_float_per_frame():
    result = evaluate(config_from_dict({"frames": 7, "fps": 12}))
    assert set(result.values) == set(SCHEDULE_NAMES)
    for name, array in result.values.items():
        assert array.shape == (7,) and array.dtype == np.float64, name
    data = result.to_json_dict()
    assert data["frames"] == 7 and data["fps"] == 12.0
    assert set(data["schedules"]) == set(SCHEDULE_NAMES)
    assert all(len(v) == 7 and all(isinstance(x, float) for x in v) for v in data["schedules"].values())
    assert data["prompts"] == [""] * 7


def test_variables_t_max_f_fps_s():
    config = config_from_dict(
        {"frames": 5, "fps": 10, "seed": 3, "motion": {"translation_x": "0:(t + 10*max_f + 100*fps + 1000*s)"}}
    )
    np.testing.assert_allclose(evaluate(config).values["translation_x"], np.arange(5) + 40 + 1000 + 3000)


def test_steps_and_seed_rounded():
    config = config_from_dict({"frames": 3, "generation": {"steps": "0:(10.4), 2:(11.6)", "seed": "0:(t*1.6)"}})
    values = evaluate(config).values
    np.testing.assert_array_equal(values["steps"], [10, 11, 12])
    np.testing.assert_array_equal(values["seed"], [0, 2, 3])


def test_frames_range_returns_values_of_the_full_animation():
    config = config_from_dict({"frames": 20, "motion": {"translation_x": "0:(0), max_f:(19)"}})
    part = evaluate(config, range(5, 8))
    assert part.frames == 3
    np.testing.assert_allclose(part.values["translation_x"], [5, 6, 7])
    with pytest.raises(AnimatorError):
        evaluate(config, range(10, 30))


def test_keyframes_listed_for_plots():
    config = config_from_dict(
        {
            "frames": 20,
            "motion": {"zoom": "0:(1), 5:(2), max_f:(1), 40:(3)"},
            "prompts": {0: "a", "max_f-4": "b", 30: "c"},
        }
    )
    keyframes = evaluate(config).keyframes
    assert keyframes["zoom"] == (0, 5, 19) and keyframes["prompts"] == (0, 15)


def test_prompts_by_frame_with_neg_prefix_suffix_and_backticks():
    config = config_from_dict(
        {
            "frames": 12,
            "fps": 2,
            "prompts": {0: "a cat:`0.5+0.5*sin(t/8)` --neg dog", "3s": "a fox"},
            "prompt_prefix": "oil painting,",
            "prompt_suffix": "4k",
            "negative_prompt": "blurry",
        }
    )
    prompts = evaluate(config).prompts
    assert isinstance(prompts[0], FramePrompt)
    assert prompts[0].positive == "oil painting, a cat:0.5, 4k" and prompts[0].negative == "dog, blurry"
    assert str(prompts[0]) == "oil painting, a cat:0.5, 4k --neg dog, blurry"
    assert prompts[4].positive == "oil painting, a cat:0.74, 4k"  # 0.5+0.5*sin(0.5) = 0.7397
    assert prompts[6].positive == "oil painting, a fox, 4k" and prompts[6].negative == "blurry"
    assert prompts[6].mix == (("oil painting, a fox, 4k", "blurry", 1.0),)


def test_prompt_without_negative_prints_positive_only():
    assert str(FramePrompt("a cat")) == "a cat"


def test_prompt_blend_weights_cross_fade_and_sum_to_one():
    config = config_from_dict({"frames": 20, "prompts": {0: "a", 10: "b"}, "prompt_blend": 3})
    prompts = evaluate(config).prompts
    assert prompts[9].mix == (("a", "", 1.0),)
    weights = [p.mix[1][2] for p in prompts[10:13]]
    np.testing.assert_allclose(weights, [0.25, 0.5, 0.75])
    assert all(abs(sum(m[2] for m in p.mix) - 1) < 1e-12 for p in prompts)
    assert [m[0] for m in prompts[10].mix] == ["a", "b"] and len(prompts[13].mix) == 1 and prompts[13].positive == "b"


def test_prompt_before_first_key_holds_first():
    prompts = evaluate(config_from_dict({"frames": 6, "prompts": {3: "late"}})).prompts
    assert [p.positive for p in prompts] == ["late"] * 6


def test_sampler_string_schedule_and_default():
    config = config_from_dict({"frames": 4, "generation": {"sampler": "0:(euler), 2:(ddim)"}})
    assert evaluate(config).strings["sampler"] == ["euler", "euler", "ddim", "ddim"]
    config = config_from_dict({"frames": 2, "backends": {"sampler": "lcm"}})
    assert evaluate(config).strings["sampler"] == ["lcm", "lcm"]


def test_expression_failing_at_a_frame_names_the_field():
    config = config_from_dict({"frames": 5, "motion": {"zoom": "0:(1/(t-2))"}})
    with pytest.raises(AnimatorError) as info:
        evaluate(config)
    assert info.value.field == "motion.zoom" and "t=2" in str(info.value)


def test_audio_variables_and_beat_keys_come_from_the_analysis(tmp_path):
    # The real analysis (animator.audio, librosa) belongs to another module; here a precomputed feature object of
    # the documented shape is passed in, which is exactly what evaluate() consumes.
    song = tmp_path / "song.wav"
    song.write_bytes(b"")
    config = config_from_dict(
        {
            "frames": 10,
            "fps": 10,
            "audio": {"path": str(song)},
            "motion": {"translation_z": "0:(1 + 6*bass)"},
            "generation": {"strength": "0:(0.65 - 0.2*beat), 2b:(0.1)"},
            "prompts": {0: "a", "1b": "b"},
        }
    )
    bass = np.linspace(0, 1, 10)
    beat = np.zeros(10)
    beat[[2, 5, 8]] = 1
    variables = {name: np.zeros(10) for name in config.audio_variables}
    variables.update(bass=bass, beat=beat)
    features = SimpleNamespace(variables=variables, beat_frames=np.array([2, 5, 8]), bpm=200.0)
    result = evaluate(config, features=features)
    np.testing.assert_allclose(result.values["translation_z"], 1 + 6 * bass)
    np.testing.assert_allclose(result.values["strength"][:8], 0.65 - 0.2 * beat[:8])
    assert result.values["strength"][8] == pytest.approx(0.1)  # beat 2 of the detected grid is frame 8
    assert [p.positive for p in result.prompts[4:6]] == ["a", "b"]


def test_missing_audio_file_is_a_clear_error_only_when_needed(tmp_path):
    config = config_from_dict(
        {"frames": 4, "audio": {"path": str(tmp_path / "nope.mp3")}, "motion": {"zoom": "0:(1+bass)"}}
    )
    with pytest.raises(AnimatorError, match="audio file not found"):
        evaluate(config)
    quiet = config_from_dict({"frames": 4, "audio": {"path": str(tmp_path / "nope.mp3")}})
    assert evaluate(quiet).frames == 4  # nothing reads audio: no analysis, no error
