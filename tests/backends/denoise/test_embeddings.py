"""Textual-inversion embeddings named in prompts, on the tiny real SD / SDXL pipelines."""

import pytest
import torch

from animator.backends.denoise import load_denoiser
from animator.errors import AnimatorError
from animator.keyframes.prompt_syntax import parse_prompt
from animator.testing.tiny_networks import make_tiny_embedding


@pytest.fixture(scope="module")
def embedding_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embeddings")
    make_tiny_embedding(folder / "myconcept.pt", vectors=2, seed=1)  # A1111 .pt (string_to_param)
    make_tiny_embedding(folder / "otherstyle.safetensors", vectors=1, seed=2)  # emb_params
    make_tiny_embedding(folder / "xlthing.safetensors", width=(32, 32), vectors=1, seed=3)  # SDXL clip_l + clip_g
    return folder


def test_the_name_uses_the_files_vectors(tiny_sd_folder, embedding_dir):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", embedding_dirs=[embedding_dir])
    denoiser.prepare_prompts(["a myconcept dog"])
    tokenizer, text_encoder = denoiser.pipe.tokenizer, denoiser.pipe.text_encoder
    new_ids = tokenizer.convert_tokens_to_ids(["myconcept", "myconcept_1"])
    chunk = denoiser.text.chunks(parse_prompt("a myconcept dog"))[0]
    assert list(chunk.ids[1 : 1 + chunk.length]).count(new_ids[0]) == 1
    assert new_ids[1] in chunk.ids  # a 2-vector embedding takes two tokens
    vectors = torch.load(embedding_dir / "myconcept.pt", weights_only=True)["string_to_param"]["*"]
    table = text_encoder.get_input_embeddings().weight
    torch.testing.assert_close(table[new_ids], vectors)
    # the conditioning differs from the same text without the embedding loaded
    plain = load_denoiser(str(tiny_sd_folder), device="cpu")
    assert not torch.allclose(
        denoiser.prompts.resolve("a myconcept dog").cond, plain.prompts.resolve("a myconcept dog").cond
    )
    assert denoiser.embeddings.describe() == {"myconcept": str(embedding_dir / "myconcept.pt")}  # only what is used


def test_safetensors_embedding_and_explicit_reference(tiny_sd_folder, embedding_dir):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", embedding_dirs=[embedding_dir])
    denoiser.prepare_prompts(["embedding:otherstyle, a dog"])
    assert "otherstyle" in denoiser.embeddings.loaded
    with pytest.raises(AnimatorError, match="embedding 'absent' not found") as info:
        denoiser.prepare_prompts(["embedding:absent, a dog"])
    assert str(embedding_dir) in str(info.value)


def test_an_sdxl_embedding_on_sd1_is_refused(tiny_sd_folder, embedding_dir):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", embedding_dirs=[embedding_dir])
    with pytest.raises(AnimatorError, match="could not load embedding 'xlthing'"):
        denoiser.prepare_prompts(["xlthing dog"])


def test_sdxl_embedding_loads_into_both_encoders(tiny_sdxl_folder, embedding_dir):
    denoiser = load_denoiser(str(tiny_sdxl_folder), device="cpu", embedding_dirs=[embedding_dir])
    denoiser.prepare_prompts(["xlthing dog"])
    pipe = denoiser.pipe
    from safetensors.torch import load_file

    state = load_file(str(embedding_dir / "xlthing.safetensors"))
    for tokenizer, encoder, key in (
        (pipe.tokenizer, pipe.text_encoder, "clip_l"),
        (pipe.tokenizer_2, pipe.text_encoder_2, "clip_g"),
    ):
        token = tokenizer.convert_tokens_to_ids("xlthing")
        torch.testing.assert_close(encoder.get_input_embeddings().weight[token], state[key][0])
