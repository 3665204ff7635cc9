"""Schedule strings: Deforum's keyframe grammar, parsed once into frozen objects, with its parser bugs fixed.

A schedule is ``frame:(value), frame:(value), ...``::

    0:(1.0), 30:(1.5), 60:(1 + 0.5*sin(t/8))

- a **number** keyframe is a point; frames between two points are interpolated (linear by default; ``step``,
  ``cubic`` or ``ease`` on request);
- an **expression** keyframe is evaluated at every frame from its keyframe until the next keyframe, with ``t`` the
  frame index, ``max_f`` the last frame index, ``fps``, ``s`` the seed and audio variables when audio is configured;
  frames between a number and a later expression ramp to the expression's value at its keyframe;
- values hold before the first and after the last keyframe.

Fixed relative to Deforum: commas inside function calls (``max(a, b)``) are not keyframe separators; a schedule
without frame 0 holds its first value; ``1e-3``, ``1.`` and ``( 0.5 )`` are numbers; a bare number or expression
(``0.5``, ``1+sin(t)``) is a constant schedule. Frame keys may be integers, expressions of ``max_f``, ``fps`` and
``s`` (``max_f-10``, quoted or not), seconds (``2.5s``) or beats (``8b``, with ``bpm`` or audio).

Keyframes beyond the last frame still shape the frames before them (a 12-frame preview of a 240-frame file shows
the same values as the full render); importers drop them where Deforum does.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from animator.choices import INTERPOLATIONS
from animator.errors import AnimatorError
from animator.keyframes.expressions import (
    Expression,
    check_expression_length,
    compile_expression,
    evaluate_expression,
)

KEY_NAMES = frozenset({"max_f", "fps", "s"})  # what a frame-key expression may read
BASE_NAMES = frozenset({"t", "max_f", "fps", "s"})  # what a value expression may always read
MAX_SCHEDULE_CHARS = 5_000_000  # a recorded schedule with one keyframe per frame can be long; 6,001 frames ~ 150 kB

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
_SIMPLE_KEYFRAME = re.compile(r"^\s*(\d+)\s*:\s*\(\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*\)\s*$")
_TIME = re.compile(r"^(\d+\.?\d*|\.\d+)\s*([sb])$")


@dataclass(frozen=True)
class FrameKey:
    """Where a keyframe sits: ``text`` as written; ``frame`` for a plain integer, else resolved by a TimeBase."""

    text: str
    frame: int | None = None
    seconds: float | None = None
    beats: float | None = None
    expression: Expression | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Keyframe:
    """One ``key:(value)`` pair: a plain ``number`` or an ``expression`` (exactly one is set)."""

    key: FrameKey
    number: float | None = None
    expression: Expression | None = None

    @property
    def value_text(self) -> str:
        return repr(self.number) if self.expression is None else self.expression.text

    def __str__(self) -> str:
        return f"{self.key}:({self.value_text})"


@dataclass(frozen=True)
class TimeBase:
    """What frame keys and expressions need to know about the animation.

    Attributes:
        frames: number of frames N (``max_f`` = N - 1).
        fps: frames per second (seconds keys, the ``fps`` variable).
        seed: the ``s`` variable.
        bpm: tempo for beat keys when there is no detected beat grid.
        beat_frames: detected beat positions (frame indices) from audio analysis; wins over ``bpm``.
    """

    frames: int
    fps: float = 24.0
    seed: float = -1.0
    bpm: float | None = None
    beat_frames: tuple[int, ...] | None = None

    @property
    def max_f(self) -> int:
        return self.frames - 1

    def key_variables(self) -> dict[str, float]:
        return {"max_f": float(self.max_f), "fps": float(self.fps), "s": float(self.seed)}

    def resolve(self, key: FrameKey) -> int:
        """The frame index a key stands for (may lie outside ``[0, frames)``)."""
        if key.frame is not None:
            return key.frame
        if key.seconds is not None:
            return int(round(key.seconds * self.fps))
        if key.beats is not None:
            return self._beat_frame(key)
        return int(evaluate_expression(key.expression, self.key_variables()))  # truncates like Deforum's int()

    def _beat_frame(self, key: FrameKey) -> int:
        beats = key.beats
        if self.beat_frames is not None and len(self.beat_frames) >= 2:
            grid = np.asarray(self.beat_frames, dtype=np.float64)
            index = np.arange(len(grid), dtype=np.float64)
            if beats <= index[-1]:
                return int(round(float(np.interp(beats, index, grid))))
            step = (grid[-1] - grid[0]) / (len(grid) - 1)  # extrapolate with the mean beat length
            return int(round(grid[-1] + (beats - index[-1]) * step))
        if self.bpm is None:
            raise AnimatorError(
                f"beat time `{key.text}` needs a tempo",
                hint="set `bpm:` at the top of the file or configure `audio:` so beats can be detected",
            )
        return int(round(beats * 60.0 / self.bpm * self.fps))


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: an ordered tuple of keyframes plus how to interpolate between numbers.

    ``str(schedule)`` gives canonical text that parses back to an equal schedule.
    """

    name: str
    keyframes: tuple[Keyframe, ...]
    interpolation: str = "linear"

    def __str__(self) -> str:
        return ", ".join(str(k) for k in self.keyframes)

    @property
    def names(self) -> frozenset[str]:
        """Variable names the value expressions read."""
        out: set[str] = set()
        for keyframe in self.keyframes:
            if keyframe.expression is not None:
                out |= keyframe.expression.names
        return frozenset(out)

    @property
    def uses_beats(self) -> bool:
        return any(k.key.beats is not None for k in self.keyframes)

    @property
    def is_constant(self) -> bool:
        return len(self.keyframes) == 1 and self.keyframes[0].expression is None

    def key_frames(self, timebase: TimeBase) -> list[int]:
        return [timebase.resolve(k.key) for k in self.keyframes]

    def evaluate(
        self,
        timebase: TimeBase,
        variables: Mapping[str, float | np.ndarray] | None = None,
        *,
        stop: int | None = None,
    ) -> np.ndarray:
        """Values at frames ``0 .. timebase.frames-1`` (``0 .. stop-1`` when ``stop`` is given: the same values as
        the full evaluation's first ``stop``, without the work of the frames after them).

        Args:
            timebase: frame count, fps, seed, tempo.
            variables: extra variables (audio features as ``(frames,)`` arrays, or scalars).
            stop: evaluate only the frames before this one.

        Returns:
            float64 array ``(frames,)`` (``(stop,)``).
        """
        try:
            return _evaluate(self, timebase, dict(variables or {}), timebase.frames if stop is None else stop)
        except AnimatorError as exc:
            raise exc.with_location(field=self.name) from None


_SPECIAL = {sep: re.compile(r"[\"'()\[\]{}" + re.escape(sep) + "]") for sep in ",:"}


def _split_top_level(text: str, separator: str, *, first_only: bool = False) -> list[str]:
    """Split on ``separator`` outside parentheses and quotes (visits only the special characters: recorded
    schedules are 100 kB strings)."""
    parts, depth, quote, start = [], 0, None, 0
    for match in _SPECIAL[separator].finditer(text):
        ch, i = match.group(), match.start()
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise AnimatorError(f"unbalanced `)` at character {i + 1} of `{_short(text)}`")
        elif depth == 0:  # the separator
            parts.append(text[start:i])
            start = i + 1
            if first_only:
                break
    if not first_only or len(parts) == 0:
        if depth != 0 or quote:
            what = "quote" if quote else "`(`"
            raise AnimatorError(f"unclosed {what} in `{_short(text)}`", hint="every `(` needs a `)`")
    parts.append(text[start:])
    return parts


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _unwrap(text: str) -> str:
    """Strip whitespace, matching outer quotes and redundant outer parentheses: ``( "0.5" )`` -> ``0.5``.

    One pass over the text whatever the nesting: each ``(`` is matched once, then layers are peeled by index.
    """
    partner = _paren_partners(text)
    low, high = 0, len(text)  # the kept text is text[low:high]
    while True:
        while low < high and text[low].isspace():
            low += 1
        while high > low and text[high - 1].isspace():
            high -= 1
        if high - low >= 2 and text[low] == text[high - 1] and text[low] in "\"'":
            low, high = low + 1, high - 1
        elif high - low >= 2 and text[low] == "(" and partner.get(low) == high - 1:
            low, high = low + 1, high - 1
        else:
            return text[low:high]


def _paren_partners(text: str) -> dict[int, int]:
    """Index of each ``(`` -> index of the ``)`` that closes it (quotes are not special, as in expressions)."""
    partners, open_at = {}, []
    for match in re.finditer(r"[()]", text):
        if match.group() == "(":
            open_at.append(match.start())
        elif open_at:
            partners[open_at.pop()] = match.start()
    return partners


def parse_frame_key(text: str | int | float) -> FrameKey:
    """Parse a frame key: ``30``, ``"max_f-10"``, ``2.5s`` (seconds), ``8b`` (beats)."""
    if type(text) is str and text.strip().isdigit():  # the common case, 6,000 times in a recorded schedule
        frame = int(text)
        return FrameKey(str(frame), frame=frame)
    if isinstance(text, bool):
        raise AnimatorError(f"frame key must be a number, time or expression, got {text!r}")
    if isinstance(text, (int, float, np.integer, np.floating)):
        if float(text) != int(text):
            raise AnimatorError(f"frame key {text!r} is not a whole frame number", hint="use 2.5s for seconds")
        return FrameKey(str(int(text)), frame=int(text))
    raw = _unwrap(check_expression_length(str(text)))
    if not raw:
        raise AnimatorError("empty frame key", hint="write keyframes as frame:(value), e.g. 0:(1.0), 30:(2)")
    if _INT.match(raw):
        return FrameKey(str(int(raw)), frame=int(raw))
    if _NUMBER.match(raw):
        value = float(raw)
        if value != int(value):
            raise AnimatorError(f"frame key `{raw}` is not a whole frame number", hint="use 2.5s for seconds")
        return FrameKey(str(int(value)), frame=int(value))
    time = _TIME.match(raw)
    if time:
        amount = float(time.group(1))
        return FrameKey(raw, seconds=amount) if time.group(2) == "s" else FrameKey(raw, beats=amount)
    expression = compile_expression(raw, KEY_NAMES)
    return FrameKey(expression.text, expression=expression)


def parse_value(
    text: str | int | float, allowed_names: frozenset[str] | None = None
) -> tuple[float | None, Expression | None]:
    """A keyframe value: ``(number, None)`` for a plain number (also ``1e-3``, ``( 0.5 )``) or ``(None, expr)``."""
    if isinstance(text, bool):
        return float(text), None
    if isinstance(text, (int, float, np.integer, np.floating)):
        return float(text), None
    raw = _unwrap(check_expression_length(str(text)))
    if _NUMBER.match(raw):
        return float(raw), None
    expression = compile_expression(raw, allowed_names)
    tree = expression.tree.body
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, (ast.UAdd, ast.USub)):
        inner = tree.operand
        if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)):
            return (-float(inner.value) if isinstance(tree.op, ast.USub) else float(inner.value)), None
    return None, expression


def parse_schedule(
    text: str | float | int | Mapping,
    *,
    name: str = "schedule",
    interpolation: str = "linear",
    allowed_names: frozenset[str] | set[str] | None = None,
) -> Schedule:
    """Parse a schedule string (or a bare number, or a ``{frame: value}`` mapping) into a frozen :class:`Schedule`.

    Args:
        text: ``"0:(1.0), 30:(1.5), 60:(1+0.5*sin(t/8))"``, ``0.5``, ``"1+sin(t)"`` or ``{0: 1.0, "2s": 1.5}``.
        name: the schedule's field name, used in error messages.
        interpolation: how gaps between number keyframes are filled: linear | step | cubic | ease.
        allowed_names: variable names value expressions may use (``None``: any, checked at evaluation).

    Raises:
        AnimatorError: naming the field and the bad keyframe.
    """
    if interpolation not in INTERPOLATIONS:
        raise AnimatorError(
            f"unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}", field=name
        )
    try:
        keyframes = _parse_keyframes(text, allowed_names)
    except AnimatorError as exc:
        raise exc.with_location(field=name) from None
    return Schedule(name=name, keyframes=tuple(keyframes), interpolation=interpolation)


def _parse_keyframes(text, allowed_names) -> list[Keyframe]:
    if isinstance(text, Mapping):
        if not text:
            raise AnimatorError("empty schedule", hint="give at least one keyframe, e.g. 0:(1.0)")
        return _check_duplicates([_keyframe(parse_frame_key(k), v, allowed_names) for k, v in text.items()])
    if isinstance(text, (bool, int, float, np.integer, np.floating)):
        return [_keyframe(FrameKey("0", frame=0), text, allowed_names)]
    if not isinstance(text, str):
        raise AnimatorError(f'expected a schedule string like "0:(1.0), 30:(2)" or a number, got {type(text).__name__}')
    if len(text) > MAX_SCHEDULE_CHARS:
        raise AnimatorError(f"schedule is {len(text):,} characters; the limit is {MAX_SCHEDULE_CHARS:,}")
    segments = [s for s in _split_top_level(text, ",") if s.strip()]
    if not segments:
        raise AnimatorError("empty schedule", hint="give at least one keyframe, e.g. 0:(1.0)")
    keyframes = []
    for index, segment in enumerate(segments):
        simple = _SIMPLE_KEYFRAME.match(segment)
        if simple:  # "12:(0.5)": the bulk of recorded schedules, parsed without the general path
            frame = int(simple.group(1))
            keyframes.append(Keyframe(FrameKey(str(frame), frame=frame), number=float(simple.group(2))))
            continue
        parts = _split_top_level(segment, ":", first_only=True)
        if len(parts) == 1:
            if len(segments) == 1:  # a bare number or expression: constant from frame 0
                keyframes.append(_keyframe(FrameKey("0", frame=0), segment, allowed_names))
                continue
            raise AnimatorError(
                f"keyframe {index + 1} `{_short(segment)}` has no `frame:` part",
                hint="write keyframes as frame:(value), separated by commas: 0:(1.0), 30:(2)",
            )
        key_text, value_text = parts
        if not value_text.strip():
            raise AnimatorError(f"keyframe {index + 1} `{_short(segment)}` has no value")
        try:
            keyframes.append(_keyframe(parse_frame_key(key_text), value_text, allowed_names))
        except AnimatorError as exc:
            raise AnimatorError(f"keyframe {index + 1} `{_short(segment)}`: {exc.message}", hint=exc.hint) from None
    return _check_duplicates(keyframes)


def _keyframe(key: FrameKey, value, allowed_names) -> Keyframe:
    number, expression = parse_value(value, allowed_names)
    return Keyframe(key=key, number=number, expression=expression)


def _check_duplicates(keyframes: list[Keyframe]) -> list[Keyframe]:
    seen: set[str] = set()
    for keyframe in keyframes:
        if keyframe.key.text in seen:
            raise AnimatorError(
                f"frame {keyframe.key.text} appears twice",
                hint="each frame may have one keyframe; a missing comma can glue two keyframes together",
            )
        seen.add(keyframe.key.text)
    return keyframes


# ---------------------------------------------------------------------------------------------- evaluation


def _variables_at(frames: np.ndarray, timebase: TimeBase, extra: dict) -> dict:
    """Variables for evaluating at ``frames`` (may lie outside the animation: array features are clamped)."""
    inside = np.clip(frames, 0, timebase.frames - 1)
    variables = {**timebase.key_variables(), "t": frames.astype(np.float64)}
    for name, value in extra.items():
        variables[name] = value[inside] if isinstance(value, np.ndarray) and value.ndim == 1 else value
    return variables


def _evaluate(schedule: Schedule, timebase: TimeBase, extra: dict, stop: int) -> np.ndarray:
    for name, value in extra.items():
        if isinstance(value, np.ndarray) and value.shape != (timebase.frames,):
            raise AnimatorError(f"variable {name!r} has shape {value.shape}, expected ({timebase.frames},)")
    # Frames from `stop` on are not evaluated. Values before it stay exactly those of the whole animation: an
    # expression span cut at `stop` is evaluated whole when it ends undefined (a gap interpolates towards the next
    # defined value, which may lie after `stop`), and a cubic spline, which every point shapes, is never cut.
    n = min(stop, timebase.frames) if schedule.interpolation != "cubic" else timebase.frames
    resolved = [(timebase.resolve(k.key), i, k) for i, k in enumerate(schedule.keyframes)]
    # Sort by frame; a later keyframe wins when two keys land on the same frame (as in Deforum).
    by_frame: dict[int, Keyframe] = {}
    for frame, _, keyframe in sorted(resolved, key=lambda r: (r[0], r[1])):
        by_frame[frame] = keyframe
    frames_sorted = sorted(by_frame)

    values = np.full(n, np.nan)
    # Anchor points (frame, value) in frame order: number keyframes and every defined frame of an expression span.
    anchor_frames: list[np.ndarray] = []
    anchor_values: list[np.ndarray] = []
    numbers_x: list[int] = []  # consecutive number keyframes, batched into one array (recorded schedules)
    numbers_y: list[float] = []

    def flush_numbers() -> None:
        if numbers_x:
            anchor_frames.append(np.array(numbers_x, dtype=np.int64))
            anchor_values.append(np.array(numbers_y, dtype=np.float64))
            numbers_x.clear()
            numbers_y.clear()

    for index, frame in enumerate(frames_sorted):
        keyframe = by_frame[frame]
        if keyframe.expression is None:
            numbers_x.append(frame)
            numbers_y.append(keyframe.number)
            continue
        flush_numbers()
        end = frames_sorted[index + 1] if index + 1 < len(frames_sorted) else max(timebase.frames, frame + 1)
        span, result = _expression_span(keyframe.expression, frame, min(end, n), timebase, extra)
        if np.isnan(result[-1]) and span[-1] + 1 < min(end, timebase.frames):
            span, result = _expression_span(keyframe.expression, frame, min(end, timebase.frames), timebase, extra)
        defined = ~np.isnan(result)  # undefined results (sqrt(-1)) are gaps, interpolated over like Deforum
        anchor_frames.append(span[defined])
        anchor_values.append(result[defined])
    flush_numbers()
    points_x = np.concatenate(anchor_frames).astype(np.float64)
    points_y = np.concatenate(anchor_values)
    if points_x.size == 0:
        raise AnimatorError(
            "no keyframe gives a defined value (every expression result is NaN)",
            hint="check for sqrt or fractional powers of negative numbers, log of <= 0",
        )
    inside = (points_x >= 0) & (points_x < n)
    values[points_x[inside].astype(np.int64)] = points_y[inside]
    gaps = np.isnan(values)
    if gaps.any():
        values[gaps] = _interpolate(np.flatnonzero(gaps).astype(np.float64), points_x, points_y, schedule.interpolation)
    return values[:stop]


def _expression_span(expression, frame: int, end: int, timebase: TimeBase, extra: dict):
    """(frames, values) of an expression keyframe at ``frame`` evaluated up to ``end`` (its keyframe alone when
    that lies outside the animation or the span is empty)."""
    span = np.arange(max(frame, 0), min(end, timebase.frames))
    if frame < 0 or frame >= timebase.frames or span.size == 0:
        span = np.concatenate([[frame], span]).astype(np.int64)
    result = evaluate_expression(expression, _variables_at(span, timebase, extra), allow_nan=True)
    return span, np.broadcast_to(np.asarray(result, dtype=np.float64), span.shape)


def _interpolate(x: np.ndarray, px: np.ndarray, py: np.ndarray, method: str) -> np.ndarray:
    """Fill frames ``x`` from anchor points (sorted by ``px``); values hold beyond the first and last points."""
    if px.size == 1:
        return np.full(x.shape, py[0])
    if method == "linear":
        return np.interp(x, px, py)
    if method == "step":
        index = np.clip(np.searchsorted(px, x, side="right") - 1, 0, px.size - 1)
        return py[index]
    if method == "ease":
        right = np.clip(np.searchsorted(px, x, side="right"), 1, px.size - 1)
        left = right - 1
        u = np.clip((x - px[left]) / (px[right] - px[left]), 0.0, 1.0)
        u = u * u * (3.0 - 2.0 * u)  # smoothstep: zero slope at both keyframes
        return py[left] + (py[right] - py[left]) * u
    # cubic: a natural cubic spline through the points, held constant outside them.
    if px.size < 3:
        return np.interp(x, px, py)
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(px, py, bc_type="natural")
    return spline(np.clip(x, px[0], px[-1]))


# ---------------------------------------------------------------------------------------------- string schedules


@dataclass(frozen=True)
class StringSchedule:
    """A schedule of words (sampler names): each keyframe's string holds until the next keyframe."""

    name: str
    keyframes: tuple[tuple[FrameKey, str], ...]

    def __str__(self) -> str:
        return ", ".join(f"{k}:({v})" for k, v in self.keyframes)

    def evaluate(self, timebase: TimeBase, *, stop: int | None = None) -> list[str]:
        """The word at frames ``0 .. timebase.frames-1`` (``0 .. stop-1`` when ``stop`` is given)."""
        try:
            pairs = sorted(((timebase.resolve(k), i, v) for i, (k, v) in enumerate(self.keyframes)))
        except AnimatorError as exc:
            raise exc.with_location(field=self.name) from None
        frames = np.array([p[0] for p in pairs])
        n = timebase.frames if stop is None else min(stop, timebase.frames)
        index = np.clip(np.searchsorted(frames, np.arange(n), side="right") - 1, 0, len(pairs) - 1)
        return [pairs[i][2] for i in index]


def parse_string_schedule(
    text: str | Mapping, *, name: str = "sampler", choices: Sequence[str] | None = None
) -> StringSchedule:
    """Parse ``"0:(euler_a), 30:(dpm++_2m)"`` (or a bare ``euler_a``) into a :class:`StringSchedule`."""
    try:
        if isinstance(text, Mapping):
            pairs = [(parse_frame_key(k), _unwrap(str(v))) for k, v in text.items()]
        elif isinstance(text, str):
            segments = [s for s in _split_top_level(text, ",") if s.strip()]
            if not segments:
                raise AnimatorError("empty schedule")
            pairs = []
            for segment in segments:
                parts = _split_top_level(segment, ":", first_only=True)
                if len(parts) == 1 and len(segments) == 1:
                    pairs.append((FrameKey("0", frame=0), _unwrap(segment)))
                elif len(parts) == 1:
                    raise AnimatorError(f"keyframe `{_short(segment)}` has no `frame:` part")
                else:
                    pairs.append((parse_frame_key(parts[0]), _unwrap(parts[1])))
        else:
            raise AnimatorError(f'expected a string schedule like "0:(euler_a)", got {type(text).__name__}')
        for _, value in pairs:
            if not value:
                raise AnimatorError("empty value")
            if choices is not None and value not in choices:
                close = difflib.get_close_matches(value, list(choices), n=1)
                raise AnimatorError(
                    f"unknown value {value!r}",
                    hint=(f"did you mean {close[0]!r}? " if close else "") + "choices: " + ", ".join(choices),
                )
    except AnimatorError as exc:
        raise exc.with_location(field=name) from None
    return StringSchedule(name=name, keyframes=tuple(pairs))
