"""The render as a package: a keyframe file in, a finished video (or a stream of frames) out.

=============  ==================================================================================================
``api``        the public entry points: :func:`render`, :func:`render_frames`, :func:`prepare`
``checks``     start checks: unreadable inputs, nothing to start from, an output that is an input, prompt LoRAs
``models``     the models a run loads once (typed by their Protocols), kept between renders on request
``control``    ControlNet units and each anchor's control inputs
``run_state``  what changes during a run besides the frames: colour references, the depth tracker
``context``    the frozen per-run context every step takes
``state``      an anchor frame and its checkpoint
``camera``     camera moves: the exact 3D warp, the 2D homography
``steps``      the per-frame steps both feedbacks share (denoise, depth, colour coherence, hybrid motion)
``feedback``   image or latent feedback: the first frame and each next anchor, in numbered steps
``tweens``     the frames between two anchors
``loop``       the frame loop, top to bottom
``inputs``     input and hybrid videos, frame by frame
``resume``     continuing a stopped render from its run folder
``outputs``    soundtrack, finishing passes and GIF, flicker and drift, versions, encoder cores
``tensors``    frames to and from the host, 8-bit rounding
``timing``     stage timer, frames-per-second clock
=============  ==================================================================================================

Imports go one way: ``api`` -> ``loop`` -> ``feedback``/``tweens`` -> ``steps``/``camera``/``control`` ->
``context`` -> ``models``/``run_state``/``state`` -> ``tensors``. Nothing here imports the notebook but ``api``
(the live view).
"""

from __future__ import annotations

__all__ = ["RenderResult", "prepare", "render", "render_frames"]


def __getattr__(name: str):
    if name in __all__:
        from animator.rendering import api

        return getattr(api, name)
    raise AttributeError(f"module 'animator.rendering' has no attribute {name!r}")
