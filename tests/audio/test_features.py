"""Per-frame features against audio whose beats, onsets and spectra the test synthesised."""

from __future__ import annotations

import numpy as np
import pytest
from audio_synth import FPS, SR, drum_loop, encode, make_click_track, sine, write_wav

from animator.audio import AudioFeatures, analyze, beat_to_frame
from animator.errors import AnimatorError

# --- beats and tempo -------------------------------------------------------------------------------------------------


def test_click_track_beats_within_one_frame_and_tempo_within_1_bpm(click_track, click_features):
    truth = click_track.frames_of(click_track.beat_times_s)
    found = click_features.beat_frames
    assert abs(click_features.bpm - 120.0) < 1.0
    # Every hit is found once, within a frame, and nothing else is called a beat.
    assert found.size == truth.size
    assert np.abs(found - truth).max() <= 1
    np.testing.assert_allclose(click_features.beat_times_s, click_track.beat_times_s, atol=1 / FPS)
    assert np.all(click_features.variables["bpm"] == click_features.bpm)


def test_drum_loop_with_hats_pad_and_noise_keeps_beats_and_tempo(audio_dir):
    samples, beat_times_s, bar_times_s = drum_loop(seconds=8.0, bpm=128.0)
    features = analyze(write_wav(audio_dir / "loop_128.wav", samples), FPS)
    assert abs(features.bpm - 128.0) < 1.0
    # The hats on the off-beats are not taken for beats, and the first kick (weaker in onset strength than the
    # snares, so librosa trims it) is still beat 0.
    truth = np.floor(beat_times_s * FPS).astype(int)
    assert features.beat_frames.size == truth.size and np.abs(features.beat_frames - truth).max() <= 1
    # Kick on 1 and 3: bars start on the first kick.
    bars = np.floor(bar_times_s * FPS).astype(int)
    assert features.downbeat_frames.size == bars.size and np.abs(features.downbeat_frames - bars).max() <= 1


def test_beat_variable_is_one_on_beat_frames_and_decays_linearly(click_features):
    beat = click_features.variables["beat"]
    frames = click_features.beat_frames
    assert np.all(beat[frames] == 1.0)
    assert np.all(beat[: frames[0]] == 0.0)  # nothing before the first beat
    # beat_decay_s = 0.25 at 24 fps: 1, 5/6, 4/6 ... 0 six frames after the beat, then 0 until the next one.
    after = beat[frames[3] : frames[3] + 8]
    np.testing.assert_allclose(after, [1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0], atol=1e-9)


def test_beat_count_and_bars_follow_the_accented_downbeats(click_track, click_features):
    beat_i = click_features.variables["beat_i"]
    frames = click_features.beat_frames
    assert beat_i[frames[0] - 1] == 0 and beat_i[frames[0]] == 1
    assert beat_i[frames[5]] == 6 and beat_i[-1] == frames.size
    assert np.all(np.diff(beat_i) >= 0)
    # The accented hits (kick + louder click, every 4th from the second hit) are the downbeats.
    truth = click_track.frames_of(click_track.accent_times_s)
    assert click_features.downbeat_frames.size == truth.size
    assert np.abs(click_features.downbeat_frames - truth).max() <= 1
    bar = click_features.variables["bar"]
    assert bar[click_features.downbeat_frames[0] - 1] == 0 and bar[click_features.downbeat_frames[0]] == 1
    assert bar[-1] == truth.size


def test_beat_to_frame_counts_detected_beats_from_zero(click_track, click_features):
    truth = click_track.frames_of(click_track.beat_times_s)
    assert abs(beat_to_frame(click_features, 0) - truth[0]) <= 1
    assert abs(beat_to_frame(click_features, 16) - truth[16]) <= 1
    # Half a beat = 0.25 s = 6 frames after beat 2; beyond the last beat, the tempo extrapolates.
    assert abs(beat_to_frame(click_features, 2.5) - (truth[2] + 6)) <= 1
    assert abs(beat_to_frame(click_features, 40) - np.floor((0.5 + 40 * 0.5) * FPS)) <= 1
    with pytest.raises(AnimatorError) as info:
        beat_to_frame(click_features, -1)
    assert info.value.field == "beat_number"


def test_offset_shifts_frames_but_not_the_bar_phase(click_track, click_features):
    offset = 1.25  # 30 frames: the shifted frames hold exactly the samples of full frames 30, 31, ...
    shifted = analyze(click_track.path, FPS, frames=96, offset_s=offset)
    assert shifted.frames == 96 and shifted.offset_s == offset
    inside = (click_track.beat_times_s >= offset) & (click_track.beat_times_s < offset + 96 / FPS)
    truth = click_track.frames_of(click_track.beat_times_s[inside], offset_s=offset)
    assert shifted.beat_frames.size == truth.size and np.abs(shifted.beat_frames - truth).max() <= 1
    np.testing.assert_allclose(shifted.beat_times_s, click_track.beat_times_s[inside] - offset, atol=1 / FPS)
    accents = click_track.accent_times_s
    accent_truth = click_track.frames_of(accents[(accents >= offset) & (accents < offset + 4)], offset_s=offset)
    assert np.abs(shifted.downbeat_frames - accent_truth).max() <= 1
    # Same samples, same loudness, up to the normalisation (the shifted window's loudest frame is its 1.0).
    full_rms = click_features.variables["rms"][30 : 30 + 96]
    loud = full_rms > 0.2
    ratio = shifted.variables["rms"][loud] / full_rms[loud]
    assert loud.sum() >= 8 and np.ptp(ratio) < 1e-3


# --- loudness, onsets and bands -------------------------------------------------------------------------------------


def test_bass_and_high_separate_a_60hz_from_a_5khz_sine(sine_files):
    low = analyze(sine_files["low"], FPS).variables
    high = analyze(sine_files["high"], FPS).variables
    steady = slice(2, -2)  # away from the 20 ms fades
    assert low["bass"][steady].min() > 0.9 and low["high"][steady].max() < 0.05 and low["mid"][steady].max() < 0.05
    # (mid is not asserted for 5 kHz: 0.3 octave above the 4 kHz edge the filter is only ~23 dB down, and each
    # band is scaled to its own peak.)
    assert high["high"][steady].min() > 0.9 and high["bass"][steady].max() < 0.05


def test_rms_and_onset_rise_where_noise_starts(audio_dir):
    start_s = 2.52  # inside frame 60 (60.48 frames at 24 fps)
    n = int(5 * SR)
    y = np.zeros(n)
    y[int(start_s * SR) :] = 0.3 * np.random.default_rng(2).standard_normal(n - int(start_s * SR))
    features = analyze(write_wav(audio_dir / "silence_then_noise.wav", y), FPS)
    rms, onset = features.variables["rms"], features.variables["onset"]
    first = int(start_s * FPS)
    assert rms[:first].max() < 0.01 and rms[first + 1 :].min() > 0.8  # exact frame bounds: no leak backwards
    assert np.flatnonzero(rms > 0.25)[0] == first
    assert first <= int(np.argmax(onset)) <= first + 1
    assert onset[: first - 1].max() < 0.05
    assert onset.max() == 1.0 and rms.max() == pytest.approx(1.0)


def test_custom_band_and_edges(sine_files):
    features = analyze(sine_files["low"], FPS, bands={"sub": (40, 80), "bass": (150, 250)})
    assert features.bands == ("bass", "mid", "high", "sub")  # merged into the defaults, order kept
    steady = slice(2, -2)
    assert features.variables["sub"][steady].min() > 0.9  # 60 Hz is inside 40-80 Hz
    assert features.variables["bass"][steady].max() < 0.05  # ... and 1.3 octaves below the moved bass band


def test_frames_past_the_end_are_zero_and_noted(sine_files):
    features = analyze(sine_files["low"], FPS, frames=120, offset_s=1.0)  # 3 s of audio left = 72 frames
    values = features.variables
    assert values["rms"][72:].max() == 0.0 and values["bass"][72:].max() == 0.0 and values["onset"][72:].max() == 0.0
    assert values["rms"][10:70].min() > 0.9
    assert any("frames 72..119" in note for note in features.notes)


def test_default_length_covers_the_audio(sine_files):
    features = analyze(sine_files["low"], 30.0)
    assert features.frames == 120 and features.duration_s == pytest.approx(4.0, abs=1e-3)
    assert all(values.shape == (120,) and values.dtype == np.float64 for values in features.variables.values())
    assert features.beat_frames.size == 0 and features.bpm == 0.0  # a steady tone has no beats
    assert any("no beats" in note for note in features.notes)


def test_white_noise_has_no_beat_grid(audio_dir):
    # beat_track returns a grid for anything; one whose beats do not stand out from the onsets is not believed.
    noise = 0.3 * np.random.default_rng(5).standard_normal(6 * SR)
    features = analyze(write_wav(audio_dir / "white.wav", noise), FPS)
    assert features.beat_frames.size == 0 and features.bpm == 0.0
    assert features.variables["beat"].max() == 0.0 and features.variables["beat_i"].max() == 0.0
    with pytest.raises(AnimatorError, match="no beats"):
        beat_to_frame(features, 4)


def test_stems_get_prefixed_variables_from_their_own_audio(click_track, sine_files, tmp_path):
    features = analyze(click_track.path, FPS, stems={"drums": click_track.path, "pad": sine_files["high"]})
    names = features.variable_names
    for stem in ("drums", "pad"):
        for key in ("rms", "onset", "beat", "beat_i", "bar", "bpm", "bass", "mid", "high"):
            assert f"{stem}_{key}" in names
    values = features.variables
    np.testing.assert_allclose(values["drums_beat"], values["beat"])  # same audio, same beats
    steady = slice(2, 94)
    assert values["pad_high"][steady].min() > 0.9 and values["pad_bass"][steady].max() < 0.05
    assert values["pad_rms"][96:].max() == 0.0  # the 4 s stem ends at frame 96 of the 10 s mix
    assert values["pad_beat"].max() == 0.0
    assert any("stem 'pad'" in note for note in features.notes)
    # The plot gets a panel per stem and the exact pixel size asked for.
    from matplotlib.image import imread

    from animator.audio import plot_features

    image = imread(plot_features(features, tmp_path / "stems.png", width_px=640, height_px=720))
    assert image.shape[:2] == (720, 640) and image[..., :3].std() > 0.05
    with pytest.raises(AnimatorError) as info:
        plot_features(features, tmp_path / "x.png", width_px=10)
    assert info.value.field == "width_px"


def test_mp3_analyses_like_the_wav(click_track, click_features, tmp_path):
    mp3 = encode(click_track.path, tmp_path / "click.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    features = analyze(mp3, FPS, frames=click_features.frames)
    truth = click_track.frames_of(click_track.beat_times_s)
    assert features.beat_frames.size == truth.size and np.abs(features.beat_frames - truth).max() <= 1
    assert abs(features.bpm - 120.0) < 1.0


# --- the result object -----------------------------------------------------------------------------------------------


def test_features_are_read_only_and_tabulate(click_features):
    assert isinstance(click_features, AudioFeatures)
    with pytest.raises(ValueError):
        click_features.variables["rms"][0] = 5.0
    with pytest.raises(AttributeError):
        click_features.bpm = 90.0
    rows = click_features.to_table()
    assert len(rows) == click_features.frames
    assert list(rows[0]) == ["frame", "time_s", *click_features.variable_names]
    beat = int(click_features.beat_frames[2])
    assert rows[beat]["frame"] == beat and rows[beat]["time_s"] == pytest.approx(beat / FPS)
    assert rows[beat]["beat"] == 1.0 and rows[beat]["beat_i"] == 3 and isinstance(rows[beat]["beat_i"], int)


# --- bad input -------------------------------------------------------------------------------------------------------


def test_missing_and_undecodable_files_name_the_file(tmp_path, click_track):
    with pytest.raises(AnimatorError, match="not found") as info:
        analyze(tmp_path / "missing.wav", FPS)
    assert info.value.file == str(tmp_path / "missing.wav")
    junk = tmp_path / "noise.mp3"
    junk.write_bytes(np.random.default_rng(3).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    with pytest.raises(AnimatorError, match="could not decode") as info:
        analyze(junk, FPS)
    assert info.value.file == str(junk)
    # A missing stem fails before any analysis, naming the stem and its file.
    with pytest.raises(AnimatorError, match="stem 'drums' not found") as info:
        analyze(click_track.path, FPS, stems={"drums": tmp_path / "drums.wav"})
    assert info.value.file == str(tmp_path / "drums.wav")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"fps": 0}, "fps"),
        ({"fps": float("inf")}, "fps"),
        ({"frames": 0}, "frames"),
        ({"frames": 2.5}, "frames"),
        ({"offset_s": -0.5}, "offset_s"),
        ({"offset_s": 99.0}, "offset_s"),
        ({"beat_decay_s": -1}, "beat_decay_s"),
        ({"bands": {"bass": (300, 100)}}, "bands.bass"),
        ({"bands": {"ultra": (12000, 15000)}}, "bands.ultra"),
        ({"bands": {"narrow": (100, 110)}}, "bands.narrow"),
        ({"bands": {"beat": (20, 100)}}, "bands.beat"),
        ({"bands": {"2bad": (20, 100)}}, "bands.2bad"),
        ({"bands": {"x": "low"}}, "bands.x"),
        ({"stems": {"drum kit": "a.wav"}}, "stems.drum kit"),
        ({"stems": {"drums": 3}}, "stems.drums"),
    ],
)
def test_bad_arguments_name_the_field(sine_files, kwargs, field):
    kwargs = {"fps": FPS, **kwargs}
    with pytest.raises(AnimatorError) as info:
        analyze(sine_files["low"], **kwargs)
    assert info.value.field == field


def test_stem_variables_may_not_collide(sine_files):
    # Stem "x" with a band "bass" defines x_bass; a band named "x_bass" would be ambiguous.
    with pytest.raises(AnimatorError, match="x_bass") as info:
        analyze(sine_files["low"], FPS, bands={"x_bass": (20, 100)}, stems={"x": sine_files["low"]})
    assert info.value.field == "stems.x"


def test_the_click_track_helper_is_what_the_tests_assume(tmp_path):
    # Guards the ground truth itself: hits at 0.5 s + k * 0.5 s, accents on hits 1, 5, 9 ...
    track = make_click_track(tmp_path / "c.wav", bpm=120.0, seconds=4.0)
    np.testing.assert_allclose(track.beat_times_s, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    np.testing.assert_allclose(track.accent_times_s, [1.0, 3.0])
    assert track.frames_of([0.5, 1.0]).tolist() == [12, 24]
    assert sine(60.0, 1.0).shape == (SR,)


# --- the cache of the librosa part ---------------------------------------------------------------------------------


def test_a_song_is_analysed_once_then_read_from_the_cache(click_track, tmp_path, monkeypatch):
    from animator.audio import beats

    monkeypatch.setenv("ANIMATOR_CACHE_DIR", str(tmp_path / "cache"))
    computed = []
    envelope = beats._onset_envelope

    def counting(samples, sr):
        computed.append(len(samples))
        return envelope(samples, sr)

    monkeypatch.setattr(beats, "_onset_envelope", counting)
    first = analyze(click_track.path, FPS)
    again = analyze(click_track.path, 12, offset_s=0.5)  # other frames: the cached part does not depend on them
    assert len(computed) == 1 and len(list((tmp_path / "cache" / "audio").glob("*.npz"))) == 1
    monkeypatch.setenv("ANIMATOR_CACHE_DIR", "off")
    fresh, fresh_again = analyze(click_track.path, FPS), analyze(click_track.path, 12, offset_s=0.5)
    assert len(computed) == 3  # off: computed every time
    for cached, computed_now in ((first, fresh), (again, fresh_again)):
        assert cached.bpm == computed_now.bpm
        np.testing.assert_array_equal(cached.beat_frames, computed_now.beat_frames)
        np.testing.assert_array_equal(cached.beat_times_s, computed_now.beat_times_s)
        for name, values in computed_now.variables.items():
            np.testing.assert_array_equal(cached.variables[name], values, err_msg=name)


def test_a_damaged_cache_entry_is_computed_again(click_track, tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMATOR_CACHE_DIR", str(tmp_path / "cache"))
    expected = analyze(click_track.path, FPS)
    (entry,) = (tmp_path / "cache" / "audio").glob("*.npz")
    entry.write_bytes(b"not an npz file")
    again = analyze(click_track.path, FPS)
    np.testing.assert_array_equal(again.beat_frames, expected.beat_frames)
    assert entry.stat().st_size > 100  # written again, whole


def test_a_cached_song_needs_no_librosa(click_track, tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom animator.audio import analyze\n"
        f"features = analyze({str(click_track.path)!r}, 24)\n"
        "print(features.bpm > 0, 'librosa' in sys.modules)"
    )
    env = {**os.environ, "ANIMATOR_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    # the first run imports librosa (and compiles its beat tracker); the second reads the cache only
    assert [run.stdout.split() for run in runs] == [["True", "True"], ["True", "False"]]
