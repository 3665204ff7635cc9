"""Renders with ``generation.feedback: latent``: the VAE encodes once, a resume continues from the saved latents,
and settings that need pixels are refused with the field named. (The geometry of moving latents is checked on
constructed scenes in test_latents.py.)"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from animator.errors import AnimatorError

SIZE = 64


def keyframes(folder: Path, init_image: Path, **fields) -> Path:
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 5,
        "mode": "3d",
        "seed": 5,
        "init_image": str(init_image),
        "output": {"preset": "ultrafast"},
        "coherence": {"color": "lab"},
        "motion": {"translation_x": "0:(6)", "rotation_3d_y": "0:(1)", "zoom": "0:(1.03)"},
        "generation": {"steps": "0:(6)", "strength": "0:(0.5)", "noise": "0:(0.05)", "feedback": "latent"},
    }
    for key, value in fields.items():
        data[key] = data[key] | value if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mode", ["3d", "2d"])
def test_latent_feedback_encodes_only_the_first_frame(tmp_path, init_image, tiny_model, mode, monkeypatch):
    """Image feedback encodes every diffused frame; latent feedback encodes the init image once and only decodes."""
    render_module = importlib.import_module("animator.rendering.api")
    calls = {"encoder": 0, "decoder": 0}
    load = render_module.load_models

    def load_and_count(config, *prompts):
        models = load(config, *prompts)
        vae = models.denoiser.pipe.vae
        for part in calls:
            getattr(vae, part).register_forward_pre_hook(lambda *_, part=part: calls.__setitem__(part, calls[part] + 1))
        return models

    monkeypatch.setattr(render_module, "load_models", load_and_count)
    path = keyframes(tmp_path, init_image, mode=mode)
    counted = {}
    for feedback in ("image", "latent"):
        calls.update(encoder=0, decoder=0)
        frames = [
            event.image
            for event in render_module.render_frames(
                path,
                overrides={
                    "backends.denoise": str(tiny_model),
                    "backends.device": "cpu",
                    "generation.feedback": feedback,
                },
            )
        ]
        assert len(frames) == 5 and all(frame.shape == (SIZE, SIZE, 3) for frame in frames)
        counted[feedback] = dict(calls)
    assert counted["image"] == {"encoder": 5, "decoder": 5}
    assert counted["latent"] == {"encoder": 1, "decoder": 5}


def test_a_resumed_latent_render_continues_from_the_saved_latents(tmp_path, init_image, tiny_model):
    """Interrupted after frame 3 and resumed: the frames equal an uninterrupted run's, which needs the checkpoint's
    latents and the first frame's latent colour statistics (the journal holds only pixels)."""
    from animator.events import FrameRendered
    from animator.rendering import render

    path = keyframes(tmp_path, init_image, frames=6, coherence={"color": "lab", "reference": "first"})
    overrides = {"backends.denoise": str(tiny_model), "backends.device": "cpu"}

    def stop_after_frame_3(event):
        if isinstance(event, FrameRendered) and event.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(
            path,
            tmp_path / "a.mp4",
            overrides=overrides,
            run_dir=tmp_path / "a",
            metrics=False,
            frames_dir=tmp_path / "a-frames",
            callbacks=[stop_after_frame_3],
        )
    render(path, resume=tmp_path / "a", metrics=False)
    render(
        path,
        tmp_path / "b.mp4",
        overrides=overrides,
        run_dir=tmp_path / "b",
        metrics=False,
        frames_dir=tmp_path / "b-frames",
    )
    resumed, uninterrupted = (
        sorted((tmp_path / "a-frames").glob("*.png")),
        sorted((tmp_path / "b-frames").glob("*.png")),
    )
    assert len(resumed) == len(uninterrupted) == 6
    for a, b in zip(resumed, uninterrupted):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a.name


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"mode": "video", "video_input": {"path": "clip.mp4"}}, "generation.feedback", "2d and 3d modes"),
        (
            {"generation": {"contrast": "0:(1), 3:(1.02)"}},
            "generation.contrast",
            "contrast is 1.00667 at frame 1",
        ),  # interpolated
        ({"generation": {"sharpen_amount": "0:(0.2)"}}, "generation.sharpen_amount", "works on pixels"),
    ],
)
def test_settings_that_need_pixels_are_refused(tmp_path, init_image, fields, field, message):
    from animator.rendering import prepare

    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(AnimatorError, match=message) as caught:
        prepare(keyframes(tmp_path, init_image, **fields))
    assert caught.value.field == field


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_latent_feedback_renders_on_cuda_in_half_precision(tmp_path, init_image, tiny_model):
    """fp16 latents on the GPU: moved in float32, denoised and decoded in the model's dtype, finite 8-bit frames."""
    from animator.rendering import render_frames

    path = keyframes(tmp_path, init_image)
    frames = [
        event.image
        for event in render_frames(path, overrides={"backends.denoise": str(tiny_model), "backends.device": "cuda"})
    ]
    assert len(frames) == 5 and all(frame.shape == (SIZE, SIZE, 3) for frame in frames)
    assert len({frame.tobytes() for frame in frames}) == 5  # every frame is a new picture


def test_the_command_line_switches_to_latent_feedback(tmp_path, init_image, tiny_model):
    import json

    from click.testing import CliRunner

    from animator.cli import main

    path = keyframes(tmp_path, init_image, frames=3, generation={"feedback": "image"})
    result = CliRunner().invoke(
        main,
        [
            "render",
            str(path),
            "-o",
            str(tmp_path / "out.mp4"),
            "--model",
            str(tiny_model),
            "--device",
            "cpu",
            "--feedback",
            "latent",
            "--run-dir",
            str(tmp_path / "run"),
            "-q",
            "--no-metrics",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["overrides"]["generation.feedback"] == "latent" and record["status"] == "complete"
    assert record["backends"]["feedback"] == "latent"  # what the loop ran with, not only what was asked
