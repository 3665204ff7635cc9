"""`animator audio analyze` through click's CliRunner: table, csv and json output, the plot, and errors."""

from __future__ import annotations

import csv
import io
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from animator.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, ["audio", "analyze", *args], catch_exceptions=False)


def _png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_json_has_the_beat_grid_and_one_row_per_frame_and_plot_has_its_size(click_track, tmp_path):
    plot = tmp_path / "features.png"
    result = _run(
        str(click_track.path),
        "--fps",
        "24",
        "--frames",
        "120",
        "--format",
        "json",
        "--plot",
        str(plot),
        "--plot-size",
        "800x600",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["frames"] == 120 and data["fps"] == 24.0 and abs(data["bpm"] - 120) < 1
    truth = click_track.frames_of(click_track.beat_times_s)
    truth = truth[truth < 120]
    assert len(data["beat_frames"]) == truth.size and np.abs(np.array(data["beat_frames"]) - truth).max() <= 1
    assert len(data["beat_times_s"]) == truth.size and len(data["downbeat_frames"]) >= 1
    assert len(data["rows"]) == 120
    assert list(data["rows"][0]) == ["frame", "time_s", *data["variables"]]
    assert {"rms", "onset", "beat", "beat_i", "bar", "bpm", "bass", "mid", "high"} <= set(data["variables"])
    assert [row["frame"] for row in data["rows"]] == list(range(120))
    assert data["rows"][data["beat_frames"][0]]["beat"] == 1.0
    # The plot: a real PNG of exactly the asked size, with content (beats drawn, not an empty canvas).
    assert plot.stat().st_size > 10_000
    assert _png_size(plot) == (800, 600)
    assert "wrote" in result.stderr


def test_csv_has_a_header_and_one_row_per_frame(click_track, tmp_path):
    drums = click_track.path
    result = _run(
        str(click_track.path),
        "--fps",
        "12",
        "--format",
        "csv",
        "--stem",
        f"drums={drums}",
        "--band",
        "sub=20:60",
        "--beat-decay",
        "0",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 120  # 10 s at 12 fps
    assert {"frame", "time_s", "rms", "sub", "drums_rms", "drums_sub", "drums_beat"} <= set(rows[0])
    beats = [int(r["frame"]) for r in rows if float(r["beat"]) == 1.0]
    assert len(beats) == click_track.beat_times_s.size
    assert all(float(r["beat"]) in (0.0, 1.0) for r in rows)  # --beat-decay 0: one-frame pulses
    assert float(rows[5]["time_s"]) == pytest.approx(5 / 12, abs=1e-6)


def test_table_shows_tempo_and_beat_frames(click_track):
    result = _run(str(click_track.path), "--frames", "48")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith("tempo: 120.") and "12.00 frames per beat" in lines[1]
    assert lines[2].startswith("beat frames (")
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["frame", "time_s"])
    assert len(lines) - header - 1 == 48


def test_missing_and_undecodable_files_exit_2_naming_the_file(tmp_path):
    result = _run(str(tmp_path / "song.mp3"))
    assert result.exit_code == 2 and "song.mp3" in result.stderr and "not found" in result.stderr
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(4).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    result = _run(str(junk))
    assert result.exit_code == 2 and "junk.mp3" in result.stderr and "could not decode" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, field",
    [
        (["--stem", "drums"], "--stem"),
        (["--band", "sub=20-60"], "--band"),
        (["--plot-size", "big"], "--plot-size"),
    ],
)
def test_malformed_options_name_the_option(click_track, args, field):
    result = _run(str(click_track.path), *args)
    assert result.exit_code == 2 and field in result.stderr
