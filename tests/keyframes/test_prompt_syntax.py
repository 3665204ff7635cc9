"""The web UI's prompt syntax: emphasis weights (its documented examples), BREAK, LoRA tags, errors, schedules."""

import re

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.keyframes import load_config
from animator.keyframes.prompt_syntax import (
    LoraTag,
    bounded,
    lora_weights_by_frame,
    mixed_lora_weights,
    parse_emphasis,
    parse_prompt,
    split_extra_networks,
)
from animator.keyframes.prompts import FramePrompt

# The web UI's documented examples (modules/prompt_parser.py, parse_prompt_attention's docstring and wiki), the
# weights written out by hand: (text, [(segment, weight), ...]).
WEB_UI_EXAMPLES = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("a (word)", [("a ", 1.0), ("word", 1.1)]),
    ("((word))", [("word", 1.21)]),
    ("(((word)))", [("word", 1.331)]),
    ("[word]", [("word", 1 / 1.1)]),
    ("[[word]]", [("word", 1 / 1.21)]),
    ("(word:1.5)", [("word", 1.5)]),
    ("(word:0.25)", [("word", 0.25)]),
    ("((word:1.5))", [("word", 1.65)]),
    ("[(word:1.5)]", [("word", 1.5 / 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (red:1.0) cat", [("a red cat", 1.0)]),
    (
        "a ((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.43),
            (" ", 1.0),
            ("on", 1 / 1.1),
            (" a ", 1.0),
            ("hill", 0.5),
            (", sun, ", 1.0),
            ("sky", 1.331),
            (".", 1.0),
        ],
    ),
    ("(a (b) c:2)", [("a ", 2.0), ("b", 2.2), (" c", 2.0)]),
    ("style: photo, (cat)", [("style: photo, ", 1.0), ("cat", 1.1)]),
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize(("text", "expected"), WEB_UI_EXAMPLES)
def test_emphasis_matches_the_web_ui_examples(text, expected):
    segments = parse_emphasis(text)
    assert [s.text for s in segments] == [t for t, _ in expected]
    assert [s.weight for s in segments] == pytest.approx([w for _, w in expected], abs=1e-12)
    assert not any(s.is_break for s in segments)


def test_nesting_multiplies_in_the_web_uis_order():
    # 1.1 * 1.1 in float64 is 1.2100000000000002, as in the web UI (the text encoder sees float32: 1.21)
    assert parse_emphasis("((x))")[0].weight == 1.1 * 1.1
    assert np.float32(parse_emphasis("((x))")[0].weight) == np.float32(parse_emphasis("(x:1.21)")[0].weight)


def test_break_ends_a_chunk():
    segments = parse_emphasis("a castle BREAK (a moat:1.2)")
    assert [(s.text, s.is_break) for s in segments] == [("a castle", False), ("BREAK", True), ("a moat", False)]
    assert segments[2].weight == 1.2
    # only the upper-case word: "break" and "BREAKING" are text
    assert [s.text for s in parse_emphasis("a break, BREAKING news")] == ["a break, BREAKING news"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(unbalanced", "'(' is never closed"),
        ("a [thing", "'[' is never closed"),
        ("a thing)", "')' closes nothing"),
        ("a thing]", "']' closes nothing"),
        ("(red:abc) cat", "'abc' in (text:WEIGHT) is not a number"),
        ("(a photo: dramatic light)", "is not a number"),
        ("(red:) cat", "is not a number"),
        ("a cat <lora:ink:strong>", "is not a number"),
        ("a cat <hypernet:ink:1>", "not supported"),
    ],
)
def test_syntax_errors_are_clear(text, message):
    with pytest.raises(AnimatorError, match=re.escape(message)) as info:
        parse_prompt(text)
    assert info.value.field == "prompt"


def test_error_messages_never_hold_a_whole_long_prompt():
    text = "word, " * 200_000 + "(oops"  # about 1.2 MB
    with pytest.raises(AnimatorError) as info:
        parse_prompt(text)
    assert len(str(info.value)) < 400
    assert bounded("x" * 1000).endswith("(+800 characters)")


def test_lora_tags_are_taken_out_of_the_text():
    text, tags = split_extra_networks(
        "a forest <lora:[LoRA][Horror]s4w3d0ffBlend_v10:0.8>, <lora:ink>, <lora:b:0.5:0.2>"
    )
    assert text == "a forest , , "
    assert tags == (LoraTag("[LoRA][Horror]s4w3d0ffBlend_v10", 0.8), LoraTag("ink", 1.0), LoraTag("b", 0.5))
    parsed = parse_prompt("embedding:myconcept in (a forest:1.2) <lora:ink:0.7>")
    assert parsed.embeddings == ("myconcept",)
    assert parsed.loras == (LoraTag("ink", 0.7),)
    assert parsed.text == "myconcept in (a forest:1.2) "


def test_lora_weights_follow_cross_fades_and_frames():
    # a cross-fade from a prompt with the LoRA at 0.8 to one without: 0.8 * 0.25 left
    mix = (("a <lora:ink:0.8>", "", 0.25), ("b", "<lora:blur:1>", 0.75))
    assert mixed_lora_weights(mix) == pytest.approx({"ink": 0.2, "blur": 0.75})
    assert mixed_lora_weights([("<lora:ink:0.5> a <lora:ink:0.5>", "", 1.0)]) == {"ink": 1.0}
    prompts = [FramePrompt("a <lora:ink:0.5>"), FramePrompt("a"), FramePrompt("x", mix=mix)]
    table = lora_weights_by_frame(prompts)
    assert sorted(table) == ["lora.blur", "lora.ink"]
    np.testing.assert_allclose(table["lora.ink"], [0.5, 0.0, 0.2])
    np.testing.assert_allclose(table["lora.blur"], [0.0, 0.0, 0.75])


def _write(tmp_path, body: str):
    path = tmp_path / "anim.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_keyframe_file_errors_have_file_line_and_field(tmp_path):
    path = _write(tmp_path, "frames: 10\nprompts:\n  0: a cat\n  5: a (red cat\n")
    with pytest.raises(AnimatorError, match="never closed") as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.line == 4
    assert info.value.field == "prompts.5"


def test_backtick_weights_are_numbers_at_validation(tmp_path):
    path = _write(tmp_path, "frames: 10\nprompts:\n  0: a (mist:`0.5+0.5*sin(t/24)`) over <lora:ink:`t/10`>\n")
    config = load_config(path)  # a backtick expression stands for a number: no error
    assert config.prompts


def _cli(args):
    from click.testing import CliRunner

    from animator.cli import main

    return CliRunner().invoke(main, args)


def test_prompt_command_without_a_model(tmp_path):
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "ink.safetensors").write_bytes(b"")
    path = _write(
        tmp_path,
        "frames: 10\nprompts:\n  0: a (red:`1+t/10`) cat <lora:ink:0.8> <lora:gone:1> --neg [blurry]\n"
        "backends:\n  lora_dirs: [loras]\n",
    )
    result = _cli(["prompt", str(path), "--frame", "5"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "'red' 1.5" in out and "'blurry' 0.909" in out
    assert f"LoRA ink weight 0.8: {tmp_path / 'loras' / 'ink.safetensors'}" in out
    assert f"LoRA gone weight 1: NOT FOUND in {tmp_path / 'loras'}" in out
    assert "token chunks need the model's tokenizer" in out


def test_prompt_command_with_the_models_tokenizer(tmp_path, tiny_model):
    path = _write(tmp_path, f"frames: 3\nprompts:\n  0: a (cat:1.5) BREAK dog\nbackends:\n  denoise: {tiny_model}\n")
    result = _cli(["prompt", str(path), "--frame", "1"])
    assert result.exit_code == 0, result.output
    # the tiny tokenizer has one token per character
    assert "chunk 1/2 (4 of 75 tokens): a:1 c:1.5 a:1.5 t:1.5" in result.output
    assert "chunk 2/2 (3 of 75 tokens): d:1 o:1 g:1" in result.output
    assert _cli(["prompt", str(path), "--frame", "3"]).exit_code == 2


def test_every_rendered_frame_is_checked(tmp_path):
    from animator.keyframes import evaluate

    # prefix, suffix and negative_prompt are joined to every frame's prompt: checked as the frames render them
    path = _write(tmp_path, "frames: 4\nnegative_prompt: '[blurry'\nprompts:\n  0: a cat\n")
    with pytest.raises(AnimatorError, match="never closed") as info:
        evaluate(load_config(path))
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 2, "negative_prompt")


def test_deforum_import_keeps_the_web_ui_meaning_and_notes_networks(tmp_path):
    from animator.keyframes.importers.deforum import convert_deforum

    settings = {
        "max_frames": 10,
        "prompts": {"0": "ENTER YOUR PROMPT :) <lora:ink_wash:0.8>", "5": "a (castle, [moat --neg embedding:bad_hands"},
        "animation_prompts_negative": "(blurry",
    }
    result = convert_deforum(settings)
    assert result.data["prompts"] == {
        0: "ENTER YOUR PROMPT :\\) <lora:ink_wash:0.8>",
        5: "a (castle, [moat]) --neg embedding:bad_hands",
    }
    assert result.data["negative_prompt"] == "(blurry)"
    notes = "\n".join(result.warnings)
    assert "LoRAs (ink_wash): set backends.lora_dirs" in notes
    assert "embeddings (bad_hands): set backends.embedding_dirs" in notes
    assert "prompt 0: unbalanced brackets written as the web UI reads them" in notes
    # the repaired prompts mean what the web UI made of the originals
    assert [(s.text, s.weight) for s in parse_emphasis("a (castle, [moat])")] == [
        ("a ", 1.0),
        ("castle, ", 1.1),
        ("moat", 1.0),
    ]
    path = tmp_path / "imported.yaml"
    path.write_text(result.to_yaml())
    from animator.keyframes import evaluate

    assert len(evaluate(load_config(path)).prompts) == 10


def test_every_corpus_file_imports_to_prompts_that_parse(corpus_dir, tmp_path):
    from animator.keyframes import evaluate
    from animator.keyframes.importers.deforum import import_deforum

    files = sorted((corpus_dir / "deforum").glob("*.json"))
    assert files
    for file in files:
        path = tmp_path / (file.stem + ".yaml")
        path.write_text(import_deforum(file).to_yaml())
        evaluate(load_config(path))  # every frame's prompt checked


def test_networks_are_looked_up_before_any_model_loads(tmp_path):
    from animator.keyframes.prompt_syntax import check_networks, find_networks

    loras, more, embeddings = tmp_path / "loras", tmp_path / "more", tmp_path / "emb"
    for folder in (loras, more, embeddings):
        folder.mkdir()
    (more / "ink.safetensors").write_bytes(b"")
    (loras / "ink.safetensors").write_bytes(b"")  # the earlier folder wins
    (embeddings / "easynegative.safetensors").write_bytes(b"")
    texts = ["a cat <lora:ink:0.5>, easynegative", "embedding:easynegative, a dog --neg <lora:ink:1>"]
    report = check_networks(texts, [loras, more], [embeddings])
    assert report.loras == (("ink", loras / "ink.safetensors"),)
    assert report.embeddings == (("easynegative", embeddings / "easynegative.safetensors"),)
    assert find_networks(["easynegatives everywhere"], (), [embeddings]).embeddings == ()  # whole words only
    with pytest.raises(AnimatorError, match="LoRA 'gone' not found") as info:
        check_networks(["<lora:gone:1>"], [loras, more])
    assert info.value.field == "backends.lora_dirs" and str(more) in info.value.message
    with pytest.raises(AnimatorError, match="embedding 'nothing' not found") as info:
        check_networks(["embedding:nothing"], (), [embeddings])
    assert info.value.field == "backends.embedding_dirs"
    assert find_networks(["<lora:../escape:1>"], [loras]).missing() == ["LoRA '../escape'"]
