"""load_denoiser: the user-facing paths (none, folder, hub id, single file) and the errors a user can cause."""

import pytest
import torch

from animator.backends.denoise import IdentityDenoiser, load_denoiser
from animator.errors import AnimatorError


def test_none_is_identity(photo, seeded):
    for spec in ("none", None, "None", ""):
        assert isinstance(load_denoiser(spec), IdentityDenoiser)
    denoiser = load_denoiser("none")
    mask = torch.ones_like(photo[:, :1])
    out = denoiser.img2img(
        photo, "x", strength=0.7, guidance=7.0, steps=20, generator=seeded(0), full_denoise_mask=mask
    )
    assert torch.equal(out, photo)
    assert denoiser.describe()["source"] == "none"


def test_none_txt2img_says_a_model_is_needed(seeded):
    with pytest.raises(AnimatorError, match="needs a Stable Diffusion model") as info:
        load_denoiser("none").txt2img("x", height=64, width=64, guidance=7.0, steps=4, generator=seeded(0))
    assert "hf download" in str(info.value)


def test_none_still_checks_its_arguments(photo, seeded):
    with pytest.raises(AnimatorError, match="strength"):
        load_denoiser("none").img2img(photo, "x", strength=1.5, guidance=7.0, steps=4, generator=seeded(0))


@pytest.mark.parametrize(
    "spec, words",
    [
        ("not a model", "not found"),
        ("./models/missing.safetensors", "not found"),
        ("/nonexistent/folder", "not found"),
    ],
)
def test_unknown_model_specs(spec, words):
    with pytest.raises(AnimatorError, match=words):
        load_denoiser(spec, device="cpu")


def test_missing_hub_model_offline_says_what_to_download():
    with pytest.raises(AnimatorError) as info:
        load_denoiser("nobody-here/no-such-model-xyz", device="cpu")
    message = str(info.value)
    assert "nobody-here/no-such-model-xyz" in message and "download" in message


def test_folder_without_model_index(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(AnimatorError, match="model_index.json"):
        load_denoiser(str(tmp_path), device="cpu")


def test_folder_of_another_pipeline_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    with pytest.raises(AnimatorError, match="FluxPipeline"):
        load_denoiser(str(tmp_path), device="cpu")


def test_text_file_renamed_safetensors_is_refused(tmp_path, tiny_sd_folder):
    fake = tmp_path / "model.safetensors"
    fake.write_text("this is not a model\n" * 10)
    with pytest.raises(AnimatorError, match="not a readable .safetensors"):
        load_denoiser(str(fake), device="cpu", model_config=str(tiny_sd_folder))


def test_text_file_renamed_ckpt_is_refused(tmp_path):
    fake = tmp_path / "model.ckpt"
    fake.write_text("hello")
    with pytest.raises(AnimatorError, match="not a readable checkpoint"):
        load_denoiser(str(fake), device="cpu")


def test_safetensors_that_is_not_a_sd_checkpoint_is_refused(tmp_path, tiny_sd_folder):
    # A real safetensors file holding diffusers-layout UNet weights (what a user gets by grabbing the wrong file).
    from safetensors.torch import save_file

    wrong = tmp_path / "unet_only.safetensors"
    save_file({"conv_in.weight": torch.zeros(4, 4, 3, 3)}, str(wrong))
    with pytest.raises(AnimatorError, match="not a Stable Diffusion checkpoint"):
        load_denoiser(str(wrong), device="cpu", model_config=str(tiny_sd_folder))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_sd_folder):
    """The tiny pipeline saved as ONE original-layout .safetensors, as A1111 / Deforum users have them."""
    from animator.testing.tiny_sd import save_single_file

    return save_single_file(tiny_sd_folder, tmp_path_factory.mktemp("checkpoint") / "tiny-sd.safetensors")


def test_single_file_round_trip(tiny_checkpoint, tiny_sd_folder, tiny_sd, photo, seeded):
    # Loaded offline through from_single_file with the folder as model_config: same weights, so the same frame.
    checkpoint = tiny_checkpoint
    denoiser = load_denoiser(str(checkpoint), device="cpu", model_config=str(tiny_sd_folder))
    info = denoiser.describe()
    assert info["source_type"] == "file" and info["architecture"] == "sd1"
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(tiny_sd.pipe, name).state_dict(), getattr(denoiser.pipe, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), name
    frame = dict(strength=0.5, guidance=7.0, steps=4, generator=seeded(5))
    expected = tiny_sd.img2img(photo, "a fox", **{**frame, "generator": seeded(5)})
    got = denoiser.img2img(photo, "a fox", **frame)
    assert denoiser.pipe.vae.config.scaling_factor == tiny_sd.pipe.vae.config.scaling_factor  # from model_config
    torch.testing.assert_close(got, expected)


def test_single_file_needs_a_valid_model_config(tiny_checkpoint, tmp_path):
    with pytest.raises(AnimatorError, match="model_config"):
        load_denoiser(str(tiny_checkpoint), device="cpu", model_config=str(tmp_path))


def test_unknown_sampler_or_kind_fails_before_loading(tiny_sd_folder):
    with pytest.raises(AnimatorError, match="unknown sampler") as info:
        load_denoiser(str(tiny_sd_folder), device="cpu", sampler="eulr")
    assert "euler_a" in str(info.value)
    with pytest.raises(AnimatorError, match="unknown model kind"):
        load_denoiser(str(tiny_sd_folder), device="cpu", kind="sd3")


def test_missing_lora_and_cpu_offload_on_cpu(tiny_sd_folder, tmp_path):
    with pytest.raises(AnimatorError, match="LoRA"):
        load_denoiser(str(tiny_sd_folder), device="cpu", lora=[(str(tmp_path / "nope.safetensors"), 0.8)])
    with pytest.raises(AnimatorError, match="cpu_offload needs a CUDA"):
        load_denoiser(str(tiny_sd_folder), device="cpu", cpu_offload=True)


def test_bad_vae_folder(tiny_sd_folder):
    with pytest.raises(AnimatorError, match="not a VAE folder"):
        load_denoiser(str(tiny_sd_folder), device="cpu", vae=str(tiny_sd_folder / "unet"))


@pytest.mark.parametrize("strength", [-0.1, 1.01, float("nan"), "high"])
def test_strength_outside_unit_interval(tiny_sd, photo, seeded, strength):
    with pytest.raises(AnimatorError, match="strength"):
        tiny_sd.img2img(photo, "x", strength=strength, guidance=7.0, steps=4, generator=seeded(0))


@pytest.mark.parametrize(
    "image, words",
    [
        (torch.rand(3, 64, 64), r"\(B, 3, H, W\)"),
        (torch.rand(1, 4, 64, 64), r"\(B, 3, H, W\)"),
        (torch.rand(1, 3, 64, 64) * 255, r"\[0, 1\]"),
        (torch.rand(1, 3, 64, 64) * 2 - 1, r"\[0, 1\]"),
        ((torch.rand(1, 3, 64, 64) * 255).to(torch.uint8), "floating"),
        (torch.rand(1, 3, 60, 64), "multiples of 8"),
    ],
)
def test_bad_images(tiny_sd, seeded, image, words):
    with pytest.raises(AnimatorError, match=words):
        tiny_sd.img2img(image, "x", strength=0.5, guidance=7.0, steps=4, generator=seeded(0))


def test_bad_mask_steps_guidance_generator(tiny_sd, photo, seeded):
    call = dict(strength=0.5, guidance=7.0, steps=4, generator=seeded(0))
    with pytest.raises(AnimatorError, match="full_denoise_mask"):
        tiny_sd.img2img(photo, "x", full_denoise_mask=torch.ones(1, 1, 32, 32), **call)
    with pytest.raises(AnimatorError, match="full_denoise_mask"):
        tiny_sd.img2img(photo, "x", full_denoise_mask=torch.full_like(photo[:, :1], 2.0), **call)
    with pytest.raises(AnimatorError, match="steps"):
        tiny_sd.img2img(photo, "x", **{**call, "steps": 0})
    with pytest.raises(AnimatorError, match="guidance"):
        tiny_sd.img2img(photo, "x", **{**call, "guidance": -1.0})
    with pytest.raises(AnimatorError, match="generator"):
        tiny_sd.img2img(photo, "x", **{**call, "generator": 42})
    with pytest.raises(AnimatorError, match="unknown sampler"):
        tiny_sd.img2img(photo, "x", sampler="fastest", **call)


def test_tiny_vae_not_downloaded_says_what_to_download(tiny_sd_folder):
    with pytest.raises(AnimatorError, match="madebyollin/taesd") as info:
        load_denoiser(str(tiny_sd_folder), device="cpu", vae="tiny")
    assert "download" in str(info.value)


def test_sdxl_in_half_precision_keeps_its_vae_in_float32_quietly(tiny_sdxl_folder):
    """SDXL's VAE overflows in fp16 (its config says force_upcast): it is kept in float32 while the UNet runs in
    fp16, without diffusers' "modules that should be kept in float32: []" warning for that cast. float16 on the
    CPU is asked for by dtype object here only to reach the GPU's loading path. diffusers' loggers do not propagate
    to the root logger (pytest's capture would miss them): the test listens on its own handler."""
    import logging

    import torch

    from animator.backends.denoise import load_denoiser

    class Heard(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    heard = Heard()
    logger = logging.getLogger("diffusers.models.modeling_utils")
    logger.addHandler(heard)
    try:
        denoiser = load_denoiser(str(tiny_sdxl_folder), device="cpu", dtype=torch.float16)
    finally:
        logger.removeHandler(heard)
    assert denoiser.pipe.vae.dtype == torch.float32 and denoiser.pipe.unet.dtype == torch.float16
    assert not [message for message in heard.messages if "kept in float32" in message]
