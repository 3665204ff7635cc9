"""``DIR/contact.png``: one row per job, its frames at 0, 25, 50, 75 and 100 percent, labelled with the values that
differ between the jobs (people compare renders by looking)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
THUMB_WIDTH = 192  # pixels per frame on the sheet (frames are scaled to it, aspect kept)
LABEL_WIDTH = 220
GAP = 4
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)


def frame_indices(count: int, positions: Sequence[float] = POSITIONS) -> list[int]:
    """The frames at ``positions`` (0..1) of a ``count``-frame video: 0 % the first, 100 % the last."""
    return [round(p * (count - 1)) for p in positions] if count > 0 else []


def pick_frames(video: Path, positions: Sequence[float] = POSITIONS) -> list[np.ndarray]:
    """The frames of ``video`` at ``positions``, decoded in one pass."""
    from animator.video import probe, read_frames

    wanted = frame_indices(probe(video).frames, positions)
    found: dict[int, np.ndarray] = {}
    for index, frame in enumerate(read_frames(video)):
        if index in wanted:
            found[index] = frame
        if index >= max(wanted, default=-1):
            break
    return [found[i] for i in wanted if i in found]


def label_text(label: Mapping[str, Any], name: str) -> str:
    """One line per differing value (``strength = 0.5``), or the job name when nothing differs."""
    if not label:
        return name
    return "\n".join(f"{key.split('.')[-1]} = {value}" for key, value in label.items())


def contact_sheet(rows: Sequence[tuple[str, Path | None]], path: Path, *, thumb_width: int = THUMB_WIDTH) -> Path:
    """Writes the sheet: ``rows`` are (label text, video or None for a job without one) in order."""
    from PIL import Image, ImageDraw

    thumbs = [[Image.fromarray(f) for f in pick_frames(video)] if video else [] for _, video in rows]
    aspect = next((t[0].height / t[0].width for t in thumbs if t), 1.0)
    thumb_height = max(1, round(thumb_width * aspect))
    width = LABEL_WIDTH + len(POSITIONS) * (thumb_width + GAP) + GAP
    height = GAP + len(rows) * (thumb_height + GAP)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for row, ((text, _), frames) in enumerate(zip(rows, thumbs)):
        top = GAP + row * (thumb_height + GAP)
        draw.multiline_text((GAP * 2, top + GAP), text if frames else f"{text}\n(no video)", fill=TEXT, font=font)
        for column, frame in enumerate(frames):
            left = LABEL_WIDTH + GAP + column * (thumb_width + GAP)
            sheet.paste(frame.resize((thumb_width, thumb_height), Image.Resampling.LANCZOS), (left, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the bitmap font has one size
        return ImageFont.load_default()
