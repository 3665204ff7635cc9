"""Reading one field: the converters named by each field's ``spec`` kind (whole numbers, paths, schedules, enums
...), the context they report errors through, and :func:`read_section`, which reads a mapping into a section's
dataclass. Every error names the file, the line, the dotted field and what was expected."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from animator.choices import INTERPOLATIONS, SAMPLERS
from animator.errors import AnimatorError
from animator.keyframes.locate import LineLocator
from animator.keyframes.schedule import BASE_NAMES, Schedule, StringSchedule, parse_schedule, parse_string_schedule
from animator.keyframes.sections import AUDIO_FEATURES


class Context:
    """Where values come from (file name, line locator, the folder relative paths start in) and which variable
    names expressions may read; makes errors that point at a dotted field."""

    def __init__(
        self,
        source: str,
        locator: LineLocator,
        base_dir: Path,
        names: frozenset[str],
        overridden: frozenset[str] = frozenset(),
    ):
        self.source, self.locator, self.base_dir, self.names = source, locator, base_dir, names
        self.overridden = overridden  # dotted fields whose value came from overrides (--set, --size ...)

    def error(self, dotted: str, message: str, hint: str | None = None, field: str | None = None) -> AnimatorError:
        """An error at ``dotted``'s line (none when an override set it: the file's value is not the one refused)."""
        if self.from_override(dotted):
            hint = "the value was given as an override (--set, --size, --model ...), not in the file" + (
                f"; {hint}" if hint else ""
            )
            return AnimatorError(message, file=self.source, field=field or dotted, hint=hint)
        return AnimatorError(message, file=self.source, line=self.locator(dotted), field=field or dotted, hint=hint)

    def relocate(self, exc: AnimatorError, dotted: str) -> AnimatorError:
        field_name = dotted if not exc.field or "." not in exc.field else exc.field
        return self.error(dotted, exc.message, exc.hint, field=field_name)

    def from_override(self, dotted: str) -> bool:
        """Whether ``dotted`` (or a section holding it) was set by an override."""
        parts = dotted.split(".")
        return any(".".join(parts[:i]) in self.overridden for i in range(1, len(parts) + 1))


def check_unknown(keys, known, ctx: Context, prefix: str) -> None:
    """Refuse a key that is not a field, suggesting the closest one."""
    for key in keys:
        if key not in known:
            dotted = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean `{prefix}{close[0]}`?" if close else "known keys: " + ", ".join(known)
            raise ctx.error(dotted, f"unknown key {str(key)!r}", hint=hint)


def read_section(cls, data, prefix: str, ctx: Context):
    """A mapping -> ``cls`` (a section dataclass), each field read by its spec's converter; absent fields keep
    their defaults, required ones are refused."""
    if not isinstance(data, dict):
        raise ctx.error(prefix, f"expected a mapping (a section of settings), got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_unknown(data.keys(), list(fields), ctx, f"{prefix}.")
    values = {}
    for name, f in fields.items():
        kind, options = f.metadata["spec"]
        dotted = f"{prefix}.{name}"
        if name not in data or (data[name] is None and kind not in ("schedule",)):
            if options.get("required"):
                raise ctx.error(dotted, f"`{name}` is required in `{prefix}:`")
            if kind == "schedule":
                values[name] = parse_schedule(options["default"], name=name)
            elif kind == "string_schedule":
                values[name] = None
            continue
        values[name] = CONVERTERS[kind](data[name], dotted, ctx, **options)
    return cls(**values)


def to_schedule(
    value, dotted, ctx: Context, *, default, low=None, high=None, above=None, below=None, hint=None
) -> Schedule:
    """A schedule string, a number, or ``{keys: ..., interpolation: ...}``; number keyframes checked against the
    field's range (``low`` / ``high`` inclusive, ``above`` / ``below`` exclusive; expressions are checked where
    they are evaluated, :func:`animator.keyframes.cross_checks.check_schedule_values`)."""
    name = dotted.rsplit(".", 1)[-1]
    interpolation = "linear"
    if value is None:
        value = default
    if isinstance(value, dict) and "keys" in value:
        check_unknown(value.keys(), ["keys", "interpolation"], ctx, f"{dotted}.")
        interpolation = value.get("interpolation", "linear")
        if interpolation not in INTERPOLATIONS:
            raise ctx.error(
                f"{dotted}.interpolation",
                f"unknown interpolation {interpolation!r}",
                hint="one of " + ", ".join(INTERPOLATIONS),
            )
        value = value["keys"]
    try:
        schedule = parse_schedule(value, name=name, interpolation=interpolation, allowed_names=ctx.names)
    except AnimatorError as exc:
        hint = exc.hint
        if "unknown name" in exc.message and not any(n in ctx.names for n in AUDIO_FEATURES):
            hint = (hint or "") + "; audio variables (rms, beat, bass ...) need an `audio:` section"
        raise AnimatorError(exc.message, file=ctx.source, line=ctx.locator(dotted), field=dotted, hint=hint) from None
    bounds = {"low": low, "high": high, "above": above, "below": below}
    for keyframe in schedule.keyframes:
        if keyframe.number is None:
            continue
        problem = range_problem(keyframe.number, **bounds)
        if problem:
            if low is not None and high is not None and math.isfinite(keyframe.number):
                problem = f"is outside [{low:g}, {high:g}]"
            raise ctx.error(
                dotted,
                f"value {keyframe.number:g} at frame {keyframe.key} {problem}",
                hint=range_hint(name, **bounds) + (f"; {hint}" if hint else ""),
            )
    return schedule


def range_problem(value: float, *, low=None, high=None, above=None, below=None) -> str | None:
    """What puts ``value`` outside a field's range (``"is above 1"``), None when it is inside."""
    if not math.isfinite(value):
        return "is not a finite number"
    if low is not None and value < low:
        return f"is below {low:g}"
    if high is not None and value > high:
        return f"is above {high:g}"
    if above is not None and value <= above:
        return f"must be above {above:g}"
    if below is not None and value >= below:
        return f"must be below {below:g}"
    return None


def range_hint(name: str, *, low=None, high=None, above=None, below=None) -> str:
    """The range of a field in words: ``"strength takes values from 0 to 1"``."""
    parts = []
    if low is not None and high is not None:
        parts.append(f"from {low:g} to {high:g}")
    elif low is not None:
        parts.append(f"of at least {low:g}")
    elif high is not None:
        parts.append(f"of at most {high:g}")
    if above is not None:
        parts.append(f"above {above:g}")
    if below is not None:
        parts.append(f"below {below:g}")
    return f"{name} takes values " + " and ".join(parts) if parts else f"{name} takes finite numbers"


def to_string_schedule(value, dotted, ctx: Context) -> StringSchedule:
    """A schedule of sampler names (``generation.sampler``)."""
    try:
        return parse_string_schedule(value, name=dotted.rsplit(".", 1)[-1], choices=SAMPLERS)
    except AnimatorError as exc:
        raise ctx.relocate(exc, dotted) from None


def type_error(value, dotted, ctx, expected: str) -> AnimatorError:
    """The error for a value of the wrong type: what was expected, what was found."""
    return ctx.error(dotted, f"expected {expected}, got {type(value).__name__} {value!r}"[:300])


def to_int(value, dotted, ctx: Context, low=None, high=None, multiple=None, optional=False):
    """A whole number (also ``"12"`` and ``12.0``) in ``[low, high]``, optionally a multiple of ``multiple``."""
    if value is None and optional:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(value, dotted, ctx, "a whole number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ctx.error(dotted, f"{value} is outside [{low}, {high}]")
    if multiple and value % multiple:
        raise ctx.error(
            dotted, f"{value} is not a multiple of {multiple}", hint=f"try {round(value / multiple) * multiple}"
        )
    return value


def to_float(value, dotted, ctx: Context, low=None, high=None, optional=False):
    """A number (also a numeric string) in ``[low, high]``; NaN is refused."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise type_error(value, dotted, ctx, "a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(value, dotted, ctx, "a number")
    value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise ctx.error(dotted, f"{value:g} is outside [{low:g}, {high:g}]")
    return value


def to_bool(value, dotted, ctx: Context):
    """true / false, also yes / no / on / off as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise type_error(value, dotted, ctx, "true or false")


def to_str(value, dotted, ctx: Context, required=False, optional=False):
    """Text (a number is taken as its text); ``required`` refuses blank text."""
    if value is None and optional:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise type_error(value, dotted, ctx, "text")
    if required and not value.strip():
        raise ctx.error(dotted, "must not be empty")
    return value


def to_enum(value, dotted, ctx: Context, choices, optional=False):
    """One of ``choices`` (any case, returned in lower case), with a did-you-mean; ``optional`` allows None."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or value.lower() not in choices:
        close = difflib.get_close_matches(str(value).lower(), list(choices), n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + "choices: " + ", ".join(choices)
        raise ctx.error(dotted, f"unknown value {value!r}", hint=hint)
    return value.lower()


def to_path(value, dotted, ctx: Context, required=False, optional=False, output=False):
    """A path, absolute or relative to the keyframe file's folder (``~`` expanded); empty is None."""
    if value is None or value == "":
        if required:
            raise ctx.error(dotted, "a path is required")
        return None
    if not isinstance(value, str):
        raise type_error(value, dotted, ctx, "a file path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (ctx.base_dir / path).resolve()


def to_device(value, dotted, ctx: Context):
    """auto, cpu, mps, cuda or cuda:N."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise ctx.error(dotted, f"unknown device {value!r}", hint="auto, cpu, cuda, cuda:1 or mps")
    return value


def to_units(value, dotted, ctx: Context, cls, shorthand: str):
    """A list of sub-sections (``backends.lora``); a bare string item is the value of its ``shorthand`` field."""
    if not isinstance(value, list):
        raise type_error(value, dotted, ctx, f"a list of {{{shorthand}: ...}}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {shorthand: item}
        out.append(read_section(cls, item, f"{dotted}.{i}", ctx))
    return tuple(out)


def to_stems(value, dotted, ctx: Context):
    """Stem name -> audio path; names become variable prefixes (``drums_rms``), so letters and digits only."""
    if not isinstance(value, dict):
        raise type_error(value, dotted, ctx, "a mapping of stem name -> audio path")
    out = {}
    for name, path in value.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)):
            raise ctx.error(
                f"{dotted}.{name}", f"stem name {name!r} must be letters and digits (it prefixes variables)"
            )
        out[str(name)] = to_path(path, f"{dotted}.{name}", ctx, required=True)
    return out


def to_bands(value, dotted, ctx: Context):
    """Band name -> (low Hz, high Hz), low below high; names become variables, so they may not clash."""
    if not isinstance(value, dict) or not value:
        raise type_error(value, dotted, ctx, "a mapping of band name -> [low Hz, high Hz]")
    out = {}
    for name, pair in value.items():
        where = f"{dotted}.{name}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)) or name in BASE_NAMES or name in AUDIO_FEATURES:
            raise ctx.error(
                where, f"band name {name!r} must be letters and digits and not clash with t, max_f, rms ..."
            )
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise type_error(pair, where, ctx, "[low Hz, high Hz]")
        low, high = (to_float(p, where, ctx, 0.0, 1e6) for p in pair)
        if low >= high:
            raise ctx.error(where, f"low {low:g} Hz must be below high {high:g} Hz")
        out[str(name)] = (low, high)
    return out


def to_paths(value, dotted, ctx: Context) -> tuple[Path, ...]:
    """A folder or a list of folders -> absolute paths (relative ones against the keyframe file's folder)."""
    if isinstance(value, list):
        return tuple(to_path(item, f"{dotted}.{i}", ctx, required=True) for i, item in enumerate(value))
    return (to_path(value, dotted, ctx, required=True),)


def to_model(value, dotted, ctx: Context, required=False) -> str:
    """A hub id, folder or file: a relative path that exists beside the keyframe file becomes absolute."""
    text = to_str(value, dotted, ctx, required=required).strip()
    local = Path(text).expanduser()
    local = local if local.is_absolute() else ctx.base_dir / local
    return str(local.resolve()) if local.exists() else text


def to_span(value, dotted, ctx: Context, required=False) -> range:
    """``"A:B"`` (B exclusive; A omitted is 0, B omitted the end, as ``--frames``) or ``[A, B]``; the end of an
    open span is closed by :func:`animator.keyframes.cross_checks.check_sections`, which knows the frame count
    (``sys.maxsize`` until then)."""
    if isinstance(value, list) and len(value) == 2:
        start, stop = (to_int(v, dotted, ctx, 0, 10**9) for v in value)
    elif isinstance(value, str) and ":" in value:
        start_text, _, stop_text = value.partition(":")
        try:
            start = int(start_text) if start_text.strip() else 0
            stop = int(stop_text) if stop_text.strip() else sys.maxsize
        except ValueError:
            raise ctx.error(dotted, f"expected A:B of frame indices (B exclusive), got {value!r}") from None
    else:
        raise ctx.error(
            dotted,
            f"expected frame indices A:B (B exclusive) or [A, B], got {value!r}"[:300],
            hint='e.g. frames: "0:48" for frames 0 to 47',
        )
    if start < 0 or stop <= start:
        raise ctx.error(dotted, f"{value!r} selects no frames", hint="A:B with 0 <= A < B (B exclusive)")
    return range(start, stop)


def to_subsection(value, dotted, ctx: Context, cls):
    """A nested section (``output.interpolate``) read into ``cls``."""
    return read_section(cls, value, dotted, ctx)


# spec kind -> converter(value, dotted, ctx, **options)
CONVERTERS: dict[str, Callable[..., Any]] = {
    "schedule": to_schedule,
    "string_schedule": to_string_schedule,
    "int": to_int,
    "float": to_float,
    "bool": to_bool,
    "str": to_str,
    "enum": to_enum,
    "path": to_path,
    "device": to_device,
    "units": to_units,
    "stems": to_stems,
    "bands": to_bands,
    "paths": to_paths,
    "model": to_model,
    "span": to_span,
    "section": to_subsection,
}
