"""Text conditioning as the AUTOMATIC1111 web UI builds it: emphasis weights, 75-token chunks, BREAK.

For each text encoder (SD 1.x/2.x: one; SDXL: CLIP-L and OpenCLIP-bigG, concatenated feature-wise):

1. Parse: :func:`animator.keyframes.prompt_syntax.parse_prompt` splits the text into runs with attention weights
   (``(word:1.3)``, ``((word))``, ``[word]``) and BREAK markers; ``<lora:...>`` tags are taken out.
2. Tokenize each run on its own (textual-inversion names expanded to their vector tokens) and fill chunks of 75
   tokens; BREAK ends a chunk early. Each chunk is ``BOS + 75 tokens + EOS`` with padding, 77 ids.
3. Encode all chunks of the text in one batch; SD 1.x/2.x take the last hidden state, SDXL the penultimate one (as
   diffusers' ``encode_prompt`` does). Concatenate the chunks along the sequence: ``1 x 77k x D``.
4. Weight: multiply each token's hidden state by its weight, then rescale each chunk so its mean equals the
   unweighted mean (the web UI's rule; since every chunk keeps its mean, the whole embedding does too).
   A prompt without weights skips this step, so its conditioning is bit for bit what ``encode_prompt`` gives.

SDXL's pooled embedding is the projection of the first chunk of the second encoder (as the web UI). The positive
and negative prompt are padded to the same number of chunks with the encoding of an empty chunk (CFG batches
them), and so are the prompts of a cross-fade before they are mixed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from animator.backends.denoise.prompts import PromptEmbeddings
from animator.keyframes.prompt_syntax import ParsedPrompt, Segment, parse_prompt

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["TokenChunk", "chunk_tokens", "tokenize_prompt", "PromptEncoder", "apply_weights"]

_NO_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class TokenChunk:
    """One CLIP window: ``ids`` (77 ids: BOS, tokens, EOS, padding) and the attention weight of each id."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    length: int  # tokens of the prompt in it (without BOS, EOS and padding)


def chunk_tokens(
    runs: Sequence[tuple[Sequence[int], float] | None],
    *,
    bos: int,
    eos: int,
    pad: int,
    size: int = 75,
) -> list[TokenChunk]:
    """Token runs ``(ids, weight)`` (None for a BREAK) into chunks of ``size`` tokens, each wrapped in BOS/EOS.

    As the web UI: a BREAK ends the current chunk (an empty one too, so ``BREAK`` first gives an empty chunk); a
    trailing empty chunk is dropped, and a prompt with no tokens gives one empty chunk.
    """
    chunks: list[TokenChunk] = []
    ids: list[int] = []
    weights: list[float] = []

    def close() -> None:
        length = len(ids)
        filler = size - length
        chunks.append(
            TokenChunk(
                ids=(bos, *ids, eos, *([pad] * filler)),
                weights=(1.0, *weights, 1.0, *([1.0] * filler)),
                length=length,
            )
        )
        ids.clear()
        weights.clear()

    for run in runs:
        if run is None:
            close()
            continue
        tokens, weight = run
        for token in tokens:
            if len(ids) == size:
                close()
            ids.append(int(token))
            weights.append(float(weight))
    if ids or not chunks:
        close()
    return chunks


def tokenize_prompt(parsed: ParsedPrompt, tokenizer, *, window: int = 77) -> list[TokenChunk]:
    """A parsed prompt's token chunks for one CLIP tokenizer (``window`` ids each, with BOS and EOS): each run of
    text is tokenized on its own, with its weight; textual-inversion names become their vector tokens."""
    runs = [
        None if segment.is_break else (_token_ids(segment, tokenizer), segment.weight) for segment in parsed.segments
    ]
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return chunk_tokens(
        runs, bos=tokenizer.bos_token_id, eos=eos, pad=pad, size=min(window, tokenizer.model_max_length) - 2
    )


def _token_ids(segment: Segment, tokenizer) -> list[int]:
    text = expand_multi_vector_names(segment.text, tokenizer)
    # A long run is chunked here: a max_length that is never reached keeps the tokenizer from warning that the
    # sequence is too long for the model (and from printing it), without truncating anything.
    return list(tokenizer(text, add_special_tokens=False, truncation=False, max_length=_NO_LIMIT).input_ids)


# Below this share of the mean magnitude, a chunk's mean is treated as zero and not restored (see apply_weights).
_ZERO_MEAN = 1e-3


def apply_weights(hidden: Tensor, weights: Tensor) -> Tensor:
    """``hidden`` (k x 77 x D, one row per chunk) times ``weights`` (k x 77) per token, each chunk rescaled so its
    mean is the unweighted mean. Done in float32, returned in ``hidden``'s dtype.

    The rescale divides by the weighted mean: where either mean is ~0 next to the values' magnitude (a text encoder
    whose final LayerNorm has no bias centres every token), the ratio is rounding noise that can reach inf, so that
    chunk is only weighted. CLIP's trained LayerNorm bias keeps real models' means well away from that."""
    import torch

    z = hidden.float()
    original_mean = z.mean(dim=(1, 2), keepdim=True)
    z = z * weights.to(device=z.device, dtype=z.dtype).unsqueeze(-1)
    new_mean = z.mean(dim=(1, 2), keepdim=True)
    scale = _ZERO_MEAN * z.abs().mean(dim=(1, 2), keepdim=True)
    usable = (original_mean.abs() > scale) & (new_mean.abs() > scale)
    ratio = torch.where(usable, original_mean / torch.where(usable, new_mean, 1.0), 1.0)
    return (z * ratio).to(hidden.dtype)


@dataclass(frozen=True)
class _Encoder:
    tokenizer: Any
    text_encoder: Any
    penultimate: bool  # SDXL: hidden_states[-2]; SD 1.x/2.x: the last hidden state
    pooled: bool  # SDXL's second encoder: its projection of the first chunk is the pooled embedding


@dataclass(frozen=True)
class EncodedText:
    """One text through every encoder: ``hidden`` 1 x 77k x D, ``pooled`` 1 x P (SDXL) or None."""

    hidden: Tensor
    pooled: Tensor | None
    chunks: int


class PromptEncoder:
    """Weighted, chunked text encoding for a loaded SD / SDXL pipeline.

    Args:
        pipe: the diffusers pipeline (its tokenizers and text encoders; textual-inversion tokens already loaded).
        sdxl: two encoders (CLIP-L, OpenCLIP-bigG), penultimate hidden states and a pooled embedding.
        device: where the text encoders run.
    """

    def __init__(self, pipe, *, sdxl: bool, device: torch.device) -> None:
        self.pipe = pipe
        self.device = device
        if sdxl:
            encoders = [(pipe.tokenizer, pipe.text_encoder, False), (pipe.tokenizer_2, pipe.text_encoder_2, True)]
            self.encoders = [_Encoder(t, e, True, pooled) for t, e, pooled in encoders if e is not None]
        else:
            self.encoders = [_Encoder(pipe.tokenizer, pipe.text_encoder, False, False)]
        self._empty: dict[Any, EncodedText] = {}

    # ------------------------------------------------------------ tokens

    def chunks(self, parsed: ParsedPrompt, encoder_index: int = 0) -> list[TokenChunk]:
        """The token chunks of a parsed prompt for one encoder."""
        encoder = self.encoders[encoder_index]
        return tokenize_prompt(parsed, encoder.tokenizer, window=self.window(encoder))

    def window(self, encoder: _Encoder) -> int:
        """Tokens per encoder pass (77 for CLIP): the tokenizer's limit, bounded by the position table."""
        positions = getattr(encoder.text_encoder.config, "max_position_embeddings", 77)
        return int(min(encoder.tokenizer.model_max_length or positions, positions))

    # ------------------------------------------------------------ encoding

    def encode_text(self, text: str) -> EncodedText:
        """One prompt (one side: positive or negative) through every text encoder."""
        import torch

        parsed = parse_prompt(text)
        per_encoder = [self.chunks(parsed, index) for index in range(len(self.encoders))]
        count = max(len(chunks) for chunks in per_encoder)
        hidden, pooled = [], None
        for encoder, chunks in zip(self.encoders, per_encoder):
            if len(chunks) < count:  # textual inversion can give the encoders different token counts
                chunks = chunks + self.chunks(parse_prompt(""), self.encoders.index(encoder)) * (count - len(chunks))
            states, first_pooled = self._run(encoder, chunks)
            hidden.append(states)
            if encoder.pooled:
                pooled = first_pooled
        states = hidden[0] if len(hidden) == 1 else torch.cat(hidden, dim=-1)  # k x 77 x D
        states = states.reshape(1, -1, states.shape[-1])
        dtype = self.encoders[-1].text_encoder.dtype
        return EncodedText(states.to(dtype=dtype, device=self.device), pooled, count)

    def _run(self, encoder: _Encoder, chunks: list[TokenChunk]) -> tuple[Tensor, Tensor | None]:
        """k chunks through one encoder in one batch: (k x 77 x D hidden states, weighted; 1 x P pooled or None)."""
        import torch

        ids = torch.tensor([chunk.ids for chunk in chunks], dtype=torch.long, device=self.device)
        kwargs: dict[str, Any] = {}
        if getattr(encoder.text_encoder.config, "use_attention_mask", False):
            kwargs["attention_mask"] = torch.tensor(
                [[1] * (chunk.length + 2) + [0] * (len(chunk.ids) - chunk.length - 2) for chunk in chunks],
                device=self.device,
            )
        if encoder.penultimate:
            output = encoder.text_encoder(ids, output_hidden_states=True, **kwargs)
            states = output.hidden_states[-2]
            pooled = output[0][:1] if encoder.pooled else None
        else:
            states, pooled = encoder.text_encoder(ids, **kwargs)[0], None
        weights = [chunk.weights for chunk in chunks]
        if any(weight != 1.0 for row in weights for weight in row):
            states = apply_weights(states, torch.tensor(weights, dtype=torch.float32))
        return states, pooled

    def empty(self, key: Any = None) -> EncodedText:
        """The encoding of an empty prompt (one chunk), used to pad; ``key`` names the text encoders' state (their
        LoRA weights): a new key encodes it again."""
        if key not in self._empty:
            self._empty.clear()
            self._empty[key] = self.encode_text("")
        return self._empty[key]

    def encode(self, positive: str, negative: str, key: Any = None) -> PromptEmbeddings:
        """Positive and negative prompt, padded to the same number of chunks."""
        cond, uncond = self.encode_text(positive), self.encode_text(negative)
        count = max(cond.chunks, uncond.chunks)
        return PromptEmbeddings(
            cond=self._padded(cond, count, key),
            uncond=self._padded(uncond, count, key),
            pooled_cond=cond.pooled,
            pooled_uncond=uncond.pooled,
        )

    def _padded(self, encoded: EncodedText, count: int, key: Any) -> Tensor:
        return pad_hidden(encoded.hidden, count, self.chunk_length(), lambda: self.empty(key).hidden)

    def pad_all(self, parts: Sequence[PromptEmbeddings], key: Any = None) -> list[PromptEmbeddings]:
        """Embeddings of a cross-fade padded to one sequence length, so they can be mixed."""
        length = max(part.cond.shape[1] for part in parts)
        out = []
        for part in parts:
            if part.cond.shape[1] == length:
                out.append(part)
                continue
            size = self.chunk_length()
            empty = lambda: self.empty(key).hidden  # noqa: E731
            out.append(
                PromptEmbeddings(
                    cond=pad_hidden(part.cond, length // size, size, empty),
                    uncond=pad_hidden(part.uncond, length // size, size, empty),
                    pooled_cond=part.pooled_cond,
                    pooled_uncond=part.pooled_uncond,
                )
            )
        return out

    def chunk_length(self) -> int:
        """Sequence length of one chunk (77)."""
        return self.window(self.encoders[0])


def pad_hidden(hidden: Tensor, count: int, size: int, empty: Callable[[], Tensor]) -> Tensor:
    """``hidden`` (1 x ``size``k x D) with empty chunks appended up to ``count`` chunks; ``empty()`` gives the empty
    chunk (encoded only when one is needed)."""
    import torch

    missing = count - hidden.shape[1] // size
    if missing <= 0:
        return hidden
    chunk = empty().to(device=hidden.device, dtype=hidden.dtype)
    return torch.cat([hidden, chunk.repeat(1, missing, 1)], dim=1)


def expand_multi_vector_names(text: str, tokenizer) -> str:
    """A textual-inversion name of k vectors -> ``name name_1 ... name_{k-1}``, the tokens diffusers'
    ``load_textual_inversion`` added for it (what its ``maybe_convert_prompt`` does, without tokenizing the whole
    text, which makes the tokenizer warn about long prompts)."""
    added = tokenizer.added_tokens_encoder
    for token in added:
        if f"{token}_1" not in added or token not in text:
            continue
        pieces, index = [token], 1
        while f"{token}_{index}" in added:
            pieces.append(f"{token}_{index}")
            index += 1
        text = text.replace(token, " ".join(pieces))
    return text
