"""Frame hashes of short renders, recorded before the render was restructured: moving code must not change a pixel.

Each case renders a few frames on the CPU in float32 on one thread and hashes every frame's bytes. The hashes were
recorded with torch 2.13.0 on an x86-64 CPU whose kernels torch reports as ``AVX2``; another torch or
another instruction set may round a convolution differently, so there the test is skipped with the reason (the
frames of a diffusion render depend on every float sum).

Run ``ANIMATOR_RECORD_HASHES=1 pytest tests/rendering/test_frame_hashes.py -s`` to print the table anew.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
RECORDED_ON = {"torch": "2.13.0", "cpu": ("AVX2",)}

# case -> one 12-hex-digit sha256 prefix per frame, in order
RECORDED: dict[str, list[str]] = {
    "warp_only_demo": [
        "0aa44d869a7d",
        "0940781cbc73",
        "baf802c3b9fd",
        "b27c6261f2bd",
        "827d239bb114",
        "6ee3e8e8bf66",
        "575bec033702",
        "f403ed7908f1",
        "b0f0a5f78c9f",
        "085866095892",
    ],
    "image_feedback": [
        "f6b5a5ec363a",
        "3b316e05cdc2",
        "eca8c7ba40e5",
        "c1d19120f2ca",
        "f46b3291e89c",
        "8b1147940931",
        "34b105b48a7e",
    ],
    "latent_feedback": [
        "f6b5a5ec363a",
        "2737a504230f",
        "aec2f0574115",
        "aff55ad0a404",
        "ca427606fa67",
        "c33ebcd4d2fa",
        "230d07b21a3f",
    ],
    "mode_2d": [
        "f6b5a5ec363a",
        "46f2f9ae0a80",
        "2c6726f3c00e",
        "03a975aa71a2",
        "ba3aa036da80",
        "8c86868c5eb6",
        "11c59578e6e2",
    ],
    "mode_video": [
        "12bb391c751b",
        "77f172d7b9f1",
        "7c57128b09f6",
        "5c2b9bad85ea",
        "234ee3118bae",
        "0f8a8968a899",
        "c40aed33fc47",
    ],
    "cadence_3": [
        "f6b5a5ec363a",
        "7d906f4c0ff1",
        "b41788fb8734",
        "ee39ed453632",
        "a662204e081c",
        "f5a87c95fef7",
        "13c0e97979bc",
        "92eccf4152aa",
    ],
    # the uninterrupted image_feedback render's frames, then its eighth: a resume continues to the same pixels
    "resumed": [
        "f6b5a5ec363a",
        "3b316e05cdc2",
        "eca8c7ba40e5",
        "c1d19120f2ca",
        "f46b3291e89c",
        "8b1147940931",
        "34b105b48a7e",
        "6c5821fb2bc2",
    ],
}


def _write(folder: Path, **fields) -> Path:
    data = {
        "width": SIZE,
        "height": SIZE,
        "fps": 12,
        "frames": 7,
        "mode": "3d",
        "seed": 5,
        "output": {"preset": "ultrafast"},
        "coherence": {"color": "lab"},
        "motion": {"translation_z": "0:(6)", "translation_x": "0:(1.5)", "rotation_3d_y": "0:(0.8)"},
        "generation": {"steps": "0:(3)", "strength": "0:(0.55)", "noise": "0:(0.04)", "contrast": "0:(0.98)"},
    }
    for key, value in fields.items():
        data[key] = data[key] | value if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    path = folder / "anim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _sliding_clip(path: Path, frames: int) -> None:
    from PIL import Image
    from skimage import data

    from animator.video import EncodeSettings, VideoWriter

    big = np.asarray(Image.fromarray(data.astronaut()).resize((SIZE * 3, SIZE * 3), Image.Resampling.LANCZOS))
    with VideoWriter(
        path, width=SIZE, height=SIZE, fps=12, settings=EncodeSettings(crf=0, preset="ultrafast", pix_fmt="yuv444p")
    ) as writer:
        for i in range(frames):
            writer.write(np.ascontiguousarray(big[SIZE : 2 * SIZE, SIZE + 2 * i : 2 * SIZE + 2 * i]))


def _hashes(images) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:12] for image in images]


def _render_in_memory(path: Path, overrides: dict | None = None) -> list[str]:
    import animator

    return _hashes(event.image for event in animator.render_frames(path, overrides=overrides))


def _case_frames(case: str, tmp_path: Path, init_image: Path, tiny_model: Path) -> list[str]:
    model = {"backends": {"denoise": str(tiny_model), "device": "cpu"}}
    if case == "warp_only_demo":
        demo = Path(__file__).resolve().parents[2] / "keyframes" / "demo.yaml"
        return _render_in_memory(demo, {"width": 96, "height": 64, "frames": 10})
    if case == "image_feedback":
        return _render_in_memory(_write(tmp_path, init_image=str(init_image), **model))
    if case == "latent_feedback":
        return _render_in_memory(
            _write(
                tmp_path, init_image=str(init_image), generation={"feedback": "latent", "contrast": "0:(1)"}, **model
            )
        )
    if case == "mode_2d":
        return _render_in_memory(
            _write(
                tmp_path,
                init_image=str(init_image),
                mode="2d",
                motion={"zoom": "0:(1.04)", "angle": "0:(1.5)", "translation_x": "0:(2)"},
                **model,
            )
        )
    if case == "mode_video":
        _sliding_clip(tmp_path / "clip.mp4", 8)
        return _render_in_memory(
            _write(
                tmp_path,
                mode="video",
                video_input={"path": "clip.mp4"},
                backends={"denoise": str(tiny_model), "device": "cpu", "flow": "dis_fast"},
            )
        )
    if case == "cadence_3":
        return _render_in_memory(_write(tmp_path, init_image=str(init_image), cadence=3, frames=8, **model))
    if case == "resumed":
        import animator

        path = _write(tmp_path, init_image=str(init_image), frames=8, **model)
        stopped = {"count": 0}

        def stop_after_four(event) -> None:
            if type(event).__name__ == "FrameRendered":
                stopped["count"] += 1
                if stopped["count"] == 4:
                    raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            animator.render(
                path,
                tmp_path / "out.mp4",
                run_dir=tmp_path / "run",
                callbacks=[stop_after_four],
                frames_dir=tmp_path / "png",
                metrics=False,
            )
        animator.render(resume=tmp_path / "run", metrics=False)
        from PIL import Image

        pngs = sorted((tmp_path / "png").glob("*.png"))
        assert len(pngs) == 8
        return _hashes(np.asarray(Image.open(png).convert("RGB")) for png in pngs)
    raise AssertionError(case)


CASES = ["warp_only_demo", "image_feedback", "latent_feedback", "mode_2d", "mode_video", "cadence_3", "resumed"]


def _machine_matches() -> str | None:
    version = torch.__version__.split("+")[0]
    capability = torch.backends.cpu.get_cpu_capability()
    if version != RECORDED_ON["torch"] or capability not in RECORDED_ON["cpu"]:
        return (
            f"hashes recorded with torch {RECORDED_ON['torch']} on {RECORDED_ON['cpu']}, here {version} on {capability}"
        )
    return None


@pytest.mark.parametrize("case", CASES)
def test_frames_are_the_recorded_ones(case, tmp_path, init_image, tiny_model):
    hashes = _case_frames(case, tmp_path, init_image, tiny_model)
    if os.environ.get("ANIMATOR_RECORD_HASHES"):
        print(f"\nRECORDED[{case!r}] = {hashes!r}")
        return
    reason = _machine_matches()
    if reason:
        pytest.skip(reason)
    assert hashes == RECORDED[case]
