"""animator: Deforum-class AI animation, done right.

The public entry points are imported lazily so that ``import animator`` (and ``animator --help``) stays fast:
torch, diffusers and transformers load only when a render or a backend needs them.
"""

from __future__ import annotations

import os as _os

# Reproducible CPU renders: by default MKL may use fewer threads than asked when the machine is busy, which changes
# the order of float sums; a resumed render would then not match an uninterrupted one bit for bit. Must be set before
# torch loads MKL, which is why it lives here (the CLI and the library import this module before torch).
_os.environ.setdefault("MKL_DYNAMIC", "FALSE")

import logging as _logging  # noqa: E402


class _NoTorchvisionFallbackNote(_logging.Filter):
    """Drops transformers' "X requires torchvision (not installed); falling back to XPil ... Install torchvision"
    notes, printed when diffusers imports the image processors of pipelines' safety checkers and feature
    extractors. animator keeps torchvision out on purpose (pip brings a CUDA torch of several GB with it) and never
    uses those processors, so the note would only send people to install it. Installed here, before anything of
    animator's (backends, notebook helpers, test models) can import transformers."""

    def filter(self, record: _logging.LogRecord) -> bool:
        return "requires torchvision (not installed); falling back" not in record.getMessage()


_logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionFallbackNote())

from animator.errors import AnimatorError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["AnimatorError", "render", "render_frames", "load_config", "batch", "sweep", "__version__"]


def __getattr__(name: str):
    if name in ("render", "render_frames"):
        from animator.rendering import api

        return getattr(api, name)
    if name == "load_config":
        from animator.keyframes import load_config

        return load_config
    if name in ("batch", "sweep"):  # many renders on Ray (animator/batching/: named so it does not hide these)
        from animator.batching import api

        return getattr(api, name)
    raise AttributeError(f"module 'animator' has no attribute {name!r}")
