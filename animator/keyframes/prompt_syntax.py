"""The AUTOMATIC1111 web UI's prompt syntax, which Deforum users write: emphasis, BREAK, ``<lora:NAME:WEIGHT>`` tags.

Emphasis (the web UI's ``parse_prompt_attention``, same products in the same order):

- ``(text)`` multiplies the attention weight of its tokens by 1.1, ``((text))`` by 1.1 * 1.1, ``[text]`` divides
  by 1.1, ``(text:1.5)`` multiplies by 1.5; nesting multiplies; ``\\(`` ``\\)`` ``\\[`` ``\\]`` are literal brackets.
- ``BREAK`` (upper case, a word of its own) ends the current 75-token chunk.
- Unlike the web UI, which silently closes unbalanced brackets at the end of the prompt, an unbalanced bracket or
  a ``(text:WEIGHT)`` whose weight is not a number is an error (``AnimatorError``, field ``prompt``).

Extra networks: ``<lora:NAME:WEIGHT>`` (``<lora:NAME>`` means weight 1; A1111's ``<lora:NAME:TE:UNET>`` takes the
first weight) is removed from the text and applied by the denoiser; ``embedding:NAME`` names a textual-inversion
file that must exist (a bare word that is the stem of a file in ``embedding_dirs`` is used too, as in the web UI).

Nothing here imports torch: the keyframe loader and ``animator prompt`` use it without a model.

Example:
    >>> [(s.text, round(s.weight, 4)) for s in parse_emphasis("a ((house)) on [a] (hill:0.5)")]
    [('a ', 1.0), ('house', 1.21), (' on ', 1.0), ('a', 0.9091), (' ', 1.0), ('hill', 0.5)]
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError

__all__ = [
    "Segment",
    "LoraTag",
    "ParsedPrompt",
    "parse_emphasis",
    "split_extra_networks",
    "parse_prompt",
    "check_prompt_syntax",
    "mixed_lora_weights",
    "lora_weights_by_frame",
    "find_network_file",
    "find_networks",
    "check_networks",
    "NetworkReport",
    "repair_brackets",
    "bounded",
    "ROUND_MULTIPLIER",
    "LORA_SUFFIXES",
    "EMBEDDING_SUFFIXES",
]

ROUND_MULTIPLIER = 1.1  # (text)
SQUARE_MULTIPLIER = 1 / 1.1  # [text]
LORA_SUFFIXES = (".safetensors",)
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
# Longest piece of prompt text put into an error message: a 1 MB prompt must not flood the terminal.
MESSAGE_CHARS = 200

# One token of the emphasis grammar; group 1 is the text after ':' when it closes a round bracket.
_ATTENTION = re.compile(
    r"""
    \\\(|\\\)|\\\[|\\]|\\\\|\\|    # escapes: \( \) \[ \] \\ and a lone backslash
    \(|\[|                          # openers
    :\s*([^()\[\]:\\]*?)\s*\)|      # :WEIGHT)
    \)|]|                           # closers
    [^\\()\[\]:]+|                  # plain text
    :                               # a colon that closes nothing is text
    """,
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
# <kind:name[:weight[:more]]>; LoRA names may hold brackets and dots ([LoRA][Horror]s4w3d0ffBlend_v10).
_EXTRA_NETWORK = re.compile(r"<(\w+):([^:>]+)(?::([^:>]*))?(?::[^>]*)?>")
_EMBEDDING_REF = re.compile(r"\bembedding:([\w.\-]+)")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Segment:
    """A run of prompt text with one attention weight, or a chunk break (``BREAK``)."""

    text: str
    weight: float = 1.0
    is_break: bool = False


@dataclass(frozen=True)
class LoraTag:
    """``<lora:NAME:WEIGHT>``."""

    name: str
    weight: float


@dataclass(frozen=True)
class ParsedPrompt:
    """One prompt as the model will be told it.

    Attributes:
        text: the prompt without its ``<lora:...>`` tags (emphasis syntax kept: this is what is cached and encoded).
        segments: the text by attention weight, with BREAK markers (see :func:`parse_emphasis`).
        loras: the LoRA tags, in order of appearance.
        embeddings: names written ``embedding:NAME`` (those must exist); ``NAME`` alone is in ``segments``' text.
    """

    text: str
    segments: tuple[Segment, ...]
    loras: tuple[LoraTag, ...] = ()
    embeddings: tuple[str, ...] = ()


def bounded(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters for a message (``'...(+N characters)'`` says how much was cut)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...(+{len(text) - limit} characters)"


def _error(message: str, text: str, position: int | None = None, hint: str | None = None) -> AnimatorError:
    where = ""
    if position is not None:
        start = max(0, position - 30)
        excerpt = ("..." if start else "") + text[start : position + 30] + ("..." if position + 30 < len(text) else "")
        where = f" (character {position + 1}: {bounded(excerpt, 80)!r})"
    return AnimatorError(message + where, field="prompt", hint=hint)


def _weight(value: str, text: str, position: int) -> float:
    if not _NUMBER.fullmatch(value):
        raise _error(
            f"the weight {bounded(value, 40)!r} in (text:WEIGHT) is not a number",
            text,
            position,
            hint="write (text:1.3); backtick math works too: (text:`1+0.3*sin(t/8)`); "
            "a colon meant as text goes outside the brackets",
        )
    return float(value)


def parse_emphasis(text: str) -> list[Segment]:
    """The web UI's emphasis parse: text runs with their attention weights, adjacent equal weights merged.

    Raises:
        AnimatorError: an unbalanced bracket, or a ``(text:WEIGHT)`` whose weight is not a number.
    """
    parts: list[list] = []  # [text, weight, is_break]
    round_open: list[tuple[int, int]] = []  # (index into parts, character position)
    square_open: list[tuple[int, int]] = []

    def multiply(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] *= factor

    for match in _ATTENTION.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            parts.append([token[1:], 1.0, False])
        elif token == "(":
            round_open.append((len(parts), match.start()))
        elif token == "[":
            square_open.append((len(parts), match.start()))
        elif weight is not None:
            if not round_open:
                raise _error("unbalanced brackets in prompt: ')' closes nothing", text, match.end() - 1)
            multiply(round_open.pop()[0], _weight(weight, text, match.start()))
        elif token == ")":
            if not round_open:
                raise _error("unbalanced brackets in prompt: ')' closes nothing", text, match.start())
            multiply(round_open.pop()[0], ROUND_MULTIPLIER)
        elif token == "]":
            if not square_open:
                raise _error("unbalanced brackets in prompt: ']' closes nothing", text, match.start())
            multiply(square_open.pop()[0], SQUARE_MULTIPLIER)
        else:
            for index, piece in enumerate(_BREAK.split(token)):
                if index:
                    parts.append(["BREAK", 1.0, True])
                parts.append([piece, 1.0, False])
    unclosed = round_open or square_open
    if unclosed:
        bracket = "(" if round_open else "["
        raise _error(
            f"unbalanced brackets in prompt: '{bracket}' is never closed",
            text,
            unclosed[-1][1],
            hint=r"close it, or write \( \[ for a literal bracket",
        )
    merged: list[list] = []
    for part in parts:
        if merged and not part[2] and not merged[-1][2] and merged[-1][1] == part[1]:
            merged[-1][0] += part[0]
        elif part[2] or part[0] or not merged:
            merged.append(part)
    merged = [part for part in merged if part[2] or part[0]] or [["", 1.0, False]]
    return [Segment(part[0], float(part[1]), bool(part[2])) for part in merged]


def split_extra_networks(text: str) -> tuple[str, tuple[LoraTag, ...]]:
    """``text`` without its ``<lora:...>`` tags, and the tags.

    Raises:
        AnimatorError: a weight that is not a number, or an extra network other than ``lora`` (hypernetworks ...).
    """
    tags = []
    for match in _EXTRA_NETWORK.finditer(text):
        kind, name, weight = match.group(1), match.group(2).strip(), match.group(3)
        if kind.lower() not in ("lora", "lyco"):
            raise _error(
                f"<{kind}:...> is not supported (only <lora:NAME:WEIGHT>)",
                text,
                match.start(),
                hint="remove the tag; a hypernetwork has no diffusers equivalent",
            )
        if weight is None or not weight.strip():
            value = 1.0
        elif _NUMBER.fullmatch(weight.strip()):
            value = float(weight)
        else:
            raise _error(
                f"the weight {bounded(weight, 40)!r} of <lora:{bounded(name, 60)}:...> is not a number",
                text,
                match.start(),
                hint="write <lora:NAME:0.8>; backtick math works too: <lora:NAME:`0.5+0.5*sin(t/8)`>",
            )
        tags.append(LoraTag(name, value))
    return _EXTRA_NETWORK.sub("", text), tuple(tags)


def parse_prompt(text: str) -> ParsedPrompt:
    """LoRA tags, ``embedding:NAME`` references and emphasis of one prompt (one side: positive or negative)."""
    without_tags, loras = split_extra_networks(text)
    embeddings = tuple(dict.fromkeys(_EMBEDDING_REF.findall(without_tags)))
    plain = _EMBEDDING_REF.sub(lambda m: m.group(1), without_tags)
    return ParsedPrompt(plain, tuple(parse_emphasis(plain)), loras, embeddings)


def check_prompt_syntax(text: str) -> None:
    """Raise AnimatorError if ``text`` (backtick math already replaced by numbers) is not a valid prompt."""
    parse_prompt(text)


def mixed_lora_weights(entries: Iterable[tuple[str, str, float]]) -> dict[str, float]:
    """The LoRA weights of one frame: each name's weights summed over the positive and negative prompt of an entry
    (``<lora:x:0.5>`` twice is 1.0, as the web UI applies both), then averaged over a cross-fade's entries by their
    weight (a LoRA fades out with its prompt)."""
    entries = list(entries)
    total = sum(weight for _, _, weight in entries) or 1.0
    weights: dict[str, float] = {}
    for positive, negative, share in entries:
        for side in (positive, negative):
            for tag in split_extra_networks(side)[1]:
                weights[tag.name] = weights.get(tag.name, 0.0) + tag.weight * share / total
    return weights


def lora_weights_by_frame(prompts: Sequence) -> dict[str, np.ndarray]:
    """``{"lora.NAME": (frames,) float64}`` for the run's ``schedules.csv``: the weight each LoRA is applied with on
    every frame (0 where its tag is absent). ``prompts`` are :class:`animator.keyframes.prompts.FramePrompt` s."""
    per_frame = [mixed_lora_weights(prompt.mix) for prompt in prompts]
    names = sorted({name for weights in per_frame for name in weights})
    return {f"lora.{name}": np.array([weights.get(name, 0.0) for weights in per_frame]) for name in names}


def find_network_file(name: str, folders: Iterable[str | os.PathLike], suffixes: Sequence[str]) -> Path | None:
    """The first ``folder/NAME<suffix>`` that exists (folders in order, then suffixes in order), or None.

    A name may hold a sub-folder (``styles/ink``) but may not leave its folder (``../x``)."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    for folder in folders:
        for suffix in suffixes:
            candidate = Path(folder).expanduser() / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def available_names(folders: Iterable[str | os.PathLike], suffixes: Sequence[str]) -> dict[str, Path]:
    """``{stem: path}`` of the files with ``suffixes`` directly in ``folders`` (an earlier folder wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in suffixes and path.is_file():
                found.setdefault(path.stem, path)
    return found


def words_in(text: str, names: Mapping[str, object] | Iterable[str]) -> list[str]:
    """The ``names`` that occur in ``text`` as whole words (the web UI uses an embedding where its name is a word)."""
    found = []
    for name in names:
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            found.append(name)
    return found


@dataclass(frozen=True)
class NetworkReport:
    """The LoRAs and embeddings some prompts name, each with its file (None: not found), and the folders searched.

    ``embeddings`` holds the names written ``embedding:NAME`` and the bare words that are stems of embedding files.
    """

    loras: tuple[tuple[str, Path | None], ...]
    embeddings: tuple[tuple[str, Path | None], ...]
    lora_dirs: tuple[Path, ...]
    embedding_dirs: tuple[Path, ...]

    def missing(self) -> list[str]:
        return [f"LoRA {name!r}" for name, path in self.loras if path is None] + [
            f"embedding {name!r}" for name, path in self.embeddings if path is None
        ]


def find_networks(
    texts: Iterable[str], lora_dirs: Iterable[str | os.PathLike] = (), embedding_dirs: Iterable[str | os.PathLike] = ()
) -> NetworkReport:
    """Look up the files of the LoRAs and embeddings that ``texts`` (prompts, backtick math evaluated) name."""
    lora_dirs = tuple(Path(folder).expanduser() for folder in lora_dirs)
    embedding_dirs = tuple(Path(folder).expanduser() for folder in embedding_dirs)
    stems = available_names(embedding_dirs, EMBEDDING_SUFFIXES)
    loras: dict[str, Path | None] = {}
    embeddings: dict[str, Path | None] = {}
    for text in texts:
        parsed = parse_prompt(text)
        for tag in parsed.loras:
            if tag.name not in loras:
                loras[tag.name] = find_network_file(tag.name, lora_dirs, LORA_SUFFIXES)
        for name in parsed.embeddings:
            if name not in embeddings:
                embeddings[name] = stems.get(name) or find_network_file(name, embedding_dirs, EMBEDDING_SUFFIXES)
        for name in words_in(parsed.text, stems):
            embeddings.setdefault(name, stems[name])
    return NetworkReport(tuple(loras.items()), tuple(embeddings.items()), lora_dirs, embedding_dirs)


def check_networks(
    texts: Iterable[str], lora_dirs: Iterable[str | os.PathLike] = (), embedding_dirs: Iterable[str | os.PathLike] = ()
) -> NetworkReport:
    """:func:`find_networks`, raising AnimatorError for the first LoRA or ``embedding:NAME`` without a file: the
    check a render makes before loading any model (``texts``: every rendered frame's prompts)."""
    report = find_networks(texts, lora_dirs, embedding_dirs)
    for kind, found, folders, field, suffixes in (
        ("LoRA", report.loras, report.lora_dirs, "backends.lora_dirs", LORA_SUFFIXES),
        ("embedding", report.embeddings, report.embedding_dirs, "backends.embedding_dirs", EMBEDDING_SUFFIXES),
    ):
        for name, path in found:
            if path is None:
                searched = ", ".join(map(str, folders)) or f"no folder: {field} is empty"
                raise AnimatorError(
                    f"{kind} {bounded(name, 80)!r} not found (looked for {bounded(name, 80)}"
                    f"{'|'.join(suffixes)} in {searched})",
                    field=field,
                    hint=f"set {field} to the folder that holds it, or fix the name in the prompt",
                )
    return report


_REPAIR_TOKEN = re.compile(r"`[^`]*`|\\.|[()\[\]]", re.S)


def repair_brackets(text: str) -> str:
    """``text`` with unbalanced brackets written out as the web UI reads them, so that it parses here with the same
    meaning: a closer that closes nothing becomes a literal (``\\)``), an opener never closed is closed at the end
    (the web UI applies its weight to the rest of the prompt). Backtick math and escapes are left alone.

    >>> repair_brackets("ENTER YOUR PROMPT :)"), repair_brackets("a (castle, [moat")
    ('ENTER YOUR PROMPT :\\\\)', 'a (castle, [moat])')
    """
    out: list[str] = []
    stack: list[str] = []
    position = 0
    for match in _REPAIR_TOKEN.finditer(text):
        token = match.group(0)
        out.append(text[position : match.start()])
        position = match.end()
        if token in ("(", "["):
            stack.append(token)
        elif token in (")", "]"):
            opener = "(" if token == ")" else "["
            if opener in stack:
                # the web UI keeps one stack per bracket kind: this closes the innermost opener of its kind
                del stack[len(stack) - 1 - stack[::-1].index(opener)]
            else:
                token = "\\" + token
        out.append(token)
    out.append(text[position:])
    closers = "".join(")" if opener == "(" else "]" for opener in reversed(stack))
    return "".join(out) + closers
