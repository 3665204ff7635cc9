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
new version, never half a file. One process at a time works in a run folder and writes an output video:
:meth:`RunFolder.lock` holds an OS file lock (``flock``) on both, which the kernel drops when the process dies, so
a killed render never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
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
JOURNAL_FORMAT = "qoi"  # see animator.images.save_frame
LOCK = ".lock"
# errno values that mean "the disk or folder cannot take this write", not a bug of ours
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to a hidden temporary name and renames it to ``path``; on any failure the temporary file is
    removed and a full or read-only disk becomes an :class:`AnimatorError` naming the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            raise disk_error(exc, path) from None
        raise


def disk_error(exc: OSError, path: str | os.PathLike) -> AnimatorError:
    """The project's error for an OSError of a write the disk refused (full, read-only, no permission)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = {
        errno.ENOSPC: "free some space on that disk, or choose a folder on another one (--run-dir, -o)",
        errno.EDQUOT: "your disk quota is used up: free some space, or choose a folder on another disk",
        errno.EROFS: "that file system is read-only: choose a folder you can write to",
    }.get(exc.errno, "choose a folder you can write to, or change its permissions")
    return AnimatorError(f"cannot write {path}: {reason}", hint=hint)


class FileLock:
    """An exclusive, non-blocking OS lock (``flock``) on ``path``, a small file holding the owner's pid.

    The kernel releases the lock when the process exits, however it exits (``kill -9`` included), so no stale lock
    survives a crash. The file is removed on release; acquiring checks that the file locked is still the one at
    ``path`` (another process may have removed it between our open and our lock) and tries again if not.
    """

    def __init__(self, path: str | os.PathLike, *, what: str, hint: str) -> None:
        self.path = Path(path)
        self.what = what  # "the run folder runs/x", for the refusal
        self.hint = hint
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                if exc.errno in DISK_ERRORS:
                    raise disk_error(exc, self.path) from None
                if exc.errno == errno.ENOENT:
                    raise AnimatorError(
                        f"the folder {self.path.parent} does not exist", hint="create it first, or choose another"
                    ) from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise AnimatorError(
                    f"{self.what} is in use by another animator process" + (f" (pid {owner})" if owner else ""),
                    hint=self.hint,
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                self._fd = fd
                return
            os.close(fd)  # the holder removed the file while we waited for it: lock the new one
        raise AnimatorError(f"could not lock {self.path}", hint=self.hint)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding the lock: a waiting process re-checks the inode
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def output_lock(output: str | os.PathLike) -> FileLock:
    """The lock of an output file: a hidden ``.<name>.lock`` next to it (the same for every path spelling, and for
    every process and user that can write that folder). Hold it from before the first frame until the file is
    in place."""
    output = Path(output).resolve()
    return FileLock(
        output.with_name(f".{output.name}.lock"),
        what=f"the output {output}",
        hint="another render is writing this file: wait for it, or give this one another -o",
    )


def default_run_dir(config_path: str | os.PathLike | None, root: str | os.PathLike = "runs") -> Path:
    stem = Path(config_path).stem if config_path else "render"
    return Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunFolder:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.journal = self.path / JOURNAL

    # ------------------------------------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def lock(self, *, output: str | os.PathLike | None = None) -> Iterator[RunFolder]:
        """Holds this run folder (and ``output``, when given) for this process; a second process is refused with
        an :class:`AnimatorError` saying which process holds it.

        Take it before :meth:`create` (a new run: the folder is made here, and removed again on exit if nothing
        was written into it) or before reading a run to resume, and keep it until the video is in place::

            with folder.lock(output=output):
                folder.create(...)   # or: folder.record() for a resume
                ...                  # render, write the video
        """
        made = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in DISK_ERRORS:
                raise disk_error(exc, self.path) from None
            raise
        folder_lock = FileLock(
            self.path / LOCK,
            what=f"the run folder {self.path}",
            hint="another render or resume of this run is still going: wait for it, or stop it first "
            "(a killed process releases its lock by itself)",
        )
        try:
            with folder_lock, output_lock(output) if output is not None else contextlib.nullcontext():
                yield self
        finally:
            if made:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only when empty: a render refused before its first file leaves no folder

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
            return json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AnimatorError(
                f"the run record is damaged ({exc})",
                file=self.path / RUN_FILE,
                hint="this run cannot be resumed: start the render again",
            ) from None
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
        """The loop state saved by :meth:`save_checkpoint`, or None when the run has none yet.

        A damaged file (empty, truncated, overwritten, not a checkpoint) raises :class:`AnimatorError` saying what to
        do: without the checkpoint the run can still be resumed from its first frame.
        """
        import torch

        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        hint = (
            f"remove {path} and resume again: the render then starts over from the run's first frame "
            "(the frames already in the journal are rendered again)"
        )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as exc:
            raise AnimatorError(f"cannot read the checkpoint {path}: {exc.strerror or exc}", hint=hint) from None
        except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, IndexError ... by damage
            raise AnimatorError(
                f"the checkpoint is damaged ({type(exc).__name__}: {str(exc)[:200]})", file=path, hint=hint
            ) from None
        missing = [key for key in ("index", "image") if not isinstance(state, dict) or key not in state]
        if missing or not isinstance(state["image"], torch.Tensor):
            raise AnimatorError(
                "not a checkpoint of this program (missing: " + (", ".join(missing) or "image tensor") + ")",
                file=path,
                hint=hint,
            )
        return state

    def journal_frame(self, index: int) -> np.ndarray:
        from animator.images import load_frame

        path = self.journal / f"{index:06d}.{JOURNAL_FORMAT}"
        if not path.exists():
            raise AnimatorError(
                f"the run folder lacks frame {index} ({path})",
                field="--resume",
                hint="the journal is incomplete; start the render again",
            )
        return _journal_load(path, index, load_frame)

    def _journal_paths(self) -> list[Path]:
        # not the hidden names frames are written under before their rename (a killed run may leave one)
        return sorted(p for p in self.journal.glob(f"*.{JOURNAL_FORMAT}") if not p.name.startswith("."))

    def journal_frame_count(self) -> int:
        return len(self._journal_paths())

    def journal_frames(self) -> Iterator[np.ndarray]:
        """Every frame of the journal, in order."""
        from animator.images import load_frame

        for path in self._journal_paths():
            yield _journal_load(path, int(path.stem), load_frame)

    def finish(self, *, keep_frames_in: Path | None, stats: dict[str, Any]) -> None:
        """Marks the run complete; moves the journal to --frames-dir or removes it; drops the checkpoint."""
        if keep_frames_in is not None:  # --frames-dir: PNGs, the format every tool reads
            from animator.images import load_frame, save_frame

            keep_frames_in.mkdir(parents=True, exist_ok=True)
            for path in self._journal_paths():
                save_frame(keep_frames_in / f"{path.stem}.png", load_frame(path))
        shutil.rmtree(self.journal, ignore_errors=True)
        (self.path / CHECKPOINT).unlink(missing_ok=True)
        write_atomic(self.path / "metrics.json", json.dumps(stats, indent=2, default=float).encode())
        self.update({"status": "complete", "finished": time.time()})


def _journal_load(path: Path, index: int, load_frame) -> np.ndarray:
    """A journal frame; a damaged one (truncated by a crash of the disk, or edited) is the project's error."""
    try:
        return load_frame(path)
    except AnimatorError as exc:
        raise AnimatorError(
            f"frame {index} of the run's journal is damaged: {exc.message}",
            file=path,
            hint="the run cannot be resumed past it: render again from frame "
            f"{index} on into a new run (--frames {index}:) and join the videos, or start the render again",
        ) from None


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.9g}"
    return value
