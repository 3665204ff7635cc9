"""animator/choices.py is the one place a choice list is written: no other module of the package writes one of its
lists again (in any order), the lists are well formed, and the modules that check choices use these lists."""

import ast
from pathlib import Path

import pytest

import animator
from animator import choices

PACKAGE = Path(animator.__file__).parent
CHOICE_LISTS = {
    name: value
    for name, value in vars(choices).items()
    if name.isupper() and isinstance(value, tuple) and all(isinstance(v, str) for v in value)
}


def string_sequences(path: Path):
    """(line, tuple of strings) of every tuple / list / set literal of two or more string constants in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                yield node.lineno, tuple(e.value for e in node.elts)


def test_the_lists_are_found_and_well_formed():
    assert {"MODES", "SEED_BEHAVIORS", "FILLS", "SAMPLINGS", "COLOR_SPACES", "SAMPLER_NAMES", "CONTROL_SOURCES"} <= set(
        CHOICE_LISTS
    )
    for name, values in CHOICE_LISTS.items():
        assert len(values) == len(set(values)), f"{name} repeats a value"
        assert all(v == v.strip() and v for v in values), f"{name} holds an empty or padded value"


def test_no_two_lists_in_choices_are_the_same():
    seen: dict[frozenset, str] = {}
    for name, values in CHOICE_LISTS.items():
        key = frozenset(values)
        assert key not in seen, f"{name} is {seen.get(key)} written again"
        seen[key] = name


def test_the_scan_finds_a_copied_list(tmp_path):
    # the check below must be able to fail: a module that writes FILLS again, reordered, is found
    copy = tmp_path / "copy.py"
    copy.write_text(f"FILL_MODES = {tuple(reversed(choices.FILLS))!r}\nOTHER = ('a', 'b')\n")
    found = [values for _, values in string_sequences(copy) if frozenset(values) == frozenset(choices.FILLS)]
    assert found == [tuple(reversed(choices.FILLS))]


def test_no_module_writes_a_choice_list_again():
    lists = {frozenset(values): name for name, values in CHOICE_LISTS.items()}
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "choices.py":
            continue
        module = path.relative_to(PACKAGE.parent).as_posix()
        for line, values in string_sequences(path):
            name = lists.get(frozenset(values))
            if name is not None:
                copies.append(f"{module}:{line} writes {name} again: import it from animator.choices")
    assert not copies, "\n".join(copies)


@pytest.mark.parametrize(
    "module, name, choice",
    [
        ("animator.geometry.warp3d", "FILL_MODES", "FILLS"),
        ("animator.geometry.warp3d", "SAMPLING_MODES", "SAMPLINGS"),
        ("animator.geometry.warp2d", "BORDER_MODES", "BORDERS"),
        ("animator.color", "SPACES", "COLOR_SPACES"),
        ("animator.color", "NOISE_KINDS", "NOISE_TYPES"),
        ("animator.plan", "SEED_BEHAVIORS", "SEED_BEHAVIORS"),
        ("animator.keyframes.schedule", "INTERPOLATIONS", "INTERPOLATIONS"),
        ("animator.sampler_names", "SAMPLER_NAMES", "SAMPLER_NAMES"),
        ("animator.backends.flow", "FLOW_ESTIMATORS", "FLOW_ESTIMATORS"),
        ("animator.backends.speed", "COMPILE_MODES", "COMPILE_MODES"),
        ("animator.backends.controlnet.units", "MODES", "CONTROL_MODES"),
    ],
)
def test_modules_use_the_shared_lists(module, name, choice):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(choices, choice)


def test_choices_imports_nothing_heavy():
    tree = ast.parse((PACKAGE / "choices.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__"}
