"""Decoding through the bundled ffmpeg: formats, downmix, resampling, offsets, and errors that name the file."""

from __future__ import annotations

import numpy as np
import pytest
from audio_synth import SR, encode, sine, write_wav

from animator.audio import audio_duration, load_audio
from animator.errors import AnimatorError


def _peak_frequency(samples: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / sr)[np.argmax(spectrum)])


def test_wav_decodes_to_the_written_samples(tmp_path):
    written = sine(440.0, 1.0, amplitude=0.5)
    samples, sr = load_audio(write_wav(tmp_path / "a.wav", written), sr=SR)
    assert sr == SR and samples.dtype == np.float32 and samples.shape == written.shape
    np.testing.assert_allclose(samples, written, atol=2 / 32767)  # 16-bit quantisation only


def test_stereo_is_downmixed_to_mono_and_resampled(tmp_path):
    # Left = sine, right = the same sine inverted: a downmix cancels to silence; left = right gives ffmpeg's
    # equal-power (L + R) / sqrt(2). At 44.1 kHz resampled to 22.05 kHz the length halves, 1 kHz stays 1 kHz.
    tone = sine(1000.0, 1.0, amplitude=0.5, sr=44100)
    cancel, _ = load_audio(write_wav(tmp_path / "cancel.wav", np.stack([tone, -tone], 1), sr=44100), sr=SR)
    assert cancel.shape == (SR,)
    assert np.abs(cancel).max() < 1e-3
    same, _ = load_audio(write_wav(tmp_path / "same.wav", np.stack([tone, tone], 1), sr=44100), sr=SR)
    assert abs(_peak_frequency(same, SR) - 1000.0) < 2.0
    amplitude = np.sqrt(2) * np.sqrt(np.mean(same[2000:-2000] ** 2))
    assert amplitude == pytest.approx(2 * 0.5 / np.sqrt(2), rel=0.02)


def test_offset_and_duration_cut_the_right_samples(tmp_path):
    ramp = np.linspace(-0.9, 0.9, 2 * SR)  # sample value says where in the file we are
    path = write_wav(tmp_path / "ramp.wav", ramp)
    cut, _ = load_audio(path, offset_s=0.5, duration_s=0.25)
    assert abs(cut.size - SR / 4) <= 1  # 5512.5 samples asked for
    n = SR // 4
    np.testing.assert_allclose(cut[:n], ramp[SR // 2 : SR // 2 + n], atol=2e-4)  # starts exactly at the offset
    past_end, _ = load_audio(path, offset_s=5.0)
    assert past_end.size == 0


@pytest.mark.parametrize("suffix, codec", [(".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]), (".m4a", ["-c:a", "aac"])])
def test_compressed_formats_decode(tmp_path, suffix, codec):
    source = write_wav(tmp_path / "tone.wav", sine(880.0, 2.0, amplitude=0.4))
    compressed = encode(source, tmp_path / f"tone{suffix}", *codec)
    samples, sr = load_audio(compressed)
    assert abs(samples.size / sr - 2.0) < 0.06  # encoder padding is trimmed to within a frame or two
    assert abs(_peak_frequency(samples, sr) - 880.0) < 2.0
    assert abs(audio_duration(compressed) - 2.0) < 0.06


def test_audio_duration_of_wav_is_exact(tmp_path):
    path = write_wav(tmp_path / "d.wav", np.zeros(int(3.25 * SR)))
    assert audio_duration(path) == pytest.approx(3.25, abs=1e-3)


def test_audio_track_of_a_video_decodes(tmp_path):
    # A video file with a 1 s 660 Hz soundtrack, made by ffmpeg's own test sources.
    import subprocess

    import imageio_ffmpeg

    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=12:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:duration=1",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(video),
        ],
        check=True,
    )
    samples, sr = load_audio(video)
    assert abs(_peak_frequency(samples, sr) - 660.0) < 3.0


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.mp3"
    with pytest.raises(AnimatorError, match="not found") as info:
        load_audio(missing)
    assert info.value.file == str(missing) and "nope.mp3" in str(info.value)
    with pytest.raises(AnimatorError, match="not found"):
        audio_duration(missing)


def test_undecodable_file_names_the_file_and_quotes_ffmpeg(tmp_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AnimatorError, match="ffmpeg could not decode") as info:
        load_audio(junk)
    assert info.value.file == str(junk)
    assert "junk.mp3" in str(info.value)  # ffmpeg's own message mentions the file too


def test_video_without_sound_says_so(tmp_path):
    import subprocess

    import imageio_ffmpeg

    silent_video = tmp_path / "silent.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=12:duration=0.5",
            "-c:v",
            "libx264",
            str(silent_video),
        ],
        check=True,
    )
    with pytest.raises(AnimatorError, match="no audio stream") as info:
        load_audio(silent_video)
    assert info.value.file == str(silent_video)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"sr": 0}, "sr"),
        ({"sr": 22050.5}, "sr"),
        ({"offset_s": -1.0}, "offset_s"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"duration_s": float("nan")}, "duration_s"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, field):
    path = write_wav(tmp_path / "x.wav", np.zeros(SR))
    with pytest.raises(AnimatorError) as info:
        load_audio(path, **kwargs)
    assert info.value.field == field
