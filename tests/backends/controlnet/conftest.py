"""Tiny real ControlNets (made from the tiny pipelines' own UNets, output layers filled) and their denoisers."""

from __future__ import annotations

from pathlib import Path

import pytest

from animator.testing.tiny_controlnet import make_tiny_controlnet
from animator.testing.tiny_sd import make_tiny_sdxl


@pytest.fixture(scope="session")
def tiny_controlnet(tiny_model, tmp_path_factory) -> Path:
    """An SD 1.x-shaped ControlNet folder that fits ``tiny_model``."""
    return make_tiny_controlnet(tmp_path_factory.mktemp("controlnets") / "cn-sd", unet_folder=tiny_model / "unet")


@pytest.fixture(scope="session")
def tiny_sdxl_model(tmp_path_factory) -> Path:
    return make_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_sdxl_controlnet(tiny_sdxl_model, tmp_path_factory) -> Path:
    return make_tiny_controlnet(
        tmp_path_factory.mktemp("controlnets") / "cn-sdxl", unet_folder=tiny_sdxl_model / "unet", seed=1
    )


@pytest.fixture(scope="session")
def tiny_union_controlnet(tiny_sdxl_model, tmp_path_factory) -> Path:
    return make_tiny_controlnet(
        tmp_path_factory.mktemp("controlnets") / "cn-union", unet_folder=tiny_sdxl_model / "unet", union=True, seed=2
    )


@pytest.fixture(scope="session")
def sd_denoiser(tiny_model):
    from animator.backends.denoise import load_denoiser

    return load_denoiser(str(tiny_model), device="cpu")


@pytest.fixture(scope="session")
def sdxl_denoiser(tiny_sdxl_model):
    from animator.backends.denoise import load_denoiser

    return load_denoiser(str(tiny_sdxl_model), device="cpu")
