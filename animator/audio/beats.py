"""Onsets, beats, tempo and bars of one signal: the part of the audio analysis (:mod:`animator.audio.features`)
that librosa does, with the checks that decide whether a beat grid is believed.

- :func:`onsets_and_beats`: librosa's log-mel spectral flux at analysis frames every :data:`HOP` samples, beats from
  ``librosa.beat.beat_track`` on it (kept only where the beats' onsets stand out, continued to the ends of the song
  while onsets keep the pulse) and the tempo refined from the beat times; cached per song (:mod:`animator.cache`).
- :func:`downbeat_phase`: which of every :data:`BEATS_PER_BAR` beats starts a bar.
"""

from __future__ import annotations

import numpy as np

HOP = 256  # samples between analysis frames (11.6 ms): beat times land well inside one video frame
N_FFT = 2048  # STFT window for the onset envelope (93 ms), librosa's standard for beat tracking
BEATS_PER_BAR = 4  # 4/4 assumed: pop, rock and electronic music, the usual material of music videos

# A beat grid is believed only where its beats' onsets stand out (see _track_beats). Measured here: a click track
# scores ~28x the median, a synthetic drum loop ~18x, white noise 1.3x; a steady sine's flux is ~0.07 dB.
_BEAT_SALIENCE = 1.5
_MIN_BEAT_ONSET = 0.25
# Beats the tracker trimmed at the ends come back where an onset of at least this fraction of the median onset
# at the beats keeps the pulse (see _extend_to_the_ends).
_END_BEAT_FRACTION = 0.25

# Downbeat phases whose score is within this fraction of the best count as ties; the earliest phase wins, so a
# perfectly even click track starts its bars on its first beat.
_DOWNBEAT_TIE = 0.05


def onsets_and_beats(samples: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(onset envelope, beat times in s, tempo): the part of the analysis librosa does, kept in the cache
    (:mod:`animator.cache`) under a hash of the samples and of everything else it depends on.

    Importing ``librosa.beat`` compiles its numba kernels every time (~6 s here, ~10 s with the rest of librosa),
    so without the cache every ``schedule``, ``validate`` and render of an audio-reactive file would wait that long
    for the same song; with it, a song is analysed once.
    """
    from importlib.metadata import version

    from animator import cache

    digest = cache.key(
        "onsets-and-beats-1",
        np.ascontiguousarray(samples, dtype=np.float32).tobytes(),
        sr,
        HOP,
        N_FFT,
        _BEAT_SALIENCE,
        _MIN_BEAT_ONSET,
        _END_BEAT_FRACTION,
        version("librosa"),
    )
    kept = cache.load("audio", digest)
    if kept is not None and {"onset", "beat_times_s", "tempo_bpm"} <= kept.keys():
        return kept["onset"], kept["beat_times_s"], float(kept["tempo_bpm"])
    onset = _onset_envelope(samples, sr)
    beat_times_s, tempo_bpm = _track_beats(onset, sr)
    cache.save("audio", digest, {"onset": onset, "beat_times_s": beat_times_s, "tempo_bpm": np.float64(tempo_bpm)})
    return onset, beat_times_s, tempo_bpm


def _onset_envelope(samples: np.ndarray, sr: int) -> np.ndarray:
    """Positive log-mel spectral flux (m,) at analysis frames ``j * HOP / sr``: librosa's standard onset strength."""
    import librosa

    if samples.shape[0] < N_FFT:
        samples = np.pad(samples, (0, N_FFT - samples.shape[0]))  # shorter than one window: pad with silence
    power = np.abs(librosa.stft(samples, n_fft=N_FFT, hop_length=HOP, center=True)) ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    # n_fft tells onset_strength how far to shift the flux back so that an onset lands on its own frame.
    return librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP, n_fft=N_FFT, center=True).astype(np.float64)


def _track_beats(onset: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Beat times (s) and tempo (BPM) from an onset envelope sampled every HOP samples; none without a beat.

    ``beat_track`` always returns a grid, even for a steady tone or white noise, so the grid is kept only when the
    onsets on its beats stand out: their median must be at least ``_BEAT_SALIENCE`` times the envelope's median
    and at least ``_MIN_BEAT_ONSET`` (dB of flux per mel band), and there must be two beats or more.
    """
    import librosa

    if not np.any(onset > 0):
        return np.zeros(0), 0.0
    tempo, beat_indices = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=HOP, units="frames")
    beat_indices = np.asarray(beat_indices, dtype=np.int64)
    if beat_indices.size < 2:
        return np.zeros(0), 0.0
    at_beats = np.array([onset[max(0, i - 2) : i + 3].max() for i in beat_indices])
    if np.median(at_beats) < max(_MIN_BEAT_ONSET, _BEAT_SALIENCE * np.median(onset)):
        return np.zeros(0), 0.0
    end_floor = max(_MIN_BEAT_ONSET, _END_BEAT_FRACTION * float(np.median(at_beats)))
    beat_indices = _extend_to_the_ends(beat_indices, onset, floor=end_floor)
    beat_times_s = (beat_indices * HOP / sr).astype(np.float64)  # librosa.frames_to_time
    tracker_bpm = float(np.atleast_1d(tempo)[0])
    return beat_times_s, _refine_tempo(beat_times_s, tracker_bpm)


def _extend_to_the_ends(beat_indices: np.ndarray, onset: np.ndarray, floor: float) -> np.ndarray:
    """Continue the beat grid before its first and after its last beat while real onsets keep the pulse.

    ``beat_track`` trims beats near the ends whose onsets are weaker than average (a song's first kick is often
    softer in log-mel flux than the snares); without this, beat 0 (``"0b"``) would fall on the second beat and the
    bar phase could slip. A beat is added one median period out, moved to the strongest onset within 2 analysis
    frames, and only if that onset reaches ``floor``.
    """
    period = float(np.median(np.diff(beat_indices)))
    reach = 2

    def strongest_near(centre: float) -> int | None:
        low, high = max(0, int(round(centre)) - reach), min(onset.size, int(round(centre)) + reach + 1)
        if low >= high:
            return None
        best = low + int(np.argmax(onset[low:high]))
        return best if onset[best] >= floor else None

    head, tail = [], []
    while (found := strongest_near((head[-1] if head else beat_indices[0]) - period)) is not None:
        if found >= (head[-1] if head else beat_indices[0]):  # no progress: stop rather than loop
            break
        head.append(found)
    while (found := strongest_near((tail[-1] if tail else beat_indices[-1]) + period)) is not None:
        if found <= (tail[-1] if tail else beat_indices[-1]):
            break
        tail.append(found)
    return np.concatenate([np.array(head[::-1], dtype=np.int64), beat_indices, np.array(tail, dtype=np.int64)])


def _refine_tempo(beat_times_s: np.ndarray, tracker_bpm: float) -> float:
    """Tempo from a straight-line fit of beat time against beat number.

    The tracker's own tempo is quantised to whole lags of the onset envelope (about 0.3 BPM steps near 120 BPM at
    HOP 256); the fit averages the beat positions instead. Gaps where the tracker skipped beats are counted in
    beats of the median interval, so one missed beat does not halve the tempo.
    """
    if beat_times_s.size < 4:
        return tracker_bpm
    intervals = np.diff(beat_times_s)
    median = float(np.median(intervals))
    if median <= 0:
        return tracker_bpm
    steps = np.maximum(1, np.round(intervals / median))
    beat_numbers = np.concatenate([[0.0], np.cumsum(steps)])
    seconds_per_beat = np.polyfit(beat_numbers, beat_times_s, 1)[0]
    return float(60.0 / seconds_per_beat) if seconds_per_beat > 0 else tracker_bpm


def downbeat_phase(beat_times_s: np.ndarray, times_s: np.ndarray, onset: np.ndarray, bass: np.ndarray | None) -> int:
    """Which of every ``BEATS_PER_BAR`` beats starts a bar.

    Heuristic: score each phase by the mean, over its beats, of the bass energy near the beat plus half the onset
    strength (each scaled to a peak of 1), because the kick drum marks the one in most pop and electronic music;
    onsets decide when every beat has the same kick. Near-ties go to the earliest phase. With a kick on 1 and 3,
    phases 1 and 3 tie and the bars can start on beat 3; a real downbeat model would need trained weights.
    """
    if beat_times_s.size < BEATS_PER_BAR:
        return 0
    # Look within ~23 ms of each beat (the tracker's beat can sit a frame off the peak). Bass counts by the energy
    # summed over that span, which does not depend on where a kick falls relative to the analysis frames.
    reach = 2
    nearest = np.clip(np.searchsorted(times_s, beat_times_s), 0, onset.size - 1)
    spans = [slice(max(0, i - reach), i + reach + 1) for i in nearest]
    accent = 0.5 * _unit_peak(np.array([onset[span].max() for span in spans]))
    if bass is not None:
        accent = accent + _unit_peak(np.sqrt(np.array([(bass[span] ** 2).sum() for span in spans])))
    scores = np.array([accent[phase::BEATS_PER_BAR].mean() for phase in range(BEATS_PER_BAR)])
    return int(np.flatnonzero(scores >= scores.max() * (1 - _DOWNBEAT_TIE))[0])


def _unit_peak(values: np.ndarray) -> np.ndarray:
    peak = values.max() if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)
