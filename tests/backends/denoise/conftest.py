"""Tiny real SD / SDXL pipelines, saved once per session and loaded through the user path (``load_denoiser``)."""

import pytest
import torch

from animator.backends.denoise import load_denoiser
from animator.testing.tiny_sd import make_tiny_sd, make_tiny_sdxl


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # The CI machine has 2 cores shared by several suites; tiny models gain nothing from more threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory):
    return make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd", tiny_vae=True)


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_folder):
    return load_denoiser(str(tiny_sd_folder), device="cpu")


@pytest.fixture(scope="session")
def tiny_sd_taesd(tiny_sd_folder):
    """The tiny SD with its AutoencoderTiny: a local decoder (no GroupNorm / attention), so pixel-space tests can
    tell which region changed."""
    return load_denoiser(str(tiny_sd_folder), device="cpu", vae=str(tiny_sd_folder / "tiny_vae"))


@pytest.fixture(scope="session")
def tiny_sdxl_folder(tmp_path_factory):
    return make_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="session")
def photo():
    """A real photograph (skimage astronaut), 1x3x64x96 in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    image = resize(data.astronaut(), (64, 96), anti_aliasing=True)  # HxWx3 float64 in [0, 1]
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().clamp(0, 1)


@pytest.fixture(scope="session")
def seeded():
    """seeded(7) -> a CPU torch.Generator seeded with 7 (what the render loop passes per frame)."""
    return lambda seed: torch.Generator().manual_seed(seed)
