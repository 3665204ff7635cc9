"""Every schedule at every frame: what the render loop, the CLI table and the plots read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from animator.errors import AnimatorError
from animator.keyframes.cross_checks import check_schedule_values
from animator.keyframes.locate import line_of
from animator.keyframes.prompts import FramePrompt, evaluate_prompts
from animator.keyframes.schedule import Schedule, TimeBase, parse_string_schedule
from animator.keyframes.sections import AnimationConfig

MOTION_SCHEDULES = (
    "angle", "zoom", "translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
    "rotation_3d_z", "transform_center_x", "transform_center_y", "fov", "near", "far", "perspective_flip_theta",
    "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv",
)  # fmt: skip
GENERATION_SCHEDULES = ("strength", "noise", "contrast", "cfg", "steps", "seed", "sharpen_amount")
SCHEDULE_NAMES = (*MOTION_SCHEDULES, *GENERATION_SCHEDULES, "color_strength", "flow_blend", "composite_alpha")
# per ControlNet unit i, evaluated under the names controlnet.<i>.<name>
CONTROLNET_SCHEDULES = ("weight", "guidance_start", "guidance_end")
STRING_SCHEDULE_NAMES = ("sampler",)
ROUNDED = ("steps", "seed")  # whole numbers, kept as float64


@dataclass(frozen=True)
class EvaluatedSchedules:
    """Per-frame values of every schedule.

    Attributes:
        frames: number of frames N.
        fps: frames per second.
        values: name -> float64 array ``(N,)`` for every name in :data:`SCHEDULE_NAMES` (read-only arrays).
        strings: name -> N strings for string schedules (``sampler``).
        prompts: one :class:`FramePrompt` per frame.
        keyframes: name -> frames (inside the animation) where that schedule has a keyframe, for plots and
            cadence planning; ``"prompts"`` lists the frames where a prompt keyframe starts.
    """

    frames: int
    fps: float
    values: dict[str, np.ndarray]
    strings: dict[str, list[str]] = field(default_factory=dict)
    prompts: list[FramePrompt] = field(default_factory=list)
    keyframes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        """``{"frames": N, "fps": F, "schedules": {name: [float]*N}, "prompts": [str]*N}``."""
        return {
            "frames": self.frames,
            "fps": self.fps,
            "schedules": {
                name: [float(v) for v in self.values[name]] for name in SCHEDULE_NAMES if name in self.values
            },
            "prompts": [str(p) for p in self.prompts],
        }

    def select(self, frames: range) -> EvaluatedSchedules:
        """The same schedules restricted to ``frames`` (a range inside ``0..N-1``)."""
        index = np.arange(self.frames)[frames.start : frames.stop : frames.step]
        return EvaluatedSchedules(
            frames=len(index),
            fps=self.fps,
            values={k: _readonly(v[index]) for k, v in self.values.items()},
            strings={k: [v[i] for i in index] for k, v in self.strings.items()},
            prompts=[self.prompts[i] for i in index],
            keyframes={k: tuple(f for f in v if f in frames) for k, v in self.keyframes.items()},
        )


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def config_schedules(config: AnimationConfig) -> dict[str, Schedule]:
    """Flat name -> :class:`Schedule` for every float schedule of a config."""
    out = {name: getattr(config.motion, name) for name in MOTION_SCHEDULES}
    out.update({name: getattr(config.generation, name) for name in GENERATION_SCHEDULES})
    out["color_strength"] = config.coherence.color_strength
    from animator.keyframes.sections import HybridConfig, VideoInputConfig

    out["flow_blend"] = (config.video_input or VideoInputConfig()).flow_blend
    out["composite_alpha"] = (config.hybrid or HybridConfig()).composite_alpha
    for i, unit in enumerate(config.controlnet):
        for name in CONTROLNET_SCHEDULES:
            out[f"controlnet.{i}.{name}"] = getattr(unit, name)
    return out


def uses_audio(config: AnimationConfig) -> bool:
    """Whether any schedule or prompt reads an audio variable or a beat time (then the soundtrack is analysed)."""
    audio_names = set(config.audio_variables)
    for schedule in config_schedules(config).values():
        if schedule.names & audio_names or schedule.uses_beats:
            return True
    from animator.keyframes.expressions import compile_expression
    from animator.keyframes.prompts import _BACKTICK
    from animator.keyframes.schedule import parse_frame_key

    for key, text in config.prompts:
        if parse_frame_key(key).beats is not None:
            return True
        if any(compile_expression(m.group(1)).names & audio_names for m in _BACKTICK.finditer(text)):
            return True
    return False


def audio_features(config: AnimationConfig):
    """Run audio analysis for ``config.audio`` (None without audio). Imported lazily: librosa is heavy."""
    if config.audio is None:
        return None
    if not config.audio.path.is_file():
        raise AnimatorError(
            "audio file not found",
            file=config.audio.path,
            field="audio.path",
            hint="fix audio.path (relative to the keyframe file) or remove the audio: section",
        )
    try:
        from animator.audio import analyze
    except ImportError as exc:
        raise AnimatorError(f"audio analysis is not available ({exc})", field="audio") from None

    audio = config.audio
    return analyze(
        audio.path,
        config.fps,
        frames=config.frames,
        offset_s=audio.offset,
        bands=dict(audio.bands),
        beat_decay_s=audio.beat_decay,
        stems=dict(audio.stems),
    )


def evaluate(
    config: AnimationConfig, frames: range | None = None, *, features=None, stop: int | None = None
) -> EvaluatedSchedules:
    """Evaluate every schedule and prompt of ``config`` at every frame (before ``stop``), and check every value
    against its field's range.

    Args:
        config: a loaded :class:`AnimationConfig`.
        frames: optional sub-range of ``range(stop)`` to return (values are those of the whole animation:
            ``max_f`` and ramps are those of the full render).
        features: precomputed audio analysis (object with ``.variables``, ``.beat_frames``); computed when None.
        stop: evaluate only frames ``0 .. stop-1`` (default: every frame): a render of the first 12 frames of a
            million-frame file evaluates 12. The values are those of the whole animation at those frames.

    Returns:
        :class:`EvaluatedSchedules` with ``values[name]`` float64 ``(N,)`` for every name in :data:`SCHEDULE_NAMES`
        (N = ``stop``, else ``config.frames``).

    Raises:
        AnimatorError: naming the field of an expression that fails (e.g. division by zero at some frame).
    """
    stop = config.frames if stop is None else int(stop)
    if not 1 <= stop <= config.frames:
        raise AnimatorError(f"stop must be in 1..{config.frames}, got {stop}", field="frames")
    if features is None and config.audio is not None and uses_audio(config):
        features = audio_features(config)
    variables: dict[str, np.ndarray] = {}
    beat_frames = None
    if features is not None:
        variables = {k: np.asarray(v, dtype=np.float64) for k, v in features.variables.items()}
        beat_frames = tuple(int(b) for b in np.asarray(features.beat_frames).ravel())
    timebase = TimeBase(
        frames=config.frames, fps=config.fps, seed=float(config.seed), bpm=config.bpm, beat_frames=beat_frames
    )

    values, keyframes = {}, {}
    for name, schedule in config_schedules(config).items():
        section = _section_of(name)
        try:
            result = schedule.evaluate(timebase, variables, stop=stop)
            keyframes[name] = tuple(sorted({f for f in schedule.key_frames(timebase) if 0 <= f < stop}))
        except AnimatorError as exc:
            dotted = f"{section}.{name}" if section else name
            raise AnimatorError(
                exc.message, file=config.path, line=line_of(config, dotted), field=dotted, hint=exc.hint
            ) from None
        values[name] = _readonly(np.round(result) if name in ROUNDED else result)
    _check_controlnet_values(config, values)
    check_schedule_values(config, values)  # every value in its field's range, in the file's units

    sampler = config.generation.sampler or parse_string_schedule(config.backends.sampler, name="sampler")
    strings = {"sampler": sampler.evaluate(timebase, stop=stop)}
    try:
        prompts = evaluate_prompts(
            config.prompts,
            timebase,
            variables,
            prefix=config.prompt_prefix,
            suffix=config.prompt_suffix,
            negative_prompt=config.negative_prompt,
            blend=config.prompt_blend,
            stop=stop,
        )
    except AnimatorError as exc:
        dotted = exc.field or "prompts"
        raise AnimatorError(
            exc.message, file=config.path, line=line_of(config, dotted), field=dotted, hint=exc.hint
        ) from None
    from animator.keyframes.schedule import parse_frame_key

    prompt_frames = {timebase.resolve(parse_frame_key(key)) for key, _ in config.prompts}
    keyframes["prompts"] = tuple(sorted(f for f in prompt_frames if 0 <= f < stop))
    result = EvaluatedSchedules(stop, config.fps, values, strings, prompts, keyframes)
    if frames is not None:
        if not isinstance(frames, range) or frames.start < 0 or frames.stop > stop or frames.step < 1:
            raise AnimatorError(f"frames must be a range inside 0..{stop - 1}, got {frames!r}", field="frames")
        result = result.select(frames)
    return result


def _check_controlnet_values(config: AnimationConfig, values: dict[str, np.ndarray]) -> None:
    """Each unit's weight >= 0 and 0 <= guidance_start < guidance_end <= 1 at every frame (expressions included)."""
    for i in range(len(config.controlnet)):
        weight, start, end = (values[f"controlnet.{i}.{name}"] for name in CONTROLNET_SCHEDULES)
        problems = (
            (f"controlnet.{i}.weight", weight < 0, "weight {:g} is negative", "a weight of 0 switches the unit off"),
            (
                f"controlnet.{i}.guidance_start",
                (start < 0) | (start > 1),
                "guidance_start {:g} is outside [0, 1]",
                None,
            ),
            (f"controlnet.{i}.guidance_end", (end < 0) | (end > 1), "guidance_end {:g} is outside [0, 1]", None),
            (f"controlnet.{i}.guidance_start", start >= end, "guidance_start {:g} is not below guidance_end", None),
        )
        for dotted, bad, message, hint in problems:
            if np.any(bad):
                frame = int(np.flatnonzero(bad)[0])
                value = values[dotted][frame]
                raise AnimatorError(
                    message.format(value) + f" at frame {frame}",
                    file=config.path,
                    line=line_of(config, dotted),
                    field=dotted,
                    hint=hint or "the unit acts from guidance_start to guidance_end: 0 <= start < end <= 1",
                )


def _section_of(name: str) -> str:
    if name.startswith("controlnet."):
        return ""
    if name in MOTION_SCHEDULES:
        return "motion"
    if name in GENERATION_SCHEDULES:
        return "generation"
    return {"color_strength": "coherence", "flow_blend": "video_input", "composite_alpha": "hybrid"}[name]
