"""Prompt encoding cost: diffusers' ``encode_prompt`` against the weighted, chunked encoding, and the emphasis parse.

    .venv/bin/python benchmarks/bench_prompts.py [--json] [--device cpu|cuda]

The text encoder is SD 1.5's (CLIP ViT-L/14 text tower, 123 M parameters) with random weights: the same cost as the
real one. The tokenizer is the tiny offline byte-level one (one token per character), so a prompt's characters are
its tokens. Each case encodes a positive and a negative prompt once (what the prompt cache does per distinct text);
the median of several runs is printed, and with --json one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from types import SimpleNamespace


def timed(function, repeat: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="also print one JSON line per case")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionPipeline

    from animator.backends.denoise.conditioning import PromptEncoder
    from animator.keyframes.prompt_syntax import parse_prompt
    from animator.testing.tiny_sd import make_sd15_text_encoder, make_tiny_tokenizer

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text_encoder = make_sd15_text_encoder().eval().to(device)
    tokenizer = make_tiny_tokenizer()
    pipe = SimpleNamespace(tokenizer=tokenizer, text_encoder=text_encoder)
    encoder = PromptEncoder(pipe, sdxl=False, device=device)

    def diffusers_encode(positive, negative):
        # StableDiffusionPipeline.encode_prompt, unbound: it needs only these attributes of the pipeline
        holder = SimpleNamespace(tokenizer=tokenizer, text_encoder=text_encoder, unet=None, _lora_scale=None)
        with torch.inference_mode():
            return StableDiffusionPipeline.encode_prompt(holder, positive, device, 1, True, negative_prompt=negative)

    def ours(positive, negative):
        with torch.inference_mode():
            return encoder.encode(positive, negative)

    plain = "a castle on a hill at dusk, oil painting"
    weighted = "a (castle:1.3) on a ((hill)) at [dusk], oil painting"
    long = ", ".join(["a castle on a hill at dusk"] * 8)  # 215 tokens: 3 chunks
    negative = "blurry, lowres"
    cases = [
        ("encode_prompt (diffusers), plain, 1 chunk", lambda: diffusers_encode(plain, negative)),
        ("weighted chunked, plain, 1 chunk", lambda: ours(plain, negative)),
        ("weighted chunked, weighted, 1 chunk", lambda: ours(weighted, negative)),
        ("weighted chunked, plain, 3 chunks", lambda: ours(long, negative)),
        ("emphasis parse only, 3 chunks of text", lambda: parse_prompt(long)),
    ]
    print(
        f"{'case':46s} {'ms':>9s}   ({platform.processor() or platform.machine()}, {device}, torch {torch.__version__})"
    )
    for name, function in cases:
        seconds = timed(function, args.repeat)
        print(f"{name:46s} {seconds * 1000:9.2f}")
        if args.json:
            print(json.dumps({"bench": "prompts", "case": name, "ms": round(seconds * 1000, 3), "device": str(device)}))


if __name__ == "__main__":
    main()
