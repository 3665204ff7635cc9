"""``load_controlnet``: from a model spec (hub id, diffusers folder, single file) to a checked ControlNet.

A ControlNet is a copy of its base model's UNet encoder: it only works with the architecture it was trained on. So
every loaded ControlNet is checked against the denoiser's UNet before the first frame (cross-attention width,
SDXL's pooled-text conditioning, block widths and depth, the things that decide its residuals' shapes), and an SD
1.5 ControlNet given to an SDXL model is a clear error instead of a shape error deep inside the first UNet call.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from animator.backends import hub
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch

__all__ = ["load_controlnet", "architecture_of", "check_fits", "union_type_index", "UNION_TYPES"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")
_CLASSES = ("ControlNetModel", "ControlNetUnionModel")

# Control types of SDXL ControlNet-Union (xinsir/controlnet-union-sdxl-1.0, its ProMax version): the index of the
# control-type token each type of control image was trained with. Several kinds of image share one token.
UNION_TYPES = {
    "openpose": 0,
    "depth": 1,
    "softedge": 2,  # HED, PiDiNet, scribble
    "canny": 3,
    "lineart": 3,  # canny, lineart, anime lineart and MLSD share one token
    "normal": 4,
    "segment": 5,
    "tile": 6,
    "inpaint": 7,  # ProMax only (8 control types)
}


def union_type_index(control_type: str, num_control_type: int, *, field: str) -> int:
    """The control-type token of ``control_type`` for a Union model with ``num_control_type`` tokens."""
    if control_type not in UNION_TYPES:
        raise AnimatorError(
            f"unknown ControlNet-Union control type {control_type!r}",
            field=field,
            hint="use one of: " + ", ".join(UNION_TYPES),
        )
    index = UNION_TYPES[control_type]
    if index >= num_control_type:
        raise AnimatorError(
            f"control type {control_type!r} needs a ControlNet-Union with at least {index + 1} control types; this one "
            f"has {num_control_type}",
            field=field,
            hint="inpaint is a control type of the ProMax model (controlnet-union-sdxl-1.0 promax)",
        )
    return index


def architecture_of(config) -> str:
    """``sd1``, ``sd2``, ``sdxl`` or ``cross-attention N`` for a UNet's or ControlNet's config (for messages)."""
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    width = config.get("cross_attention_dim")
    return {768: "sd1", 1024: "sd2"}.get(width, f"cross-attention {width}")


_NAMES = {"sd1": "an SD 1.x", "sd2": "an SD 2.x", "sdxl": "an SDXL"}


def check_fits(controlnet_config, unet_config, *, label: str, field: str) -> None:
    """Raise AnimatorError unless a ControlNet's residuals fit the UNet: same text conditioning (cross-attention
    width, SDXL's pooled text), same block widths and layers per block (the residuals' channels and count)."""
    keys = ("cross_attention_dim", "addition_embed_type", "block_out_channels", "layers_per_block")
    mismatched = [key for key in keys if _norm(controlnet_config.get(key)) != _norm(unet_config.get(key))]
    if not mismatched:
        return
    ours, theirs = architecture_of(controlnet_config), architecture_of(unet_config)
    if ours != theirs:
        message = (
            f"ControlNet {label} is {_NAMES.get(ours, ours)} ControlNet; the model is {_NAMES.get(theirs, theirs)}"
        )
    else:
        details = ", ".join(f"{key} {controlnet_config.get(key)} vs {unet_config.get(key)}" for key in mismatched)
        message = f"ControlNet {label} does not fit the model's UNet ({details})"
    raise AnimatorError(
        message,
        field=field,
        hint="a ControlNet works only with the base model it was trained for: use an SD 1.5 ControlNet with SD 1.5 "
        "models (and their fine-tunes), an SDXL one with SDXL",
    )


def _norm(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def load_controlnet(
    spec: str | os.PathLike,
    *,
    config: str | os.PathLike | None = None,
    device: torch.device,
    dtype: torch.dtype,
    field: str = "controlnet.model",
) -> tuple[Any, dict[str, str]]:
    """Load a ``ControlNetModel`` or ``ControlNetUnionModel`` onto ``device`` in ``dtype``, in eval mode.

    Args:
        spec: a hub id in the local Hugging Face cache, a diffusers folder (``config.json`` +
            ``diffusion_pytorch_model.safetensors``), or a single ``.safetensors`` / ``.pth`` file (original
            layout as Automatic1111 users have it, or diffusers layout).
        config: for a single file: a local folder with the ControlNet's ``config.json`` (offline, nothing else
            says which architecture a file holds); a hub id of one works when it is in the cache.
        field: the keyframe field to name in errors (``controlnet.0.model``).

    Returns:
        (model, facts for the run record: source, source type, class).
    """
    from animator.backends.denoise.loading import _quiet_loading, without_cast_warning

    with _quiet_loading():
        kind, model = _load(os.fspath(spec), config, dtype, field)
    with without_cast_warning():  # a cast on purpose (diffusers logs it for every cast, naming no module)
        model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return model, {"source": os.fspath(spec), "source_type": kind, "class": type(model).__name__}


def _load(text: str, config, dtype, field: str):
    path = Path(text).expanduser()
    if path.is_dir():
        kind, model = "folder", _load_folder(path, dtype, field)
    elif path.is_file():
        if path.suffix.lower() not in _SINGLE_FILE_SUFFIXES:
            raise AnimatorError(
                f"{text} is not a ControlNet file (expected one of {', '.join(_SINGLE_FILE_SUFFIXES)})", field=field
            )
        kind, model = "file", _load_file(path, config, dtype, field)
    elif _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        kind, model = "hub", _load_hub(text, dtype, field)
    else:
        raise AnimatorError(
            f"ControlNet {text!r} not found: no such file or folder, and not a hub id",
            field=field,
            hint="a diffusers folder, a .safetensors file (with `config:` a folder holding its config.json), or a "
            "hub id such as lllyasviel/control_v11f1p_sd15_depth (downloaded once with `hf download <id>`); a path "
            "is relative to the keyframe file",
        )
    return kind, model


def _model_class(class_name: str, where: str, field: str):
    from diffusers import ControlNetModel, ControlNetUnionModel

    if class_name not in _CLASSES:
        raise AnimatorError(
            f"{where} holds a {class_name or 'model of unknown class'}, not a ControlNet",
            field=field,
            hint="animator runs ControlNetModel (SD 1.x/2.x, SDXL) and ControlNetUnionModel (SDXL) ControlNets",
        )
    return ControlNetUnionModel if class_name == "ControlNetUnionModel" else ControlNetModel


def _class_in(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError):
        return ""


def _load_folder(folder: Path, dtype, field: str):
    if not (folder / "config.json").is_file():
        raise AnimatorError(
            f"{folder} is a folder but not a diffusers ControlNet (no config.json)",
            field=field,
            hint="point at the folder holding config.json and diffusion_pytorch_model.safetensors, or at one file",
        )
    model_class = _model_class(_class_in(folder), str(folder), field)
    try:
        return model_class.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    except Exception as exc:  # diffusers raises OSError, ValueError, KeyError ... for incomplete folders
        raise AnimatorError(
            f"could not load ControlNet {folder}: {exc}", field=field, hint="the folder looks incomplete"
        ) from exc


def _load_file(path: Path, config, dtype, field: str):
    config_field = field.rsplit(".", 1)[0] + ".config"
    if config is None:
        raise AnimatorError(
            f"the single-file ControlNet {path} needs `config:`, a folder with its config.json",
            field=config_field,
            hint="offline nothing else says which architecture a file holds: download the matching diffusers "
            "ControlNet's config.json (e.g. from lllyasviel/control_v11f1p_sd15_depth) into a folder",
        )
    folder = Path(config).expanduser()
    if not (folder / "config.json").is_file():
        raise AnimatorError(
            f"ControlNet config {config} is not a folder holding config.json", field=config_field, hint=None
        )
    model_class = _model_class(_class_in(folder), str(folder), config_field)
    try:
        return model_class.from_single_file(str(path), config=str(folder), torch_dtype=dtype, local_files_only=True)
    except Exception as exc:
        raise AnimatorError(
            f"could not load the ControlNet file {path} with the config in {folder}: {exc}",
            field=field,
            hint="is `config:` the config of the same ControlNet (SD 1.5 vs SDXL, full vs small)?",
        ) from exc


def _load_hub(repo_id: str, dtype, field: str):
    def load(local_only: bool):
        from diffusers import ControlNetModel

        try:
            found = ControlNetModel.load_config(repo_id, local_files_only=local_only)
            model_class = _model_class(str(found.get("_class_name", "")), repo_id, field)
            return model_class.from_pretrained(repo_id, torch_dtype=dtype, local_files_only=local_only)
        except AnimatorError:
            raise
        except Exception as exc:
            hint = (
                f"download it once with internet: `hf download {repo_id}`, or give a local folder"
                if local_only
                else "check the id on huggingface.co, or give a local folder"
            )
            raise AnimatorError(f"could not load ControlNet {repo_id!r}: {exc}", field=field, hint=hint) from exc

    return hub.load_by_id(repo_id, "config.json", load, what="ControlNet", field=field)
