"""ControlNet units in whole renders: the keyframe file's `controlnet:` list, its schedules per frame, the loop's
own depth as the control (no second depth-model call), and every user error before the first frame, with its file,
line and field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from animator.errors import AnimatorError

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64


@pytest.fixture(scope="module")
def init(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("init") / "init.png"
    Image.fromarray((np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _keyframes(tmp_path: Path, init: Path, model: Path, units: list, **extra) -> Path:
    data = {
        "width": SIZE, "height": SIZE, "fps": 12, "frames": 3, "mode": "3d", "seed": 5, "init_image": str(init),
        "coherence": {"color": "none"},
        "motion": {"translation_x": "0:(20)", "rotation_3d_y": "0:(3)"},
        "generation": {"steps": "0:(4)", "strength": "0:(0.5)", "noise": "0:(0)"},
        "backends": {"denoise": str(model), "device": "cpu"},
        "controlnet": units,
        **extra,
    }  # fmt: skip
    path = tmp_path / f"anim{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _frames(path: Path, overrides: dict | None = None) -> list[np.ndarray]:
    from animator import render_frames

    return [event.image.copy() for event in render_frames(path, overrides=overrides or {})]


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


class _CountingDepth:
    """The run's depth model, counting its calls (the render's own model, wrapped)."""

    def __init__(self, model, calls: list[int]):
        self._model, self._calls = model, calls

    def __call__(self, *args, **kwargs):
        self._calls[0] += 1
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _depth_calls_per_frame(monkeypatch, path: Path) -> tuple[list[int], list[int]]:
    """(depth-model calls between frames, ControlNet calls between frames) of a render of ``path``."""
    from animator import render_frames
    from animator.events import FrameRendered
    from animator.rendering import models as models_module

    depth_calls, controlnet_calls = [0], [0]
    load = models_module._load

    def load_and_count(config, *prompts):
        models = load(config, *prompts)
        for controlnet in models.controlnets:
            controlnet.unit.controlnet.register_forward_pre_hook(
                lambda *_: controlnet_calls.__setitem__(0, controlnet_calls[0] + 1)
            )
        return dataclasses.replace(models, depth=_CountingDepth(models.depth, depth_calls))

    monkeypatch.setattr(models_module, "_load", load_and_count)
    per_frame_depth, per_frame_controlnet = [], []

    def on_event(event):
        if isinstance(event, FrameRendered):
            per_frame_depth.append(depth_calls[0])
            per_frame_controlnet.append(controlnet_calls[0])
            depth_calls[0] = controlnet_calls[0] = 0

    for _ in render_frames(path, callbacks=[on_event]):
        pass
    return per_frame_depth, per_frame_controlnet


def test_weight_zero_renders_the_frames_of_no_controlnet(tmp_path, init, tiny_model, tiny_controlnet):
    plain = _frames(_keyframes(tmp_path, init, tiny_model, []))
    off = _frames(_keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "weight": "0:(0)"}]))
    on = _frames(_keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "weight": "0:(1)"}]))
    assert len(plain) == len(off) == len(on) == 3
    assert all(np.array_equal(a, b) for a, b in zip(plain, off))
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(plain, on))


def test_the_depth_source_is_the_loops_own_depth(monkeypatch, tmp_path, init, tiny_model, tiny_controlnet):
    """A depth unit adds no depth-model call to any frame but the first (which has no tracked depth yet), and its
    ControlNet runs on every step of every diffused frame."""
    plain = _keyframes(tmp_path, init, tiny_model, [])
    steered = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "depth"}])
    plain_depth, _ = _depth_calls_per_frame(monkeypatch, plain)
    steered_depth, controlnet = _depth_calls_per_frame(monkeypatch, steered)
    assert steered_depth[0] == plain_depth[0] + 1
    assert steered_depth[1:] == plain_depth[1:]
    # Frame k's event carries the making of frame k + 1 (queued before frame k is copied out): the first event
    # also the first frame's own img2img (2 steps of 4 at strength 0.5), the last nothing.
    assert controlnet == [4, 2, 0]


def test_schedules_switch_a_unit_per_frame(monkeypatch, tmp_path, init, tiny_model, tiny_controlnet):
    """weight 0 on frame 1 only, and a window that leaves frame 2 one of its two steps."""
    unit = {
        "model": str(tiny_controlnet),
        "source": "warped",
        "weight": {"keys": "0:(1), 1:(0), 2:(1)", "interpolation": "step"},
        "guidance_end": {"keys": "0:(1), 1:(1), 2:(0.5)", "interpolation": "step"},
    }
    _, controlnet = _depth_calls_per_frame(monkeypatch, _keyframes(tmp_path, init, tiny_model, [unit]))
    assert controlnet == [2, 1, 0]  # frame 0: 2 steps; frame 1: weight 0; frame 2: steps 0 of [0, 0.5]


def test_latent_feedback_repaint_and_cadence_take_control(tmp_path, init, tiny_model, tiny_controlnet):
    units = [{"model": str(tiny_controlnet), "source": "canny", "canny_low": 20, "canny_high": 60},
             {"model": str(tiny_controlnet), "source": "depth", "weight": "0:(0.5)", "mode": "control"}]  # fmt: skip
    extra = {"generation": {"steps": "0:(4)", "strength": "0:(0.5)", "noise": "0:(0)", "feedback": "latent",
                            "holes": "repaint"}, "cadence": 2, "frames": 5}  # fmt: skip
    plain = _frames(_keyframes(tmp_path, init, tiny_model, [], **extra))
    steered = _frames(_keyframes(tmp_path, init, tiny_model, units, **extra))
    assert len(plain) == len(steered) == 5
    assert np.abs(plain[2].astype(int) - steered[2]).mean() > 1


def test_run_record_names_each_units_model_and_source(tmp_path, init, tiny_model, tiny_controlnet):
    from animator.keyframes import load_config
    from animator.rendering.models import load_models

    path = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "canny"}])
    (record,) = load_models(load_config(path)).describe()["controlnet"]
    assert record["model"] == str(tiny_controlnet) and record["source_type"] == "folder"
    assert record["class"] == "ControlNetModel"
    assert record["source"] == "canny" and record["mode"] == "balanced"


def _error(path: Path) -> AnimatorError:
    with pytest.raises(AnimatorError) as caught:
        _frames(path)
    return caught.value


def test_errors_name_file_line_and_field_before_the_first_frame(
    monkeypatch, tmp_path, init, tiny_model, tiny_controlnet, tiny_sdxl_controlnet
):
    import sys

    mismatch = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet)},
                                                       {"model": str(tiny_sdxl_controlnet)}])  # fmt: skip
    error = _error(mismatch)
    assert error.field == "controlnet.1.model" and error.file == str(mismatch)
    assert error.line == _line_of(mismatch, str(tiny_sdxl_controlnet))
    assert "the model is" in error.message

    missing = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "video",
                                                       "path": str(tmp_path / "gone.mp4")}])  # fmt: skip
    error = _error(missing)
    assert error.field == "controlnet.0.path" and error.line == _line_of(missing, "gone.mp4")

    monkeypatch.setitem(sys.modules, "controlnet_aux", None)  # the extra not installed
    annotator = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "lineart",
                                                         "annotator": str(tmp_path)}])  # fmt: skip
    error = _error(annotator)
    assert error.field == "controlnet.0.source" and error.line == _line_of(annotator, "source: lineart")
    assert "controlnet-aux" in error.message

    flat = _keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "depth"}], mode="2d")
    error = _error(flat)
    assert error.field == "controlnet.0.source" and "2d render has none" in error.message

    with pytest.raises(AnimatorError) as caught:
        _frames(_keyframes(tmp_path, init, tiny_model, [{"model": str(tiny_controlnet), "source": "x-ray"}]))
    assert caught.value.field == "controlnet.0.source" and caught.value.line is not None


def test_show_control_shows_what_each_unit_saw(tmp_path, init, tiny_model, tiny_controlnet):
    """On the first frame a `warped` unit sees the init image itself, and a unit at weight 0 is shown as off."""
    from animator.images import load_image
    from animator.notebook import show_control

    units = [
        {"model": str(tiny_controlnet), "source": "warped"},
        {"model": str(tiny_controlnet), "source": "canny", "weight": "0:(0)"},
    ]
    figure = show_control(_keyframes(tmp_path, init, tiny_model, units), 0)
    warped, off = figure.axes
    expected = load_image(init, width=SIZE, height=SIZE) / 255.0
    np.testing.assert_allclose(warped.images[0].get_array(), expected, atol=1e-6)
    assert "controlnet.0: warped, weight 1" in warped.get_title()
    assert "off on this frame" in off.get_title() and not off.images
    with pytest.raises(AnimatorError, match="no controlnet: units"):
        show_control(_keyframes(tmp_path, init, tiny_model, []), 0)
