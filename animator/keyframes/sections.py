"""The sections of a keyframe file as frozen dataclasses: one per concern, a comment per field.

Each field's metadata holds how the loader validates it (:func:`spec`: a kind from
:data:`animator.keyframes.fields.CONVERTERS` and its options); schedule fields hold parsed, frozen
:class:`~animator.keyframes.schedule.Schedule` objects. Nothing here reads a file: see
:mod:`animator.keyframes.loading`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from animator.choices import (
    BORDERS,
    CODECS,
    COLOR_MATCHES,
    COMPILE_MODES,
    CONTROL_MODES,
    CONTROL_SOURCES,
    CONTROL_UNION_TYPES,
    DEPTH_STABILITY,
    DTYPES,
    ENCODER_PRESETS,
    FEEDBACKS,
    FILLS,
    FLOW_ESTIMATORS,
    HOLES,
    HYBRID_MOTIONS,
    INTERPOLATE_METHODS,
    MOTION_UNITS,
    NOISE_TYPES,
    REFERENCES,
    SAMPLERS,
    SAMPLINGS,
    SECTION_STARTS,
    UPSCALE_METHODS,
)
from animator.keyframes.schedule import Schedule, StringSchedule, parse_schedule

# The largest camera move per frame (translation_*: pixels in 2D, scene units in 3D, where depth runs from near 200 to
# far 10000 by default): larger moves leave the scene in one frame, and values like 1e300 overflow the camera path.
MAX_MOVE = 1e6
# Sampler steps for a full denoise: schedulers are trained on 1,000 timesteps, so more steps repeat timesteps.
MAX_STEPS = 1000.0
NEAR_FAR = "near and far are the depths of the nearest and farthest surfaces (the demo uses near 200, far 10000)"

# the variables an `audio:` section gives expressions, plus one per band and per stem feature
AUDIO_FEATURES = ("rms", "onset", "beat", "beat_i", "bar", "bpm")


def spec(kind: str, **options) -> dict:
    """Field metadata: how the loader reads the value (``kind`` names a converter, ``options`` its checks)."""
    return {"spec": (kind, options)}


def schedule_field(default: str, **options):
    """A schedule field: parsed default, validation options in the metadata: the range of every value the schedule
    takes, in the field's own units (``low`` / ``high`` inclusive, ``above`` / ``below`` exclusive), checked on
    number keyframes when the file is read and on every evaluated frame (:mod:`animator.keyframes.cross_checks`)."""
    name_free = parse_schedule(default)  # parsed once; Schedule is frozen, so sharing it is safe
    return field(default=name_free, metadata=spec("schedule", default=default, **options))


@dataclass(frozen=True)
class MotionConfig:
    """Camera motion, per-frame increments as in Deforum (units below)."""

    angle: Schedule = schedule_field(
        "0:(0)", low=-360.0, high=360.0
    )  # 2D: rotation in degrees per frame, counter-clockwise
    zoom: Schedule = schedule_field("0:(1.0)")  # 2D: scale factor per frame (> 1 zooms in)
    translation_x: Schedule = schedule_field(
        "0:(0)", low=-MAX_MOVE, high=MAX_MOVE
    )  # 2D: pixels per frame; 3D: scene units per frame, right
    translation_y: Schedule = schedule_field(
        "0:(0)", low=-MAX_MOVE, high=MAX_MOVE
    )  # 2D: pixels per frame; 3D: scene units per frame, down
    translation_z: Schedule = schedule_field(
        "0:(0)", low=-MAX_MOVE, high=MAX_MOVE
    )  # 3D: scene units per frame, forward is positive
    rotation_3d_x: Schedule = schedule_field("0:(0)", low=-360.0, high=360.0)  # 3D: camera pitch, degrees per frame
    rotation_3d_y: Schedule = schedule_field("0:(0)", low=-360.0, high=360.0)  # 3D: camera yaw, degrees per frame
    rotation_3d_z: Schedule = schedule_field("0:(0)", low=-360.0, high=360.0)  # 3D: camera roll, degrees per frame
    transform_center_x: Schedule = schedule_field("0:(0.5)")  # 2D: centre of rotation and zoom, fraction of W
    transform_center_y: Schedule = schedule_field("0:(0.5)")  # 2D: centre of rotation and zoom, fraction of H
    fov: Schedule = schedule_field("0:(40)", above=0.0, below=180.0)  # 3D: vertical field of view, degrees
    near: Schedule = schedule_field("0:(200)", above=0.0, hint=NEAR_FAR)  # 3D: depth of the nearest surface, z units
    far: Schedule = schedule_field("0:(10000)", above=0.0, hint=NEAR_FAR)  # 3D: depth of the farthest surface, z units
    perspective_flip: bool = field(default=False, metadata=spec("bool"))  # 2D: tilt the picture in perspective
    perspective_flip_theta: Schedule = schedule_field("0:(0)")  # perspective flip: tilt about x, degrees
    perspective_flip_phi: Schedule = schedule_field("0:(0)")  # perspective flip: tilt about y, degrees
    perspective_flip_gamma: Schedule = schedule_field("0:(0)")  # perspective flip: turn about z, degrees
    perspective_flip_fv: Schedule = schedule_field(
        "0:(53)", above=0.0, below=180.0
    )  # perspective flip: field of view, degrees
    # 2D: what pixels from outside the frame show (OpenCV border modes)
    border: str = field(default="replicate", metadata=spec("enum", choices=BORDERS))
    # 3D holes the camera reveals: none (black), border / reflection (the source sampled with that padding),
    # telea (OpenCV inpainting), background (the valid neighbour on the far side of the hole)
    fill: str = field(default="background", metadata=spec("enum", choices=FILLS))
    # resampling of warped frames: bicubic (Deforum's, OpenCV's and PyTorch's a = -0.75 kernel) sharpens a little
    # more on every frame of a feedback loop; catmull_rom keeps more detail than bilinear and never sharpens
    sampling: str = field(default="bilinear", metadata=spec("enum", choices=SAMPLINGS))
    # scene: translations in scene units (depth runs near..far). deforum: the 3D values mean what they mean in
    # Deforum (set by `animator import deforum`); translation_z and rotation_3d_z are rescaled by the render so an
    # imported file zooms and rolls by the same amount as in Deforum (animator.geometry.deforum_motion_to_scene).
    units: str = field(default="scene", metadata=spec("enum", choices=MOTION_UNITS))
    # cadence tweens also follow the optical flow between the two diffused frames (backends.flow), on top of the
    # camera move: detail that the denoiser moved slides instead of cross-fading.
    cadence_flow: bool = field(default=False, metadata=spec("bool"))


@dataclass(frozen=True)
class GenerationConfig:
    """What the img2img denoiser does per frame."""

    # Share of the previous frame kept (Deforum's strength_schedule meaning); the denoiser runs at 1 - strength.
    # 0 = repaint fully, 1 = keep the frame. Imported Deforum / Parseq schedules are taken as they are.
    strength: Schedule = schedule_field("0:(0.65)", low=0.0, high=1.0)
    noise: Schedule = schedule_field("0:(0.02)")  # noise added to the warped frame before denoising (new detail)
    noise_type: str = field(default="gaussian", metadata=spec("enum", choices=NOISE_TYPES))  # the kind of noise
    perlin_octaves: int = field(default=4, metadata=spec("int", low=1, high=16))  # Perlin noise: detail levels
    # Perlin noise: amplitude ratio between one octave and the next (lower: smoother noise)
    perlin_persistence: float = field(default=0.5, metadata=spec("float", low=0.0, high=1.0))
    contrast: Schedule = schedule_field("0:(1.0)")  # contrast multiplier per frame (< 1 fights contrast build-up)
    cfg: Schedule = schedule_field("0:(7)")  # classifier-free guidance scale: how closely the prompt is followed
    steps: Schedule = schedule_field(
        "0:(25)", low=1.0, high=MAX_STEPS
    )  # sampler steps (rounded); about steps * (1 - strength) run
    seed: Schedule = schedule_field("0:(t)")  # per-frame seed for seed_behavior: schedule
    sampler: StringSchedule | None = field(default=None, metadata=spec("string_schedule"))  # None: backends.sampler
    sharpen_amount: Schedule = schedule_field("0:(0)")  # unsharp-mask amount, against the blur of repeated warps
    sharpen_sigma: float = field(default=1.0, metadata=spec("float", low=0.0, high=100.0))  # blur sigma, pixels
    # unsharp mask: differences below this (0..1 of full scale) are left alone, so flat areas gain no grain
    sharpen_threshold: float = field(default=0.0, metadata=spec("float", low=0.0, high=1.0))
    # Pixels the camera move revealed (3D disocclusions, video occlusions). fill: filled as motion.fill says and
    # denoised at the frame's strength like the rest (steps * denoise UNet evaluations, Deforum's behaviour).
    # repaint: drawn anew from noise in the same sampling run - better new content, but any revealed pixel makes
    # the frame run all `steps` evaluations (1 / denoise times the work: 25 instead of 16 at denoise 0.65).
    holes: str = field(default="fill", metadata=spec("enum", choices=HOLES))
    # What the next diffused frame starts from. image: the previous frame's pixels, warped, colour-matched,
    # sharpened, then VAE-encoded (Deforum's loop). latent: the previous frame's latents, moved by the same camera
    # warp at the latent grid (1/8 of the pixels): no VAE encode per frame, and no VAE round trip to blur the
    # picture, but colour coherence matches latent statistics (coherence.color/space only switch it on), noise is
    # added to the latents, and contrast and sharpening (pixel operations) are not available. 2d and 3d modes.
    feedback: str = field(default="image", metadata=spec("enum", choices=FEEDBACKS))


@dataclass(frozen=True)
class CoherenceConfig:
    """Keeping colours and depth steady across frames."""

    # colour space in which each frame's colours are matched to the reference, against colour drift (none: off)
    color: str = field(default="lab", metadata=spec("enum", choices=COLOR_MATCHES))
    # the reference: first (the render's first frame), image (`image`), video (the input video's frame)
    reference: str = field(default="first", metadata=spec("enum", choices=REFERENCES))
    image: Path | None = field(default=None, metadata=spec("path"))  # reference image when reference is image
    color_strength: Schedule = schedule_field("0:(1)", low=0.0, high=1.0)  # how far colours are pulled, 0..1
    # align: each frame's depth is fitted (scale, shift) to the previous frame's warped depth, so the scene does
    # not breathe as the depth model rescales; none: every depth map as estimated
    depth_stability: str = field(default="align", metadata=spec("enum", choices=DEPTH_STABILITY))


@dataclass(frozen=True)
class LoraConfig:
    """One LoRA applied to the denoiser (`backends.lora:` list item; a bare string is its path)."""

    path: str = field(default="", metadata=spec("str", required=True))  # .safetensors file or hub id
    scale: float = field(default=1.0, metadata=spec("float", low=-10.0, high=10.0))  # strength; < 0 inverts it


@dataclass(frozen=True)
class BackendConfig:
    """Which models do the work (hub ids, local folders or files)."""

    depth: str = field(default="offline", metadata=spec("str"))  # offline | hub id | folder | .pt file
    depth_every: int = field(default=1, metadata=spec("int", low=1, high=1000))  # estimate depth every k frames
    # depth model input size (short side); None: the model's own (DPT 384, Depth Anything 518). Smaller is faster.
    depth_resolution: int | None = field(default=None, metadata=spec("int", low=32, high=4096, optional=True))
    # optical flow estimator (video mode, hybrid optical_flow, cadence_flow): faster presets are coarser
    flow: str = field(default="dis_medium", metadata=spec("enum", choices=FLOW_ESTIMATORS))
    denoise: str = field(default="none", metadata=spec("str"))  # none | hub id | diffusers folder | checkpoint file
    model_config: str | None = field(default=None, metadata=spec("str", optional=True))  # config for a checkpoint
    vae: str = field(default="auto", metadata=spec("str"))  # auto | tiny | hub id / path
    lora: tuple[LoraConfig, ...] = field(default=(), metadata=spec("units", cls=LoraConfig, shorthand="path"))
    # folders searched for LoRA files named by a bare name (in prompts or `lora:`), relative to the keyframe file
    lora_dirs: tuple[Path, ...] = field(default=(), metadata=spec("paths"))
    # folders searched for textual-inversion embeddings, relative to the keyframe file
    embedding_dirs: tuple[Path, ...] = field(default=(), metadata=spec("paths"))
    sampler: str = field(default="euler_a", metadata=spec("enum", choices=SAMPLERS))  # unless generation.sampler
    device: str = field(default="auto", metadata=spec("device"))  # auto | cpu | cuda | cuda:N | mps
    # model weights' type: auto is float16 on CUDA and MPS (half the memory, tensor cores), float32 on the CPU
    dtype: str = field(default="auto", metadata=spec("enum", choices=DTYPES))
    # torch.compile the UNet, VAE, depth model and 3D warp: none | default | cudagraphs (CUDA graphs on top: fastest for
    # the fixed frame size of a render). The first frames wait for compiling (about a minute per model and size).
    compile: str = field(default="none", metadata=spec("enum", choices=COMPILE_MODES))
    # convolutions in channels-last memory layout on CUDA (faster tensor-core kernels); no effect on the CPU
    channels_last: bool = field(default=True, metadata=spec("bool"))
    # the UNet's and VAE decoder's "upsample 2x, then 3x3 conv" layers as one 2x2 convolution at the input's size
    # (inputs of 8x8 and more): the same result up to rounding with 4/9 of their arithmetic; on the CPU and for
    # compiled models on a GPU (uncompiled on a GPU diffusers' layers are faster: backends/speed.py)
    subpixel_upsample: bool = field(default=True, metadata=spec("bool"))
    # cuDNN times its convolution algorithms on the first call of each shape and keeps the fastest (a render's shapes
    # never change); CUDA only; torch's setting is process-wide, and each render on CUDA sets it to this value.
    # bench_render --cudnn-benchmark on measures what it does to a whole render
    cudnn_benchmark: bool = field(default=False, metadata=spec("bool"))


@dataclass(frozen=True)
class VideoInputConfig:
    """Mode video: stylise an input clip."""

    path: Path = field(default=Path(), metadata=spec("path", required=True))  # the clip to stylise
    every_nth: int = field(default=1, metadata=spec("int", low=1, high=10_000))  # use every n-th input frame
    from_frame: int = field(default=0, metadata=spec("int", low=0, high=10**9))  # first input frame used
    to_frame: int | None = field(
        default=None, metadata=spec("int", low=0, high=10**9, optional=True)
    )  # last; None: end
    keep_audio: bool = field(default=True, metadata=spec("bool"))  # carry the clip's soundtrack into the output
    # where the flow is reliable, the share of the flow-carried previous output blended with the input frame
    # (1: the previous output, steadier; 0: the input frame, closer to the clip)
    flow_blend: Schedule = schedule_field("0:(0.7)", low=0.0, high=1.0)


@dataclass(frozen=True)
class HybridConfig:
    """Camera motion of an input video applied to the generation."""

    path: Path = field(default=Path(), metadata=spec("path", required=True))  # the video whose motion is followed
    # optical_flow (dense flow), perspective (RANSAC homography), affine (RANSAC affine), none
    motion: str = field(default="none", metadata=spec("enum", choices=HYBRID_MOTIONS))
    composite_alpha: Schedule = schedule_field("0:(0)", low=0.0, high=1.0)  # share of the video frame blended in
    before_generation: bool = field(default=True, metadata=spec("bool"))  # blend before denoising (else after)


@dataclass(frozen=True)
class AudioConfig:
    """A soundtrack whose features drive schedules (variables rms, onset, beat, bass ...)."""

    path: Path = field(default=Path(), metadata=spec("path", required=True))  # the song analysed (and muxed)
    stems: dict = field(default_factory=dict, metadata=spec("stems"))  # name -> path of a separated stem
    offset: float = field(default=0.0, metadata=spec("float", low=0.0, high=1e6))  # seconds where frame 0 starts
    beat_decay: float = field(default=0.25, metadata=spec("float", low=0.001, high=60.0))  # beat envelope, seconds
    # name -> (low Hz, high Hz): one energy variable per band, 0..1
    bands: dict = field(
        default_factory=lambda: {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "high": (4000.0, 16000.0)},
        metadata=spec("bands"),
    )


@dataclass(frozen=True)
class ControlNetUnit:
    """One ControlNet (`controlnet:` list item): a control image per frame steers the denoiser."""

    # hub id, diffusers folder or single .safetensors file; a relative path is resolved against the keyframe file
    # when it exists there (otherwise the text is a hub id)
    model: str = field(default="", metadata=spec("model", required=True))
    config: Path | None = field(default=None, metadata=spec("path", optional=True))  # diffusers config folder
    # where the control image comes from: depth (the frame's depth map), canny (edges of the warped frame),
    # warped (the warped previous frame itself), image / video (a file, `path`), or an annotator of the warped
    # frame (hed, lineart, lineart_anime, openpose, softedge, mlsd, normalbae; weights in `annotator`)
    source: str = field(default="depth", metadata=spec("enum", choices=CONTROL_SOURCES))
    path: Path | None = field(default=None, metadata=spec("path", optional=True))  # for source image / video
    annotator: Path | None = field(default=None, metadata=spec("path", optional=True))  # controlnet-aux weights
    canny_low: int = field(default=100, metadata=spec("int", low=0, high=255))  # Canny hysteresis thresholds on
    canny_high: int = field(default=200, metadata=spec("int", low=0, high=255))  # 0..255 gradients; high > low
    weight: Schedule = schedule_field("0:(1)", low=0.0)  # conditioning scale: 0 ignores the unit
    # share of the sampling steps, from their start, where the unit acts: before guidance_start and after
    # guidance_end the denoiser runs without it (0 <= start < end <= 1)
    guidance_start: Schedule = schedule_field("0:(0)", low=0.0, high=1.0)
    guidance_end: Schedule = schedule_field("0:(1)", low=0.0, high=1.0)
    # balanced: control on both guidance branches; prompt: the prompt matters more (control weakened on the
    # conditional branch); control: control only on the conditional branch (A1111's control modes)
    mode: str = field(default="balanced", metadata=spec("enum", choices=CONTROL_MODES))
    # the control type of an SDXL ControlNet-Union model (None: a single-type ControlNet)
    control_type: str | None = field(default=None, metadata=spec("enum", choices=CONTROL_UNION_TYPES, optional=True))


@dataclass(frozen=True)
class Section:
    """A span of frames (`sections:` list item) that may start over from an image or from noise."""

    frames: range = field(default=range(0), metadata=spec("span", required=True))  # frame indices, stop exclusive
    # previous: continue from the previous frame (no break); image: restart from `image`; noise: restart from the
    # denoiser alone (as a render without init_image)
    start: str = field(default="previous", metadata=spec("enum", choices=SECTION_STARTS))
    image: Path | None = field(default=None, metadata=spec("path", optional=True))  # for start image
    # frames over which the previous section's last frame fades into the new start (start image / noise only)
    crossfade: int = field(default=0, metadata=spec("int", low=0, high=10**6))


@dataclass(frozen=True)
class InterpolateConfig:
    """Frames added between rendered frames after the render (`output.interpolate:`); exactly one of factor / fps."""

    factor: int | None = field(default=None, metadata=spec("int", low=2, high=64, optional=True))  # frames per frame
    fps: float | None = field(default=None, metadata=spec("float", low=1e-3, high=1000.0, optional=True))  # target
    # flow: warp both neighbours along optical flow; camera: reproject with the known camera move and depth (3d);
    # rife: a RIFE model (weights in `model`); blend: cross-fade (fast, ghosts on motion)
    method: str = field(default="flow", metadata=spec("enum", choices=INTERPOLATE_METHODS))
    model: Path | None = field(default=None, metadata=spec("path", optional=True))  # RIFE weights for method rife
    # keep the render's fps, so the added frames play the animation slower instead of smoother
    slowmo: bool = field(default=False, metadata=spec("bool"))


@dataclass(frozen=True)
class UpscaleConfig:
    """Finished frames made larger after the render (`output.upscale:`); scale, or width and / or height."""

    scale: float | None = field(default=None, metadata=spec("float", low=1.0, high=8.0, optional=True))  # > 1
    # target size in pixels (even, for yuv420p video); one alone keeps the aspect ratio
    width: int | None = field(default=None, metadata=spec("int", low=16, high=16384, multiple=2, optional=True))
    height: int | None = field(default=None, metadata=spec("int", low=16, high=16384, multiple=2, optional=True))
    # lanczos: resampling only; model: a super-resolution network (`model`); diffusion: lanczos, then an img2img
    # pass of backends.denoise at `strength` to add detail. Unset: model when `model` is given, else lanczos.
    method: str = field(default="lanczos", metadata=spec("enum", choices=UPSCALE_METHODS))
    model: Path | None = field(default=None, metadata=spec("path", optional=True))  # .pth / .safetensors weights
    strength: float = field(default=0.25, metadata=spec("float", low=0.0, high=1.0))  # denoise of method diffusion
    # tile size in output pixels for the model and diffusion methods (bounds memory); 0: the whole frame at once
    tile: int = field(default=512, metadata=spec("int", low=0, high=16384))


@dataclass(frozen=True)
class OutputConfig:
    """The video written, and the finishing passes over its frames."""

    path: Path | None = field(default=None, metadata=spec("path", optional=True))  # None: <file stem>.mp4 here
    codec: str = field(default="h264", metadata=spec("enum", choices=CODECS))  # video codec
    crf: int = field(default=18, metadata=spec("int", low=0, high=63))  # quality: lower is better and larger
    preset: str = field(default="medium", metadata=spec("enum", choices=ENCODER_PRESETS))  # encoder speed vs size
    pix_fmt: str = field(default="yuv420p", metadata=spec("str"))  # pixel format; yuv420p plays everywhere
    gif: bool = field(default=False, metadata=spec("bool"))  # also write an animated GIF
    # also keep every frame as a PNG in this folder
    frames_dir: Path | None = field(default=None, metadata=spec("path", optional=True, output=True))
    audio: bool = field(default=True, metadata=spec("bool"))  # mux the soundtrack into the video
    # frames added between rendered frames after the render (None: none)
    interpolate: InterpolateConfig | None = field(default=None, metadata=spec("section", cls=InterpolateConfig))
    # frames made larger after the render (None: the render's size)
    upscale: UpscaleConfig | None = field(default=None, metadata=spec("section", cls=UpscaleConfig))


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
    """The audio variables an expression may read: the features, the bands, and both per stem."""
    if audio is None:
        return ()
    names = list(AUDIO_FEATURES) + list(audio.bands)
    for stem in audio.stems:
        names += [f"{stem}_{feature}" for feature in (*AUDIO_FEATURES, *audio.bands)]
    return tuple(dict.fromkeys(names))
