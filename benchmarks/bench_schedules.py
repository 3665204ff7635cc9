"""Schedule parsing and evaluation speed (CPU only: schedules never touch the GPU).

    .venv/bin/python benchmarks/bench_schedules.py [--json]

Prints a table (median of several runs) and, with --json, one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="also print one JSON line per case")
    args = parser.parse_args()

    import numpy as np

    from animator.keyframes import TimeBase, evaluate, load_config, parse_schedule, safe_eval

    recorded = ", ".join(f"{i}:({0.001 * i:.6f})" for i in range(6001))
    expression = "0:(0), 10:(1 + 0.5*sin(t/8) + where(t > 100, max(t/50, 2), 0)), 5000:(cos(t/30)**3)"
    per_frame_expressions = ", ".join(f"{i}:(sin(t/{i + 1}))" for i in range(0, 2000, 2))
    timebase = TimeBase(frames=10_000, fps=24)
    cases = [
        ("parse 6,001-keyframe recorded schedule", lambda: parse_schedule(recorded)),
        ("evaluate it over 10,000 frames", lambda s=parse_schedule(recorded): s.evaluate(timebase)),
        (
            "parse + evaluate 3-keyframe expression, 10,000 frames",
            lambda: parse_schedule(expression).evaluate(timebase),
        ),
        (
            "parse + evaluate 1,000 expression keyframes",
            lambda: parse_schedule(per_frame_expressions).evaluate(timebase),
        ),
        ("safe_eval scalar expression", lambda: safe_eval("1 + 0.5*sin(t/8)", {"t": 3.0})),
        ("safe_eval over 1e6 frames", lambda t=np.arange(1e6): safe_eval("1 + 0.5*sin(t/8)", {"t": t})),
        ("load_config + evaluate keyframes/demo.yaml", lambda: evaluate(load_config(REPO / "keyframes" / "demo.yaml"))),
    ]
    marius = CORPUS / "deforum" / "marius-web-pilot-recorded.json"
    if marius.is_file():
        from animator.keyframes.importers import import_deforum

        cases.append(("import Deforum file with 8 x 6,001-keyframe schedules", lambda: import_deforum(marius)))

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()} (CPU)")
    print(f"{'case':58s} {'median ms':>10s}")
    for name, function in cases:
        function()  # warm-up
        seconds = timed(function, repeat=3 if "import" in name or "1,000" in name else 5)
        print(f"{name:58s} {seconds * 1e3:10.2f}")
        if args.json:
            print(json.dumps({"bench": "schedules", "case": name, "median_ms": round(seconds * 1e3, 3)}))


if __name__ == "__main__":
    main()
