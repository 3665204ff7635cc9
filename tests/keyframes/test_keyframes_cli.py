"""The schedule / validate / import commands through click's CliRunner."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from animator.cli import main
from animator.keyframes import SCHEDULE_NAMES, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "keyframes").glob("*.yaml"))


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        "frames: 6\nfps: 12\nprompts:\n  0: a cat --neg dog\n  3: a fox\n"
        'motion:\n  translation_z: "0:(0), 5:(10)"\n  rotation_3d_y: "0:(sin(t))"\n'
    )
    return path


def test_schedule_json_shape_and_values(runner, small):
    result = runner.invoke(main, ["schedule", str(small), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"frames", "fps", "schedules", "prompts"}
    assert data["frames"] == 6 and data["fps"] == 12.0
    assert set(data["schedules"]) == set(SCHEDULE_NAMES)
    assert all(len(v) == 6 for v in data["schedules"].values())
    np.testing.assert_allclose(data["schedules"]["translation_z"], [0, 2, 4, 6, 8, 10])
    np.testing.assert_allclose(data["schedules"]["rotation_3d_y"], np.sin(np.arange(6)))
    assert data["prompts"] == ["a cat --neg dog"] * 3 + ["a fox"] * 3


def test_schedule_frame_range_and_names(runner, small):
    result = runner.invoke(
        main, ["schedule", str(small), "--format", "json", "--frames", "2:4", "--names", "translation_z"]
    )
    data = json.loads(result.output)
    assert data["frames"] == 2 and list(data["schedules"]) == ["translation_z"]
    assert data["schedules"]["translation_z"] == [4.0, 6.0] and data["prompts"] == ["a cat --neg dog", "a fox"]


def test_schedule_table_and_csv(runner, small):
    table = runner.invoke(main, ["schedule", str(small)])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert "translation_z" in lines[0] and "rotation_3d_y" in lines[0] and lines[1].split()[0] == "0"
    assert "constant:" in lines[-1] and "zoom=1" in lines[-1]
    csv = runner.invoke(main, ["schedule", str(small), "--format", "csv"]).output.splitlines()
    header = csv[0].split(",")
    assert header[0] == "frame" and len(csv) == 7
    assert float(csv[4].split(",")[header.index("translation_z")]) == 6.0


def test_schedule_plot_writes_png(runner, small, tmp_path):
    out = tmp_path / "plot.png"
    result = runner.invoke(main, ["schedule", str(small), "--plot", str(out)])
    assert result.exit_code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--frames", "4:2"], "4:2 selects no frames"),
        (["--frames", "9:"], "after the animation's last frame (5)"),
        (["--frames", "a:b"], "A:B"),
        (["--names", "zom"], "did you mean 'zoom'"),
    ],
)
def test_schedule_bad_options_exit_2(runner, small, args, words):
    result = runner.invoke(main, ["schedule", str(small), *args])
    assert result.exit_code == 2 and words in result.output


def test_validate_ok_and_error(runner, small, tmp_path):
    result = runner.invoke(main, ["validate", str(small)])
    assert result.exit_code == 0 and result.output.startswith("ok: ") and "6 frames" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames: 6\nmotion:\n  zooom: 1\n")
    result = runner.invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3: motion.zooom" in result.output and "did you mean `motion.zoom`" in result.output
    assert "Traceback" not in result.output


def test_validate_several_files_reports_each_and_fails_if_any_fails(runner, small, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames: 6\nfps: 0\n")
    result = runner.invoke(main, ["validate", str(small), str(bad), str(small)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith(("ok", "error"))] == ["ok", "error", "ok"]
    assert f"{bad}" in result.output and "fps" in result.output
    assert lines[-1] == "2 of 3 files ok, 1 with errors"
    result = runner.invoke(main, ["validate", str(small), str(small)])
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "2 of 2 files ok"
    startless = tmp_path / "startless.yaml"
    startless.write_text("frames: 4\n")  # valid, but a render would have nothing to start from
    result = runner.invoke(main, ["validate", str(startless)])
    assert result.exit_code == 0 and "a render needs --model or an init_image" in result.output
    assert runner.invoke(main, ["validate"]).exit_code == 2  # at least one file


def test_an_expression_failing_at_some_frame_is_named_with_its_line(runner, tmp_path):
    path = tmp_path / "div.yaml"
    path.write_text('frames: 6\nfps: 12\nmotion:\n  translation_x: 0\n  zoom: "0:(1/(t-3))"\n')
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and f"{path}:5: motion.zoom" in result.output and "t=3" in result.output


def test_validate_check_files_flag(runner, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("frames: 4\ninit_image: missing.png\n")
    assert runner.invoke(main, ["validate", str(path)]).exit_code == 0
    result = runner.invoke(main, ["validate", "--check-files", str(path)])
    assert result.exit_code == 2 and "missing.png" in result.output


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate(runner, example):
    result = runner.invoke(main, ["validate", str(example)])
    assert result.exit_code == 0, result.output


def test_demo_matches_the_brief(runner):
    config = load_config(REPO / "keyframes" / "demo.yaml")
    assert (config.mode, config.fps, config.frames, config.width, config.height) == ("3d", 24, 240, 512, 512)
    assert config.backends.denoise == "none" and config.backends.depth == "offline"
    assert config.init_image == (REPO / "examples" / "init.jpg").resolve()
    data = json.loads(
        runner.invoke(main, ["schedule", str(REPO / "keyframes" / "demo.yaml"), "--format", "json"]).output
    )
    assert min(data["schedules"]["translation_z"]) > 0  # always flying forward
    assert np.ptp(data["schedules"]["rotation_3d_y"]) > 0 and np.ptp(data["schedules"]["rotation_3d_z"]) > 0


def test_demo_comments_every_field():
    for line in (REPO / "keyframes" / "demo.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and ":" in stripped and not stripped.endswith(":"):
            assert "#" in stripped, f"uncommented field: {line}"


def test_import_deforum_cli_writes_loadable_yaml(runner, corpus_dir, tmp_path):
    out = tmp_path / "out.yaml"
    result = runner.invoke(
        main, ["import", "deforum", str(corpus_dir / "deforum" / "eudk-settingsfile.json"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "dropped" in result.output and f"wrote {out}" in result.output
    assert load_config(out).frames == 300


def test_import_parseq_cli(runner, corpus_dir, tmp_path):
    out = tmp_path / "p.yaml"
    result = runner.invoke(
        main, ["import", "parseq", str(corpus_dir / "parseq" / "tholonia-parseq.json"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_config(out).frames == 508


def test_import_bad_file_exits_2(runner, tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("not json")
    result = runner.invoke(main, ["import", "deforum", str(bad), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 2 and "JSON" in result.output


def test_keyframes_package_imports_no_heavy_libraries():
    code = (
        "import sys, animator.keyframes, animator.keyframes.importers; "
        "print(sorted(m for m in ('torch', 'librosa', 'cv2', 'diffusers', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("command", ["schedule", "render"])
def test_a_bare_number_for_frames_is_refused_with_both_readings(runner, small, command, tmp_path):
    """``--frames 6`` could mean six frames or "from frame 6 on": refused before anything runs, with the spelling
    of each (a wrong guess would cost a whole render)."""
    result = runner.invoke(
        main,
        [command, str(small), "--frames", "6"] + (["-o", str(tmp_path / "out.mp4")] if command == "render" else []),
    )
    assert result.exit_code == 2, result.output
    assert "A:B" in result.output and "--frames :6" in result.output and "--frames 6:" in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_open_ended_frame_ranges_read_as_slices(runner, small):
    import json

    head = json.loads(runner.invoke(main, ["schedule", str(small), "--format", "json", "--frames", ":2"]).output)
    tail = json.loads(runner.invoke(main, ["schedule", str(small), "--format", "json", "--frames", "4:"]).output)
    assert len(head["prompts"]) == 2 and len(tail["prompts"]) == 2  # the file has 6 frames
