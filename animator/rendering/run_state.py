"""What changes during a run besides the frames: the colour references and the depth tracker. Held apart from the
models, which stay as they were loaded; saved in the checkpoint and restored on resume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from animator.backends.depth import DepthTracker
    from animator.color import ColorReference
    from animator.keyframes import AnimationConfig
    from animator.latents import LatentStatistics
    from animator.rendering.models import Models
    from animator.rendering.state import FrameState


@dataclass
class RunState:
    color_reference: ColorReference | None = None  # set from coherence.image, or from the first frame
    latent_reference: LatentStatistics | None = None  # latent feedback's colour reference (latent statistics)
    tracker: DepthTracker | None = None  # keeps depth scale and shift steady from frame to frame (3D mode)

    @classmethod
    def start(cls, config: AnimationConfig, models: Models, *, latent_feedback: bool) -> RunState:
        """A new run's state: the depth tracker (3D), and the colour reference when it is an image."""
        run = cls()
        if config.mode == "3d":
            from animator.backends.depth import DepthTracker
            from animator.backends.speed import torch_compile_mode

            run.tracker = DepthTracker(
                near=200.0,
                far=10000.0,
                mode=config.coherence.depth_stability,
                compile_mode=torch_compile_mode(config.backends.compile, models.device),
            )
        coherence = config.coherence
        if coherence.color != "none" and coherence.reference == "image":
            from animator.rendering.tensors import load_image_tensor

            reference = load_image_tensor(coherence.image, config.width, config.height, models.device)
            run.color_reference = color_reference(reference, coherence.color)
            if latent_feedback:
                from animator.latents import LatentStatistics

                run.latent_reference = LatentStatistics.of(models.denoiser.encode(reference))
        return run

    def take_first_frame_as_reference(self, state: FrameState, config: AnimationConfig) -> None:
        """With ``coherence.reference: first``, every frame's colours are matched to the render's first frame (its
        latents' statistics, with latent feedback)."""
        if config.coherence.reference != "first" or config.coherence.color == "none":
            return
        if self.color_reference is None:
            self.color_reference = color_reference(state.image, config.coherence.color)
        if self.latent_reference is None and state.latents is not None:
            from animator.latents import LatentStatistics

            self.latent_reference = LatentStatistics.of(state.latents)

    def add_to_checkpoint(self, checkpoint: dict[str, Any], state: FrameState) -> None:
        """The tracker as it was right after ``state`` (the next frame is made already) and the latent reference."""
        if self.tracker is not None:
            checkpoint["tracker"] = self.tracker.state_dict(state.tracker)
        if self.latent_reference is not None:
            reference = self.latent_reference
            checkpoint["latent_reference"] = {"mean": reference.mean.cpu(), "std": reference.std.cpu()}

    def restore(self, checkpoint: dict[str, Any], device: torch.device) -> None:
        if self.tracker is not None and checkpoint.get("tracker") is not None:
            self.tracker.load_state_dict(checkpoint["tracker"])
        if checkpoint.get("latent_reference") is not None:
            from animator.latents import LatentStatistics

            self.latent_reference = LatentStatistics(**checkpoint["latent_reference"]).to(device)


def color_reference(image: torch.Tensor, space: str) -> ColorReference:
    from animator.color import ColorReference

    return ColorReference(image, space=space)
