"""Prompt embeddings: encoded once per distinct (prompt, negative) text, mixed by weight at prompt transitions."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from animator.errors import AnimatorError
from animator.keyframes.prompt_syntax import bounded

if TYPE_CHECKING:
    import torch

__all__ = ["PromptInput", "PromptEmbeddings", "PromptCache", "normalize_prompt"]

# A positive prompt, or a weighted mix ((positive, negative, weight), ...) as keyframed prompt transitions produce.
PromptInput = Union[str, Sequence[tuple[str, str, float]]]


@dataclass(frozen=True)
class PromptEmbeddings:
    """Text conditioning of one prompt (or one mix of prompts), batch size 1."""

    cond: torch.Tensor  # 1xTxD  positive prompt hidden states
    uncond: torch.Tensor  # 1xTxD  negative prompt hidden states
    pooled_cond: torch.Tensor | None = None  # 1xP    SDXL: pooled text_encoder_2 output of the positive prompt
    pooled_uncond: torch.Tensor | None = None  # 1xP  SDXL: same for the negative prompt


def _weighted_sum(tensors: list, weights: list[float]):
    total = tensors[0] * weights[0]
    for tensor, weight in zip(tensors[1:], weights[1:]):
        total = total + tensor * weight
    return total


def mix_embeddings(parts: Sequence[PromptEmbeddings], weights: Sequence[float]) -> PromptEmbeddings:
    """Weighted average of embeddings (weights are normalized to sum to 1), as Deforum blends prompts."""
    if len(parts) == 1:
        return parts[0]
    total = float(sum(weights))
    norm = [w / total for w in weights]
    pooled = parts[0].pooled_cond is not None
    return PromptEmbeddings(
        cond=_weighted_sum([p.cond for p in parts], norm),
        uncond=_weighted_sum([p.uncond for p in parts], norm),
        pooled_cond=_weighted_sum([p.pooled_cond for p in parts], norm) if pooled else None,
        pooled_uncond=_weighted_sum([p.pooled_uncond for p in parts], norm) if pooled else None,
    )


def normalize_prompt(prompt: PromptInput, negative: str = "") -> list[tuple[str, str, float]]:
    """Any PromptInput as a validated list of (positive, negative, weight) with a positive weight sum.

    A plain string uses ``negative``; in a mix, an entry with an empty negative also falls back to ``negative``.
    Entries of weight 0 are dropped (they are the far side of a finished transition).
    """
    if not isinstance(negative, str):
        raise AnimatorError(f"negative prompt must be a string, got {type(negative).__name__}", field="negative")
    if isinstance(prompt, str):
        return [(prompt, negative, 1.0)]
    if not isinstance(prompt, Sequence) or len(prompt) == 0:
        raise AnimatorError(
            f"prompt must be a string or a non-empty list of (positive, negative, weight), got {bounded(repr(prompt))}",
            field="prompt",
        )
    entries = []
    for index, item in enumerate(prompt):
        if not (
            isinstance(item, Sequence)
            and not isinstance(item, str)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise AnimatorError(
                f"prompt[{index}] must be (positive: str, negative: str, weight: float), got {bounded(repr(item))}",
                field="prompt",
            )
        try:
            weight = float(item[2])
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise AnimatorError(
                f"prompt[{index}] weight must be a finite number >= 0, got {bounded(repr(item[2]))}",
                field="prompt",
                hint="weights of a prompt mix are relative: (a, 0.75) and (b, 0.25) blend a into b",
            )
        if weight > 0:
            entries.append((item[0], item[1] or negative, weight))
    if not entries:
        raise AnimatorError("prompt mix has no entry with a weight above 0", field="prompt")
    return entries


class PromptCache:
    """Embeddings computed once per distinct (prompt, negative) text; mixes combine cached embeddings by weight.

    Args:
        encode: ``(positive, negative) -> PromptEmbeddings``; called once per distinct pair (and ``state``).
        max_entries: oldest entries are dropped past this many (a long schedule with per-frame prompts).
        state: what else the encoding depends on (the text encoders' LoRA weights), part of the key; None: nothing.
        pad: makes the embeddings of a mix the same length before they are mixed (prompts of different lengths).
    """

    def __init__(
        self,
        encode: Callable[[str, str], PromptEmbeddings],
        *,
        max_entries: int = 256,
        state: Callable[[], Hashable] | None = None,
        pad: Callable[[list[PromptEmbeddings]], list[PromptEmbeddings]] | None = None,
    ) -> None:
        self._encode = encode
        self._state = state
        self._pad = pad
        self._entries: dict[tuple, PromptEmbeddings] = {}
        self.max_entries = max_entries
        self.encodes = 0  # number of calls to ``encode`` (what the cache saves is visible in tests and the run record)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, positive: str, negative: str = "") -> PromptEmbeddings:
        """The embeddings of one (positive, negative) pair, encoding it on first use."""
        key = (positive, negative, self._state() if self._state else None)
        if key in self._entries:
            return self._entries[key]
        embeddings = self._encode(positive, negative)
        self.encodes += 1
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = embeddings
        return embeddings

    def resolve(self, prompt: PromptInput, negative: str = "") -> PromptEmbeddings:
        """Embeddings for a prompt or a weighted mix of prompts (see :func:`normalize_prompt`)."""
        entries = normalize_prompt(prompt, negative)
        parts = [self.get(positive, neg) for positive, neg, _ in entries]
        if self._pad is not None and len({part.cond.shape for part in parts}) > 1:
            parts = self._pad(parts)
        return mix_embeddings(parts, [weight for _, _, weight in entries])

    def clear(self) -> None:
        self._entries.clear()
