"""`animator import deforum` carries Deforum's cn_1 ... cn_5 ControlNet units over as `controlnet:` units."""

from __future__ import annotations

import numpy as np

from animator.keyframes import config_from_dict, evaluate
from animator.keyframes.importers.deforum import convert_deforum

BASE = {"W": 512, "H": 512, "fps": 12, "max_frames": 20, "animation_mode": "3D", "prompts": {"0": "a forest"}}


def _unit(number: int, **fields) -> dict:
    settings = {f"cn_{number}_enabled": True, f"cn_{number}_low_vram": False, f"cn_{number}_pixel_perfect": True}
    settings.update({f"cn_{number}_{name}": value for name, value in fields.items()})
    return settings


def test_units_with_schedules_modes_and_sources():
    settings = {
        **BASE,
        **_unit(1, model="control_v11f1p_sd15_depth [cfd03158]", module="depth_midas", weight="0:(1), 10:(0.5)",
                guidance_start="0:(0.0)", guidance_end="0:(0.8)", control_mode="My prompt is more important"),
        **_unit(2, model="control_v11p_sd15_canny [d14c016b]", module="canny", threshold_a=80, threshold_b=160,
                control_mode="ControlNet is more important"),
        **_unit(3, model="control_v11f1e_sd15_tile [a371b31b]", module="none", vid_path="clips/dance.mp4"),
        "cn_4_enabled": False, "cn_4_model": "control_v11p_sd15_openpose [cab727d4]", "cn_4_module": "openpose",
    }  # fmt: skip
    result = convert_deforum(settings)
    depth, canny, video = result.data["controlnet"]
    assert depth["model"] == "lllyasviel/control_v11f1p_sd15_depth" and depth["source"] == "depth"
    assert depth["mode"] == "prompt"
    assert canny["source"] == "canny" and (canny["canny_low"], canny["canny_high"]) == (80, 160)
    assert canny["mode"] == "control"
    assert video["source"] == "video" and video["path"] == "clips/dance.mp4"
    # the web-UI names are not paths: each unit is listed as needing its model checked
    assert sum("is a web-UI model name" in warning for warning in result.warnings) == 3
    # the units' settings were used; the disabled unit's were not
    assert "cn_1_weight" not in result.not_imported and "cn_4_model" in result.not_imported
    # the schedules give Deforum's values per frame
    config = config_from_dict(result.data, source="<import>")
    values = evaluate(config).values
    np.testing.assert_allclose(values["controlnet.0.weight"][[0, 5, 10, 19]], [1.0, 0.75, 0.5, 0.5])
    np.testing.assert_allclose(values["controlnet.0.guidance_end"], 0.8)
    assert config.controlnet[2].source == "video"


def test_units_that_cannot_be_carried_over_are_listed():
    settings = {
        **BASE,
        "animation_mode": "2D",
        **_unit(1, model="None", module="canny"),
        **_unit(2, model="control_v11p_sd15_seg [e1f51eb9]", module="segmentation"),
        **_unit(3, model="control_v11f1p_sd15_depth [cfd03158]", module="depth_leres++"),
    }
    result = convert_deforum(settings)
    assert "controlnet" not in result.data
    notes = " | ".join(result.warnings)
    assert "cn_1: enabled without a model" in notes
    assert "preprocessor 'segmentation' has no counterpart" in notes
    assert "cn_3: depth_leres++ would be the render's own depth, which a 2d render has not" in notes
    assert "cn_1_enabled" in notes  # still reported among the settings switched on but not supported
