"""``DIR/summary.csv`` and the table printed at the end of a batch: one row per job.

Columns: ``job, file, overrides, status, frames, seconds, fps, flicker, output, error``. ``status`` is ``done``
(rendered now), ``skipped`` (finished by an earlier run of the same batch) or ``failed`` (``error`` says why; a job
stopped by Ctrl-C says so, and the same command resumes it). ``overrides`` is JSON; ``seconds`` the job's time in
its worker (loading, rendering, the flicker metric); ``fps`` the render's frames per second; ``flicker`` the mean
warp error between consecutive frames (lower is steadier).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from animator.batching.jobs import Job
from animator.batching.runner import FAILED, INTERRUPTED, JobResult

COLUMNS = ("job", "file", "overrides", "status", "frames", "seconds", "fps", "flicker", "output", "error")
RESUME_NOTE = "interrupted: run the same command again to resume it"


def summary_row(job: Job, result: JobResult) -> dict[str, Any]:
    status, error = result.status, result.error
    if status == INTERRUPTED:
        status, error = FAILED, RESUME_NOTE
    return {
        "job": job.name,
        "file": job.file,
        "overrides": json.dumps(job.overrides, default=str) if job.overrides else "",
        "status": status,
        "frames": result.frames,
        "seconds": round(result.seconds, 3),
        "fps": round(result.fps, 3),
        "flicker": "" if result.flicker is None else round(result.flicker, 5),
        "output": result.output if status != FAILED else "",
        "error": error if status == FAILED else "",
    }


def write_summary(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """summary.csv, written whole to a temporary name and renamed (a reader never sees half a table)."""
    from animator.run_folder import write_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue().encode())


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as an aligned text table (errors on their own indented lines, since they can be long)."""
    headers = ("job", "status", "frames", "seconds", "fps", "flicker")
    cells = [[str(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    for row, cell in zip(rows, cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip())
        if row["error"]:
            lines.extend("    " + line for line in str(row["error"]).splitlines())
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
