"""A keyframe file with ``sections:`` as jobs of a batch, and the join of their frames into one video.

A section that starts from ``previous`` continues the picture of the section before it, so a run of such sections
is one chain: one job renders the chain's whole frame range sequentially (exactly the frames a sequential render
gives). A section that starts from an ``image`` or from ``noise`` waits for nothing: it starts a new chain, an
independent job (``frames=range(a, b)`` with the image as ``init_image``, or without an init image to start from
the denoiser). The chains run in parallel; their lossless frames are then joined in order into one video, with
the soundtrack of the file, and with a cross-fade of ``crossfade`` frames at a join: the previous section's last
frame fading into the new section's first frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.batching.jobs import Job
from animator.errors import AnimatorError


@dataclass(frozen=True)
class Chain:
    """Sections rendered as one job: frames ``start .. stop-1``; ``crossfade`` frames fade in from the previous
    chain's last frame."""

    job: Job
    start: int
    stop: int
    crossfade: int


def section_chains(job: Job, sections: Sequence, base_dir: Path) -> list[Chain]:
    """The jobs of a file's ``sections`` (objects with ``frames`` (a range), ``start``, ``image``, ``crossfade``).
    ``base_dir`` resolves a relative section image (the keyframe file's folder)."""
    groups: list[list] = []
    for section in sections:
        if section.start == "previous":
            if not groups:
                raise AnimatorError(
                    "the first section cannot start from `previous`: there is no section before it",
                    file=job.file,
                    field="sections.0.start",
                    hint="start it from `image` or `noise`",
                )
            groups[-1].append(section)
        else:
            groups.append([section])
    chains = []
    for group in groups:
        first, start, stop = group[0], group[0].frames.start, group[-1].frames.stop
        overrides = dict(job.overrides) | {"output.audio": False, "output.gif": False}  # added to the joined video
        if first.start == "image":
            image = Path(first.image)
            overrides["init_image"] = str(image if image.is_absolute() else (base_dir / image).resolve())
        elif first.start == "noise":
            overrides["init_image"] = None
        chains.append(
            Chain(
                job=Job(
                    name=f"{job.name}-frames{start}-{stop}",
                    file=job.file,
                    overrides=overrides,
                    label=job.label,
                    frames=(start, stop),
                    keep_frames=True,
                ),
                start=start,
                stop=stop,
                crossfade=int(first.crossfade or 0) if chains else 0,
            )
        )
    return chains


def crossfade_weights(count: int) -> np.ndarray:
    """Weights of the new section in the ``count`` frames of a cross-fade: strictly between 0 and 1, rising."""
    return np.arange(1, count + 1, dtype=np.float32) / (count + 1)


def joined_frames(chains: Sequence[Chain], root: Path):
    """The frames of the whole animation in order, read from the chains' PNG frames, with the cross-fades."""
    from animator.images import load_frame

    previous_last = None
    for chain in chains:
        folder = chain.job.frames_dir(root)
        fade = crossfade_weights(min(chain.crossfade, chain.stop - chain.start)) if previous_last is not None else []
        for index in range(chain.start, chain.stop):
            path = folder / f"{index:06d}.png"
            if not path.is_file():
                raise AnimatorError(f"section frame {index} is missing ({path})", field="sections")
            frame = load_frame(path)
            offset = index - chain.start
            if offset < len(fade):
                blend = (1 - fade[offset]) * previous_last.astype(np.float32) + fade[offset] * frame
                frame = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
            yield frame
        previous_last = load_frame(folder / f"{chain.stop - 1:06d}.png")


def join_sections(chains: Sequence[Chain], root: Path, config, output: Path) -> int:
    """Writes the joined video (with the file's soundtrack when it has one and ``output.audio`` is on); returns
    its frame count."""
    from animator.video import EncodeSettings, VideoWriter, mux_audio

    out = config.output
    settings = EncodeSettings(codec=out.codec, crf=out.crf, preset=out.preset, pix_fmt=out.pix_fmt)
    count = 0
    with VideoWriter(output, width=config.width, height=config.height, fps=config.fps, settings=settings) as writer:
        for frame in joined_frames(chains, root):
            writer.write(frame)
            count += 1
    if out.audio and config.audio is not None:
        mux_audio(output, config.audio.path, offset_s=config.audio.offset)
    return count
