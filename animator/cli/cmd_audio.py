"""``animator audio analyze SONG``: per-frame audio features and the beat grid, to write schedule expressions."""

from __future__ import annotations

import click


@click.group("audio")
def command() -> None:
    """Audio analysis for music videos (beats, loudness, bands)."""


def _parse_pairs(values: tuple[str, ...], option: str, example: str) -> dict[str, str]:
    from animator.errors import AnimatorError

    pairs: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise AnimatorError(f"expected NAME=VALUE, got {text!r}", field=option, hint=f"e.g. {option} {example}")
        pairs[name.strip()] = value.strip()
    return pairs


def _parse_bands(values: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    from animator.errors import AnimatorError

    bands = {}
    for name, edges in _parse_pairs(values, "--band", "sub=20:60").items():
        low, sep, high = edges.partition(":")
        try:
            bands[name] = (float(low), float(high))
        except ValueError:
            raise AnimatorError(
                f"expected NAME=LOW:HIGH in Hz, got {name}={edges}", field="--band", hint="e.g. --band sub=20:60"
            ) from None
    return bands


def _parse_size(text: str) -> tuple[int, int]:
    from animator.errors import AnimatorError

    width, sep, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise AnimatorError(
            f"expected WIDTHxHEIGHT in pixels, got {text!r}", field="--plot-size", hint="e.g. --plot-size 1600x900"
        ) from None


@command.command("analyze")
@click.argument("song", type=click.Path(dir_okay=False))
@click.option("--fps", type=float, default=24.0, show_default=True, help="Frames per second of the animation.")
@click.option("--frames", type=int, default=None, help="Number of frames (default: the length of the audio).")
@click.option(
    "--offset",
    "offset_s",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Audio time at which frame 0 starts.",
)
@click.option(
    "--beat-decay",
    "beat_decay_s",
    type=float,
    default=0.25,
    show_default=True,
    metavar="SECONDS",
    help="How long `beat` takes to fall from 1 to 0 after each beat.",
)
@click.option(
    "--stem",
    "--stems",
    "stems",
    multiple=True,
    metavar="NAME=PATH",
    help="A separated stem, e.g. --stem drums=drums.wav (repeat for more); adds NAME_rms, NAME_beat, ...",
)
@click.option(
    "--band",
    "bands",
    multiple=True,
    metavar="NAME=LOW:HIGH",
    help="Add or change a frequency band in Hz, e.g. --band sub=20:60 (defaults: bass 20:250, mid 250:4000, "
    "high 4000:20000).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help='csv: one row per frame. json: {"bpm", "beat_frames", "downbeat_frames", "beat_times_s", '
    '"variables": [names], "rows": [{"frame", "time_s", <variable>...}], ...}.',
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Also write an image (png, svg, pdf) of the curves with the beats marked.",
)
@click.option("--plot-size", default="1600x900", show_default=True, metavar="WxH", help="Plot size in pixels.")
def analyze_command(
    song: str,
    fps: float,
    frames: int | None,
    offset_s: float,
    beat_decay_s: float,
    stems: tuple[str, ...],
    bands: tuple[str, ...],
    fmt: str,
    plot: str | None,
    plot_size: str,
) -> None:
    """Show the per-frame audio variables of SONG and its beat grid.

    \b
    The variables are what schedule expressions see when a keyframe file names this audio:
      rms, onset, bass, mid, high   0..1 (loudness, onset strength, band energy)
      beat                          1 on a beat frame, falling to 0 over --beat-decay seconds
      beat_i, bar                   beats and bars so far;  bpm: the tempo
    e.g.  strength: "0:(0.65 - 0.2*beat)"   translation_z: "0:(1 + 6*bass)"
    """
    from animator.audio import analyze

    width, height = _parse_size(plot_size)  # before the analysis, so a typo fails fast
    if plot:
        from animator.cli import check_plot_path

        check_plot_path(plot)
    features = analyze(
        song,
        fps,
        frames=frames,
        offset_s=offset_s,
        bands=_parse_bands(bands) or None,
        beat_decay_s=beat_decay_s,
        stems=_parse_pairs(stems, "--stem", "drums=drums.wav") or None,
    )
    if fmt == "json":
        _echo_json(features)
    elif fmt == "csv":
        _echo_csv(features)
    else:
        _echo_table(features)
    for note in features.notes:
        click.echo(f"note: {note}", err=True)
    if plot:
        from animator.audio.plot import plot_features

        plot_features(features, plot, width_px=width, height_px=height)
        click.echo(f"wrote {plot}", err=True)


def _echo_json(features) -> None:
    import json

    click.echo(
        json.dumps(
            {
                "path": features.path,
                "fps": features.fps,
                "frames": features.frames,
                "offset_s": features.offset_s,
                "duration_s": round(features.duration_s, 6),
                "bpm": round(features.bpm, 3),
                "beat_frames": features.beat_frames.tolist(),
                "downbeat_frames": features.downbeat_frames.tolist(),
                "beat_times_s": [round(t, 6) for t in features.beat_times_s.tolist()],
                "stems": list(features.stems),
                "variables": list(features.variable_names),
                "notes": list(features.notes),
                "rows": features.to_table(),
            }
        )
    )


def _echo_csv(features) -> None:
    import csv
    import io

    rows = features.to_table()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["frame", "time_s", *features.variable_names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    click.echo(buffer.getvalue(), nl=False)


def _echo_table(features) -> None:
    beats = features.beat_frames.tolist()
    start = f" from {features.offset_s:g} s" if features.offset_s else ""
    click.echo(
        f"{features.path}: {features.duration_s:.2f} s of audio, "
        f"{features.frames} frames at {features.fps:g} fps{start}"
    )
    click.echo(
        f"tempo: {features.bpm:.2f} BPM ({60 / features.bpm * features.fps:.2f} frames per beat)"
        if features.bpm > 0
        else "tempo: no beats found"
    )
    click.echo(f"beat frames ({len(beats)}): {' '.join(map(str, beats))}")
    click.echo(
        f"downbeat frames ({features.downbeat_frames.size}): {' '.join(map(str, features.downbeat_frames.tolist()))}"
    )
    click.echo("")
    names = list(features.variable_names)
    header = ["frame", "time_s", *names]
    widths = [max(6, len(h)) for h in header]
    click.echo("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in features.to_table():
        cells = [str(row["frame"]), f"{row['time_s']:.3f}"]
        cells += [str(row[n]) if isinstance(row[n], int) else f"{row[n]:.3f}" for n in names]
        click.echo("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
