"""`output.interpolate`, `output.upscale` and `backends.lora_dirs` / `embedding_dirs`: defaults, accepted values,
and every refusal with file, line and field."""

import textwrap
from pathlib import Path

import pytest

from animator.errors import AnimatorError
from animator.keyframes import InterpolateConfig, UpscaleConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "anim.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load_error(path: Path) -> AnimatorError:
    with pytest.raises(AnimatorError) as info:
        load_config(path)
    return info.value


def test_defaults_are_off(tmp_path):
    config = load_config(write(tmp_path, "frames: 4\n"))
    assert config.output.interpolate is None and config.output.upscale is None
    assert config.backends.lora_dirs == () and config.backends.embedding_dirs == ()


def test_dirs_one_folder_or_a_list_relative_to_the_file(tmp_path):
    path = write(tmp_path, "frames: 4\nbackends:\n  lora_dirs: loras\n  embedding_dirs: [emb, /abs/emb]\n")
    backends = load_config(path).backends
    assert backends.lora_dirs == ((tmp_path / "loras").resolve(),)
    assert backends.embedding_dirs == ((tmp_path / "emb").resolve(), Path("/abs/emb"))


@pytest.mark.parametrize(
    "body, field, line, words",
    [
        ("  lora_dirs: 3\n", "backends.lora_dirs", 3, "file path"),
        ("  embedding_dirs: [a, 4]\n", "backends.embedding_dirs.1", 3, "file path"),
        ('  lora_dirs: ""\n', "backends.lora_dirs", 3, "path is required"),
    ],
)
def test_dirs_refusals(tmp_path, body, field, line, words):
    path = write(tmp_path, "frames: 4\nbackends:\n" + body)
    err = load_error(path)
    assert (err.file, err.field, err.line) == (str(path), field, line) and words in str(err)


def test_interpolate_factor_and_fps(tmp_path):
    config = load_config(write(tmp_path, "frames: 4\noutput:\n  interpolate: {factor: 3}\n"))
    assert config.output.interpolate == InterpolateConfig(factor=3, fps=None, method="flow", model=None, slowmo=False)
    path = write(
        tmp_path,
        "frames: 4\nfps: 12\nmode: 3d\noutput:\n  interpolate:\n    fps: 60\n    method: camera\n    slowmo: true\n",
    )
    interpolate = load_config(path).output.interpolate
    assert (interpolate.factor, interpolate.fps, interpolate.method, interpolate.slowmo) == (None, 60.0, "camera", True)
    rife = load_config(write(tmp_path, "frames: 4\noutput:\n  interpolate: {factor: 2, method: rife, model: r.pkl}\n"))
    assert rife.output.interpolate.model == (tmp_path / "r.pkl").resolve()


@pytest.mark.parametrize(
    "body, field, line, words",
    [
        ("  interpolate: {}\n", "output.interpolate", 3, "exactly one of"),
        ("  interpolate: {factor: 2, fps: 48}\n", "output.interpolate", 3, "exactly one of"),
        ("  interpolate: {factor: 1}\n", "output.interpolate.factor", 3, "outside"),
        ("  interpolate: {factor: 2.5}\n", "output.interpolate.factor", 3, "whole number"),
        ("  interpolate: {fps: 24}\n", "output.interpolate.fps", 3, "not above the render's 24 fps"),
        ("  interpolate: {factor: 2, method: optical}\n", "output.interpolate.method", 3, "unknown value"),
        ("  interpolate: {factor: 2, model: r.pkl}\n", "output.interpolate.model", 3, "only by method rife"),
        ("  interpolate:\n    factor: 2\n    slomo: true\n", "output.interpolate.slomo", 5, "did you mean"),
        ("  interpolate: 2\n", "output.interpolate", 3, "mapping"),
    ],
)
def test_interpolate_refusals(tmp_path, body, field, line, words):
    path = write(tmp_path, "frames: 4\noutput:\n" + body)
    err = load_error(path)
    assert (err.file, err.field, err.line) == (str(path), field, line) and words in str(err)


def test_interpolate_camera_only_in_3d(tmp_path):
    path = write(tmp_path, "frames: 4\nmode: 2d\noutput:\n  interpolate:\n    factor: 2\n    method: camera\n")
    err = load_error(path)
    assert (err.field, err.line) == ("output.interpolate.method", 6) and "2d render" in str(err)


def test_upscale_values_and_the_default_method(tmp_path):
    lanczos = load_config(write(tmp_path, "frames: 4\noutput:\n  upscale: {scale: 2}\n")).output.upscale
    assert lanczos == UpscaleConfig(scale=2.0, width=None, height=None, method="lanczos", model=None, strength=0.25,
                                    tile=512)  # fmt: skip
    model = load_config(write(tmp_path, "frames: 4\noutput:\n  upscale: {scale: 4, model: x4.safetensors}\n"))
    assert model.output.upscale.method == "model"  # the default follows from `model`
    assert model.output.upscale.model == (tmp_path / "x4.safetensors").resolve()
    sized = load_config(
        write(tmp_path, "frames: 4\noutput:\n  upscale: {width: 1024, method: diffusion, strength: 0.4, tile: 0}\n")
    ).output.upscale
    assert (sized.width, sized.height, sized.method, sized.strength, sized.tile) == (1024, None, "diffusion", 0.4, 0)


@pytest.mark.parametrize(
    "body, field, line, words",
    [
        ("  upscale: {}\n", "output.upscale", 3, "give `scale`"),
        ("  upscale: {scale: 2, width: 1024}\n", "output.upscale", 3, "not both"),
        ("  upscale: {scale: 1}\n", "output.upscale.scale", 3, "does not upscale"),
        ("  upscale: {scale: 9}\n", "output.upscale.scale", 3, "outside"),
        ("  upscale: {width: 512}\n", "output.upscale.width", 3, "not above the render's 512"),
        ("  upscale: {height: 1025}\n", "output.upscale.height", 3, "multiple of 2"),
        ("  upscale: {scale: 2, method: model}\n", "output.upscale.method", 3, "needs `model:`"),
        ("  upscale: {scale: 2, method: lanczos, model: a.pth}\n", "output.upscale.model", 3, "only by method model"),
        ("  upscale: {scale: 2, model: a.onnx}\n", "output.upscale.model", 3, "unknown weights file type"),
        ("  upscale: {scale: 2, method: bicubic}\n", "output.upscale.method", 3, "unknown value"),
        ("  upscale: {scale: 2, strength: 1.5}\n", "output.upscale.strength", 3, "outside"),
        ("  upscale: {scale: 2, tile: -1}\n", "output.upscale.tile", 3, "outside"),
        ("  fps: 60\n", "output.fps", 3, "unknown key"),
    ],
)
def test_upscale_refusals(tmp_path, body, field, line, words):
    path = write(tmp_path, "frames: 4\noutput:\n" + body)
    err = load_error(path)
    assert (err.file, err.field, err.line) == (str(path), field, line) and words in str(err)
