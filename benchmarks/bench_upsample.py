"""Sub-pixel upsampling (``backends.subpixel_upsample``) against diffusers' own Upsample2D, SD 1.5 architecture.

    .venv/bin/python benchmarks/bench_upsample.py                   # CPU float32 (size 256) and CUDA fp16 (512)
    .venv/bin/python benchmarks/bench_upsample.py --size 512 --repeats 3 --json
    .venv/bin/python benchmarks/bench_upsample.py --compile         # also torch.compile'd (inductor), CUDA only
    .venv/bin/python benchmarks/bench_upsample.py --cudnn-benchmark # also with cuDNN's algorithm search, CUDA only

Rows: each upsampling layer of the UNet (a CFG batch of 2) and of the VAE decoder at its real shape, then the whole
VAE decoder and one UNet evaluation, each with diffusers' layers ("diffusers ms") and with the sub-pixel ones
("subpixel ms"), best of ``--repeats`` after a warm-up; "GFLOP" columns count the arithmetic (torch's counter);
"max rel diff" is the largest difference of the two outputs relative to the output's largest magnitude (float32:
~1e-6; float16: a few 1e-3, the rounding of the summed weights). Random weights, the same cost as the real ones.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from animator.backends.subpixel import use_subpixel_upsampling  # noqa: E402
from animator.testing.tiny_sd import make_sd15_architecture  # noqa: E402


def best_ms(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN / cuDNN algorithm choice, compiling
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def compare(name: str, module, make_input, *, device: torch.device, repeats: int, compile: bool) -> dict:
    """Times ``module`` with diffusers' upsampling and a copy with sub-pixel upsampling on the same input."""
    switched = copy.deepcopy(module)
    layers = use_subpixel_upsampling(switched)
    channels_last = device.type == "cuda"
    if channels_last:
        module.to(memory_format=torch.channels_last)
        switched.to(memory_format=torch.channels_last)
    inputs = make_input()
    if channels_last:  # as a render feeds them (speed_up_module's layout)
        inputs = torch.utils._pytree.tree_map(
            lambda value: (
                value.contiguous(memory_format=torch.channels_last)
                if isinstance(value, torch.Tensor) and value.ndim == 4
                else value
            ),
            inputs,
        )
    row = {
        "name": name,
        "device": device.type,
        "dtype": str(next(module.parameters()).dtype).replace("torch.", ""),
        "layers": layers,
        "compiled": compile,
    }
    outputs = {}
    for label, eager in (("diffusers", module), ("subpixel", switched)):
        model = torch.compile(eager, dynamic=False) if compile else eager
        with torch.inference_mode():
            # one eager call gives the output to compare and the arithmetic (compiled graphs hide their operations
            # from the counter)
            with FlopCounterMode(display=False) as counter:
                outputs[label] = _tensor(eager(*inputs[0], **inputs[1])).float()
            row[f"{label}_gflop"] = round(counter.get_total_flops() / 1e9, 2)

            def call(model=model):
                return model(*inputs[0], **inputs[1])

            row[f"{label}_ms"] = round(best_ms(call, device, repeats), 3)
    row["speedup"] = round(row["diffusers_ms"] / row["subpixel_ms"], 3)
    scale = outputs["diffusers"].abs().max().clamp_min(1e-12)
    row["max_rel_diff"] = float(f"{((outputs['subpixel'] - outputs['diffusers']).abs().max() / scale).item():.3g}")
    return row


def _tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    return output.sample if hasattr(output, "sample") else output[0]


def rows_for(
    device: torch.device,
    dtype: torch.dtype,
    size: int,
    *,
    repeats: int,
    compile: bool,
    layers_only: bool,
    cudnn_benchmark: bool = False,
) -> list[dict]:
    pipe = make_sd15_architecture(dtype=None if dtype == torch.float32 else dtype, device=device)
    unet, decoder = pipe.unet.eval(), pipe.vae.decoder.eval()
    latent = size // 8
    rows = []

    def shaped(batch, channels, side):
        return lambda: ((torch.randn(batch, channels, side, side, device=device, dtype=dtype),), {})

    for index, block in enumerate(unet.up_blocks):
        for layer in block.upsamplers or ():
            side = latent // 2 ** (len(unet.up_blocks) - 1 - index)
            rows.append(
                compare(
                    f"unet.up_blocks.{index}.upsampler {layer.channels}ch {side}->{2 * side}",
                    layer,
                    shaped(2, layer.channels, side),
                    device=device,
                    repeats=repeats,
                    compile=compile,
                )
            )
    for index, block in enumerate(decoder.up_blocks):
        for layer in block.upsamplers or ():
            side = latent * 2**index
            rows.append(
                compare(
                    f"vae.decoder.up_blocks.{index}.upsampler {layer.channels}ch {side}->{2 * side}",
                    layer,
                    shaped(1, layer.channels, side),
                    device=device,
                    repeats=repeats,
                    compile=compile,
                )
            )
    if not layers_only:
        rows.append(
            compare(
                f"vae decoder {size}x{size}",
                decoder,
                shaped(1, 4, latent),
                device=device,
                repeats=repeats,
                compile=compile,
            )
        )
        text = torch.randn(2, 77, 768, device=device, dtype=dtype)
        timestep = torch.tensor(500.0, device=device)
        rows.append(
            compare(
                f"unet eval (CFG batch 2) {size}x{size}",
                unet,
                lambda: (
                    (torch.randn(2, 4, latent, latent, device=device, dtype=dtype), timestep),
                    {"encoder_hidden_states": text},
                ),
                device=device,
                repeats=repeats,
                compile=compile,
            )
        )
    for row in rows:
        row["size"] = size
        if cudnn_benchmark:
            row["name"] += ", cudnn.benchmark"
    del pipe, unet, decoder
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def print_table(rows: list[dict]) -> None:
    header = [
        "what",
        "device",
        "dtype",
        "compiled",
        "diffusers ms",
        "subpixel ms",
        "speedup",
        "diffusers GFLOP",
        "subpixel GFLOP",
        "max rel diff",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [
            row["name"],
            row["device"],
            row["dtype"],
            "yes" if row["compiled"] else "no",
            row["diffusers_ms"],
            row["subpixel_ms"],
            row["speedup"],
            row["diffusers_gflop"],
            row["subpixel_gflop"],
            row["max_rel_diff"],
        ]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=None, help="image side (default: 256 on the CPU, 512 on CUDA)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default: 2 CPU, 20 CUDA)")
    parser.add_argument("--devices", default="cpu,cuda", help="comma list of cpu, cuda (cuda skipped without a GPU)")
    parser.add_argument("--layers-only", action="store_true", help="only the upsampling layers, not whole models")
    parser.add_argument("--compile", action="store_true", help="also torch.compile both versions (CUDA only)")
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="also every row with torch.backends.cudnn.benchmark on (CUDA only; off by default)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.devices.split(","):
        device = torch.device(name.strip())
        if device.type == "cuda" and not torch.cuda.is_available():
            print("no CUDA GPU: CUDA rows skipped", file=sys.stderr)
            continue
        cuda = device.type == "cuda"
        size = args.size or (512 if cuda else 256)
        repeats = args.repeats or (20 if cuda else 2)
        dtype = torch.float16 if cuda else torch.float32
        print(f"{device.type}: SD 1.5 UNet and VAE at {size}x{size}, {dtype} ...", file=sys.stderr, flush=True)
        rows += rows_for(device, dtype, size, repeats=repeats, compile=False, layers_only=args.layers_only)
        if args.compile and cuda:
            rows += rows_for(device, dtype, size, repeats=repeats, compile=True, layers_only=args.layers_only)
        if args.cudnn_benchmark and cuda:  # cuDNN times its algorithms per shape at the warm-up call, keeps the best
            torch.backends.cudnn.benchmark = True
            rows += rows_for(
                device, dtype, size, repeats=repeats, compile=False, layers_only=args.layers_only, cudnn_benchmark=True
            )
            torch.backends.cudnn.benchmark = False
    print_table(rows)
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
