"""Prompts by frame: Deforum's ``positive --neg negative``, global prefix/suffix, backtick math, cross-fades.

Backtick math is evaluated per frame with the safe evaluator: ``"a cat:`0.5+0.5*sin(t/8)`"`` becomes
``"a cat:0.5"``, ``"a cat:0.562"`` ... on successive frames.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from animator.errors import AnimatorError
from animator.keyframes.expressions import compile_expression, evaluate_expression
from animator.keyframes.prompt_syntax import check_prompt_syntax
from animator.keyframes.schedule import TimeBase, parse_frame_key

_BACKTICK = re.compile(r"`([^`]*)`")
_NEG = re.compile(r"\s*--neg\b", re.IGNORECASE)


@dataclass(frozen=True)
class FramePrompt:
    """The prompt of one frame.

    Attributes:
        positive: what to draw (prefix and suffix applied, backtick math evaluated).
        negative: what to avoid.
        mix: ``((positive, negative, weight), ...)``, weights summing to 1: one entry normally, two while a new
            prompt cross-fades in (``prompt_blend``). ``positive``/``negative`` are those of the heavier entry.
    """

    positive: str
    negative: str = ""
    mix: tuple[tuple[str, str, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.mix:
            object.__setattr__(self, "mix", ((self.positive, self.negative, 1.0),))

    def __str__(self) -> str:
        return f"{self.positive} --neg {self.negative}" if self.negative else self.positive


def split_prompt(text: str) -> tuple[str, str]:
    """``"a forest --neg blurry"`` -> ``("a forest", "blurry")``."""
    parts = _NEG.split(text, maxsplit=1)
    positive = parts[0]
    negative = parts[1] if len(parts) > 1 else ""
    return _tidy(positive), _tidy(negative)


def _tidy(text: str) -> str:
    return " ".join(text.split()).strip(" ,")


def _join(*parts: str) -> str:
    return ", ".join(p for p in (_tidy(x) for x in parts) if p)


def check_prompt(text: str, allowed_names: frozenset[str] | set[str] | None = None) -> None:
    """Check backtick expressions, emphasis brackets and LoRA tags in a prompt (before any frame is rendered)."""
    if text.count("`") % 2:
        raise AnimatorError("unpaired backtick in prompt", hint="backtick math is written `0.5+0.5*sin(t/8)`")
    for match in _BACKTICK.finditer(text):
        compile_expression(match.group(1), allowed_names)
    for side in split_prompt(_BACKTICK.sub("1", text)):  # emphasis and <lora:...> tags, a number for each backtick
        check_prompt_syntax(side)


def _check_rendered(text: str, field: str, frame: int | None = None) -> None:
    """The web UI syntax of a prompt as a frame renders it (backtick math evaluated), or AnimatorError at ``field``."""
    try:
        check_prompt_syntax(_BACKTICK.sub("1", text))
    except AnimatorError as exc:
        where = f"frame {frame}: " if frame is not None else ""
        raise AnimatorError(where + exc.message, field=field, hint=exc.hint) from None


def format_number(value: float) -> str:
    """Compact: 3 decimals at most, no trailing zeros (0.73, 1, -0.125)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _render_text(text: str, frames: np.ndarray, variables: Mapping) -> list[str]:
    """``text`` with backtick math evaluated for each frame in ``frames``."""
    pieces = _BACKTICK.split(text)  # even: literal text, odd: expressions
    if len(pieces) == 1:
        return [text] * len(frames)
    columns: list[list[str]] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            columns.append([piece] * len(frames))
            continue
        expression = compile_expression(piece)
        values = evaluate_expression(expression, {k: _take(v, frames) for k, v in variables.items()})
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), frames.shape)
        columns.append([format_number(v) for v in values])
    return ["".join(row) for row in zip(*columns)]


def _take(value, frames: np.ndarray):
    return value[frames] if isinstance(value, np.ndarray) and value.ndim == 1 else value


def evaluate_prompts(
    prompts: Sequence[tuple[str, str]],
    timebase: TimeBase,
    variables: Mapping[str, float | np.ndarray] | None = None,
    *,
    prefix: str = "",
    suffix: str = "",
    negative_prompt: str = "",
    blend: int = 0,
    stop: int | None = None,
) -> list[FramePrompt]:
    """One :class:`FramePrompt` per frame (of frames ``0 .. stop-1`` when ``stop`` is given).

    Args:
        prompts: ``(frame key, "positive --neg negative")`` pairs, keys as in schedules (``0``, ``5s``, ``max_f-10``).
        timebase: frame count, fps, seed, tempo.
        variables: extra per-frame variables (audio features), ``(frames,)`` arrays.
        prefix / suffix: joined around every positive prompt with ", ".
        negative_prompt: joined after every negative prompt.
        blend: frames over which a new prompt cross-fades in from the previous one.
        stop: evaluate only the frames before this one (a render of the first frames of a long animation).

    Before the first prompt keyframe the first prompt holds; with no prompts every frame gets an empty prompt.
    """
    n = timebase.frames if stop is None else min(stop, timebase.frames)
    t = np.arange(n)
    all_variables = {**timebase.key_variables(), "t": t.astype(np.float64), **dict(variables or {})}
    for field, part in (("prompt_prefix", prefix), ("prompt_suffix", suffix), ("negative_prompt", negative_prompt)):
        _check_rendered(part, field)
    if not prompts:
        return [FramePrompt(_join(prefix, suffix), _tidy(negative_prompt))] * n
    keyed = sorted(((timebase.resolve(parse_frame_key(k)), i, text) for i, (k, text) in enumerate(prompts)))
    checked: set[str] = set()
    starts = np.array([k[0] for k in keyed])
    active = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(keyed) - 1)

    rendered: list[tuple[str, str] | None] = [None] * n
    fading: dict[int, tuple[str, str]] = {}  # frame -> the previous prompt while a new one cross-fades in
    # Evaluate each prompt's backticks over the frames where it is shown (itself, or fading out during a blend).
    for index, (_, _, text) in enumerate(keyed):
        shown = active == index
        if blend and index + 1 < len(keyed):
            start_next = keyed[index + 1][0]
            shown |= (t >= start_next) & (t < start_next + blend)
        frames = np.flatnonzero(shown)
        if frames.size == 0:
            continue
        for frame, line in zip(frames, _render_text(text, frames, all_variables)):
            positive, negative = split_prompt(line)
            if line not in checked:  # each distinct text once: emphasis and weights as the frame will have them
                checked.add(line)
                for side in (positive, negative):
                    _check_rendered(side, f"prompts.{prompts[keyed[index][1]][0]}", int(frame))
            pair = (_join(prefix, positive, suffix), _join(negative, negative_prompt))
            if active[frame] == index:
                rendered[frame] = pair
            else:
                fading[frame] = pair

    out = []
    for frame in range(n):
        new = rendered[frame]
        old = fading.get(frame)
        index = active[frame]
        if old is None or index == 0 or blend <= 0:
            out.append(FramePrompt(new[0], new[1]))
            continue
        weight = (frame - keyed[index][0] + 1) / (blend + 1)  # 1/(B+1) at the keyframe ... B/(B+1), then 1
        heavy = new if weight >= 0.5 else old
        out.append(FramePrompt(heavy[0], heavy[1], ((old[0], old[1], 1.0 - weight), (new[0], new[1], weight))))
    return out
