"""LoRAs named in prompts on the tiny real SD pipeline: a real PEFT LoRA saved as .safetensors and loaded by name."""

import pytest
import torch

from animator.backends.denoise import load_denoiser
from animator.errors import AnimatorError
from animator.testing.tiny_networks import make_tiny_lora

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def lora_dir(tiny_sd_folder, tiny_sdxl_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    make_tiny_lora(tiny_sd_folder, folder / "inkwash.safetensors", text_encoder=True)
    make_tiny_lora(tiny_sd_folder, folder / "unet_only.safetensors", seed=1)
    make_tiny_lora(tiny_sdxl_folder, folder / "xl_style.safetensors")
    return folder


@pytest.fixture(scope="module")
def denoiser(tiny_sd_folder, lora_dir):
    return load_denoiser(str(tiny_sd_folder), device="cpu", lora_dirs=[lora_dir])


def frame(denoiser, photo, seeded, prompt):
    return denoiser.img2img(photo, prompt, strength=0.7, guidance=5.0, steps=4, generator=seeded(3))


def test_weight_zero_is_without_the_lora_and_weight_scales_the_change(denoiser, tiny_sd, photo, seeded):
    without = frame(tiny_sd, photo, seeded, "a cat")  # a denoiser that never loaded a LoRA
    assert torch.equal(frame(denoiser, photo, seeded, "a cat <lora:unet_only:0>"), without)
    half = frame(denoiser, photo, seeded, "a cat <lora:unet_only:0.5>")
    full = frame(denoiser, photo, seeded, "a cat <lora:unet_only:1>")
    change_half, change_full = (half - without).abs().mean().item(), (full - without).abs().mean().item()
    assert change_full > 1e-3
    assert 0.3 < change_half / change_full < 0.7  # about in proportion to the weight
    assert torch.equal(frame(denoiser, photo, seeded, "a cat"), without)  # a frame without the tag: weight 0
    assert torch.equal(frame(denoiser, photo, seeded, "a cat <lora:unet_only:1>"), full)  # no drift on the way back
    assert list(denoiser.loras.describe()) == ["unet_only"]  # loaded once


def test_a_text_encoder_lora_changes_the_conditioning_and_the_cache_knows(denoiser):
    plain = denoiser.prompts.resolve("a cat")
    denoiser.loras.ensure(["inkwash"])
    denoiser.loras.apply({"inkwash": 1.0})
    with_lora = denoiser.prompts.resolve("a cat")
    assert not torch.allclose(plain.cond, with_lora.cond)
    denoiser.loras.apply({})
    assert torch.equal(denoiser.prompts.resolve("a cat").cond, plain.cond)


def test_per_frame_weights_do_not_reload(denoiser, photo, seeded, monkeypatch):
    denoiser.prepare_prompts(["<lora:unet_only:1>"])
    calls = []
    monkeypatch.setattr(denoiser.pipe, "load_lora_weights", lambda *a, **k: calls.append(a))
    for weight in (0.2, 0.4, 0.6):
        frame(denoiser, photo, seeded, f"a cat <lora:unet_only:{weight}>")
    assert calls == []
    assert denoiser.loras.weights["unet_only"] == 0.6


def test_compiled_unet_is_not_traced_again_for_new_weights(tiny_sd_folder, lora_dir, photo, seeded):
    from torch._dynamo.utils import counters

    from animator.backends.speed import speed_up_module

    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", lora_dirs=[lora_dir])
    denoiser.prepare_prompts(["<lora:unet_only:1>"])
    torch._dynamo.reset()
    speed_up_module(denoiser.pipe.unet, device=torch.device("cpu"), compile="default", backend="eager")
    counters.clear()
    frame(denoiser, photo, seeded, "a cat <lora:unet_only:0.3>")
    assert counters["stats"]["unique_graphs"] > 0  # the first call traced (the counter sees traces)
    counters.clear()
    for weight in (0.5, 0.9, 0.1):
        frame(denoiser, photo, seeded, f"a cat <lora:unet_only:{weight}>")
    assert counters["stats"]["unique_graphs"] == 0  # no new trace for a new weight
    torch._dynamo.reset()


def test_missing_lora_names_the_folders(denoiser, lora_dir, photo, seeded):
    with pytest.raises(AnimatorError, match="'nowhere' not found") as info:
        frame(denoiser, photo, seeded, "a cat <lora:nowhere:1>")
    assert str(lora_dir) in str(info.value)
    assert info.value.field == "backends.lora_dirs"


def test_lora_of_another_architecture_is_refused(tiny_sd_folder, lora_dir):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", lora_dirs=[lora_dir])
    with pytest.raises(AnimatorError, match="could not load LoRA 'xl_style'") as info:
        denoiser.prepare_prompts(["a cat <lora:xl_style:1>"])
    assert "architecture" in info.value.hint


def test_a_lora_of_the_whole_run_stays_on_beside_prompt_loras(tiny_sd_folder, lora_dir, photo, seeded):
    fixed = [(str(lora_dir / "inkwash.safetensors"), 0.7)]
    only_fixed = load_denoiser(str(tiny_sd_folder), device="cpu", lora=fixed)
    both = load_denoiser(str(tiny_sd_folder), device="cpu", lora=fixed, lora_dirs=[lora_dir])
    expected = frame(only_fixed, photo, seeded, "a cat")
    assert torch.equal(frame(both, photo, seeded, "a cat <lora:unet_only:0>"), expected)
    assert not torch.equal(frame(both, photo, seeded, "a cat <lora:unet_only:1>"), expected)
    assert both.describe()["prompt_loras"] == {"unet_only": str(lora_dir / "unet_only.safetensors")}
