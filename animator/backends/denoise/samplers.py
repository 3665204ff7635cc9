"""Sampler names (the ones Deforum / A1111 users know) mapped to diffusers schedulers.

Every scheduler is built from the model's own scheduler config (its beta schedule, prediction type, training
timesteps), with only the sampling algorithm and sigma spacing swapped. A per-frame sampler schedule reuses the
schedulers already built: :class:`SchedulerCache` builds each name once per loaded model.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from animator.errors import AnimatorError
from animator.sampler_names import SAMPLER_NAMES, normalize_sampler_name

__all__ = ["SamplerSpec", "SAMPLERS", "build_scheduler", "SchedulerCache", "sampler_names"]


@dataclass(frozen=True)
class SamplerSpec:
    """How to build one sampler: a diffusers scheduler class name plus config overrides."""

    scheduler_class: str  # attribute of the ``diffusers`` package
    overrides: Mapping[str, Any] = field(default_factory=dict)  # replaces keys of the model's scheduler config
    needs: str | None = None  # an optional Python package the scheduler imports
    about: str = ""  # one line for `--help` style listings
    # True where diffusers' own step makes the host wait for a GPU (copies from pageable memory, tensors built
    # from device scalars): the frames are right, but the GPU idles between steps. Checked on CUDA by a test.
    waits_on_gpu: bool = False


_KARRAS = {"use_karras_sigmas": True}
_NOT_KARRAS = {"use_karras_sigmas": False}

SAMPLERS: dict[str, SamplerSpec] = {
    "euler": SamplerSpec("EulerDiscreteScheduler", _NOT_KARRAS, about="Euler (k-diffusion), deterministic"),
    "euler_karras": SamplerSpec("EulerDiscreteScheduler", _KARRAS, about="Euler with Karras sigmas"),
    "euler_a": SamplerSpec(
        "EulerAncestralDiscreteScheduler", about="Euler ancestral (Deforum's default), adds noise each step"
    ),
    "heun": SamplerSpec("HeunDiscreteScheduler", _NOT_KARRAS, about="Heun, 2 UNet calls per step"),
    "dpm2": SamplerSpec("KDPM2DiscreteScheduler", _NOT_KARRAS, about="DPM2, 2 UNet calls per step"),
    "dpm2_karras": SamplerSpec("KDPM2DiscreteScheduler", _KARRAS, about="DPM2 with Karras sigmas"),
    "dpm2_a": SamplerSpec("KDPM2AncestralDiscreteScheduler", _NOT_KARRAS, about="DPM2 ancestral"),
    "dpm++_2m": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_NOT_KARRAS, "algorithm_type": "dpmsolver++"}, about="DPM++ 2M"
    ),
    "dpm++_2m_karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {**_KARRAS, "algorithm_type": "dpmsolver++"},
        about="DPM++ 2M Karras (a good default for 20-30 steps)",
    ),
    "dpm++_2m_sde": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_NOT_KARRAS, "algorithm_type": "sde-dpmsolver++"}, about="DPM++ 2M SDE"
    ),
    "dpm++_2m_sde_karras": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_KARRAS, "algorithm_type": "sde-dpmsolver++"}, about="DPM++ 2M SDE Karras"
    ),
    "dpm++_2s": SamplerSpec(
        "DPMSolverSinglestepScheduler", {**_NOT_KARRAS, "lower_order_final": True}, about="DPM++ 2S (singlestep)"
    ),
    "dpm++_sde": SamplerSpec(
        "DPMSolverSDEScheduler", _NOT_KARRAS, needs="torchsde", about="DPM++ SDE (needs torchsde)"
    ),
    "dpm++_sde_karras": SamplerSpec(
        "DPMSolverSDEScheduler", _KARRAS, needs="torchsde", about="DPM++ SDE Karras (needs torchsde)"
    ),
    "ddim": SamplerSpec("DDIMScheduler", about="DDIM, deterministic"),
    "ddpm": SamplerSpec("DDPMScheduler", about="DDPM, stochastic (needs many steps)"),
    "lms": SamplerSpec("LMSDiscreteScheduler", _NOT_KARRAS, about="LMS"),
    "lms_karras": SamplerSpec("LMSDiscreteScheduler", _KARRAS, about="LMS with Karras sigmas"),
    "pndm": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}, about="PNDM / PLMS"),
    "deis": SamplerSpec("DEISMultistepScheduler", _NOT_KARRAS, about="DEIS multistep"),
    # diffusers' UniPC step uploads two sigmas from the host per step (scheduling_unipc_multistep.py, "to avoid too
    # much CPU/GPU communication"), each upload a wait: seen on an H100 under torch's sync debug mode
    "unipc": SamplerSpec(
        "UniPCMultistepScheduler",
        _NOT_KARRAS,
        waits_on_gpu=True,
        about="UniPC, good at few steps (on a GPU slower per step: diffusers' step waits for it)",
    ),
    "lcm": SamplerSpec("LCMScheduler", about="LCM / LCM-LoRA models (4-8 steps, guidance 1-2)"),
    "tcd": SamplerSpec("TCDScheduler", about="TCD-LoRA models"),
}


assert tuple(SAMPLERS) == SAMPLER_NAMES, "animator/sampler_names.py and SAMPLERS must list the same samplers"


def sampler_names() -> list[str]:
    """Every valid sampler name, in listing order."""
    return list(SAMPLERS)


def build_scheduler(name: str, base_config: Mapping[str, Any], *, trailing: bool = False):
    """A fresh diffusers scheduler for sampler ``name``, built on a model's scheduler config.

    Args:
        name: a key of :data:`SAMPLERS` (case-insensitive, ``-`` and spaces read as ``_``).
        base_config: the model's own scheduler config (``pipe.scheduler.config``).
        trailing: use trailing timestep spacing (SD-Turbo / SDXL-Turbo are distilled on it; few-step
            img2img also needs it to reach low noise levels).
    """
    import diffusers

    key = normalize_sampler_name(name)
    spec = SAMPLERS[key]
    if spec.needs and importlib.util.find_spec(spec.needs) is None:
        raise AnimatorError(
            f"sampler {key!r} needs the Python package {spec.needs!r}, which is not installed",
            field="sampler",
            hint=f"pip install {spec.needs}, or pick another sampler",
        )
    scheduler_class = getattr(diffusers, spec.scheduler_class)
    overrides = dict(spec.overrides)
    if trailing:
        overrides["timestep_spacing"] = "trailing"
    accepted = _init_keys(scheduler_class)
    # Drop keys the model config carries for another scheduler family (e.g. `skip_prk_steps` into Euler), which
    # diffusers would otherwise log about on every build.
    config = {k: v for k, v in dict(base_config).items() if k in accepted or k.startswith("_")}
    config.update({k: v for k, v in overrides.items() if k in accepted})
    return scheduler_class.from_config(config)


def _init_keys(scheduler_class) -> set[str]:
    import inspect

    return set(inspect.signature(scheduler_class.__init__).parameters) - {"self"}


class SchedulerCache:
    """Schedulers of one model, built once per sampler name (a per-frame sampler schedule switches for free), and
    their timestep tables made once per step count (:meth:`ready`).

    The tables stay on the host, whatever device the model runs on. A scheduler's step is scalar arithmetic on
    them (``sigma ** 2``, ``sigma_next - sigma``, a comparison, LMS's integrals): on the host that is free, while
    on a GPU each is a kernel launch for one number, and the comparisons and ``float(sigma)`` read the number back,
    which waits for everything queued (up to a hundred times a step for LMS). Host scalars mix with device
    tensors without any copy; only the UNet needs the timestep on its device (:meth:`unet_timesteps`).
    """

    def __init__(self, base_config: Mapping[str, Any], *, trailing: bool = False) -> None:
        self.base_config = dict(base_config)
        self.trailing = trailing
        self._built: dict[str, Any] = {}
        self._ready: dict[tuple[str, int], dict[str, Any]] = {}
        self._uploaded: dict[tuple[str, int, str], Any] = {}
        self.builds = 0  # how many schedulers were constructed (tests check switching does not rebuild)
        self.timestep_tables = 0  # how many times set_timesteps ran

    def ready(self, name: str, steps: int):
        """The scheduler for ``name`` exactly as ``set_timesteps(steps)`` leaves it, its tables on the host.

        ``set_timesteps`` rebuilds the sigma and timestep tables in numpy every time, for the same tables. The
        first call per (name, steps) runs it and keeps the scheduler's attributes; later calls put those back
        (lists and arrays copied: samplers append to their history lists and index their step counters during a
        run).
        """
        scheduler = self.get(name)
        key = (normalize_sampler_name(name), int(steps))
        state = self._ready.get(key)
        if state is None:
            scheduler.set_timesteps(steps, device="cpu")
            self.timestep_tables += 1
            self._ready[key] = _copied(vars(scheduler))
            return scheduler
        attributes = vars(scheduler)
        attributes.clear()
        attributes.update(_copied(state))
        return scheduler

    def unet_timesteps(self, name: str, steps: int, device):
        """``ready(name, steps).timesteps`` on ``device``, uploaded once (from pinned memory: no GPU wait)."""
        from animator.devices import upload

        key = (normalize_sampler_name(name), int(steps), str(device))
        uploaded = self._uploaded.get(key)
        if uploaded is None:
            uploaded = self._uploaded[key] = upload(self.ready(name, steps).timesteps, device)
        return uploaded

    def get(self, name: str):
        key = normalize_sampler_name(name)
        if key not in self._built:
            self._built[key] = build_scheduler(key, self.base_config, trailing=self.trailing)
            self.builds += 1
        return self._built[key]


def _copied(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A scheduler's attributes with its mutable containers copied (tensors are replaced, never changed in place)."""
    import numpy as np

    def copy(value):
        if type(value) in (list, dict, set):
            return type(value)(value)
        return value.copy() if isinstance(value, np.ndarray) else value

    return {key: copy(value) for key, value in attributes.items()}
