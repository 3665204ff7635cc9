"""Speed switches for loaded models: sub-pixel upsampling, channels-last layout, ``torch.compile``, CUDA graphs.

A render calls the same models on tensors of one fixed shape thousands of times, which is the case these
switches are made for:

- **subpixel_upsample** computes the diffusion model's "nearest 2x, then 3x3 convolution" layers as one 2x2
  convolution at the input's resolution (:mod:`animator.backends.subpixel`; inputs of at least 8x8): same result,
  4/9 of their arithmetic. On the CPU, and for compiled models on a GPU; uncompiled on a GPU diffusers' layers are
  kept (there the extra kernel launches cost more than the arithmetic saves).
- **channels_last** stores convolution weights NHWC, the layout the tensor-core kernels read without transposes
  (CUDA only; on the CPU oneDNN picks its own layout).
- **compile** ``default`` traces each model once per input shape with TorchInductor (fused kernels);
  ``cudagraphs`` (``mode="reduce-overhead"``) also records the model's kernel launches as one CUDA graph and
  replays it, which removes the Python and launch cost that dominates small models and one-step UNets.
  ``dynamic=False``: a render's shapes never change, and static shapes are what CUDA graphs need.

Compiled modules keep their class and attributes (``nn.Module.compile`` works in place), so the rest of the code
does not know whether a model is compiled.

Before every call of a compiled model, torch checks the guards of its compiled graph: for the SD 1.5 UNet ~700
parameters and the attributes of every submodule, 0.7-0.8 ms of host time per call on an H100 machine (seen in a
profiler trace) in a turbo frame the host already limits. The guards on torch's own layers (Conv2d, Linear,
GroupNorm ... : their parameters and settings, which nothing changes after loading) are dropped
(``torch.compiler.skip_guard_on_inbuilt_nn_modules_unsafe``: 60% of the check on this project's CPU); the
parameters stay graph inputs, read at each call, so weights changed in place are used. The guards on the inputs
and on the models' own modules (a diffusers block's settings, hooks, LoRA scales) stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from animator.choices import COMPILE_MODES
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch

__all__ = [
    "COMPILE_MODES",
    "torch_compile_mode",
    "speed_up_module",
    "speed_up_denoiser",
    "speed_up_depth",
    "speed_up_controlnets",
]


def torch_compile_mode(compile: str, device: torch.device) -> str | None:
    """The ``torch.compile`` mode for a ``backends.compile`` value on ``device`` (None: do not compile).

    CUDA graphs exist only on CUDA: elsewhere ``cudagraphs`` compiles with the default mode.
    """
    if compile not in COMPILE_MODES:
        raise AnimatorError(
            f"unknown compile setting {compile!r}",
            field="backends.compile",
            hint="use one of: " + ", ".join(COMPILE_MODES),
        )
    if compile == "none":
        return None
    if compile == "cudagraphs" and device.type == "cuda":
        return "reduce-overhead"
    return "default"


def speed_up_module(
    module, *, device: torch.device, compile: str = "none", channels_last: bool = False, backend: str = "inductor"
) -> dict:
    """Applies the switches to one ``nn.Module`` in place; returns what was applied (for the run record).

    ``backend`` is torch.compile's; tests pass ``"eager"`` to check that a model traces without paying for code
    generation."""
    import torch

    applied: dict[str, Any] = {}
    if channels_last and device.type == "cuda":
        module.to(memory_format=torch.channels_last)
        applied["channels_last"] = True
    mode = torch_compile_mode(compile, device)
    if mode is not None:
        module.compile(backend=backend, dynamic=False, options=_compile_options(module, mode, backend))
        applied["compile"] = mode
    return applied


def _compile_options(module, mode: str, backend: str) -> dict:
    """torch.compile's ``options`` for ``mode`` (it takes a mode or options, not both) with the guard filter."""
    import torch

    options: dict[str, Any] = {}
    if backend == "inductor":
        from torch._inductor import list_mode_options

        options.update(list_mode_options(mode, dynamic=False))
    # accelerate's CPU offload moves the parameters between devices around each call: their guards must stay
    offloaded = any(hasattr(part, "_hf_hook") for part in module.modules())
    guard_filter = getattr(torch.compiler, "skip_guard_on_inbuilt_nn_modules_unsafe", None)  # torch >= 2.7
    if guard_filter is not None and not offloaded:
        options["guard_filter_fn"] = guard_filter
    return options


def _parts(vae) -> list:
    """The VAE's encoder and decoder networks: ``vae.encode`` / ``vae.decode`` wrap them in Python that makes
    distributions and output objects, which is better left uncompiled."""
    return [part for part in (getattr(vae, "encoder", None), getattr(vae, "decoder", None)) if part is not None]


def speed_up_denoiser(
    denoiser, *, compile: str = "none", channels_last: bool = False, subpixel_upsample: bool = False
) -> dict:
    """Sub-pixel upsampling / channels-last / compile for a :class:`DiffusersDenoiser`'s UNet and VAE (no-op for
    the ``none`` denoiser). The upsampling layers are switched first, so that compiling traces the new path."""
    pipe = getattr(denoiser, "pipe", None)
    if pipe is None:
        return {}
    device = denoiser._execution_device
    applied: dict[str, Any] = {}
    if subpixel_upsample and device.type != "cpu" and torch_compile_mode(compile, device) is None:
        # Uncompiled on a GPU each layer launches its kernels one by one, and the sub-pixel form's extra small ones
        # (the phases' interleaving) cost more than its arithmetic saves: on an H200 in fp16 each upsampling layer
        # ran 0.45-0.79x, the whole VAE decoder 0.98x and a CFG UNet evaluation 0.96x of diffusers' own
        # (benchmarks/bench_upsample.py). Compiled, the interleaving fuses into one kernel; on the CPU it is faster.
        applied["subpixel_upsample"] = "not applied: uncompiled on " + device.type
    elif subpixel_upsample:
        from animator.backends.subpixel import use_subpixel_upsampling

        applied["subpixel_upsample"] = {
            "unet": use_subpixel_upsampling(pipe.unet),
            "vae": use_subpixel_upsampling(pipe.vae),
        }  # layers switched
    applied |= {
        "unet": speed_up_module(pipe.unet, device=device, compile=compile, channels_last=channels_last),
        "vae": speed_up_module(pipe.vae, device=device, channels_last=channels_last),
    }
    for name, part in zip(("vae_encoder", "vae_decoder"), _parts(pipe.vae)):
        applied[name] = speed_up_module(part, device=device, compile=compile)
    applied["attention"] = attention_kind(pipe.unet)
    applied = {key: value for key, value in applied.items() if value}
    denoiser.info["speed"] = applied
    return applied


def speed_up_depth(estimator, *, compile: str = "none", channels_last: bool = False) -> dict:
    """Channels-last / compile for a learned depth model (no-op for the offline prior)."""
    model = getattr(estimator, "model", None)
    if model is None:
        return {}
    if torch_compile_mode(compile, estimator.device) is not None and hasattr(estimator, "prime"):
        estimator.prime()  # transformers' first call installs hooks that would split the compiled model in two
    return speed_up_module(model, device=estimator.device, compile=compile, channels_last=channels_last)


def speed_up_controlnets(units, *, compile: str = "none", channels_last: bool = False) -> list[dict]:
    """Channels-last / compile for each ControlNet unit, as for the UNet. What is compiled is the unit's
    ``ScaledControlNet`` (the ControlNet and the scaling of its residuals, one graph): the frame's weight reaches it
    as a tensor, so weights, and the guidance window (which only decides whether it is called), can change every
    frame without a new trace. Records what was applied in each unit's ``info["speed"]``."""
    applied = []
    for unit in units:
        device = next(unit.controlnet.parameters()).device
        done = speed_up_module(unit.runner, device=device, compile=compile, channels_last=channels_last)
        unit.info["speed"] = done
        applied.append(done)
    return applied


def attention_kind(unet) -> str:
    """``sdpa`` when every attention layer uses PyTorch's fused scaled-dot-product attention (diffusers' default
    with torch 2), else the processor class names: a model loaded with an old processor shows up in the run record."""
    processors = getattr(unet, "attn_processors", None)
    if not processors:
        return "unknown"
    names = sorted({type(processor).__name__ for processor in processors.values()})
    return "sdpa" if names == ["AttnProcessor2_0"] else ",".join(names)
