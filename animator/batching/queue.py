"""The batch on Ray: a local Ray started quietly (or an existing cluster), worker actors that render jobs and keep
their models loaded between them, a progress actor the workers report frames to, and Ctrl-C.

Why actors rather than plain tasks: a worker that renders job after job keeps its loaded models (a model load can
cost more than a short render). Faults: a worker actor whose process dies (kill -9, out of memory) is restarted by
Ray (``max_restarts``) and its job sent again (``max_task_retries``); the job then finds its run folder and resumes
from the checkpoint (:func:`animator.batching.runner.run_job`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animator.batching.jobs import Job
from animator.batching.runner import FAILED, INTERRUPTED, JobResult
from animator.errors import AnimatorError

TASK_RETRIES = 3  # a job whose worker died is sent again this many times (then it fails: it kills its worker)
REPORT_EVERY_S = 0.2  # a worker reports a job's frames at most this often (and at its last frame)
STOP_GRACE_S = 30.0  # after Ctrl-C, how long running jobs get to mark their run folders interrupted


def local_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_cpu_jobs(cpus: int, diffusion: bool) -> int:
    """Concurrent CPU jobs on ``cpus`` cores. Warp-only jobs: one per core (the render runs torch on one thread
    beside its encoder, so one job leaves cores idle: two jobs on two cores finished the batch in 0.68x the time of
    one after the other, docs/batch.md). Jobs with a diffusion model: one at a time, since the denoiser uses every
    core by itself and each concurrent job would hold its own copy of the model in memory."""
    return 1 if diffusion else max(1, cpus)


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[bool]:
    """Ray for the batch: the one already initialised in this process, the cluster at ``address`` (``auto``,
    ``ray://HOST:10001``), or a local Ray started quietly (no dashboard, workers' output not forwarded). Yields
    whether this call started it; a Ray it started is shut down at the end."""
    import ray

    if ray.is_initialized():
        yield False
        return
    settings: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    if address is None:
        settings |= {"num_cpus": num_cpus or local_cores(), "include_dashboard": False}
        settings["runtime_env"] = {"env_vars": _local_worker_env()}
    else:
        _check_reachable(address)
        settings["address"] = address
    on_main_thread = threading.current_thread() is threading.main_thread()
    sigterm_before = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    try:
        ray.init(**settings)
    except (ConnectionError, RuntimeError, ValueError) as exc:  # what ray.init raises for a cluster it cannot use
        if address is None:
            raise
        raise AnimatorError(
            f"cannot use the Ray cluster at {address}: {str(exc).strip().splitlines()[0]}",
            field="--address",
            hint="check the address (`ray status` on a node of the cluster; ray://HOST:10001 for Ray Client) and "
            "that this machine may connect (a cluster with token authentication needs its token, see Ray's docs)",
        ) from None
    if on_main_thread and sigterm_before is not None:
        # ray.init makes SIGTERM exit at once; the command's own handler (SIGTERM stops like Ctrl-C: jobs cancelled,
        # run folders marked interrupted) comes back
        signal.signal(signal.SIGTERM, sigterm_before)
    try:
        yield True
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A cluster address that answers no TCP connection is refused at once: ``ray.init`` would wait for it for
    minutes. ``auto`` is left to Ray (it reads the address of the cluster this machine belongs to)."""
    import socket

    if address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        problem = exc if port.isdigit() and host else "not HOST:PORT"
        raise AnimatorError(
            f"cannot reach the Ray cluster at {address}: {problem}",
            field="--address",
            hint="give HOST:PORT of the head node (6379 by default), ray://HOST:10001 for Ray Client, or auto on a "
            "node of the cluster (`ray status` there shows it)",
        ) from None


def _local_worker_env() -> dict[str, str]:
    """Local workers import animator from where this process did (a checkout on PYTHONPATH, not only an installed
    copy) and see the settings that make renders offline and reproducible."""
    import animator

    home = str(Path(animator.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": home + (os.pathsep + path if path else "")}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANIMATOR_CACHE_DIR", "MKL_DYNAMIC", "HF_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


# ------------------------------------------------------------------------------------------------ actors


def _progress_actor():
    import ray

    @ray.remote(num_cpus=0)
    class Progress:
        """Frames done per job, reported by the workers; the driver reads a snapshot a few times a second."""

        def __init__(self) -> None:
            self.frames: dict[str, tuple[int, int]] = {}

        def report(self, job: str, done: int, total: int) -> None:
            self.frames[job] = (done, total)

        def snapshot(self) -> dict[str, tuple[int, int]]:
            return dict(self.frames)

    return Progress


def _worker_actor():
    import ray

    @ray.remote(max_restarts=-1, max_task_retries=TASK_RETRIES)
    class RenderWorker:
        """Renders jobs one at a time; its models stay loaded between jobs that use the same ones."""

        def __init__(self, root: str, progress: str) -> None:
            # the progress actor by name: a handle as an argument would live in the object store, which a restarted
            # worker cannot rely on
            self.root, self.progress = Path(root), ray.get_actor(progress)
            _keep_models_loaded()

        def run(self, job: Job) -> dict[str, Any]:
            from animator.batching.runner import run_job

            context = ray.get_runtime_context()
            last = [0.0]

            def on_frame(done: int, total: int) -> None:
                now = time.monotonic()
                if done >= total or now - last[0] >= REPORT_EVERY_S:
                    last[0] = now
                    self.progress.report.remote(job.name, done, total)

            result = run_job(job, self.root, on_frame=on_frame, should_stop=context.is_canceled)
            return result.to_dict()

        def pid(self) -> int:
            return os.getpid()

    return RenderWorker


def _keep_models_loaded() -> None:
    """The render package's process-wide switch that keeps loaded models between renders using the same ones
    (``animator.rendering.models.keep_loaded_models``). Guarded: renders without it load their models per job."""
    try:
        from animator.rendering import models
    except ImportError:
        return
    switch = getattr(models, "keep_loaded_models", None)
    if switch is not None:
        switch(True)


# ------------------------------------------------------------------------------------------------ the queue


@dataclass(frozen=True)
class Resources:
    """What one job of a kind asks Ray for, and how many such jobs run at once."""

    gpus: int
    cpus: float
    workers: int


def plan_resources(kind: str, jobs_wanted: int | None, *, diffusion: bool = False) -> Resources:
    """``gpu`` jobs: one GPU each, one worker per GPU of the cluster; they ask for no CPU, so that CPU workers
    holding every core cannot keep them from starting. ``cpu`` jobs: ``jobs_wanted`` workers (default
    :func:`default_cpu_jobs`), the cluster's CPUs shared out between them."""
    import ray

    resources = ray.cluster_resources()
    if kind == "gpu":
        gpus = max(1, int(resources.get("GPU", 0)))
        return Resources(gpus=1, cpus=0, workers=min(jobs_wanted or gpus, gpus))
    cpus = max(1, int(resources.get("CPU", 1)))
    workers = max(1, jobs_wanted or default_cpu_jobs(cpus, diffusion))
    # whole cores while there are enough; more jobs than cores share them (Ray takes fractions of a CPU)
    return Resources(gpus=0, cpus=float(cpus // workers) if workers <= cpus else cpus / workers, workers=workers)


class Dispatcher:
    """Hands jobs to free workers of their kind, collects results and progress, and stops cleanly on Ctrl-C."""

    def __init__(self, root: Path, pools: dict[str, Resources], progress_view) -> None:
        import ray

        self.ray = ray
        self.view = progress_view
        name = f"animator-batch-progress-{uuid.uuid4().hex}"
        self.progress = _progress_actor().options(name=name).remote()
        worker_class = _worker_actor()
        self.free: dict[str, deque] = {kind: deque() for kind in pools}
        self.starting: dict[Any, tuple[str, Any]] = {}  # a worker gets jobs once Ray has placed and started it
        self.workers = []
        for kind, res in pools.items():
            options = {"num_cpus": res.cpus} | ({"num_gpus": res.gpus} if res.gpus else {})
            for _ in range(res.workers):
                worker = worker_class.options(**options).remote(str(root), name)
                self.starting[worker.pid.remote()] = (kind, worker)
                self.workers.append(worker)
        self.running: dict[Any, tuple[Job, str, Any]] = {}

    def run(self, jobs: Sequence[tuple[Job, str]], on_result: Callable[[Job, JobResult], None]) -> None:
        """Runs ``jobs`` ((job, kind) pairs) and calls ``on_result`` for each as it ends; on Ctrl-C every job gets a
        result (interrupted) before KeyboardInterrupt goes on."""
        pending = deque(jobs)
        try:
            while pending or self.running:
                for _ in range(len(pending)):
                    job, kind = pending.popleft()
                    if self.free[kind]:
                        worker = self.free[kind].popleft()
                        self.running[worker.run.remote(job)] = (job, kind, worker)
                        self.view.started(job)
                    elif not self._may_get_a_worker(kind):
                        result = JobResult(job=job.name, status=FAILED, error="no worker could start (see Ray's logs)")
                        on_result(job, result)
                        self.view.finished(job, result)
                    else:
                        pending.append((job, kind))
                self._release_idle({kind for _, kind in pending})
                if not (self.running or self.starting):
                    continue
                ready, _ = self.ray.wait([*self.running, *self.starting], num_returns=1, timeout=0.25)
                self._show_progress()
                for ref in ready:
                    if ref in self.starting:
                        self._started(ref)
                        continue
                    job, kind, worker = self.running.pop(ref)
                    self.free[kind].append(worker)
                    result = self._result(job, ref)
                    on_result(job, result)
                    self.view.finished(job, result)
        except KeyboardInterrupt:
            self._stop(on_result)
            for job, _kind in pending:
                on_result(job, JobResult(job=job.name, status=INTERRUPTED, error="interrupted before it started"))
            raise

    def _started(self, ref) -> None:
        """A worker is up (placed by Ray, models switch set): it takes jobs from now on. One whose start failed is
        dropped."""
        kind, worker = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError:
            return
        self.free[kind].append(worker)

    def _release_idle(self, kinds_pending: set[str]) -> None:
        """Free workers of a kind no pending job needs are stopped, so their CPUs and GPUs go to other jobs."""
        for kind, free in self.free.items():
            while free and kind not in kinds_pending:
                self.ray.kill(free.popleft())

    def _may_get_a_worker(self, kind: str) -> bool:
        return (
            bool(self.free[kind])
            or any(k == kind for k, _ in self.starting.values())
            or any(k == kind for _, k, _ in self.running.values())
        )

    def _result(self, job: Job, ref) -> JobResult:
        try:
            return JobResult(**self.ray.get(ref))
        except self.ray.exceptions.TaskCancelledError:
            return JobResult(job=job.name, status=INTERRUPTED, error="interrupted")
        except self.ray.exceptions.RayError as exc:  # the worker died on every try (out of memory, a crash)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return JobResult(
                job=job.name,
                status=FAILED,
                error=f"its worker died {TASK_RETRIES + 1} times ({type(exc).__name__}: {first_line})",
            )

    def _show_progress(self) -> None:
        try:
            frames = self.ray.get(self.progress.snapshot.remote(), timeout=5)
        except self.ray.exceptions.GetTimeoutError:
            return
        self.view.frames(frames)

    def _stop(self, on_result: Callable[[Job, JobResult], None]) -> None:
        """Ctrl-C: every running job is asked to stop (the render marks its run folder interrupted and keeps what
        it made); jobs that do not stop within :data:`STOP_GRACE_S` are killed (their checkpoints still resume)."""
        for ref in self.running:
            self.ray.cancel(ref)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.running and time.monotonic() < deadline:
            try:
                ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=1.0)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                break
            for ref in ready:
                job, _kind, _worker = self.running.pop(ref)
                on_result(job, self._result(job, ref))
        for job, _kind, worker in self.running.values():
            self.ray.kill(worker)
            on_result(job, JobResult(job=job.name, status=INTERRUPTED, error="interrupted"))
        self.running.clear()

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
        self.ray.kill(self.progress)
