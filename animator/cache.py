"""An on-disk cache for results that are slow to compute and depend only on their inputs (the audio analysis).

Entries are ``.npz`` files of plain arrays, named by a hash of everything the result depends on, under
``$ANIMATOR_CACHE_DIR`` (default ``$XDG_CACHE_HOME/animator``, else ``~/.cache/animator``); ``ANIMATOR_CACHE_DIR=off``
turns the cache off. Entries are written atomically and read without pickle (a cache file cannot run code); one that
cannot be read is computed again, and a cache folder that cannot be written is skipped: results are the same either
way, only slower.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["cache_dir", "key", "load", "save"]


def cache_dir() -> Path | None:
    """The cache folder, or None when ``ANIMATOR_CACHE_DIR=off``."""
    setting = os.environ.get("ANIMATOR_CACHE_DIR")
    if setting is not None:
        return None if setting.strip().lower() in ("", "off", "0", "no", "false") else Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "animator"


def key(*parts: bytes | str | int | float) -> str:
    """A hex digest of ``parts`` (bytes as they are, everything else by its ``repr``), in order."""
    digest = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode()
        digest.update(len(data).to_bytes(8, "little"))  # lengths first: ("ab", "c") and ("a", "bc") differ
        digest.update(data)
    return digest.hexdigest()


def _entry(kind: str, digest: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{digest}.npz"


def load(kind: str, digest: str) -> dict[str, np.ndarray] | None:
    """The arrays saved under ``kind``/``digest``, or None (not cached, cache off, or an unreadable entry)."""
    path = _entry(kind, digest)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            return {name: entry[name] for name in entry.files}
    except Exception:  # truncated, damaged or from an incompatible numpy: compute again
        return None


def save(kind: str, digest: str, arrays: dict[str, np.ndarray]) -> None:
    """Keep ``arrays`` under ``kind``/``digest``; does nothing when the cache is off or cannot be written."""
    path = _entry(kind, digest)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, path)  # atomic: readers see the whole entry or none
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only or full disk: the result is still returned, only not kept
