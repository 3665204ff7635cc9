"""Shared test set-up: offline, deterministic, small."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")  # reproducible float sums (see animator/__init__.py)
if "ANIMATOR_CACHE_DIR" not in os.environ:  # animator.cache: a folder of this test process, not the user's ~/.cache
    import tempfile

    os.environ["ANIMATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="animator-test-cache-")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """../shared/corpus: real Deforum settings and Parseq manifests (read in place, never copied into the repo)."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch and one OpenCV thread (restored after).

    Small tensors run fastest on one thread, and CI shares two cores between two test workers: torch's worker
    threads would spin against the other process (calls 10x slower, measured). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import cv2
    import torch

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture
def traced(monkeypatch):
    """animator.compiling with torch.compile's ``aot_eager`` backend: every compiled function is traced as the one
    graph (``fullgraph``) TorchInductor would get, without its minute of code generation per function. The graph
    must also hold no accumulation TorchInductor would run with its slow fallback (``checked_aot_eager``)."""
    from animator import compiling
    from animator.testing.traced import checked_aot_eager

    monkeypatch.setattr(compiling, "BACKEND", checked_aot_eager)
    compiling.reset()
    yield
    compiling.reset()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Stable Diffusion folder of the real diffusers classes (random weights), built once per test process."""
    from animator.testing.tiny_sd import make_tiny_sd

    return make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def init_image(tmp_path_factory) -> Path:
    """A real photograph (skimage's astronaut, public domain) at 64x64: texture for phase correlation."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("init") / "init.png"
    Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.LANCZOS).save(path)
    return path
