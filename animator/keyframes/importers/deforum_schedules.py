"""Deforum schedule strings as keyframe schedules with the same per-frame values (the Deforum importer's grammar,
:mod:`animator.keyframes.importers.deforum`).

- keyframes at or after ``max_frames`` (and before 0) are dropped, as Deforum's parser does, with a note;
- duplicate frames: the last one wins (Deforum's dict), with a note; a malformed value hidden by a later duplicate
  is dropped like Deforum drops it;
- values Deforum treats as expressions (``(2*1)``, ``5.68e-05``) hold until the next keyframe in Deforum; where our
  grammar would read them as numbers and interpolate (scientific notation, ``1.``) and a gap follows, they are
  written as ``0+(value)`` so they keep holding;
- commas inside function calls (``max(a, b)``), on which Deforum's parser crashes, parse correctly here.
"""

from __future__ import annotations

import re
from typing import Any

from animator.errors import AnimatorError
from animator.keyframes.expressions import compile_expression
from animator.keyframes.schedule import _NUMBER, BASE_NAMES, TimeBase, _split_top_level, _unwrap, parse_frame_key

__all__ = ["convert_schedule", "string_schedule"]

_DEFORUM_NUMBER = re.compile(r"^[+-]?[0-9]*(\.[0-9]+)?$")


def _sanitize(value: str) -> str:
    return value.replace("'", "").replace('"', "").replace("(", "").replace(")", "")


def convert_schedule(
    text: Any, timebase: TimeBase, *, key: str = "schedule", source: str = "<settings>"
) -> tuple[str, list[str]]:
    """A Deforum schedule string -> our schedule string with the same per-frame values, plus notes.

    Deforum's semantics kept: split into ``frame:value`` on commas (top level only: commas inside calls are ours),
    the value is what follows the first ``:`` up to the next ``:``; the last duplicate frame wins; keyframes outside
    ``[0, max_frames)`` are dropped.
    """
    notes: list[str] = []
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return f"0:({text!r})", notes
    if not isinstance(text, str):
        raise AnimatorError(f"expected a schedule string, got {type(text).__name__}", file=source, field=key)
    try:
        segments = _split_top_level(text, ",")
    except AnimatorError as exc:
        raise AnimatorError(exc.message, file=source, field=key, hint=exc.hint) from None
    entries: dict[int, tuple[str, str, str]] = {}  # frame -> (key text, value text, segment)
    repeated: list[int] = []
    glued: list[int] = []  # segments with two ':' (two keyframes glued together by a missing comma)
    for segment in segments:
        if not segment.strip():
            notes.append("an empty keyframe (stray comma) was skipped; Deforum's parser fails on it")
            continue
        parts = segment.split(":")
        if len(parts) < 2:
            raise AnimatorError(
                f"keyframe `{' '.join(segment.split())[:80]}` has no `frame:` part", file=source, field=key
            )
        try:
            frame = timebase.resolve(parse_frame_key(parts[0]))
        except AnimatorError as exc:
            raise AnimatorError(f"bad frame `{parts[0].strip()}`: {exc.message}", file=source, field=key) from None
        if frame in entries:
            repeated.append(frame)
        if len(parts) > 2:
            glued.append(frame)
        entries[frame] = (parts[0].strip(), parts[1].strip(), segment)
    if repeated:
        notes.append(
            f"{len(repeated)} frame(s) listed twice ({_frames_text(repeated)}); the later value wins, as in Deforum"
        )
    hidden = [f for f in glued if entries[f][2].count(":") < 2]  # malformed, then replaced by a later duplicate
    if hidden:
        notes.append(
            f"malformed keyframe(s) at {_frames_text(hidden)} (a missing comma?) replaced by later duplicates, "
            "as in Deforum"
        )

    dropped = sorted(f for f in entries if not 0 <= f < timebase.frames)
    if dropped:
        notes.append(
            f"{len(dropped)} keyframe(s) outside frames 0..{timebase.frames - 1} dropped, as Deforum does "
            f"({_frames_text(dropped)})"
        )
    kept = sorted(f for f in entries if 0 <= f < timebase.frames)
    if not kept:
        raise AnimatorError(
            "no keyframe inside the animation (Deforum's parser fails here too)", file=source, field=key
        )
    if kept[0] != 0:
        notes.append(f"no keyframe at frame 0 (Deforum's parser fails); the value of frame {kept[0]} holds before it")
    out = []
    for index, frame in enumerate(kept):
        key_text, value, segment = entries[frame]
        key_out = _key_text(key_text, frame)
        if _DEFORUM_NUMBER.match(_sanitize(value)):
            number = _sanitize(value)
            if not number or number in "+-" or number.endswith("."):
                raise AnimatorError(f"frame {frame}: empty or malformed value {value!r}", file=source, field=key)
            out.append(f"{key_out}:({number})")
            continue
        expression = " ".join(value.split())
        try:
            compiled = compile_expression(expression, BASE_NAMES)
        except AnimatorError as exc:
            raise AnimatorError(
                f"frame {frame}: {exc.message}",
                file=source,
                field=key,
                hint="Deforum's numexpr would fail on this value too; fix it in the settings file",
            ) from None
        body = compiled.text
        gap_follows = index + 1 < len(kept) and kept[index + 1] > frame + 1
        body = _strip_parens(body)
        if gap_follows and _NUMBER.match(body):
            body = f"0+({body})"  # Deforum holds this value (it is not a "plain number" there)
        out.append(f"{key_out}:({body})")
    return ", ".join(out), notes


def _frames_text(frames: list[int]) -> str:
    frames = sorted(set(frames))
    return ", ".join(map(str, frames[:5])) + (f" ... {frames[-1]}" if len(frames) > 5 else "")


def _strip_parens(text: str) -> str:
    return _unwrap(text)  # "( (2*1) )" -> "2*1"


def _key_text(key_text: str, frame: int) -> str:
    raw = key_text.strip().strip("\"'").strip()
    if re.fullmatch(r"[+-]?\d+", raw):
        return str(frame)
    return raw  # an expression such as max_f-2, kept readable


def string_schedule(text: Any, convert, warnings: list[str], key: str) -> str | None:
    if not isinstance(text, str):
        return None
    pairs = []
    for segment in _split_top_level(text, ","):
        if ":" not in segment:
            continue
        frame, value = segment.split(":", 1)
        name = convert(_sanitize(value).strip(), warnings, key)
        pairs.append(f"{frame.strip().strip(chr(34) + chr(39))}:({name})")
    return ", ".join(pairs) or None
