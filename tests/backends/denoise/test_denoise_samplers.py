"""Sampler names -> diffusers schedulers built on a model's scheduler config."""

import importlib.util

import pytest

from animator.backends.denoise import SAMPLERS, build_scheduler
from animator.backends.denoise.samplers import SchedulerCache, normalize_sampler_name
from animator.errors import AnimatorError

# The SD 1.5 scheduler config, as a model folder ships it.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_name_builds_its_scheduler(name):
    spec = SAMPLERS[name]
    if spec.needs and importlib.util.find_spec(spec.needs) is None:
        with pytest.raises(AnimatorError, match=f"pip install {spec.needs}"):
            build_scheduler(name, SD15_SCHEDULER)
        return
    scheduler = build_scheduler(name, SD15_SCHEDULER)
    assert type(scheduler).__name__ == spec.scheduler_class
    # the model's training schedule is kept, whatever the sampler
    assert scheduler.config.beta_schedule == "scaled_linear" and scheduler.config.beta_end == 0.012
    if "use_karras_sigmas" in spec.overrides:
        assert scheduler.config.use_karras_sigmas is spec.overrides["use_karras_sigmas"]
    scheduler.set_timesteps(4)
    assert len(scheduler.timesteps) >= 4


def test_karras_variant_differs_from_plain():
    plain = build_scheduler("dpm++_2m", SD15_SCHEDULER)
    karras = build_scheduler("dpm++_2m_karras", SD15_SCHEDULER)
    plain.set_timesteps(10)
    karras.set_timesteps(10)
    assert plain.sigmas.tolist() != karras.sigmas.tolist()
    assert build_scheduler("dpm++_2m_sde", SD15_SCHEDULER).config.algorithm_type == "sde-dpmsolver++"


def test_unknown_sampler_lists_the_valid_ones():
    with pytest.raises(AnimatorError) as info:
        build_scheduler("euler_b", SD15_SCHEDULER)
    message = str(info.value)
    assert "euler_b" in message and "sampler" in message
    for name in ("euler", "euler_a", "dpm++_2m_karras", "ddim", "lms", "lcm"):
        assert name in message


@pytest.mark.parametrize(
    "alias, name",
    [
        ("Euler a", "euler_a"),
        ("DPM++ 2M Karras", "dpm++_2m_karras"),
        ("k_lms", "lms"),
        ("DDIM", "ddim"),
        ("dpmpp_2m", "dpm++_2m"),
    ],
)
def test_names_users_know_are_accepted(alias, name):
    assert normalize_sampler_name(alias) == name


def test_trailing_spacing_reaches_the_last_training_step():
    leading = build_scheduler("euler_a", SD15_SCHEDULER)
    trailing = build_scheduler("euler_a", SD15_SCHEDULER, trailing=True)
    leading.set_timesteps(2)
    trailing.set_timesteps(2)
    assert int(trailing.timesteps[0]) == 999 and int(leading.timesteps[0]) < 999


def test_cache_builds_each_name_once_across_a_sampler_schedule():
    cache = SchedulerCache(SD15_SCHEDULER)
    schedule = ["euler_a", "euler_a", "ddim", "euler_a", "Euler a", "ddim", "dpm++_2m"]
    built = [cache.get(name) for name in schedule]
    assert cache.builds == 3
    assert built[0] is built[1] is built[3] is built[4] and built[2] is built[5]
