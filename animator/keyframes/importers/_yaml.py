"""Writing imported settings as a readable keyframe YAML file (comments at the top, then sections)."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def to_yaml(self) -> str:
        import yaml

        lines = [f"# {line}".rstrip() for line in self.header]
        if self.warnings:
            lines.append("#")
            lines.append("# Import notes:")
            lines += [f"#   - {w}" for w in self.warnings]
        lines.append("")
        body = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=10**9, default_flow_style=False)
        lines.append(body.rstrip("\n"))
        if self.not_imported:
            lines.append("")
            lines.append("# Source settings animator does not use (kept here so nothing is silently lost):")
            for key, value in self.not_imported.items():
                text = repr(value)
                text = text if len(text) <= 200 else text[:197] + "..."
                lines.append(f"#   {key}: {text}".replace("\n", " "))
        return "\n".join(lines) + "\n"
