"""Importers: Deforum settings files and Parseq manifests -> animator keyframe files (YAML)."""

from animator.keyframes.importers._yaml import ImportResult
from animator.keyframes.importers.deforum import convert_deforum, import_deforum
from animator.keyframes.importers.deforum_schedules import convert_schedule
from animator.keyframes.importers.parseq import convert_parseq, import_parseq

__all__ = ["ImportResult", "convert_deforum", "convert_schedule", "import_deforum", "convert_parseq", "import_parseq"]
