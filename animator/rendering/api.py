"""The public entry points: :func:`render` (a keyframe file to a video, with its run folder) and
:func:`render_frames` (frames in memory), and :func:`prepare`, what both do before the first model loads."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from animator.errors import AnimatorError
from animator.events import FrameRendered, MetricProgress, RenderCallback, RenderFinished, RenderStarted
from animator.plan import frame_span, make_plan
from animator.rendering.checks import check_prompt_networks, check_startable
from animator.rendering.context import RunContext
from animator.rendering.loop import Emitted, frame_loop
from animator.rendering.models import load_models, prompt_texts
from animator.rendering.timing import Clock

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig
    from animator.plan import RenderPlan


@dataclass(frozen=True)
class RenderResult:
    output: Path | None
    run_dir: Path | None
    frames: int
    stats: dict[str, Any]


def load(config_or_path, overrides: dict | None = None, base_dir: str | None = None) -> AnimationConfig:
    """A keyframe file path, a dict in the keyframe-file layout or a loaded config, with ``overrides`` applied."""
    from animator.keyframes import config_from_dict, load_config

    if isinstance(config_or_path, (str, os.PathLike)):
        return load_config(config_or_path, overrides=overrides, base_dir=base_dir)
    if isinstance(config_or_path, dict):
        return config_from_dict(config_or_path, source="<dict>", overrides=overrides)
    if overrides:  # a loaded config: re-read its own text with the overrides applied, so they are validated too
        if config_or_path.path is not None:
            return load_config(config_or_path.path, overrides=overrides)
        raise AnimatorError(
            "overrides need a keyframe file path or a dict, not a config built in memory",
            field="overrides",
            hint="pass the dict or the path instead",
        )
    return config_or_path


def prepare(
    config_or_path,
    *,
    overrides: dict | None = None,
    base_seed: int | None = None,
    base_dir: str | None = None,
    resuming: bool = False,
    frames: range | int | None = None,
) -> tuple[AnimationConfig, RenderPlan]:
    """Config and plan for a render (shared by render, render_frames, the notebook preview and benchmarks), after
    checking that it can start. ``base_dir``: the folder relative paths of a keyframe file resolve against
    (default: the file's own); ``resuming``: for a resumed run; ``frames``: the frames to render (as
    :func:`~animator.plan.frame_span` reads it): the schedules, and so the plan, cover frames up to its last only."""
    from animator.keyframes import evaluate

    config = load(config_or_path, overrides, base_dir)
    check_startable(config, resuming=resuming)
    _, stop = frame_span(frames, config.frames)
    plan = make_plan(config, evaluate(config, stop=stop), base_seed=base_seed)
    check_prompt_networks(config, prompt_texts(plan))
    return config, plan


def render_frames(
    config_or_path,
    *,
    overrides: dict | None = None,
    frames: range | int | None = None,
    callbacks: Sequence[RenderCallback] = (),
) -> Iterator[FrameRendered]:
    """Renders in memory and yields a :class:`FrameRendered` event per frame (no video, no run folder).

    The same loop as :func:`render`; the notebook preview and tests use it.
    """
    config, plan = prepare(config_or_path, overrides=overrides, frames=frames)
    start, stop = frame_span(frames, config.frames)  # before minutes of loading models
    ctx = RunContext.start(config, plan, load_models(config, prompt_texts(plan)))
    notify(callbacks, _started(ctx, stop - start, start, run_dir=None))
    clock = Clock(stop - start)
    for emitted in frame_loop(ctx, start=start, stop=stop):
        event = frame_event(emitted, clock, ctx)
        notify(callbacks, event)
        yield event
    notify(callbacks, RenderFinished(output=None, frames=clock.done, elapsed_s=clock.elapsed(), run_dir=None))


def render(
    config_or_path=None,
    output: str | os.PathLike | None = None,
    *,
    overrides: dict | None = None,
    frames: range | int | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[RenderCallback] = (),
    frames_dir: str | os.PathLike | None = None,
    metrics: bool = True,
    profile: bool = False,
) -> RenderResult:
    """Renders a keyframe file to a video. ``animator render`` on the command line calls exactly this.

    Args:
        config_or_path: a keyframe file path, a loaded config, or a dict in the keyframe-file layout (None with
            ``resume``).
        output: the video to write (default: ``output.path`` of the file, else ``<file stem>.mp4``). With
            ``resume``: another place for the video of the resumed run (nothing else may change).
        overrides: dotted keyframe-file fields to replace, e.g. ``{"backends.denoise": "stabilityai/sd-turbo"}``.
        frames: render only this range of frame indices (an int N: the first N frames).
        run_dir: the run folder (default ``runs/<stem>-<time>``).
        resume: a run folder of an interrupted render: continue from its last complete frame.
        callbacks: called with every :mod:`animator.events` event (progress bars, live previews).
        frames_dir: also keep every frame as PNG there.
        metrics: measure flicker and drift of the result into the run folder.
        profile: synchronise CUDA around stages so per-stage timings are exact (slower).
    """
    from animator.run_folder import RunFolder, default_run_dir

    if config_or_path is None and resume is None:
        raise AnimatorError(
            "give a keyframe file (or config) to render, or resume=<run folder>",
            hint='animator.render("keyframes/demo.yaml", "demo.mp4")',
        )
    callbacks = list(callbacks) + _notebook_callbacks(callbacks)
    if resume is not None:
        folder = RunFolder(resume)
        with folder.lock(output=_resumed_output(folder, output)):
            run = _resumed_run(folder, output, profile=profile)
            return _render_run(run, callbacks, metrics=metrics)
    config, plan = prepare(config_or_path, overrides=overrides, frames=frames)
    if config.sections and frames is None:
        raise AnimatorError(
            "the file is split into sections, which render as a batch (in parallel where they can) and are joined",
            file=config.path,
            field="sections",
            hint="use `animator render FILE` (it runs them), or animator.batch([FILE], FOLDER) from Python; "
            "frames=range(A, B) renders a range here as one continuous section",
        )
    start, stop = frame_span(frames, config.frames)
    output = Path(output or config.output.path or f"{Path(config.path or 'render').stem}.mp4")
    _check_output(config, output)
    folder = RunFolder(run_dir or default_run_dir(config.path))
    folder.check_free()
    # the models before the folder is made: a model that cannot load leaves none behind
    ctx = RunContext.start(config, plan, load_models(config, prompt_texts(plan)), profile=profile)
    with folder.lock(output=output):
        frames_dir = frames_dir or config.output.frames_dir
        run = _OpenRun(ctx, folder, output, start, stop, Path(frames_dir) if frames_dir else None, resumed=False)
        _create_run_folder(run, overrides)
        return _render_run(run, callbacks, metrics=metrics)


@dataclass(frozen=True)
class _OpenRun:
    """A render about to make its frames: everything :func:`_render_run` needs."""

    ctx: RunContext
    folder: Any  # animator.run_folder.RunFolder, locked by this process
    output: Path
    start: int
    stop: int
    frames_dir: Path | None  # where every frame is also kept as PNG
    resumed: bool


def _check_output(config: AnimationConfig, output: Path) -> None:
    """Before any frame: a video the encoder can finish, in a folder that can take it, that is none of the inputs."""
    from animator.rendering.checks import check_output_is_not_an_input
    from animator.video import check_output

    check_output(output, config.output.codec, config.output.pix_fmt)
    check_output_is_not_an_input(config, output)


def _resumed_output(folder, output: str | os.PathLike | None) -> Path:
    return Path(output) if output is not None else Path(folder.record()["output"])


def _resumed_run(folder, output: str | os.PathLike | None, *, profile: bool) -> _OpenRun:
    """The run in ``folder``, ready to continue: its own keyframe copy, overrides and seed, checked again."""
    from animator.rendering.resume import check_unchanged, paths_relative_to

    record = folder.record()
    if record.get("status") == "complete":
        raise AnimatorError(f"the run in {folder.path} is already complete: {record['output']}", field="--resume")
    config, plan = prepare(
        folder.keyframes_path(),
        overrides=record.get("overrides"),
        base_seed=record["seed"],
        base_dir=paths_relative_to(record),
        resuming=True,
        frames=range(record["start"], record["stop"]),
    )
    check_unchanged(record, config, folder)
    output = _resumed_output(folder, output)
    _check_output(config, output)
    if str(output.resolve()) != record["output"]:
        folder.update({"output": str(output.resolve())})
    ctx = RunContext.start(config, plan, load_models(config, prompt_texts(plan)), profile=profile)
    frames_dir = record.get("frames_dir")
    return _OpenRun(
        ctx, folder, output, record["start"], record["stop"], Path(frames_dir) if frames_dir else None, resumed=True
    )


def _create_run_folder(run: _OpenRun, overrides: dict | None) -> None:
    """The run record, a copy of the keyframe file, and the per-frame values and seeds."""
    from animator.keyframes import config_digest
    from animator.keyframes.digest import resolved_fields
    from animator.keyframes.prompt_syntax import lora_weights_by_frame
    from animator.rendering.outputs import versions

    config, plan = run.ctx.config, run.ctx.plan
    run.folder.create(
        source_text=config.source_text,
        source_name=str(config.path or "keyframes.yaml"),
        record={
            "source": str(config.path),
            "overrides": overrides or {},
            "output": str(run.output.resolve()),
            "start": run.start,
            "stop": run.stop,
            "seed": int(plan.seeds[0]) if config.seed == -1 else config.seed,
            "frames_dir": str(run.frames_dir) if run.frames_dir else None,
            # the folder the file's relative paths (init image, audio, video) resolve against, for --resume:
            # the run folder holds a copy of the file, somewhere else
            "base_dir": str((Path(config.path).parent if config.path else Path.cwd()).resolve()),
            # what the frames follow from: a resume of an edited run folder is refused, saying what changed
            "config_digest": config_digest(config),
            "settings": resolved_fields(config),
            "versions": versions(),
        },
    )
    # every schedule, and the weight of each LoRA the prompts name, per frame up to the last rendered one
    run.folder.write_table("schedules.csv", plan.schedules.values | lora_weights_by_frame(plan.schedules.prompts))
    run.folder.write_table("seeds.csv", {"seed": plan.seeds})


def _render_run(run: _OpenRun, callbacks: list[RenderCallback], *, metrics: bool) -> RenderResult:
    """The frames of an open run into its video, then the soundtrack, finishing passes, metrics and the record."""
    from animator.rendering.outputs import add_soundtrack, cores_left_for_encoding, finish_video, measure
    from animator.rendering.resume import restore
    from animator.run_folder import JOURNAL_FORMAT
    from animator.video import EncodeSettings, VideoWriter

    ctx, folder, output, start, stop = run.ctx, run.folder, run.output, run.start, run.stop
    config = ctx.config
    folder.update({"backends": ctx.describe()})
    clock = Clock(0)
    stage_totals: dict[str, float] = {}
    if folder.record().get("status") != "finishing":  # else every frame is in the journal already
        # 1. where a resumed render continues from, and the video writer (its lossless journal in the run folder)
        resume_state = restore(folder, ctx) if run.resumed else None
        out = config.output
        writer = VideoWriter(
            output,
            width=config.width,
            height=config.height,
            fps=config.fps,
            settings=EncodeSettings(codec=out.codec, crf=out.crf, preset=out.preset, pix_fmt=out.pix_fmt),
            frames_dir=folder.journal,
            first_index=start,
            frame_format=JOURNAL_FORMAT,
        )
        first = start if resume_state is None else resume_state.index + 1
        notify(callbacks, _started(ctx, stop - first, first, run_dir=folder.path))
        clock = Clock(stop - first)
        # 2. the frames, streamed into the encoder; a checkpoint is saved once its frame is in the journal
        try:
            if resume_state is not None:  # the frames already finished go into the video from the lossless journal
                for index in range(start, resume_state.index + 1):
                    writer.write(folder.journal_frame(index))
            with cores_left_for_encoding(ctx.models):
                for emitted in frame_loop(ctx, start=start, stop=stop, resume_state=resume_state):
                    checkpoint = emitted.checkpoint
                    writer.write(
                        emitted.image, after=(lambda c=checkpoint: folder.save_checkpoint(c)) if checkpoint else None
                    )
                    for stage, ms in emitted.timings_ms.items():
                        stage_totals[stage] = stage_totals.get(stage, 0.0) + ms
                    notify(callbacks, frame_event(emitted, clock, ctx))
            writer.close()
        except BaseException:
            writer.abort()
            folder.update({"status": "interrupted"})
            raise
        add_soundtrack(config, output, start)

    # 3. finishing passes (interpolation, upscaling) from the lossless frames, resumable on their own
    try:
        finish_video(ctx, folder, output, lambda event: notify(callbacks, event))
    except BaseException:
        folder.update({"status": "finishing"})
        raise

    # 4. metrics and the run record
    stats: dict[str, Any] = {
        "frames": clock.done,
        "elapsed_s": clock.elapsed(),
        "fps": clock.done / max(clock.elapsed(), 1e-9),
        "ms_per_frame_by_stage": {k: v / max(clock.done, 1) for k, v in stage_totals.items()},
    }
    if metrics:
        stats |= measure(folder, lambda metric, done, total: notify(callbacks, MetricProgress(metric, done, total)))
    folder.finish(keep_frames_in=run.frames_dir, stats=stats)
    result = RenderResult(output=output, run_dir=folder.path, frames=clock.done, stats=stats)
    numbers = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
    notify(
        callbacks,
        RenderFinished(output=output, frames=clock.done, elapsed_s=clock.elapsed(), run_dir=folder.path, stats=numbers),
    )
    return result


def _started(ctx: RunContext, total: int, first: int, *, run_dir: Path | None) -> RenderStarted:
    config = ctx.config
    return RenderStarted(
        total_frames=total,
        first_frame=first,
        width=config.width,
        height=config.height,
        fps=config.fps,
        run_dir=run_dir,
        notes=ctx.models.notes,
    )


def frame_event(emitted: Emitted, clock: Clock, ctx: RunContext) -> FrameRendered:
    elapsed, fps, eta = clock.tick()
    return FrameRendered(
        index=emitted.index,
        total_frames=ctx.config.frames,
        image=emitted.image,
        diffused=emitted.anchor and ctx.models.diffuses,
        anchor=emitted.anchor,
        seed=emitted.seed,
        elapsed_s=elapsed,
        fps=fps,
        eta_s=eta,
        timings_ms=emitted.timings_ms,
    )


def notify(callbacks: Sequence[RenderCallback], event) -> None:
    for callback in callbacks:
        callback(event)


def _notebook_callbacks(given: Sequence[RenderCallback]) -> list[RenderCallback]:
    """Inside Jupyter every render gets a live view, unless the caller already passed one. Attached here, by the
    public entry point: the loop itself knows no user interface."""
    try:
        from animator.notebook import LiveView, in_notebook
    except ImportError:
        return []
    if in_notebook() and not any(isinstance(c, LiveView) for c in given):
        return [LiveView()]
    return []
