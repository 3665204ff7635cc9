"""Writing imported settings as a readable keyframe file: YAML or TOML (comments at the top, then sections), or
JSON (no comments: the CLI prints the notes)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# keyframe file suffix -> ImportResult method that writes it
WRITERS = {".yaml": "to_yaml", ".yml": "to_yaml", ".toml": "to_toml", ".json": "to_json"}


@dataclass
class ImportResult:
    """What an importer produced.

    Attributes:
        data: the keyframe file as a plain dict (loads with ``config_from_dict``).
        warnings: settings that were not imported or changed, one line each (the CLI prints them).
        header: comment lines for the top of the YAML (where it came from).
        not_imported: ``key -> value`` of every source setting animator does not use (kept as comments).
    """

    data: dict
    warnings: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    not_imported: dict = field(default_factory=dict)

    def text(self, suffix: str) -> str:
        """The keyframe file as text for a file named ``*<suffix>`` (see :data:`WRITERS`)."""
        return getattr(self, WRITERS[suffix.lower()])()

    def _comments(self) -> list[str]:
        lines = [f"# {line}".rstrip() for line in self.header]
        if self.warnings:
            lines += ["#", "# Import notes:", *(f"#   - {w}" for w in self.warnings)]
        return lines

    def _not_imported_comments(self) -> list[str]:
        if not self.not_imported:
            return []
        lines = ["", "# Source settings animator does not use (kept here so nothing is silently lost):"]
        for key, value in self.not_imported.items():
            text = repr(value)
            text = text if len(text) <= 200 else text[:197] + "..."
            lines.append(f"#   {key}: {text}".replace("\n", " "))
        return lines

    def to_toml(self) -> str:
        """TOML: top-level values, then one table per section (nested mappings as dotted tables)."""
        lines = self._comments() + [""]
        tables: list[tuple[str, dict]] = []
        for key, value in self.data.items():
            if isinstance(value, dict):
                tables.append((_toml_key(key), value))
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        while tables:
            name, table = tables.pop(0)
            lines += ["", f"[{name}]"]
            for key, value in table.items():
                if isinstance(value, dict):
                    tables.append((f"{name}.{_toml_key(key)}", value))
                else:
                    lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        return "\n".join(lines + self._not_imported_comments()) + "\n"

    def to_json(self) -> str:
        """JSON, which has no comments: the header and notes are left out (the CLI prints the notes)."""
        return json.dumps(self.data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def to_yaml(self) -> str:
        import yaml

        body = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=10**9, default_flow_style=False)
        return "\n".join([*self._comments(), "", body.rstrip("\n"), *self._not_imported_comments()]) + "\n"


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if text.replace("_", "").replace("-", "").isalnum() and text.isascii() else json.dumps(text)


def _toml_value(value: Any) -> str:
    """A TOML value; strings use JSON's escapes, which TOML's basic strings share."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)
