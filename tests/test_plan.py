"""Seeds and cadence placement (pure functions, no models)."""

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.plan import anchor_frames, resolve_seeds


def test_iter_steps_like_deforum():
    # Deforum's next_seed: seed_internal % N == 0 -> +1, so frame f has seed + ceil(f / N).
    assert resolve_seeds("iter", 10, 6).tolist() == [10, 11, 12, 13, 14, 15]
    assert resolve_seeds("iter", 10, 6, iter_n=2).tolist() == [10, 11, 11, 12, 12, 13]


def test_fixed_ladder_alternate():
    assert resolve_seeds("fixed", 7, 4).tolist() == [7, 7, 7, 7]
    assert resolve_seeds("ladder", 0, 6).tolist() == [0, 2, 1, 3, 2, 4]
    assert resolve_seeds("alternate", 5, 5).tolist() == [5, 6, 5, 6, 5]


def test_schedule_and_random():
    assert resolve_seeds("schedule", 0, 3, schedule=np.array([3.0, 9.4, 100.6])).tolist() == [3, 9, 101]
    a = resolve_seeds("random", 1, 50, rng=np.random.default_rng(1))
    assert len(set(a.tolist())) == 50
    # -1 resolves to a concrete base seed (recorded by the render), still following the behaviour.
    s = resolve_seeds("iter", -1, 3, rng=np.random.default_rng(0))
    assert s[1] - s[0] == 1 and s[0] >= 0


def test_unknown_behaviour_lists_valid():
    with pytest.raises(AnimatorError, match="ladder"):
        resolve_seeds("sometimes", 1, 3)


def test_cadence_places_keyframes_on_anchor_frames_and_keeps_the_last_frame():
    marks = anchor_frames(20, 3, {10, 13})
    assert marks[0] == 0 and marks[-1] == 19
    assert {10, 13} <= set(marks)
    assert set(range(0, 20, 3)) <= set(marks)
    # Gaps never exceed the cadence.
    assert max(np.diff(marks)) <= 3
    assert anchor_frames(5, 1) == [0, 1, 2, 3, 4]
    with pytest.raises(AnimatorError):
        anchor_frames(5, 0)


def test_deforum_units_rescale_zoom_and_roll_only():
    """`motion.units: deforum` (set by the importer) keeps Deforum's numbers and rescales its exaggerated zoom/roll."""
    from animator.geometry import deforum_motion_to_scene
    from animator.keyframes import config_from_dict, evaluate
    from animator.plan import deforum_motions, make_plan

    factor = deforum_motion_to_scene(0, 0, 1, 0, 0, 0, fov_deg=40)[2]
    assert factor > 2  # Deforum's pseudo-3D zoom is ~2.7x a real camera's at fov 40
    converted = deforum_motions(np.array([[3.0, -2.0, 5.0, 0.5, 0.25, 1.0]]), np.array([40.0]), 1.0)[0]
    assert converted == pytest.approx([3.0, -2.0, 5.0 * factor, 0.5, 0.25, 1.0 * factor])

    motion = {"translation_x": "0:(3)", "translation_z": "0:(5)", "fov": "0:(40)"}
    scene = config_from_dict({"frames": 3, "motion": motion})
    deforum = config_from_dict({"frames": 3, "motion": motion | {"units": "deforum"}})
    t_scene = make_plan(scene, evaluate(scene)).world_from_cam[2, :3, 3].numpy()
    t_deforum = make_plan(deforum, evaluate(deforum)).world_from_cam[2, :3, 3].numpy()
    assert abs(t_deforum[2]) == pytest.approx(abs(t_scene[2]) * factor, rel=1e-4)
    assert t_deforum[0] == pytest.approx(t_scene[0], rel=1e-4)
