"""MiDaS/DPT and Depth Anything through transformers, with preprocessing done on tensors (no PIL round trip).

Both families return relative inverse depth (disparity). What differs is the input they need:

- plain-ViT DPT (Intel/dpt-large, MiDaS .pt files) only takes the square size it was trained at (its position
  embedding is not interpolated for other shapes): the frame is resized to ``size x size`` and the prediction
  resized back to the frame's shape, as transformers' own ``DPTImageProcessor`` does (the hybrid, BEiT and Swin
  DPTs are run square too, at the size their preprocessor config names);
- Depth Anything (DINOv2 backbone) takes any shape whose sides are multiples of 14: the short side is resized to
  ``size`` (518 by default) keeping the aspect ratio, both sides rounded to multiples of 14.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from animator.backends.depth.offline import check_depth_input
from animator.errors import AnimatorError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Model types we run. Their ``predicted_depth`` is relative disparity, except Depth Anything's metric fine-tunes
# (``depth_estimation_type == "metric"``), whose z in metres is inverted to disparity here.
SUPPORTED_MODEL_TYPES = ("dpt", "depth_anything")


@dataclass(frozen=True)
class Preprocess:
    """How a frame becomes the model's ``pixel_values``."""

    size: int  # square side (square=True) or short side (square=False), in pixels
    square: bool  # plain-ViT DPT: exactly size x size
    multiple_of: int = 1  # both sides rounded to a multiple of this (14 for DINOv2 patches)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """Model input ``(h, w)`` for a frame of ``height x width``."""
        if self.square:
            side = self._round(self.size)
            return side, side
        scale = self.size / min(height, width)
        return (self._round(height * scale), self._round(width * scale))

    def _round(self, length: float) -> int:
        m = self.multiple_of
        return max(m, int(round(length / m)) * m)


def preprocess_for(config, folder_config: dict | None, resolution: int | None) -> Preprocess:
    """Preprocessing for a model: its ``preprocessor_config.json`` when there is one, else the family's defaults."""
    model_type = getattr(config, "model_type", "")
    if model_type == "depth_anything":
        spec = Preprocess(size=518, square=False, multiple_of=14, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    else:
        spec = Preprocess(size=int(getattr(config, "image_size", 384)), square=True)
    if folder_config:
        size = folder_config.get("size", {})
        side = size.get("height") or size.get("shortest_edge") if isinstance(size, dict) else size
        mean, std = folder_config.get("image_mean"), folder_config.get("image_std")
        spec = replace(
            spec,
            size=int(side or spec.size),
            mean=tuple(mean) if mean else spec.mean,
            std=tuple(std) if std else spec.std,
            multiple_of=int(folder_config.get("ensure_multiple_of") or spec.multiple_of),
        )
    plain_vit = model_type == "dpt" and not getattr(config, "backbone_config", None)
    if plain_vit:
        # Trained at config.image_size, whatever a preprocessor file says; at another size transformers
        # interpolates the position embedding, which needs whole patches.
        spec = replace(spec, size=int(config.image_size), multiple_of=int(config.patch_size))
    if resolution is not None:
        if resolution < max(14, spec.multiple_of):
            raise AnimatorError(
                f"resolution must be at least {max(14, spec.multiple_of)} pixels, got {resolution}", field="resolution"
            )
        spec = replace(spec, size=int(resolution))
    return spec


class TransformersDepthEstimator:
    """A transformers depth model (DPT/MiDaS, Depth Anything) behind the :class:`DepthEstimator` protocol.

    Build it with :func:`animator.backends.depth.load_depth_estimator`; this class only runs an already loaded model.

    Args:
        model: a ``*ForDepthEstimation`` module in eval mode, already on ``device`` in ``dtype``.
        name: what the user asked for (hub id, folder or file), for messages and run records.
        preprocess: how frames become ``pixel_values``.
        output_is_depth: True when the model predicts metric z (inverted here to disparity).
        batch_size: frames per forward pass.
    """

    def __init__(
        self,
        model,
        *,
        name: str,
        source: str,
        preprocess: Preprocess,
        output_is_depth: bool = False,
        batch_size: int = 4,
    ) -> None:

        self.model = model
        self.name = name
        self.source = source
        self.preprocess = preprocess
        self.output_is_depth = output_is_depth
        self.batch_size = max(1, int(batch_size))
        first = next(model.parameters())
        self.device: torch.device = first.device
        self.dtype: torch.dtype = first.dtype

    def describe(self) -> dict:
        import torch
        import transformers

        return {
            "name": self.name,
            "class": type(self.model).__name__,
            "source": self.source,
            "model_type": self.model.config.model_type,
            "device": str(self.device),
            "dtype": str(self.dtype),
            "input": {
                "size": self.preprocess.size,
                "square": self.preprocess.square,
                "multiple_of": self.preprocess.multiple_of,
            },
            "library versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }

    def prime(self) -> None:
        """One forward pass on a blank frame, to be run before the model is compiled.

        transformers installs its output-capturing hooks on a model's first call, under a lock torch.compile cannot
        trace: a model compiled before that call is split in two graphs, with that Python between them, on every
        call after (with CUDA graphs: two replays and a gap). Called once hooks exist, it compiles as one graph."""
        import torch

        side = self.preprocess.size
        self(torch.zeros(1, 3, side, side, device=self.device))

    def __call__(self, image: Tensor) -> Tensor:
        """``# Bx3xHxW`` RGB in [0, 1] (any device) -> ``# Bx1xHxW`` float32 disparity on the same device."""
        import torch

        check_depth_input(image)
        height, width = image.shape[-2:]
        outputs = [self._run_batch(chunk, height, width) for chunk in image.split(self.batch_size)]
        return torch.cat(outputs).to(image.device)

    def _run_batch(self, image: Tensor, height: int, width: int) -> Tensor:
        import torch
        import torch.nn.functional as F

        pixel_values = self._pixel_values(image)
        with torch.inference_mode():
            predicted = self.model(pixel_values=pixel_values).predicted_depth  # B x h x w
        predicted = predicted.float().unsqueeze(1)
        if self.output_is_depth:
            predicted = 1.0 / predicted.clamp_min(1e-6)
        return F.interpolate(predicted, size=(height, width), mode="bilinear", align_corners=False)

    def _pixel_values(self, image: Tensor) -> Tensor:
        import torch
        import torch.nn.functional as F

        image = image.to(self.device, torch.float32).clamp(0.0, 1.0)
        target = self.preprocess.target_size(*image.shape[-2:])
        if tuple(image.shape[-2:]) != target:
            # antialias matters when shrinking video frames (aliasing reads as texture to the model)
            image = F.interpolate(image, size=target, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        from animator.devices import upload

        # uploaded from pinned memory: a plain copy to a GPU would wait for everything queued before it
        mean, std = (
            upload(torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1), image.device)
            for values in (self.preprocess.mean, self.preprocess.std)
        )
        pixel_values = ((image - mean) / std).to(self.dtype)
        if self.device.type == "cuda":
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        return pixel_values


def read_preprocessor_config(location: str | Path, *, is_folder: bool, download: bool = False) -> dict | None:
    """``preprocessor_config.json`` from a folder or the local Hugging Face cache, or None.

    ``download``: for a hub id whose weights are being downloaded now, fetch the file too (``from_pretrained`` of the
    model fetches only ``config.json`` and the weights; without this a model first loaded by a render would run with
    its family's defaults). A repository without the file, or a failed download, gives None: the defaults then.
    """
    if is_folder:
        path = Path(location) / "preprocessor_config.json"
    else:
        try:
            import huggingface_hub

            if download:
                cached = huggingface_hub.hf_hub_download(str(location), "preprocessor_config.json")
            else:
                cached = huggingface_hub.try_to_load_from_cache(str(location), "preprocessor_config.json")
        except Exception:  # not in the repository, no network, an odd cache layout: loading goes on with defaults
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def load_pretrained_model(location: str | Path, *, is_folder: bool, local_files_only: bool = False):
    """``AutoModelForDepthEstimation.from_pretrained`` with every failure turned into an :class:`AnimatorError`
    (``local_files_only``: a hub id from the local cache only, no network)."""
    from transformers import AutoConfig, AutoModelForDepthEstimation
    from transformers.utils import logging as hf_logging

    where = str(location)
    download_hint = (
        f"download it once with `hf download {where}`; it is stored in ~/.cache/huggingface/hub and then works offline"
    )
    try:
        if local_files_only and not is_folder:
            # the cached snapshot as a folder: given a hub id, transformers (with peft installed) still asks the hub
            # for an adapter_config.json, even with local_files_only (30 s of retries without a network)
            from huggingface_hub import snapshot_download

            where = snapshot_download(where, local_files_only=True)
        config = AutoConfig.from_pretrained(where, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        if is_folder:
            raise AnimatorError(
                f"not a model folder: no readable config.json ({_first_line(exc)})",
                file=where,
                hint="expected a folder written by save_pretrained (config.json + model.safetensors)",
            ) from exc
        raise AnimatorError(
            f"depth model {where!r} is not a folder here, not in the local Hugging Face cache, and cannot be "
            f"downloaded ({_first_line(exc)})",
            field="depth",
            hint=download_hint,
        ) from exc
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise AnimatorError(
            f"model type {config.model_type!r} is not a supported depth model",
            file=where if is_folder else None,
            field=None if is_folder else "depth",
            hint="supported: MiDaS/DPT (Intel/dpt-large, Intel/dpt-hybrid-midas, Intel/dpt-beit-large-512) and "
            "Depth Anything (depth-anything/Depth-Anything-V2-Small-hf)",
        )
    progress_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # loading is part of a run: no stray progress bars
    try:
        model = AutoModelForDepthEstimation.from_pretrained(where, config=config, local_files_only=local_files_only)
    except Exception as exc:  # OSError, safetensors errors, RuntimeError on shape mismatch ...
        raise AnimatorError(
            f"cannot load the weights of depth model {where!r} ({type(exc).__name__}: {_first_line(exc)})",
            file=where if is_folder else None,
            hint="the weight file is missing or damaged: " + ("save the model again" if is_folder else download_hint),
        ) from exc
    finally:
        if progress_was_enabled:
            hf_logging.enable_progress_bar()
    return model.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:240] if text else type(exc).__name__


def output_is_metric_depth(config) -> bool:
    """Depth Anything's metric fine-tunes predict z in metres instead of disparity."""
    return getattr(config, "depth_estimation_type", "relative") == "metric"
