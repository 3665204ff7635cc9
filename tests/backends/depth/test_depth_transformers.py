"""Tiny DPT, Depth Anything and original-layout MiDaS checkpoints loaded through the user's path.

The models are real transformers classes built from configs with random weights (no downloads here); see
animator/testing/tiny_depth.py.
"""

import pytest
import torch
import torch.nn.functional as F

from animator.backends.depth import DepthEstimator, load_depth_estimator
from animator.errors import AnimatorError
from animator.testing.tiny_depth import (
    make_tiny_depth_anything,
    make_tiny_dpt,
    make_tiny_midas_checkpoint,
    midas_state_dict_from_dpt,
)


@pytest.fixture(scope="module")
def dpt_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-dpt")
    return folder, make_tiny_dpt(folder)


@pytest.fixture(scope="module")
def depth_anything_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-depth-anything")
    return folder, make_tiny_depth_anything(folder)


@pytest.fixture(scope="module")
def midas_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("midas") / "dpt_large-midas-tiny.pt"
    return path, make_tiny_midas_checkpoint(path)


def _image(batch, height, width, seed=0):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_dpt_folder_square_input_matches_the_model(dpt_folder):
    folder, model = dpt_folder
    estimator = load_depth_estimator(str(folder))
    assert isinstance(estimator, DepthEstimator)
    image = _image(2, 64, 64)
    disparity = estimator(image)
    with torch.no_grad():
        expected = model(pixel_values=(image - 0.5) / 0.5).predicted_depth.unsqueeze(1)  # MiDaS: mean=std=0.5
    assert disparity.shape == (2, 1, 64, 64) and disparity.dtype == torch.float32
    torch.testing.assert_close(disparity, expected, rtol=1e-4, atol=1e-4)
    assert float(disparity.std()) > 0.1, "a tiny model whose output does not vary proves nothing"


@pytest.mark.parametrize("height, width", [(48, 80), (90, 40), (33, 33)])
def test_dpt_any_aspect_ratio_maps_back_to_the_input_size(dpt_folder, height, width):
    folder, model = dpt_folder
    estimator = load_depth_estimator(str(folder))
    image = _image(1, height, width, seed=height)
    disparity = estimator(image)
    assert disparity.shape == (1, 1, height, width) and torch.isfinite(disparity).all()
    # plain ViT DPT runs at 64x64: the prediction is the model's on the squashed frame, stretched back
    squashed = F.interpolate(image, size=(64, 64), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        square = model(pixel_values=(squashed - 0.5) / 0.5).predicted_depth.unsqueeze(1)
    expected = F.interpolate(square, size=(height, width), mode="bilinear", align_corners=False)
    torch.testing.assert_close(disparity, expected, rtol=1e-4, atol=1e-4)


def test_batching_does_not_mix_frames(dpt_folder):
    folder, _ = dpt_folder
    estimator = load_depth_estimator(str(folder), batch_size=2)
    frames = _image(3, 40, 56)
    together = estimator(frames)
    alone = torch.cat([estimator(frame[None]) for frame in frames])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_depth_anything_folder_non_square(depth_anything_folder):
    folder, model = depth_anything_folder
    estimator = load_depth_estimator(str(folder))
    # its preprocessor_config.json asks for a 56-pixel short side in multiples of 14
    assert estimator.preprocess.target_size(40, 90) == (56, 126)
    image = _image(2, 40, 90)
    disparity = estimator(image)
    assert disparity.shape == (2, 1, 40, 90) and torch.isfinite(disparity).all()
    resized = F.interpolate(image, size=(56, 126), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        raw = model(pixel_values=(resized - mean) / std).predicted_depth.unsqueeze(1)
    expected = F.interpolate(raw, size=(40, 90), mode="bilinear", align_corners=False)
    torch.testing.assert_close(disparity, expected, rtol=1e-4, atol=1e-4)
    assert float(disparity.std()) > 0.05


def test_depth_anything_resolution_override_and_defaults_without_preprocessor(tmp_path):
    make_tiny_depth_anything(tmp_path, preprocessor=False)
    default = load_depth_estimator(str(tmp_path))
    assert default.preprocess.target_size(100, 200) == (518, 1036)  # Depth Anything's own 518, multiple of 14
    smaller = load_depth_estimator(str(tmp_path), resolution=30)
    assert smaller.preprocess.target_size(100, 200) == (28, 56)
    assert smaller(_image(1, 100, 200)).shape == (1, 1, 100, 200)


def test_plain_vit_dpt_runs_at_a_reduced_resolution_in_whole_patches(dpt_folder):
    folder, _ = dpt_folder
    seen = []
    estimator = load_depth_estimator(str(folder), resolution=44)  # not a multiple of the 16-pixel patch
    estimator.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["pixel_values"].shape), with_kwargs=True
    )
    out = estimator(_image(1, 100, 150))
    assert seen == [(1, 3, 48, 48)]  # square, rounded to whole patches (position embedding resized)
    assert out.shape == (1, 1, 100, 150) and torch.isfinite(out).all()
    with pytest.raises(AnimatorError, match="at least 16 pixels"):
        load_depth_estimator(str(folder), resolution=15)


def test_midas_file_has_the_original_layout(midas_file):
    path, _ = midas_file
    keys = set(torch.load(path, weights_only=True))
    # names as in isl-org/MiDaS's DPT (timm ViT under pretrained.model, RefineNet decoder under scratch)
    for key in (
        "pretrained.model.cls_token",
        "pretrained.model.pos_embed",
        "pretrained.model.patch_embed.proj.weight",
        "pretrained.model.blocks.0.attn.qkv.weight",
        "pretrained.model.blocks.3.mlp.fc2.bias",
        "pretrained.act_postprocess1.0.project.0.weight",
        "pretrained.act_postprocess1.3.weight",
        "pretrained.act_postprocess1.4.weight",
        "pretrained.act_postprocess4.4.weight",
        "scratch.layer1_rn.weight",
        "scratch.refinenet4.resConfUnit1.conv1.weight",
        "scratch.refinenet1.out_conv.weight",
        "scratch.output_conv.4.weight",
        "pretrained.model.head.weight",
    ):
        assert key in keys, key
    assert not any(key.startswith(("dpt.", "neck.", "head.")) for key in keys)


@pytest.mark.parametrize("height, width", [(64, 64), (45, 70)])
def test_midas_file_gives_the_output_of_the_model_it_maps_to(midas_file, height, width):
    path, model = midas_file
    estimator = load_depth_estimator(str(path))
    image = _image(2, height, width, seed=7)
    squashed = F.interpolate(image, size=(64, 64), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        square = model(pixel_values=(squashed - 0.5) / 0.5).predicted_depth.unsqueeze(1)
    expected = F.interpolate(square, size=(height, width), mode="bilinear", align_corners=False)
    disparity = estimator(image)
    torch.testing.assert_close(disparity, expected, rtol=1e-4, atol=1e-4)
    assert float(disparity.std()) > 0.1
    assert estimator.describe()["source"] == str(path.resolve())


def test_midas_file_wrapped_in_a_training_checkpoint(tmp_path, midas_file):
    _, model = midas_file
    path = tmp_path / "wrapped.pt"
    torch.save({"model": midas_state_dict_from_dpt(model), "optimizer": {"lr": torch.tensor(1e-4)}}, path)
    image = _image(1, 64, 64)
    torch.testing.assert_close(load_depth_estimator(str(path))(image), load_depth_estimator(str(midas_file[0]))(image))


def test_unknown_name_missing_paths_and_uncached_hub_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))  # a cache that certainly lacks the model
    with pytest.raises(AnimatorError, match="unknown depth model") as info:
        load_depth_estimator("midas-gigantic")
    assert "depth-anything" in info.value.hint
    with pytest.raises(AnimatorError, match="no such file"):
        load_depth_estimator(str(tmp_path / "missing.pt"))
    with pytest.raises(AnimatorError, match="not in the local Hugging Face cache") as info:
        load_depth_estimator("depth-anything/Depth-Anything-V2-Small-hf")
    assert "hf download depth-anything/Depth-Anything-V2-Small-hf" in info.value.hint
    with pytest.raises(AnimatorError, match="not in the local Hugging Face cache"):
        load_depth_estimator("dpt-large")  # a short name resolves to Intel/dpt-large
    with pytest.raises(AnimatorError, match="timm"):
        load_depth_estimator("midas_v21_small")


def test_corrupt_weights_and_folders_are_clear_errors(tmp_path, dpt_folder, midas_file):
    garbage = tmp_path / "dpt_large_384.pt"
    garbage.write_bytes(b"\x80\x02not really a pickle" * 20)
    with pytest.raises(AnimatorError, match="cannot read the weight file") as info:
        load_depth_estimator(str(garbage))
    assert info.value.file == str(garbage)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(midas_file[0].read_bytes()[:5000])
    with pytest.raises(AnimatorError, match="cannot read the weight file"):
        load_depth_estimator(str(truncated))

    state = torch.load(midas_file[0], weights_only=True)
    del state["scratch.refinenet2.out_conv.weight"]
    incomplete = tmp_path / "incomplete.pt"
    torch.save(state, incomplete)
    with pytest.raises(AnimatorError, match="missing"):
        load_depth_estimator(str(incomplete))

    hybrid = dict(state)
    hybrid["pretrained.model.patch_embed.backbone.stem.conv.weight"] = torch.zeros(64, 3, 7, 7)
    hybrid_path = tmp_path / "dpt_hybrid_384.pt"
    torch.save(hybrid, hybrid_path)
    with pytest.raises(AnimatorError, match="Hybrid") as info:
        load_depth_estimator(str(hybrid_path))
    assert "Intel/dpt-hybrid-midas" in info.value.hint

    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    with pytest.raises(AnimatorError, match="config.json"):
        load_depth_estimator(str(empty_folder))

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    folder, _ = dpt_folder
    (damaged / "config.json").write_text((folder / "config.json").read_text())
    (damaged / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:4000])
    with pytest.raises(AnimatorError, match="cannot load the weights"):
        load_depth_estimator(str(damaged))


def test_unsupported_model_type_in_a_folder(tmp_path):
    from transformers import GLPNConfig

    GLPNConfig().save_pretrained(tmp_path)
    with pytest.raises(AnimatorError, match="'glpn' is not a supported depth model"):
        load_depth_estimator(str(tmp_path))


def test_float32_on_cpu_even_when_half_is_asked(dpt_folder):
    folder, _ = dpt_folder
    estimator = load_depth_estimator(str(folder), device="cpu", dtype="float16")
    assert estimator.dtype == torch.float32
    assert estimator(_image(1, 32, 32)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_half_precision_channels_last(dpt_folder, depth_anything_folder):
    for folder, _ in (dpt_folder, depth_anything_folder):
        estimator = load_depth_estimator(str(folder), device="cuda")
        assert estimator.dtype == torch.float16
        image = _image(2, 48, 80).cuda()
        disparity = estimator(image)
        assert disparity.device.type == "cuda" and disparity.dtype == torch.float32
        reference = load_depth_estimator(str(folder), device="cpu")(image.cpu())
        torch.testing.assert_close(disparity.cpu(), reference, rtol=2e-2, atol=2e-2)
