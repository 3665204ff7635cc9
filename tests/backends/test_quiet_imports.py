"""Loading the diffusion backend prints nothing that sends people the wrong way."""

from __future__ import annotations

import os
import subprocess
import sys


def test_no_install_torchvision_note_when_diffusers_loads():
    """transformers notes that its image processors fall back to PIL without torchvision and says to install it;
    animator keeps torchvision out on purpose (it brings a CUDA torch of several GB), so the note is dropped. The
    note is printed once per process: a fresh interpreter sees it or not. ``import animator`` is all it takes (test
    models and notebook helpers import transformers without the backends)."""
    code = (
        "import animator\n"
        "from diffusers import StableDiffusionImg2ImgPipeline\n"
        "import transformers\n"
        "transformers.CLIPImageProcessor\n"
        "print('loaded')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded" in result.stdout
    assert "torchvision" not in result.stderr, result.stderr[-2000:]
