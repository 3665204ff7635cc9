"""``load_denoiser``: from a model spec (``none``, hub id, diffusers folder, single checkpoint file) to a Denoiser.

Loading either returns a complete denoiser or raises AnimatorError saying what was wrong and what to do; a failure
half-way (bad VAE, missing LoRA, no peft) drops the partly built pipeline instead of returning it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from animator.backends import hub
from animator.backends.denoise.base import DenoiseDefaults
from animator.backends.denoise.identity import IdentityDenoiser
from animator.backends.denoise.samplers import normalize_sampler_name
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch

    from animator.backends.denoise.base import Denoiser

__all__ = ["load_denoiser", "KINDS", "defaults_for"]

KINDS = ("auto", "sd1", "sd2", "sdxl", "turbo", "lcm")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Hub ids of the tiny VAEs (madebyollin's TAESD), used by vae="tiny".
_TINY_VAE_IDS = {"sdxl": "madebyollin/taesdxl", "sd1": "madebyollin/taesd", "sd2": "madebyollin/taesd"}

# Settings by model family: Deforum's usual SD settings; Turbo as distilled (1-4 steps, no CFG); LCM 4-8 steps.
_DEFAULTS = {
    ("sd1", "standard"): DenoiseDefaults(steps=25, guidance=7.0, strength=0.65, sampler="euler_a"),
    ("sd2", "standard"): DenoiseDefaults(steps=25, guidance=7.0, strength=0.65, sampler="euler_a"),
    ("sdxl", "standard"): DenoiseDefaults(steps=30, guidance=6.0, strength=0.6, sampler="euler_a"),
    ("turbo", "turbo"): DenoiseDefaults(steps=2, guidance=0.0, strength=0.5, sampler="euler_a"),
    ("lcm", "lcm"): DenoiseDefaults(steps=4, guidance=1.5, strength=0.5, sampler="lcm"),
}


def defaults_for(architecture: str, flavour: str) -> DenoiseDefaults:
    """The :class:`DenoiseDefaults` for an architecture (sd1/sd2/sdxl) and flavour (standard/turbo/lcm)."""
    if flavour in ("turbo", "lcm"):
        return _DEFAULTS[(flavour, flavour)]
    return _DEFAULTS[(architecture, "standard")]


def load_denoiser(
    spec: str | os.PathLike | None = "none",
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    vae: str | os.PathLike = "auto",
    lora: Sequence[tuple[str, float]] = (),
    model_config: str | os.PathLike | None = None,
    sampler: str | None = None,
    attention_slicing: bool = False,
    vae_tiling: bool = False,
    cpu_offload: bool = False,
    kind: str = "auto",
    lora_dirs: Sequence[str | os.PathLike] = (),
    embedding_dirs: Sequence[str | os.PathLike] = (),
) -> Denoiser:
    """Load a denoiser once per run.

    Args:
        spec: ``"none"`` (identity, warp-only), a hub id in the local Hugging Face cache
            (``stabilityai/sd-turbo``), a diffusers folder, or a single ``.safetensors`` / ``.ckpt`` checkpoint.
        device: ``auto`` / None (CUDA, then MPS, then CPU), or a torch device.
        dtype: ``auto`` / None (fp16 on GPUs, fp32 on CPU), ``fp16``, ``bf16``, ``fp32`` or a torch dtype.
        vae: ``auto`` (the model's own), ``tiny`` (TAESD: much faster, a little softer), or a hub id / folder of
            an ``AutoencoderKL`` or ``AutoencoderTiny``.
        lora: ``(path or hub id, weight)`` pairs loaded with ``load_lora_weights`` (needs ``peft``).
        model_config: for a single checkpoint file offline: a local diffusers folder of the same architecture
            (its configs, tokenizer and scheduler are used; weights come from the file).
        sampler: default sampler name (a key of SAMPLERS); None takes the model family's default.
        attention_slicing / vae_tiling / cpu_offload: memory savers for small GPUs (cpu_offload needs CUDA).
        kind: ``auto`` (from config and name), or ``sd1``, ``sd2``, ``sdxl``, ``turbo``, ``lcm`` to override.
        lora_dirs: folders where a prompt's ``<lora:NAME:WEIGHT>`` finds ``NAME.safetensors`` (loaded on first use,
            or by ``denoiser.prepare_prompts(texts)`` before the first frame).
        embedding_dirs: folders of textual-inversion files (``.pt`` / ``.safetensors``) whose stems work as words.

    Raises:
        AnimatorError: unknown model, kind or sampler; a file that is not a model; missing download; bad options.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "none")):
        return IdentityDenoiser()
    import torch

    from animator.devices import pick_device, pick_dtype

    if kind not in KINDS:
        raise AnimatorError(f"unknown model kind {kind!r}", field="kind", hint="use one of: " + ", ".join(KINDS))
    if sampler is not None:
        sampler = normalize_sampler_name(sampler)  # fail before minutes of loading
    lora = _check_lora_list(lora)
    device = device if isinstance(device, torch.device) else pick_device(device)
    dtype = dtype if isinstance(dtype, torch.dtype) else pick_dtype(device, dtype)
    if cpu_offload and device.type != "cuda":
        raise AnimatorError(
            "cpu_offload needs a CUDA device",
            field="cpu_offload",
            hint="drop --cpu-offload on the CPU (everything already lives in RAM)",
        )

    source = _resolve_source(spec)
    with _quiet_loading():
        pipe, architecture = _load_pipeline(source, dtype=dtype, kind=kind, model_config=model_config)
        if vae not in (None, "auto"):
            pipe.vae = _load_vae(vae, architecture, dtype)
        flavour = _detect_flavour(source, pipe, kind, lora)
        for index, (path, _) in enumerate(lora):
            _load_lora(pipe, path, f"lora_{index}")
    if lora:
        try:
            pipe.set_adapters([f"lora_{i}" for i in range(len(lora))], adapter_weights=[w for _, w in lora])
        except Exception as exc:  # peft raises ValueError / RuntimeError for adapters that do not fit
            raise AnimatorError(f"could not apply the LoRA weights: {exc}", field="lora") from exc
    _place(pipe, device, dtype, cpu_offload, upcast_vae=architecture == "sdxl")
    if attention_slicing:
        pipe.enable_attention_slicing()
    if vae_tiling:
        pipe.vae.enable_tiling()
    pipe.set_progress_bar_config(disable=True)

    defaults = defaults_for(architecture, flavour)
    if sampler is not None:
        defaults = DenoiseDefaults(
            steps=defaults.steps, guidance=defaults.guidance, strength=defaults.strength, sampler=sampler
        )
    from animator.backends.denoise.diffusers_backend import DiffusersDenoiser

    return DiffusersDenoiser(
        pipe,
        name=f"diffusers:{source['label']}",
        architecture=architecture,
        flavour=flavour,
        defaults=defaults,
        device=device,
        dtype=dtype,
        info={
            "source": source["label"],
            "source_type": source["type"],
            "vae": str(vae),
            "loras": [{"source": str(p), "weight": w} for p, w in lora],
            "attention_slicing": attention_slicing,
            "vae_tiling": vae_tiling,
            "cpu_offload": cpu_offload,
        },
        lora_dirs=lora_dirs,
        embedding_dirs=embedding_dirs,
        fixed_loras=[(f"lora_{i}", w) for i, (_, w) in enumerate(lora)],
    )


# -------------------------------------------------------------------- sources


def _resolve_source(spec: str | os.PathLike) -> dict[str, str]:
    """{'type': folder|file|hub, 'path': ..., 'label': ...}; AnimatorError for things that are none of those."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise AnimatorError(
                f"{text} is a folder but not a diffusers pipeline (no model_index.json)",
                field="model",
                hint="point at the folder that holds model_index.json, unet/, vae/ ..., or at a .safetensors file",
            )
        return {"type": "folder", "path": str(path), "label": text}
    if path.is_file():
        if path.suffix.lower() not in _SINGLE_FILE_SUFFIXES:
            raise AnimatorError(
                f"{text} is not a model checkpoint (expected one of {', '.join(_SINGLE_FILE_SUFFIXES)})", field="model"
            )
        return {"type": "file", "path": str(path), "label": text}
    looks_like_path = (
        text.startswith((".", "/", "~"))
        or os.sep in text.strip("/").replace("/", "", 1)
        or path.suffix.lower() in _SINGLE_FILE_SUFFIXES
    )
    if looks_like_path or not _HUB_ID.match(text):
        raise AnimatorError(
            f"model {text!r} not found: no such file or folder, and not a hub id",
            field="model",
            hint="use a diffusers folder, a .safetensors/.ckpt file, a hub id like "
            "stabilityai/sd-turbo, or 'none' for warp-only",
        )
    return {"type": "hub", "path": text, "label": text}


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


# Pipelines whose components make an SD / SDXL img2img model (a 4-channel UNet, a VAE, CLIP text encoders).
_SD_PIPELINES = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "LatentConsistencyModelPipeline": "sd",
    "LatentConsistencyModelImg2ImgPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
}


def _family_from_index(index: dict, where: str) -> str:
    """``sd`` or ``sdxl`` from a model_index.json; AnimatorError for other pipelines (SD3, Flux, inpainting ...)."""
    class_name = str(index.get("_class_name", ""))
    if class_name in _SD_PIPELINES:
        return _SD_PIPELINES[class_name]
    raise AnimatorError(
        f"{where} holds a {class_name or 'pipeline of unknown class'}; animator runs Stable Diffusion 1.x/2.x and "
        "SDXL img2img models",
        field="model",
        hint="use an SD 1.5, SD 2.1, SDXL, SD-Turbo, SDXL-Turbo or LCM model (inpainting models are not supported)",
    )


def _architecture_from_checkpoint(path: Path) -> str:
    """sd1/sd2/sdxl from a single file's tensor names; AnimatorError if it is not a Stable Diffusion checkpoint."""
    keys = _checkpoint_keys(path)
    if not any(key.startswith("model.diffusion_model.") for key in keys):
        raise AnimatorError(
            f"{path} is not a Stable Diffusion checkpoint (no model.diffusion_model.* weights)",
            field="model",
            hint="a LoRA or VAE file goes in --lora / --vae; a full model checkpoint is several GB",
        )
    if any(key.startswith("conditioner.embedders.1.") for key in keys):
        return "sdxl"
    if any(key.startswith("cond_stage_model.model.") for key in keys):
        return "sd2"  # OpenCLIP text encoder
    return "sd1"


def _checkpoint_keys(path: Path) -> list[str]:
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return list(handle.keys())
        except Exception as exc:  # safetensors raises its own SafetensorError (and OSError on short files)
            raise AnimatorError(
                f"{path} is not a readable .safetensors model: {exc}",
                field="model",
                hint="the download may be incomplete or the file is something else; download it again",
            ) from exc
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle, zip and weights_only errors all mean "not a checkpoint we can read"
        raise AnimatorError(
            f"{path} is not a readable checkpoint: {exc}",
            field="model",
            hint="prefer .safetensors files; a .ckpt must be a plain PyTorch state dict",
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AnimatorError(f"{path} does not hold a state dict", field="model")
    return [str(key) for key in state]


def _pipeline_class(family: str):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    return StableDiffusionXLImg2ImgPipeline if family == "sdxl" else StableDiffusionImg2ImgPipeline


def _load_pipeline(source: dict, *, dtype, kind: str, model_config) -> tuple[Any, str]:
    """(pipeline, architecture); the pipeline is on the CPU in ``dtype``. A hub id in the local cache loads from
    it without the network; one that is not is asked about first (:mod:`animator.backends.hub`)."""
    forced = kind if kind in ("sd1", "sd2", "sdxl") else None

    def load(local_only: bool):
        return _load_pipeline_from(source, dtype=dtype, forced=forced, model_config=model_config, local_only=local_only)

    if source["type"] == "hub":
        return hub.load_by_id(source["path"], "model_index.json", load, what="model", field="model")
    return load(hub.offline())


def _load_pipeline_from(source: dict, *, dtype, forced: str | None, model_config, local_only: bool):
    common = dict(torch_dtype=dtype, local_files_only=local_only)
    try:
        if source["type"] == "file":
            path = Path(source["path"])
            architecture = _architecture_from_checkpoint(path)  # also refuses files that are not models
            config = None
            if model_config is not None:
                config = str(Path(model_config).expanduser())
                if not (Path(config) / "model_index.json").is_file():
                    raise AnimatorError(
                        f"model_config {model_config} is not a diffusers folder (no model_index.json)",
                        field="model_config",
                        hint="the folder of a model of the same architecture",
                    )
            family = "sdxl" if (forced or architecture) == "sdxl" else "sd"
            pipe = _pipeline_class(family).from_single_file(str(path), config=config, **common)
        else:
            from diffusers import DiffusionPipeline

            index = DiffusionPipeline.load_config(source["path"], local_files_only=local_only)
            family = "sdxl" if forced == "sdxl" else _family_from_index(index, source["label"])
            extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
            pipe = _pipeline_class(family).from_pretrained(source["path"], **extra, **common)
    except AnimatorError:
        raise
    except Exception as exc:  # diffusers raises OSError, ValueError, EnvironmentError, KeyError ... for bad models
        raise _load_error(source, exc, local_only, model_config) from exc
    return pipe, _architecture_of(pipe, forced)


def _architecture_of(pipe, forced: str | None) -> str:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    if pipe.unet.config.in_channels != 4:
        raise AnimatorError(
            f"this model's UNet takes {pipe.unet.config.in_channels} input channels (an inpainting or instruct "
            "model); img2img needs a plain text-to-image model with 4",
            field="model",
        )
    if isinstance(pipe, StableDiffusionXLImg2ImgPipeline):
        return "sdxl"
    if isinstance(pipe, StableDiffusionImg2ImgPipeline):
        if forced in ("sd1", "sd2"):
            return forced
        return "sd2" if pipe.unet.config.cross_attention_dim == 1024 else "sd1"
    raise AnimatorError(
        f"{type(pipe).__name__} is not a Stable Diffusion 1.x/2.x or SDXL model",
        field="model",
        hint="use an SD 1.5, SD 2.1, SDXL, SD-Turbo, SDXL-Turbo or LCM model",
    )


def _load_error(source: dict, exc: Exception, offline: bool, model_config) -> AnimatorError:
    label = source["label"]
    if source["type"] == "hub":
        if offline:
            hint = (
                f"download it once with internet: `hf download {label}`, "
                "then run again; or pass a local diffusers folder"
            )
        else:
            hint = "check the id on huggingface.co (gated models need `hf auth login`), or pass a local folder"
        return AnimatorError(
            f"could not load model {label!r} from the Hugging Face hub cache: {exc}", field="model", hint=hint
        )
    if source["type"] == "file" and model_config is None:
        return AnimatorError(
            f"could not load the checkpoint {label}: {exc}",
            field="model",
            hint="offline, a single checkpoint needs its architecture's configs: pass model_config=<a local diffusers "
            "folder of the same kind> (e.g. a downloaded stable-diffusion-v1-5)",
        )
    return AnimatorError(
        f"could not load model {label}: {exc}",
        field="model",
        hint="check that the files are complete and of a Stable Diffusion 1.x/2.x or SDXL model",
    )


def _detect_flavour(source: dict, pipe, kind: str, lora: Sequence[tuple[str, float]]) -> str:
    """turbo / lcm / standard, from ``kind``, the model name, its scheduler, its UNet and LoRA names."""
    if kind in ("turbo", "lcm"):
        return kind
    if kind in ("sd1", "sd2", "sdxl"):
        return "standard"
    names = [source["label"].lower()] + [str(path).lower() for path, _ in lora]
    if any("turbo" in name for name in names):
        return "turbo"
    if (
        pipe.unet.config.get("time_cond_proj_dim") is not None
        or type(pipe.scheduler).__name__ == "LCMScheduler"
        or any("lcm" in name for name in names)
    ):
        return "lcm"
    return "standard"


# -------------------------------------------------------------------- parts


def _load_vae(vae: str | os.PathLike, architecture: str, dtype):
    """An AutoencoderTiny (``tiny`` or a TAESD folder/id) or AutoencoderKL from a hub id or folder."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    spec = _TINY_VAE_IDS[architecture] if str(vae) == "tiny" else os.fspath(vae)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        class_name = _read_json(folder / "config.json").get("_class_name", "")
        if class_name not in ("AutoencoderKL", "AutoencoderTiny"):
            raise AnimatorError(
                f"{spec} is not a VAE folder (config.json class {class_name or 'missing'})",
                field="vae",
                hint="use auto, tiny, or a folder saved from AutoencoderKL/AutoencoderTiny",
            )
    elif not _HUB_ID.match(spec):
        raise AnimatorError(
            f"VAE {spec!r} not found: no such folder, and not a hub id",
            field="vae",
            hint="use auto, tiny, a hub id (madebyollin/taesd) or a local folder",
        )
    else:
        class_name = "AutoencoderTiny" if "taesd" in spec.lower() else "AutoencoderKL"
    vae_class = AutoencoderTiny if class_name == "AutoencoderTiny" else AutoencoderKL

    def load(local_only: bool):
        try:
            return vae_class.from_pretrained(
                str(folder) if folder.is_dir() else spec, torch_dtype=dtype, local_files_only=local_only
            )
        except Exception as exc:
            hint = f"download it with `hf download {spec}`" if not folder.is_dir() else "the folder looks incomplete"
            raise AnimatorError(f"could not load VAE {spec!r}: {exc}", field="vae", hint=hint) from exc

    if folder.is_dir():
        return load(hub.offline())
    return hub.load_by_id(spec, "config.json", load, what="VAE", field="vae")


def _check_lora_list(lora) -> list[tuple[str, float]]:
    checked = []
    for index, item in enumerate(lora or ()):
        try:
            path, weight = item
            weight = float(weight)
        except (TypeError, ValueError):
            raise AnimatorError(f"lora[{index}] must be (path or hub id, weight), got {item!r}", field="lora") from None
        path = os.fspath(path)
        if not Path(path).expanduser().exists() and not _HUB_ID.match(path):
            raise AnimatorError(f"LoRA {path!r} not found: no such file, and not a hub id", field="lora")
        checked.append((path, weight))
    return checked


def _load_lora(pipe, path: str, adapter_name: str) -> None:
    try:
        pipe.load_lora_weights(
            str(Path(path).expanduser()) if Path(path).expanduser().exists() else path, adapter_name=adapter_name
        )
    except Exception as exc:
        if "peft" in str(exc).lower():
            hint = "LoRA loading needs the peft package: pip install peft"
        else:
            hint = "is it a LoRA for this model's architecture (SD 1.x LoRAs do not fit SDXL)?"
        raise AnimatorError(f"could not load LoRA {path!r}: {exc}", field="lora", hint=hint) from exc


def _place(pipe, device, dtype, cpu_offload: bool, *, upcast_vae: bool) -> None:
    """Move to the device; keep a VAE that overflows in fp16 (SDXL's, unless its config says it is fixed) in fp32."""
    import torch

    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    elif device.type != "cpu":  # loading already left everything on the CPU (to() there only logs a warning)
        pipe.to(device)
    if upcast_vae and dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
        with without_cast_warning():
            pipe.vae.to(dtype=torch.float32)


@contextlib.contextmanager
def without_cast_warning():
    """No "There are modules in AutoencoderKL that should be kept in float32: []" from diffusers' ``ModelMixin.to``
    while a model is cast on purpose: diffusers (0.42) logs it for every cast to a dtype, also when it names no
    module, and a cast to float32 is what it would advise anyway."""
    from diffusers.utils import logging as diffusers_logging

    logger = diffusers_logging.get_logger("diffusers.models.modeling_utils")
    level = logger.level
    logger.setLevel(diffusers_logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_loading():
    """No progress bars from diffusers/transformers while loading: library code does not print."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_on = diffusers_logging.is_progress_bar_enabled()
    transformers_on = transformers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            # diffusers >= 0.36 renamed torch_dtype to dtype; we keep torch_dtype so older releases load too.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            # diffusers still passes huggingface_hub an argument the hub has deprecated: nothing a user can change
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*", category=UserWarning)
            yield
    finally:
        if diffusers_on:
            diffusers_logging.enable_progress_bar()
        if transformers_on:
            transformers_logging.enable_progress_bar()
