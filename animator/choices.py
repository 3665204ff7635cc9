"""Every choice list of the project, defined once: keyframe validation, the geometry, the colour code, the plan and
the docs read them from here.

A leaf module (no torch, no numpy): importing it costs nothing, so the CLI and the keyframe loader can use it.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------ the animation

# 2d: zoom / rotate / translate the picture; 3d: move a camera through the depth map; video: stylise an input clip
MODES = ("2d", "3d", "video")
# how the per-frame seed follows the base seed (Deforum's seed_behavior)
SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
# how a schedule fills frames between two number keyframes
INTERPOLATIONS = ("linear", "step", "cubic", "ease")

# ------------------------------------------------------------------------------------------------ motion

# what a 2D warp samples outside the picture (OpenCV border modes)
BORDERS = ("replicate", "wrap", "reflect")
# how 3D disocclusion holes are filled
FILLS = ("none", "border", "reflection", "telea", "background")
# resampling kernel of warped frames
SAMPLINGS = ("bilinear", "bicubic", "catmull_rom")
# what 3D motion values mean: scene units, or Deforum's (rescaled to scene units by the render)
MOTION_UNITS = ("scene", "deforum")

# ------------------------------------------------------------------------------------------------ generation

# noise added before denoising
NOISE_TYPES = ("gaussian", "perlin")
# revealed pixels: filled and denoised like the rest, or drawn anew from noise
HOLES = ("fill", "repaint")
# what the next diffused frame starts from: the previous frame's pixels or its latents
FEEDBACKS = ("image", "latent")

# Samplers by the names A1111 / Deforum users know, lower case with underscores (animator.sampler_names
# normalises other spellings: "DPM++ 2M Karras", "k_lms").
SAMPLER_NAMES: tuple[str, ...] = (
    "euler", "euler_karras", "euler_a", "heun", "dpm2", "dpm2_karras", "dpm2_a",
    "dpm++_2m", "dpm++_2m_karras", "dpm++_2m_sde", "dpm++_2m_sde_karras", "dpm++_2s", "dpm++_sde", "dpm++_sde_karras",
    "ddim", "ddpm", "lms", "lms_karras", "pndm", "deis", "unipc", "lcm", "tcd",
)  # fmt: skip
# other spellings of a sampler name -> its canonical name
SAMPLER_ALIASES: dict[str, str] = {
    "k_euler": "euler", "k_euler_a": "euler_a", "k_euler_ancestral": "euler_a", "euler_ancestral": "euler_a",
    "plms": "pndm", "k_lms": "lms", "k_heun": "heun", "uni_pc": "unipc", "k_dpm_2": "dpm2", "k_dpm_2_a": "dpm2_a",
    "dpm_2": "dpm2", "dpm_2_a": "dpm2_a",
}  # fmt: skip
# every sampler spelling a keyframe file may use (canonical names first)
SAMPLERS = SAMPLER_NAMES + tuple(SAMPLER_ALIASES)

# ------------------------------------------------------------------------------------------------ coherence

# colour space of colour coherence (none: off)
COLOR_SPACES = ("lab", "hsv", "rgb")
COLOR_MATCHES = (*COLOR_SPACES, "none")
# what colours are matched to: the first frame, an image, the input video's frame
REFERENCES = ("first", "image", "video")
# depth kept steady across frames (align: scale and shift fitted to the previous depth)
DEPTH_STABILITY = ("align", "none")

# ------------------------------------------------------------------------------------------------ backends

# optical flow estimators (dis_*: OpenCV DIS presets; raft_*: torchvision RAFT, an optional extra)
FLOW_ESTIMATORS = ("dis_ultrafast", "dis_fast", "dis_medium", "dis_fine", "farneback", "raft_small", "raft_large")
# model weights' floating-point type (auto: float16 on CUDA, float32 elsewhere)
DTYPES = ("auto", "float32", "float16", "bfloat16")
# torch.compile of the models (cudagraphs: CUDA graphs on top)
COMPILE_MODES = ("none", "default", "cudagraphs")

# ------------------------------------------------------------------------------------------------ inputs

# camera motion taken from a hybrid video
HYBRID_MOTIONS = ("none", "optical_flow", "perspective", "affine")

# ------------------------------------------------------------------------------------------------ ControlNet

# the sources that read a file (`path`)
CONTROL_FILE_SOURCES = ("image", "video")
# the sources computed by a controlnet-aux annotator run on the warped frame (weights in `annotator`)
CONTROL_ANNOTATOR_SOURCES = ("hed", "lineart", "lineart_anime", "openpose", "softedge", "mlsd", "normalbae")
# where a ControlNet unit's control image comes from: the frame's depth, Canny edges of the warped frame, the
# warped frame itself, a file, or an annotator
CONTROL_SOURCES = ("depth", "canny", "warped", *CONTROL_FILE_SOURCES, *CONTROL_ANNOTATOR_SOURCES)
# how control and prompt share the guidance (A1111's control modes)
CONTROL_MODES = ("balanced", "prompt", "control")
# control types of an SDXL ControlNet-Union model
CONTROL_UNION_TYPES = ("openpose", "depth", "softedge", "canny", "lineart", "normal", "segment", "tile", "inpaint")

# ------------------------------------------------------------------------------------------------ sections

# how a section starts: from the previous frame, from an image, or from noise
SECTION_STARTS = ("previous", "image", "noise")

# ------------------------------------------------------------------------------------------------ output

# video codecs of the output file
CODECS = ("h264", "h265", "vp9", "prores")
# encoder speed presets (x264 / x265)
ENCODER_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# how frames are added between rendered frames
INTERPOLATE_METHODS = ("flow", "camera", "rife", "blend")
# how finished frames are made larger
UPSCALE_METHODS = ("lanczos", "model", "diffusion")
# file types of super-resolution weights (method model)
UPSCALE_MODEL_SUFFIXES = (".pth", ".pt", ".safetensors")
