"""Audio variables bound into keyframe schedules through animator.keyframes (the real loader and evaluator)."""

from __future__ import annotations

import numpy as np
import pytest
from audio_synth import FPS

from animator import keyframes


def test_strength_bound_to_beat_dips_on_the_true_beat_frames(click_track):
    config = keyframes.config_from_dict(
        {
            "frames": 240,
            "fps": FPS,
            "audio": {"path": str(click_track.path)},
            "generation": {"strength": "0:(0.65 - 0.2*beat)"},
            "motion": {"translation_z": "0:(1 + 6*bass)"},
        }
    )
    values = keyframes.evaluate(config).values
    strength = values["strength"]
    truth = click_track.frames_of(click_track.beat_times_s)
    # The extreme of the schedule (0.45 = 0.65 - 0.2) falls on every synthesised hit, within a frame ...
    for frame in truth:
        assert strength[max(frame - 1, 0) : frame + 2].min() == pytest.approx(0.45)
    # ... and only there: between hits (the beat envelope is 0 after 0.25 s) the schedule rests at 0.65.
    on_beat = np.isclose(strength, 0.45)
    assert on_beat.sum() == truth.size
    assert np.allclose(strength[truth[0] - 6 : truth[0] - 1], 0.65)
    assert np.allclose(strength[truth + 7], 0.65)
    # bass drives the camera: loudest on the accented hits (they carry a 55 Hz kick), quiet between hits.
    translation_z = values["translation_z"]
    accents = click_track.frames_of(click_track.accent_times_s)
    assert np.all(translation_z[accents] > 5.0) and np.allclose(translation_z[truth + 7], 1.0, atol=0.1)


def test_beat_keyframe_times_use_the_detected_grid(click_track):
    config = keyframes.config_from_dict(
        {
            "frames": 240,
            "fps": FPS,
            "audio": {"path": str(click_track.path)},
            "motion": {"zoom": "0:(1), 4b:(1), 8b:(2)"},
        }
    )
    zoom = keyframes.evaluate(config).values["zoom"]
    truth = click_track.frames_of(click_track.beat_times_s)
    # Beat 0 is the first hit (0.5 s), so 4b and 8b are hits 4 and 8: 2.5 s and 4.5 s.
    start, stop = int(np.flatnonzero(zoom > 1.0)[0]) - 1, int(np.flatnonzero(zoom >= 2.0)[0])
    assert abs(start - truth[4]) <= 1 and abs(stop - truth[8]) <= 1
