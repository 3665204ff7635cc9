"""Batch overhead: N warp-only jobs as one batch on a local Ray against the same jobs one after another in one process.

    .venv/bin/python benchmarks/bench_batch.py [--jobs 4] [--frames 400] [--size 256] [--workers 1,2] [--json]

Each job renders the same kind of 3D fly-through over a photograph (a different camera speed each); every render
measures its flicker metric, as a batch job does. Rows:

- ``sequential``: ``animator.render`` of each job in this process, one after another (the models load once: the
  first job pays the imports, as a batch worker's first job does).
- ``ray_start``: the fixed cost of starting (and stopping) a local Ray.
- ``batch`` per worker count: wall time of ``animator.batching.run_jobs`` on the started Ray, the jobs' own times
  in their workers (``seconds`` of summary.csv), the ideal wall time (those times summed and divided over the
  workers) and the overhead against it. The issue's target: within 10 % for jobs of 10 s or more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import yaml


def write_jobs(folder: Path, count: int, frames: int, size: int) -> list[Path]:
    from PIL import Image
    from skimage import data

    image = folder / "init.png"
    Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS).save(image)
    files = []
    for index in range(count):
        config = {
            "width": size,
            "height": size,
            "fps": 24,
            "frames": frames,
            "mode": "3d",
            "seed": index,
            "init_image": str(image),
            "output": {"preset": "veryfast"},
            "backends": {"device": "cpu"},
            "motion": {"translation_z": f"0:({1 + 0.5 * index})", "rotation_3d_y": "0:(0.3)"},
        }
        path = folder / f"job{index}.yaml"
        path.write_text(yaml.safe_dump(config))
        files.append(path)
    return files


def sequential(files: list[Path], folder: Path) -> list[float]:
    import animator

    folder.mkdir(parents=True, exist_ok=True)
    times = []
    for path in files:
        start = time.perf_counter()
        animator.render(path, folder / f"{path.stem}.mp4", run_dir=folder / path.stem, metrics=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="number of jobs (default 4)")
    parser.add_argument("--frames", type=int, default=400, help="frames per job (default 400: ~10 s at 256 px)")
    parser.add_argument("--size", type=int, default=256, help="square frame size (default 256)")
    parser.add_argument("--workers", default=None, help="comma list of concurrent jobs (default 1 .. cores)")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    args = parser.parse_args()

    import ray

    from animator.batching import run_jobs
    from animator.batching.jobs import batch_jobs
    from animator.batching.queue import local_cores, ray_session

    cores = local_cores()
    counts = [int(c) for c in args.workers.split(",")] if args.workers else list(range(1, cores + 1))
    machine = {"cpu": platform.processor() or platform.machine(), "cores": cores, "python": platform.python_version()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        files = write_jobs(folder, args.jobs, args.frames, args.size)
        times = sequential(files, folder / "sequential")
        rows.append({"row": "sequential", "jobs": args.jobs, "wall_s": sum(times), "job_s": times})

        start = time.perf_counter()
        with ray_session(None):
            started = time.perf_counter() - start
        rows.append({"row": "ray_start", "wall_s": time.perf_counter() - start, "init_s": started})

        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            for workers in counts:
                out = folder / f"batch{workers}"
                start = time.perf_counter()
                result = run_jobs(batch_jobs(files), out, jobs=workers, progress=False)
                wall = time.perf_counter() - start
                job_s = [float(r["seconds"]) for r in result]
                ideal = sum(job_s) / min(workers, args.jobs)
                rows.append(
                    {
                        "row": "batch",
                        "workers": workers,
                        "wall_s": wall,
                        "job_s": job_s,
                        "ideal_s": ideal,
                        "overhead": wall / ideal - 1.0,
                        "vs_sequential": wall / sum(times),
                        "status": sorted({r["status"] for r in result}),
                    }
                )
                shutil.rmtree(out, ignore_errors=True)
        finally:
            ray.shutdown()

    for row in rows:
        row.update(machine | {"size": args.size, "frames": args.frames})
    if not args.json:
        print(
            f"{args.jobs} jobs of {args.frames} frames at {args.size}x{args.size}, {cores} cores ({os.uname().machine})"
        )
        print(f"{'row':<11} {'workers':>7} {'wall s':>8} {'ideal s':>8} {'overhead':>9} {'vs seq':>7}  job s")
        for row in rows:
            jobs = " ".join(f"{t:.1f}" for t in row.get("job_s", []))
            print(
                f"{row['row']:<11} {row.get('workers', ''):>7} {row['wall_s']:>8.1f} "
                f"{row.get('ideal_s', float('nan')):>8.1f} {row.get('overhead', float('nan')):>+9.1%} "
                f"{row.get('vs_sequential', float('nan')):>7.2f}  {jobs}"
            )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
