"""Resuming a stopped render from its run folder: the checkpointed anchor and run state, and where its keyframe file's
relative paths point."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from animator.errors import AnimatorError
from animator.rendering.inputs import InputVideo
from animator.rendering.state import FrameState
from animator.rendering.tensors import to_tensor

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig
    from animator.rendering.context import RunContext
    from animator.run_folder import RunFolder


def paths_relative_to(record: dict) -> str | None:
    """The folder a resumed run's keyframe file resolves relative paths against: recorded at the start (run folders
    without it: the original file's folder)."""
    if record.get("base_dir"):
        return record["base_dir"]
    source = record.get("source")
    return str(Path(source).resolve().parent) if source and source != "None" else None


def check_unchanged(record: dict, config: AnimationConfig, folder: RunFolder) -> None:
    """Refuses to resume a run whose keyframe file (the run folder's copy) was edited since the run started: the
    frames after the checkpoint would follow other values than the frames before it, and the recorded schedules
    would no longer say how the video was made."""
    from animator.keyframes.digest import config_digest, describe_field_changes, resolved_fields

    if record.get("config_digest") in (None, config_digest(config)):
        return
    changes = describe_field_changes(record.get("settings", {}), resolved_fields(config))
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    next_frame = record["start"] + folder.journal_frame_count()
    raise AnimatorError(
        f"the run's keyframe file changed since the run started ({shown or 'its resolved settings differ'}): "
        "the rest of the frames would follow other values than the frames already made",
        file=folder.keyframes_path(),
        field="--resume",
        hint=f"undo the edit to resume, or start a new run from frame {next_frame} on with the edited file: "
        f"animator render {folder.keyframes_path()} --frames {next_frame}: -o <new video>",
    )


def restore(folder: RunFolder, ctx: RunContext) -> FrameState | None:
    """The anchor the run folder's checkpoint holds, with the run state as it was (None: no checkpoint yet, the
    render starts again from its first frame)."""
    checkpoint = folder.load_checkpoint()
    if checkpoint is None:
        return None
    config, device = ctx.config, ctx.device
    state = FrameState.from_checkpoint(checkpoint, device)
    if ctx.latent_feedback and state.latents is None:
        raise AnimatorError(
            f"the checkpoint in {folder.path} holds no latents: it was not rendered with latent feedback",
            field="generation.feedback",
            hint="resume with the settings the run was started with",
        )
    ctx.run.restore(checkpoint, device)
    if config.mode == "video":
        state.input_frame = InputVideo.of_video_input(config, device).frame(state.index)
    if config.hybrid is not None:
        state.hybrid_frame = InputVideo.of_hybrid(config, device).frame(state.index)
    start = folder.record()["start"]
    first = FrameState(index=start, image=to_tensor(folder.journal_frame(start), device))
    ctx.run.take_first_frame_as_reference(first, config)
    return state
