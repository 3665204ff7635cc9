"""Import Parseq manifests: ``rendered_frames`` become per-frame keyframes for every managed field, plus prompts.

Parseq renders absolute values per frame; Deforum reads motion fields as per-frame increments and uses Parseq's
``<field>_delta`` values for them (its default "use deltas"). Motion fields here are imported the same way, from
``_delta`` where the manifest has it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from animator.errors import AnimatorError
from animator.keyframes.importers._yaml import ImportResult

MOTION = {
    "angle", "zoom", "translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
    "rotation_3d_z",
}  # fmt: skip
FIELDS: dict[str, tuple[str, str]] = {
    **{name: ("motion", name) for name in MOTION},
    "transform_center_x": ("motion", "transform_center_x"),
    "transform_center_y": ("motion", "transform_center_y"),
    "fov": ("motion", "fov"),
    "near": ("motion", "near"),
    "far": ("motion", "far"),
    "perspective_flip_theta": ("motion", "perspective_flip_theta"),
    "perspective_flip_phi": ("motion", "perspective_flip_phi"),
    "perspective_flip_gamma": ("motion", "perspective_flip_gamma"),
    "perspective_flip_fv": ("motion", "perspective_flip_fv"),
    "strength": ("generation", "strength"),
    "noise": ("generation", "noise"),
    "contrast": ("generation", "contrast"),
    "scale": ("generation", "cfg"),
    "steps": ("generation", "steps"),
    "seed": ("generation", "seed"),
    "antiblur_amount": ("generation", "sharpen_amount"),
    "hybrid_comp_alpha": ("hybrid", "composite_alpha"),
}


def import_parseq(path: str | Path) -> ImportResult:
    """Read a Parseq manifest (JSON with ``rendered_frames``) and convert it.

    Raises:
        AnimatorError: when the file is not JSON or has no rendered frames.
    """
    path = Path(path)
    if not path.is_file():
        raise AnimatorError("Parseq manifest not found", file=path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise AnimatorError("not a Parseq manifest: its JSON is nested too deeply", file=path) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers over Python's 4300 digits
        if "integer string conversion" in str(exc):
            exc = "a number in it has more than 4300 digits"
        raise AnimatorError(f"not a Parseq manifest (JSON expected): {exc}", file=path) from None
    result = convert_parseq(manifest, source=str(path))
    result.header.insert(1, f"Source: {path.name}")
    return result


def convert_parseq(manifest: Any, *, source: str = "<manifest>") -> ImportResult:
    """Convert a Parseq manifest dict (see :func:`import_parseq`)."""
    frames = manifest.get("rendered_frames") if isinstance(manifest, dict) else None
    if not isinstance(frames, list) or not frames:
        raise AnimatorError(
            "no `rendered_frames` in the manifest",
            file=source,
            field="rendered_frames",
            hint="export the manifest from Parseq after rendering (Render button)",
        )
    frames = _checked_frames(frames, source)
    count = frames[-1]["frame"] + 1
    options = _mapping(manifest.get("options"), "options", source)
    warnings: list[str] = []
    data: dict[str, Any] = {"version": 1, "frames": count}
    data["fps"] = _number(options.get("output_fps") or 20, "options.output_fps", source)
    if options.get("bpm"):
        data["bpm"] = _number(options["bpm"], "options.bpm", source)
    if options.get("cadence"):
        data["cadence"] = max(1, int(_number(options["cadence"], "options.cadence", source)))

    managed = manifest.get("managedFields")
    if managed is not None and not (isinstance(managed, list) and all(isinstance(n, str) for n in managed)):
        raise AnimatorError("expected a list of field names", file=source, field="managedFields")
    names = [n for n in (managed or []) if n in FIELDS]
    if managed is None:  # older manifests: every numeric field in the frames
        names = [n for n in FIELDS if any(n in f for f in frames)]
    skipped = [n for n in (managed or []) if n not in FIELDS]
    if skipped:
        warnings.append("Parseq fields not supported, ignored: " + ", ".join(skipped))
    for name in names:
        source_key = f"{name}_delta" if name in MOTION and any(f"{name}_delta" in f for f in frames) else name
        section, ours = FIELDS[name]
        keys = []
        for frame in frames:
            if source_key in frame and frame[source_key] is not None:
                value = _number(frame[source_key], f"rendered_frames[frame {frame['frame']}].{source_key}", source)
                keys.append(f"{frame['frame']}:({value!r})")
        if not keys:
            continue
        data.setdefault(section, {})[ours] = ", ".join(keys)
        if source_key != name:
            warnings.append(f"{name}: imported from Parseq's per-frame `{source_key}` (Deforum's use-deltas mode)")
    if "seed" in names:
        data["seed_behavior"] = "schedule"
    if "hybrid" in data:
        warnings.append("hybrid_comp_alpha needs a hybrid video: set hybrid.path")
        data["hybrid"]["path"] = "SET-ME.mp4"

    prompts: dict[int, str] = {}
    previous = None
    for frame in frames:
        text = frame.get("deforum_prompt")
        if text is not None and text != previous:
            prompts[frame["frame"]] = str(text)
            previous = text
    if prompts:
        data["prompts"] = prompts
    header = [
        "Imported from a Parseq manifest by `animator import parseq`.",
        "",
        "Every managed field becomes one keyframe per rendered frame; prompts are keyed where they change.",
    ]
    meta = manifest.get("meta") if isinstance(manifest.get("meta"), dict) else {}
    if meta.get("version"):
        header.append(f"Parseq version {meta['version']}, generated {meta.get('generated_at', '?')}.")
    return ImportResult(data=data, warnings=warnings, header=header)


# Parseq renders every frame of an animation; more than this (about 11.5 hours at 24 fps) is not a real manifest
MAX_FRAME = 1_000_000


def _checked_frames(frames: list, source: str) -> list[dict]:
    """The rendered frames sorted by index, each an object with an integer ``frame`` in [0, MAX_FRAME]."""
    for position, frame in enumerate(frames):
        where = f"rendered_frames[{position}]"
        if not isinstance(frame, dict):
            raise AnimatorError(
                f"expected an object per frame ({{'frame': 0, ...}}), got {type(frame).__name__}",
                file=source,
                field=where,
                hint="export the manifest from Parseq after rendering (Render button)",
            )
        if "frame" not in frame:
            raise AnimatorError("this frame has no `frame` index", file=source, field=where)
        index = frame["frame"]
        if isinstance(index, float) and index.is_integer():
            index = frame["frame"] = int(index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_FRAME:
            shown = repr(index) if len(repr(index)) <= 40 else repr(index)[:37] + "..."
            raise AnimatorError(
                f"`frame` must be a whole number from 0 to {MAX_FRAME:,}, got {shown}", file=source, field=where
            )
    return sorted(frames, key=lambda f: f["frame"])


def _mapping(value: Any, key: str, source: str) -> dict:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise AnimatorError(f"expected an object, got {type(value).__name__}", file=source, field=key)
    return value


def _number(value: Any, key: str, source: str) -> float:
    """A finite number from the manifest (JSON numbers, or text holding one); anything else is the project's error."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise AnimatorError(f"expected a finite number, got {shown}", file=source, field=key)
    return number
