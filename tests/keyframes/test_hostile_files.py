"""Keyframe files a hostile or careless user gives: each is refused by ``animator validate`` and ``animator render``
with exit status 2, a message naming what is wrong and where (file, line, field, frame), no traceback and no run
folder; the resource cases (billion laughs, deep nesting, long expressions) run in a subprocess under a 2 GB address
space limit and a timeout, so a regression fails the test instead of the machine. Then a property-based test: any
generated keyframe file or expression either validates (and, for a few, renders its first frames) or fails with
the project's error.

Commands run in-process through click's CliRunner on the ``main`` group the ``animator`` script runs, so through
the same error boundary.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from animator.cli import main
from animator.errors import AnimatorError
from animator.keyframes import config_digest, config_from_dict, describe_changes, evaluate, load_config
from animator.testing.images import png_declaring

GOOD = "frames: 8\nmode: 2d\n"


def _laughs(levels: int = 10) -> str:
    """A "billion laughs" YAML file: each level an alias list of the one before (9**levels strings)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "frames: 8\n" + "\n".join(lines) + "\n"


def _image(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (1, 64, 3))).save(path)
    return path


# name, file name, content, what the message must say (every string), the line it must name (None: no line known)
CASES = [
    ("latin-1", "f.yaml", "frames: 8\nprompts:\n  0: caf\xe9\n".encode("latin-1"), ["not UTF-8", "0xe9"], 3),
    ("utf-16 with mark", "f.yaml", "frames: 8\n".encode("utf-16"), ["UTF-16"], None),
    ("utf-16 without mark", "f.yaml", "frames: 8\n".encode("utf-16-le"), ["UTF-16"], None),
    ("binary", "f.yaml", bytes(range(256)) * 4, ["binary"], 1),
    ("deep json", "f.json", b'{"frames": 8, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ["nested"], None),
    ("deep toml", "f.toml", b"frames = 8\nx = " + b"[" * 100_000 + b"]" * 100_000, ["nested"], None),
    ("deep yaml", "f.yaml", b"frames: 8\nx: " + b"[" * 900 + b"]" * 900, ["nested"], 2),
    ("huge int json", "f.json", b'{"frames": ' + b"1" * 5000 + b"}", ["4,300 digits"], 1),
    ("huge int yaml", "f.yaml", b"frames: 8\nseed: " + b"7" * 5000, ["4,300 digits"], 2),
    ("huge int toml", "f.toml", b"frames = 8\nseed = " + b"7" * 5000, ["4,300 digits"], 2),
    ("billion laughs", "f.yaml", _laughs().encode(), ["more than 1,000,000 values", "aliases"], None),
    ("self alias", "f.yaml", b"frames: 8\nprompts: &a [*a]\n", ["alias", "contains it"], 2),
    ("duplicate key", "f.yaml", b"frames: 8\nfps: 12\nframes: 9\n", ["'frames' appears twice", "lines 1 and 3"], 3),
    ("duplicate flow key", "f.yaml", b"frames: 8\nmotion: {zoom: 1, zoom: 2}\n", ["'zoom' appears twice"], 2),
    (
        "nested parentheses",
        "f.yaml",
        b'frames: 8\nmotion:\n  zoom: "0:(' + b"(" * 10_000 + b"1" + b")" * 10_000 + b')"\n',
        ["characters long", "4,096"],
        3,
    ),
    (
        "strength over 1",
        "f.yaml",
        b'frames: 8\ngeneration:\n  strength: "0:(t/3)"\n',
        ["generation.strength is 1.33 at frame 4, above 1", "from 0 to 1"],
        3,
    ),
    ("steps 10**6", "f.yaml", b"frames: 8\ngeneration:\n  steps: 1000000\n", ["generation.steps", "1000"], 3),
    ("steps -3", "f.yaml", b"frames: 8\ngeneration:\n  steps: -3\n", ["generation.steps", "-3"], 3),
    ("steps expr 0", "f.yaml", b'frames: 8\ngeneration:\n  steps: "0:(25-t*5)"\n', ["is 0 at frame 5"], 3),
    ("fov 0", "f.yaml", b"frames: 8\nmotion:\n  fov: 0\n", ["motion.fov", "above 0"], 3),
    ("fov 180", "f.yaml", b"frames: 8\nmotion:\n  fov: 180\n", ["motion.fov", "below 180"], 3),
    ("fov negative", "f.yaml", b'frames: 8\nmotion:\n  fov: "0:(30 - t*20)"\n', ["is -10 at frame 2"], 3),
    ("near 0", "f.yaml", b"frames: 8\nmotion:\n  near: 0\n", ["motion.near", "near 200, far 10000"], 3),
    (
        "far below near",
        "f.yaml",
        b"frames: 8\nmotion:\n  near: 200\n  far: 100\n",
        ["motion.far is 100 at frame 0", "near 200, far 10000"],
        4,
    ),
    ("translation 1e300", "f.yaml", b"frames: 8\nmotion:\n  translation_z: 1e300\n", ["translation_z", "1e+06"], 3),
    (
        "translation overflows",
        "f.yaml",
        b'frames: 8\nmotion:\n  translation_z: "0:(10**(t*40))"\n',
        ["translation_z"],
        3,
    ),
    ("seed 1e30", "f.json", b'{"frames": 8, "seed": 1e30}', ["seed", "0 to 4294967295", "-1 for a random"], 1),
    ("seed -7", "f.yaml", b"frames: 8\nseed: -7\n", ["-7", "0 to 4294967295"], 2),
    (
        "scheduled seed -7",
        "f.yaml",
        b'frames: 8\nseed_behavior: schedule\ngeneration:\n  seed: "0:(t-7)"\n',
        ["generation.seed is -7 at frame 0"],
        4,
    ),
]


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _refused(result, path: Path, expected: list[str], line: int | None) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an exception of ours escaping
    for text in expected:
        assert text in result.output, (text, result.output)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert where in result.output, (where, result.output)


@pytest.mark.parametrize(("name", "file_name", "content", "expected", "line"), CASES, ids=[c[0] for c in CASES])
def test_validate_refuses_a_hostile_file_naming_what_and_where(tmp_path, name, file_name, content, expected, line):
    path = _write(tmp_path, file_name, content)
    _refused(CliRunner().invoke(main, ["validate", str(path)]), path, expected, line)


@pytest.mark.parametrize(
    ("name", "file_name", "content", "expected", "line"), CASES[::3], ids=[c[0] for c in CASES[::3]]
)
def test_render_refuses_a_hostile_file_before_a_run_folder_exists(tmp_path, name, file_name, content, expected, line):
    path = _write(tmp_path, file_name, content)
    run = tmp_path / "run"
    start = f"init_image={_image(tmp_path / 'init.png')}"  # so that only the file's own problem stops the render
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(out), "--run-dir", str(run), "--set", start])
    _refused(result, path, expected, line)
    assert not run.exists() and not (tmp_path / "out.mp4").exists()


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    from animator.keyframes.loading import MAX_KEYFRAME_FILE_BYTES

    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"frames: 8\n")
        handle.truncate(MAX_KEYFRAME_FILE_BYTES + 1)  # sparse: no 32 MB written
    result = CliRunner().invoke(main, ["validate", str(path)])
    _refused(result, path, ["a keyframe file is at most 32 MB"], None)


def test_an_alias_shared_a_few_times_still_loads_and_locates_lines(tmp_path):
    path = _write(
        tmp_path,
        "ok.yaml",
        b"frames: 8\nmode: 2d\nmotion: &m\n  zoom: 1.01\n  angle: 2\ngeneration:\n  strength: 2\n",
    )
    with pytest.raises(AnimatorError) as caught:
        load_config(path)
    assert caught.value.line == 7 and caught.value.field == "generation.strength"
    path.write_bytes(b"frames: 8\nmode: 2d\nbase: &b {zoom: 1.01}\n")
    with pytest.raises(AnimatorError, match="unknown key 'base'"):
        load_config(path)


# ----------------------------------------------------------------------------------- bounded memory and time


def _limited() -> None:
    """In the child: at most 2 GB of address space (Python and numpy need a few hundred MB)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


# name -> (file content, the exit status of validating it: 2 refused; 0 for a large file inside every bound)
RESOURCE_CASES = {
    "billion laughs 12 levels": (_laughs(12).encode(), 2),
    "alias fan-out": (
        b"frames: 8\nbase: &b [" + b", ".join([b'"x"'] * 1000) + b"]\nuse: [" + b", ".join([b"*b"] * 2000) + b"]\n",
        2,
    ),
    "self alias in a mapping": (b"frames: 8\nmotion: &m {zoom: *m}\n", 2),
    "nested parentheses": (b'frames: 8\nmotion:\n  zoom: "' + b"(" * 200_000 + b"1" + b")" * 200_000 + b'"\n', 2),
    "deep json": (b"[" * 5_000_000 + b"]" * 5_000_000, 2),
    "300 keyframes of 2,000 nested parentheses": (
        b'frames: 8\nmotion:\n  zoom: "'
        + b", ".join(b"%d:(%s1%s)" % (i, b"(" * 2000, b")" * 2000) for i in range(300))
        + b'"\n',
        0,
    ),
}


@pytest.mark.parametrize("name", list(RESOURCE_CASES))
def test_small_inputs_cannot_make_unbounded_work(tmp_path, name):
    content, status = RESOURCE_CASES[name]
    path = _write(tmp_path, "deep.json" if "json" in name else "f.yaml", content)
    good = _write(tmp_path, "good.yaml", GOOD.encode())
    code = "import sys; from animator.cli import main; main(sys.argv[1:])"
    proc = subprocess.run(
        [sys.executable, "-c", code, "validate", str(good), str(path)],
        preexec_fn=_limited,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a speed check: each case takes a few seconds at most
    )
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert f"ok: {good}" in proc.stdout  # the good file passed in the same process
    assert (f"error: {path}" in proc.stderr) == (status == 2), proc.stderr


def test_a_long_animation_evaluates_only_the_frames_rendered(tmp_path, init_image):
    """``frames: 1000000`` rendered as ``--frames :12``: the plan holds 12 frames (a million evaluated frames would
    take minutes and 100 MB of schedules.csv), with the values the whole animation has there."""
    from animator.rendering.api import prepare

    path = _write(
        tmp_path,
        "long.yaml",
        f'frames: 1000000\nmode: 3d\ninit_image: {init_image}\nmotion:\n  translation_z: "0:(sin(t/9)), 500000:(3)"\n'
        'prompts:\n  0: "a `t` b"\n'.encode(),
    )
    config, plan = prepare(path, frames=range(0, 12))
    assert plan.frames == 12 and len(plan.schedules.values["translation_z"]) == 12 and len(plan.seeds) == 12
    np.testing.assert_array_equal(plan.schedules.values["translation_z"], np.sin(np.arange(12) / 9))
    assert [str(p) for p in plan.schedules.prompts[:3]] == ["a 0 b", "a 1 b", "a 2 b"]
    assert plan.world_from_cam.shape[0] == 12


@pytest.mark.parametrize(
    "schedule",
    [
        "0:(1), 10:(sqrt(t-14)), 30:(2)",  # undefined from 10 to 13: the gap ends after a stop of 12
        "0:(1), 5:(2), 9:(sqrt(9-t)), 20:(0)",
        "0:(0), 3:(sin(t)), 6:(1), 40:(t/4)",
        {"keys": "0:(0), 4:(t/2), 8:(3), 15:(1)", "interpolation": "cubic"},
        {"keys": "0:(0), 12:(1), 14:(sqrt(13-t))", "interpolation": "ease"},
        {"keys": "0:(0), 6:(1), 11:(where(t > 13, 3, sqrt(-t)))", "interpolation": "step"},
    ],
)
@pytest.mark.parametrize("stop", [1, 6, 12, 13, 40])
def test_evaluating_to_a_stop_gives_exactly_the_full_animations_values(schedule, stop):
    config = config_from_dict({"frames": 40, "mode": "2d", "motion": {"translation_x": schedule}})
    full = evaluate(config).values["translation_x"]
    part = evaluate(config, stop=stop)
    assert part.frames == stop
    np.testing.assert_array_equal(part.values["translation_x"], full[:stop])


# ----------------------------------------------------------------------------------- the CLI's own arguments


def test_size_0x0_names_the_option_not_a_line_of_the_file(tmp_path):
    path = _write(tmp_path, "f.yaml", b"frames: 8\nwidth: 64\nheight: 64\n")
    result = CliRunner().invoke(main, ["render", str(path), "--size", "0x0", "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code == 2 and "--size" in result.output and ":2:" not in result.output, result.output
    result = CliRunner().invoke(main, ["render", str(path), "--size", "100x96", "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code == 2 and "not a multiple of 8" in result.output
    assert ":2:" not in result.output and "override" in result.output, result.output


def test_a_keyframe_file_with_resume_is_refused_not_ignored(tmp_path):
    path = _write(tmp_path, "f.yaml", GOOD.encode())
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(main, ["render", str(path), "--resume", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--resume" in result.output and str(path) in result.output, result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not a picture\n", "cannot read image"),
        (png_declaring(20_000, 20_000), "the limit is 64 megapixels"),
        (png_declaring(64, 64)[:40], "cannot read image"),  # cut inside the header
    ],
    ids=["text named .png", "pixel bomb", "truncated"],
)
def test_an_unreadable_image_is_refused_by_validate_and_before_a_render_makes_a_run_folder(tmp_path, content, expected):
    (tmp_path / "init.png").write_bytes(content)
    path = _write(tmp_path, "f.yaml", b"frames: 8\nmode: 2d\ninit_image: init.png\n")
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(path)]).exit_code == 0  # media are checked with --check-files only
    result = runner.invoke(main, ["validate", "--check-files", str(path)])
    _refused(result, path, [expected, "init_image"], 3)
    run = tmp_path / "run"
    result = runner.invoke(main, ["render", str(path), "-o", str(tmp_path / "o.mp4"), "--run-dir", str(run)])
    _refused(result, path, [expected, "init_image"], 3)
    assert not run.exists()
    _image(tmp_path / "init.png")
    assert runner.invoke(main, ["validate", "--check-files", str(path)]).exit_code == 0


# ----------------------------------------------------------------------------------- resume digest


def test_config_digest_follows_the_resolved_values_not_the_text(tmp_path):
    (tmp_path / "a").mkdir()
    _image(tmp_path / "a" / "init.png")
    first = _write(tmp_path / "a", "f.yaml", b"frames: 8\ninit_image: init.png\nmotion:\n  zoom: 1.02\n")
    # the same settings written differently, in a run folder elsewhere, resolved against the original's folder
    copy = _write(tmp_path, "copy.yaml", b"# a comment\nmotion: {zoom: '0:(1.020)'}\ninit_image: init.png\nframes: 8\n")
    a, b = load_config(first), load_config(copy, base_dir=tmp_path / "a")
    assert config_digest(a) == config_digest(b) and describe_changes(a, b) == []
    edited = load_config(_write(tmp_path / "a", "g.yaml", b"frames: 9\ninit_image: init.png\nmotion:\n  zoom: 1.03\n"))
    assert config_digest(edited) != config_digest(a)
    assert describe_changes(a, edited) == ["frames: 8 -> 9", "motion.zoom: 0:(1.02) -> 0:(1.03)"]
    moved = load_config(copy)  # relative to its own folder, the init image is another file
    assert [line.split(":")[0] for line in describe_changes(a, moved)] == ["init_image"]
    # stable across processes (no hash randomisation)
    code = (
        f"from animator.keyframes import load_config, config_digest; print(config_digest(load_config({str(first)!r})))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == config_digest(a)


# ----------------------------------------------------------------------------------- property-based

_NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e300, -1e300, 2**32, 10**30]),
)
_ATOMS = st.one_of(
    _NUMBERS.map(str),
    st.sampled_from(["t", "max_f", "fps", "s", "pi", "e", "rms", "__import__", "x", "t/0", "1/(t-3)", "sqrt(t-5)"]),
)


@st.composite
def _expressions(draw, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    kind = draw(st.sampled_from(["bin", "call", "paren", "junk"]))
    left, right = draw(_expressions(depth + 1)), draw(_expressions(depth + 1))
    if kind == "bin":
        return f"{left} {draw(st.sampled_from(['+', '-', '*', '/', '**', '%', '//', '<', 'and']))} {right}"
    if kind == "call":
        return f"{draw(st.sampled_from(['sin', 'max', 'clip', 'where', 'log', 'open', 'pow']))}({left}, {right})"
    if kind == "paren":
        return "(" * draw(st.integers(1, 50)) + left + ")" * draw(st.integers(0, 51))
    return left + draw(st.text(alphabet="()[]{}:,'\"#&*!|>\\ \n\t", max_size=6)) + right


@st.composite
def _schedules(draw) -> object:
    kind = draw(st.sampled_from(["number", "expression", "keyframes", "junk"]))
    if kind == "number":
        return draw(_NUMBERS)
    if kind == "expression":
        return draw(_expressions())
    if kind == "junk":
        return draw(st.one_of(st.text(max_size=20), st.lists(st.integers(), max_size=3), st.none(), st.booleans()))
    keys = draw(st.lists(st.one_of(st.integers(-5, 40), st.sampled_from(["max_f", "2s", "1b", "max_f-3"])), max_size=4))
    return ", ".join(f"{k}:({draw(_expressions())})" for k in keys) or "0:(1)"


_SETTINGS = st.fixed_dictionaries(
    {"frames": st.one_of(st.integers(-2, 12), st.sampled_from(["1s", "audio", "x", 10**7 + 1, 2.5]))},
    optional={
        "mode": st.sampled_from(["2d", "3d", "video", "4d"]),
        "fps": st.one_of(st.floats(allow_nan=True), st.integers(-1, 100)),
        "width": st.sampled_from([64, 0, 63, 8192 * 2, "64"]),
        "seed": st.one_of(st.integers(-(2**40), 2**40), st.floats()),
        "cadence": st.integers(-1, 5),
        "prompts": st.one_of(
            st.dictionaries(st.sampled_from(["0", "3", "max_f", "x", "1s"]), st.text(max_size=10), max_size=3),
            st.text(max_size=10),
        ),
        "motion": st.dictionaries(
            st.sampled_from(["zoom", "angle", "translation_x", "translation_z", "fov", "near", "far", "rotation_3d_y"]),
            _schedules(),
            max_size=3,
        ),
        "generation": st.dictionaries(
            st.sampled_from(["strength", "steps", "noise", "cfg", "contrast"]), _schedules(), max_size=2
        ),
        "unknown_key": st.integers(),
    },
)


def _write_settings(folder: Path, data: dict, form: str) -> Path:
    import yaml

    text = {
        "yaml": lambda: yaml.safe_dump(data, allow_unicode=True),
        "json": lambda: json.dumps(data, allow_nan=True),
    }[form]()
    path = folder / f"gen.{form}"
    path.write_text(text, encoding="utf-8")
    return path


@settings(
    max_examples=120,
    deadline=10_000,  # a hang guard (ms per example); most take a few milliseconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(data=_SETTINGS, form=st.sampled_from(["yaml", "json"]))
def test_any_generated_keyframe_file_validates_or_is_refused_with_our_error(tmp_path, data, form):
    path = _write_settings(tmp_path, data, form)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert f"error: {path}" in result.output, result.output  # the message names the file


@settings(max_examples=150, deadline=10_000, derandomize=True)
@given(text=st.one_of(_expressions(), st.text(max_size=40)), frames=st.integers(1, 30))
def test_any_expression_evaluates_or_is_refused_with_our_error(text, frames):
    try:
        config = config_from_dict({"frames": frames, "mode": "2d", "motion": {"translation_x": text}})
        values = evaluate(config).values["translation_x"]
    except AnimatorError:
        return
    assert values.shape == (frames,) and np.all(np.isfinite(values)) and np.all(np.abs(values) <= 1e6)


@settings(
    max_examples=4,
    deadline=None,  # a render loads the depth model; the example count bounds the time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
@given(
    mode=st.sampled_from(["2d", "3d"]),
    zoom=st.floats(0.5, 2.0),
    translation=st.one_of(st.floats(-20, 20), _expressions()),
)
def test_a_generated_file_that_validates_renders_its_first_frames(tmp_path, init_image, mode, zoom, translation):
    import animator

    data = {"frames": 24, "mode": mode, "width": 64, "height": 64, "init_image": str(init_image)}
    data["motion"] = {"zoom": zoom, "translation_x": translation}
    path = _write_settings(tmp_path, data, "yaml")
    try:
        evaluate(load_config(path))
    except AnimatorError:
        return
    frames = [e.image for e in animator.render_frames(path, frames=2)]
    assert len(frames) == 2 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
