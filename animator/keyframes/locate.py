"""Which line of a keyframe file holds a dotted field (``motion.translation_z``, ``controlnet.0.weight``): exact
for YAML (from the node marks), best effort for JSON and TOML (a text search), so errors can say where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

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


def yaml_loader():
    """PyYAML's fastest safe loader."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on recorded 6,000-key schedules


def yaml_lines(text: str) -> dict[str, int]:
    """Dotted field -> 1-based line of its key (list items by index: ``sections.0``); {} when the YAML is broken."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[dotted] = key.start_mark.line + 1
                walk(value, dotted)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[f"{prefix}.{i}"] = item.start_mark.line + 1
                walk(item, f"{prefix}.{i}")

    try:
        walk(yaml.compose(text, Loader=yaml_loader()), "")
    except yaml.YAMLError:
        pass
    return lines


def line_of(config: AnimationConfig, dotted: str) -> int | None:
    """The line of a dotted field in the file ``config`` was loaded from (None when unknown), for errors found after
    loading (a file the config names is missing, an expression fails at some frame)."""
    if config.path is None or not config.source_text:
        return None
    yaml_file = Path(config.path).suffix.lower() in (".yaml", ".yml")
    return LineLocator(config.source_text, yaml_lines(config.source_text) if yaml_file else None)(dotted)
