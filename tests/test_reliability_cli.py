"""The table of bad inputs a hostile or careless user gives the commands: each one exits with status 2, a message
naming what and where, no traceback, and nothing written or overwritten.

Commands run in-process through click's CliRunner (the same ``main`` group the ``animator`` script runs, so the
same error boundary); the resource cases run as subprocesses under a memory limit.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from animator.cli import main
from animator.testing.images import png_declaring

DEFORUM = {"W": 512, "H": 512, "max_frames": 10, "animation_mode": "3D", "prompts": {"0": "a lighthouse"}}
PARSEQ_FRAMES = [{"frame": 0, "zoom": 1.0}, {"frame": 1, "zoom": 1.02}]


def _json(value) -> bytes:
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def _tone(path: Path, seconds: float = 2.0, sr: int = 22050) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1), handle.setsampwidth(2), handle.setframerate(sr), handle.writeframes(pcm.tobytes())
    return path


def _video(path: Path, frames: int) -> Path:
    from animator.video import EncodeSettings, VideoWriter

    rng = np.random.default_rng(0)
    with VideoWriter(path, width=64, height=48, fps=12, settings=EncodeSettings(preset="ultrafast")) as writer:
        for _ in range(frames):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


KEYFRAMES = "frames: 4\nwidth: 64\nheight: 64\nmotion:\n  translation_z: '0:(1)'\n"


def _small_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


RENDERABLE = {"k.yaml": (KEYFRAMES + "init_image: init.png\n").encode(), "init.png": _small_png()}

# id: (files to create {name: bytes}, argv ({tmp} is the folder), what the message must say, paths that must not exist)
CASES = {
    # importers: Deforum settings
    "deforum W wide": (
        {"s.json": _json(DEFORUM | {"W": "wide"})},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"s\.json: W: expected a finite number, got 'wide'",
        ["o.yaml"],
    ),
    "deforum NaN": (
        {"s.json": b'{"W": NaN, "max_frames": 10}'},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"s\.json: W: expected a finite number, got nan",
        ["o.yaml"],
    ),
    "deforum Infinity frames": (
        {"s.json": b'{"max_frames": Infinity, "animation_mode": "3D"}'},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"max_frames: .*finite",
        ["o.yaml"],
    ),
    "deforum deep JSON": (
        {"s.json": b"[" * 100000 + b"]" * 100000},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"s\.json: .*nested too deeply",
        ["o.yaml"],
    ),
    "deforum huge integer": (
        {"s.json": b'{"max_frames": ' + b"9" * 5000 + b"}"},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"s\.json: .*4300 digits",
        ["o.yaml"],
    ),
    "deforum seed out of range": (
        {"s.json": _json(DEFORUM | {"seed": 10**40})},
        ["import", "deforum", "s.json", "-o", "o.yaml"],
        r"s\.json: seed: .*outside",
        ["o.yaml"],
    ),
    "deforum -o missing folder": (
        {"s.json": _json(DEFORUM)},
        ["import", "deforum", "s.json", "-o", "no/o.yaml"],
        r"the folder no does not exist",
        ["no"],
    ),
    "deforum -o unknown suffix": (
        {"s.json": _json(DEFORUM)},
        ["import", "deforum", "s.json", "-o", "o.txt"],
        r"cannot write a keyframe file as '\.txt'.*\n.*\.yaml, \.yml, \.toml, \.json",
        ["o.txt"],
    ),
    "deforum not UTF-8": (
        {"s.json": '{"W": "é"}'.encode("latin-1")},
        ["import", "deforum", "s.json"],
        r"s\.json: not a Deforum settings file",
        ["s.yaml"],
    ),
    # importers: Parseq manifests
    "parseq frames are numbers": (
        {"p.json": _json({"rendered_frames": [1, 2, 3]})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"p\.json: rendered_frames\[0\]: expected an object per frame",
        ["o.yaml"],
    ),
    "parseq frame x": (
        {"p.json": _json({"rendered_frames": [{"frame": "x", "zoom": 1}]})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"rendered_frames\[0\]: `frame` must be",
        ["o.yaml"],
    ),
    "parseq no frame key": (
        {"p.json": _json({"rendered_frames": [{"zoom": 1}]})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"rendered_frames\[0\]: .*no `frame`",
        ["o.yaml"],
    ),
    "parseq options abc": (
        {"p.json": _json({"rendered_frames": PARSEQ_FRAMES, "options": "abc"})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"p\.json: options: expected an object",
        ["o.yaml"],
    ),
    "parseq fps fast": (
        {"p.json": _json({"rendered_frames": PARSEQ_FRAMES, "options": {"output_fps": "fast"}})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"options\.output_fps: .*'fast'",
        ["o.yaml"],
    ),
    "parseq value big": (
        {"p.json": _json({"rendered_frames": [{"frame": 0, "zoom": "big"}]})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"zoom: expected a finite number",
        ["o.yaml"],
    ),
    "parseq frame 10**12": (
        {"p.json": _json({"rendered_frames": [{"frame": 10**12, "zoom": 1}]})},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"from 0 to 1,000,000",
        ["o.yaml"],
    ),
    "parseq deep JSON": (
        {"p.json": b'{"a": ' * 50000 + b"1" + b"}" * 50000},
        ["import", "parseq", "p.json", "-o", "o.yaml"],
        r"nested too deeply",
        ["o.yaml"],
    ),
    # bounded images, outputs
    "depth 20000x20000 PNG": (
        {"bomb.png": png_declaring(20000, 20000)},
        ["depth", "bomb.png", "-o", "d.png"],
        r"bomb\.png: the image declares 400 megapixels; the limit is 64",
        ["d.png"],
    ),
    "depth text named png": (
        {"t.png": b"just text"},
        ["depth", "t.png", "-o", "d.png"],
        r"t\.png: cannot read",
        ["d.png"],
    ),
    # render outputs, refused before the first frame and before a run folder is made
    "render -o png": (
        RENDERABLE,
        ["render", "k.yaml", "-o", "out.png"],
        r"out\.png: -o: cannot write a video as",
        ["out.png", "runs"],
    ),
    "render -o xyz": (RENDERABLE, ["render", "k.yaml", "-o", "out.xyz"], r"suffixes: \.mp4", ["out.xyz", "runs"]),
    "render -o missing folder": (
        RENDERABLE,
        ["render", "k.yaml", "-o", "no/out.mp4"],
        r"the output folder no does not exist",
        ["no", "runs"],
    ),
    "render h264 in webm": (
        RENDERABLE,
        ["render", "k.yaml", "-o", "out.webm"],
        r"a \.webm file cannot hold h264",
        ["out.webm", "runs"],
    ),
    "render init image bomb": (
        {"k.yaml": RENDERABLE["k.yaml"], "init.png": png_declaring(20000, 20000)},
        ["render", "k.yaml", "-o", "out.mp4"],
        r"init\.png: the image declares 400 megapixels",
        ["out.mp4"],
    ),
    # plots and counts
    "schedule plot missing folder": (
        {"k.yaml": KEYFRAMES.encode()},
        ["schedule", "k.yaml", "--plot", "no/p.png"],
        r"no/p\.png: --plot: the folder no does not exist",
        ["no"],
    ),
    "schedule plot unknown suffix": (
        {"k.yaml": KEYFRAMES.encode()},
        ["schedule", "k.yaml", "--plot", "p.xyz"],
        r"p\.xyz: --plot: cannot write a plot as '\.xyz'",
        ["p.xyz"],
    ),
}


def _write_case_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(data)


def run_in(folder: Path, argv: list[str]):
    """``animator ARGV`` in ``folder`` through the real click group; returns click's Result."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(main, argv)
    finally:
        os.chdir(cwd)


def assert_user_error(result, pattern: str) -> None:
    import re

    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an exception of ours
    assert "Traceback" not in result.output
    assert re.search(pattern, result.stderr), result.stderr


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, case):
    files, argv, pattern, absent = CASES[case]
    _write_case_files(tmp_path, files)
    result = run_in(tmp_path, argv)
    assert_user_error(result, pattern)
    assert all(not (tmp_path / name).exists() for name in absent)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)  # no temporary or partial file left


def test_a_failed_import_keeps_the_file_already_at_the_output(tmp_path):
    (tmp_path / "s.json").write_bytes(_json(DEFORUM | {"fps": "nan"}))
    (tmp_path / "o.yaml").write_text("frames: 3\n")
    assert_user_error(run_in(tmp_path, ["import", "deforum", "s.json", "-o", "o.yaml"]), r"fps: .*finite")
    assert (tmp_path / "o.yaml").read_text() == "frames: 3\n"


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_import_writes_the_format_its_output_suffix_names(tmp_path, suffix):
    import tomllib
    import yaml

    from animator.keyframes import load_config

    settings = DEFORUM | {"translation_z": "0:(2), 5:(4)", "fps": 12, "seed": 7}
    (tmp_path / "s.json").write_bytes(_json(settings))
    result = run_in(tmp_path, ["import", "deforum", "s.json", "-o", f"o{suffix}"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / f"o{suffix}").read_text()
    parsed = {".yaml": yaml.safe_load, ".toml": tomllib.loads, ".json": json.loads}[suffix](text)  # that format
    assert parsed["fps"] == 12 and parsed["seed"] == 7
    config = load_config(tmp_path / f"o{suffix}")
    assert (config.frames, config.width, config.seed) == (10, 512, 7)


def test_metrics_of_a_one_frame_video_has_nothing_to_measure(tmp_path):
    _video(tmp_path / "one.mp4", 1)
    assert_user_error(run_in(tmp_path, ["metrics", "one.mp4"]), r"one\.mp4: .*nothing to measure")


def test_metrics_and_audio_plot_paths_are_checked_before_any_work(tmp_path):
    _tone(tmp_path / "song.wav")
    _video(tmp_path / "two.mp4", 2)
    assert_user_error(run_in(tmp_path, ["metrics", "two.mp4", "--plot", "no/p.png"]), r"the folder no does not")
    assert_user_error(run_in(tmp_path, ["audio", "analyze", "song.wav", "--plot", "p.mp4"]), r"plot as '\.mp4'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav", "two.mp4"]


def test_a_corrupt_video_is_ffmpegs_reason_without_its_banner(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(3000))
    result = run_in(tmp_path, ["metrics", "bad.mp4"])
    assert_user_error(result, r"bad\.mp4")
    assert "configuration:" not in result.stderr and "libavutil" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3


def test_depth_of_a_corrupt_video_is_ffmpegs_reason_without_its_banner(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + os.urandom(3000))
    result = run_in(tmp_path, ["depth", "bad.mp4", "-o", "d.mp4"])
    assert_user_error(result, r"bad\.mp4: cannot read this video \(.*(moov atom|Invalid data)")
    assert "configuration:" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "d.mp4").exists()


def test_depth_video_into_a_container_without_h264_is_refused_before_the_model(tmp_path):
    _video(tmp_path / "clip.mp4", 2)
    assert_user_error(run_in(tmp_path, ["depth", "clip.mp4", "-o", "d.webm"]), r"d\.webm: output\.codec: .*h264")
    assert not (tmp_path / "d.webm").exists()


# ------------------------------------------------------------------------------------------ disks the OS refuses


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no write reaches: a read-only tmpfs where we may mount one (root), else a folder without write
    permission (a non-root user); skipped where neither holds (root without mount rights ignores permissions)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode == 0:
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
        return
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("cannot make a read-only folder here (root without mount rights)")
    yield folder
    folder.chmod(0o755)


def test_a_read_only_output_folder_is_refused_with_the_reason(tmp_path, read_only_dir):
    from animator.errors import AnimatorError
    from animator.video import check_output

    (tmp_path / "s.json").write_bytes(_json(DEFORUM))
    result = run_in(tmp_path, ["import", "deforum", "s.json", "-o", str(read_only_dir / "o.yaml")])
    assert_user_error(result, r"ro/o\.yaml: -o: cannot write into .*ro: (Read-only file system|Permission denied)")
    with pytest.raises(AnimatorError, match="read-only file system|is not writable"):
        check_output(read_only_dir / "out.mp4")


def test_a_video_writer_in_a_read_only_folder_keeps_ffmpegs_own_reason(read_only_dir):
    from animator.errors import AnimatorError
    from animator.video import VideoWriter

    writer = VideoWriter(read_only_dir / "out.mp4", width=64, height=48, fps=12)
    with pytest.raises(AnimatorError, match=r"ffmpeg .*out\.mp4: .*(Read-only file system|Permission denied)"):
        for _ in range(200):  # ffmpeg fails to open its output; a later write or the close reports why
            writer.write(np.zeros((48, 64, 3), np.uint8))
        writer.close()


def test_an_import_onto_a_full_disk_names_the_output_and_leaves_nothing(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux) to make every write fail with ENOSPC")
    (tmp_path / "s.json").write_bytes(_json(DEFORUM))
    temporary = tmp_path / f".o.import-{os.getpid()}.yaml"  # the name the import writes first (CliRunner: our pid)
    temporary.symlink_to("/dev/full")
    result = run_in(tmp_path, ["import", "deforum", "s.json", "-o", "o.yaml"])
    assert_user_error(result, r"cannot write o\.yaml: No space left on device\n  hint: free some space")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


@pytest.mark.parametrize("code", [28, 30, 13, 2], ids=["ENOSPC", "EROFS", "EACCES", "ENOENT"])
def test_an_os_error_on_a_path_the_user_gave_is_a_clear_error(code):
    import click

    @click.command("explode")
    def explode():
        raise OSError(code, os.strerror(code), "out/clip.mp4")

    main.add_command(explode)
    try:
        result = CliRunner().invoke(main, ["explode"])
    finally:
        main.commands.pop("explode")
    assert_user_error(result, rf"error: out/clip\.mp4: {os.strerror(code)}\n  hint: ")


def test_an_os_error_on_a_path_of_ours_is_a_bug_and_keeps_its_traceback(tmp_path, monkeypatch):
    import click

    @click.command("explode")
    def explode():
        raise OSError(5, "Input/output error")  # no path: not something the user gave

    main.add_command(explode)
    try:
        result = CliRunner().invoke(main, ["explode"])
    finally:
        main.commands.pop("explode")
    assert result.exit_code == 1 and isinstance(result.exception, OSError)


# -------------------------------------------------------------------------------------------- bounded under a limit


def _limited(argv: list[str], cwd: Path, memory_gb: float = 3.0, seconds: int = 120) -> subprocess.CompletedProcess:
    """``animator ARGV`` in a subprocess whose address space is capped (RLIMIT_AS): an unbounded allocation fails
    there instead of taking the machine."""
    limit = int(memory_gb * 2**30)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "animator", *argv],
        cwd=cwd,
        preexec_fn=cap,
        capture_output=True,
        text=True,
        timeout=seconds,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


@pytest.mark.parametrize(
    "argv,files,pattern",
    [
        (["audio", "analyze", "song.wav", "--frames", "100000000"], {}, r"song\.wav: frames: .*600 s past the end"),
        (["audio", "analyze", "song.wav", "--fps", "1e9"], {}, r"fps: fps must be a number in \(0, 1000\]"),
        (["depth", "bomb.png", "-o", "d.png"], {"bomb.png": png_declaring(20000, 20000)}, r"400 megapixels"),
    ],
    ids=["audio --frames 1e8", "audio --fps 1e9", "depth 20000x20000"],
)
def test_small_inputs_asking_for_huge_work_fail_fast_under_a_memory_limit(tmp_path, argv, files, pattern):
    import re

    _tone(tmp_path / "song.wav")
    _write_case_files(tmp_path, files)
    done = _limited(argv, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and re.search(pattern, done.stderr), done.stderr
