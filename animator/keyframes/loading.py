"""Loading keyframe files (YAML / TOML / JSON) and settings dicts into a validated, frozen
:class:`~animator.keyframes.sections.AnimationConfig`: read the file, apply overrides, read every section, then
the rules that span fields (:mod:`animator.keyframes.cross_checks`).

Every error names the file, the line, the dotted field and what was expected; unknown keys get a did-you-mean.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from animator.choices import MODES, SEED_BEHAVIORS
from animator.errors import AnimatorError
from animator.keyframes.cross_checks import (
    MAX_SEED,
    check_beats,
    check_controlnet_unit,
    check_latent_feedback,
    check_mode_inputs,
    check_output,
    check_sections,
)
from animator.keyframes.fields import (
    Context,
    check_unknown,
    read_section,
    to_enum,
    to_float,
    to_int,
    to_path,
    to_str,
    type_error,
)
from animator.keyframes.locate import MAX_NESTING, LineLocator, yaml_loader, yaml_node_lines
from animator.keyframes.schedule import BASE_NAMES, parse_frame_key
from animator.keyframes.sections import (
    AnimationConfig,
    AudioConfig,
    BackendConfig,
    CoherenceConfig,
    ControlNetUnit,
    GenerationConfig,
    HybridConfig,
    MotionConfig,
    OutputConfig,
    Section,
    VideoInputConfig,
    audio_variable_names,
)

# top-level key -> the dataclass of that section
SECTIONS = {
    "motion": MotionConfig,
    "generation": GenerationConfig,
    "coherence": CoherenceConfig,
    "backends": BackendConfig,
    "video_input": VideoInputConfig,
    "hybrid": HybridConfig,
    "audio": AudioConfig,
    "output": OutputConfig,
}
# every key a keyframe file may hold at its top level
TOP_LEVEL_KEYS = (
    "version", "width", "height", "fps", "frames", "duration", "seed", "seed_behavior", "seed_iter_n", "mode",
    "init_image", "cadence", "bpm", "prompts", "prompt_prefix", "prompt_suffix", "negative_prompt", "prompt_blend",
    "controlnet", "sections", *SECTIONS,
)  # fmt: skip
# Recorded schedules of 10,000 frames take well under 1 MB; the bound keeps a wrong file from filling memory.
MAX_KEYFRAME_FILE_BYTES = 32 * 2**20


def read_keyframe_file(path: str | Path) -> tuple[dict, str, LineLocator]:
    """Read a YAML / TOML / JSON file into a dict (not validated), its text and a line locator.

    Work is bounded whatever the file holds: at most :data:`MAX_KEYFRAME_FILE_BYTES`, UTF-8 text,
    :data:`~animator.keyframes.locate.MAX_NESTING` levels, :data:`~animator.keyframes.locate.MAX_YAML_NODES` YAML
    nodes with aliases expanded; a file outside the bounds is an :class:`AnimatorError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise AnimatorError("keyframe file not found", file=path, hint="check the path")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json", ".toml"):
        raise AnimatorError(f"unknown keyframe file type {suffix!r}", file=path, hint="use .yaml, .yml, .toml or .json")
    text = _read_text(path)
    try:
        if suffix in (".yaml", ".yml"):
            data, lines = _parse_yaml(text, path)
            locator = LineLocator(text, lines)
        else:
            data = _parse_json(text, path) if suffix == ".json" else _parse_toml(text, path)
            _check_nesting(data, path)
            locator = LineLocator(text, None)
    except RecursionError:
        raise AnimatorError(
            f"the settings are nested too deeply (the limit is {MAX_NESTING} levels)",
            file=path,
            hint="a keyframe file needs a few levels; see docs/limits.md",
        ) from None
    except ValueError as exc:  # int() of a number over Python's 4,300-digit limit, while parsing
        raise AnimatorError(
            f"cannot read a value: {_value_problem(exc)}",
            file=path,
            line=_digits_line(text),
            hint="numbers in a keyframe file are at most a few digits long",
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AnimatorError(f"the file must hold a mapping of settings, got {type(data).__name__}", file=path, line=1)
    return data, text, locator


def _read_text(path: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark is dropped), at most :data:`MAX_KEYFRAME_FILE_BYTES`."""
    size = path.stat().st_size
    if size > MAX_KEYFRAME_FILE_BYTES:
        raise AnimatorError(
            f"the file is {size / 2**20:.0f} MB; a keyframe file is at most {MAX_KEYFRAME_FILE_BYTES // 2**20} MB",
            file=path,
            hint="is this a keyframe file? recorded schedules of 10,000 frames take well under 1 MB",
        )
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_mark(raw[:64]):
        raise AnimatorError(
            "the file is UTF-16 text; keyframe files are read as UTF-8",
            file=path,
            hint="save it as UTF-8 (in most editors: Save As..., encoding UTF-8)",
        )
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(0)) + 1
        raise AnimatorError(
            f"the file holds binary data (a zero byte at line {line}), not text",
            file=path,
            line=line,
            hint="give a keyframe file: YAML, TOML or JSON text (see keyframes/demo.yaml)",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AnimatorError(
            f"the file is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} is not valid UTF-8",
            file=path,
            line=line,
            hint="save it as UTF-8; a file saved as Latin-1 or Windows-1252 has accented letters such as this",
        ) from None


def _utf16_without_mark(head: bytes) -> bool:
    """ASCII text saved as UTF-16 without a byte-order mark: every other byte is zero."""
    odd, even = head[1::2], head[0::2]
    return len(head) >= 4 and (odd.count(0) == len(odd)) != (even.count(0) == len(even))


def _parse_yaml(text: str, path: Path) -> tuple[object, dict[str, int]]:
    """The data and the dotted-field lines; the composed nodes are checked (size with aliases expanded, nesting,
    aliases inside themselves, duplicate keys) before anything is built from them."""
    import yaml

    loader = yaml_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = yaml_node_lines(node, path)
        return loader.construct_document(node), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise AnimatorError(
            f"not valid YAML: {getattr(exc, 'problem', None) or _first_line(exc)}",
            file=path,
            line=mark.line + 1 if mark else None,
            hint="check indentation and quote strings containing ':' or '#'",
        ) from None
    finally:
        loader.dispose()


def _parse_json(text: str, path: Path):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnimatorError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None


def _parse_toml(text: str, path: Path):
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise AnimatorError(f"not valid TOML: {exc}", file=path, line=int(line.group(1)) if line else None) from None


def _check_nesting(data, path: Path) -> None:
    """Refuses data nested more than :data:`MAX_NESTING` levels (walked without recursion)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise RecursionError
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _value_problem(exc: ValueError) -> str:
    if "digits" in str(exc):
        return f"a number has more than {sys.get_int_max_str_digits():,} digits"
    return _first_line(exc)


def _digits_line(text: str) -> int | None:
    """The line of the first run of over 4,300 digits (what int() refuses), for the error."""
    match = re.search(r"\d{4301}", text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def load_config(
    path: str | Path, overrides: Mapping[str, object] | None = None, *, base_dir: str | Path | None = None
) -> AnimationConfig:
    """Load and validate a keyframe file (.yaml/.yml, .toml, .json).

    Args:
        path: the keyframe file. Relative paths inside it resolve against its folder.
        overrides: dotted keys applied before validation, e.g. ``{"backends.denoise": "x", "frames": 12}``.
        base_dir: resolve relative paths against this folder instead (a run folder's copy of a keyframe file
            resolves them against the original's folder).

    Raises:
        AnimatorError: naming file, line, dotted field and what was expected.
    """
    path = Path(path)
    data, text, locator = read_keyframe_file(path)
    base = Path(base_dir) if base_dir is not None else path.parent
    return _build_config(
        data, source=str(path), base_dir=base, text=text, locator=locator, path=path, overrides=overrides
    )


def config_from_dict(
    data: Mapping,
    *,
    source: str = "<dict>",
    base_dir: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> AnimationConfig:
    """Validate a settings dict exactly as :func:`load_config` validates a file (``source`` names it in errors)."""
    if not isinstance(data, Mapping):
        raise AnimatorError(f"expected a mapping of settings, got {type(data).__name__}", file=source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _build_config(
        dict(data), source=source, base_dir=base, text="", locator=LineLocator("", None), path=None, overrides=overrides
    )


def _apply_overrides(data: dict, overrides: Mapping[str, object] | None, source: str) -> dict:
    data = json.loads(json.dumps(data, default=str)) if overrides else data  # deep copy of plain data
    for dotted, value in (overrides or {}).items():
        node = data
        parts = str(dotted).split(".")
        for part in parts[:-1]:
            child = node[_list_index(node, part, dotted, source)] if isinstance(node, list) else node.get(part)
            if child is None and isinstance(node, dict):
                child = node[part] = {}
            if not isinstance(child, (dict, list)):
                raise AnimatorError(f"cannot override {dotted!r}: {part!r} is not a section", file=source, field=dotted)
            node = child
        node[_list_index(node, parts[-1], dotted, source) if isinstance(node, list) else parts[-1]] = value
        if parts == ["frames"]:
            data.pop("duration", None)  # an explicit frame count replaces the file's duration
    return data


def _list_index(items: list, part: str, dotted: str, source: str) -> int:
    """The item of a list a dotted override names by its index (``controlnet.0.weight``, ``sections.1.image``)."""
    if not part.isdigit() or int(part) >= len(items):
        raise AnimatorError(
            f"cannot override {dotted!r}: {part!r} is not an item of a {len(items)}-item list",
            file=source,
            field=dotted,
            hint=f"list items are numbered from 0 to {len(items) - 1}" if items else "the list is empty",
        )
    return int(part)


def _build_config(data, *, source, base_dir, text, locator, path, overrides) -> AnimationConfig:
    """Every field of ``data`` (overrides applied) read and checked, in the order the errors are reported."""
    data = _apply_overrides(data, overrides, source)
    ctx = Context(source, locator, Path(base_dir), frozenset(), frozenset(str(k) for k in overrides or {}))
    check_unknown(data.keys(), TOP_LEVEL_KEYS, ctx, "")
    version = data.get("version", 1)
    if version != 1:
        raise ctx.error("version", f"unsupported version {version!r}; this animator reads version 1")

    width = to_int(data.get("width", 512), "width", ctx, 64, 8192, multiple=8)
    height = to_int(data.get("height", 512), "height", ctx, 64, 8192, multiple=8)
    fps = to_float(data.get("fps", 24), "fps", ctx, 1e-3, 1000.0)
    bpm = None if data.get("bpm") is None else to_float(data["bpm"], "bpm", ctx, 1.0, 1000.0)
    seed = _seed(data.get("seed", -1), ctx)

    sections = {}
    audio = None if data.get("audio") is None else read_section(AudioConfig, data["audio"], "audio", ctx)
    sections["audio"] = audio
    ctx.names = BASE_NAMES | frozenset(audio_variable_names(audio))  # audio variables exist only with audio
    frames = _frames(data, fps, audio, ctx)
    for name in ("video_input", "hybrid"):
        sections[name] = None if data.get(name) is None else read_section(SECTIONS[name], data[name], name, ctx)
    for name in ("motion", "generation", "coherence", "backends", "output"):
        sections[name] = read_section(SECTIONS[name], data.get(name) or {}, name, ctx)

    mode = to_enum(str(data.get("mode", "3d")).lower(), "mode", ctx, MODES)
    check_mode_inputs(sections, mode, ctx)
    prompts = _prompts(data.get("prompts"), ctx)
    controlnet = _controlnet_units(data.get("controlnet"), ctx)
    check_beats(sections, prompts, bpm, audio, ctx, controlnet)
    check_latent_feedback(sections, mode, ctx)
    sections["output"] = check_output(sections["output"], data.get("output") or {}, fps, width, height, mode, ctx)
    frame_sections = _frame_sections(data.get("sections"), frames, ctx)

    return AnimationConfig(
        path=Path(path).resolve() if path is not None else None,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        seed=seed,
        seed_behavior=to_enum(data.get("seed_behavior", "iter"), "seed_behavior", ctx, SEED_BEHAVIORS),
        seed_iter_n=to_int(data.get("seed_iter_n", 1), "seed_iter_n", ctx, 1, 10**6),
        mode=mode,
        init_image=to_path(data.get("init_image"), "init_image", ctx, optional=True),
        cadence=to_int(data.get("cadence", 1), "cadence", ctx, 1, 1000),
        bpm=bpm,
        prompts=prompts,
        prompt_prefix=to_str(data.get("prompt_prefix", ""), "prompt_prefix", ctx),
        prompt_suffix=to_str(data.get("prompt_suffix", ""), "prompt_suffix", ctx),
        negative_prompt=to_str(data.get("negative_prompt", ""), "negative_prompt", ctx),
        prompt_blend=to_int(data.get("prompt_blend", 0), "prompt_blend", ctx, 0, 10**6),
        motion=sections["motion"],
        generation=sections["generation"],
        coherence=sections["coherence"],
        backends=sections["backends"],
        video_input=sections["video_input"],
        hybrid=sections["hybrid"],
        audio=audio,
        output=sections["output"],
        source_text=text,
        controlnet=controlnet,
        sections=frame_sections,
    )


def _seed(value, ctx: Context) -> int:
    """The file's seed: a whole number from 0 to 2**32 - 1, or -1 for a random one (recorded in the run folder)."""
    try:
        return to_int(value, "seed", ctx, -1, MAX_SEED)
    except AnimatorError as exc:
        hint = f"a seed is a whole number from 0 to {MAX_SEED}, or -1 for a random seed"
        hint += f"; {exc.hint}" if exc.hint else ""
        raise AnimatorError(exc.message, file=exc.file, line=exc.line, field=exc.field, hint=hint) from None


def _frames(data: dict, fps: float, audio: AudioConfig | None, ctx: Context) -> int:
    if "frames" in data and data["frames"] is not None:
        return _frame_count(data["frames"], "frames", fps, audio, ctx)
    if data.get("duration") is not None:
        return _frame_count(data["duration"], "duration", fps, audio, ctx)
    raise ctx.error(
        "frames", "missing `frames:` (or `duration:`)", hint="e.g. frames: 240, frames: 10s or duration: 10s"
    )


def _frame_count(value, dotted: str, fps: float, audio: AudioConfig | None, ctx: Context) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "audio":
            if audio is None:
                raise ctx.error(dotted, "`audio` length needs an `audio:` section with a path")
            if not audio.path.is_file():
                raise ctx.error(
                    dotted,
                    f"`frames: audio` needs the audio file, which was not found: {audio.path}",
                    hint="fix audio.path (relative to the keyframe file) or give a frame count",
                )
            try:
                from animator.audio import audio_duration  # lazy: librosa is heavy
            except ImportError as exc:
                raise ctx.error(dotted, f"audio support is not available ({exc})") from None
            try:
                seconds = float(audio_duration(audio.path)) - audio.offset
            except AnimatorError as exc:
                raise ctx.relocate(exc, dotted) from None
            return max(1, int(round(seconds * fps)))
        match = re.fullmatch(r"(\d+\.?\d*|\.\d+)\s*s", text)
        if match:
            frames = int(round(float(match.group(1)) * fps))
            if frames < 1:
                raise ctx.error(dotted, f"{value!r} is shorter than one frame at {fps:g} fps")
            return frames
        if re.fullmatch(r"\d+", text):
            value = int(text)
        else:
            raise ctx.error(dotted, f"expected a frame count, a time like '10s' or 'audio', got {value!r}")
    return to_int(value, dotted, ctx, 1, 10**7)


def _prompts(value, ctx: Context) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (("0", value),)
    if isinstance(value, list):
        value = {i: v for i, v in enumerate(value)}
    if not isinstance(value, dict):
        raise ctx.error("prompts", f"expected a mapping of frame -> prompt, got {type(value).__name__}")
    out = []
    seen: dict[str, str] = {}
    for key, text in value.items():
        dotted = f"prompts.{key}"
        try:
            frame_key = parse_frame_key(key)
        except AnimatorError as exc:
            raise ctx.relocate(exc, dotted) from None
        if frame_key.text in seen:
            raise ctx.error(dotted, f"frame {frame_key.text} has two prompts")
        seen[frame_key.text] = key
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ctx.error(dotted, f"expected prompt text, got {type(text).__name__}")
        from animator.keyframes.prompts import check_prompt

        try:
            check_prompt(text, ctx.names)
        except AnimatorError as exc:
            raise ctx.relocate(exc, dotted) from None
        out.append((frame_key.text, text))
    return tuple(out)


def _controlnet_units(value, ctx: Context) -> tuple[ControlNetUnit, ...]:
    """`controlnet:` -> units; one mapping is a list of one, a bare string a unit with that model."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise type_error(value, "controlnet", ctx, "a list of units ({model: ..., source: ...})")
    units = []
    for i, item in enumerate(value):
        unit = read_section(ControlNetUnit, {"model": item} if isinstance(item, str) else item, f"controlnet.{i}", ctx)
        check_controlnet_unit(unit, f"controlnet.{i}", ctx)
        units.append(unit)
    return tuple(units)


def _frame_sections(value, frames: int, ctx: Context) -> tuple[Section, ...]:
    """`sections:` -> sections checked to cover the animation (() when absent)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise type_error(value, "sections", ctx, 'a list of sections ({frames: "0:48", start: ...})')
    return check_sections(
        [read_section(Section, item, f"sections.{i}", ctx) for i, item in enumerate(value)], frames, ctx
    )
