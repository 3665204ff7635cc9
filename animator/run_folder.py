"""The run folder: everything needed to reproduce a render, and to resume one that was interrupted.

```
runs/demo-20261126-041500/
  keyframes.yaml     the exact keyframe file the run used (its text, byte for byte)
  run.json           overrides, output, frame range, resolved base seed, models and library versions, status
  schedules.csv      every schedule's per-frame value, as rendered
  seeds.csv          the seed of every frame
  frames/            every finished frame, lossless (QOI: fast to write): the resume journal (removed on
                     success, or converted to PNG in --frames-dir)
  checkpoint.pt      the loop state after a recent diffused frame, every 2 s (written after that frame is in the
                     journal; a resume renders the frames after it again)
  metrics.json       flicker metric and timings, at the end
```

Every file is written to a temporary name and renamed, so a crash (even ``kill -9``) leaves either the old or the
new version, never half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from animator.errors import AnimatorError

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
JOURNAL = "frames"
JOURNAL_FORMAT = "qoi"  # see animator.video.save_frame


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def default_run_dir(config_path: str | os.PathLike | None, root: str | os.PathLike = "runs") -> Path:
    stem = Path(config_path).stem if config_path else "render"
    return Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunFolder:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.journal = self.path / JOURNAL

    # ------------------------------------------------------------------------------------------------ creating
    def check_free(self) -> None:
        """AnimatorError when the folder already holds a run (checked again by :meth:`create`)."""
        if (self.path / RUN_FILE).exists():
            raise AnimatorError(
                f"{self.path} already holds a run",
                field="--run-dir",
                hint=f"resume it with `animator render --resume {self.path}` or choose another --run-dir",
            )

    def create(self, *, source_text: str, source_name: str, record: dict[str, Any]) -> None:
        self.check_free()
        self.journal.mkdir(parents=True, exist_ok=True)
        suffix = Path(source_name).suffix or ".yaml"
        write_atomic(self.path / f"keyframes{suffix}", source_text.encode())
        self.update(record | {"keyframes_file": f"keyframes{suffix}", "status": "running", "created": time.time()})

    def update(self, fields: dict[str, Any]) -> None:
        record = self.record() if (self.path / RUN_FILE).exists() else {}
        record.update(fields)
        write_atomic(self.path / RUN_FILE, json.dumps(record, indent=2, default=str).encode())

    def record(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / RUN_FILE).read_text())
        except FileNotFoundError:
            raise AnimatorError(
                f"{self.path} is not a run folder (no {RUN_FILE})",
                field="--resume",
                hint="give the folder a render printed at its start (runs/<name>-<time>)",
            ) from None

    def keyframes_path(self) -> Path:
        return self.path / self.record()["keyframes_file"]

    def write_table(self, name: str, columns: dict[str, Any], *, index_name: str = "frame", first: int = 0) -> None:
        names = list(columns)
        length = len(next(iter(columns.values()))) if columns else 0
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([index_name, *names])
        for row in range(length):
            writer.writerow([first + row, *(_cell(columns[n][row]) for n in names)])
        write_atomic(self.path / name, buffer.getvalue().encode())

    # ------------------------------------------------------------------------------------------------ resume
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(self.path / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any] | None:
        import torch

        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def journal_frame(self, index: int) -> np.ndarray:
        from animator.video import load_frame

        path = self.journal / f"{index:06d}.{JOURNAL_FORMAT}"
        if not path.exists():
            raise AnimatorError(
                f"the run folder lacks frame {index} ({path})",
                field="--resume",
                hint="the journal is incomplete; start the render again",
            )
        return load_frame(path)

    def _journal_paths(self) -> list[Path]:
        return sorted(self.journal.glob(f"*.{JOURNAL_FORMAT}"))

    def journal_frame_count(self) -> int:
        return len(self._journal_paths())

    def journal_frames(self) -> Iterator[np.ndarray]:
        """Every frame of the journal, in order."""
        from animator.video import load_frame

        for path in self._journal_paths():
            yield load_frame(path)

    def finish(self, *, keep_frames_in: Path | None, stats: dict[str, Any]) -> None:
        """Marks the run complete; moves the journal to --frames-dir or removes it; drops the checkpoint."""
        if keep_frames_in is not None:  # --frames-dir: PNGs, the format every tool reads
            from animator.video import load_frame, save_frame

            keep_frames_in.mkdir(parents=True, exist_ok=True)
            for path in self._journal_paths():
                save_frame(keep_frames_in / f"{path.stem}.png", load_frame(path))
        shutil.rmtree(self.journal, ignore_errors=True)
        (self.path / CHECKPOINT).unlink(missing_ok=True)
        write_atomic(self.path / "metrics.json", json.dumps(stats, indent=2, default=float).encode())
        self.update({"status": "complete", "finished": time.time()})


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.9g}"
    return value
