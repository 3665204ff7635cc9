"""Start checks: what would stop a render part-way (a file it reads is missing, nothing to start from, an output that
would overwrite one of its inputs), found before any model loads or a run folder is made."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    from animator.keyframes import AnimationConfig


def check_startable(config: AnimationConfig, *, resuming: bool = False) -> None:
    """Every file the render reads is there and every image among them can be read (the render's own reader, so a
    damaged image or a pixel bomb stops the render before a run folder is made), and there is something to start
    from. A resumed render starts from its checkpoint: it needs no init image."""
    from animator.keyframes import starts_from_nothing
    from animator.keyframes.inputs import check_input_files

    check_input_files(config, resuming=resuming)
    if not resuming and starts_from_nothing(config):
        raise AnimatorError(
            "there is nothing to start from: no init_image and no diffusion model",
            file=config.path,
            field="init_image",
            hint="set init_image in the keyframe file, or give --model",
        )


def check_output_is_not_an_input(config: AnimationConfig, output: Path) -> None:
    """Refuses an output path that is one of the files the render reads (by resolved path): writing it would
    destroy the input while the render still reads it."""
    from animator.keyframes import line_of
    from animator.keyframes.inputs import files_read_by

    target = Path(output).resolve()
    for field_name, path in files_read_by(config):
        if Path(path).resolve() == target:
            raise AnimatorError(
                f"the output {output} is also this render's input {field_name}: writing it would destroy the input",
                file=config.path,
                line=line_of(config, field_name),
                field="output",
                hint="choose another output path (-o)",
            )


def check_prompt_networks(config: AnimationConfig, prompts: list[str]) -> None:
    """Every LoRA (``<lora:NAME:W>``) and embedding (``embedding:NAME``) the rendered prompts name has a file in
    ``backends.lora_dirs`` / ``backends.embedding_dirs``: found before any model loads."""
    from animator.keyframes.prompt_syntax import check_networks

    check_networks(prompts, config.backends.lora_dirs, config.backends.embedding_dirs)
