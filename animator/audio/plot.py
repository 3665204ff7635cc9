"""A picture of the audio features with the beat grid, for writing schedule expressions against a song."""

from __future__ import annotations

import os
from pathlib import Path

from animator.audio.features import AudioFeatures
from animator.errors import AnimatorError

_DPI = 100


def plot_features(
    features: AudioFeatures,
    path: str | os.PathLike,
    *,
    width_px: int = 1600,
    height_px: int = 900,
    title: str | None = None,
) -> Path:
    """Draw the per-frame feature curves with beats (thin lines) and downbeats (thick lines) and save as an image.

    One panel for loudness and onsets, one for the frequency bands, one for the beat envelope, and one per stem;
    x is the frame number (seconds on the top axis). The file type follows the suffix (``.png``, ``.svg``, ``.pdf``).

    Args:
        features: the result of :func:`animator.audio.analyze`.
        path: where to write the image.
        width_px, height_px: size of the image in pixels (exact for raster formats).
        title: heading; defaults to the file name, tempo and beat count.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if not isinstance(features, AudioFeatures):
        raise AnimatorError(f"expected AudioFeatures, got {type(features).__name__}", field="features")
    for name, value in (("width_px", width_px), ("height_px", height_px)):
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 20000:
            raise AnimatorError(f"{name} must be an integer from 100 to 20000 pixels, got {value!r}", field=name)
    path = Path(path)
    if not path.parent.is_dir():
        raise AnimatorError("the folder to write the plot into does not exist", file=path.parent, field="plot")

    # The object API without pyplot: no global backend state, safe inside notebooks and threads.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, layout="constrained")
    panels = _panels(features)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    frames = range(features.frames)
    for ax, (label, names) in zip(axes, panels):
        for name in names:
            ax.plot(frames, features.variables[name], linewidth=1.0, label=name)
        _mark_beats(ax, features)
        ax.set_ylabel(label)
        ax.set_ylim(-0.05, 1.05)
        ax.legend(loc="upper right", fontsize="small", ncols=len(names))
    axes[-1].set_xlabel("frame")
    axes[-1].set_xlim(0, max(features.frames - 1, 1))
    seconds = axes[0].secondary_xaxis("top", functions=(lambda f: f / features.fps, lambda s: s * features.fps))
    seconds.set_xlabel("seconds")
    figure.suptitle(title if title is not None else _default_title(features))
    figure.savefig(path, dpi=_DPI)
    return path


def _panels(features: AudioFeatures) -> list[tuple[str, list[str]]]:
    """(y label, variable names) per panel: mix loudness, mix bands, beat envelope, then one panel per stem."""
    band_names = list(features.bands)
    panels = [("loudness", ["rms", "onset"]), ("bands", band_names), ("beat", ["beat"])]
    for stem in features.stems:
        names = [f"{stem}_{key}" for key in ("rms", "onset", "beat", *band_names)]
        panels.append((stem, [name for name in names if name in features.variables]))
    return [(label, names) for label, names in panels if names]


def _mark_beats(ax, features: AudioFeatures) -> None:
    downbeats = set(features.downbeat_frames.tolist())
    for frame in features.beat_frames.tolist():
        if frame in downbeats:
            ax.axvline(frame, color="tab:red", linewidth=1.2, alpha=0.6)
        else:
            ax.axvline(frame, color="0.6", linewidth=0.6, alpha=0.6)


def _default_title(features: AudioFeatures) -> str:
    name = Path(features.path).name if features.path else "audio"
    return (
        f"{name}: {features.bpm:.1f} BPM, {features.beat_frames.size} beats, {features.frames} frames at "
        f"{features.fps:g} fps (grey: beats, red: downbeats)"
    )
