"""Textual-inversion embeddings named in prompts, loaded once from ``backends.embedding_dirs``.

A file's stem is its token (``easynegative.safetensors`` -> ``easynegative``), as in the web UI: a prompt that has
the stem as a word uses the embedding's vectors. ``embedding:NAME`` says the same and makes a missing file an error.
Files are loaded with diffusers' ``load_textual_inversion``: A1111 ``.pt`` (``string_to_param``), ``.safetensors``
with ``emb_params``, and SDXL files with ``clip_l`` / ``clip_g`` (one part for each text encoder).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from animator.errors import AnimatorError
from animator.keyframes.prompt_syntax import (
    EMBEDDING_SUFFIXES,
    available_names,
    bounded,
    find_network_file,
    words_in,
)

__all__ = ["PromptEmbeddingFiles", "read_embedding_file"]


def read_embedding_file(path: Path) -> dict:
    """The tensors of an embedding file (``.safetensors`` or a torch pickle of tensors only)."""
    import torch

    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors / pickle errors: not an embedding file we can read
        raise AnimatorError(
            f"{path} is not a readable embedding file: {bounded(str(exc), 200)}",
            field="backends.embedding_dirs",
        ) from exc


class PromptEmbeddingFiles:
    """The textual-inversion embeddings of one pipeline.

    Args:
        pipe: a diffusers SD / SDXL pipeline (``load_textual_inversion``).
        folders: ``backends.embedding_dirs``, in order (an earlier folder wins for a name found twice).
        sdxl: load ``clip_l`` into the first text encoder and ``clip_g`` into the second.
    """

    def __init__(self, pipe, folders: Sequence[str | os.PathLike] = (), *, sdxl: bool = False) -> None:
        self.pipe = pipe
        self.folders = tuple(Path(folder).expanduser() for folder in folders)
        self.sdxl = sdxl
        self.available = available_names(self.folders, EMBEDDING_SUFFIXES)  # stem -> file
        self.loaded: dict[str, Path] = {}

    def names_in(self, text: str) -> list[str]:
        """Embedding names used in ``text`` (whole words that are stems of files in the folders)."""
        return words_in(text, self.available)

    def ensure(self, texts: Iterable[str], required: Iterable[str] = ()) -> None:
        """Load the embeddings ``texts`` use; ``required`` names (written ``embedding:NAME``) must exist."""
        for name in required:
            if name not in self.loaded and name not in self.available:
                path = find_network_file(name, self.folders, EMBEDDING_SUFFIXES)
                if path is None:
                    searched = ", ".join(map(str, self.folders)) or "no folder: backends.embedding_dirs is empty"
                    raise AnimatorError(
                        f"embedding {bounded(name, 80)!r} not found (looked for {name}"
                        f"{{{','.join(EMBEDDING_SUFFIXES)}}} in {searched})",
                        field="backends.embedding_dirs",
                        hint="set backends.embedding_dirs to the folder that holds it, or fix the name",
                    )
                self.available[name] = path
        for text in texts:
            for name in self.names_in(text):
                if name not in self.loaded:
                    self._load(name, self.available[name])

    def _load(self, name: str, path: Path) -> None:
        import torch

        state = read_embedding_file(path)
        try:
            with torch.inference_mode(False):  # new rows of the token embedding table, outside inference mode
                if self.sdxl:
                    if "clip_l" not in state or "clip_g" not in state:
                        raise ValueError(f"an SDXL embedding holds clip_l and clip_g, this one holds {sorted(state)}")
                    pipe = self.pipe
                    pipe.load_textual_inversion(
                        state["clip_l"], token=name, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
                    )
                    pipe.load_textual_inversion(
                        state["clip_g"], token=name, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
                    )
                else:
                    if "clip_g" in state:
                        raise ValueError("it is an SDXL embedding (clip_l + clip_g)")
                    self.pipe.load_textual_inversion(state, token=name)
        except Exception as exc:  # diffusers raises ValueError for a wrong shape, a token already in the vocabulary
            raise AnimatorError(
                f"could not load embedding {name!r} ({path}): {bounded(str(exc), 300)}",
                field="backends.embedding_dirs",
                hint="is it an embedding for this model's architecture (SD 1.x: 768 wide, SD 2.x: 1024, SDXL: "
                "clip_l + clip_g)? a name that is already a word of the tokenizer needs another file name",
            ) from exc
        self.loaded[name] = path

    def describe(self) -> dict:
        return {name: str(path) for name, path in self.loaded.items()}
