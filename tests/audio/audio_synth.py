"""Synthesised audio whose beats, onsets and spectra the tests know exactly (helpers for tests/audio).

Files are written with the standard ``wave`` module (16-bit PCM) or encoded by the bundled ffmpeg.
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 22050
FPS = 24.0


def write_wav(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    """Write float samples in [-1, 1], shape (n,) mono or (n, channels), as 16-bit PCM."""
    samples = np.asarray(samples, dtype=np.float64)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(pcm.tobytes())
    return path


def encode(source: Path, target: Path, *codec_args: str) -> Path:
    """Re-encode ``source`` with the bundled ffmpeg (format from ``target``'s suffix)."""
    import imageio_ffmpeg

    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        *codec_args,
        str(target),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return target


def sine(freq_hz: float, seconds: float, amplitude: float = 0.5, sr: int = SR, fade_s: float = 0.02) -> np.ndarray:
    """A sine with short raised-cosine fades, so its start and end are not broadband clicks."""
    t = np.arange(int(seconds * sr)) / sr
    y = amplitude * np.sin(2 * np.pi * freq_hz * t)
    fade = int(fade_s * sr)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y


def drum_hit(sr: int = SR, accent: bool = False) -> np.ndarray:
    """A short percussive hit: a 1 kHz click, plus a decaying 55 Hz kick when accented."""
    n = int(0.12 * sr)
    t = np.arange(n) / sr
    click = 0.5 * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.004)
    if accent:
        click = click * 1.6 + 0.8 * np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.04)
    return click


@dataclass(frozen=True)
class ClickTrack:
    path: Path
    beat_times_s: np.ndarray  # ground truth: time of every hit
    accent_times_s: np.ndarray  # ground truth: the accented hits (every 4th, from the second hit on)
    duration_s: float

    def frames_of(self, times_s: np.ndarray, fps: float = FPS, offset_s: float = 0.0) -> np.ndarray:
        return np.floor((np.asarray(times_s) - offset_s) * fps + 1e-9).astype(int)


def make_click_track(path: Path, bpm: float = 120.0, seconds: float = 10.0, first_s: float = 0.5) -> ClickTrack:
    """Hits every 60/bpm s from ``first_s`` on; every 4th hit from the second one on is accented (the "one").

    The first hit is not at t=0: an onset needs silence before it to be heard, in any detector.
    """
    n = int(seconds * SR)
    y = 1e-3 * np.random.default_rng(0).standard_normal(n)  # a faint noise floor, as in any recording
    times = np.arange(first_s, seconds - 0.2, 60.0 / bpm)
    accented = np.arange(times.size) % 4 == 1
    for time_s, accent in zip(times, accented):
        start = int(round(time_s * SR))
        hit = drum_hit(accent=accent)[: n - start]
        y[start : start + hit.size] += hit
    write_wav(path, y)
    return ClickTrack(path, times, times[accented], n / SR)


def drum_loop(seconds: float = 8.0, bpm: float = 128.0, first_s: float = 0.3, seed: int = 0):
    """A busier, music-like loop: kick on beats 1 and 3, snare on 2 and 4, hi-hats on every 8th note, a sustained
    three-note chord and a noise floor. Returns ``(samples (n,), beat_times_s, bar_start_times_s)``."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = 0.05 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t) + np.sin(2 * np.pi * 330 * t))
    y += 0.01 * rng.standard_normal(n)
    tk = np.arange(int(0.3 * SR)) / SR
    kick = 0.9 * np.sin(2 * np.pi * (50 + 100 * np.exp(-tk / 0.03)) * tk) * np.exp(-tk / 0.12)
    ts = np.arange(int(0.2 * SR)) / SR
    snare = 0.4 * rng.standard_normal(ts.size) * np.exp(-ts / 0.05)
    th = np.arange(int(0.05 * SR)) / SR
    hat = 0.15 * rng.standard_normal(th.size) * np.exp(-th / 0.01)
    hat = sosfilt(butter(4, 6000, "highpass", fs=SR, output="sos"), hat)
    beat_s = 60.0 / bpm
    beats = np.arange(first_s, seconds - 0.3, beat_s)
    for k, at in enumerate(beats):
        for hit, when in ((kick if k % 2 == 0 else snare, at), (hat, at), (hat, at + beat_s / 2)):
            start = int(round(when * SR))
            piece = hit[: max(0, n - start)]
            y[start : start + piece.size] += piece
    return y / (np.abs(y).max() * 1.1), beats, beats[::4]
