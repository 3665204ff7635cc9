"""Keyframe files: load YAML / TOML / JSON, validate everything, return frozen dataclasses.

Every error names the file, the line, the dotted field and what was expected; unknown keys get a did-you-mean.
Schedule fields hold parsed :class:`~animator.keyframes.schedule.Schedule` objects, other fields plain values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from animator.choices import (
    CONTROL_FILE_SOURCES,
    CONTROL_MODES,
    CONTROL_SOURCES,
    CONTROL_UNION_TYPES,
    INTERPOLATE_METHODS,
    SAMPLERS,
    SECTION_STARTS,
    UPSCALE_METHODS,
    UPSCALE_MODEL_SUFFIXES,
)
from animator.errors import AnimatorError
from animator.keyframes.schedule import (
    BASE_NAMES,
    INTERPOLATIONS,
    Schedule,
    StringSchedule,
    parse_frame_key,
    parse_schedule,
    parse_string_schedule,
)

AUDIO_FEATURES = ("rms", "onset", "beat", "beat_i", "bar", "bpm")  # plus one variable per band and per stem feature
STEM_FEATURES = ("rms", "onset", "beat", "bass", "mid", "high")


def _spec(kind: str, **options) -> dict:
    return {"spec": (kind, options)}


def _schedule_field(default: str, **options):
    """A schedule field: parsed default, validation options in the metadata."""
    name_free = parse_schedule(default)  # parsed once; Schedule is frozen, so sharing it is safe
    return field(default=name_free, metadata=_spec("schedule", default=default, **options))


# ------------------------------------------------------------------------------------------------ sections


@dataclass(frozen=True)
class MotionConfig:
    """Camera motion, per-frame increments as in Deforum (units below)."""

    angle: Schedule = _schedule_field("0:(0)")  # 2D: degrees per frame, counter-clockwise
    zoom: Schedule = _schedule_field("0:(1.0)")  # 2D: scale factor per frame
    translation_x: Schedule = _schedule_field("0:(0)")  # 2D px / 3D units per frame
    translation_y: Schedule = _schedule_field("0:(0)")
    translation_z: Schedule = _schedule_field("0:(0)")  # 3D: forward is positive
    rotation_3d_x: Schedule = _schedule_field("0:(0)")  # degrees per frame
    rotation_3d_y: Schedule = _schedule_field("0:(0)")
    rotation_3d_z: Schedule = _schedule_field("0:(0)")
    transform_center_x: Schedule = _schedule_field("0:(0.5)")  # 2D centre, fraction of W
    transform_center_y: Schedule = _schedule_field("0:(0.5)")  # fraction of H
    fov: Schedule = _schedule_field("0:(40)")  # vertical field of view, degrees
    near: Schedule = _schedule_field("0:(200)")  # depth of the nearest surface, z units
    far: Schedule = _schedule_field("0:(10000)")  # depth of the farthest surface
    perspective_flip: bool = field(default=False, metadata=_spec("bool"))  # 2D perspective flip on/off
    perspective_flip_theta: Schedule = _schedule_field("0:(0)")  # degrees
    perspective_flip_phi: Schedule = _schedule_field("0:(0)")
    perspective_flip_gamma: Schedule = _schedule_field("0:(0)")
    perspective_flip_fv: Schedule = _schedule_field("0:(53)")  # flip field of view, deg
    border: str = field(default="replicate", metadata=_spec("enum", choices=("replicate", "wrap", "reflect")))
    fill: str = field(
        default="background", metadata=_spec("enum", choices=("none", "border", "reflection", "telea", "background"))
    )  # how 3D disocclusion holes are filled
    # resampling of warped frames: bicubic (Deforum's, OpenCV's and PyTorch's a = -0.75 kernel) sharpens a little
    # more on every frame of a feedback loop; catmull_rom keeps more detail than bilinear and never sharpens
    sampling: str = field(default="bilinear", metadata=_spec("enum", choices=("bilinear", "bicubic", "catmull_rom")))
    # scene: translations in scene units (depth runs near..far). deforum: the 3D values mean what they mean in
    # Deforum (set by `animator import deforum`); translation_z and rotation_3d_z are rescaled by the render so an
    # imported file zooms and rolls by the same amount as in Deforum (animator.geometry.deforum_motion_to_scene).
    units: str = field(default="scene", metadata=_spec("enum", choices=("scene", "deforum")))
    # cadence tweens also follow the optical flow between the two diffused frames (backends.flow), on top of the
    # camera move: detail that the denoiser moved slides instead of cross-fading.
    cadence_flow: bool = field(default=False, metadata=_spec("bool"))


@dataclass(frozen=True)
class GenerationConfig:
    """What the img2img denoiser does per frame.

    ``strength`` (default ``"0:(0.65)"``, in [0, 1]) is the share of the previous frame kept (Deforum's meaning);
    the denoiser runs at ``1 - strength``. 0 = repaint fully, 1 = keep the frame.
    """

    # Share of the previous frame kept (Deforum's strength_schedule meaning); the denoiser runs at 1 - strength.
    # 0 = repaint fully, 1 = keep the frame. Imported Deforum / Parseq schedules are taken as they are.
    strength: Schedule = _schedule_field("0:(0.65)", low=0.0, high=1.0)
    noise: Schedule = _schedule_field("0:(0.02)")  # noise added before denoising
    noise_type: str = field(default="gaussian", metadata=_spec("enum", choices=("gaussian", "perlin")))
    perlin_octaves: int = field(default=4, metadata=_spec("int", low=1, high=16))
    perlin_persistence: float = field(default=0.5, metadata=_spec("float", low=0.0, high=1.0))
    contrast: Schedule = _schedule_field("0:(1.0)")  # multiplies contrast each frame
    cfg: Schedule = _schedule_field("0:(7)")  # classifier-free guidance scale
    steps: Schedule = _schedule_field("0:(25)")  # sampler steps (rounded)
    seed: Schedule = _schedule_field("0:(t)")  # per-frame seed for seed_behavior: schedule
    sampler: StringSchedule | None = field(default=None, metadata=_spec("string_schedule"))  # None: backends.sampler
    sharpen_amount: Schedule = _schedule_field("0:(0)")  # unsharp-mask amount
    sharpen_sigma: float = field(default=1.0, metadata=_spec("float", low=0.0, high=100.0))  # blur sigma, pixels
    sharpen_threshold: float = field(default=0.0, metadata=_spec("float", low=0.0, high=1.0))
    # Pixels the camera move revealed (3D disocclusions, video occlusions). fill: filled as motion.fill says and
    # denoised at the frame's strength like the rest (steps * denoise UNet evaluations, Deforum's behaviour).
    # repaint: drawn anew from noise in the same sampling run - better new content, but any revealed pixel makes
    # the frame run all `steps` evaluations (1 / denoise times the work: 25 instead of 16 at denoise 0.65).
    holes: str = field(default="fill", metadata=_spec("enum", choices=("fill", "repaint")))
    # What the next diffused frame starts from. image: the previous frame's pixels, warped, colour-matched,
    # sharpened, then VAE-encoded (Deforum's loop). latent: the previous frame's latents, moved by the same camera
    # warp at the latent grid (1/8 of the pixels): no VAE encode per frame, and no VAE round trip to blur the
    # picture, but colour coherence matches latent statistics (coherence.color/space only switch it on), noise is
    # added to the latents, and contrast and sharpening (pixel operations) are not available. 2d and 3d modes.
    feedback: str = field(default="image", metadata=_spec("enum", choices=("image", "latent")))


@dataclass(frozen=True)
class CoherenceConfig:
    """Keeping colours and depth steady across frames."""

    color: str = field(default="lab", metadata=_spec("enum", choices=("lab", "hsv", "rgb", "none")))
    reference: str = field(default="first", metadata=_spec("enum", choices=("first", "image", "video")))
    image: Path | None = field(default=None, metadata=_spec("path"))  # reference image when reference is image
    color_strength: Schedule = _schedule_field("0:(1)", low=0.0, high=1.0)
    depth_stability: str = field(default="align", metadata=_spec("enum", choices=("align", "none")))


@dataclass(frozen=True)
class LoraConfig:
    path: str = field(default="", metadata=_spec("str", required=True))  # .safetensors file or hub id
    scale: float = field(default=1.0, metadata=_spec("float", low=-10.0, high=10.0))


@dataclass(frozen=True)
class BackendConfig:
    """Which models do the work (hub ids, local folders or files)."""

    depth: str = field(default="offline", metadata=_spec("str"))  # offline | hub id | folder | .pt file
    depth_every: int = field(default=1, metadata=_spec("int", low=1, high=1000))  # estimate depth every k frames
    # depth model input size (short side); None: the model's own (DPT 384, Depth Anything 518). Smaller is faster.
    depth_resolution: int | None = field(default=None, metadata=_spec("int", low=32, high=4096, optional=True))
    flow: str = field(
        default="dis_medium",
        metadata=_spec(
            "enum",
            choices=("dis_ultrafast", "dis_fast", "dis_medium", "dis_fine", "farneback", "raft_small", "raft_large"),
        ),
    )
    denoise: str = field(default="none", metadata=_spec("str"))  # none | hub id | diffusers folder | checkpoint file
    model_config: str | None = field(default=None, metadata=_spec("str", optional=True))  # config for a checkpoint
    vae: str = field(default="auto", metadata=_spec("str"))  # auto | tiny | hub id / path
    lora: tuple[LoraConfig, ...] = field(default=(), metadata=_spec("lora"))
    # folders searched for LoRA files named by a bare name (in prompts or `lora:`), relative to the keyframe file
    lora_dirs: tuple[Path, ...] = field(default=(), metadata=_spec("paths"))
    # folders searched for textual-inversion embeddings, relative to the keyframe file
    embedding_dirs: tuple[Path, ...] = field(default=(), metadata=_spec("paths"))
    sampler: str = field(default="euler_a", metadata=_spec("enum", choices=SAMPLERS))
    device: str = field(default="auto", metadata=_spec("device"))  # auto | cpu | cuda | cuda:N | mps
    dtype: str = field(default="auto", metadata=_spec("enum", choices=("auto", "float32", "float16", "bfloat16")))
    # torch.compile the UNet, VAE, depth model and 3D warp: none | default | cudagraphs (CUDA graphs on top: fastest for
    # the fixed frame size of a render). The first frames wait for compiling (about a minute per model and size).
    compile: str = field(default="none", metadata=_spec("enum", choices=("none", "default", "cudagraphs")))
    # convolutions in channels-last memory layout on CUDA (faster tensor-core kernels); no effect on the CPU
    channels_last: bool = field(default=True, metadata=_spec("bool"))
    # the UNet's and VAE decoder's "upsample 2x, then 3x3 conv" layers as one 2x2 convolution at the input's size
    # (inputs of 8x8 and more): the same result up to rounding with 4/9 of their arithmetic; on the CPU and for
    # compiled models on a GPU (uncompiled on a GPU diffusers' layers are faster: backends/speed.py)
    subpixel_upsample: bool = field(default=True, metadata=_spec("bool"))
    # cuDNN times its convolution algorithms on the first call of each shape and keeps the fastest (a render's shapes
    # never change); CUDA only; torch's setting is process-wide, and each render on CUDA sets it to this value.
    # Off until measured on a whole render (bench_render --cudnn-benchmark on)
    cudnn_benchmark: bool = field(default=False, metadata=_spec("bool"))


@dataclass(frozen=True)
class VideoInputConfig:
    """Mode video: stylise an input clip."""

    path: Path = field(default=Path(), metadata=_spec("path", required=True))
    every_nth: int = field(default=1, metadata=_spec("int", low=1, high=10_000))
    from_frame: int = field(default=0, metadata=_spec("int", low=0, high=10**9))
    to_frame: int | None = field(default=None, metadata=_spec("int", low=0, high=10**9, optional=True))
    keep_audio: bool = field(default=True, metadata=_spec("bool"))
    flow_blend: Schedule = _schedule_field("0:(0.7)", low=0.0, high=1.0)


@dataclass(frozen=True)
class HybridConfig:
    """Camera motion of an input video applied to the generation."""

    path: Path = field(default=Path(), metadata=_spec("path", required=True))
    motion: str = field(
        default="none", metadata=_spec("enum", choices=("none", "optical_flow", "perspective", "affine"))
    )
    composite_alpha: Schedule = _schedule_field("0:(0)", low=0.0, high=1.0)
    before_generation: bool = field(default=True, metadata=_spec("bool"))


@dataclass(frozen=True)
class AudioConfig:
    """A soundtrack whose features drive schedules (variables rms, onset, beat, bass ...)."""

    path: Path = field(default=Path(), metadata=_spec("path", required=True))
    stems: dict = field(default_factory=dict, metadata=_spec("stems"))  # name -> path of a separated stem
    offset: float = field(default=0.0, metadata=_spec("float", low=0.0, high=1e6))  # seconds where frame 0 starts
    beat_decay: float = field(default=0.25, metadata=_spec("float", low=0.001, high=60.0))  # beat envelope, seconds
    bands: dict = field(
        default_factory=lambda: {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "high": (4000.0, 16000.0)},
        metadata=_spec("bands"),
    )  # name -> (low Hz, high Hz)


@dataclass(frozen=True)
class ControlNetUnit:
    """One ControlNet (`controlnet:` list item): a control image per frame steers the denoiser."""

    # hub id, diffusers folder or single .safetensors file; a relative path is resolved against the keyframe file
    # when it exists there (otherwise the text is a hub id)
    model: str = field(default="", metadata=_spec("model", required=True))
    config: Path | None = field(default=None, metadata=_spec("path", optional=True))  # diffusers config folder
    # where the control image comes from: depth (the frame's depth map), canny (edges of the warped frame),
    # warped (the warped previous frame itself), image / video (a file, `path`), or an annotator of the warped
    # frame (hed, lineart, lineart_anime, openpose, softedge, mlsd, normalbae; weights in `annotator`)
    source: str = field(default="depth", metadata=_spec("enum", choices=CONTROL_SOURCES))
    path: Path | None = field(default=None, metadata=_spec("path", optional=True))  # for source image / video
    annotator: Path | None = field(default=None, metadata=_spec("path", optional=True))  # controlnet-aux weights
    canny_low: int = field(default=100, metadata=_spec("int", low=0, high=255))  # Canny hysteresis thresholds on
    canny_high: int = field(default=200, metadata=_spec("int", low=0, high=255))  # 0..255 gradients; high > low
    weight: Schedule = _schedule_field("0:(1)", low=0.0)  # conditioning scale: 0 ignores the unit
    # share of the sampling steps, from their start, where the unit acts: before guidance_start and after
    # guidance_end the denoiser runs without it (0 <= start < end <= 1)
    guidance_start: Schedule = _schedule_field("0:(0)", low=0.0, high=1.0)
    guidance_end: Schedule = _schedule_field("0:(1)", low=0.0, high=1.0)
    # balanced: control on both guidance branches; prompt: the prompt matters more (control weakened on the
    # conditional branch); control: control only on the conditional branch (A1111's control modes)
    mode: str = field(default="balanced", metadata=_spec("enum", choices=CONTROL_MODES))
    # the control type of an SDXL ControlNet-Union model (None: a single-type ControlNet)
    control_type: str | None = field(default=None, metadata=_spec("enum", choices=CONTROL_UNION_TYPES, optional=True))


@dataclass(frozen=True)
class Section:
    """A span of frames (`sections:` list item) that may start over from an image or from noise."""

    frames: range = field(default=range(0), metadata=_spec("span", required=True))  # frame indices, stop exclusive
    # previous: continue from the previous frame (no break); image: restart from `image`; noise: restart from the
    # denoiser alone (as a render without init_image)
    start: str = field(default="previous", metadata=_spec("enum", choices=SECTION_STARTS))
    image: Path | None = field(default=None, metadata=_spec("path", optional=True))  # for start image
    # frames over which the previous section's last frame fades into the new start (start image / noise only)
    crossfade: int = field(default=0, metadata=_spec("int", low=0, high=10**6))


@dataclass(frozen=True)
class InterpolateConfig:
    """Frames added between rendered frames after the render (`output.interpolate:`); exactly one of factor / fps."""

    factor: int | None = field(default=None, metadata=_spec("int", low=2, high=64, optional=True))  # frames per frame
    fps: float | None = field(default=None, metadata=_spec("float", low=1e-3, high=1000.0, optional=True))  # target
    # flow: warp both neighbours along optical flow; camera: reproject with the known camera move and depth (3d);
    # rife: a RIFE model (weights in `model`); blend: cross-fade (fast, ghosts on motion)
    method: str = field(default="flow", metadata=_spec("enum", choices=INTERPOLATE_METHODS))
    model: Path | None = field(default=None, metadata=_spec("path", optional=True))  # RIFE weights for method rife
    # keep the render's fps, so the added frames play the animation slower instead of smoother
    slowmo: bool = field(default=False, metadata=_spec("bool"))


@dataclass(frozen=True)
class UpscaleConfig:
    """Finished frames made larger after the render (`output.upscale:`); scale, or width and / or height."""

    scale: float | None = field(default=None, metadata=_spec("float", low=1.0, high=8.0, optional=True))  # > 1
    width: int | None = field(default=None, metadata=_spec("int", low=16, high=16384, multiple=2, optional=True))
    height: int | None = field(default=None, metadata=_spec("int", low=16, high=16384, multiple=2, optional=True))
    # lanczos: resampling only; model: a super-resolution network (`model`); diffusion: lanczos, then an img2img
    # pass of backends.denoise at `strength` to add detail. Unset: model when `model` is given, else lanczos.
    method: str = field(default="lanczos", metadata=_spec("enum", choices=UPSCALE_METHODS))
    model: Path | None = field(default=None, metadata=_spec("path", optional=True))  # .pth / .safetensors weights
    strength: float = field(default=0.25, metadata=_spec("float", low=0.0, high=1.0))  # denoise of method diffusion
    # tile size in output pixels for the model and diffusion methods (bounds memory); 0: the whole frame at once
    tile: int = field(default=512, metadata=_spec("int", low=0, high=16384))


@dataclass(frozen=True)
class OutputConfig:
    path: Path | None = field(default=None, metadata=_spec("path", optional=True))  # None: <file stem>.mp4 here
    codec: str = field(default="h264", metadata=_spec("enum", choices=("h264", "h265", "vp9", "prores")))
    crf: int = field(default=18, metadata=_spec("int", low=0, high=63))  # quality: lower is better and larger
    preset: str = field(
        default="medium",
        metadata=_spec(
            "enum",
            choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
        ),
    )
    pix_fmt: str = field(default="yuv420p", metadata=_spec("str"))
    gif: bool = field(default=False, metadata=_spec("bool"))  # also write an animated GIF
    frames_dir: Path | None = field(default=None, metadata=_spec("path", optional=True, output=True))
    audio: bool = field(default=True, metadata=_spec("bool"))  # mux the soundtrack into the video
    interpolate: InterpolateConfig | None = field(default=None, metadata=_spec("section", cls=InterpolateConfig))
    upscale: UpscaleConfig | None = field(default=None, metadata=_spec("section", cls=UpscaleConfig))


@dataclass(frozen=True)
class AnimationConfig:
    """A whole animation, as read from a keyframe file."""

    path: Path | None  # the keyframe file (None when built from a dict)
    width: int  # output width in pixels, multiple of 8
    height: int  # output height in pixels, multiple of 8
    fps: float  # frames per second of the output video
    frames: int  # number of frames N (max_f = N - 1)
    seed: int  # base seed; -1 = random, resolved and recorded by the render
    seed_behavior: str  # iter | fixed | random | ladder | alternate | schedule
    seed_iter_n: int  # frames per seed step for iter / ladder / alternate
    mode: str  # 2d | 3d | video
    init_image: Path | None  # first frame to start from (absolute path), None: start from the denoiser / noise
    cadence: int  # diffuse every N-th frame, warp the ones between
    bpm: float | None  # tempo for beat times ("8b") without an audio file
    prompts: tuple[tuple[str, str], ...]  # raw prompt keyframes: (frame key text, "positive --neg negative")
    prompt_prefix: str  # prepended to every positive prompt
    prompt_suffix: str  # appended to every positive prompt
    negative_prompt: str  # appended to every negative prompt
    prompt_blend: int  # frames over which a new prompt cross-fades from the previous one
    motion: MotionConfig
    generation: GenerationConfig
    coherence: CoherenceConfig
    backends: BackendConfig
    video_input: VideoInputConfig | None
    hybrid: HybridConfig | None
    audio: AudioConfig | None
    output: OutputConfig
    source_text: str  # the exact file text (recorded in the run folder)
    controlnet: tuple[ControlNetUnit, ...] = ()  # ControlNet units steering every diffused frame
    sections: tuple[Section, ...] = ()  # spans of frames that may restart from an image or noise; () = one span

    @property
    def max_f(self) -> int:
        return self.frames - 1

    @property
    def audio_variables(self) -> tuple[str, ...]:
        """Names of the audio variables expressions may use (empty without audio)."""
        return audio_variable_names(self.audio)


def audio_variable_names(audio: AudioConfig | None) -> tuple[str, ...]:
    if audio is None:
        return ()
    names = list(AUDIO_FEATURES) + list(audio.bands)
    for stem in audio.stems:
        names += [f"{stem}_{feature}" for feature in (*AUDIO_FEATURES, *audio.bands)]
    return tuple(dict.fromkeys(names))


_SECTIONS = {
    "motion": MotionConfig,
    "generation": GenerationConfig,
    "coherence": CoherenceConfig,
    "backends": BackendConfig,
    "video_input": VideoInputConfig,
    "hybrid": HybridConfig,
    "audio": AudioConfig,
    "output": OutputConfig,
}
_TOP_LEVEL = (
    "version", "width", "height", "fps", "frames", "duration", "seed", "seed_behavior", "seed_iter_n", "mode",
    "init_image", "cadence", "bpm", "prompts", "prompt_prefix", "prompt_suffix", "negative_prompt", "prompt_blend",
    "controlnet", "sections", *_SECTIONS,
)  # fmt: skip
SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
MODES = ("2d", "3d", "video")


# ------------------------------------------------------------------------------------------------ locating lines


class _Locator:
    """Finds the line of a dotted field: exact for YAML (node marks), best effort for JSON / TOML (text search)."""

    def __init__(self, text: str, lines: dict[str, int] | None):
        self.text = text
        self.lines = lines

    def __call__(self, dotted: str) -> int | None:
        if self.lines is not None:
            parts = dotted.split(".")
            while parts:
                line = self.lines.get(".".join(parts))
                if line:
                    return line
                parts.pop()
            return None
        return self._search(dotted)

    def _search(self, dotted: str) -> int | None:
        if not self.text:
            return None
        position, found = 0, None
        for part in dotted.split("."):
            # "key": (JSON) or key = (TOML) or [section] (TOML table)
            pattern = re.compile(
                r'(^|[\s{,])["\']?' + re.escape(part) + r'["\']?\s*[:=]|^\s*\[\s*' + re.escape(part) + r"\s*\]", re.M
            )
            match = pattern.search(self.text, position)
            if not match:
                break
            position = match.end()
            found = self.text.count("\n", 0, match.start() + len(match.group(1) or "")) + 1
        return found


def _yaml_loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on recorded 6,000-key schedules


def _yaml_lines(text: str) -> dict[str, int]:
    import yaml

    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[dotted] = key.start_mark.line + 1
                walk(value, dotted)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[f"{prefix}.{i}"] = item.start_mark.line + 1
                walk(item, f"{prefix}.{i}")

    try:
        walk(yaml.compose(text, Loader=_yaml_loader()), "")
    except yaml.YAMLError:
        pass
    return lines


def starts_from_nothing(config: AnimationConfig) -> bool:
    """True when a render of ``config`` would have no first frame: no init image, no input video, no model."""
    return config.mode != "video" and config.init_image is None and (config.backends.denoise or "none") == "none"


def line_of(config: AnimationConfig, dotted: str) -> int | None:
    """The line of a dotted field in the file ``config`` was loaded from (None when unknown), for errors found after
    loading (a file the config names is missing, an expression fails at some frame)."""
    if config.path is None or not config.source_text:
        return None
    yaml_file = Path(config.path).suffix.lower() in (".yaml", ".yml")
    return _Locator(config.source_text, _yaml_lines(config.source_text) if yaml_file else None)(dotted)


# ------------------------------------------------------------------------------------------------ loading


def read_keyframe_file(path: str | Path) -> tuple[dict, str, _Locator]:
    """Read a YAML / TOML / JSON file into a dict (not validated), its text and a line locator."""
    path = Path(path)
    if not path.is_file():
        raise AnimatorError("keyframe file not found", file=path, hint="check the path")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise AnimatorError(
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
                file=path,
                line=mark.line + 1 if mark else None,
                hint="check indentation and quote strings containing ':' or '#'",
            ) from None
        locator = _Locator(text, _yaml_lines(text))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnimatorError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
        locator = _Locator(text, None)
    elif suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"line (\d+)", str(exc))
            raise AnimatorError(
                f"not valid TOML: {exc}", file=path, line=int(line.group(1)) if line else None
            ) from None
        locator = _Locator(text, None)
    else:
        raise AnimatorError(f"unknown keyframe file type {suffix!r}", file=path, hint="use .yaml, .yml, .toml or .json")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AnimatorError(f"the file must hold a mapping of settings, got {type(data).__name__}", file=path, line=1)
    return data, text, locator


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
        dict(data), source=source, base_dir=base, text="", locator=_Locator("", None), path=None, overrides=overrides
    )


def _apply_overrides(data: dict, overrides: Mapping[str, object] | None, source: str) -> dict:
    data = json.loads(json.dumps(data, default=str)) if overrides else data  # deep copy of plain data
    for dotted, value in (overrides or {}).items():
        node = data
        parts = str(dotted).split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise AnimatorError(f"cannot override {dotted!r}: {part!r} is not a section", file=source, field=dotted)
            node = child
        node[parts[-1]] = value
        if parts == ["frames"]:
            data.pop("duration", None)  # an explicit frame count replaces the file's duration
    return data


class _Context:
    def __init__(self, source: str, locator: _Locator, base_dir: Path, names: frozenset[str]):
        self.source, self.locator, self.base_dir, self.names = source, locator, base_dir, names

    def error(self, dotted: str, message: str, hint: str | None = None) -> AnimatorError:
        return AnimatorError(message, file=self.source, line=self.locator(dotted), field=dotted, hint=hint)

    def relocate(self, exc: AnimatorError, dotted: str) -> AnimatorError:
        field_name = dotted if not exc.field or "." not in exc.field else exc.field
        return AnimatorError(exc.message, file=self.source, line=self.locator(dotted), field=field_name, hint=exc.hint)


def _check_unknown(keys, known, ctx: _Context, prefix: str) -> None:
    for key in keys:
        if key not in known:
            dotted = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean `{prefix}{close[0]}`?" if close else "known keys: " + ", ".join(known)
            raise ctx.error(dotted, f"unknown key {str(key)!r}", hint=hint)


def _build_config(data, *, source, base_dir, text, locator, path, overrides) -> AnimationConfig:
    data = _apply_overrides(data, overrides, source)
    ctx = _Context(source, locator, Path(base_dir), frozenset())
    _check_unknown(data.keys(), _TOP_LEVEL, ctx, "")
    version = data.get("version", 1)
    if version != 1:
        raise ctx.error("version", f"unsupported version {version!r}; this animator reads version 1")

    width = _int(data.get("width", 512), "width", ctx, 64, 8192, multiple=8)
    height = _int(data.get("height", 512), "height", ctx, 64, 8192, multiple=8)
    fps = _float(data.get("fps", 24), "fps", ctx, 1e-3, 1000.0)
    bpm = None if data.get("bpm") is None else _float(data["bpm"], "bpm", ctx, 1.0, 1000.0)
    seed = _int(data.get("seed", -1), "seed", ctx, -1, 2**32 - 1)

    sections = {}
    audio = None if data.get("audio") is None else _section(AudioConfig, data["audio"], "audio", ctx)
    sections["audio"] = audio
    ctx.names = BASE_NAMES | frozenset(audio_variable_names(audio))  # audio variables exist only with audio
    frames = _frames(data, fps, audio, ctx)
    for name in ("video_input", "hybrid"):
        sections[name] = None if data.get(name) is None else _section(_SECTIONS[name], data[name], name, ctx)
    for name in ("motion", "generation", "coherence", "backends", "output"):
        sections[name] = _section(_SECTIONS[name], data.get(name) or {}, name, ctx)

    mode = _enum(str(data.get("mode", "3d")).lower(), "mode", ctx, MODES)
    if mode == "video" and sections["video_input"] is None:
        raise ctx.error(
            "mode", "mode is video but there is no `video_input:` section", hint="add video_input: {path: clip.mp4}"
        )
    if sections["coherence"].reference == "image" and sections["coherence"].image is None:
        raise ctx.error("coherence.reference", "reference is image but coherence.image is not set")
    prompts = _prompts(data.get("prompts"), ctx)
    controlnet = _controlnet_units(data.get("controlnet"), ctx)
    _check_beats(sections, prompts, bpm, audio, ctx, controlnet)
    _check_latent_feedback(sections, mode, ctx)
    sections["output"] = _check_output(sections["output"], data.get("output") or {}, fps, width, height, mode, ctx)
    frame_sections = _sections(data.get("sections"), frames, ctx)

    return AnimationConfig(
        path=Path(path).resolve() if path is not None else None,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        seed=seed,
        seed_behavior=_enum(data.get("seed_behavior", "iter"), "seed_behavior", ctx, SEED_BEHAVIORS),
        seed_iter_n=_int(data.get("seed_iter_n", 1), "seed_iter_n", ctx, 1, 10**6),
        mode=mode,
        init_image=_path(data.get("init_image"), "init_image", ctx, optional=True),
        cadence=_int(data.get("cadence", 1), "cadence", ctx, 1, 1000),
        bpm=bpm,
        prompts=prompts,
        prompt_prefix=_str(data.get("prompt_prefix", ""), "prompt_prefix", ctx),
        prompt_suffix=_str(data.get("prompt_suffix", ""), "prompt_suffix", ctx),
        negative_prompt=_str(data.get("negative_prompt", ""), "negative_prompt", ctx),
        prompt_blend=_int(data.get("prompt_blend", 0), "prompt_blend", ctx, 0, 10**6),
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


def _check_latent_feedback(sections: dict, mode: str, ctx: _Context) -> None:
    """Latent feedback moves latents with the camera; what works on the previous frame's pixels cannot run."""
    generation = sections["generation"]
    if generation.feedback != "latent":
        return
    hint = "use generation.feedback: image (the default)"
    if mode not in ("2d", "3d"):
        raise ctx.error(
            "generation.feedback",
            f"latent feedback works in 2d and 3d modes, not in {mode} mode",
            hint=hint + ": video mode blends each input frame in pixels",
        )
    if sections["hybrid"] is not None:
        raise ctx.error(
            "generation.feedback",
            "latent feedback cannot composite a hybrid video (a pixel blend)",
            hint=hint + ", or remove the hybrid section",
        )
    # contrast and sharpen_amount are checked on their evaluated schedules (animator.plan.make_plan)


def _frames(data: dict, fps: float, audio: AudioConfig | None, ctx: _Context) -> int:
    if "frames" in data and data["frames"] is not None:
        return _frame_count(data["frames"], "frames", fps, audio, ctx)
    if data.get("duration") is not None:
        return _frame_count(data["duration"], "duration", fps, audio, ctx)
    raise ctx.error(
        "frames", "missing `frames:` (or `duration:`)", hint="e.g. frames: 240, frames: 10s or duration: 10s"
    )


def _frame_count(value, dotted: str, fps: float, audio: AudioConfig | None, ctx: _Context) -> int:
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
    return _int(value, dotted, ctx, 1, 10**7)


def _prompts(value, ctx: _Context) -> tuple[tuple[str, str], ...]:
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


def _check_beats(sections, prompts, bpm, audio, ctx: _Context, controlnet=()) -> None:
    if bpm is not None or audio is not None:
        return
    named = dict(sections) | {f"controlnet.{i}": unit for i, unit in enumerate(controlnet)}
    for section_name, section in named.items():
        if section is None:
            continue
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, Schedule) and value.uses_beats:
                raise ctx.error(
                    f"{section_name}.{f.name}",
                    "beat times like `8b` need a tempo",
                    hint="set `bpm:` or add an `audio:` section",
                )
    for key, _ in prompts:
        if parse_frame_key(key).beats is not None:
            raise ctx.error(
                f"prompts.{key}", "beat times like `8b` need a tempo", hint="set `bpm:` or add an `audio:` section"
            )


# ------------------------------------------------------------------------------------------------ field types


def _section(cls, data, prefix: str, ctx: _Context):
    if not isinstance(data, dict):
        raise ctx.error(prefix, f"expected a mapping (a section of settings), got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_unknown(data.keys(), list(fields), ctx, f"{prefix}.")
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
        values[name] = _CONVERTERS[kind](data[name], dotted, ctx, **options)
    return cls(**values)


def _schedule(value, dotted, ctx: _Context, *, default, low=None, high=None) -> Schedule:
    name = dotted.rsplit(".", 1)[-1]
    interpolation = "linear"
    if value is None:
        value = default
    if isinstance(value, dict) and "keys" in value:
        _check_unknown(value.keys(), ["keys", "interpolation"], ctx, f"{dotted}.")
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
    if low is not None or high is not None:
        for keyframe in schedule.keyframes:
            number = keyframe.number
            if number is None or ((low is None or number >= low) and (high is None or number <= high)):
                continue
            if low is not None and high is not None:
                problem = f"is outside [{low:g}, {high:g}]"
            else:
                problem = f"is below {low:g}" if low is not None else f"is above {high:g}"
            raise ctx.error(dotted, f"value {number:g} at frame {keyframe.key} {problem}")
    return schedule


def _string_schedule(value, dotted, ctx: _Context) -> StringSchedule:
    try:
        return parse_string_schedule(value, name=dotted.rsplit(".", 1)[-1], choices=SAMPLERS)
    except AnimatorError as exc:
        raise ctx.relocate(exc, dotted) from None


def _type_error(value, dotted, ctx, expected: str) -> AnimatorError:
    return ctx.error(dotted, f"expected {expected}, got {type(value).__name__} {value!r}"[:300])


def _int(value, dotted, ctx: _Context, low=None, high=None, multiple=None, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(value, dotted, ctx, "a whole number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ctx.error(dotted, f"{value} is outside [{low}, {high}]")
    if multiple and value % multiple:
        raise ctx.error(
            dotted, f"{value} is not a multiple of {multiple}", hint=f"try {round(value / multiple) * multiple}"
        )
    return value


def _float(value, dotted, ctx: _Context, low=None, high=None, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _type_error(value, dotted, ctx, "a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(value, dotted, ctx, "a number")
    value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise ctx.error(dotted, f"{value:g} is outside [{low:g}, {high:g}]")
    return value


def _bool(value, dotted, ctx: _Context):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise _type_error(value, dotted, ctx, "true or false")


def _str(value, dotted, ctx: _Context, required=False, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _type_error(value, dotted, ctx, "text")
    if required and not value.strip():
        raise ctx.error(dotted, "must not be empty")
    return value


def _enum(value, dotted, ctx: _Context, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        close = difflib.get_close_matches(str(value).lower(), list(choices), n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + "choices: " + ", ".join(choices)
        raise ctx.error(dotted, f"unknown value {value!r}", hint=hint)
    return value.lower()


def _path(value, dotted, ctx: _Context, required=False, optional=False, output=False):
    if value is None or value == "":
        if required:
            raise ctx.error(dotted, "a path is required")
        return None
    if not isinstance(value, str):
        raise _type_error(value, dotted, ctx, "a file path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (ctx.base_dir / path).resolve()


def _device(value, dotted, ctx: _Context):
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise ctx.error(dotted, f"unknown device {value!r}", hint="auto, cpu, cuda, cuda:1 or mps")
    return value


def _lora(value, dotted, ctx: _Context):
    if not isinstance(value, list):
        raise _type_error(value, dotted, ctx, "a list of {path: ..., scale: ...}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"path": item}
        out.append(_section(LoraConfig, item, f"{dotted}.{i}", ctx))
    return tuple(out)


def _stems(value, dotted, ctx: _Context):
    if not isinstance(value, dict):
        raise _type_error(value, dotted, ctx, "a mapping of stem name -> audio path")
    out = {}
    for name, path in value.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)):
            raise ctx.error(
                f"{dotted}.{name}", f"stem name {name!r} must be letters and digits (it prefixes variables)"
            )
        out[str(name)] = _path(path, f"{dotted}.{name}", ctx, required=True)
    return out


def _bands(value, dotted, ctx: _Context):
    if not isinstance(value, dict) or not value:
        raise _type_error(value, dotted, ctx, "a mapping of band name -> [low Hz, high Hz]")
    out = {}
    for name, pair in value.items():
        where = f"{dotted}.{name}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)) or name in BASE_NAMES or name in AUDIO_FEATURES:
            raise ctx.error(
                where, f"band name {name!r} must be letters and digits and not clash with t, max_f, rms ..."
            )
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _type_error(pair, where, ctx, "[low Hz, high Hz]")
        low, high = (_float(p, where, ctx, 0.0, 1e6) for p in pair)
        if low >= high:
            raise ctx.error(where, f"low {low:g} Hz must be below high {high:g} Hz")
        out[str(name)] = (low, high)
    return out


def _paths(value, dotted, ctx: _Context) -> tuple[Path, ...]:
    """A folder or a list of folders -> absolute paths (relative ones against the keyframe file's folder)."""
    items = value if isinstance(value, list) else [value]
    return tuple(_path(item, f"{dotted}.{i}" if isinstance(value, list) else dotted, ctx, required=True)
                 for i, item in enumerate(items))  # fmt: skip


def _model(value, dotted, ctx: _Context, required=False) -> str:
    """A hub id, folder or file: a relative path that exists beside the keyframe file becomes absolute."""
    text = _str(value, dotted, ctx, required=required).strip()
    if required and not text:
        raise ctx.error(dotted, "must not be empty", hint="a hub id, a diffusers folder or a .safetensors file")
    local = Path(text).expanduser()
    local = local if local.is_absolute() else ctx.base_dir / local
    return str(local.resolve()) if local.exists() else text


def _span(value, dotted, ctx: _Context, required=False) -> range:
    """``"A:B"`` (B exclusive; A omitted is 0, B omitted the end, as ``--frames``) or ``[A, B]``; the end of an
    open span is filled in by :func:`_sections`, which knows the frame count (``sys.maxsize`` until then)."""
    if isinstance(value, list) and len(value) == 2:
        start, stop = (_int(v, dotted, ctx, 0, 10**9) for v in value)
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


def _subsection(value, dotted, ctx: _Context, cls):
    return _section(cls, value, dotted, ctx)


def _controlnet_units(value, ctx: _Context) -> tuple[ControlNetUnit, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise _type_error(value, "controlnet", ctx, "a list of units ({model: ..., source: ...})")
    units = []
    for i, item in enumerate(value):
        where = f"controlnet.{i}"
        if isinstance(item, str):
            item = {"model": item}
        unit = _section(ControlNetUnit, item, where, ctx)
        if unit.source in CONTROL_FILE_SOURCES and unit.path is None:
            raise ctx.error(
                f"{where}.source", f"source {unit.source} needs `path:`", hint=f"add path: the {unit.source} file"
            )
        if unit.path is not None and unit.source not in CONTROL_FILE_SOURCES:
            raise ctx.error(
                f"{where}.path",
                f"`path` is read only by sources image and video, not {unit.source}",
                hint="remove it, or set source: image / video",
            )
        if unit.canny_high <= unit.canny_low:
            raise ctx.error(
                f"{where}.canny_high",
                f"canny_high {unit.canny_high} must be above canny_low {unit.canny_low}",
                hint="e.g. canny_low: 100, canny_high: 200",
            )
        _check_guidance_window(unit, where, ctx)
        units.append(unit)
    return tuple(units)


def _check_guidance_window(unit: ControlNetUnit, where: str, ctx: _Context) -> None:
    """guidance_start < guidance_end wherever both are plain numbers at the same keyframe (or one is constant);
    the evaluated values are checked frame by frame in :func:`animator.keyframes.evaluate.evaluate`."""
    starts = {k.key.text: k.number for k in unit.guidance_start.keyframes}
    ends = {k.key.text: k.number for k in unit.guidance_end.keyframes}
    if len(starts) == 1:
        starts = dict.fromkeys(ends, next(iter(starts.values())))
    elif len(ends) == 1:
        ends = dict.fromkeys(starts, next(iter(ends.values())))
    for key, start in starts.items():
        end = ends.get(key)
        if start is not None and end is not None and start >= end:
            raise ctx.error(
                f"{where}.guidance_start",
                f"guidance_start {start:g} at frame {key} is not below guidance_end {end:g}",
                hint="the unit acts from guidance_start to guidance_end: 0 <= start < end <= 1",
            )


def _sections(value, frames: int, ctx: _Context) -> tuple[Section, ...]:
    """Sections in order, contiguous, covering frames 0..frames-1 exactly."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise _type_error(value, "sections", ctx, 'a list of sections ({frames: "0:48", start: ...})')
    out: list[Section] = []
    expected_start = 0
    for i, item in enumerate(value):
        where = f"sections.{i}"
        section = _section(Section, item, where, ctx)
        span = section.frames
        if span.stop > frames:
            if span.stop != sys.maxsize:  # an open end (A:) runs to the last frame
                raise ctx.error(
                    f"{where}.frames",
                    f"section {i} ends at frame {span.stop} (exclusive), past the animation's {frames} frames",
                    hint=f"end the last section at {frames} (or write {span.start}: to run to the end)",
                )
            span = range(span.start, frames)
            if span.start >= frames:
                raise ctx.error(
                    f"{where}.frames", f"section {i} starts at frame {span.start}, after the last frame {frames - 1}"
                )
        if span.start != expected_start:
            problem = "overlaps the previous section" if span.start < expected_start else "leaves a gap before it"
            raise ctx.error(
                f"{where}.frames",
                f"section {i} starts at frame {span.start}: it {problem}",
                hint=f"start it at frame {expected_start}, where the previous section ends (stop is exclusive)",
            )
        if i == 0 and section.start == "previous":
            raise ctx.error(
                f"{where}.start",
                "the first section has no previous frame to continue from",
                hint="set start: image (with image:) or start: noise",
            )
        if section.start == "image" and section.image is None:
            raise ctx.error(f"{where}.image", f"section {i} starts from an image but has no `image:`")
        if section.image is not None and section.start != "image":
            raise ctx.error(
                f"{where}.image",
                f"`image` is read only when start is image, not {section.start}",
                hint="set start: image, or remove image",
            )
        if section.crossfade and section.start == "previous":
            raise ctx.error(
                f"{where}.crossfade",
                "crossfade blends into a new start; a section that continues from the previous frame has none",
                hint="remove crossfade, or set start: image / noise",
            )
        if section.crossfade > len(span):
            raise ctx.error(
                f"{where}.crossfade",
                f"crossfade {section.crossfade} is longer than section {i} ({len(span)} frames)",
            )
        out.append(dataclasses.replace(section, frames=span))
        expected_start = span.stop
    if expected_start != frames:
        raise ctx.error(
            f"sections.{len(value) - 1}.frames",
            f"the sections end at frame {expected_start} (exclusive) but the animation has {frames} frames",
            hint=f"end the last section at {frames} (or write A: to run to the end)",
        )
    return tuple(out)


def _check_output(output: OutputConfig, raw, fps: float, width: int, height: int, mode: str, ctx) -> OutputConfig:
    """The rules of output.interpolate and output.upscale that span several fields; returns ``output`` with the
    upscale method that follows from a `model` when none was given."""
    interpolate = output.interpolate
    if interpolate is not None:
        where = "output.interpolate"
        if (interpolate.factor is None) == (interpolate.fps is None):
            raise ctx.error(
                where,
                "give exactly one of `factor` (frames per rendered frame) and `fps` (the output's frame rate)",
                hint="e.g. interpolate: {factor: 2}",
            )
        if interpolate.fps is not None and interpolate.fps <= fps:
            raise ctx.error(
                f"{where}.fps",
                f"fps {interpolate.fps:g} is not above the render's {fps:g} fps",
                hint=f"give more than {fps:g}, or remove interpolate",
            )
        if interpolate.method == "camera" and mode != "3d":
            raise ctx.error(
                f"{where}.method",
                f"method camera reprojects with the 3D camera and depth; this is a {mode} render",
                hint="use method: flow",
            )
        if interpolate.model is not None and interpolate.method != "rife":
            raise ctx.error(f"{where}.model", f"`model` is read only by method rife, not {interpolate.method}")
    upscale = output.upscale
    if upscale is not None:
        where = "output.upscale"
        raw_upscale = raw.get("upscale") if isinstance(raw, dict) else None
        explicit = isinstance(raw_upscale, dict) and raw_upscale.get("method") is not None
        if upscale.model is not None and not explicit:
            upscale = dataclasses.replace(upscale, method="model")
            output = dataclasses.replace(output, upscale=upscale)
        if upscale.scale is not None and (upscale.width is not None or upscale.height is not None):
            raise ctx.error(
                where, "give `scale`, or `width` and / or `height`, not both", hint="e.g. upscale: {scale: 2}"
            )
        if upscale.scale is None and upscale.width is None and upscale.height is None:
            raise ctx.error(where, "give `scale` (e.g. 2) or a `width` and / or `height` in pixels")
        if upscale.scale is not None and upscale.scale <= 1:
            raise ctx.error(f"{where}.scale", f"scale {upscale.scale:g} does not upscale", hint="give more than 1")
        for name, size, rendered in (("width", upscale.width, width), ("height", upscale.height, height)):
            if size is not None and size <= rendered:
                raise ctx.error(
                    f"{where}.{name}", f"{name} {size} is not above the render's {rendered}", hint="give a larger size"
                )
        if upscale.method == "model" and upscale.model is None:
            raise ctx.error(
                f"{where}.method", "method model needs `model:` (super-resolution weights, .pth / .safetensors)"
            )
        if upscale.model is not None:
            if upscale.method != "model":
                raise ctx.error(f"{where}.model", f"`model` is read only by method model, not {upscale.method}")
            if upscale.model.suffix.lower() not in UPSCALE_MODEL_SUFFIXES:
                raise ctx.error(
                    f"{where}.model",
                    f"unknown weights file type {upscale.model.suffix!r}",
                    hint="use " + ", ".join(UPSCALE_MODEL_SUFFIXES),
                )
    return output


_CONVERTERS: dict[str, Callable[..., Any]] = {
    "schedule": _schedule,
    "string_schedule": _string_schedule,
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": _str,
    "enum": lambda v, d, c, choices, optional=False: _enum(v, d, c, choices),
    "path": _path,
    "device": _device,
    "lora": _lora,
    "stems": _stems,
    "bands": _bands,
    "paths": _paths,
    "model": _model,
    "span": _span,
    "section": _subsection,
}
