"""ffmpeg I/O through imageio-ffmpeg's bundled binary: real encodes read back."""

import os
import re
import wave

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.video import (
    EncodeSettings,
    VideoWriter,
    export_gif,
    mux_audio,
    partial_files,
    probe,
    read_frames,
)


def _frames(n, h=48, w=64):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]


@pytest.mark.parametrize("codec,suffix", [("h264", ".mp4"), ("h265", ".mp4"), ("vp9", ".webm"), ("prores", ".mov")])
def test_writer_codecs_frame_count_and_fps(tmp_path, codec, suffix):
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, width=64, height=48, fps=12, settings=EncodeSettings(codec=codec, preset="ultrafast")) as w:
        for frame in _frames(10):
            w.write(frame)
    info = probe(path)
    assert info.frames == 10
    assert info.fps == pytest.approx(12)
    assert (info.width, info.height) == (64, 48)
    assert info.codec == {"h264": "h264", "h265": "hevc", "vp9": "vp9", "prores": "prores"}[codec]
    assert partial_files(path) == []


def test_frames_round_trip_and_selection(tmp_path):
    path = tmp_path / "a.mp4"
    frames = _frames(9)
    with VideoWriter(
        path, width=64, height=48, fps=24, settings=EncodeSettings(crf=0, preset="ultrafast", pix_fmt="yuv444p")
    ) as w:
        for f in frames:
            w.write(f)
    back = list(read_frames(path))
    assert len(back) == 9
    # crf 0 4:4:4 is near-lossless (RGB<->YUV rounding only).
    assert np.abs(back[4].astype(int) - frames[4]).mean() < 2.0
    picked = list(read_frames(path, every_nth=3, start=1, end=8))
    assert len(picked) == 3  # frames 1, 4, 7
    assert np.abs(picked[1].astype(int) - frames[4]).mean() < 2.0


def test_failure_reports_ffmpeg_message_and_leaves_no_file(tmp_path):
    path = tmp_path / "bad.mp4"
    writer = VideoWriter(path, width=64, height=48, fps=24, settings=EncodeSettings(preset="no-such-preset"))
    with pytest.raises(AnimatorError, match="ffmpeg"):
        for frame in _frames(40):
            writer.write(frame)
        writer.close()
    assert not path.exists() and partial_files(path) == []


def test_exception_in_the_loop_never_leaves_a_final_file(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, width=64, height=48, fps=24) as w:
            w.write(_frames(1)[0])
            raise RuntimeError("crash mid-render")
    assert not path.exists() and partial_files(path) == []


def _tone(path, seconds, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(sr), f.writeframes(pcm.tobytes())


def test_mux_audio_is_trimmed_to_the_video(tmp_path):
    video, audio = tmp_path / "v.mp4", tmp_path / "a.wav"
    with VideoWriter(video, width=64, height=48, fps=24) as w:
        for f in _frames(48):  # 2 s
            w.write(f)
    _tone(audio, 5.0)
    mux_audio(video, audio, offset_s=1.0)
    info = probe(video)
    assert info.has_audio and info.frames == 48
    assert info.audio_duration_s == pytest.approx(2.0, abs=0.1)


def test_gif_and_bad_inputs(tmp_path):
    video = tmp_path / "v.mp4"
    with VideoWriter(video, width=64, height=48, fps=10) as w:
        for f in _frames(5):
            w.write(f)
    gif = export_gif(video, tmp_path / "v.gif")
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    with pytest.raises(AnimatorError, match="no such"):
        probe(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 10)
    with pytest.raises(AnimatorError, match="cannot read"):
        probe(junk)
    with pytest.raises(AnimatorError, match="frame must be"):
        with VideoWriter(tmp_path / "y.mp4", width=64, height=48, fps=10) as w:
            w.write(np.zeros((10, 10, 3), np.uint8))


# ------------------------------------------------------------------------------------- temporary names, output checks


def test_two_writers_of_one_output_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "same.mp4"
    first = VideoWriter(path, width=64, height=48, fps=10, settings=EncodeSettings(preset="ultrafast"))
    second = VideoWriter(path, width=64, height=48, fps=10, settings=EncodeSettings(preset="ultrafast"))
    for frame in _frames(4):
        first.write(frame)
        second.write(frame[:, ::-1].copy())
    assert first._partial != second._partial  # one each, side by side, both recognised as this output's
    assert all(re.fullmatch(r"\.same\.partial-\d+-[0-9a-f]{8}\.mp4", w._partial.name) for w in (first, second))
    second.abort()
    first.close()
    assert probe(path).frames == 4 and partial_files(path) == []


def test_a_new_writer_removes_what_a_dead_process_left_and_keeps_a_live_ones(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "out.mp4"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.partial-{int(dead.stdout)}-0badc0de.mp4"  # a pid that has exited: kill -9 left it
    stale.write_bytes(b"half a video")
    live = tmp_path / f".out.partial-{os.getppid()}-12345678.mp4"  # our parent runs: another render's file
    live.write_bytes(b"being written")
    unrelated = tmp_path / ".other.partial-1-00000000.mp4"
    unrelated.write_bytes(b"x")
    with VideoWriter(path, width=64, height=48, fps=10) as w:
        w.write(_frames(1)[0])
    assert not stale.exists() and live.exists() and unrelated.exists()
    assert probe(path).frames == 1


def _encodes(path, codec) -> bool:
    """Whether the bundled ffmpeg writes one frame of ``codec`` into ``path``'s container with the arguments the
    writer uses (the truth for the table)."""
    import subprocess

    from animator.video import _encoder_args, ffmpeg_exe

    command = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=16x16:d=0.04", "-frames:v", "1"]
    encode = _encoder_args(EncodeSettings(codec=codec, preset="ultrafast"))  # the writer's own arguments
    return subprocess.run([*command, *encode, str(path)], capture_output=True).returncode == 0


def test_container_table_matches_what_ffmpeg_writes(tmp_path):
    from animator.video import CODECS, CONTAINERS, check_output

    for suffix, codecs in CONTAINERS.items():
        for codec in CODECS:
            target = tmp_path / f"{codec}{suffix}"
            assert _encodes(target, codec) == (codec in codecs), (suffix, codec)
            if codec in codecs:
                assert check_output(tmp_path / f"ok{suffix}", codec) == tmp_path / f"ok{suffix}"
            else:
                with pytest.raises(AnimatorError, match=f"cannot hold {codec}"):
                    check_output(tmp_path / f"no{suffix}", codec)


@pytest.mark.parametrize(
    "name,codec,pix_fmt,message",
    [
        ("out.png", "h264", "yuv420p", "cannot write a video as '.png'"),
        ("out.xyz", "h264", "yuv420p", "suffixes: .mp4"),
        ("out", "h264", "yuv420p", "without a suffix"),
        ("out.gif", "h264", "yuv420p", "output.gif: true"),
        ("out.mp4", "av1", "yuv420p", "unknown codec"),
        ("out.mp4", "h264", "rgb48", "pixel format 'rgb48'"),
        ("missing/out.mp4", "h264", "yuv420p", "does not exist"),
    ],
)
def test_check_output_refuses_what_no_encode_could_finish(tmp_path, name, codec, pix_fmt, message):
    from animator.video import check_output

    with pytest.raises(AnimatorError, match=re.escape(message)) as caught:
        check_output(tmp_path / name, codec, pix_fmt)
    assert caught.value.hint


def test_check_output_accepts_an_encoder_pixel_format_and_refuses_a_folder(tmp_path):
    from animator.video import check_output

    assert check_output(tmp_path / "a.mp4", "h264", "yuv444p")
    assert check_output(tmp_path / "a.mov", "prores", "yuv444p10le")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(AnimatorError, match="is a folder"):
        check_output(tmp_path / "dir.mp4")
