"""Sampler names, shared by keyframe validation and the diffusers backend (a leaf module: no heavy imports). The
lists live in :mod:`animator.choices`; this module normalises spellings.

The canonical names are the ones A1111 / Deforum users know, written in lower case with underscores
(``dpm++_2m_karras``); common spellings (``DPM++ 2M Karras``, ``dpmpp_2m_karras``, ``k_lms``, ``Euler a``) are accepted
and normalised.
"""

from __future__ import annotations

from animator.choices import SAMPLER_ALIASES, SAMPLER_NAMES
from animator.errors import AnimatorError

__all__ = ["SAMPLER_NAMES", "SAMPLER_ALIASES", "is_sampler_name", "normalize_sampler_name"]


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_").replace("dpmpp", "dpm++")
    return SAMPLER_ALIASES.get(key, key)


def is_sampler_name(name: object) -> bool:
    """Whether ``name`` is a sampler in any accepted spelling."""
    return isinstance(name, str) and _key(name) in SAMPLER_NAMES


def normalize_sampler_name(name: object, *, field: str = "sampler") -> str:
    """``"DPM++ 2M Karras"`` -> ``"dpm++_2m_karras"``; an unknown name raises AnimatorError listing the valid ones."""
    if not is_sampler_name(name):
        import difflib

        close = difflib.get_close_matches(_key(name) if isinstance(name, str) else "", SAMPLER_NAMES, n=1)
        raise AnimatorError(
            f"unknown sampler {name!r}",
            field=field,
            hint=(f"did you mean {close[0]!r}? " if close else "") + "use one of: " + ", ".join(SAMPLER_NAMES),
        )
    return _key(name)
