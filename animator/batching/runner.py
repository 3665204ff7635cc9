"""Running one job in the current process: skip it when finished, resume it when its run folder holds an unfinished
render, start it otherwise. Ray workers call :func:`run_job`; it needs no Ray itself, so it is the same code
whichever process runs it, and it is what makes a re-run of a batch (or Ray's retry of a job whose worker died)
continue where the job stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from animator.batching.jobs import WORKER_FILE, Job
from animator.errors import AnimatorError

DONE, FAILED, SKIPPED = "done", "failed", "skipped"
INTERRUPTED = "interrupted"  # only between the worker and the driver: the summary says failed, with how to resume


class JobCancelled(Exception):
    """The batch was stopped (Ctrl-C): raised from the render's callback so the render marks its run folder
    interrupted on its way out."""


@dataclass(frozen=True)
class JobResult:
    """What a job did; one row of summary.csv."""

    job: str
    status: str  # done | failed | skipped | interrupted
    frames: int = 0  # frames in the job's video
    seconds: float = 0.0  # the job's time in its worker: loading, rendering, metric (its last run, when resumed)
    fps: float = 0.0
    flicker: float | None = None
    output: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_state(job: Job, root: Path) -> str:
    """``complete`` (run.json says so and the video exists), ``unfinished`` (a run folder to resume), ``stale`` (a
    run folder of another file text, other overrides or frames, or complete but its video is gone: the job starts
    over) or ``new``."""
    record = _record(job.run_dir(root))
    if record is None:
        return "new"
    if not _same_job(job, root, record):
        return "stale"
    if record.get("status") == "complete":
        return "complete" if job.output(root).is_file() else "stale"
    return "unfinished"


def _same_job(job: Job, root: Path, record: dict[str, Any]) -> bool:
    """Whether the run folder rendered this job: the same keyframe text (the run keeps a copy), overrides and
    frames. An edited file is a new job, not one to skip or to resume from the old text."""
    try:
        kept = (job.run_dir(root) / record["keyframes_file"]).read_text()
        current = Path(job.file).read_text()
    except (OSError, KeyError):
        return False
    start, stop = job.frames if job.frames else (0, None)
    same_frames = record.get("start") == start and (stop is None or record.get("stop") == stop)
    return kept == current and _canonical(record.get("overrides") or {}) == _canonical(job.overrides) and same_frames


def _canonical(overrides: dict[str, Any]) -> str:
    return json.dumps(overrides, sort_keys=True, default=str)


def finished_result(job: Job, root: Path, status: str = SKIPPED) -> JobResult:
    """The row of a finished job, from its run folder (run.json and metrics.json)."""
    run_dir = job.run_dir(root)
    record = _record(run_dir) or {}
    try:
        stats = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        stats = {}
    flicker = stats.get("flicker")
    worker = _worker_info(job, root)
    return JobResult(
        job=job.name,
        status=status,
        frames=int(record.get("stop", 0)) - int(record.get("start", 0)),
        seconds=float(worker.get("seconds") or stats.get("elapsed_s") or 0.0),
        fps=float(stats.get("fps", 0.0)),
        flicker=float(flicker["mean"]) if isinstance(flicker, dict) and "mean" in flicker else None,
        output=str(job.output(root)),
    )


def run_job(
    job: Job,
    root: Path,
    *,
    on_frame: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> JobResult:
    """Renders ``job`` into ``root`` (see :mod:`animator.batching.jobs` for the layout) and says how it went; never
    raises for a problem of the job itself (a bad file, a failed render), so one job fails alone.

    ``on_frame(done, total)`` after every frame (frames of the job's range finished so far, resumed ones counted);
    ``should_stop()`` is asked after every frame, and True interrupts the render (its run folder stays resumable).
    """
    from animator import render
    from animator.events import FrameRendered

    root = Path(root)
    _write_worker_file(job, root)
    state = job_state(job, root)
    if state == "complete":  # finished by an earlier attempt that died before it could say so
        return finished_result(job, root, DONE)

    def callback(event) -> None:
        if isinstance(event, FrameRendered):
            if on_frame is not None:
                start = job.frames[0] if job.frames else 0
                on_frame(event.index - start + 1, _total(job, event))
            if should_stop is not None and should_stop():
                raise JobCancelled(job.name)

    run_dir = job.run_dir(root)
    began = time.perf_counter()
    try:
        if state == "unfinished":
            render(resume=run_dir, callbacks=[callback], metrics=True)
        else:
            if run_dir.exists():  # another file text, complete but its video gone, or killed before run.json
                shutil.rmtree(run_dir)
            render(
                job.file,
                job.output(root),
                overrides=job.overrides or None,
                frames=range(*job.frames) if job.frames else None,
                run_dir=run_dir,
                frames_dir=job.frames_dir(root),
                callbacks=[callback],
                metrics=True,
            )
    except JobCancelled:
        return JobResult(job=job.name, status=INTERRUPTED, error="interrupted")
    except AnimatorError as exc:
        return JobResult(job=job.name, status=FAILED, error=str(exc))
    except Exception as exc:  # a bug or a library failure: this job fails, the batch goes on
        return JobResult(job=job.name, status=FAILED, error=f"{type(exc).__name__}: {exc}")
    _update_worker_file(job, root, {"seconds": time.perf_counter() - began, "finished": time.time()})
    return finished_result(job, root, DONE)


def _total(job: Job, event) -> int:
    if job.frames:
        return min(job.frames[1], event.total_frames) - job.frames[0]
    return event.total_frames


def _record(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None


def _worker_info(job: Job, root: Path) -> dict[str, Any]:
    try:
        return json.loads((job.folder(root) / WORKER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _update_worker_file(job: Job, root: Path, fields: dict[str, Any]) -> None:
    from animator.run_folder import write_atomic

    info = _worker_info(job, root) | fields
    write_atomic(job.folder(root) / WORKER_FILE, json.dumps(info, indent=2).encode())


def _write_worker_file(job: Job, root: Path) -> None:
    """``<job>/worker.json``: the process running the job now and how many attempts it has had (a worker that
    dies is replaced by Ray and the job runs again: the attempt count grows)."""
    job.folder(root).mkdir(parents=True, exist_ok=True)
    attempt = int(_worker_info(job, root).get("attempt", 0)) + 1
    info = {"pid": os.getpid(), "host": socket.gethostname(), "attempt": attempt, "started": time.time()}
    _update_worker_file(job, root, info | {"seconds": None, "finished": None})
