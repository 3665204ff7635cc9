"""The names this module held before the keyframe schema was split into modules, re-exported for code that still
imports them from here. New code imports from :mod:`animator.keyframes` (or the module that defines a name)."""

from animator.choices import MODES, SAMPLERS, SEED_BEHAVIORS
from animator.keyframes.inputs import starts_from_nothing
from animator.keyframes.loading import config_from_dict, load_config, read_keyframe_file
from animator.keyframes.locate import line_of
from animator.keyframes.sections import (
    AUDIO_FEATURES,
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
    audio_variable_names,
)

__all__ = [
    "MODES", "SAMPLERS", "SEED_BEHAVIORS", "starts_from_nothing", "config_from_dict", "load_config",
    "read_keyframe_file", "line_of", "AUDIO_FEATURES", "AnimationConfig", "AudioConfig", "BackendConfig",
    "CoherenceConfig", "ControlNetUnit", "GenerationConfig", "HybridConfig", "InterpolateConfig", "LoraConfig",
    "MotionConfig", "OutputConfig", "Section", "UpscaleConfig", "VideoInputConfig", "audio_variable_names",
]  # fmt: skip
