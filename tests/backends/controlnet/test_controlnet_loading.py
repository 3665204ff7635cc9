"""Loading ControlNets the ways users have them, and refusing the ones that cannot work, before any frame."""

from __future__ import annotations

import pytest
import torch

from animator.backends.controlnet import ControlSettings, architecture_of, check_fits, load_controlnet, load_unit
from animator.errors import AnimatorError
from animator.testing.tiny_controlnet import save_controlnet_single_file

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


def test_a_single_original_layout_file_loads_with_its_config_folder(tiny_controlnet, tmp_path, sd_denoiser):
    """What Automatic1111 users download: one file, keys under control_model.; the folder gives the config."""
    path = save_controlnet_single_file(tiny_controlnet, tmp_path / "control_tiny_depth.safetensors")
    from_file, info = load_controlnet(path, config=tiny_controlnet, device=CPU, dtype=torch.float32)
    from_folder, _ = load_controlnet(tiny_controlnet, device=CPU, dtype=torch.float32)
    assert info["source_type"] == "file" and info["class"] == "ControlNetModel"
    file_state, folder_state = from_file.state_dict(), from_folder.state_dict()
    assert file_state.keys() == folder_state.keys()
    assert all(torch.equal(file_state[key], folder_state[key]) for key in file_state)
    unit = load_unit(0, path, ControlSettings(), sd_denoiser, config=tiny_controlnet)
    assert unit.describe()["source_type"] == "file"


def test_a_single_file_without_its_config_is_refused(tiny_controlnet, tmp_path):
    path = save_controlnet_single_file(tiny_controlnet, tmp_path / "cn.safetensors")
    with pytest.raises(AnimatorError, match="needs `config:`") as caught:
        load_controlnet(path, device=CPU, dtype=torch.float32, field="controlnet.2.model")
    assert caught.value.field == "controlnet.2.config"


def test_an_sd_controlnet_is_refused_for_an_sdxl_model(tiny_controlnet, sdxl_denoiser):
    with pytest.raises(AnimatorError, match="ControlNet .* the model is an SDXL") as caught:
        load_unit(3, str(tiny_controlnet), ControlSettings(), sdxl_denoiser)
    assert caught.value.field == "controlnet.3.model"
    assert "base model it was trained for" in caught.value.hint


def test_architecture_names_of_real_configs():
    sd15 = {"cross_attention_dim": 768, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2}
    sd21 = {**sd15, "cross_attention_dim": 1024}
    sdxl = {"cross_attention_dim": 2048, "addition_embed_type": "text_time", "block_out_channels": [320, 640, 1280],
            "layers_per_block": 2}  # fmt: skip
    assert [architecture_of(c) for c in (sd15, sd21, sdxl)] == ["sd1", "sd2", "sdxl"]
    check_fits(sd15, sd15, label="x", field="f")
    with pytest.raises(AnimatorError, match="is an SD 1.x ControlNet; the model is an SDXL"):
        check_fits(sd15, sdxl, label="control_v11f1p_sd15_depth", field="f")
    with pytest.raises(AnimatorError, match="is an SD 2.x ControlNet; the model is an SD 1.x"):
        check_fits(sd21, sd15, label="x", field="f")
    with pytest.raises(AnimatorError, match="layers_per_block 1 vs 2"):  # same family, other residuals
        check_fits({**sd15, "layers_per_block": 1}, sd15, label="x", field="f")


def test_union_models_need_a_control_type_and_others_refuse_one(
    tiny_union_controlnet, tiny_sdxl_controlnet, sdxl_denoiser
):
    with pytest.raises(AnimatorError, match="ControlNet-Union model: it needs the unit's control_type") as caught:
        load_unit(0, str(tiny_union_controlnet), ControlSettings(), sdxl_denoiser)
    assert caught.value.field == "controlnet.0.control_type"
    with pytest.raises(AnimatorError, match="needs a ControlNet-Union with at least 8 control types; this one has 6"):
        load_unit(0, str(tiny_union_controlnet), ControlSettings(control_type="inpaint"), sdxl_denoiser)
    with pytest.raises(AnimatorError, match="control_type is for ControlNet-Union models"):
        load_unit(1, str(tiny_sdxl_controlnet), ControlSettings(control_type="depth"), sdxl_denoiser)


def test_what_is_not_a_controlnet_is_refused(tmp_path, tiny_model, sd_denoiser):
    with pytest.raises(AnimatorError, match="not found: no such file or folder, and not a hub id"):
        load_controlnet(tmp_path / "missing", device=CPU, dtype=torch.float32)
    with pytest.raises(AnimatorError, match="holds a UNet2DConditionModel, not a ControlNet"):
        load_controlnet(tiny_model / "unet", device=CPU, dtype=torch.float32)
    with pytest.raises(AnimatorError, match="not a diffusers ControlNet"):
        load_controlnet(tmp_path, device=CPU, dtype=torch.float32)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(AnimatorError, match="not a ControlNet file"):
        load_controlnet(tmp_path / "notes.txt", device=CPU, dtype=torch.float32)
    with pytest.raises(AnimatorError, match="could not load ControlNet 'nobody/no-such-controlnet'") as caught:
        load_controlnet("nobody/no-such-controlnet", device=CPU, dtype=torch.float32)  # HF_HUB_OFFLINE=1
    assert "hf download nobody/no-such-controlnet" in caught.value.hint


def test_units_need_a_diffusion_model(tiny_controlnet):
    from animator.backends.denoise import load_denoiser

    with pytest.raises(AnimatorError, match="need a diffusion model"):
        load_unit(0, str(tiny_controlnet), ControlSettings(), load_denoiser("none"))
