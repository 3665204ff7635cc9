"""``animator prompt FILE --frame N``: what the model is told on one frame.

Prints the frame's positive and negative prompt (each side of a cross-fade with its share), the LoRAs and
embeddings they name with the file found (or the folders searched), and the 75-token chunks with every token's
attention weight. Tokens need the model's tokenizer: it is read from ``backends.denoise`` (or ``--model``) when that
is a diffusers folder or a hub id in the local cache; without one the text runs and their weights are printed.
"""

from __future__ import annotations

import click


@click.command("prompt")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--frame", "frame", type=int, default=0, show_default=True, help="The frame to show (0-based).")
@click.option(
    "--model", help="Tokenize with this model's tokenizer (a diffusers folder or hub id) instead of backends.denoise."
)
def command(file: str, frame: int, model: str | None) -> None:
    """Print the parsed prompt of one frame of FILE: chunks, each token with its weight, LoRAs and embeddings."""
    from animator.errors import AnimatorError
    from animator.keyframes import evaluate, load_config
    from animator.keyframes.prompt_syntax import find_networks, parse_prompt
    from animator.keyframes.prompts import format_number

    config = load_config(file)
    if not 0 <= frame < config.frames:
        raise AnimatorError(
            f"frame {frame} is outside the animation (frames 0..{config.frames - 1})",
            field="--frame",
        )
    prompt = evaluate(config, range(frame, frame + 1)).prompts[0]
    backends = config.backends
    lora_dirs = getattr(backends, "lora_dirs", ())
    embedding_dirs = getattr(backends, "embedding_dirs", ())
    tokenizer, why = _tokenizer(model or backends.denoise, getattr(backends, "model_config", None))

    click.echo(f"frame {frame} of {file}")
    for positive, negative, share in prompt.mix:
        if len(prompt.mix) > 1:
            click.echo(f"cross-fade share {format_number(share)}:")
        for side, text in (("positive", positive), ("negative", negative)):
            click.echo(f"{side} prompt: {text}")
            parsed = parse_prompt(text)
            report = find_networks([text], lora_dirs, embedding_dirs)
            weights = {tag.name: tag.weight for tag in parsed.loras}
            for name, path in report.loras:
                where = str(path) if path else "NOT FOUND in " + _folders(report.lora_dirs, "backends.lora_dirs")
                click.echo(f"  LoRA {name} weight {format_number(weights[name])}: {where}")
            for name, path in report.embeddings:
                where = (
                    str(path) if path else "NOT FOUND in " + _folders(report.embedding_dirs, "backends.embedding_dirs")
                )
                click.echo(f"  embedding {name}: {where}")
            if tokenizer is None:
                runs = " | ".join(
                    "BREAK" if s.is_break else f"{s.text!r} {format_number(s.weight)}" for s in parsed.segments
                )
                click.echo(f"  text runs and weights: {runs}")
            else:
                _print_chunks(parsed, tokenizer)
    if tokenizer is None:
        click.echo(f"token chunks need the model's tokenizer: {why}")


def _folders(folders, field: str) -> str:
    return ", ".join(map(str, folders)) if folders else f"no folder ({field} is not set)"


def _print_chunks(parsed, tokenizer) -> None:
    from animator.backends.denoise.conditioning import tokenize_prompt
    from animator.keyframes.prompts import format_number

    chunks = tokenize_prompt(parsed, tokenizer)
    for index, chunk in enumerate(chunks, 1):
        tokens = tokenizer.convert_ids_to_tokens(list(chunk.ids[1 : 1 + chunk.length]))
        shown = " ".join(
            f"{token.replace('</w>', '')}:{format_number(weight)}"
            for token, weight in zip(tokens, chunk.weights[1 : 1 + chunk.length])
        )
        click.echo(f"  chunk {index}/{len(chunks)} ({chunk.length} of {len(chunk.ids) - 2} tokens): {shown}")


def _tokenizer(spec, model_config) -> tuple[object | None, str]:
    """(the model's first CLIP tokenizer, "") or (None, why there is none). Reads only the tokenizer files."""
    import os
    from pathlib import Path

    text = os.fspath(spec) if spec is not None else "none"
    if text.strip().lower() in ("", "none"):
        return None, "backends.denoise is none (pass --model FOLDER_OR_HUB_ID)"
    path = Path(text).expanduser()
    if path.is_file():
        if model_config is None:
            return None, f"{text} is a single checkpoint file; pass --model with a diffusers folder of its kind"
        path = Path(model_config).expanduser()
    from transformers import CLIPTokenizer

    try:
        if path.is_dir():
            return CLIPTokenizer.from_pretrained(str(path / "tokenizer")), ""
        return CLIPTokenizer.from_pretrained(text, subfolder="tokenizer", local_files_only=True), ""
    except Exception as exc:  # missing files, not in the cache: say so and print the runs instead
        return None, f"could not read the tokenizer of {text} ({type(exc).__name__})"
