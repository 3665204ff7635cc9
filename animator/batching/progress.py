"""The batch's progress view: one bar for the whole batch (frames done over all jobs, jobs done, ETA) and one bar
per running job, fed by the frame counts the workers report. ``tqdm.auto`` draws widgets in a notebook and text
bars on a terminal's stderr."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from animator.batching.jobs import Job
from animator.batching.runner import JobResult


class BatchProgress:
    """Bars for a batch; ``enabled=False`` keeps the counts without drawing anything."""

    def __init__(self, totals: Mapping[str, int], *, jobs: int, enabled: bool = True) -> None:
        self.totals = dict(totals)  # job name -> frames it renders
        self.done_frames: dict[str, int] = {}
        self.jobs, self.jobs_done = jobs, 0
        self.enabled = enabled
        self.bar = self._bar(total=sum(self.totals.values()), desc="batch", unit="frame") if enabled else None
        self.job_bars: dict[str, object] = {}
        self._caption()

    def _bar(self, **settings):
        from tqdm.auto import tqdm

        return tqdm(file=sys.stderr, dynamic_ncols=True, **settings)

    def _caption(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"jobs {self.jobs_done}/{self.jobs}")

    def already_done(self, job: Job, result: JobResult) -> None:
        """A job finished before this run (skipped) or refused before it started (failed)."""
        self.finished(job, result)

    def started(self, job: Job) -> None:
        if self.enabled:
            slot = len(self.job_bars) + 1
            self.job_bars[job.name] = self._bar(
                total=self.totals.get(job.name, 0), desc=job.name[-40:], unit="frame", leave=False, position=slot
            )

    def frames(self, reported: Mapping[str, tuple[int, int]]) -> None:
        """Frame counts from the workers (job -> (done, total)); counts only grow, so a resumed job's frames are
        not counted twice."""
        for name, (done, _total) in reported.items():
            before = self.done_frames.get(name, 0)
            if done > before:
                self.done_frames[name] = done
                self._advance(name, done - before)

    def finished(self, job: Job, result: JobResult) -> None:
        rest = max(self.totals.get(job.name, 0) - self.done_frames.get(job.name, 0), 0)
        if result.status in ("done", "skipped") and rest:
            self.done_frames[job.name] = self.totals.get(job.name, 0)
            self._advance(job.name, rest)
        elif self.bar is not None and rest:  # a failed job's frames will not come: the ETA should not wait for them
            self.bar.total -= rest
            self.bar.refresh()
        self.jobs_done += 1
        bar = self.job_bars.pop(job.name, None)
        if bar is not None:
            bar.close()
        self._caption()

    def _advance(self, name: str, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)
        bar = self.job_bars.get(name)
        if bar is not None:
            bar.update(count)

    def close(self) -> None:
        for bar in self.job_bars.values():
            bar.close()
        self.job_bars.clear()
        if self.bar is not None:
            self.bar.close()
