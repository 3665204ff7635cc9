"""How long audio analysis takes for a song, by stage.

    .venv/bin/python benchmarks/bench_audio.py [--seconds 180] [--fps 24] [--json]

Synthesises a drum-loop "song" (kick, snare, hats, a chord pad, noise) of the given length, encodes it to mp3 with
the bundled ffmpeg, and times: decoding, the onset envelope, beat tracking, the band filters, and a whole
``analyze`` call (mix only, and mix + 2 stems). The first librosa call in a process compiles numba code; it is
timed separately as "warm-up" and excluded from the rest. Prints a table; ``--json`` adds one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np


def synth_song(seconds: float, sr: int = 22050, bpm: float = 128.0, seed: int = 0) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    song = 0.05 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t) + np.sin(2 * np.pi * 330 * t))
    song += 0.01 * rng.standard_normal(n)
    tk = np.arange(int(0.3 * sr)) / sr
    kick = 0.9 * np.sin(2 * np.pi * (50 + 100 * np.exp(-tk / 0.03)) * tk) * np.exp(-tk / 0.12)
    ts = np.arange(int(0.2 * sr)) / sr
    snare = 0.4 * rng.standard_normal(ts.size) * np.exp(-ts / 0.05)
    th = np.arange(int(0.05 * sr)) / sr
    hat = 0.15 * rng.standard_normal(th.size) * np.exp(-th / 0.01)
    hat = sosfilt(butter(4, 6000, "highpass", fs=sr, output="sos"), hat)
    beat_s = 60.0 / bpm
    for k in range(int(seconds / beat_s)):
        for hit, at in (((kick if k % 2 == 0 else snare), k * beat_s), (hat, k * beat_s), (hat, (k + 0.5) * beat_s)):
            start = int(at * sr)
            piece = hit[: max(0, n - start)]
            song[start : start + piece.size] += piece
    return song / (np.abs(song).max() * 1.1)


def write_wav(path: Path, samples: np.ndarray, sr: int = 22050) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the synthetic song")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    args = parser.parse_args()

    import imageio_ffmpeg

    from animator.audio import analyze, load_audio
    from animator.audio import beats as B
    from animator.audio import features as F

    with tempfile.TemporaryDirectory() as folder:
        wav = write_wav(Path(folder) / "song.wav", synth_song(args.seconds))
        mp3 = Path(folder) / "song.mp3"
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                str(wav),
                "-c:a",
                "libmp3lame",
                "-b:a",
                "192k",
                str(mp3),
            ],
            check=True,
        )

        _, warm_up = timed(analyze, wav, args.fps, frames=48)  # imports + numba compilation, once per process
        (samples, _), decode_s = timed(load_audio, mp3, sr=F.ANALYSIS_SR)
        onset, onset_s = timed(B._onset_envelope, samples, F.ANALYSIS_SR)
        _, beats_s = timed(B._track_beats, onset, F.ANALYSIS_SR)
        frames = int(np.ceil(samples.size / F.ANALYSIS_SR * args.fps))
        grid = F._FrameGrid(fps=args.fps, frames=frames, offset_s=0.0)

        def bands():
            return {
                name: F._frame_rms(F._band_pass(samples, F.ANALYSIS_SR, low, high), grid, F.ANALYSIS_SR)
                for name, (low, high) in F.DEFAULT_BANDS.items()
            }

        _, bands_s = timed(bands)
        features, total_s = timed(analyze, mp3, args.fps)
        _, stems_s = timed(analyze, mp3, args.fps, stems={"drums": wav, "other": wav})

    rows = [
        ("warm-up (imports, numba), once per process", warm_up),
        ("decode mp3 -> 22.05 kHz mono (ffmpeg)", decode_s),
        ("onset envelope (STFT 2048/256, log-mel flux)", onset_s),
        ("beat tracking (librosa DP) + tempo fit", beats_s),
        ("3 band filters + per-frame RMS", bands_s),
        ("analyze(song.mp3), total", total_s),
        ("analyze(song.mp3, 2 stems), total", stems_s),
    ]
    print(
        f"# {args.seconds:g} s song, {args.fps:g} fps ({features.frames} frames), {features.bpm:.2f} BPM found "
        f"(truth 128), {platform.processor() or platform.machine()}, {platform.python_version()}"
    )
    print(f"{'stage':<48} {'seconds':>8} {'x realtime':>11}")
    for name, seconds in rows:
        print(f"{name:<48} {seconds:>8.3f} {args.seconds / seconds:>11.0f}")
    if args.json:
        for name, seconds in rows:
            print(
                json.dumps(
                    {
                        "bench": "audio",
                        "stage": name,
                        "seconds": round(seconds, 4),
                        "song_seconds": args.seconds,
                        "fps": args.fps,
                    }
                )
            )


if __name__ == "__main__":
    main()
