"""Model backends, each behind a small Protocol and chosen by a registry function:

- ``animator.backends.depth``: ``load_depth_estimator(spec)`` (offline prior, MiDaS/DPT, Depth Anything)
- ``animator.backends.denoise``: ``load_denoiser(spec)`` (diffusers img2img, ``none``)
- ``animator.backends.flow``: ``load_flow_estimator(name)`` (OpenCV DIS/Farneback, torchvision RAFT)
"""

import logging as _logging


class _NoTorchvisionFallbackNote(_logging.Filter):
    """Drops transformers' "X requires torchvision (not installed); falling back to XPil ... Install torchvision"
    notes, printed when diffusers imports the image processors of pipelines' safety checkers and feature
    extractors. animator keeps torchvision out on purpose (pip brings a CUDA torch of several GB with it) and never
    uses those processors, so the note would only send people to install it."""

    def filter(self, record: _logging.LogRecord) -> bool:
        return "requires torchvision (not installed); falling back" not in record.getMessage()


_logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionFallbackNote())
