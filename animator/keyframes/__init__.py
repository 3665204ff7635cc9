"""Keyframe files, the schedule grammar, safe expressions, prompts and importers.

Typical use::

    from animator.keyframes import load_config, evaluate

    config = load_config("keyframes/demo.yaml")        # validated, frozen dataclasses
    schedules = evaluate(config)                       # every schedule at every frame
    schedules.values["translation_z"]                  # float64 (frames,)
    str(schedules.prompts[0])                          # "positive --neg negative"

Nothing here imports torch; audio analysis (librosa) is imported only when a file has an ``audio:`` section.
"""

from animator.keyframes.digest import config_digest, describe_changes
from animator.keyframes.evaluate import SCHEDULE_NAMES, EvaluatedSchedules, evaluate
from animator.keyframes.expressions import compile_expression, safe_eval
from animator.keyframes.inputs import files_read_by, starts_from_nothing
from animator.keyframes.loading import config_from_dict, load_config, read_keyframe_file
from animator.keyframes.locate import line_of
from animator.keyframes.prompts import FramePrompt, split_prompt
from animator.keyframes.schedule import Schedule, StringSchedule, TimeBase, parse_schedule, parse_string_schedule
from animator.keyframes.sections import (
    AnimationConfig,
    AudioConfig,
    BackendConfig,
    CoherenceConfig,
    ControlNetUnit,
    GenerationConfig,
    HybridConfig,
    InterpolateConfig,
    LoraConfig,
    MotionConfig,
    OutputConfig,
    Section,
    UpscaleConfig,
    VideoInputConfig,
)

__all__ = [
    "AnimationConfig", "AudioConfig", "BackendConfig", "CoherenceConfig", "GenerationConfig", "HybridConfig",
    "LoraConfig", "MotionConfig", "OutputConfig", "VideoInputConfig", "config_from_dict", "load_config",
    "ControlNetUnit", "Section", "InterpolateConfig", "UpscaleConfig", "read_keyframe_file", "line_of",
    "files_read_by", "starts_from_nothing", "config_digest", "describe_changes",
    "SCHEDULE_NAMES", "EvaluatedSchedules", "evaluate", "compile_expression", "safe_eval",
    "FramePrompt", "split_prompt", "Schedule", "StringSchedule", "TimeBase", "parse_schedule",
    "parse_string_schedule",
]  # fmt: skip
