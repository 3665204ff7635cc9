"""Time one img2img frame, split into VAE encode / UNet steps / VAE decode.

Models: the tiny test pipeline (64x64) and the full-size SD 1.5 architecture with random weights (512x512; the
same cost as the real weights). Runs on the CPU, and on CUDA (fp16) when present.

    .venv/bin/python benchmarks/bench_denoise.py                 # tiny + SD 1.5 on CPU (+ CUDA)
    .venv/bin/python benchmarks/bench_denoise.py --skip-sd15-cpu # SD 1.5 only on CUDA (CPU takes minutes)
    .venv/bin/python benchmarks/bench_denoise.py --json          # also print one JSON line per row

CPU numbers for SD 1.5 use few steps (the per-step figure is what to compare); 2 CFG passes per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from animator.backends.denoise import load_denoiser  # noqa: E402
from animator.backends.denoise.diffusers_backend import DiffusersDenoiser  # noqa: E402
from animator.backends.denoise.loading import defaults_for  # noqa: E402
from animator.testing.tiny_sd import make_sd15_architecture, make_tiny_sd  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_frame(
    denoiser: DiffusersDenoiser,
    size: int,
    *,
    steps: int,
    strength: float,
    guidance: float,
    runs: int,
    warmup: bool = True,
    sampler: str = "euler_a",
) -> dict:
    """Best-of-``runs`` milliseconds for encode, UNet loop, decode and the whole img2img call."""
    device = denoiser.device
    image = torch.rand(1, 3, size, size, device=device)
    prompt = "a castle on a hill at dusk, detailed, golden light"
    generator = torch.Generator(device="cpu")
    best: dict[str, float] = {}
    unet_calls = []
    hook = denoiser.pipe.unet.register_forward_pre_hook(lambda module, args: unet_calls.append(1))
    try:
        denoiser.prompts.resolve(prompt)  # prompt encoding is cached per run: keep it out of the frame time
        for run in range(runs + int(warmup)):  # a warm-up run (allocator, cuDNN autotune) is not counted
            unet_calls.clear()
            with torch.inference_mode():
                embeddings = denoiser.prompts.resolve(prompt)
                _sync(device)
                t0 = time.perf_counter()
                init = denoiser._encode_image(image)
                _sync(device)
                t1 = time.perf_counter()
                latents = denoiser._sample(
                    init,
                    strength,
                    None,
                    embeddings,
                    guidance=guidance,
                    steps=steps,
                    generator=generator.manual_seed(run),
                    sampler=sampler,
                    image_size=(size, size),
                )
                _sync(device)
                t2 = time.perf_counter()
                denoiser._decode_latents(latents)
                _sync(device)
                t3 = time.perf_counter()
            if warmup and run == 0:
                continue
            row = {
                "encode_ms": (t1 - t0) * 1e3,
                "unet_ms": (t2 - t1) * 1e3,
                "decode_ms": (t3 - t2) * 1e3,
                "total_ms": (t3 - t0) * 1e3,
            }
            best = row if not best or row["total_ms"] < best["total_ms"] else best
    finally:
        hook.remove()
    best["unet_steps"] = len(unet_calls)
    best["ms_per_unet_step"] = best["unet_ms"] / max(len(unet_calls), 1)
    return best


def sd15_denoiser(device: torch.device, dtype: torch.dtype) -> DiffusersDenoiser:
    pipe = make_sd15_architecture(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return DiffusersDenoiser(
        pipe,
        name="sd15-random",
        architecture="sd1",
        flavour="standard",
        defaults=defaults_for("sd1", "standard"),
        device=device,
        dtype=dtype,
    )


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu x{torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs per row (after one warm-up)")
    parser.add_argument("--cpu-steps", type=int, default=4, help="SD 1.5 steps on the CPU (x strength 0.5)")
    parser.add_argument("--cuda-steps", type=int, default=25, help="SD 1.5 steps on CUDA (x strength 0.5)")
    parser.add_argument("--skip-sd15-cpu", action="store_true", help="skip the slow SD 1.5 CPU row")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tiny_folder = make_tiny_sd(Path(folder) / "tiny-sd")
        for device in devices:
            denoiser = load_denoiser(str(tiny_folder), device=str(device))
            result = time_frame(denoiser, 64, steps=4, strength=0.5, guidance=7.0, runs=max(args.runs, 3))
            rows.append(
                {
                    "model": "tiny-sd",
                    "size": 64,
                    "device": device_label(device),
                    "dtype": str(denoiser.dtype).replace("torch.", ""),
                    **result,
                }
            )
    for device in devices:
        if device.type == "cpu" and args.skip_sd15_cpu:
            continue
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        denoiser = sd15_denoiser(device, dtype)
        steps = args.cuda_steps if device.type == "cuda" else args.cpu_steps
        # On the CPU one frame takes minutes: no warm-up run (the allocator matters little next to the convolutions).
        on_cuda = device.type == "cuda"
        result = time_frame(
            denoiser, 512, steps=steps, strength=0.5, guidance=7.0, runs=args.runs if on_cuda else 1, warmup=on_cuda
        )
        rows.append(
            {
                "model": "sd15-arch (random)",
                "size": 512,
                "device": device_label(device),
                "dtype": str(dtype).replace("torch.", ""),
                **result,
            }
        )
        del denoiser
        if device.type == "cuda":
            torch.cuda.empty_cache()

    header = (
        f"{'model':<20} {'size':>5} {'device':<28} {'dtype':<8} {'steps':>5} {'encode ms':>10} "
        f"{'unet ms':>10} {'ms/step':>9} {'decode ms':>10} {'total ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['model']:<20} {row['size']:>5} {row['device'][:28]:<28} {row['dtype']:<8} {row['unet_steps']:>5} "
            f"{row['encode_ms']:>10.1f} {row['unet_ms']:>10.1f} {row['ms_per_unet_step']:>9.1f} "
            f"{row['decode_ms']:>10.1f} {row['total_ms']:>10.1f}"
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
