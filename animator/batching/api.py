"""``animator.batch(...)`` and ``animator.sweep(...)``: many renders as one queue on Ray, with a summary.

    rows = animator.batch(["a.yaml", "b.yaml"], "out/")                       # out/a.mp4, out/b.mp4, out/summary.csv
    rows = animator.sweep("a.yaml", {"seed": [1, 2], "generation.strength": [0.5, 0.6]}, "sweep/")  # 4 jobs
    rows = animator.batch("long.yaml", "out/")         # a file with sections: its sections in parallel, then joined

Each returns the summary rows (dicts with the columns of ``summary.csv``). Running the same call again skips the
finished jobs and resumes the unfinished ones.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from animator.batching.jobs import Job, batch_jobs, sweep_jobs
from animator.batching.runner import DONE, FAILED, SKIPPED, JobResult, finished_result, job_state
from animator.batching.sections import Chain, join_sections, section_chains
from animator.batching.summary import summary_row, write_summary
from animator.errors import AnimatorError

SUMMARY = "summary.csv"
CONTACT = "contact.png"


def batch(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    overrides: Mapping[str, Any] | None = None,
    address: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Renders every keyframe file as one job of a batch into ``output_dir`` and returns the summary rows.

    Args:
        files: keyframe files (a file with ``sections:`` becomes a job per chain of sections, joined at the end).
        output_dir: the batch folder: ``<job>.mp4``, ``<job>/run/``, ``summary.csv``.
        overrides: dotted keyframe fields for every job (``{"backends.device": "cpu"}``).
        address: a Ray cluster (``auto``, ``ray://HOST:10001``); None starts a local Ray (or uses the one this
            process already started with ``ray.init``).
        jobs: jobs at once on the CPU (default: one per core; one at a time with a diffusion model); GPU jobs
            run one per GPU.
        progress: show the progress bars (widgets in a notebook).
    """
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    return run_jobs(batch_jobs(paths, overrides), output_dir, address=address, jobs=jobs, progress=progress)


def sweep(
    file: str | os.PathLike,
    values: Mapping[str, Any],
    output_dir: str | os.PathLike,
    *,
    address: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
    contact: bool = True,
) -> list[dict[str, Any]]:
    """Renders the cross product of ``values`` (dotted field -> list of values; a single value is a plain override
    of every job) over one keyframe file, writes ``contact.png`` (a row per job) and returns the summary rows. The
    other arguments are :func:`batch`'s."""
    sets = {key: list(v) if isinstance(v, (list, tuple)) else [v] for key, v in values.items()}
    job_list = sweep_jobs(file, sets)
    rows = run_jobs(job_list, output_dir, address=address, jobs=jobs, progress=progress)
    if contact:
        from animator.batching.contact import contact_sheet, label_text

        by_name = {row["job"]: row for row in rows}
        sheet = [
            (
                label_text(job.label, job.name),
                Path(by_name[job.name]["output"]) if by_name[job.name]["output"] else None,
            )
            for job in job_list
        ]
        contact_sheet(sheet, Path(output_dir) / CONTACT)
    return rows


def sections_folder(file: str | os.PathLike, overrides: Mapping[str, Any] | None, run_dir=None) -> Path | None:
    """The batch folder of ``animator render`` for a file with ``sections:`` (``run_dir``, else a fixed
    ``runs/<stem>-sections``, so the same command again skips or resumes its sections); None without sections."""
    from animator.keyframes import load_config

    config = load_config(file, overrides=overrides or None)
    if not getattr(config, "sections", ()):
        return None
    return Path(run_dir) if run_dir else Path("runs") / f"{Path(file).stem}-sections"


def render_sections(
    file: str | os.PathLike,
    output: str | os.PathLike | None,
    *,
    folder: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    address: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """A file with ``sections:`` rendered as a batch in ``folder`` (chains in parallel, then joined), the joined
    video copied to ``output`` (default: ``output.path`` of the file, else ``<stem>.mp4``); the summary rows."""
    import shutil

    from animator.keyframes import load_config

    rows = run_jobs(batch_jobs([file], overrides), folder, address=address, jobs=jobs, progress=progress)
    joined = rows[-1]
    if joined["status"] != FAILED:
        config = load_config(file, overrides=overrides or None)
        target = Path(output or config.output.path or f"{Path(file).stem}.mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(joined["output"], target)
        joined["output"] = str(target)
    return rows


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class _Planned:
    """A job of the user's list: itself, or its section chains (and the joined video) for a file with sections."""

    job: Job
    config: Any = None
    chains: list[Chain] = field(default_factory=list)
    error: str = ""

    def render_jobs(self) -> list[Job]:
        return [c.job for c in self.chains] if self.chains else [self.job]


def run_jobs(
    job_list: Sequence[Job],
    output_dir: str | os.PathLike,
    *,
    address: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Runs ``job_list`` (see :mod:`animator.batching.jobs`) on Ray and returns the summary rows, in job order."""
    from animator.batching.progress import BatchProgress

    if jobs is not None and jobs < 1:
        raise AnimatorError(f"jobs={jobs}: give at least 1", field="--jobs")
    root = Path(output_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    planned = [_plan(job) for job in job_list]
    results: dict[str, JobResult] = {}
    to_run: list[Job] = []
    for plan in planned:
        for job in plan.render_jobs():
            if plan.error:
                results[job.name] = JobResult(job=job.name, status=FAILED, error=plan.error)
            elif job_state(job, root) == "complete":
                results[job.name] = finished_result(job, root, SKIPPED)
            else:
                to_run.append(job)
    totals = {job.name: _frame_count(plan, job) for plan in planned for job in plan.render_jobs()}
    view = BatchProgress(totals, jobs=len(totals), enabled=progress)
    every = [job for plan in planned for job in plan.render_jobs()]
    for job in every:
        if job.name in results:
            view.already_done(job, results[job.name])

    def record(job: Job, result: JobResult) -> None:
        results[job.name] = result
        write_summary(root / SUMMARY, _rows(planned, results, root))

    try:
        if to_run:
            _run_on_ray(to_run, planned, root, address, jobs, view, record)
    finally:
        view.close()
        rows = _rows(planned, results, root, join=True)
        write_summary(root / SUMMARY, rows)
    return rows


def _plan(job: Job) -> _Planned:
    """The job's file read and checked here (a bad file fails at once, without a worker); a file with sections
    becomes its chains."""
    from animator.keyframes import load_config

    try:
        config = load_config(job.file, overrides=job.overrides or None)
    except AnimatorError as exc:
        return _Planned(job=job, error=str(exc))
    sections = getattr(config, "sections", ()) or ()
    if not sections or job.frames is not None:
        return _Planned(job=job, config=config)
    try:
        chains = section_chains(job, sections, Path(job.file).parent)
    except AnimatorError as exc:
        return _Planned(job=job, error=str(exc))
    return _Planned(job=job, config=config, chains=chains)


def _frame_count(plan: _Planned, job: Job) -> int:
    if job.frames:
        return job.frames[1] - job.frames[0]
    return int(plan.config.frames) if plan.config is not None else 0


def _kind(config, cluster_gpus: int) -> str:
    """``gpu`` for a job that renders on CUDA (``backends.device: cuda``, or ``auto`` on a cluster with GPUs)."""
    device = str(config.backends.device)
    return "gpu" if device.startswith("cuda") or (device == "auto" and cluster_gpus > 0) else "cpu"


def _diffuses(config) -> bool:
    return str(config.backends.denoise or "none") != "none"


def _run_on_ray(to_run, planned, root, address, jobs, view, record) -> None:
    import ray

    from animator.batching.queue import Dispatcher, plan_resources, ray_session

    configs = {job.name: plan.config for plan in planned for job in plan.render_jobs()}
    with ray_session(address):
        gpus = int(ray.cluster_resources().get("GPU", 0))
        kinds = [(job, _kind(configs[job.name], gpus)) for job in to_run]
        if any(kind == "gpu" for _, kind in kinds) and gpus == 0:
            raise AnimatorError(
                "a job asks for a CUDA device but the Ray cluster has no GPU",
                field="backends.device",
                hint="use --set backends.device=cpu, or give --address of a cluster with GPUs",
            )
        counts = Counter(kind for _, kind in kinds)
        diffusion = any(kind == "cpu" and _diffuses(configs[job.name]) for job, kind in kinds)
        pools = {kind: plan_resources(kind, jobs, diffusion=diffusion) for kind in counts}
        pools = {kind: replace(res, workers=min(res.workers, counts[kind])) for kind, res in pools.items()}
        dispatcher = Dispatcher(root, pools, view)
        try:
            dispatcher.run(kinds, record)
        finally:
            dispatcher.close()


def _rows(planned: Sequence[_Planned], results: Mapping[str, JobResult], root: Path, *, join: bool = False):
    """Summary rows in job order; with ``join``, a file with sections has its chains' rows, then the row of the
    joined video (joined now)."""
    rows = []
    for plan in planned:
        for job in plan.render_jobs():
            if job.name in results:
                rows.append(summary_row(job, results[job.name]))
        if join and plan.chains:
            rows.append(summary_row(plan.job, _joined(plan, results, root)))
    return rows


def _joined(plan: _Planned, results: Mapping[str, JobResult], root: Path) -> JobResult:
    """The joined video of a file's sections: made when every chain is finished and the video is missing or a chain
    was rendered in this run (else the one there is kept: skipped)."""
    chains = plan.chains
    failed = [
        c.job.name for c in chains if c.job.name not in results or results[c.job.name].status not in (DONE, SKIPPED)
    ]
    if failed:
        return JobResult(job=plan.job.name, status=FAILED, error="sections not finished: " + ", ".join(failed))
    output = plan.job.output(root)
    fresh = any(results[c.job.name].status == DONE for c in chains)
    seconds = sum(results[c.job.name].seconds for c in chains)
    if output.is_file() and not fresh:
        from animator.video import probe

        return JobResult(job=plan.job.name, status=SKIPPED, frames=probe(output).frames, seconds=seconds,
                         output=str(output))  # fmt: skip
    try:
        frames = join_sections(chains, root, plan.config, output)
    except AnimatorError as exc:
        return JobResult(job=plan.job.name, status=FAILED, error=str(exc))
    return JobResult(job=plan.job.name, status=DONE, frames=frames, seconds=seconds, output=str(output))
