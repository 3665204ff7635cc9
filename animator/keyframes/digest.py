"""What a loaded keyframe file means, as one comparable value: :func:`config_digest` (a stable hash, recorded in a
run folder) and :func:`describe_changes` (the fields that differ between two configs, for a refused resume).

Both read the resolved configuration, field by field: every value after loading (schedules in their canonical
text, paths absolute), not the file's text. Editing a comment or reordering keys changes nothing; moving the keyframe
file changes nothing as long as the files it names resolve to the same places. The keyframe file's own path and text
are left out: a run folder renders from its copy of the file.

Example:
    >>> from animator.keyframes import config_from_dict
    >>> a = config_from_dict({"frames": 24, "motion": {"zoom": "0:(1.0)"}})
    >>> b = config_from_dict({"frames": 24, "motion": {"zoom": "0:(1.02)"}})
    >>> config_digest(a) == config_digest(b)
    False
    >>> describe_changes(a, b)
    ['motion.zoom: 0:(1.0) -> 0:(1.02)']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from animator.keyframes.schedule import Schedule, StringSchedule

if TYPE_CHECKING:
    from animator.keyframes.sections import AnimationConfig

# fields of AnimationConfig that say where the file is and what its text was, not what it renders
_NOT_SETTINGS = ("path", "source_text")
_SHOWN_CHARS = 80  # a changed value longer than this is shortened in the description


def config_digest(config: AnimationConfig) -> str:
    """A SHA-256 hex digest of every resolved field of ``config``: equal for two loads of files that mean the same
    render (the same values, wherever the file lies and however it is formatted), different when any value differs.
    Stable across processes and machines (no Python hash randomisation)."""
    text = json.dumps(sorted(resolved_fields(config).items()), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def describe_changes(old: AnimationConfig, new: AnimationConfig) -> list[str]:
    """One line per field whose resolved value differs (``"motion.zoom: 0:(1.0) -> 0:(1.02)"``), in field order;
    a field only one side has reads ``(absent)`` on the other. Empty when the two mean the same render."""
    return describe_field_changes(resolved_fields(old), resolved_fields(new))


def describe_field_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """:func:`describe_changes` on two :func:`resolved_fields` tables (a run folder records its table)."""
    lines = []
    for name in dict.fromkeys([*before, *after]):
        a, b = before.get(name, "(absent)"), after.get(name, "(absent)")
        if a != b:
            lines.append(f"{name}: {_short(a)} -> {_short(b)}")
    return lines


def resolved_fields(config: AnimationConfig) -> dict[str, str]:
    """Dotted field -> its resolved value as text, for every setting of ``config`` (nested sections, list items
    by index: ``controlnet.0.weight``)."""
    out: dict[str, str] = {}
    for field in dataclasses.fields(config):
        if field.name not in _NOT_SETTINGS:
            _flatten(getattr(config, field.name), field.name, out)
    return out


def _flatten(value, dotted: str, out: dict[str, str]) -> None:
    if isinstance(value, (Schedule, StringSchedule)):  # dataclasses too, but one value each: their canonical text
        out[dotted] = _text(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _flatten(getattr(value, field.name), f"{dotted}.{field.name}", out)
    elif isinstance(value, tuple) and value and all(dataclasses.is_dataclass(v) for v in value):
        for i, item in enumerate(value):
            _flatten(item, f"{dotted}.{i}", out)
        out[f"{dotted}.count"] = str(len(value))
    else:
        out[dotted] = _text(value)


def _text(value) -> str:
    """A value as canonical text: schedules as they parse back, paths absolute, floats exactly (repr)."""
    if isinstance(value, Schedule):
        return str(value) + ("" if value.interpolation == "linear" else f" ({value.interpolation})")
    if isinstance(value, StringSchedule):
        return str(value)
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, dict):
        return json.dumps({str(k): _text(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))})
    if isinstance(value, (tuple, list)):
        return json.dumps([_text(v) for v in value])
    if isinstance(value, range):
        return f"{value.start}:{value.stop}"
    return repr(value)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
