"""A loaded ControlNet unit (model + settings) and one frame's control input for it.

:class:`ControlNetUnit` is what a run loads once: the model (wrapped in ``residuals.ScaledControlNet``, the
module ``backends.compile`` compiles), where its control image comes from and how it shares guidance with the
prompt. :class:`ControlInput` is what one diffused frame hands the denoiser per unit: the control image and the
frame's weight and guidance window (schedules, evaluated per frame).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from animator.backends.controlnet.loading import check_fits, load_controlnet, union_type_index
from animator.choices import CONTROL_MODES
from animator.errors import AnimatorError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["ControlSettings", "ControlNetUnit", "ControlInput", "load_unit", "MODES"]

MODES = CONTROL_MODES  # the name the package exports


@dataclass(frozen=True)
class ControlSettings:
    """How a unit gets its control image and how it shares guidance with the prompt (a keyframe file's unit
    without its model and schedules)."""

    source: str = "depth"  # depth | canny | warped | image | video | an annotator name (hed, lineart, ...)
    path: Path | None = None  # the image or video of source image / video
    annotator: Path | None = None  # the local folder of an annotator's weights
    canny_low: int = 100  # Canny hysteresis thresholds on 0..255 gradients
    canny_high: int = 200
    mode: str = "balanced"  # balanced | prompt | control (see residuals.residual_scales)
    control_type: str | None = None  # the control type of a ControlNet-Union model

    @classmethod
    def of(cls, unit) -> ControlSettings:
        """The settings of a keyframe file's ``controlnet:`` unit (any object with these fields)."""
        return cls(**{name: getattr(unit, name) for name in cls.__dataclass_fields__})


@dataclass
class ControlNetUnit:
    """A loaded unit: its model (wrapped, see ``residuals.ScaledControlNet``) and settings."""

    index: int  # its place in the keyframe file's list (errors and schedules name controlnet.<index>)
    runner: Any  # the ScaledControlNet: what the sampler calls (compiled with backends.compile)
    settings: ControlSettings
    info: dict[str, Any] = field(default_factory=dict)  # for the run record

    @property
    def controlnet(self):
        return self.runner.controlnet

    @property
    def residual_count(self) -> int:
        """Down residuals + 1 (mid): 13 for SD 1.5, 10 for SDXL."""
        return len(self.controlnet.controlnet_down_blocks) + 1

    @property
    def cond_only(self) -> bool:
        """Whether the control goes only into the conditional half of classifier-free guidance: ``control`` mode
        (diffusers' guess mode), and ControlNets with global pooling (shuffle), as diffusers does."""
        return self.settings.mode == "control" or bool(self.controlnet.config.get("global_pool_conditions", False))

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {
            **self.info,
            "source": settings.source,
            "mode": settings.mode,
            **({"path": str(settings.path)} if settings.path else {}),
            **({"control_type": settings.control_type} if settings.control_type else {}),
        }


@dataclass(frozen=True)
class ControlInput:
    """One unit's control for one diffused frame."""

    unit: ControlNetUnit
    # 1x3xHxW (or Bx3xHxW) float in [0, 1] at the frame's size (resized to it when it differs); None only at
    # weight 0 (a unit sitting the frame out: the sampler then adds zeros, keeping one UNet graph)
    image: Tensor | None
    weight: float = 1.0  # conditioning scale; 0 skips the unit
    start: float = 0.0  # share of the frame's sampling steps before the unit starts acting
    end: float = 1.0  # share of the frame's sampling steps after which it stops


def load_unit(
    index: int,
    model: str | os.PathLike,
    settings: ControlSettings,
    denoiser,
    *,
    config: str | os.PathLike | None = None,
) -> ControlNetUnit:
    """Load unit ``index``'s ControlNet for ``denoiser`` (a :class:`DiffusersDenoiser`) and check that it fits.

    Errors name the field ``controlnet.<index>.<name>``; the caller adds the keyframe file and line."""
    prefix = f"controlnet.{index}"
    if settings.mode not in MODES:
        raise AnimatorError(
            f"unknown ControlNet mode {settings.mode!r}", field=f"{prefix}.mode", hint="use one of: " + ", ".join(MODES)
        )
    pipe = getattr(denoiser, "pipe", None)
    if pipe is None:
        raise AnimatorError(
            "ControlNet units need a diffusion model; this render is warp-only (backends.denoise: none)",
            field="controlnet",
            hint="set backends.denoise (or --model) to an SD 1.x/2.x or SDXL model, or remove the controlnet: list",
        )
    device, dtype = denoiser._execution_device, pipe.unet.dtype
    controlnet, info = load_controlnet(model, config=config, device=device, dtype=dtype, field=f"{prefix}.model")
    check_fits(controlnet.config, pipe.unet.config, label=str(model), field=f"{prefix}.model")
    union_index = None
    if type(controlnet).__name__ == "ControlNetUnionModel":
        if settings.control_type is None:
            raise AnimatorError(
                f"ControlNet {model} is a ControlNet-Union model: it needs the unit's control_type",
                field=f"{prefix}.control_type",
                hint="e.g. control_type: depth (for source: depth) or canny",
            )
        union_index = union_type_index(
            settings.control_type, controlnet.config.num_control_type, field=f"{prefix}.control_type"
        )
    elif settings.control_type is not None:
        raise AnimatorError(
            f"control_type is for ControlNet-Union models; {model} is a single-type ControlNet",
            field=f"{prefix}.control_type",
            hint="remove control_type from this unit",
        )
    from animator.backends.controlnet.residuals import ScaledControlNet

    runner = ScaledControlNet(controlnet, union_index).to(device)
    return ControlNetUnit(index=index, runner=runner, settings=settings, info={"model": str(model), **info})
