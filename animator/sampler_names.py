"""Sampler names, shared by keyframe validation and the diffusers backend (a leaf module: no heavy imports).

The canonical names are the ones A1111 / Deforum users know, written in lower case with underscores
(``dpm++_2m_karras``); common spellings (``DPM++ 2M Karras``, ``dpmpp_2m_karras``, ``k_lms``, ``Euler a``) are accepted
and normalised.
"""

from __future__ import annotations

from animator.errors import AnimatorError

SAMPLER_NAMES: tuple[str, ...] = (
    "euler", "euler_karras", "euler_a", "heun", "dpm2", "dpm2_karras", "dpm2_a",
    "dpm++_2m", "dpm++_2m_karras", "dpm++_2m_sde", "dpm++_2m_sde_karras", "dpm++_2s", "dpm++_sde", "dpm++_sde_karras",
    "ddim", "ddpm", "lms", "lms_karras", "pndm", "deis", "unipc", "lcm", "tcd",
)  # fmt: skip

SAMPLER_ALIASES: dict[str, str] = {
    "k_euler": "euler", "k_euler_a": "euler_a", "k_euler_ancestral": "euler_a", "euler_ancestral": "euler_a",
    "plms": "pndm", "k_lms": "lms", "k_heun": "heun", "uni_pc": "unipc", "k_dpm_2": "dpm2", "k_dpm_2_a": "dpm2_a",
    "dpm_2": "dpm2", "dpm_2_a": "dpm2_a", "dpm2_karras": "dpm2_karras",
}  # fmt: skip


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_").replace("dpmpp", "dpm++")
    return SAMPLER_ALIASES.get(key, key)


def is_sampler_name(name: object) -> bool:
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
