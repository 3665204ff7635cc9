"""Models by hub id: from the local Hugging Face cache without the network; before a download, one quick question
whose failures (no network, no such model, gated) are clear errors.

The cache is a real one in the hub's layout (``models--owner--name/refs/main`` + ``snapshots/<commit>/``) holding
tiny models of the real classes. The network is cut by pointing the proxy at a closed local port: every connection is
refused at once, as on a machine without internet (the hub libraries then retry with back-off and print "Retrying
in 1s", which is how a load that asked the network shows itself). Those loads run in a fresh interpreter: the hub
libraries read the cache location and the proxy when they are imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from animator.backends import hub
from animator.errors import AnimatorError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """``folder``'s files as the main revision of ``repo_id`` in a Hugging Face cache at ``cache``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def run_cut_off(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "NO_PROXY", "no_proxy")
    }
    closed_port = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env |= {
        "HF_HUB_CACHE": str(cache),
        "HTTPS_PROXY": closed_port,
        "HTTP_PROXY": closed_port,
        "https_proxy": closed_port,
        "http_proxy": closed_port,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny_model) -> Path:
    from animator.testing.tiny_depth import make_tiny_dpt

    root = tmp_path_factory.mktemp("hf-cache")
    put_in_cache(root, "tester/tiny-sd", tiny_model)
    depth_folder = tmp_path_factory.mktemp("dpt")
    make_tiny_dpt(depth_folder)
    put_in_cache(root, "tester/tiny-dpt", depth_folder)
    return root


def test_cached_models_load_by_id_without_asking_the_network(cache):
    done = run_cut_off(
        "from animator.backends.denoise import load_denoiser\n"
        "from animator.backends.depth import load_depth_estimator\n"
        "denoiser = load_denoiser('tester/tiny-sd', device='cpu')\n"
        "depth = load_depth_estimator('tester/tiny-dpt', device='cpu')\n"
        "print('loaded', type(denoiser.pipe).__name__, depth.describe()['name'])\n",
        cache,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["loaded", "StableDiffusionImg2ImgPipeline", "tester/tiny-dpt"]
    # the libraries, asked to check the hub first, print "Could not reach the Hub ([Errno 111] Connection refused)"
    assert "Connection refused" not in done.stderr and "Retrying" not in done.stderr
    assert "local_dir_use_symlinks" not in done.stderr  # a deprecation only diffusers itself can act on


def test_an_id_missing_from_the_cache_without_network_says_so_at_once(cache):
    done = run_cut_off(
        "from animator.errors import AnimatorError\n"
        "from animator.backends.denoise import load_denoiser\n"
        "from animator.backends.depth import load_depth_estimator\n"
        "for load, spec in ((load_denoiser, 'tester/not-downloaded'), (load_depth_estimator, 'tester/no-depth')):\n"
        "    try:\n"
        "        load(spec, device='cpu')\n"
        "    except AnimatorError as exc:\n"
        "        print('ERROR', exc.field, '|', str(exc).replace(chr(10), ' '), '|', exc.hint)\n",
        cache,
    )
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2, done.stdout + done.stderr
    for line, (field, spec) in zip(errors, (("model", "tester/not-downloaded"), ("depth", "tester/no-depth"))):
        assert line.startswith(f"ERROR {field} |") and f"{spec!r} is not in this machine's Hugging Face cache" in line
        assert "cannot be reached" in line and f"hf download {spec}" in line
    assert "Retrying" not in done.stderr  # one refused question, not the libraries' back-off


def hub_error(kind, status: int):
    import httpx2 as httpx  # the HTTP client this huggingface_hub is built on

    request = httpx.Request("GET", "https://huggingface.co/api/models/x/y")
    return kind("refused", response=httpx.Response(status, request=request))


@pytest.mark.parametrize(
    "kind, status, expected, hint",
    [
        ("RepositoryNotFoundError", 404, "there is no model 'owner/typo' on huggingface.co", "check the spelling"),
        ("GatedRepoError", 403, "model 'owner/typo' is gated on huggingface.co", "hf auth login"),
    ],
)
def test_a_wrong_or_gated_id_is_named_before_any_download(monkeypatch, kind, status, expected, hint):
    pytest.importorskip("httpx2")
    import huggingface_hub
    from huggingface_hub import errors

    def answer(self, repo_id, **kwargs):
        raise hub_error(getattr(errors, kind), status)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", answer)
    with pytest.raises(AnimatorError) as info:
        hub.check_downloadable("owner/typo", what="model", field="model")
    assert expected in str(info.value) and hint in info.value.hint and info.value.field == "model"


def test_other_hub_answers_let_the_download_speak_for_itself(monkeypatch):
    import huggingface_hub

    def busy(self, repo_id, **kwargs):
        raise RuntimeError("503 Service Unavailable")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", busy)
    hub.check_downloadable("owner/name", what="model", field="model")  # no error of ours


def test_unreachable_follows_the_chain_of_causes():
    class ConnectError(Exception):  # as httpx names it
        pass

    try:
        try:
            raise ConnectError("[Errno -2] Name or service not known")
        except ConnectError as inner:
            raise OSError("We couldn't connect to 'https://huggingface.co'") from inner
    except OSError as outer:
        assert hub.unreachable(outer)
    assert not hub.unreachable(ValueError("bad config"))


def test_in_cache_reads_the_hub_layout(tmp_path, monkeypatch):
    from huggingface_hub import constants

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    put_in_cache(tmp_path / "cache", "owner/name", folder)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub.in_cache("owner/name", "config.json")
    assert not hub.in_cache("owner/name", "model_index.json") and not hub.in_cache("owner/other", "config.json")
    assert not hub.in_cache("not a valid id!", "config.json")


def test_load_by_id_tries_the_cache_first_and_downloads_only_what_is_missing(monkeypatch):
    calls: list = []

    def loader(outcomes):
        def load(local_files_only: bool):
            calls.append(local_files_only)
            outcome = outcomes[local_files_only]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return load

    checked: list = []
    monkeypatch.setattr(hub, "check_downloadable", lambda repo_id, **kw: checked.append(repo_id))
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(hub, "in_cache", lambda repo_id, marker: repo_id.startswith("cached/"))

    def run(repo_id, outcomes):
        calls.clear(), checked.clear()
        return hub.load_by_id(repo_id, "config.json", loader(outcomes), what="model", field="model")

    assert run("cached/model", {True: "from cache", False: "downloaded"}) == "from cache" and calls == [True]
    assert not checked  # a cached model asks the network nothing
    incomplete = OSError("no file named diffusion_pytorch_model.safetensors")
    assert run("cached/model", {True: incomplete, False: "downloaded"}) == "downloaded" and calls == [True, False]
    wrapped = AnimatorError("could not load model")
    wrapped.__cause__ = incomplete  # a library failure wrapped in ours: also missing files
    assert run("cached/model", {True: wrapped, False: "downloaded"}) == "downloaded"
    refused = AnimatorError("this model's UNet takes 9 input channels")  # ours, no cause: downloading cannot help
    with pytest.raises(AnimatorError, match="9 input channels"):
        run("cached/model", {True: refused, False: "downloaded"})
    assert calls == [True]
    assert run("new/model", {True: "from cache", False: "downloaded"}) == "downloaded"
    assert calls == [False] and checked == ["new/model"]  # asked about once, before the download
    monkeypatch.setattr(hub, "offline", lambda: True)
    assert run("new/model", {True: "from cache", False: "downloaded"}) == "from cache" and not checked


def test_a_depth_model_downloaded_by_id_brings_its_preprocessor_config(tmp_path, monkeypatch):
    """``from_pretrained`` fetches a depth model's config and weights only; its ``preprocessor_config.json`` (input
    size, mean, std) must come along, or the model runs with its family's defaults. No network here: the download of
    the weights is stood in for by a folder and the hub's answer for the file by ``hf_hub_download`` patched."""
    import json

    import huggingface_hub

    from animator.backends.depth import load_depth_estimator, transformers_backend
    from animator.testing.tiny_depth import make_tiny_depth_anything

    weights = tmp_path / "weights"
    make_tiny_depth_anything(weights, preprocessor=False)
    hub_file = tmp_path / "preprocessor_config.json"
    hub_file.write_text(
        json.dumps(
            {
                "size": {"height": 56, "width": 56},
                "ensure_multiple_of": 14,
                "image_mean": [0.4, 0.4, 0.4],
                "image_std": [0.2, 0.2, 0.2],
            }
        )
    )
    asked: list = []

    def hf_hub_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        if repo_id == "owner/no-preprocessor":
            raise huggingface_hub.errors.EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(hub_file)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    load_folder = transformers_backend.load_pretrained_model
    monkeypatch.setattr(
        transformers_backend, "load_pretrained_model", lambda location, **kwargs: load_folder(weights, is_folder=True)
    )
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(hub, "check_downloadable", lambda repo_id, **kw: None)
    monkeypatch.setattr(hub, "in_cache", lambda repo_id, marker: repo_id.startswith("cached/"))

    downloaded = load_depth_estimator("owner/depth", device="cpu")
    assert asked == [("owner/depth", "preprocessor_config.json")]
    assert downloaded.preprocess.target_size(40, 90) == (56, 126)  # the file's 56-pixel side, not the default 518
    assert downloaded.preprocess.mean == (0.4, 0.4, 0.4) and downloaded.preprocess.std == (0.2, 0.2, 0.2)

    asked.clear()
    without = load_depth_estimator("owner/no-preprocessor", device="cpu")  # the repository has no such file
    assert asked == [("owner/no-preprocessor", "preprocessor_config.json")]
    assert without.preprocess.target_size(40, 90) == (518, 1162)  # the family's defaults

    asked.clear()
    load_depth_estimator("cached/depth", device="cpu")  # loaded from the cache: no question to the network
    assert asked == []
