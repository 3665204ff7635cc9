"""Which line of a keyframe file holds a dotted field (``motion.translation_z``, ``controlnet.0.weight``): exact
for YAML (from the node marks), best effort for JSON and TOML (a text search), so errors can say where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    from animator.keyframes.sections import AnimationConfig


class LineLocator:
    """Finds the line of a dotted field: exact for YAML (node marks), best effort for JSON / TOML (text search)."""

    def __init__(self, text: str, lines: dict[str, int] | None):
        self.text = text
        self.lines = lines

    def __call__(self, dotted: str) -> int | None:
        if self.lines is not None:
            parts = dotted.split(".")
            while parts:
                line = self.lines.get(".".join(parts))
                if line:
                    return line
                parts.pop()
            return None
        return self._search(dotted)

    def _search(self, dotted: str) -> int | None:
        if not self.text:
            return None
        position, found = 0, None
        for part in dotted.split("."):
            # "key": (JSON) or key = (TOML) or [section] (TOML table)
            pattern = re.compile(
                r'(^|[\s{,])["\']?' + re.escape(part) + r'["\']?\s*[:=]|^\s*\[\s*' + re.escape(part) + r"\s*\]", re.M
            )
            match = pattern.search(self.text, position)
            if not match:
                break
            position = match.end()
            found = self.text.count("\n", 0, match.start() + len(match.group(1) or "")) + 1
        return found


# A keyframe file is a few hundred nodes; a recorded schedule as a {frame: value} mapping is two per frame. Counted
# with every alias expanded, so a "billion laughs" file (aliases of aliases, a few hundred bytes that stand for
# billions of nodes) is refused before anything walks or copies it.
MAX_YAML_NODES = 1_000_000
# Sections are two levels deep, ControlNet units and schedule mappings four; the bound keeps every walk over the
# data (the loader's, json's, the overrides' copy) far from Python's recursion limit.
MAX_NESTING = 64


def yaml_loader():
    """PyYAML's fastest safe loader."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on recorded 6,000-key schedules


def yaml_node_lines(root, file: str | Path | None = None) -> dict[str, int]:
    """Dotted field -> 1-based line of its key (list items by index: ``sections.0``), from a composed YAML node.

    Also the checks that make the node safe to construct and walk: at most :data:`MAX_YAML_NODES` nodes with every
    alias expanded, at most :data:`MAX_NESTING` levels, no alias inside the node it names, and no key twice in one
    mapping. Each node is visited once: the fields under an alias are found at the alias.

    Raises:
        AnimatorError: naming ``file`` and the line.
    """
    _check_expanded_size(root, file)
    lines: dict[str, int] = {}
    seen: set[int] = set()
    stack = [(root, "", 0)]
    while stack:
        node, prefix, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if depth > MAX_NESTING:
            raise _yaml_error(node, file, f"the settings are nested more than {MAX_NESTING} levels deep")
        for key, dotted, child in _children(node, prefix, file):
            lines[dotted] = (key or child).start_mark.line + 1
            stack.append((child, dotted, depth + 1))
    return lines


def _children(node, prefix: str, file):
    """(key node or None, dotted name, value node) of a mapping's or a sequence's entries; duplicate keys refused."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return [(None, f"{prefix}.{i}" if prefix else str(i), item) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    out: list = []
    first: dict = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            earlier = first.setdefault((key.tag, key.value), key)
            if earlier is not key:
                lines = (earlier.start_mark.line + 1, key.start_mark.line + 1)
                raise _yaml_error(
                    key,
                    file,
                    f"the key {key.value!r} appears twice in one mapping (lines {lines[0]} and {lines[1]})",
                    hint="keep one of them: YAML would silently take the last",
                )
        name = key.value if isinstance(key, yaml.ScalarNode) else "?"
        out.append((key, f"{prefix}.{name}" if prefix else str(name), value))
    return out


def _check_expanded_size(root, file) -> None:
    """Counts nodes as if every alias were copied out (each distinct node's count is computed once, iteratively):
    refuses more than :data:`MAX_YAML_NODES`, and an alias that refers to a node it is part of."""
    size: dict[int, int] = {}
    active: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            total = 1 + sum(size[id(child)] for child in _child_nodes(node))
            if total > MAX_YAML_NODES:
                raise _yaml_error(
                    node,
                    file,
                    f"the file expands to more than {MAX_YAML_NODES:,} values (its aliases repeat other parts)",
                    hint="a keyframe file needs far fewer; remove the nested aliases (*name) that multiply it",
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in active:
            raise _yaml_error(node, file, "an alias (*name) refers to a part of the file that contains it")
        active.add(key)
        stack.append((node, True))
        for child in _child_nodes(node):
            if id(child) in active:
                raise _yaml_error(child, file, "an alias (*name) refers to a part of the file that contains it")
            if id(child) not in size:
                stack.append((child, False))


def _child_nodes(node) -> list:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _yaml_error(node, file, message: str, hint: str | None = "") -> AnimatorError:
    return AnimatorError(
        message,
        file=file,
        line=node.start_mark.line + 1,
        hint=hint if hint != "" else "see docs/limits.md for what a keyframe file may hold",
    )


def yaml_lines(text: str) -> dict[str, int]:
    """Dotted field -> 1-based line of its key (list items by index: ``sections.0``); {} when the YAML is broken
    or is refused by :func:`yaml_node_lines`."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml_loader())
        return {} if root is None else yaml_node_lines(root)
    except (yaml.YAMLError, AnimatorError):
        return {}


def line_of(config: AnimationConfig, dotted: str) -> int | None:
    """The line of a dotted field in the file ``config`` was loaded from (None when unknown), for errors found after
    loading (a file the config names is missing, an expression fails at some frame)."""
    if config.path is None or not config.source_text:
        return None
    yaml_file = Path(config.path).suffix.lower() in (".yaml", ".yml")
    return LineLocator(config.source_text, yaml_lines(config.source_text) if yaml_file else None)(dotted)
