"""ControlNet in the render: the units loaded once per run, and each diffused frame's control inputs.

:func:`load_controlnets` loads the keyframe file's ``controlnet:`` units for the run's denoiser and makes their
control-image sources; every problem (a ControlNet for another architecture, a missing image or video, an unknown
source, an annotator without its extra) is an error naming the file, line and field, before the first frame.
:func:`control_inputs` gives the denoiser a frame's inputs: each unit's control image made from what the loop has
at that point (the warped frame, its warped tracked depth, the frame index) and the unit's scheduled weight and
guidance window at that frame (the schedules ``controlnet.<i>.weight`` / ``guidance_start`` / ``guidance_end``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from animator.backends.controlnet.sources import FrameView
    from animator.backends.controlnet.units import ControlInput, ControlNetUnit
    from animator.keyframes import AnimationConfig
    from animator.plan import RenderPlan
    from animator.rendering.context import RunContext
    from animator.rendering.state import FrameState

__all__ = [
    "RunControlNet",
    "control_sources",
    "load_controlnets",
    "control_inputs",
    "control_images",
    "controlnet_key",
    "first_frame_control",
    "next_frame_control",
    "recording_control",
]

# (frame index, {unit index: (control image or None, weight)}) while recording_control is active
_recording: ContextVar[tuple[int, dict] | None] = ContextVar("animator_recording_control", default=None)


@contextmanager
def recording_control(index: int) -> Iterator[dict]:
    """While active, the control inputs made for frame ``index`` are recorded in the yielded dict (unit index ->
    (1x3xHxW image on the host, or None for a unit sitting the frame out; weight)); for inspection
    (``animator.notebook.show_control``)."""
    record: dict = {}
    token = _recording.set((index, record))
    try:
        yield record
    finally:
        _recording.reset(token)


_NO_PIXELS = ("depth", "image", "video")  # sources that do not look at the warped frame


@dataclass(frozen=True)
class RunControlNet:
    """A loaded unit and its control-image source (a callable of a :class:`FrameView`)."""

    unit: ControlNetUnit
    source: object

    def describe(self) -> dict:
        return self.unit.describe()


def controlnet_key(config: AnimationConfig) -> tuple:
    """What decides which ControlNets and sources a run loads (not the schedules: those are read per frame)."""
    return tuple(
        (u.model, u.config, u.source, u.path, u.annotator, u.canny_low, u.canny_high, u.mode, u.control_type)
        for u in config.controlnet
    ) + ((config.width, config.height) if config.controlnet else ())


def control_sources(config: AnimationConfig) -> tuple:
    """Each unit's control-image source: cheap, and run before any model loads, so that a missing file, an unknown
    source, an annotator without its extra or a depth source without depth stops the render at once."""
    from animator.backends.controlnet.sources import make_source
    from animator.backends.controlnet.units import ControlSettings
    from animator.errors import AnimatorError

    sources = []
    for index, spec in enumerate(config.controlnet):
        field = f"controlnet.{index}"
        with _located(config, field):
            if spec.source == "depth" and config.mode != "3d":
                raise AnimatorError(
                    f"source: depth is the render's own depth, and a {config.mode} render has none",
                    field=f"{field}.source",
                    hint="use mode: 3d, or a canny / warped / image / video source",
                )
            sources.append(make_source(ControlSettings.of(spec), width=config.width, height=config.height, field=field))
    return tuple(sources)


def load_controlnets(config: AnimationConfig, denoiser, sources: tuple | None = None) -> tuple[RunControlNet, ...]:
    """Each ``controlnet:`` unit loaded for ``denoiser`` with its source (made here unless given); errors carry
    the file, line and field."""
    from animator.backends.controlnet.units import ControlSettings, load_unit

    sources = control_sources(config) if sources is None else sources
    loaded = []
    for index, (spec, source) in enumerate(zip(config.controlnet, sources)):
        with _located(config, f"controlnet.{index}"):
            unit = load_unit(index, spec.model, ControlSettings.of(spec), denoiser, config=spec.config)
        loaded.append(RunControlNet(unit=unit, source=source))
    return tuple(loaded)


@contextmanager
def _located(config: AnimationConfig, field: str):
    """AnimatorErrors raised inside get the keyframe file and the line of their field (or of ``field``)."""
    from animator.errors import AnimatorError
    from animator.keyframes import line_of

    try:
        yield
    except AnimatorError as exc:
        where = exc.field or field
        raise exc.with_location(file=config.path, line=line_of(config, where), field=where) from exc


def control_images(controlnets, view: FrameView) -> list[torch.Tensor]:
    """Each unit's control image (1x3xHxW in [0, 1]) for the frame ``view`` describes."""
    return [controlnet.source(view) for controlnet in controlnets]


def control_inputs(
    controlnets,
    plan: RenderPlan,
    index: int,
    image: torch.Tensor | None,
    depth: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> list[ControlInput] | None:
    """The denoiser's ``control`` argument for frame ``index`` (None when the run has no units).

    Args:
        controlnets: the run's units (``Models.controlnets``).
        plan: the run's plan (its schedules hold ``controlnet.<i>.weight`` etc. for every frame).
        image: 1x3xHxW [0, 1], the warped previous frame (the init image or input frame on a first frame).
        depth: 1x1xHxW z of ``image``: the previous frame's tracked depth warped with it (3D), or None.
        valid: 1x1xHxW bool, False where the warp revealed pixels (holes in ``depth``), or None.
    """
    if not controlnets:
        return None
    from animator.backends.controlnet.sources import FrameView
    from animator.backends.controlnet.units import ControlInput

    view = FrameView(index=index, image=image, depth=depth, valid=valid)
    values = plan.schedules.values
    inputs = []
    for controlnet in controlnets:
        prefix = f"controlnet.{controlnet.unit.index}"
        weight = float(values[f"{prefix}.weight"][index])
        source = controlnet.unit.settings.source
        # a unit with nothing to look at yet (depth or pixels on a first frame made from text) sits the frame out
        missing = (source == "depth" and depth is None) or (source not in _NO_PIXELS and image is None)
        if weight == 0 or missing:  # no control image is made (a Canny pass or a video read saved)
            weight, image_in = 0.0, None
        else:
            image_in = controlnet.source(view)
        inputs.append(
            ControlInput(
                unit=controlnet.unit,
                image=image_in,
                weight=weight,
                start=float(values[f"{prefix}.guidance_start"][index]),
                end=float(values[f"{prefix}.guidance_end"][index]),
            )
        )
    recording = _recording.get()
    if recording is not None and recording[0] == index:
        for item in inputs:
            image_out = None if item.image is None else item.image.detach().float().cpu()
            recording[1][item.unit.index] = (image_out, item.weight)
    return inputs


def _needs(controlnets, sources) -> bool:
    return any(controlnet.unit.settings.source in sources for controlnet in controlnets)


def first_frame_control(ctx: RunContext, index: int, image: torch.Tensor | None) -> list[ControlInput] | None:
    """The control of a run's first frame, made from ``image`` (the init image or input frame; None when the frame
    is made from text: then only image and video sources have something to show). There is no tracked depth yet:
    a depth unit gets the depth model's view of ``image`` (the one extra depth-model call of a run)."""
    controlnets = ctx.models.controlnets
    if not controlnets:
        return None
    depth = None
    if image is not None and ctx.models.depth is not None and _needs(controlnets, ("depth",)):
        from animator.devices import profiled

        with profiled("model:depth"):
            disparity = ctx.models.depth(image)  # relative inverse depth: its inverse is a z up to scale
        depth = 1.0 / disparity.float().clamp_min(1e-6)
    return control_inputs(controlnets, ctx.plan, index, image, depth)


def next_frame_control(
    ctx: RunContext, state: FrameState, index: int, image=None, depth=None, valid=None
) -> list[ControlInput] | None:
    """The control of anchor ``index`` made from ``state``: ``image`` the warped previous frame, ``depth`` and
    ``valid`` its warped tracked depth and hole mask. Latent feedback has no warped pixels (``image`` None): the
    previous frame's pixels are warped for the units that look at them (canny, warped, annotators) only."""
    controlnets = ctx.models.controlnets
    if not controlnets:
        return None
    if image is None and any(controlnet.unit.settings.source not in _NO_PIXELS for controlnet in controlnets):
        from animator.rendering.camera import move_camera

        image = move_camera(ctx, state, index).image
    return control_inputs(controlnets, ctx.plan, index, image, depth, valid)
