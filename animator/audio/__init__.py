"""Audio analysis for music videos: per-frame loudness, onsets, beats, bars, tempo and band energies.

``analyze(song, fps)`` turns a song (and optional stems) into per-frame variables that schedule expressions use
(``strength: "0:(0.65 - 0.2*beat)"``, ``translation_z: "0:(1 + 6*bass)"``); ``beat_to_frame`` places keyframe
times given in beats (``"16b"``). Audio is decoded by the ffmpeg that imageio-ffmpeg bundles, so any format ffmpeg
reads works. librosa is imported only when an analysis runs.
"""

from __future__ import annotations

from animator.audio.decode import audio_duration, load_audio
from animator.audio.features import (
    ANALYSIS_SR,
    DEFAULT_BANDS,
    AudioFeatures,
    analyze,
    beat_to_frame,
)

__all__ = [
    "ANALYSIS_SR",
    "DEFAULT_BANDS",
    "AudioFeatures",
    "analyze",
    "audio_duration",
    "beat_to_frame",
    "load_audio",
    "plot_features",
]


def __getattr__(name: str):
    # The plot pulls in matplotlib: load it only when asked for.
    if name == "plot_features":
        from animator.audio.plot import plot_features

        return plot_features
    raise AttributeError(f"module 'animator.audio' has no attribute {name!r}")
