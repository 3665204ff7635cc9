"""ffmpeg I/O through imageio-ffmpeg's bundled binary: real encodes read back."""

import wave

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.video import (
    EncodeSettings,
    VideoWriter,
    export_gif,
    load_image,
    mux_audio,
    partial_path,
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
    assert not partial_path(path).exists()


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
    assert not path.exists() and not partial_path(path).exists()


def test_exception_in_the_loop_never_leaves_a_final_file(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, width=64, height=48, fps=24) as w:
            w.write(_frames(1)[0])
            raise RuntimeError("crash mid-render")
    assert not path.exists() and not partial_path(path).exists()


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


def test_load_image_covers_and_crops(tmp_path):
    from PIL import Image

    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100] = 255  # left half white
    Image.fromarray(img).save(tmp_path / "i.png")
    out = load_image(tmp_path / "i.png", width=64, height=64)
    assert out.shape == (64, 64, 3)
    # centre crop of a 2:1 image into a square keeps the middle: white on the left half, black on the right.
    assert out[:, :28].mean() > 250 and out[:, 36:].mean() < 5


@pytest.mark.parametrize("suffix", [".png", ".qoi"])
def test_saved_frames_are_lossless_and_never_half_written(tmp_path, suffix):
    from animator.video import load_frame, save_frame

    frame = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"000001{suffix}"
    save_frame(path, frame)
    assert np.array_equal(load_frame(path), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # the hidden temporary name is gone
