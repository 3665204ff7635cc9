"""Import Deforum settings files (webui extension, Forge fork and notebook key styles) as keyframe files.

Schedules keep Deforum's units and meanings (ours are defined to match, ``strength`` included: the share of the
previous frame kept) and evaluate to Deforum's per-frame values (:mod:`.deforum_schedules`).

Settings animator does not use become warnings (those that are switched on) and a comment block at the end of
the YAML (all of them), so nothing is silently lost.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from animator.choices import BORDERS, COLOR_MATCHES, CONTROL_ANNOTATOR_SOURCES, CONTROL_MODES, SEED_BEHAVIORS
from animator.errors import AnimatorError
from animator.keyframes.importers._yaml import ImportResult
from animator.keyframes.importers.deforum_schedules import convert_schedule, string_schedule
from animator.keyframes.schedule import TimeBase
from animator.sampler_names import is_sampler_name, normalize_sampler_name

# Deforum key -> (section, our name) for float schedules.
SCHEDULE_KEYS: dict[str, tuple[str, str]] = {
    "angle": ("motion", "angle"),
    "zoom": ("motion", "zoom"),
    "translation_x": ("motion", "translation_x"),
    "translation_y": ("motion", "translation_y"),
    "translation_z": ("motion", "translation_z"),
    "rotation_3d_x": ("motion", "rotation_3d_x"),
    "rotation_3d_y": ("motion", "rotation_3d_y"),
    "rotation_3d_z": ("motion", "rotation_3d_z"),
    "transform_center_x": ("motion", "transform_center_x"),
    "transform_center_y": ("motion", "transform_center_y"),
    "fov_schedule": ("motion", "fov"),
    "near_schedule": ("motion", "near"),
    "far_schedule": ("motion", "far"),
    "perspective_flip_theta": ("motion", "perspective_flip_theta"),
    "perspective_flip_phi": ("motion", "perspective_flip_phi"),
    "perspective_flip_gamma": ("motion", "perspective_flip_gamma"),
    "perspective_flip_fv": ("motion", "perspective_flip_fv"),
    "strength_schedule": ("generation", "strength"),
    "noise_schedule": ("generation", "noise"),
    "contrast_schedule": ("generation", "contrast"),
    "cfg_scale_schedule": ("generation", "cfg"),
    "seed_schedule": ("generation", "seed"),
    "amount_schedule": ("generation", "sharpen_amount"),
    "hybrid_comp_alpha_schedule": ("hybrid", "composite_alpha"),
}
# Keys read by the importer besides the schedules above (so they are not reported as unused).
HANDLED = {
    "W", "H", "width", "height", "fps", "max_frames", "seed", "seed_behavior", "seed_iter_N", "animation_mode",
    "use_init", "init_image", "diffusion_cadence", "prompts", "animation_prompts_positive",
    "animation_prompts_negative", "positive_prompts", "negative_prompts", "steps", "steps_schedule",
    "enable_steps_scheduling", "sampler", "sampler_name", "sampler_schedule", "enable_sampler_scheduling", "scale",
    "color_coherence", "color_coherence_image_path", "border", "padding_mode", "sampling_mode", "noise_type",
    "perlin_octaves", "perlin_persistence", "enable_perspective_flip", "flip_2d_perspective", "video_init_path",
    "extract_nth_frame", "extract_from_frame", "extract_to_frame", "hybrid_motion", "hybrid_composite",
    "add_soundtrack", "soundtrack_path", "make_gif", "sigma_schedule", "threshold_schedule", "fov", "near_plane",
    "far_plane", "use_depth_warping",
}  # fmt: skip
# Settings that only describe the Deforum installation or its UI: listed in the comment block, never warned about.
QUIET = re.compile(
    r"^(batch_name|outdir|timestring|resume_.*|sd_model_.*|deforum_git_commit_id|show_info_on_ui|motion_preview_mode"
    r"|save_.*|display_samples|show_sample_per_step|filename_format|make_grid|grid_rows|n_batch|n_samples|precision"
    r"|seed_internal|init_sample.*|init_latent|init_c|mask_sample|skip_video_creation|delete_.*|store_frames_in_ram"
    r"|override_these_with_webui|from_img2img_instead_of_link|fetched_parseq_manifest_summary|C|f|log_.*"
    r"|overwrite_extracted_frames|bit_depth_output|.*_keep_imgs|prompt)$"
)
_OFF_VALUES = (None, False, "", "None", "none", 0, "0", -1, [], {}, "Off", "off", "Disabled")


def import_deforum(path: str | Path) -> ImportResult:
    """Read a Deforum settings file (JSON, ``*_settings.txt``) and convert it.

    Returns:
        :class:`ImportResult` whose ``data`` loads with ``config_from_dict`` and evaluates, schedule by schedule, to
        the values Deforum's own parser gives.

    Raises:
        AnimatorError: for unreadable files or schedules Deforum itself could not parse and we cannot either.
    """
    path = Path(path)
    if not path.is_file():
        raise AnimatorError("settings file not found", file=path)
    duplicates: list[str] = []

    def keep_last(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        settings = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=keep_last)
    except RecursionError:
        raise AnimatorError("not a Deforum settings file: its JSON is nested too deeply", file=path) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers over Python's 4300 digits
        if "integer string conversion" in str(exc):
            exc = "a number in it has more than 4300 digits"
        raise AnimatorError(f"not a Deforum settings file (JSON expected): {exc}", file=path) from None
    if not isinstance(settings, dict):
        raise AnimatorError("not a Deforum settings file: expected a JSON object", file=path)
    try:
        result = convert_deforum(settings, source=str(path))
    except AnimatorError as exc:  # helpers that do not know the file name leave it to this one
        raise exc.with_location(file=path) from None
    for key in dict.fromkeys(duplicates):
        result.warnings.append(f"`{key}` appears more than once in the file; the last value was used (as Deforum does)")
    result.header.insert(1, f"Source: {path.name}")
    return result


def convert_deforum(settings: dict[str, Any], *, source: str = "<settings>") -> ImportResult:
    """Convert a Deforum settings dict (see :func:`import_deforum`)."""
    warnings: list[str] = []
    data: dict[str, Any] = {"version": 1}

    def get(*keys, default=None):
        for key in keys:
            if key in settings and settings[key] is not None:
                return settings[key]
        return default

    width, height = (
        _size(get("W", "width", default=512), "W", warnings, source),
        _size(get("H", "height", default=512), "H", warnings, source),
    )
    data["width"], data["height"] = width, height
    fps = _number(get("fps", default=15), "fps", source)
    if "fps" not in settings:
        warnings.append("no `fps` in the file; using Deforum's default 15")
    data["fps"] = fps

    mode_text = str(get("animation_mode", default="None"))
    mode = {"2d": "2d", "3d": "3d", "video input": "video"}.get(mode_text.lower())
    max_frames = get("max_frames")
    if max_frames is None or mode is None:
        warnings.append(
            f"animation_mode {mode_text!r}"
            + (" without max_frames" if max_frames is None else "")
            + " is not an animation animator renders; imported as a 1-frame 2D still"
        )
        mode, max_frames = "2d", 1 if max_frames is None else max_frames
    frames = int(_number(max_frames, "max_frames", source))
    if frames < 1:
        raise AnimatorError(f"max_frames is {frames}; at least 1 frame is needed", file=source, field="max_frames")
    data["frames"] = frames
    seed = int(_number(get("seed", default=-1), "seed", source))
    data["seed"] = seed if seed >= -1 else -1
    behavior = str(get("seed_behavior", default="iter")).lower()
    if behavior not in SEED_BEHAVIORS:
        warnings.append(f"seed_behavior {behavior!r} is not supported; using iter")
        behavior = "iter"
    data["seed_behavior"] = behavior
    data["seed_iter_n"] = max(1, int(_number(get("seed_iter_N", default=1), "seed_iter_N", source)))
    data["mode"] = mode
    init = get("init_image", default="")
    if _truthy(get("use_init")) and init:
        if re.match(r"https?://", str(init)):
            warnings.append(f"init_image is a URL ({init}); download it and set init_image to the file")
        else:
            data["init_image"] = str(init)
    data["cadence"] = max(1, int(_number(get("diffusion_cadence", default=1), "diffusion_cadence", source)))

    prompts = _prompts(settings.get("prompts"), warnings)
    prefix = get("animation_prompts_positive", "positive_prompts", default="")
    negative = get("animation_prompts_negative", "negative_prompts", default="")
    prompts = {key: _repaired(text, f"prompt {key}", warnings) for key, text in prompts.items()}
    if prompts:
        data["prompts"] = prompts
    prefix, negative = (
        _repaired(str(t or ""), name, warnings) for t, name in ((prefix, "prefix"), (negative, "negative"))
    )
    warnings += prompt_notes([*prompts.values(), prefix, negative])
    if prefix:
        data["prompt_prefix"] = str(prefix)
    if negative:
        data["negative_prompt"] = str(negative)

    sections: dict[str, dict[str, Any]] = {"motion": {}, "generation": {}, "coherence": {}, "backends": {}}
    timebase = TimeBase(frames=frames, fps=fps, seed=float(seed))
    for key, (section, name) in SCHEDULE_KEYS.items():
        if key not in settings or settings[key] is None:
            continue
        text, notes = convert_schedule(settings[key], timebase, key=key, source=source)
        warnings += [f"{key}: {n}" for n in notes]
        sections.setdefault(section, {})[name] = text

    _motion_options(settings, sections["motion"], get, warnings)
    _generation_options(settings, sections["generation"], sections["backends"], get, warnings, timebase, source)
    _coherence_options(sections["coherence"], get, warnings, data)
    hybrid = sections.pop("hybrid", {})
    _inputs(settings, data, hybrid, get, warnings, mode)

    for name in ("motion", "generation", "coherence", "backends"):
        if sections[name]:
            data[name] = sections[name]
    units, used_by_units = controlnet_units(settings, timebase, source, warnings, mode=mode)
    if units:
        data["controlnet"] = units
    if _truthy(get("make_gif")):
        data.setdefault("output", {})["gif"] = True

    not_imported = {
        k: v for k, v in settings.items() if k not in HANDLED and k not in SCHEDULE_KEYS and k not in used_by_units
    }
    switched_on = [k for k, v in not_imported.items() if not QUIET.match(k) and _is_on(k, v, settings)]
    if switched_on:
        warnings.append("switched on in Deforum but not supported here, ignored: " + ", ".join(switched_on))
    if not_imported:
        warnings.append(
            f"{len(not_imported)} Deforum settings animator does not use are listed at the end of this file"
        )
    header = [
        "Imported from a Deforum settings file by `animator import deforum`.",
        "",
        "Schedules keep Deforum's units and meanings and evaluate to the same per-frame values as Deforum's own",
        "parser (generation.strength is Deforum's strength_schedule: the share of the previous frame kept).",
        "Check the notes below, then run `animator schedule` on this file to see every value.",
    ]
    return ImportResult(data=data, warnings=warnings, header=header, not_imported=not_imported)


# ---------------------------------------------------------------------------------------------- other settings


def _number(value: Any, key: str, source: str | None = None) -> float:
    """A finite number from a setting; anything else (text, NaN, infinity, a list) is the project's error."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise AnimatorError(f"expected a finite number, got {shown}", file=source, field=key)
    return number


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))


def _is_on(key: str, value: Any, settings: dict) -> bool:
    """Whether an unsupported setting is switched on (worth a warning rather than just a comment)."""
    unit = re.match(r"(cn_\d+|controlnet)_", key)
    if unit:  # ControlNet units: one warning for an enabled unit, not one per field
        return key == f"{unit.group(1)}_enabled" and _truthy(value)
    return value is True


def _size(value: Any, key: str, warnings: list[str], source: str | None = None) -> int:
    size = int(_number(value, key, source))
    rounded = max(64, min(8192, int(round(size / 8)) * 8))
    if rounded != size:
        warnings.append(f"{key} {size} rounded to {rounded} (a multiple of 8)")
    return rounded


def _repaired(text: str, name: str, warnings: list[str]) -> str:
    """A prompt whose unbalanced brackets the web UI would have closed or kept as text, written so that it means the
    same here (where an unbalanced bracket is an error)."""
    from animator.keyframes.prompt_syntax import repair_brackets

    sides = re.split(r"(\s*--neg\b)", text, maxsplit=1, flags=re.IGNORECASE)  # each side is parsed on its own
    repaired = "".join(part if index % 2 else repair_brackets(part) for index, part in enumerate(sides))
    if repaired != text:
        warnings.append(f"{name}: unbalanced brackets written as the web UI reads them: {repaired[-60:]!r}")
    return repaired


def prompt_notes(texts: list[str]) -> list[str]:
    """Notes on the prompts' web UI syntax: it keeps its meaning here (emphasis, BREAK, LoRA tags), but LoRA and
    embedding files must be found, and what the web UI reads leniently ((text:not a number)) is an error here."""
    from animator.keyframes.prompt_syntax import parse_prompt

    notes, loras, embeddings = [], {}, {}
    for text in texts:
        evaluated = re.sub(r"`[^`]*`", "1", text)  # backtick math stands for a number
        for side in re.split(r"\s*--neg\b", evaluated, maxsplit=1, flags=re.IGNORECASE):
            loras.update(dict.fromkeys(name.strip() for name in re.findall(r"<lora:([^:>]+)", side)))
            try:
                embeddings.update(dict.fromkeys(parse_prompt(side).embeddings))
            except AnimatorError as exc:
                notes.append(f"a prompt the web UI reads leniently is an error here; fix it: {exc.message}")
    if loras:
        notes.append(
            f"prompts use LoRAs ({', '.join(loras)}): set backends.lora_dirs to the folder(s) that hold "
            "NAME.safetensors for each (the web UI's models/Lora)"
        )
    if embeddings:
        notes.append(f"prompts use embeddings ({', '.join(embeddings)}): set backends.embedding_dirs to their folder")
    if any(re.search(r"[(\[]|\bBREAK\b|<lora:", text) for text in texts):
        notes.append(
            "prompts keep the web UI's syntax and meaning: (word:1.2) and [word] weights, BREAK, <lora:...> tags "
            "(see them parsed with `animator prompt FILE --frame N`)"
        )
    return notes


def _prompts(value: Any, warnings: list[str]) -> dict:
    if not value:
        return {}
    if isinstance(value, list):
        return {i: str(p) for i, p in enumerate(value)}
    if not isinstance(value, dict):
        warnings.append(f"prompts of type {type(value).__name__} were not understood and were skipped")
        return {}

    def frame_like(x) -> bool:
        return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, str) and x.strip().isdigit())

    if all(frame_like(v) for v in value.values()) and not all(frame_like(k) for k in value):
        # the notebook era: {prompt text: frame index}
        return {int(v): str(k) for k, v in value.items()}
    out = {}
    for key, text in value.items():
        frame = str(key).strip()
        out[int(frame) if re.fullmatch(r"\d{1,12}", frame) else frame] = "" if text is None else str(text)
    return out


def _motion_options(settings, motion: dict, get, warnings) -> None:
    border = str(get("border", default="replicate")).lower()
    if border in BORDERS:
        motion["border"] = border
    padding = str(get("padding_mode", default="border")).lower()
    motion["fill"] = {"border": "border", "reflection": "reflection", "zeros": "none"}.get(padding, "border")
    sampling = str(get("sampling_mode", default="bicubic")).lower()
    if sampling not in ("bilinear", "bicubic"):
        warnings.append(f"sampling_mode {sampling!r} is not supported; using bilinear")
        sampling = "bilinear"
    motion["sampling"] = sampling
    # Deforum's 3D values keep their numbers; the render rescales its exaggerated zoom and roll (motion.units).
    motion["units"] = "deforum"
    if _truthy(get("enable_perspective_flip", "flip_2d_perspective")):
        motion["perspective_flip"] = True
    for key, name in (("fov", "fov"), ("near_plane", "near"), ("far_plane", "far")):
        # Old notebook files: a single number instead of a schedule.
        if key in settings and f"{name}_schedule" not in settings and isinstance(settings[key], (int, float)):
            motion[name] = f"0:({settings[key]!r})"


def sampler_name(text: str, warnings: list[str], key: str = "sampler") -> str:
    """Deforum / webui sampler names ("DPM++ 2M Karras", "Euler a") -> ours (dpm++_2m_karras, euler_a)."""
    name = str(text).strip().lower().replace(" ", "_").replace("-", "_")
    if is_sampler_name(name):
        return normalize_sampler_name(name)
    warnings.append(f"{key}: sampler {text!r} is not available; using euler_a")
    return "euler_a"


def _generation_options(settings, generation: dict, backends: dict, get, warnings, timebase, source) -> None:
    if _truthy(get("enable_steps_scheduling")) and "steps_schedule" in settings:
        text, notes = convert_schedule(settings["steps_schedule"], timebase, key="steps_schedule", source=source)
        generation["steps"] = text
        warnings += [f"steps_schedule: {n}" for n in notes]
    elif get("steps") is not None:
        generation["steps"] = f"0:({int(_number(get('steps'), 'steps', source))})"
    if "cfg_scale_schedule" not in settings and isinstance(get("scale"), (int, float)):
        generation["cfg"] = f"0:({get('scale')!r})"
    sampler = get("sampler_name", "sampler")
    if isinstance(sampler, str) and sampler:
        backends["sampler"] = sampler_name(sampler, warnings)
    if _truthy(get("enable_sampler_scheduling")):
        text = string_schedule(get("sampler_schedule"), sampler_name, warnings, "sampler_schedule")
        if text:
            generation["sampler"] = text
    noise_type = str(get("noise_type", default="perlin")).lower()
    if noise_type == "perlin":
        generation["noise_type"] = "perlin"
        for key, name in (("perlin_octaves", "perlin_octaves"), ("perlin_persistence", "perlin_persistence")):
            if get(key) is not None:
                generation[name] = get(key)
    else:
        generation["noise_type"] = "gaussian"
        if noise_type != "gaussian":
            warnings.append(f"noise_type {noise_type!r} imported as gaussian (same amount, different distribution)")
    for key, name in (("sigma_schedule", "sharpen_sigma"), ("threshold_schedule", "sharpen_threshold")):
        value = _constant_schedule_value(get(key))
        if value is not None:
            generation[name] = value
        elif get(key) is not None:
            warnings.append(f"{key} varies over time; animator takes a single {name}; kept the default")


def _constant_schedule_value(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    match = re.fullmatch(r"\s*0\s*:\s*\(\s*([+-]?(\d+\.?\d*|\.\d+))\s*\)\s*", text)
    return float(match.group(1)) if match else None


def _coherence_options(coherence: dict, get, warnings, data) -> None:
    mode = str(get("color_coherence", default="None"))
    lowered = mode.lower()
    if lowered in COLOR_MATCHES:
        coherence["color"] = lowered
    elif lowered == "match frame 0 lab":
        coherence["color"] = "lab"
    elif lowered == "video input":
        coherence["color"], coherence["reference"] = "lab", "video"
    elif lowered == "image":
        coherence["color"], coherence["reference"] = "lab", "image"
        if get("color_coherence_image_path"):
            coherence["image"] = str(get("color_coherence_image_path"))
    else:
        warnings.append(f"color_coherence {mode!r} is not supported; using lab")
        coherence["color"] = "lab"


def _inputs(settings, data, hybrid: dict, get, warnings, mode) -> None:
    video = get("video_init_path", default="")
    if mode == "video":
        if not video:
            raise AnimatorError("animation_mode is Video Input but video_init_path is empty", field="video_init_path")
        section = {
            "path": str(video),
            "every_nth": max(1, int(_number(get("extract_nth_frame", default=1), "extract_nth_frame"))),
        }
        start = int(_number(get("extract_from_frame", default=0) or 0, "extract_from_frame"))
        end = int(_number(get("extract_to_frame", default=-1) or -1, "extract_to_frame"))
        if start > 0:
            section["from_frame"] = start
        if end >= 0:
            section["to_frame"] = end
        data["video_input"] = section
    hybrid_motion = str(get("hybrid_motion", default="None")).lower()
    composite = get("hybrid_composite", default="None")
    composite_on = composite not in (False, None, "None", "none", "")
    if hybrid_motion != "none" or composite_on:
        if not video:
            warnings.append("hybrid video is switched on but video_init_path is empty; hybrid settings skipped")
        else:
            motion = {"optical flow": "optical_flow", "perspective": "perspective", "affine": "affine"}.get(
                hybrid_motion, "none"
            )
            section = {"path": str(video), "motion": motion, **hybrid}
            if not composite_on:
                section.pop("composite_alpha", None)
            if str(composite).lower() == "before motion":
                section["before_generation"] = True
            data["hybrid"] = section
    soundtrack = str(get("add_soundtrack", default="None"))
    if soundtrack == "File" and get("soundtrack_path"):
        path = str(get("soundtrack_path"))
        if re.match(r"https?://", path):
            warnings.append(f"soundtrack_path is a URL ({path}); download it and add `audio: {{path: ...}}`")
        else:
            data["audio"] = {"path": path}
            warnings.append(f"soundtrack {path} imported as audio.path; check that the file exists on this machine")
    elif soundtrack == "Init Video" and mode == "video":
        data.setdefault("video_input", {})["keep_audio"] = True


# ---------------------------------------------------------------------------------------------- ControlNet units

# Deforum's (the ControlNet extension's) preprocessor -> our source. Depth preprocessors all become the render's own
# depth; tile preprocessors give the image itself.
_CN_SOURCES = {
    "none": None,  # the input video's frames as they are, or the previous frame with loopback
    "canny": "canny",
    "depth": "depth", "depth_midas": "depth", "depth_zoe": "depth", "depth_leres": "depth", "depth_leres++": "depth",
    "depth_anything": "depth", "depth_anything_v2": "depth",
    "hed": "hed", "softedge_hed": "hed", "softedge_hedsafe": "hed",
    "pidinet": "softedge", "pidinet_safe": "softedge", "softedge_pidinet": "softedge", "softedge_pidisafe": "softedge",
    "lineart": "lineart", "lineart_realistic": "lineart", "lineart_coarse": "lineart", "lineart_standard": "lineart",
    "lineart_anime": "lineart_anime", "lineart_anime_denoise": "lineart_anime",
    "openpose": "openpose", "openpose_full": "openpose", "openpose_face": "openpose", "openpose_hand": "openpose",
    "dw_openpose_full": "openpose",
    "mlsd": "mlsd", "normal_bae": "normalbae",
    "tile_resample": "warped", "tile_colorfix": "warped", "tile_colorfix+sharp": "warped",
}  # fmt: skip
_CN_MODES = {"balanced": "balanced", "my prompt is more important": "prompt", "controlnet is more important": "control"}


def controlnet_units(
    settings: dict[str, Any], timebase: TimeBase, source: str, warnings: list[str], *, mode: str = "3d"
) -> tuple[list[dict[str, Any]], set[str]]:
    """Deforum's enabled ``cn_1`` ... ``cn_5`` units as ``controlnet:`` units, and the settings keys they used.

    A unit that cannot be carried over (no model, a preprocessor with no counterpart here) is left out with a note,
    and its keys stay among the settings not imported. Every unit gets a note: Deforum names a web-UI model, which is
    not a file; the import writes it as a hub id where the name is a known one, and ``model:`` must be checked."""
    units, used = [], set()
    for number in range(1, 6):
        prefix = f"cn_{number}"
        if not _truthy(settings.get(f"{prefix}_enabled")):
            continue
        unit = _controlnet_unit(settings, prefix, timebase, source, warnings, mode)
        if unit is not None:
            units.append(unit)
            used |= {key for key in settings if key.startswith(prefix + "_")}
    return units, used


def _controlnet_unit(settings, prefix: str, timebase: TimeBase, source: str, warnings: list[str], mode: str):
    name = re.sub(r"\s*\[[0-9a-f]+\]\s*$", "", str(settings.get(f"{prefix}_model") or "")).strip()
    module = str(settings.get(f"{prefix}_module") or "none").strip().lower()
    if not name or name.lower() == "none":
        warnings.append(f"{prefix}: enabled without a model; left out")
        return None
    if module not in _CN_SOURCES:
        warnings.append(f"{prefix}: the preprocessor {module!r} has no counterpart here; the unit is left out")
        return None
    if _CN_SOURCES[module] == "depth" and mode != "3d":
        warnings.append(f"{prefix}: {module} would be the render's own depth, which a {mode} render has not; left out")
        return None
    video = str(settings.get(f"{prefix}_vid_path") or "").strip()
    unit: dict[str, Any] = {"model": _hub_id(name)}
    warnings.append(
        f"{prefix}: model {name!r} is a web-UI model name; written as {unit['model']!r}: download it "
        "(`hf download <id>`) or set `model:` to a local file or folder"
    )
    kind = _CN_SOURCES[module]
    if kind is None:
        if video:
            unit.update(source="video", path=video)
        else:
            unit["source"] = "warped"
            if not _truthy(settings.get(f"{prefix}_loopback_mode")):
                warnings.append(f"{prefix}: no preprocessor and no input video; the unit sees the warped frame")
    else:
        unit["source"] = kind
        if kind == "depth" and module != "depth":
            warnings.append(f"{prefix}: {module} becomes the render's own depth (no second depth model runs)")
        if video:
            warnings.append(f"{prefix}: {module} runs on the render's frame here, not on the input video {video}")
    if kind == "canny":
        low, high = (settings.get(f"{prefix}_threshold_{part}") for part in "ab")
        if _is_threshold(low) and _is_threshold(high) and int(low) < int(high):
            unit.update(canny_low=int(low), canny_high=int(high))
        else:
            warnings.append(f"{prefix}: canny thresholds {low!r}, {high!r} are not 0..255 with a < b; using 100, 200")
    if kind in CONTROL_ANNOTATOR_SOURCES:
        warnings.append(f"{prefix}: source {kind} needs the controlnet-aux extra and `annotator:`, its weights folder")
    for field in ("weight", "guidance_start", "guidance_end"):
        value = settings.get(f"{prefix}_{field}")
        if value is not None:
            text, notes = convert_schedule(value, timebase, key=f"{prefix}_{field}", source=source)
            warnings += [f"{prefix}_{field}: {note}" for note in notes]
            unit[field] = text
    mode = settings.get(f"{prefix}_control_mode")
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode < len(CONTROL_MODES):
        unit["mode"] = CONTROL_MODES[mode]  # Deforum numbers the modes in this order: balanced, prompt, control
    elif mode is not None:
        unit["mode"] = _CN_MODES.get(str(mode).strip().lower(), "balanced")
    return unit


def _hub_id(name: str) -> str:
    """The hub id of a web-UI ControlNet name where it is a known family (lllyasviel's v1.1 models, diffusers' SDXL
    ones), else the name itself."""
    if name.startswith("control_v11"):
        return f"lllyasviel/{name.removesuffix('_fp16')}"
    sdxl = re.match(r"diffusers_xl_(canny|depth)_(full|mid|small)$", name)
    if sdxl:
        suffix = "" if sdxl.group(2) == "full" else f"-{sdxl.group(2)}"
        return f"diffusers/controlnet-{sdxl.group(1)}-sdxl-1.0{suffix}"
    return name


def _is_threshold(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and float(value).is_integer()
        and 0 <= value <= 255
    )
