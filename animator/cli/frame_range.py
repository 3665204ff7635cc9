"""``--frames A:B`` of ``animator render`` and ``animator schedule``: frame indices, B exclusive, as a Python slice."""

from __future__ import annotations

import sys

from animator.errors import AnimatorError


def parse_frame_range(text: str | None) -> range | None:
    """``A:B`` as ``range(A, B)``; ``A`` omitted is 0, ``B`` omitted the end. Whether it fits the animation is
    :func:`animator.plan.frame_span`'s to say.

    A bare number is refused rather than guessed: ``--frames 6`` reads as "6 frames" to some and "from frame 6" to
    others (and ``animator audio --frames N`` is a count), and a wrong guess costs a whole render."""
    if not text:
        return None
    start_text, colon, stop_text = text.partition(":")
    if not colon:
        example = text.strip() if text.strip().isdigit() else "N"
        raise AnimatorError(
            f"takes a range A:B (frame indices, B exclusive), got {text!r}",
            field="--frames",
            hint=f"the first {example} frames: --frames :{example}; from frame {example} on: --frames {example}:",
        )
    try:
        return range(int(start_text) if start_text.strip() else 0, int(stop_text) if stop_text.strip() else sys.maxsize)
    except ValueError:
        raise AnimatorError(f"takes a range A:B of whole numbers (e.g. 0:48), got {text!r}", field="--frames") from None
