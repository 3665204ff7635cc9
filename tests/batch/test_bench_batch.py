"""benchmarks/bench_batch.py still runs end to end (tiny jobs; its figures are not checked: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_batch_prints_every_row_as_json():
    args = ["--jobs", "2", "--frames", "4", "--size", "64", "--workers", "1", "--json"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_batch.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["row"] for row in rows] == ["sequential", "ray_start", "batch"]
    assert len(rows[0]["job_s"]) == 2 and rows[2]["status"] == ["done"] and len(rows[2]["job_s"]) == 2
    assert rows[2]["ideal_s"] == pytest.approx(sum(rows[2]["job_s"])) and rows[2]["cores"] >= 1
