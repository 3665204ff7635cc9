"""LoRAs named in prompts (``<lora:NAME:WEIGHT>``): loaded once, weighted per frame without reloading or retracing.

Each ``NAME`` is looked up as ``NAME.safetensors`` in ``backends.lora_dirs`` and loaded with diffusers'
``load_lora_weights`` (PEFT) under its own adapter name, active at weight 1. The frame's weight is then applied by
scaling the adapter's ``lora_B`` weights in place (``B = w * B_loaded``): the LoRA's contribution ``B(A(x)) * s`` is
linear in B, so this is exactly weight ``w``, and 0 adds an exact zero (the frame is the one without the LoRA).

Why not ``set_adapters`` every frame: PEFT keeps the weight as a Python float (``scaling[adapter]``) that
``torch.compile`` bakes into the traced graph and guards on, so every new weight would trace the UNet again
(and past the recompile limit fall back to eager). Parameters are graph inputs: changing their values retraces
nothing. The cost is one copy of each adapter's B matrices (a LoRA's rank is small) and, on a change of weight,
an in-place multiply of them.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from animator.errors import AnimatorError
from animator.keyframes.prompt_syntax import LORA_SUFFIXES, bounded, find_network_file

if TYPE_CHECKING:
    import torch

__all__ = ["PromptLoras"]


@contextlib.contextmanager
def _diffusers_quiet():
    """diffusers at ERROR while a LoRA loads: it logs a warning for each model part a LoRA leaves alone ("No LoRA
    keys associated to CLIPTextModel"), which is normal for most LoRAs; whether the LoRA fits is checked here."""
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


class PromptLoras:
    """The prompt LoRAs of one pipeline.

    Args:
        pipe: a diffusers SD / SDXL pipeline (``load_lora_weights``, ``set_adapters``).
        folders: where ``NAME.safetensors`` is looked for (``backends.lora_dirs``), in order.
        fixed: ``(adapter name, weight)`` of LoRAs loaded for the whole run (``backends.lora``): kept active.
    """

    def __init__(self, pipe, folders: Sequence[str | os.PathLike] = (), *, fixed: Sequence[tuple[str, float]] = ()):
        self.pipe = pipe
        self.folders = tuple(Path(folder).expanduser() for folder in folders)
        self.fixed = list(fixed)
        self.files: dict[str, Path] = {}  # name -> file, in load order
        self._adapters: dict[str, str] = {}  # name -> adapter name
        self._b: dict[str, list[tuple[torch.nn.Parameter, torch.Tensor]]] = {}  # adapter -> (B, B as loaded)
        self._text_encoder_adapters: set[str] = set()
        self.weights: dict[str, float] = {}  # name -> weight applied now

    def __len__(self) -> int:
        return len(self._adapters)

    def find(self, name: str) -> Path:
        """The file of LoRA ``name``, or AnimatorError naming the folders searched."""
        path = find_network_file(name, self.folders, LORA_SUFFIXES)
        if path is None:
            searched = ", ".join(str(folder) for folder in self.folders) or "no folder: backends.lora_dirs is empty"
            raise AnimatorError(
                f"LoRA {bounded(name, 80)!r} not found (looked for {bounded(name, 80)}.safetensors in {searched})",
                field="backends.lora_dirs",
                hint="set backends.lora_dirs to the folder that holds it, or fix the name in <lora:NAME:WEIGHT>",
            )
        return path

    def ensure(self, names: Iterable[str]) -> None:
        """Load the LoRAs among ``names`` not loaded yet (each once per run)."""
        for name in names:
            if name not in self._adapters:
                self._load(name, self.find(name))

    def _load(self, name: str, path: Path) -> None:
        import torch

        adapter = f"prompt_lora_{len(self._adapters)}"
        before = {id(p) for p, _ in self._lora_b_parameters(None)}
        try:
            with torch.inference_mode(False), warnings.catch_warnings(), _diffusers_quiet():  # B changes in place later
                # peft warns that a model with one adapter gets another: several adapters is the point here
                warnings.filterwarnings("ignore", message=".*peft_config.*multiple adapters.*")
                self.pipe.load_lora_weights(str(path), adapter_name=adapter)
        except (
            Exception
        ) as exc:  # peft / diffusers raise ValueError, RuntimeError, KeyError for a LoRA that does not fit
            self._drop(adapter)
            hint = (
                "LoRA loading needs the peft package: pip install peft"
                if "peft" in str(exc).lower()
                else "is it a LoRA for this model's architecture? (SD 1.x LoRAs do not fit SDXL, nor SDXL ones SD 1.x)"
            )
            raise AnimatorError(
                f"could not load LoRA {name!r} ({path}): {bounded(str(exc), 300)}", field="prompt", hint=hint
            ) from exc
        found = [(p, module) for p, module in self._lora_b_parameters(adapter) if id(p) not in before]
        if not found:
            self._drop(adapter)
            raise AnimatorError(
                f"LoRA {name!r} ({path}) changes no layer of this model: it is for another architecture",
                field="prompt",
                hint="use a LoRA made for this model's family (SD 1.x, SD 2.x or SDXL)",
            )
        with torch.no_grad():
            self._b[adapter] = [(p, p.detach().clone()) for p, _ in found]
        if any(module in ("text_encoder", "text_encoder_2") for _, module in found):
            self._text_encoder_adapters.add(adapter)
        self._adapters[name] = adapter
        self.files[name] = path
        self.weights[name] = 1.0
        names = [a for a, _ in self.fixed] + list(self._adapters.values())
        weights = [w for _, w in self.fixed] + [1.0] * len(self._adapters)
        try:
            self.pipe.set_adapters(names, adapter_weights=weights)  # once per load: the frame weight is in B
        except Exception as exc:  # peft raises ValueError / RuntimeError for adapters that do not fit
            raise AnimatorError(f"could not activate LoRA {name!r}: {exc}", field="prompt") from exc

    def _drop(self, adapter: str) -> None:
        try:
            self.pipe.delete_adapters(adapter)
        except Exception:  # nothing (or only part) was loaded: there may be nothing to delete
            pass

    def _lora_b_parameters(self, adapter: str | None):
        """(parameter, component name) of every LoRA B weight of ``adapter`` (None: of any adapter)."""
        for component in ("unet", "text_encoder", "text_encoder_2"):
            model = getattr(self.pipe, component, None)
            if model is None:
                continue
            for module in model.modules():
                lora_b = getattr(module, "lora_B", None)
                if not hasattr(lora_b, "items"):
                    continue
                for name, layer in lora_b.items():
                    if adapter is None or name == adapter:
                        yield layer.weight, component

    def apply(self, weights: dict[str, float]) -> None:
        """Set every loaded prompt LoRA to its weight in ``weights`` (0 when absent). Only changed ones are touched."""
        import torch

        for name in weights:
            if name not in self._adapters:
                self.ensure([name])
        with torch.inference_mode(False), torch.no_grad():
            for name, adapter in self._adapters.items():
                weight = float(weights.get(name, 0.0))
                if self.weights.get(name) == weight:
                    continue
                for parameter, loaded in self._b[adapter]:
                    if weight == 1.0:
                        parameter.copy_(loaded)
                    else:
                        parameter.copy_(loaded.to(parameter.dtype) * weight)
                self.weights[name] = weight

    def text_encoder_state(self) -> tuple:
        """The weights of LoRAs that change the text encoders (prompt embeddings depend on them): a cache key."""
        return tuple(
            (name, self.weights[name])
            for name, adapter in self._adapters.items()
            if adapter in self._text_encoder_adapters
        )

    def describe(self) -> dict:
        return {name: str(path) for name, path in self.files.items()}
