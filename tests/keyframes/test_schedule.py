"""The schedule grammar and its semantics, against values this test computes by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from animator.errors import AnimatorError
from animator.keyframes import TimeBase, parse_schedule
from animator.keyframes.schedule import parse_string_schedule

TB = TimeBase(frames=40, fps=10.0, seed=5.0)


def values(text, tb=TB, **kw):
    return parse_schedule(text, **kw).evaluate(tb)


def test_numbers_interpolate_linearly_and_hold_at_ends():
    v = values("5:(1.0), 15:(2.0)")
    np.testing.assert_allclose(v[:6], 1.0)
    np.testing.assert_allclose(v[5:16], np.linspace(1, 2, 11))
    np.testing.assert_allclose(v[15:], 2.0)


def test_expression_evaluated_every_frame_until_next_keyframe():
    v = values("0:(t*2), 10:(3)")
    np.testing.assert_allclose(v[:10], np.arange(10) * 2)
    np.testing.assert_allclose(v[10:], 3)


def test_number_before_expression_ramps_to_its_value_at_its_keyframe():
    v = values("0:(0), 10:(sin(t))")
    np.testing.assert_allclose(v[:11], np.linspace(0, math.sin(10), 11))
    np.testing.assert_allclose(v[10:], np.sin(np.arange(10, 40)))


def test_constant_expressions_hold_like_deforum():
    v = values("0:(2*1), 10:(-2*1), 20:(2*1)")
    np.testing.assert_allclose(v, [2] * 10 + [-2] * 10 + [2] * 20)


def test_commas_inside_calls_are_not_separators():
    v = values("0:(max(t, 5)), 20:(where(t > 30, 1, arctan2(1, 1)))")
    np.testing.assert_allclose(v[:20], np.maximum(np.arange(20), 5))
    np.testing.assert_allclose(v[20:], [math.pi / 4] * 11 + [1] * 9)


def test_schedule_without_frame_zero_holds_its_first_value():
    np.testing.assert_allclose(values("10:(3), 20:(5)")[:11], 3)


@pytest.mark.parametrize("text", ["0:(1e-3), 10:(1)", "0:(1.e-3), 10:(1.)", "0:( 0.001 ), 10:(1)", "0:(+1e-3), 10:(1)"])
def test_scientific_and_spaced_numbers_are_numbers_that_interpolate(text):
    v = values(text)
    np.testing.assert_allclose(v[:11], np.linspace(0.001, 1, 11))


def test_frame_keys_expressions_seconds_and_beats():
    tb = TimeBase(frames=100, fps=10.0, bpm=60.0)
    schedule = parse_schedule('0:(0), "max_f-9":(9), 2.5s:(1), 4b:(2)')
    assert schedule.key_frames(tb) == [0, 90, 25, 40]
    assert values("max_f-1:(7), 0:(0)", tb)[99] == 7


def test_beats_use_detected_grid_when_present():
    tb = TimeBase(frames=100, fps=10.0, bpm=60.0, beat_frames=(3, 10, 18, 25))
    assert parse_schedule("0:(0), 2b:(1)").key_frames(tb) == [0, 18]


def test_beats_without_tempo_is_a_clear_error():
    with pytest.raises(AnimatorError, match="tempo"):
        values("0:(0), 8b:(1)")


def test_keyframes_beyond_the_end_shape_the_frames_before_them():
    # a 40-frame preview of a longer animation shows the same values the full render has at those frames
    v = values("0:(0), 80:(8)")
    np.testing.assert_allclose(v, np.arange(40) / 10)


def test_nan_from_expression_is_a_gap_filled_like_deforum():
    # cos(t)**0.5 is undefined where cos < 0; Deforum interpolates over those frames
    v = values("0:(cos(t*pi/20)**0.5)")
    c = np.cos(np.arange(40) * np.pi / 20)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(v[:10], np.sqrt(c[:10]))


@pytest.mark.parametrize(
    "method, frame5",
    [("step", 1.0), ("linear", 1.5), ("ease", 1.5), ("cubic", None)],
)
def test_interpolation_options(method, frame5):
    v = values("0:(1), 10:(2), 20:(1)", interpolation=method)
    assert v[0] == 1 and v[10] == 2 and v[20] == 1
    if frame5 is not None:
        assert v[5] == pytest.approx(frame5)
    if method == "ease":
        assert v[1] - v[0] < 0.25 * (v[5] - v[4])  # zero slope at the keyframe
    if method == "cubic":
        assert v[9] > 1.9 and v[11] > 1.9 and v[10] == pytest.approx(2)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("0:(1), 10", "no `frame:` part"),
        ("0:(1", "unclosed"),
        ("0:(1))", "unbalanced"),
        ("0:(1), 0:(2)", "appears twice"),
        ("0:()", "empty"),
        ("x:(1)", "unknown name"),
        ("0:(1), 1.5:(2)", "whole frame"),
        ("", "empty schedule"),
        ("0:(foo)", "unknown name `foo`"),
    ],
)
def test_malformed_schedules_name_the_problem(bad, message):
    with pytest.raises(AnimatorError, match=message) as info:
        parse_schedule(bad, name="zoom", allowed_names={"t", "max_f", "fps", "s"})
    assert info.value.field == "zoom"


def test_string_schedule_holds_values():
    s = parse_string_schedule('0:("Euler a"), 10:(ddim)')
    out = s.evaluate(TimeBase(frames=20))
    assert out[:10] == ["Euler a"] * 10 and out[10:] == ["ddim"] * 10


_numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 4))
_expressions = st.sampled_from(["t", "sin(t/8)", "max(t, 3)", "where(t > 5, 1, -1)", "0.5*t**2", "s + max_f"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(0, 60), st.one_of(_numbers, _expressions), min_size=1, max_size=8))
def test_format_parse_round_trip(keyframes):
    text = ", ".join(f"{k}:({v})" for k, v in keyframes.items())
    schedule = parse_schedule(text)
    again = parse_schedule(str(schedule))
    assert again == schedule
    tb = TimeBase(frames=50, seed=3)
    np.testing.assert_array_equal(again.evaluate(tb), schedule.evaluate(tb))
    for frame, value in keyframes.items():  # every number keyframe inside the animation is hit exactly
        if isinstance(value, float) and frame < 50:
            assert schedule.evaluate(tb)[frame] == value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789t:(),.+-*/ \"'sbmax_fein", max_size=50))
def test_garbage_schedules_parse_or_raise_animator_error(text):
    try:
        schedule = parse_schedule(text)
        schedule.evaluate(TimeBase(frames=8, bpm=120))
    except AnimatorError:
        pass
