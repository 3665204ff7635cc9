"""Jobs of a batch: what to render (a keyframe file, dotted overrides, a frame range), where its files go, and the
cross product of ``--set KEY=V1,V2`` values that makes a sweep.

Layout of a batch folder ``DIR`` (the same for batches, sweeps and sections)::

    DIR/summary.csv         one row per job (see animator.batching.summary)
    DIR/contact.png         sweeps: one row of frames per job
    DIR/<job>.mp4           each job's video
    DIR/<job>/run/          its run folder (run.json, checkpoint, journal): what a re-run resumes from
    DIR/<job>/worker.json   the process that runs it now (pid, host, attempt): for people and for tests
    DIR/<job>/frames/       section jobs only: the lossless PNG frames the joined video is made from

Nothing here imports torch or Ray.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from animator.errors import AnimatorError

RUN = "run"
WORKER_FILE = "worker.json"
FRAMES = "frames"


@dataclass(frozen=True)
class Job:
    """One render of a batch. Plain data: it travels to Ray workers by pickling."""

    name: str  # unique in the batch; names the video and the job's folder
    file: str  # the keyframe file (absolute)
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keyframe fields -> values
    label: dict[str, Any] = field(default_factory=dict)  # the overrides that differ between jobs (contact sheet)
    frames: tuple[int, int] | None = None  # (start, stop) frame indices; None: the whole animation
    keep_frames: bool = False  # keep every frame as PNG in <job>/frames (section jobs, for a lossless join)

    def folder(self, root: Path) -> Path:
        return Path(root) / self.name

    def run_dir(self, root: Path) -> Path:
        return self.folder(root) / RUN

    def output(self, root: Path) -> Path:
        return Path(root) / f"{self.name}.mp4"

    def frames_dir(self, root: Path) -> Path | None:
        return self.folder(root) / FRAMES if self.keep_frames else None


# ------------------------------------------------------------------------------------------------ --set values


def split_values(text: str) -> list[str]:
    """``V1,V2,...`` split at the commas that are outside quotes and brackets: ``"a, b",c`` and ``0:(max(1,t))``
    stay whole. The pieces keep their quotes (YAML removes them)."""
    pieces, current, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces]


def yaml_scalar(text: str) -> Any:
    """A command-line value read the way the keyframe file would read it: ``0.5`` a number, ``true`` a boolean,
    ``null`` nothing, ``"a, b"`` a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnimatorError(
            f"cannot read the value {text!r}: {str(exc).splitlines()[0]}",
            field="--set",
            hint="quote values holding YAML characters: --set 'prompts.0=\"a cat: sitting\"'",
        ) from None


def parse_set(spec: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` -> (dotted key, values parsed as YAML scalars)."""
    key, equals, values = spec.partition("=")
    key = key.strip()
    if not equals or not key or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", key):
        raise AnimatorError(
            f"takes KEY=VALUE with a dotted keyframe field as KEY, got {spec!r}",
            field="--set",
            hint="e.g. --set seed=1,2,3 --set generation.strength=0.5 --set prompts.0='\"a cat, a dog\"'",
        )
    return key, [yaml_scalar(piece) for piece in split_values(values)]


def parse_sets(specs: Iterable[str]) -> dict[str, list[Any]]:
    """Several ``--set`` options; a key given twice is refused (which of its values would count?)."""
    sets: dict[str, list[Any]] = {}
    for spec in specs:
        key, values = parse_set(spec)
        if key in sets:
            raise AnimatorError(f"{key} is set twice", field="--set", hint=f"give all values at once: {key}=V1,V2")
        sets[key] = values
    return sets


def single_overrides(specs: Iterable[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` of one render: each key takes exactly one value."""
    overrides = {}
    for key, values in parse_sets(specs).items():
        if len(values) != 1:
            raise AnimatorError(
                f"{key} has {len(values)} values; a render takes one",
                field="--set",
                hint=f"`animator sweep` renders every value; quote a value holding commas: --set {key}='\"a, b\"'",
            )
        overrides[key] = values[0]
    return overrides


# ------------------------------------------------------------------------------------------------ naming


def _slug(value: Any, limit: int = 32) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).strip("_")
    return text[:limit] or "_"


def job_name(stem: str, label: Mapping[str, Any]) -> str:
    """``anim-seed=1-strength=0.5``: the file stem and each differing value under the last part of its key."""
    parts = [_slug(stem, 64)]
    parts += [f"{_slug(key.split('.')[-1], 24)}={_slug(value)}" for key, value in label.items()]
    return "-".join(parts)


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique by ``-2``, ``-3`` ... in order (deterministic, so a re-run finds the same folders)."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, count = name, 1
        while candidate in used:
            count += 1
            candidate = f"{name}-{count}"
        used.add(candidate)
        unique.append(candidate)
    return unique


# ------------------------------------------------------------------------------------------------ building jobs


def batch_jobs(files: Sequence[str | Path], overrides: Mapping[str, Any] | None = None) -> list[Job]:
    """One job per keyframe file, each with the same overrides."""
    if not files:
        raise AnimatorError("give at least one keyframe file", field="FILE")
    paths = [Path(f).expanduser().resolve() for f in files]
    names = unique_names([job_name(p.stem, {}) for p in paths])
    return [Job(name=n, file=str(p), overrides=dict(overrides or {})) for n, p in zip(names, paths)]


def sweep_jobs(file: str | Path, sets: Mapping[str, Sequence[Any]]) -> list[Job]:
    """The cross product of ``sets`` (dotted key -> values) over one keyframe file, in the order given (the last
    key varies fastest). Keys with a single value are plain overrides of every job; the others name the jobs."""
    for key, values in sets.items():
        if not values:
            raise AnimatorError(f"{key} has no values", field="--set", hint=f"e.g. --set {key}=V1,V2")
    path = Path(file).expanduser().resolve()
    fixed = {k: v[0] for k, v in sets.items() if len(v) == 1}
    varying = {k: list(v) for k, v in sets.items() if len(v) > 1}
    combos = [dict(zip(varying, values)) for values in itertools.product(*varying.values())]
    names = unique_names([job_name(path.stem, combo) for combo in combos])
    return [Job(name=name, file=str(path), overrides=fixed | combo, label=combo) for name, combo in zip(names, combos)]
