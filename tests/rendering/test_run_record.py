"""What a render records about itself and what that lets a resume refuse: the resolved settings' digest (an edited
run folder is not resumed), and the per-frame LoRA weights beside the schedules."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from animator.errors import AnimatorError

pytestmark = pytest.mark.usefixtures("one_thread")


def _write(folder: Path, init_image: Path, **fields) -> Path:
    data = {"width": 64, "height": 64, "fps": 12, "frames": 10, "mode": "3d", "seed": 3, "init_image": str(init_image),
            "output": {"preset": "ultrafast"}, "motion": {"translation_z": "0:(3)"}, **fields}  # fmt: skip
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _interrupted(tmp_path: Path, path: Path) -> Path:
    import animator

    seen = []

    def stop_after_three(event) -> None:
        if type(event).__name__ == "FrameRendered":
            seen.append(event.index)
            if len(seen) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        animator.render(path, tmp_path / "out.mp4", run_dir=tmp_path / "run", callbacks=[stop_after_three])
    return tmp_path / "run"


def test_a_resume_of_an_edited_run_folder_is_refused_naming_the_change(tmp_path, init_image):
    import animator

    run = _interrupted(tmp_path, _write(tmp_path, init_image))
    copy = run / "keyframes.yaml"
    edited = yaml.safe_load(copy.read_text())
    edited["motion"]["translation_z"] = "0:(5)"
    copy.write_text(yaml.safe_dump(edited))
    with pytest.raises(AnimatorError) as refused:
        animator.render(resume=run)
    message = str(refused.value)
    assert "motion.translation_z: 0:(3.0) -> 0:(5.0)" in message, message
    assert "--frames 3:" in message  # how to go on with the edited file from where the run stopped
    assert not (tmp_path / "out.mp4").exists()


def test_a_reformatted_run_folder_copy_still_resumes(tmp_path, init_image):
    """Comments and key order are not settings: the resolved configuration is what is compared."""
    import animator

    run = _interrupted(tmp_path, _write(tmp_path, init_image))
    copy = run / "keyframes.yaml"
    copy.write_text("# notes added while the run was stopped\n" + yaml.safe_dump(yaml.safe_load(copy.read_text()),
                                                                                 sort_keys=False))  # fmt: skip
    from animator.video import probe

    result = animator.render(resume=run, metrics=False)
    assert probe(result.output).frames == 10


def test_a_resume_can_write_its_video_elsewhere(tmp_path, init_image):
    import animator
    from animator.video import probe

    run = _interrupted(tmp_path, _write(tmp_path, init_image))
    result = animator.render(resume=run, output=tmp_path / "elsewhere.mp4", metrics=False)
    assert result.output == tmp_path / "elsewhere.mp4" and probe(result.output).frames == 10
    assert not (tmp_path / "out.mp4").exists()


def test_schedules_csv_holds_each_prompt_loras_weight_per_frame(tmp_path, init_image, tiny_model):
    import animator
    from animator.testing.tiny_networks import make_tiny_lora

    make_tiny_lora(tiny_model, tmp_path / "loras" / "glow.safetensors")
    backends = {"denoise": str(tiny_model), "device": "cpu", "lora_dirs": str(tmp_path / "loras")}
    path = _write(tmp_path, init_image, frames=4, prompts={"0": "a hill <lora:glow:`0.25*t`>"},
                  generation={"steps": "0:(2)", "strength": "0:(0.6)"}, backends=backends)  # fmt: skip
    result = animator.render(path, tmp_path / "out.mp4", run_dir=tmp_path / "run", metrics=False)
    with open(result.run_dir / "schedules.csv") as table:
        rows = list(csv.DictReader(table))
    assert [float(row["lora.glow"]) for row in rows] == [0.0, 0.25, 0.5, 0.75]


def test_a_lora_the_prompts_name_without_a_file_is_refused_before_any_model_loads(tmp_path, init_image, monkeypatch):
    import animator
    from animator.rendering import api

    monkeypatch.setattr(api, "load_models", lambda *_: pytest.fail("models loaded before the check"))
    path = _write(tmp_path, init_image, prompts={"0": "a hill <lora:missing:0.8>"},
                  backends={"lora_dirs": str(tmp_path)})  # fmt: skip
    with pytest.raises(AnimatorError) as refused:
        animator.render(path, tmp_path / "out.mp4", run_dir=tmp_path / "run")
    assert refused.value.field == "backends.lora_dirs" and not (tmp_path / "run").exists()


def test_kept_models_serve_the_next_render_that_asks_for_the_same_ones(tmp_path, init_image):
    """A batch worker keeps its models between jobs; a render that asks for others loads its own, and switching the
    keeping off forgets them."""
    from animator.keyframes import load_config
    from animator.rendering.models import keep_loaded_models, load_models

    first = load_config(_write(tmp_path, init_image))
    other = load_config(_write(tmp_path, init_image, backends={"flow": "dis_fast"}, motion={"cadence_flow": True}))
    try:
        keep_loaded_models(True)
        kept = load_models(first)
        assert load_models(first) is kept
        assert load_models(other) is not kept and load_models(other).flow is not None
        keep_loaded_models(False)
        assert load_models(first) is not load_models(first)
    finally:
        keep_loaded_models(False)
