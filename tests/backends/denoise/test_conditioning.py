"""Weighted, chunked prompt conditioning on the tiny real SD / SDXL pipelines (their tokenizers and text encoders).

Truth is built from the text encoder itself: chunks are encoded one by one from hand-made token ids, weighted by
the web UI's rule written out here, and compared with what the denoiser conditions on.
"""

import logging

import pytest
import torch

from animator.backends.denoise import load_denoiser

CPU = torch.device("cpu")


def frame(denoiser, photo, seeded, prompt, negative=""):
    return denoiser.img2img(photo, prompt, negative=negative, strength=0.7, guidance=5.0, steps=4, generator=seeded(3))


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, max_length=10**6).input_ids


def chunk_ids(tokenizer, tokens):
    """BOS + tokens + EOS, padded to 77 (what one CLIP window holds)."""
    ids = [tokenizer.bos_token_id, *tokens, tokenizer.eos_token_id]
    return ids + [tokenizer.pad_token_id] * (77 - len(ids))


def encode_ids(text_encoder, ids):
    with torch.inference_mode():
        return text_encoder(torch.tensor([ids]))[0]  # 1x77xD, last hidden state (SD 1.x)


def test_plain_prompts_are_what_diffusers_encodes(tiny_sd):
    for positive, negative in [("a red cat", "blurry"), ("", ""), ("x" * 70, "lowres, bad")]:
        cond, uncond = tiny_sd.pipe.encode_prompt(positive, CPU, 1, True, negative_prompt=negative)
        embeddings = tiny_sd.prompts.get(positive, negative)
        assert torch.equal(embeddings.cond, cond)
        assert torch.equal(embeddings.uncond, uncond)


def test_weight_one_is_exactly_no_weight(tiny_sd, photo, seeded):
    plain = tiny_sd.prompts.get("a red cat", "")
    weighted = tiny_sd.prompts.get("a (red:1.0) cat", "")
    assert torch.equal(plain.cond, weighted.cond)
    assert torch.equal(frame(tiny_sd, photo, seeded, "a red cat"), frame(tiny_sd, photo, seeded, "a (red:1.0) cat"))
    stronger = tiny_sd.prompts.get("a (red:1.8) cat", "")
    assert not torch.allclose(plain.cond, stronger.cond, atol=1e-3)
    assert not torch.equal(frame(tiny_sd, photo, seeded, "a red cat"), frame(tiny_sd, photo, seeded, "a (red:1.8) cat"))


def test_double_brackets_are_weight_1_21(tiny_sd):
    assert torch.equal(tiny_sd.prompts.get("a ((red)) cat", "").cond, tiny_sd.prompts.get("a (red:1.21) cat", "").cond)
    assert torch.equal(
        tiny_sd.prompts.get("a [red] cat", "").cond, tiny_sd.prompts.get(f"a (red:{1 / 1.1}) cat", "").cond
    )


def final_layer_norm(text_encoder):
    model = getattr(text_encoder, "text_model", text_encoder)  # transformers >= 5.6 flattened CLIPTextModel
    return model.final_layer_norm


@pytest.fixture(scope="module")
def biased_sd(tiny_sd_folder):
    """The tiny SD whose text encoder's final LayerNorm has a bias, as CLIP's trained one does: without it every
    token's hidden state has mean 0, and the web UI's mean restore would divide rounding noise by rounding noise."""
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu")
    with torch.no_grad():
        final_layer_norm(denoiser.pipe.text_encoder).bias.fill_(0.3)
    return denoiser


def test_weights_scale_tokens_and_keep_the_mean(biased_sd):
    tokenizer, text_encoder = biased_sd.pipe.tokenizer, biased_sd.pipe.text_encoder
    a, red, cat = ids_of(tokenizer, "a "), ids_of(tokenizer, "red"), ids_of(tokenizer, " cat")
    z = encode_ids(text_encoder, chunk_ids(tokenizer, a + red + cat)).float()
    weights = torch.ones(77)
    weights[1 + len(a) : 1 + len(a) + len(red)] = 1.8  # after BOS and "a "
    truth = z * weights[None, :, None]
    truth = truth * (z.mean() / truth.mean())  # the web UI's rule
    got = biased_sd.prompts.get("a (red:1.8) cat", "").cond
    torch.testing.assert_close(got, truth, rtol=1e-6, atol=1e-6)
    assert got.mean().item() == pytest.approx(z.mean().item(), rel=1e-5)
    assert not torch.allclose(got, z, atol=1e-3)


def test_a_zero_mean_encoder_is_weighted_without_the_restore(tiny_sd):
    tokenizer, text_encoder = tiny_sd.pipe.tokenizer, tiny_sd.pipe.text_encoder
    a, red = ids_of(tokenizer, "a "), ids_of(tokenizer, "red")
    z = encode_ids(text_encoder, chunk_ids(tokenizer, a + red)).float()
    assert abs(z.mean().item()) < 1e-6  # LayerNorm without bias: every token centred
    weights = torch.ones(77)
    weights[1 + len(a) : 1 + len(a) + len(red)] = 1.8
    got = tiny_sd.prompts.get("a (red:1.8)", "").cond
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, z * weights[None, :, None], rtol=1e-6, atol=1e-6)


def test_long_prompts_are_chunked_not_cut(tiny_sd, photo, seeded):
    tokenizer, text_encoder = tiny_sd.pipe.tokenizer, tiny_sd.pipe.text_encoder
    words = [f"w{i % 10}" for i in range(100)]  # 2 tokens each with the byte-level tokenizer
    text = " ".join(words)
    tokens = ids_of(tokenizer, text)
    assert len(tokens) == 200
    cond = tiny_sd.prompts.get(text, "").cond
    assert cond.shape == (1, 3 * 77, 32)
    for k in range(3):  # each chunk is its 75 tokens encoded on their own
        truth = encode_ids(text_encoder, chunk_ids(tokenizer, tokens[75 * k : 75 * (k + 1)]))
        assert torch.equal(cond[:, 77 * k : 77 * (k + 1)], truth)
    changed = " ".join(words[:-1] + ["zz"])  # only the last word, in the third chunk
    assert not torch.equal(frame(tiny_sd, photo, seeded, text), frame(tiny_sd, photo, seeded, changed))


def test_no_truncation_warning(tiny_sd, caplog, capfd):
    text = "a very long prompt, " * 60
    with caplog.at_level(logging.WARNING):
        tiny_sd.prompts.get(text, "")
    assert "truncated" not in caplog.text and "sequence length" not in caplog.text
    captured = capfd.readouterr()
    assert "sequence length" not in captured.err and "truncated" not in captured.err


def test_break_starts_a_chunk(tiny_sd):
    tokenizer, text_encoder = tiny_sd.pipe.tokenizer, tiny_sd.pipe.text_encoder
    cond = tiny_sd.prompts.get("a castle BREAK a moat", "").cond
    assert cond.shape == (1, 2 * 77, 32)
    assert torch.equal(cond[:, :77], encode_ids(text_encoder, chunk_ids(tokenizer, ids_of(tokenizer, "a castle"))))
    assert torch.equal(cond[:, 77:], encode_ids(text_encoder, chunk_ids(tokenizer, ids_of(tokenizer, "a moat"))))


def test_positive_and_negative_get_the_same_length(tiny_sd):
    tokenizer, text_encoder = tiny_sd.pipe.tokenizer, tiny_sd.pipe.text_encoder
    embeddings = tiny_sd.prompts.get("a BREAK b BREAK c", "blurry")
    assert embeddings.cond.shape == embeddings.uncond.shape == (1, 3 * 77, 32)
    empty = encode_ids(text_encoder, chunk_ids(tokenizer, []))
    assert torch.equal(embeddings.uncond[:, 77:154], empty)  # padded with the empty prompt's chunk
    assert torch.equal(embeddings.uncond[:, 154:], empty)


def test_cross_fade_between_prompts_of_different_lengths(tiny_sd, photo, seeded):
    mix = [("a castle", "", 0.25), ("a castle BREAK a moat", "", 0.75)]
    image = frame(tiny_sd, photo, seeded, mix)
    assert image.shape == photo.shape
    mixed = tiny_sd.prompts.resolve(mix)
    short, long = tiny_sd.prompts.get("a castle", ""), tiny_sd.prompts.get("a castle BREAK a moat", "")
    assert mixed.cond.shape == long.cond.shape
    torch.testing.assert_close(mixed.cond[:, :77], 0.25 * short.cond + 0.75 * long.cond[:, :77])


def test_cache_is_keyed_by_the_text_with_its_weights(tiny_sd_folder):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu")
    for text in ["(a cat:1.2)", "(a cat:1.2)", "(a cat:1.3)", "(a cat:1.2)"]:
        denoiser.prompts.resolve(text)
    assert denoiser.prompts.encodes == 2


def test_sdxl_both_encoders_weighted_and_chunked(tiny_sdxl_folder):
    denoiser = load_denoiser(str(tiny_sdxl_folder), device="cpu")
    pipe = denoiser.pipe
    ref = pipe.encode_prompt(
        prompt="a red cat", device=CPU, num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="bad"
    )
    plain = denoiser.prompts.get("a red cat", "bad")
    for mine, theirs in zip((plain.cond, plain.uncond, plain.pooled_cond, plain.pooled_uncond), ref):
        assert torch.equal(mine, theirs)
    assert torch.equal(denoiser.prompts.get("a (red:1.0) cat", "bad").cond, plain.cond)
    weighted = denoiser.prompts.get("a (red:1.5) cat " + "w " * 80, "bad")
    assert weighted.cond.shape == (1, 2 * 77, 64) and weighted.uncond.shape == (1, 2 * 77, 64)
    # pooled from the first chunk of the second encoder, unweighted (as the web UI)
    tokenizer = pipe.tokenizer_2
    tokens = ids_of(tokenizer, "a ") + ids_of(tokenizer, "red") + ids_of(tokenizer, " cat " + "w " * 80)
    with torch.inference_mode():
        pooled = pipe.text_encoder_2(torch.tensor([chunk_ids(tokenizer, tokens[:75])]), output_hidden_states=True)[0]
    torch.testing.assert_close(weighted.pooled_cond, pooled)  # chunks run as one batch: equal to float rounding
    # both halves (CLIP-L, bigG) are weighted: each keeps the unweighted mean of its chunk
    unweighted = denoiser.prompts.get("a red cat " + "w " * 80, "bad").cond
    for half in (slice(0, 32), slice(32, 64)):
        assert not torch.allclose(weighted.cond[:, :77, half], unweighted[:, :77, half], atol=1e-4)
        assert weighted.cond[:, :77, half].float().mean().item() == pytest.approx(
            unweighted[:, :77, half].float().mean().item(), rel=1e-4, abs=1e-6
        )


def render(tmp_path, init_image, model, prompt: str):
    import numpy as np
    import yaml

    import animator

    data = {
        "width": 64,
        "height": 64,
        "frames": 3,
        "mode": "2d",
        "seed": 5,
        "init_image": str(init_image),
        "prompts": {0: prompt},
        "generation": {"steps": "0:(4)", "strength": "0:(0.5)"},
        "coherence": {"color": "none"},
        "backends": {"denoise": str(model), "device": "cpu"},
    }
    path = tmp_path / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return np.stack([event.image for event in animator.render_frames(path)])


def test_rendered_frames_follow_the_weights(tmp_path, init_image, tiny_model):
    import numpy as np

    plain = render(tmp_path, init_image, tiny_model, "a red cat")
    assert np.array_equal(render(tmp_path, init_image, tiny_model, "a (red:1.0) cat"), plain)
    assert not np.array_equal(render(tmp_path, init_image, tiny_model, "a (red:1.8) cat"), plain)
    # Deforum's trick: a weight animated with backtick math (1 on frame 0, then 1.5, 2)
    animated = render(tmp_path, init_image, tiny_model, "a (red:`1+t/2`) cat")
    assert np.array_equal(animated[0], plain[0])
    assert not np.array_equal(animated[1], plain[1])


def test_a_tokenizer_that_pads_with_its_own_token(tiny_sd_folder):
    # SD 2.x's tokenizer (and SDXL's second one) pads with "!" instead of the end token: chunks pad as it does
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu")
    denoiser.pipe.tokenizer.pad_token = "!"
    assert denoiser.pipe.tokenizer.pad_token_id != denoiser.pipe.tokenizer.eos_token_id
    cond, uncond = denoiser.pipe.encode_prompt("a red cat", CPU, 1, True, negative_prompt="")
    embeddings = denoiser.prompts.get("a red cat", "")
    assert torch.equal(embeddings.cond, cond) and torch.equal(embeddings.uncond, uncond)
