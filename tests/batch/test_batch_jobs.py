"""Batch jobs without Ray: --set values, the cross product and job names, section chains and their join,
summary.csv, the contact sheet's frame choice."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from animator.batching.contact import frame_indices, label_text
from animator.batching.jobs import (
    Job,
    batch_jobs,
    parse_set,
    parse_sets,
    single_overrides,
    split_values,
    sweep_jobs,
    unique_names,
)
from animator.batching.runner import DONE, FAILED, INTERRUPTED, JobResult
from animator.batching.sections import crossfade_weights, joined_frames, section_chains
from animator.batching.summary import COLUMNS, RESUME_NOTE, format_table, summary_row, write_summary
from animator.errors import AnimatorError
from animator.keyframes import config_from_dict


def test_set_values_are_yaml_scalars_split_at_top_level_commas():
    assert parse_set("seed=1,2,3") == ("seed", [1, 2, 3])
    assert parse_set("generation.strength=0.5,0.6") == ("generation.strength", [0.5, 0.6])
    assert parse_set("output.gif=true") == ("output.gif", [True])
    assert parse_set("init_image=null") == ("init_image", [None])
    # quotes keep a comma inside one value, and YAML removes them
    assert parse_set('prompts.0="a cat, oil",a dog') == ("prompts.0", ["a cat, oil", "a dog"])
    assert parse_set("prompts.0='it''s, here'") == ("prompts.0", ["it's, here"])
    # commas inside brackets belong to the value: a schedule expression with max(a,b)
    assert split_values("0:(max(1,t/2)),0:(2)") == ["0:(max(1,t/2))", "0:(2)"]
    assert parse_set('motion.translation_z="0:(1), 10:(2)",0:(3)')[1] == ["0:(1), 10:(2)", "0:(3)"]


@pytest.mark.parametrize("spec", ["seed", "=3", "a..b=1", "seed 1=2", "mo-tion=1"])
def test_a_set_without_a_dotted_key_is_refused(spec):
    with pytest.raises(AnimatorError) as err:
        parse_set(spec)
    assert err.value.field == "--set" and "KEY=VALUE" in err.value.message


def test_a_key_set_twice_and_a_render_given_several_values_are_refused():
    with pytest.raises(AnimatorError, match="seed is set twice"):
        parse_sets(["seed=1", "seed=2"])
    with pytest.raises(AnimatorError, match="has 2 values; a render takes one") as err:
        single_overrides(["prompts.0=a, b"])
    assert "quote" in err.value.hint
    assert single_overrides(["prompts.0='a, b'", "seed=4"]) == {"prompts.0": "a, b", "seed": 4}


def test_sweep_is_the_cross_product_named_by_the_values_that_differ(tmp_path):
    path = tmp_path / "anim.yaml"
    jobs = sweep_jobs(path, {"seed": [1, 2], "generation.strength": [0.5, 0.6, 0.7], "fps": [8]})
    assert len(jobs) == 6
    # the last key varies fastest; a single value is a plain override of every job, not part of the name
    assert [(j.overrides["seed"], j.overrides["generation.strength"]) for j in jobs] == [
        (1, 0.5), (1, 0.6), (1, 0.7), (2, 0.5), (2, 0.6), (2, 0.7)
    ]  # fmt: skip
    assert all(j.overrides["fps"] == 8 and "fps" not in j.label for j in jobs)
    assert jobs[1].name == "anim-seed=1-strength=0.6" and jobs[1].label == {"seed": 1, "generation.strength": 0.6}
    assert len({j.name for j in jobs}) == 6 and all(j.file == str(path.resolve()) for j in jobs)
    assert label_text(jobs[1].label, jobs[1].name) == "seed = 1\nstrength = 0.6"


def test_names_stay_unique_and_safe_for_files(tmp_path):
    assert unique_names(["a", "a", "a-2", "b", "a"]) == ["a", "a-2", "a-2-2", "b", "a-3"]
    jobs = sweep_jobs(tmp_path / "x.yaml", {"prompts.0": ["a cat / a dog", "a cat ; a dog"]})
    assert [j.name for j in jobs] == ["x-0=a_cat_a_dog", "x-0=a_cat_a_dog-2"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    both = batch_jobs([tmp_path / "one" / "anim.yaml", tmp_path / "two" / "anim.yaml"], {"seed": 3})
    assert [j.name for j in both] == ["anim", "anim-2"] and all(j.overrides == {"seed": 3} for j in both)


def _config(tmp_path, sections, frames=24):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    return config_from_dict(
        {"frames": frames, "init_image": "a.png", "sections": sections}, source="<test>", base_dir=str(tmp_path)
    )


def test_sections_after_previous_form_one_chain_and_restarts_are_independent_jobs(tmp_path):
    config = _config(
        tmp_path,
        [
            {"frames": "0:6", "start": "image", "image": "a.png"},
            {"frames": "6:12"},
            {"frames": "12:18", "start": "image", "image": "b.png", "crossfade": 3},
            {"frames": "18:24", "start": "noise"},
        ],
    )
    job = Job(name="song", file=str(tmp_path / "song.yaml"), overrides={"seed": 2})
    chains = section_chains(job, config.sections, tmp_path)
    assert [(c.start, c.stop, c.crossfade) for c in chains] == [(0, 12, 0), (12, 18, 3), (18, 24, 0)]
    assert [c.job.frames for c in chains] == [(0, 12), (12, 18), (18, 24)]
    assert [c.job.name for c in chains] == ["song-frames0-12", "song-frames12-18", "song-frames18-24"]
    assert chains[0].job.overrides["init_image"] == str((tmp_path / "a.png").resolve())
    assert chains[1].job.overrides["init_image"] == str((tmp_path / "b.png").resolve())
    assert chains[2].job.overrides["init_image"] is None  # from noise: no init image
    # the soundtrack goes on the joined video only; every chain keeps its lossless frames for the join
    assert all(c.job.overrides["seed"] == 2 and c.job.overrides["output.audio"] is False for c in chains)
    assert all(c.job.keep_frames for c in chains)


def test_the_join_fades_the_previous_last_frame_into_the_new_section(tmp_path):
    from animator.images import save_frame

    config = _config(
        tmp_path,
        [{"frames": "0:4", "start": "image", "image": "a.png"}, {"frames": "4:8", "start": "noise", "crossfade": 3}],
        frames=8,
    )
    chains = section_chains(Job(name="j", file=str(tmp_path / "j.yaml")), config.sections, tmp_path)
    values = {i: 10 * i for i in range(4)} | {i: 200 for i in range(4, 8)}
    for chain in chains:
        chain.job.frames_dir(tmp_path).mkdir(parents=True)
        for i in range(chain.start, chain.stop):
            save_frame(chain.job.frames_dir(tmp_path) / f"{i:06d}.png", np.full((4, 4, 3), values[i], np.uint8))
    got = [int(f[0, 0, 0]) for f in joined_frames(chains, tmp_path)]
    # frames 4, 5, 6 blend the last frame before the join (30) with the new ones (200) at 1/4, 2/4, 3/4
    assert got == [0, 10, 20, 30, round(30 + 170 / 4), round(30 + 170 / 2), round(30 + 3 * 170 / 4), 200]
    assert np.allclose(crossfade_weights(3), [0.25, 0.5, 0.75])


def test_summary_has_the_documented_columns_and_an_interrupted_job_says_how_to_resume(tmp_path):
    job = Job(name="a", file="/x/a.yaml", overrides={"seed": 1, "prompts.0": "a, b"})
    rows = [
        summary_row(job, JobResult("a", DONE, frames=12, seconds=1.5, fps=8.0, flicker=0.25, output="/o/a.mp4")),
        summary_row(job, JobResult("a", FAILED, error="/x/a.yaml:3: width: bad\n  hint: fix it")),
        summary_row(job, JobResult("a", INTERRUPTED, error="interrupted")),
    ]
    write_summary(tmp_path / "summary.csv", rows)
    with open(tmp_path / "summary.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert tuple(read[0]) == COLUMNS
    assert COLUMNS == ("job", "file", "overrides", "status", "frames", "seconds", "fps", "flicker", "output", "error")
    assert [r["status"] for r in read] == ["done", "failed", "failed"]
    assert read[0]["output"] == "/o/a.mp4" and read[0]["error"] == "" and read[0]["flicker"] == "0.25"
    assert read[1]["error"] == "/x/a.yaml:3: width: bad\n  hint: fix it" and read[1]["output"] == ""
    assert read[2]["error"] == RESUME_NOTE
    assert read[0]["overrides"] == '{"seed": 1, "prompts.0": "a, b"}'
    table = format_table(rows)
    assert "    /x/a.yaml:3: width: bad" in table and table.endswith("1 done, 0 skipped, 2 failed")


def test_contact_sheet_takes_the_first_last_and_quarter_frames():
    assert frame_indices(101) == [0, 25, 50, 75, 100]
    assert frame_indices(12) == [0, 3, 6, 8, 11]
    assert frame_indices(1) == [0, 0, 0, 0, 0] and frame_indices(0) == []


def test_render_takes_set_and_refuses_a_bad_one(tmp_path, init_image):
    import json

    import yaml

    from animator.cli import main
    from animator.video import probe

    result = CliRunner().invoke(main, ["render", str(tmp_path / "none.yaml"), "--set", "seed"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    file = tmp_path / "anim.yaml"
    data = {"width": 64, "height": 64, "frames": 12, "fps": 12, "init_image": str(init_image), "prompts": {0: "a"}}
    file.write_text(yaml.safe_dump(data))
    out, run_dir = tmp_path / "out.mp4", tmp_path / "run"
    args = ["render", str(file), "-o", str(out), "--run-dir", str(run_dir), "-q", "--no-metrics"]
    sets = ["--set", "frames=3", "--set", "fps=6", "--set", "prompts.0='a cat, oil'", "--set", "output.gif=true"]
    result = CliRunner().invoke(main, args + sets)
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.frames, info.fps) == (3, 6) and out.with_suffix(".gif").is_file()
    recorded = json.loads((run_dir / "run.json").read_text())["overrides"]
    assert recorded == {"output.gif": True, "frames": 3, "fps": 6, "prompts.0": "a cat, oil"}


def test_a_first_section_from_previous_is_refused_with_its_field(tmp_path):
    class Section:  # the config refuses it on load; the planner says so too for sections built in code
        frames, start, image, crossfade = range(0, 4), "previous", None, 0

    with pytest.raises(AnimatorError) as err:
        section_chains(Job(name="j", file=str(Path(tmp_path) / "j.yaml")), [Section()], tmp_path)
    assert err.value.field == "sections.0.start"


def test_overrides_reach_list_items_by_index(tmp_path):
    """A sweep over a field of a list item (`sections.2.crossfade`, `controlnet.0.weight`) names it by index."""
    sections = [
        {"frames": "0:6", "start": "image", "image": "a.png"},
        {"frames": "6:12"},
        {"frames": "12:24", "start": "noise", "crossfade": 2},
    ]
    for name in ("a.png", "c.png"):
        (tmp_path / name).write_bytes(b"")
    data = {"frames": 24, "init_image": "a.png", "sections": sections, "prompts": {0: "a", 12: "b"}}
    config = config_from_dict(
        data,
        source="<test>",
        base_dir=str(tmp_path),
        overrides={"sections.2.crossfade": 5, "sections.0.image": "c.png", "prompts.12": "c"},
    )
    assert [s.crossfade for s in config.sections] == [0, 0, 5]
    assert config.sections[0].image == (tmp_path / "c.png").resolve()
    assert dict(config.prompts)["12"] == "c" and dict(config.prompts)["0"] == "a"
    for dotted in ("sections.3.crossfade", "sections.x.crossfade"):
        with pytest.raises(AnimatorError, match="is not an item of a 3-item list") as err:
            config_from_dict(data, source="<test>", base_dir=str(tmp_path), overrides={dotted: 1})
        assert err.value.field == dotted and "0 to 2" in err.value.hint


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "nonsense"])
def test_a_cluster_address_that_does_not_answer_is_refused_at_once(address):
    """ray.init would wait minutes for a head node that is not there; the batch says so before starting anything."""
    ray = pytest.importorskip("ray")
    from animator.batching.queue import ray_session

    if ray.is_initialized():
        pytest.skip("this process already runs a Ray (the batch would use it)")
    with pytest.raises(AnimatorError) as err:
        with ray_session(address):
            pass
    assert err.value.field == "--address" and address in err.value.message and "HOST:PORT" in err.value.hint
    assert not ray.is_initialized()
