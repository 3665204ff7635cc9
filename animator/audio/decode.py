"""Decoding audio with the ffmpeg that imageio-ffmpeg bundles.

Anything ffmpeg can read works (wav, mp3, flac, m4a/aac, ogg, opus, the audio track of a video): ffmpeg decodes,
downmixes to mono and resamples, and hands us raw 32-bit float PCM on a pipe. We never go through soundfile or
audioread, so there is exactly one decoder and one set of error messages.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError

# ffmpeg's duration estimate for some containers is only approximate, so audio_duration decodes instead; a low rate
# keeps that cheap (a 4-minute song is ~8 MB through the pipe) while resolving the length to 1/8000 s.
_DURATION_PROBE_SR = 8000


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary (raises :class:`AnimatorError` when imageio-ffmpeg has none)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise AnimatorError(
            f"no ffmpeg binary available to decode audio ({exc})",
            hint="pip install imageio-ffmpeg (it bundles ffmpeg), or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary",
        ) from exc


def _check_readable(path: str | os.PathLike, what: str) -> Path:
    # Errors name the file but leave ``field`` unset, so a caller (the keyframe loader) can add its own field
    # name, e.g. ``audio.path``, with AnimatorError.with_location.
    path = Path(path)
    if not path.exists():
        raise AnimatorError(
            f"{what} not found",
            file=path,
            hint="check the path (relative paths are resolved from "
            "the current directory, or from the keyframe file's folder in a keyframe file)",
        )
    if path.is_dir():
        raise AnimatorError(f"{what} is a directory, expected an audio file", file=path)
    return path


def _ffmpeg_message(stderr: bytes) -> str:
    """The useful part of ffmpeg's stderr: its last few non-empty lines, joined."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:]) if lines else "ffmpeg gave no message"


def _decode_pcm(path: Path, sr: int, offset_s: float, duration_s: float | None, what: str) -> np.ndarray:
    """Run ffmpeg: first audio stream of ``path`` -> mono float32 at ``sr`` (n,)."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if offset_s > 0:
        # Input seeking (before -i) is sample-accurate for audio: ffmpeg decodes and drops up to the offset.
        command += ["-ss", f"{offset_s:.6f}"]
    if duration_s is not None:
        command += ["-t", f"{duration_s:.6f}"]
    # "file:" so that a name like "take:2.wav" or "-x.mp3" is never read as an ffmpeg protocol or option.
    command += ["-i", f"file:{path}", "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "pipe:1"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0:
        message = _ffmpeg_message(result.stderr)
        if b"matches no streams" in result.stderr:
            raise AnimatorError(
                f"{what} has no audio stream",
                file=path,
                hint="point the audio path at a file with sound (a song, or a video with a soundtrack)",
            )
        raise AnimatorError(
            f"ffmpeg could not decode the {what}: {message}",
            file=path,
            hint="use a file ffmpeg can read (wav, mp3, flac, m4a, ogg, or a video with sound)",
        )
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int = 22050,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    what: str = "audio file",
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any ffmpeg-readable file to mono float32.

    Args:
        path: an audio file (wav, mp3, flac, m4a, ...) or a video with a soundtrack.
        sr: sample rate to resample to, in Hz.
        offset_s: seconds to skip at the start of the file.
        duration_s: seconds to decode from ``offset_s`` on (``None``: to the end of the file).
        what: how error messages call the file (e.g. ``"stem 'drums'"``).

    Returns:
        ``(samples, sr)``: samples ``(n,)`` float32, mono by ffmpeg's standard downmix (stereo: the equal-power
        ``(L + R) / sqrt(2)``, so loud in-phase stereo may exceed 1); empty when ``offset_s`` lies past the end of
        the file.

    Raises:
        AnimatorError: the file is missing, has no audio stream or ffmpeg cannot decode it (ffmpeg's own message is
            included), or an argument is out of range.

    Example:
        >>> samples, sr = load_audio("song.mp3", offset_s=30.0, duration_s=10.0)  # doctest: +SKIP
        >>> samples.shape, sr  # doctest: +SKIP
        ((220500,), 22050)
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr < 1000:
        raise AnimatorError(f"sample rate must be an integer of at least 1000 Hz, got {sr!r}", field="sr")
    if not math.isfinite(offset_s) or offset_s < 0:
        raise AnimatorError(f"offset must be a finite number of seconds >= 0, got {offset_s!r}", field="offset_s")
    if duration_s is not None and (not math.isfinite(duration_s) or duration_s <= 0):
        raise AnimatorError(
            f"duration must be a positive number of seconds or None, got {duration_s!r}", field="duration_s"
        )
    path = _check_readable(path, what)
    return _decode_pcm(path, int(sr), float(offset_s), duration_s, what), int(sr)


def audio_duration(path: str | os.PathLike, *, what: str = "audio file") -> float:
    """Length of the first audio stream of ``path`` in seconds.

    Decodes the whole stream at a low sample rate rather than trusting the container's header, which for VBR mp3
    and some videos is only an estimate. Raises :class:`AnimatorError` like :func:`load_audio`.
    """
    path = _check_readable(path, what)
    samples = _decode_pcm(path, _DURATION_PROBE_SR, 0.0, None, what)
    return samples.shape[0] / _DURATION_PROBE_SR
