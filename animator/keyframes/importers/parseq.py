"""Import Parseq manifests: ``rendered_frames`` become per-frame keyframes for every managed field, plus prompts.

Parseq renders absolute values per frame; Deforum reads motion fields as per-frame increments and uses Parseq's
``<field>_delta`` values for them (its default "use deltas"). Motion fields here are imported the same way, from
``_delta`` where the manifest has it.
"""

from __future__ import annotations

import json
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
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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
    frames = sorted(frames, key=lambda f: int(f.get("frame", 0)))
    count = int(frames[-1].get("frame", len(frames) - 1)) + 1
    options = manifest.get("options") or {}
    warnings: list[str] = []
    data: dict[str, Any] = {"version": 1, "frames": count}
    data["fps"] = float(options.get("output_fps") or 20)
    if options.get("bpm"):
        data["bpm"] = float(options["bpm"])
    if options.get("cadence"):
        data["cadence"] = max(1, int(options["cadence"]))

    managed = manifest.get("managedFields")
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
                value = float(frame[source_key])
                keys.append(f"{int(frame['frame'])}:({value!r})")
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
            prompts[int(frame["frame"])] = str(text)
            previous = text
    if prompts:
        data["prompts"] = prompts
    header = [
        "Imported from a Parseq manifest by `animator import parseq`.",
        "",
        "Every managed field becomes one keyframe per rendered frame; prompts are keyed where they change.",
    ]
    meta = manifest.get("meta") or {}
    if meta.get("version"):
        header.append(f"Parseq version {meta['version']}, generated {meta.get('generated_at', '?')}.")
    return ImportResult(data=data, warnings=warnings, header=header)
