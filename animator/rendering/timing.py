"""Time per stage of a frame, and frames per second and ETA over a run."""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from animator.devices import profiled


class StageTimer:
    """Milliseconds per stage for the current frame (synchronising CUDA only when asked: profiling costs speed)."""

    def __init__(self, device: torch.device, *, sync: bool) -> None:
        self.sync = sync and device.type == "cuda"
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        if self.sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with profiled(f"stage:{stage}"):
            yield
        if self.sync:
            torch.cuda.synchronize()
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1000

    def take(self) -> dict[str, float]:
        taken, self.ms = self.ms, {}
        return taken


class Clock:
    """Frames per second and ETA over the frames this run has made."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def tick(self) -> tuple[float, float, float]:
        """One more frame done: (elapsed s, frames per second, ETA s)."""
        self.done += 1
        elapsed = self.elapsed()
        fps = self.done / max(elapsed, 1e-9)
        return elapsed, fps, (self.total - self.done) / max(fps, 1e-9)
