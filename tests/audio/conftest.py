"""Session fixtures for tests/audio: synthesised files, and analyses several tests read.

Analyses are computed once per session: librosa's first beat tracking compiles numba code (~10 s on this machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_synth import FPS, ClickTrack, make_click_track, sine, write_wav


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def click_track(audio_dir) -> ClickTrack:
    """A 10 s, 120 BPM click track with accented downbeats."""
    return make_click_track(audio_dir / "click_120.wav")


@pytest.fixture(scope="session")
def click_features(click_track):
    """The click track analysed at 24 fps (whole file: 240 frames)."""
    from animator.audio import analyze

    return analyze(click_track.path, FPS)


@pytest.fixture(scope="session")
def sine_files(audio_dir) -> dict[str, Path]:
    """4 s of a 60 Hz sine and 4 s of a 5 kHz sine."""
    return {
        "low": write_wav(audio_dir / "sine_60.wav", sine(60.0, 4.0)),
        "high": write_wav(audio_dir / "sine_5k.wav", sine(5000.0, 4.0)),
    }
