"""Video and audio I/O through the ffmpeg that imageio-ffmpeg bundles (x264, x265, vpx, prores, aac, opus).

- :func:`probe` and :func:`read_frames` read any file ffmpeg can decode.
- :class:`VideoWriter` streams frames straight into an ffmpeg process on its own thread (no temporary PNGs), writes to
  a temporary name of its own (pid + random, so two writers never share one) and renames when complete, so a crash
  never leaves a truncated file under the final name; a later writer of the same file removes what a dead one left.
- :func:`check_output` refuses, before the first frame, an output no encode could finish (unknown container, a codec
  the container cannot hold, a pixel format the encoder lacks, a folder that is missing or read-only).
- :func:`mux_audio` adds a soundtrack (trimmed to the video, with an offset); :func:`export_gif` makes a GIF.

Every ffmpeg failure becomes an :class:`~animator.errors.AnimatorError` carrying ffmpeg's own message.
"""

from __future__ import annotations

import functools
import os
import queue
import re
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.errors import AnimatorError
from animator.images import FRAME_FORMATS, save_frame

# codec name in keyframe files -> (ffmpeg encoder, default container suffix, extra output args)
CODECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "h264": ("libx264", ".mp4", ("-movflags", "+faststart")),
    "h265": ("libx265", ".mp4", ("-tag:v", "hvc1", "-movflags", "+faststart", "-x265-params", "log-level=error")),
    "vp9": ("libvpx-vp9", ".webm", ("-b:v", "0", "-row-mt", "1")),
    "prores": ("prores_ks", ".mov", ("-profile:v", "3")),
}
AUDIO_CODEC_FOR_SUFFIX = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}
# container suffix -> the codecs of CODECS it can hold (what the bundled ffmpeg muxes; tests/test_video.py checks this
# table against a real one-frame encode of every pair)
CONTAINERS: dict[str, tuple[str, ...]] = {
    ".mp4": ("h264", "h265", "vp9"),
    ".m4v": ("h264",),
    ".mov": ("h264", "h265", "prores"),
    ".mkv": tuple(CODECS),  # Matroska holds every codec
    ".webm": ("vp9",),
}


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
        raise AnimatorError(f"ffmpeg failed while {what}: " + ffmpeg_reason(proc.stderr, proc.returncode))


def ffmpeg_reason(stderr: bytes | str, status: int | None = None) -> str:
    """ffmpeg's own reason for a failure, in a line or two: its last lines without the banner, the configuration, the
    stream listing and the generic closing lines ("Conversion failed!")."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    noise = re.compile(
        r"^\s*(ffmpeg version|built with|configuration:|lib\w+\s+\d|Input #|Output #|Stream |Metadata:|Duration:|"
        r"Press \[q\]|Stream mapping:|Conversion failed|Error opening (in|out)put files?|Exiting normally|"
        r"Could not load meta information|=== stderr ===)"
    )
    # "[in#0 @ 0x55d7...] moov atom not found" -> "moov atom not found"
    lines = [re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line.strip()) for line in text.strip().splitlines()]
    lines = [line for line in lines if line]
    kept = [line for line in lines if not noise.match(line)]
    return " | ".join(kept[-2:] or lines[-1:]) or f"exit status {status}"


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


def check_video(path: str | os.PathLike) -> str:
    """ffmpeg's report on ``path``'s streams (no frame decoded: milliseconds), after checking that it holds a video
    stream ffmpeg can read; raises :class:`AnimatorError` with ffmpeg's reason otherwise."""
    path = _check_readable(Path(path))
    header = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ).stderr.decode(errors="replace")
    if _VIDEO_STREAM.search(header) is None:
        reason = ffmpeg_reason(header) if header.strip() else "no video stream"
        raise AnimatorError(
            f"cannot read a video stream from {path}: {reason}",
            hint="give a file ffmpeg can decode (mp4, mov, webm, mkv, gif ...)",
        )
    return header


def probe(path: str | os.PathLike) -> VideoInfo:
    """Decodes the file once to count its frames exactly and reads stream facts from ffmpeg's report."""
    path = _check_readable(Path(path))
    header = check_video(path)
    video = _VIDEO_STREAM.search(header)
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
        raise AnimatorError(
            f"cannot read video {path}: {ffmpeg_reason(str(exc)) if str(exc) else 'no frames'}",
            hint="check that the file is a complete video ffmpeg can play",
        ) from None
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


def partial_path(final: Path, token: str | None = None) -> Path:
    """Where a video is written until it is complete: same folder (so the rename is atomic), same suffix, a name of
    this process (its pid) and of this writer (``token``, random by default): two writers never share one."""
    token = token or secrets.token_hex(4)
    return final.with_name(f".{final.stem}.partial-{os.getpid()}-{token}{final.suffix}")


def partial_files(final: Path) -> list[Path]:
    """Every temporary file of ``final`` (see :func:`partial_path`) in its folder, of any process."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{final.stem}.") + r"(partial|audio|gif)-(\d+)-[0-9a-f]+\.\w+$")
    return sorted(p for p in final.parent.iterdir() if pattern.match(p.name))


def remove_stale_partials(final: Path) -> list[Path]:
    """Removes the temporary files of ``final`` that a process which no longer runs left behind (``kill -9``, a
    power cut); those of a running process stay. Returns what was removed."""
    removed = []
    for path in partial_files(final):
        pid = int(path.name.rsplit("-", 2)[-2])
        if pid != os.getpid() and _process_alive(pid):
            continue
        if pid == os.getpid() and path in _OPEN_PARTIALS:
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


_OPEN_PARTIALS: set[Path] = set()  # temporary files this process is writing now


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@functools.cache
def _encoder_pix_fmts(encoder: str) -> tuple[str, ...]:
    """Pixel formats ``encoder`` accepts, as the bundled ffmpeg lists them (asked once per process: ~20 ms)."""
    text = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-h", f"encoder={encoder}"], capture_output=True, text=True
    ).stdout
    match = re.search(r"Supported pixel formats:([^\n]*)", text)
    return tuple(match.group(1).split()) if match else ()


def check_output(path: str | os.PathLike, codec: str = "h264", pix_fmt: str = "yuv420p") -> Path:
    """Refuses, before any frame is rendered, an output video that no encode could finish.

    Checks the container (the file's suffix, see :data:`CONTAINERS`), that it can hold ``codec``, that the encoder
    takes ``pix_fmt``, and that the output's folder exists and can be written (a file of that name is replaced
    only when the video is complete). No ffmpeg runs unless ``pix_fmt`` is not the default ``yuv420p`` (then once per
    process and encoder). Returns the path; raises :class:`AnimatorError` with a hint otherwise.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        gif = " (for a GIF, write a video and set output.gif: true)" if suffix == ".gif" else ""
        raise AnimatorError(
            f"cannot write a video as {suffix or 'a file without a suffix'!r}{gif}",
            file=path,
            field="-o",
            hint="give the output one of the video suffixes: " + ", ".join(CONTAINERS),
        )
    if codec not in CODECS:
        raise AnimatorError(f"unknown codec {codec!r}", field="output.codec", hint="use one of: " + ", ".join(CODECS))
    if codec not in CONTAINERS[suffix]:
        fits = [s for s, codecs in CONTAINERS.items() if codec in codecs]
        raise AnimatorError(
            f"a {suffix} file cannot hold {codec} video",
            file=path,
            field="output.codec",
            hint=f"for {codec} use {' or '.join(fits)}; a {suffix} file takes " + ", ".join(CONTAINERS[suffix]),
        )
    effective = "yuv422p10le" if codec == "prores" and pix_fmt == "yuv420p" else pix_fmt
    if pix_fmt != "yuv420p":
        known = _encoder_pix_fmts(CODECS[codec][0])
        if known and effective not in known:
            raise AnimatorError(
                f"the {codec} encoder cannot write pixel format {pix_fmt!r}",
                field="output.pix_fmt",
                hint=f"{codec} takes: " + " ".join(known),
            )
    if path.is_dir():
        raise AnimatorError("is a folder, expected a video file name", file=path, field="-o")
    folder = path.parent
    if not folder.is_dir():
        raise AnimatorError(
            f"the output folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder",
            file=path,
            field="-o",
            hint=f"create it first (mkdir -p {folder}) or choose another output",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = "is on a read-only file system" if _read_only_fs(folder) else "is not writable"
        raise AnimatorError(
            f"the output folder {folder} {reason}", file=path, field="-o", hint="choose a folder you can write to"
        )
    return path


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


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
        remove_stale_partials(self.path)
        self.frame_format = frame_format
        self.width, self.height, self.fps = width, height, fps
        self.frames_dir = Path(frames_dir) if frames_dir else None
        self.written = 0
        self._index = first_index
        self._error: BaseException | None = None
        self._partial = partial_path(self.path)
        _OPEN_PARTIALS.add(self._partial)
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
        return ffmpeg_reason(self._stderr.read(), self._proc.poll())

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
            self._raise_thread_error()
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
            self._raise_thread_error()
            raise AnimatorError(
                f"ffmpeg failed to encode {self.path}: {message}",
                hint="check output.codec / output.pix_fmt / output.preset in the keyframe file",
            )
        if self.written == 0:
            self._cleanup()
            raise AnimatorError(f"no frames were written to {self.path}")
        os.replace(self._partial, self.path)
        _OPEN_PARTIALS.discard(self._partial)
        self._stderr.close()
        return self.path

    def _raise_thread_error(self) -> None:
        """The encoder thread's own failure, when it is not ffmpeg's (a full disk under the journal, a checkpoint
        that could not be saved): that error, rather than a misleading "ffmpeg stopped"."""
        error = self._error
        if error is None or isinstance(error, BrokenPipeError):  # ffmpeg died: its message says why
            return
        if isinstance(error, OSError):
            from animator.run_folder import DISK_ERRORS, disk_error

            if error.errno in DISK_ERRORS:
                raise disk_error(error, error.filename or self.frames_dir or self.path) from None
        raise error

    def abort(self) -> None:
        """Stops ffmpeg and removes the partial file (the final name is never touched). Frames already queued still
        reach the journal (with their checkpoints) when the encoder takes them within a few seconds: on Ctrl-C what
        was rendered is kept for the resume."""
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=5)
            except queue.Full:
                pass
            self._thread.join(timeout=5)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            self._partial.unlink(missing_ok=True)
        except OSError:  # a read-only folder holds no partial file: keep the error that brought us here
            pass
        _OPEN_PARTIALS.discard(self._partial)
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
    tmp = video.with_name(f".{video.stem}.audio-{os.getpid()}-{secrets.token_hex(4)}{video.suffix}")
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
    tmp = gif.with_name(f".{gif.stem}.gif-{os.getpid()}-{secrets.token_hex(4)}.gif")
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
