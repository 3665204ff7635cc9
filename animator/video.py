"""Video and audio I/O through the ffmpeg that imageio-ffmpeg bundles (x264, x265, vpx, prores, aac, opus).

- :func:`probe` and :func:`read_frames` read any file ffmpeg can decode.
- :class:`VideoWriter` streams frames straight into an ffmpeg process on its own thread (no temporary PNGs), writes to
  a temporary name and renames when complete, so a crash never leaves a truncated file under the final name.
- :func:`mux_audio` adds a soundtrack (trimmed to the video, with an offset); :func:`export_gif` makes a GIF.

Every ffmpeg failure becomes an :class:`~animator.errors.AnimatorError` carrying ffmpeg's own message.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError

# codec name in keyframe files -> (ffmpeg encoder, default container suffix, extra output args)
CODECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "h264": ("libx264", ".mp4", ("-movflags", "+faststart")),
    "h265": ("libx265", ".mp4", ("-tag:v", "hvc1", "-movflags", "+faststart", "-x265-params", "log-level=error")),
    "vp9": ("libvpx-vp9", ".webm", ("-b:v", "0", "-row-mt", "1")),
    "prores": ("prores_ks", ".mov", ("-profile:v", "3")),
}
AUDIO_CODEC_FOR_SUFFIX = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run_ffmpeg(args: list[str], *, what: str) -> None:
    """Runs ffmpeg to completion; a failure raises with the last lines of ffmpeg's own message."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()[-8:]
        raise AnimatorError(f"ffmpeg failed while {what}: " + (" | ".join(message) or f"exit status {proc.returncode}"))


# ----------------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    frames: int  # counted by decoding the stream (exact), not the container's estimate
    duration_s: float
    codec: str | None  # video codec name as ffmpeg reports it (h264, hevc, vp9, prores ...)
    has_audio: bool
    audio_duration_s: float | None


_VIDEO_STREAM = re.compile(r"Stream #\S+.*?: Video: (\w+)")
_AUDIO_STREAM = re.compile(r"Stream #\S+.*?: Audio: (\w+)")
_FPS = re.compile(r"(\d+(?:\.\d+)?) fps")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})")
_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def _check_readable(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AnimatorError(
            f"no such video or audio file: {path}",
            hint="check the path (relative paths are relative to the keyframe file)",
        )
    return path


def probe(path: str | os.PathLike) -> VideoInfo:
    """Decodes the file once to count its frames exactly and reads stream facts from ffmpeg's report."""
    path = _check_readable(Path(path))
    header = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ).stderr.decode(errors="replace")
    video = _VIDEO_STREAM.search(header)
    if video is None:
        reason = header.strip().splitlines()[-1] if header.strip() else "no video stream"
        raise AnimatorError(
            f"cannot read a video stream from {path}: {reason}",
            hint="give a file ffmpeg can decode (mp4, mov, webm, mkv, gif ...)",
        )
    line = header[video.start() : header.find("\n", video.start())]
    size = _SIZE.search(line)
    fps = _FPS.search(line)
    audio_duration = None
    has_audio = _AUDIO_STREAM.search(header) is not None
    frames, duration = _count_frames(path)
    if has_audio:
        audio_duration = _stream_duration(path, "a")
    return VideoInfo(
        path=path,
        width=int(size.group(1)) if size else 0,
        height=int(size.group(2)) if size else 0,
        fps=float(fps.group(1)) if fps else 0.0,
        frames=frames,
        duration_s=duration,
        codec=video.group(1),
        has_audio=has_audio,
        audio_duration_s=audio_duration,
    )


def _count_frames(path: Path) -> tuple[int, float]:
    """Frames and seconds of the first video stream, counted by ffmpeg reading every packet (no decoding)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    text = proc.stderr.decode(errors="replace")
    frames = re.findall(r"frame=\s*(\d+)", text)
    times = _TIME.findall(text)
    seconds = 0.0
    if times:
        h, m, s = times[-1]
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    return (int(frames[-1]) if frames else 0), seconds


def _stream_duration(path: Path, stream: str) -> float:
    """Duration of the first audio ('a') or video ('v') stream, from decoding it (exact, container-independent)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", f"0:{stream}:0", "-f", "null", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    times = _TIME.findall(proc.stderr.decode(errors="replace"))
    if not times:
        return 0.0
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def read_frames(
    path: str | os.PathLike,
    *,
    every_nth: int = 1,
    start: int = 0,
    end: int | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yields frames ``start, start+every_nth, ... < end`` of any ffmpeg-readable video as (H, W, 3) uint8 RGB.

    ``size=(width, height)`` resizes in ffmpeg (bicubic). Raises :class:`AnimatorError` for unreadable files.
    """
    import imageio_ffmpeg

    path = _check_readable(Path(path))
    if every_nth < 1 or start < 0 or (end is not None and end <= start):
        raise AnimatorError(
            f"bad frame selection every_nth={every_nth} start={start} end={end}",
            field="video_input",
            hint="every_nth >= 1, from_frame >= 0, to_frame > from_frame",
        )
    output_params = ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic"] if size else None
    try:
        reader = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise AnimatorError(f"cannot read video {path}: {exc}") from exc
    width, height = meta["size"] if size is None else size
    try:
        for index, raw in enumerate(reader):
            if end is not None and index >= end:
                break
            if index >= start and (index - start) % every_nth == 0:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


# ----------------------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class EncodeSettings:
    codec: str = "h264"  # h264 | h265 | vp9 | prores
    crf: int = 18  # quality: lower is better (h264/h265 18 ~ visually lossless; vp9 scale differs)
    preset: str = "medium"  # x264/x265 speed preset (ultrafast ... veryslow); ignored by vp9/prores
    pix_fmt: str = "yuv420p"  # yuv420p plays everywhere; prores wants yuv422p10le (chosen automatically)


def _encoder_args(settings: EncodeSettings) -> list[str]:
    if settings.codec not in CODECS:
        raise AnimatorError(
            f"unknown codec {settings.codec!r}", field="output.codec", hint="use one of: " + ", ".join(CODECS)
        )
    encoder, _, extra = CODECS[settings.codec]
    args = ["-c:v", encoder]
    if settings.codec in ("h264", "h265"):
        args += ["-crf", str(settings.crf), "-preset", settings.preset, "-pix_fmt", settings.pix_fmt]
    elif settings.codec == "vp9":
        args += ["-crf", str(settings.crf), "-pix_fmt", settings.pix_fmt]
    else:  # prores is 4:2:2 10-bit; yuv420p is not a ProRes format
        args += ["-pix_fmt", "yuv422p10le" if settings.pix_fmt == "yuv420p" else settings.pix_fmt]
    return args + list(extra)


FRAME_FORMATS = ("png", "qoi")


def save_frame(path: Path, frame: np.ndarray) -> None:
    """A lossless (H, W, 3) uint8 RGB frame as ``.png`` or ``.qoi`` (by ``path``'s suffix), written under a hidden
    name and renamed: a killed run never leaves half a file.

    QOI (qoiformat.org) is lossless like PNG and encodes about ten times faster (512x512: ~3 ms against ~26 ms
    for PNG at compression 1 on a small CPU), which is why the resume journal uses it: on a 2-core machine a PNG per
    frame takes as much CPU as the frame itself.
    """
    hidden = path.with_name(f".{path.name}")
    if path.suffix == ".qoi":
        import qoi

        hidden.write_bytes(qoi.encode(np.ascontiguousarray(frame)))
    else:
        from PIL import Image

        Image.fromarray(frame).save(hidden, format="PNG", compress_level=1)
    os.replace(hidden, path)


def load_frame(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a frame written by :func:`save_frame`."""
    if Path(path).suffix == ".qoi":
        import qoi

        return qoi.decode(Path(path).read_bytes())[..., :3]
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def partial_path(final: Path) -> Path:
    """Where a video is written until it is complete: same folder (so the rename is atomic), same suffix."""
    return final.with_name(f".{final.stem}.partial{final.suffix}")


class VideoWriter:
    """Streams RGB uint8 frames into ffmpeg on a background thread; :meth:`close` finishes and renames.

    The frame loop calls :meth:`write` and goes on computing the next frame while this thread feeds ffmpeg (and
    optionally writes lossless copies: PNG, or QOI for the resume journal). The queue is bounded so memory does not
    grow when encoding is slower.

        with VideoWriter("out.mp4", width=512, height=512, fps=24) as writer:
            for frame in frames:
                writer.write(frame)          # (H, W, 3) uint8
        # out.mp4 exists only now; on an exception the partial file is removed
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        fps: float,
        settings: EncodeSettings = EncodeSettings(),
        frames_dir: str | os.PathLike | None = None,
        first_index: int = 0,
        queue_size: int = 8,
        frame_format: str = "png",
    ) -> None:
        if frame_format not in FRAME_FORMATS:
            raise AnimatorError(
                f"unknown frame format {frame_format!r}",
                field="frame_format",
                hint="use one of: " + ", ".join(FRAME_FORMATS),
            )
        self.path = Path(path)
        self.frame_format = frame_format
        self.width, self.height, self.fps = width, height, fps
        self.frames_dir = Path(frames_dir) if frames_dir else None
        self.written = 0
        self._index = first_index
        self._error: BaseException | None = None
        self._partial = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.frames_dir:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        # Odd sizes are legal for our frames but not for 4:2:0 video: pad by one pixel in ffmpeg instead of failing.
        pad = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if (width % 2 or height % 2) else []
        self._stderr = tempfile.TemporaryFile()
        command = [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            f"{fps}",
            "-i",
            "-",
            "-an",
            *pad,
            *_encoder_args(settings),
            "-r",
            f"{fps}",
            str(self._partial),
        ]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._queue: queue.Queue[tuple[np.ndarray, Callable[[], None] | None] | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._feed, name="animator-encoder", daemon=True)
        self._thread.start()

    def _ffmpeg_message(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-8:]) or f"exit status {self._proc.poll()}"

    def _feed(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                frame, after = item
                self._proc.stdin.write(frame.tobytes())
                if self.frames_dir is not None:
                    save_frame(self.frames_dir / f"{self._index:06d}.{self.frame_format}", frame)
                self._index += 1
                if after is not None:
                    after()
        except BaseException as exc:  # BrokenPipe when ffmpeg died: the message is in its stderr
            self._error = exc
            while self._queue.get() is not None:  # drain so write() never blocks forever
                pass

    def write(self, frame: np.ndarray, *, after: Callable[[], None] | None = None) -> None:
        """Queues one (H, W, 3) uint8 RGB frame; ``after`` runs on the encoder thread once the frame is written
        (the render saves its resume checkpoint there, so a checkpoint never points past the journal)."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise AnimatorError(
                f"frame must be ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}"
            )
        if self._error is not None:
            message = self._ffmpeg_message()
            self.abort()
            raise AnimatorError(f"ffmpeg stopped while encoding {self.path}: {message}")
        self._queue.put((np.ascontiguousarray(frame), after))
        self.written += 1

    def close(self) -> Path:
        """Waits for the encoder, checks ffmpeg's status and renames the file into place."""
        self._queue.put(None)
        self._thread.join()
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        status = self._proc.wait()
        if status != 0 or self._error is not None:
            message = self._ffmpeg_message()
            self._cleanup()
            raise AnimatorError(
                f"ffmpeg failed to encode {self.path}: {message}",
                hint="check output.codec / output.pix_fmt / output.preset in the keyframe file",
            )
        if self.written == 0:
            self._cleanup()
            raise AnimatorError(f"no frames were written to {self.path}")
        os.replace(self._partial, self.path)
        self._stderr.close()
        return self.path

    def abort(self) -> None:
        """Stops ffmpeg and removes the partial file (the final name is never touched)."""
        if self._thread.is_alive():
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        self._partial.unlink(missing_ok=True)
        if not self._stderr.closed:
            self._stderr.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ------------------------------------------------------------------------------------------------ audio, gif, still


def mux_audio(video: str | os.PathLike, audio: str | os.PathLike, *, offset_s: float = 0.0) -> Path:
    """Adds ``audio`` (from ``offset_s`` seconds into it, cut to the video's length) to ``video`` in place.

    The video stream is copied, not re-encoded. Written to a temporary name and renamed, like the video itself.
    """
    video, audio = Path(video), _check_readable(Path(audio))
    codec = AUDIO_CODEC_FOR_SUFFIX.get(video.suffix.lower(), "aac")
    tmp = partial_path(video).with_name(f".{video.stem}.audio{video.suffix}")
    try:
        _run_ffmpeg(
            [
                "-i",
                str(video),
                "-ss",
                f"{max(offset_s, 0.0):.6f}",
                "-i",
                str(audio),
                "-map",
                "0:v:0",
                "-map",
                "1:a:0",
                "-c:v",
                "copy",
                "-c:a",
                codec,
                "-b:a",
                "192k",
                "-shortest",
                str(tmp),
            ],
            what=f"adding the soundtrack {audio.name}",
        )
        os.replace(tmp, video)
    finally:
        tmp.unlink(missing_ok=True)
    return video


def export_gif(
    video: str | os.PathLike, gif: str | os.PathLike, *, fps: float | None = None, width: int | None = None
) -> Path:
    """Converts a video to an animated GIF with a palette made for it (two-pass palettegen/paletteuse)."""
    video, gif = Path(video), Path(gif)
    scale = f"scale={width}:-1:flags=lanczos," if width else ""
    rate = f"fps={fps}," if fps else ""
    tmp = gif.with_name(f".{gif.stem}.partial.gif")
    try:
        _run_ffmpeg(
            [
                "-i",
                str(video),
                "-vf",
                f"{rate}{scale}split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=4",
                "-loop",
                "0",
                str(tmp),
            ],
            what=f"making {gif.name}",
        )
        os.replace(tmp, gif)
    finally:
        tmp.unlink(missing_ok=True)
    return gif


def load_image(path: str | os.PathLike, *, width: int, height: int) -> np.ndarray:
    """Reads an image as (height, width, 3) uint8 RGB, scaled to cover the frame and centre-cropped (no distortion)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise AnimatorError(f"no such image: {path}", hint="check the path (relative to the keyframe file)")
    try:
        image = Image.open(path).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise AnimatorError(f"cannot read image {path}: {exc}") from exc
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)), dtype=np.uint8).copy()
