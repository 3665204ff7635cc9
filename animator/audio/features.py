"""Per-frame audio features for music videos: loudness, onsets, beats, bars, tempo and band energies.

The pipeline, for the mix and for every stem:

1. decode to mono at 22.05 kHz with ffmpeg (:mod:`animator.audio.decode`);
2. output frame ``i`` covers the audio ``[offset + i/fps, offset + (i+1)/fps)``; loudness and band energies are
   the RMS of exactly those samples (bands through causal Butterworth filters), so a sound never leaks into the
   frame before it;
3. onset strength is librosa's log-mel spectral flux (2048-sample window, hop 256 = 11.6 ms, about four analysis
   frames per output frame at 24 fps), pooled into each output frame by its maximum;
4. beats come from ``librosa.beat.beat_track`` on that onset envelope; the tempo is refined from the beat times.

Values are normalised over the animation's frames (``offset_s`` to ``offset_s + frames / fps``), so ``1.0`` is the
loudest moment of the animation; rendering only a range of its frames does not change them (the keyframe evaluator
analyses the whole animation and then picks the range).
"""

from __future__ import annotations

import keyword
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.audio.beats import BEATS_PER_BAR, HOP, downbeat_phase, onsets_and_beats
from animator.audio.decode import _check_readable, load_audio
from animator.errors import AnimatorError

ANALYSIS_SR = 22050  # Hz; librosa's default, enough for band edges up to 11 kHz
# How far an animation may run past the end of its audio (every variable is 0 there). Bounds the work and memory a
# typo can ask for (--frames 100000000 with a 3-minute song: ~9 GB of arrays); see docs/limits.md.
MAX_SECONDS_PAST_AUDIO = 600.0
MAX_FPS = 1000.0  # as a keyframe file's fps: a typo like --fps 1e9 would ask for a billion frames a second

# Band edges in Hz. An upper edge at or above the analysis Nyquist frequency (11025 Hz) leaves the band open above.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "bass": (20.0, 250.0),
    "mid": (250.0, 4000.0),
    "high": (4000.0, 20000.0),
}

# Each band is normalised by its own peak so that a quiet band (the highs of most songs are 20-30 dB below the bass)
# still spans 0..1 — but never by a peak more than this far below the loudest band's, or the leakage of a band that
# is essentially empty would be blown up to 1.
BAND_FLOOR_DB = 40.0

_BAND_ORDER = 8
_MIN_BAND_RATIO = 1.25  # a major third: narrowest band whose filter still settles within a frame or two

CORE_VARIABLES = ("rms", "onset", "beat", "beat_i", "bar", "bpm")
_COUNT_NAMES = ("beat_i", "bar")  # integer-valued variables
STEM_VARIABLES = CORE_VARIABLES  # each stem gets its own copy of every variable, prefixed "<stem>_"


@dataclass(frozen=True, eq=False)
class AudioFeatures:
    """Audio features of a song sampled at an animation's frames.

    Every array is read-only. ``variables`` maps a name usable in schedule expressions to its per-frame values,
    shape ``(frames,)`` float64:

    - ``rms``: loudness (root mean square of the samples in the frame), normalised so the loudest frame is 1.
    - ``onset``: onset strength (positive log-mel spectral flux, the frame's strongest), normalised to 0..1.
    - ``beat``: 1 on a frame holding a beat, then falling linearly to 0 over ``beat_decay_s`` seconds.
    - ``beat_i``: beats so far: 0 before the first beat, 1 from the frame of the first beat on, ...
    - ``bar``: bars so far: how many downbeats fell on or before the frame (0 before the first downbeat).
    - ``bpm``: the tempo, constant.
    - one per band (``bass``, ``mid``, ``high`` by default): RMS of the band-passed signal, each band scaled to
      its own loudest frame (so the highs span 0..1 too), except that a band more than ``BAND_FLOOR_DB`` below
      the loudest band stays near 0.
    - per stem the same, prefixed: ``<stem>_rms``, ``<stem>_onset``, ``<stem>_beat``, ``<stem>_beat_i``,
      ``<stem>_bar``, ``<stem>_bpm`` (from the stem's own beats) and ``<stem>_<band>``.

    Frames that start after the audio ends get 0 everywhere except ``beat_i``, ``bar`` and ``bpm`` (see ``notes``).
    """

    fps: float  # frames per second of the animation
    frames: int  # number of output frames described
    duration_s: float  # length of the whole audio file in seconds
    bpm: float  # tempo in beats per minute (0.0 when no beats were found)
    beat_frames: np.ndarray  # (n_beats,) int64: frame of each beat inside the animation, ascending
    downbeat_frames: np.ndarray  # (n_bars,) int64: frames of the beats that start a bar
    beat_times_s: np.ndarray  # (n_beats,) float64: time of each beat in seconds from frame 0 (audio time - offset_s)
    variables: dict[str, np.ndarray]  # name -> (frames,) float64
    offset_s: float = 0.0  # audio time (s) at which frame 0 starts
    path: str | None = None  # the analysed mix
    stems: tuple[str, ...] = ()  # stem names, in the order given
    bands: tuple[str, ...] = ()  # band names (variables of the mix; "<stem>_<band>" for stems)
    notes: tuple[str, ...] = ()  # one-line remarks for the user (frames past the end of the audio, no beats found)

    @property
    def variable_names(self) -> tuple[str, ...]:
        """Names of all per-frame variables, in table order."""
        return tuple(self.variables)

    def to_table(self) -> list[dict[str, float | int]]:
        """One row per frame: ``{"frame": i, "time_s": i / fps, <variable>: value, ...}`` for csv and json output.

        ``beat_i`` and ``bar`` are ints; other values are floats rounded to 6 decimals.
        """
        counts = {prefix + name for prefix in ("", *(f"{stem}_" for stem in self.stems)) for name in _COUNT_NAMES}
        columns = {name: values.tolist() for name, values in self.variables.items()}
        rows = []
        for i in range(self.frames):
            row: dict[str, float | int] = {"frame": i, "time_s": round(i / self.fps, 6)}
            for name, values in columns.items():
                value = values[i]
                row[name] = int(value) if name in counts else round(value, 6)
            rows.append(row)
        return rows


def beat_to_frame(features: AudioFeatures, beat_number: float) -> int:
    """Frame at which beat ``beat_number`` falls, for keyframe times such as ``"16b"``.

    Beats are numbered from 0: beat 0 is the first beat at or after frame 0, so with a song that starts on a
    downbeat ``"0b"``, ``"4b"``, ``"8b"`` are the starts of bars 1, 2, 3. Fractional beats interpolate linearly
    between detected beats; beats beyond the detected ones extrapolate at the tempo. The result may lie past the
    last frame (the caller decides whether that is an error).

    Raises:
        AnimatorError: negative or non-finite ``beat_number``, or no beats in the audio.
    """
    if not isinstance(features, AudioFeatures):
        raise AnimatorError(f"expected AudioFeatures, got {type(features).__name__}", field="features")
    if (
        isinstance(beat_number, bool)
        or not isinstance(beat_number, (int, float, np.integer, np.floating))
        or not math.isfinite(beat_number)
        or beat_number < 0
    ):
        raise AnimatorError(f"a beat number must be a finite number >= 0, got {beat_number!r}", field="beat_number")
    times = features.beat_times_s
    if times.size == 0 or features.bpm <= 0:
        raise AnimatorError(
            f"cannot place beat {beat_number:g}: no beats were found in the audio",
            file=features.path,
            hint="give keyframe times in frames or seconds (e.g. '12.5s') for audio without a steady beat",
        )
    seconds_per_beat = 60.0 / features.bpm
    last = times.size - 1
    if beat_number <= last:
        time_s = float(np.interp(beat_number, np.arange(times.size), times))
    else:
        time_s = float(times[last] + (beat_number - last) * seconds_per_beat)
    return _frame_of(time_s, features.fps)


def _frame_of(time_s: float | np.ndarray, fps: float):
    # A tiny epsilon keeps a time that is exactly on a frame boundary (up to float error) in the later frame.
    frame = np.floor(np.asarray(time_s) * fps + 1e-9).astype(np.int64)
    return int(frame) if frame.ndim == 0 else frame


# --------------------------------------------------------------------------------------------------------------------
# the output frames


@dataclass(frozen=True)
class _FrameGrid:
    """The output frames: frame ``i`` covers audio time ``[offset_s + i / fps, offset_s + (i + 1) / fps)``."""

    fps: float
    frames: int
    offset_s: float

    def index_of(self, times_s: np.ndarray) -> np.ndarray:
        """Output frame holding each audio time (may be < 0 or >= frames)."""
        return _frame_of(np.asarray(times_s) - self.offset_s, self.fps)

    def contains(self, times_s: np.ndarray) -> np.ndarray:
        index = self.index_of(times_s)
        return (index >= 0) & (index < self.frames)

    def starts_s(self) -> np.ndarray:
        return self.offset_s + np.arange(self.frames) / self.fps

    def sample_bounds(self, sr: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """First and one-past-last sample of each frame, clipped to the signal: two (frames,) int arrays."""
        edges = np.round((self.offset_s + np.arange(self.frames + 1) / self.fps) * sr).astype(np.int64)
        edges = np.clip(edges, 0, n_samples)
        return edges[:-1], edges[1:]


def _frame_rms(signal: np.ndarray, grid: _FrameGrid, sr: int) -> np.ndarray:
    """Root mean square of the samples inside each output frame (frames,); 0 for frames past the end."""
    # Exact frame boundaries (a cumulative sum, not windows): energy never leaks into the frame before a sound.
    squares = np.concatenate([[0.0], np.cumsum(np.asarray(signal, dtype=np.float64) ** 2)])
    start, stop = grid.sample_bounds(sr, signal.shape[0])
    count = stop - start
    mean_square = np.where(count > 0, (squares[stop] - squares[start]) / np.maximum(count, 1), 0.0)
    return np.sqrt(np.maximum(mean_square, 0.0))


def _band_pass(samples: np.ndarray, sr: int, low_hz: float, high_hz: float) -> np.ndarray:
    """8th-order Butterworth band-pass (low- or high-pass when an edge is open) of ``samples`` (n,).

    8th order (48 dB per octave) so a tone two octaves outside a band is ~100 dB down: with each band scaled to
    its own peak, weaker skirts would show a loud bass line as activity in ``mid``.

    Causal, starting from silence: a sound never shows up in a band before it starts (a zero-phase filter would
    ring backwards into the previous frame). The price is a delay: 90% of the bass band's impulse response is out
    within 14 ms, a third of a frame at 24 fps.
    """
    from scipy.signal import butter, sosfilt

    nyquist = sr / 2
    if low_hz <= 0 and high_hz >= nyquist:
        return samples
    if low_hz <= 0:
        sos = butter(_BAND_ORDER, high_hz, btype="lowpass", fs=sr, output="sos")
    elif high_hz >= nyquist:
        sos = butter(_BAND_ORDER, low_hz, btype="highpass", fs=sr, output="sos")
    else:
        sos = butter(_BAND_ORDER, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, samples.astype(np.float64))


# --------------------------------------------------------------------------------------------------------------------
# analysis of one signal


@dataclass(frozen=True)
class _SignalAnalysis:
    """Raw (unnormalised) features of one signal: per output frame, plus its beats."""

    duration_s: float
    rms: np.ndarray  # (frames,) sample RMS within each frame
    onset: np.ndarray  # (frames,) strongest onset strength within each frame
    bands: dict[str, np.ndarray]  # name -> (frames,) RMS of the band-passed signal within each frame
    beat_times_s: np.ndarray  # (n,) seconds from the start of the file, the whole file
    tempo_bpm: float  # 0.0 when there are no beats
    downbeat_phase: int  # beats phase, phase + 4, ... start bars


def _analyze_signal(
    samples: np.ndarray, sr: int, grid: _FrameGrid, bands: Mapping[str, tuple[float, float]]
) -> _SignalAnalysis:
    duration_s = samples.shape[0] / sr
    onset_curve, beat_times_s, tempo_bpm = onsets_and_beats(samples, sr)  # onset curve: (m,) at analysis frames
    curve_times_s = np.arange(onset_curve.shape[0]) * HOP / sr  # librosa.frames_to_time

    band_rms = {}
    bass_curve = None
    for name, (low, high) in bands.items():
        filtered = _band_pass(samples, sr, low, high)
        band_rms[name] = _frame_rms(filtered, grid, sr)
        if name == "bass":
            bass_curve = _block_rms(filtered, HOP, onset_curve.shape[0])
        del filtered

    return _SignalAnalysis(
        duration_s=duration_s,
        rms=_frame_rms(samples, grid, sr),
        onset=_pool_max(onset_curve, curve_times_s, grid, duration_s),
        bands=band_rms,
        beat_times_s=beat_times_s,
        tempo_bpm=tempo_bpm,
        downbeat_phase=downbeat_phase(beat_times_s, curve_times_s, onset_curve, bass_curve),
    )


def _block_rms(signal: np.ndarray, block: int, length: int) -> np.ndarray:
    """RMS of consecutive centred blocks of ``block`` samples, one per analysis frame (length,)."""
    padded = np.pad(np.asarray(signal, dtype=np.float64), (block // 2, block * (length + 1)))
    blocks = padded[: block * length].reshape(length, block)
    return np.sqrt((blocks**2).mean(axis=1))


def _pool_max(curve: np.ndarray, times_s: np.ndarray, grid: _FrameGrid, duration_s: float) -> np.ndarray:
    """Largest value of ``curve`` (m,) sampled at ``times_s`` within each output frame (frames,).

    A frame that holds no analysis frame (fps above the analysis rate of ~86 per second) takes the curve's value
    at its centre; frames that start after the audio ends get 0.
    """
    index = grid.index_of(times_s)
    inside = (index >= 0) & (index < grid.frames)
    pooled = np.full(grid.frames, -np.inf)
    np.maximum.at(pooled, index[inside], curve[inside])
    empty = ~np.isfinite(pooled)
    if empty.any():
        centres_s = grid.starts_s()[empty] + 0.5 / grid.fps
        pooled[empty] = np.interp(centres_s, times_s, curve)
    pooled[grid.starts_s() >= duration_s] = 0.0
    return pooled


# --------------------------------------------------------------------------------------------------------------------
# per-frame variables


def _normalise(values: np.ndarray, scale: float) -> np.ndarray:
    return values / scale if scale > 0 else np.zeros_like(values)


def _beat_grid(analysis: _SignalAnalysis, grid: _FrameGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beats inside the animation: their audio times (s), their frames, and the frames of those that start a bar.

    Beats are counted from the first beat of the whole file, so bar starts do not move with the offset.
    """
    in_window = grid.contains(analysis.beat_times_s)
    beat_times_s = analysis.beat_times_s[in_window]
    beat_frames = grid.index_of(beat_times_s)
    is_downbeat = (np.arange(analysis.beat_times_s.size) % BEATS_PER_BAR == analysis.downbeat_phase)[in_window]
    return beat_times_s, beat_frames, beat_frames[is_downbeat]


def _frame_variables(
    analysis: _SignalAnalysis,
    grid: _FrameGrid,
    beat_frames: np.ndarray,
    downbeat_frames: np.ndarray,
    bpm: float,
    beat_decay_s: float,
) -> dict[str, np.ndarray]:
    """The variables of one signal, per output frame: CORE_VARIABLES, then one per band (all but the counts and
    bpm in 0..1)."""
    past_end = grid.starts_s() >= analysis.duration_s
    variables = {
        "rms": _normalise(analysis.rms, analysis.rms.max()),
        "onset": _normalise(analysis.onset, analysis.onset.max()),
        "beat": np.where(past_end, 0.0, _beat_envelope(beat_frames, grid, beat_decay_s)),
        "beat_i": _count_so_far(beat_frames, grid.frames),
        "bar": _count_so_far(downbeat_frames, grid.frames),
        "bpm": np.full(grid.frames, float(bpm)),
    }
    loudest = max((amplitude.max() for amplitude in analysis.bands.values()), default=0.0)
    floor = loudest * 10 ** (-BAND_FLOOR_DB / 20)
    for name, amplitude in analysis.bands.items():
        variables[name] = _normalise(amplitude, max(amplitude.max(), floor))
    return variables


def _beat_envelope(beat_frames: np.ndarray, grid: _FrameGrid, decay_s: float) -> np.ndarray:
    """1 on each beat frame, falling linearly to 0 over ``decay_s`` seconds (0: a one-frame pulse)."""
    if beat_frames.size == 0:
        return np.zeros(grid.frames)
    frame_numbers = np.arange(grid.frames)
    last_beat = np.searchsorted(beat_frames, frame_numbers, side="right") - 1
    since_s = (frame_numbers - beat_frames[np.maximum(last_beat, 0)]) / grid.fps
    if decay_s > 0:
        envelope = np.clip(1.0 - since_s / decay_s, 0.0, 1.0)
    else:
        envelope = (since_s == 0).astype(np.float64)
    return np.where(last_beat >= 0, envelope, 0.0)


def _count_so_far(event_frames: np.ndarray, frames: int) -> np.ndarray:
    """How many of ``event_frames`` fall on or before each frame, as float64 (frames,)."""
    return np.searchsorted(event_frames, np.arange(frames), side="right").astype(np.float64)


# --------------------------------------------------------------------------------------------------------------------
# the public entry point


def analyze(
    path: str | os.PathLike,
    fps: float,
    *,
    frames: int | None = None,
    offset_s: float = 0.0,
    bands: Mapping[str, tuple[float, float]] | None = None,
    beat_decay_s: float = 0.25,
    stems: Mapping[str, str | os.PathLike] | None = None,
) -> AudioFeatures:
    """Analyse a song (and optional stems) into per-frame variables for schedule expressions.

    Args:
        path: the mix: any file ffmpeg decodes (wav, mp3, flac, m4a, a video with sound).
        fps: frames per second of the animation.
        frames: number of output frames; ``None``: as many as the audio lasts after ``offset_s`` (rounded up).
        offset_s: audio time in seconds at which frame 0 starts (to set an animation to part of a song).
        bands: extra or changed frequency bands, ``name -> (low_hz, high_hz)``, merged into
            :data:`DEFAULT_BANDS` (bass 20-250, mid 250-4000, high 4000+ Hz); edges at or above 11025 Hz (the
            analysis Nyquist frequency) mean "no upper limit", a low edge of 0 "no lower limit".
        beat_decay_s: seconds over which ``beat`` falls from 1 to 0 after each beat (0: only the beat frame is 1).
        stems: ``name -> file`` of separated stems (drums, bass, vocals ...), each analysed like the mix into
            ``<name>_rms``, ``<name>_onset``, ``<name>_beat``, ``<name>_beat_i``, ``<name>_bar``, ``<name>_bpm``
            (from the stem's own beats) and ``<name>_<band>``.

    Returns:
        :class:`AudioFeatures` whose ``variables`` are ``(frames,)`` float64 arrays. Loudness and band energies
        are computed over each frame's exact samples; band energy is the RMS of the signal through a causal
        8th-order Butterworth band-pass. The beat grid (``beat``, ``beat_i``, ``bar``, ``bpm``) comes from the
        whole mix, so tempo and bar phase do not depend on ``offset_s`` or ``frames``. Downbeats are every 4th
        beat, from the phase with the strongest accents (bass energy, then onsets; see
        :func:`animator.audio.beats.downbeat_phase`).

    Raises:
        AnimatorError: a file is missing or undecodable, an argument is out of range, or a band or stem name is not
            a valid variable name or collides with another variable.

    Example:
        >>> features = analyze("song.mp3", fps=24, stems={"drums": "drums.wav"})  # doctest: +SKIP
        >>> features.bpm, features.variables["bass"].shape  # doctest: +SKIP
        (120.1, (4320,))
    """
    fps = _check_fps(fps)
    offset_s = _check_seconds(offset_s, "offset_s")
    beat_decay_s = _check_seconds(beat_decay_s, "beat_decay_s")
    band_edges = _check_bands(bands)
    stem_paths = _check_stems(stems, band_edges)
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1):
        raise AnimatorError(f"frames must be a positive integer or None, got {frames!r}", field="frames")

    samples, sr = load_audio(path, sr=ANALYSIS_SR)
    if samples.size == 0:
        raise AnimatorError("the audio file holds no samples", file=path, hint="check that the file is not empty")
    duration_s = samples.shape[0] / sr
    if offset_s >= duration_s:
        raise AnimatorError(
            f"the audio offset {offset_s:g} s lies at or past the end of the audio ({duration_s:.3f} s)",
            file=path,
            field="offset_s",
            hint="use an offset inside the song",
        )
    if frames is None:
        # The epsilon keeps an exact fit (10.0 s at 24 fps) at 240 frames despite float error.
        frames = max(1, math.ceil((duration_s - offset_s) * fps - 1e-6))
    audio_frames = math.ceil((duration_s - offset_s) * fps - 1e-6)
    if frames > audio_frames + MAX_SECONDS_PAST_AUDIO * fps:
        raise AnimatorError(
            f"{frames} frames at {fps:g} fps last {frames / fps:,.0f} s, but the audio after the offset lasts "
            f"{duration_s - offset_s:.1f} s ({audio_frames} frames); an animation may run at most "
            f"{MAX_SECONDS_PAST_AUDIO:g} s past the end of its audio",
            file=path,
            field="frames",
            hint=f"use at most {audio_frames + int(MAX_SECONDS_PAST_AUDIO * fps)} frames, or a longer audio file",
        )
    grid = _FrameGrid(fps=fps, frames=int(frames), offset_s=offset_s)
    mix = _analyze_signal(samples, sr, grid, band_edges)
    del samples

    beat_times_s, beat_frames, downbeat_frames = _beat_grid(mix, grid)
    bpm = mix.tempo_bpm if mix.beat_times_s.size else 0.0
    variables = _frame_variables(mix, grid, beat_frames, downbeat_frames, bpm, beat_decay_s)
    notes = _notes(mix.duration_s, grid, beat_frames.size, label=None)
    for name, stem_path in stem_paths.items():
        stem_samples, _ = load_audio(stem_path, sr=ANALYSIS_SR, what=f"stem '{name}'")
        stem = _analyze_signal(stem_samples, sr, grid, band_edges)
        del stem_samples
        _, stem_beats, stem_downbeats = _beat_grid(stem, grid)
        stem_bpm = stem.tempo_bpm if stem.beat_times_s.size else 0.0
        for key, values in _frame_variables(stem, grid, stem_beats, stem_downbeats, stem_bpm, beat_decay_s).items():
            variables[f"{name}_{key}"] = values
        notes += _notes(stem.duration_s, grid, stem_beats.size, label=f"stem '{name}'")

    return AudioFeatures(
        fps=fps,
        frames=grid.frames,
        duration_s=mix.duration_s,
        bpm=float(bpm),
        beat_frames=_read_only(beat_frames.astype(np.int64)),
        downbeat_frames=_read_only(downbeat_frames.astype(np.int64)),
        beat_times_s=_read_only(beat_times_s - offset_s),
        variables={name: _read_only(values.astype(np.float64)) for name, values in variables.items()},
        offset_s=offset_s,
        path=os.fspath(path),
        stems=tuple(stem_paths),
        bands=tuple(band_edges),
        notes=tuple(notes),
    )


def _notes(duration_s: float, grid: _FrameGrid, beats_in_window: int, label: str | None) -> list[str]:
    what = label or "the audio"
    notes = []
    past_end = np.flatnonzero(grid.starts_s() >= duration_s)
    if past_end.size:
        notes.append(
            f"frames {past_end[0]}..{grid.frames - 1} start after {what} ends ({duration_s:.2f} s): "
            f"its variables are 0 there (beat_i, bar and bpm keep their values)"
        )
    if beats_in_window == 0:
        notes.append(f"no beats found in {what} within the animation's frames")
    return notes


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


# --------------------------------------------------------------------------------------------------------------------
# argument checks


def _check_fps(fps: float) -> float:
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, np.integer, np.floating))
        or not math.isfinite(fps)
        or not 0 < fps <= MAX_FPS
    ):
        raise AnimatorError(f"fps must be a number in (0, {MAX_FPS:g}], got {fps!r}", field="fps")
    return float(fps)


def _check_seconds(value: float, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < 0
    ):
        raise AnimatorError(f"{name} must be a number of seconds >= 0, got {value!r}", field=name)
    return float(value)


def _check_variable_name(name: object, field_name: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise AnimatorError(
            f"{name!r} cannot be used as a variable name in expressions",
            field=field_name,
            hint="use letters, digits and underscores, starting with a letter (e.g. 'sub_bass')",
        )
    return name


def _check_bands(bands: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    merged = dict(DEFAULT_BANDS)
    if bands is None:
        return merged
    if not isinstance(bands, Mapping):
        raise AnimatorError(f"bands must map a name to (low_hz, high_hz), got {type(bands).__name__}", field="bands")
    nyquist = ANALYSIS_SR / 2
    for name, edges in bands.items():
        _check_variable_name(name, f"bands.{name}")
        if name in CORE_VARIABLES:
            raise AnimatorError(
                f"band name {name!r} is taken by a built-in audio variable",
                field=f"bands.{name}",
                hint=f"pick another name; built-in names: {', '.join(CORE_VARIABLES)}",
            )
        try:
            low, high = (float(edge) for edge in edges)
        except (TypeError, ValueError):
            raise AnimatorError(
                f"expected two frequencies [low_hz, high_hz], got {edges!r}", field=f"bands.{name}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high <= low:
            raise AnimatorError(
                f"band edges must satisfy 0 <= low < high (Hz), got [{low:g}, {high:g}]", field=f"bands.{name}"
            )
        if low >= nyquist:
            raise AnimatorError(
                f"band [{low:g}, {high:g}] Hz starts above the highest frequency the analysis sees ({nyquist:g} Hz)",
                field=f"bands.{name}",
                hint=f"use a low edge below {nyquist:g} Hz",
            )
        if high < nyquist and high / max(low, 1e-9) < _MIN_BAND_RATIO:
            # Narrower Butterworth band-passes ring for seconds and smear energy across many frames.
            raise AnimatorError(
                f"band [{low:g}, {high:g}] Hz is too narrow: the upper edge must be at least "
                f"{_MIN_BAND_RATIO:g} x the lower",
                field=f"bands.{name}",
                hint="widen the band",
            )
        merged[name] = (low, high)
    return merged


def _check_stems(stems: Mapping[str, str | os.PathLike] | None, bands: Mapping[str, object]) -> dict[str, Path]:
    if stems is None:
        return {}
    if not isinstance(stems, Mapping):
        raise AnimatorError(f"stems must map a name to a file, got {type(stems).__name__}", field="stems")
    taken = set(CORE_VARIABLES) | set(bands)
    result: dict[str, Path] = {}
    for name, stem_path in stems.items():
        _check_variable_name(name, f"stems.{name}")
        if not isinstance(stem_path, (str, os.PathLike)):
            raise AnimatorError(f"expected a file path, got {stem_path!r}", field=f"stems.{name}")
        new_names = {f"{name}_{key}" for key in (*STEM_VARIABLES, *bands)}
        clash = sorted(new_names & taken)
        if clash:
            raise AnimatorError(
                f"stem {name!r} would define {clash[0]!r}, which another variable already uses",
                field=f"stems.{name}",
                hint="rename the stem",
            )
        taken |= new_names
        result[name] = _check_readable(stem_path, f"stem '{name}'")
    return result
