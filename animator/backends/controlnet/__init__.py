"""ControlNet units inside the sampling loop: a control image per frame steers every UNet evaluation.

- :func:`load_unit` loads a unit's ControlNet (hub id in the local cache, diffusers folder, single file with a
  config folder) and checks it against the denoiser's UNet (SD 1.x/2.x vs SDXL; ControlNet-Union control types).
- :class:`ControlInput` is one unit's control for one frame (image, weight, guidance window); the denoisers'
  ``img2img(..., control=[...])`` sums the units' residuals into each UNet evaluation (:mod:`.residuals`).
- :mod:`.sources` makes the control images: the loop's own depth, Canny edges, the warped frame, an image, a video,
  or a controlnet-aux annotator (optional extra).

Example:
    >>> depth_cn = "lllyasviel/control_v11f1p_sd15_depth"
    >>> unit = load_unit(0, depth_cn, ControlSettings(source="depth"), denoiser)  # doctest: +SKIP
    >>> frame = denoiser.img2img(warped, "a castle", strength=0.5, guidance=7, steps=20, generator=g,
    ...                          control=[ControlInput(unit, depth_image, weight=0.8)])  # doctest: +SKIP
"""

from animator.backends.controlnet.loading import UNION_TYPES, architecture_of, check_fits, load_controlnet
from animator.backends.controlnet.units import MODES, ControlInput, ControlNetUnit, ControlSettings, load_unit

__all__ = [
    "UNION_TYPES",
    "architecture_of",
    "check_fits",
    "load_controlnet",
    "MODES",
    "ControlInput",
    "ControlNetUnit",
    "ControlSettings",
    "load_unit",
]
