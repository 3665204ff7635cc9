"""PromptCache: one encode per distinct (prompt, negative); mixes are weighted averages; bad mixes are refused."""

import pytest
import torch

from animator.backends.denoise import PromptCache, PromptEmbeddings
from animator.backends.denoise.prompts import normalize_prompt
from animator.errors import AnimatorError


def fake_encoder(log):
    """Embeddings whose values identify the text (a stand-in for CLIP, which the img2img tests use for real)."""

    def encode(positive, negative):
        log.append((positive, negative))
        return PromptEmbeddings(
            cond=torch.full((1, 3, 2), float(len(positive))), uncond=torch.full((1, 3, 2), float(len(negative)))
        )

    return encode


def test_each_distinct_pair_is_encoded_once():
    log = []
    cache = PromptCache(fake_encoder(log))
    for _ in range(5):
        cache.resolve("aa", "n")
        cache.resolve([("aa", "n", 0.5), ("bbbb", "n", 0.5)])
    assert log == [("aa", "n"), ("bbbb", "n")] and cache.encodes == 2


def test_mix_is_the_normalized_weighted_average():
    cache = PromptCache(fake_encoder([]))
    mixed = cache.resolve([("aa", "", 3.0), ("aaaaaa", "nnnn", 1.0)])  # conds 2 and 6, unconds 0 and 4
    torch.testing.assert_close(mixed.cond, torch.full((1, 3, 2), 0.75 * 2 + 0.25 * 6))
    torch.testing.assert_close(mixed.uncond, torch.full((1, 3, 2), 0.25 * 4.0))


def test_zero_weight_entries_are_dropped_and_empty_negative_falls_back():
    assert normalize_prompt([("a", "", 1.0), ("b", "x", 0.0)], negative="ugly") == [("a", "ugly", 1.0)]
    assert normalize_prompt("a", negative="ugly") == [("a", "ugly", 1.0)]


@pytest.mark.parametrize(
    "prompt",
    [[], [("a", "", -1.0)], [("a", "", float("nan"))], [("a", "", 0.0)], [("a", 1.0)], 42, [("a", "", "heavy")]],
)
def test_bad_prompt_mixes_raise_animator_error(prompt):
    with pytest.raises(AnimatorError, match="prompt"):
        normalize_prompt(prompt)


def test_cache_keeps_at_most_max_entries():
    log = []
    cache = PromptCache(fake_encoder(log), max_entries=2)
    for text in ("a", "b", "c", "a"):
        cache.get(text)
    assert len(cache) == 2 and log[-1] == ("a", "")  # "a" was the oldest, dropped, then encoded again
