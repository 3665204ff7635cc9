"""Property tests: generated Deforum settings, Parseq manifests and output names either import into a keyframe file
that loads, or fail with the project's error (exit status 2, no traceback); never a crash, never a hang."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from animator.cli import main

# Every example runs the real command; 40 examples per property keep the file well under 30 s on a small CPU.
BOUNDED = settings(
    max_examples=40, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["0:(1)", "0:(0.5), 10:(2)", "0: (sin(t))", "wide", "nan", "1e309", "", "0:(", "Video Input"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)

DEFORUM_KEYS = [
    "W", "H", "max_frames", "fps", "seed", "animation_mode", "diffusion_cadence", "translation_z", "strength_schedule",
    "prompts", "seed_behavior", "video_init_path", "extract_nth_frame", "use_init", "init_image", "steps",
]  # fmt: skip
deforum_settings = st.fixed_dictionaries(
    {
        "max_frames": st.one_of(st.integers(1, 30), st.integers(1, 30), json_values),  # mostly sensible
        "animation_mode": st.sampled_from(["2D", "3D", "3D", "None", "Video Input"]),
    },
    optional={key: json_values for key in DEFORUM_KEYS if key not in ("max_frames", "animation_mode")},
)

parseq_frame = st.fixed_dictionaries(
    {"frame": st.one_of(st.integers(0, 40), st.integers(0, 40), st.integers(-2, 40), st.floats(), st.text(max_size=3))},
    optional={
        "zoom": st.one_of(st.floats(0.5, 2.0), json_values),
        "translation_z_delta": json_values,
        "strength": json_values,
        "deforum_prompt": json_values,
    },
)
parseq_manifest = st.fixed_dictionaries(
    {"rendered_frames": st.one_of(st.lists(parseq_frame, min_size=1, max_size=5), json_values)},
    optional={"options": json_values, "managedFields": json_values, "meta": json_values},
)


def _import(kind: str, document, output: str = "o.yaml"):
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.json"
        source.write_text(json.dumps(document))  # NaN and Infinity as Python writes them, which Deforum files hold
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            result = CliRunner().invoke(main, ["import", kind, "in.json", "-o", output])
            written = sorted(p.name for p in Path(folder).iterdir())
            loads = None
            if result.exit_code == 0:
                from animator.keyframes import load_config

                loads = load_config(Path(folder) / output).frames
        finally:
            os.chdir(cwd)
    return result, written, loads


def _assert_works_or_refuses(result, written, loads, output: str = "o.yaml") -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output, repr(result.exception))
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit) and "error: " in result.stderr
        assert written == ["in.json"]  # nothing written, no temporary file left
    else:
        assert loads is not None and loads >= 1 and written == sorted(["in.json", output])


@BOUNDED
@given(deforum_settings)
def test_any_deforum_settings_import_or_fail_cleanly(document):
    _assert_works_or_refuses(*_import("deforum", document))


@BOUNDED
@given(parseq_manifest)
def test_any_parseq_manifest_imports_or_fails_cleanly(document):
    _assert_works_or_refuses(*_import("parseq", document))


@BOUNDED
@given(st.text(alphabet="abcxyz.-_/ ", min_size=1, max_size=12))
def test_any_output_name_imports_or_fails_cleanly(name):
    document = {"max_frames": 3, "animation_mode": "3D", "W": 64, "H": 64}
    result, written, loads = _import("deforum", document, output=name)
    assert result.exit_code in (0, 2), (name, result.output, repr(result.exception))
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert loads == 3


@BOUNDED
@given(st.text(alphabet="abpngsvfd.-_/ ", min_size=1, max_size=12))
def test_any_plot_name_is_accepted_only_where_a_plot_can_be_written(name):
    from animator.cli import PLOT_SUFFIXES, check_plot_path
    from animator.errors import AnimatorError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        try:
            check_plot_path(path)
        except AnimatorError as exc:
            assert exc.field == "--plot" and exc.hint
        else:
            assert path.suffix.lower() in PLOT_SUFFIXES and path.parent.is_dir()


def test_every_plot_suffix_is_one_matplotlib_writes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from animator.cli import PLOT_SUFFIXES

    figure = plt.figure()
    supported = set(figure.canvas.get_supported_filetypes())
    plt.close(figure)
    assert {suffix[1:] for suffix in PLOT_SUFFIXES} <= supported
