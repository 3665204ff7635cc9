"""The per-run context every step of the loop takes: what is fixed for the run, plus the run state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from animator.rendering.models import Models, uses_latent_feedback
from animator.rendering.run_state import RunState
from animator.rendering.timing import StageTimer

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig
    from animator.plan import RenderPlan


@dataclass(frozen=True)
class RunContext:
    config: AnimationConfig  # the keyframe file, validated
    plan: RenderPlan  # every frame's values, seeds, anchors and camera path, computed before the first frame
    models: Models  # loaded once
    run: RunState  # colour references and depth tracker: the only things that change besides the frames
    timer: StageTimer  # milliseconds per stage of the current frame
    latent_feedback: bool  # anchors start from the previous anchor's latents instead of its pixels
    compile_mode: str | None  # torch.compile mode of the loop's own tensor code (warps, colour), None for eager

    @classmethod
    def start(cls, config: AnimationConfig, plan: RenderPlan, models: Models, *, profile: bool = False) -> RunContext:
        from animator.backends.speed import torch_compile_mode

        latent = uses_latent_feedback(config, models)
        return cls(
            config=config,
            plan=plan,
            models=models,
            run=RunState.start(config, models, latent_feedback=latent),
            timer=StageTimer(models.device, sync=profile),
            latent_feedback=latent,
            compile_mode=torch_compile_mode(config.backends.compile, models.device),
        )

    @property
    def device(self):
        return self.models.device

    def describe(self) -> dict[str, object]:
        """The models for the run record, and what anchors start from."""
        described = self.models.describe()
        if self.models.diffuses:
            described["feedback"] = "latent" if self.latent_feedback else "image"
        return described
