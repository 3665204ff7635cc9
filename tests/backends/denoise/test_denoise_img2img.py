"""Img2img on the tiny real SD pipeline: shapes, range, seeds, strength 0, masked strength, prompt cache, SDXL."""

from contextlib import nullcontext

import pytest
import torch

from animator.backends.denoise import Denoiser, load_denoiser
from animator.backends.denoise.diffusers_backend import steps_for_strength
from animator.backends.denoise.samplers import SAMPLERS, sampler_names

PROMPT = "a red fox in the snow"


def run(denoiser, image, seeded, seed=1, **kwargs):
    args = dict(strength=0.6, guidance=7.0, steps=4, generator=seeded(seed))
    args.update(kwargs)
    return denoiser.img2img(image, PROMPT, **args)


def test_loaded_from_folder_is_a_denoiser(tiny_sd):
    assert isinstance(tiny_sd, Denoiser)
    info = tiny_sd.describe()
    assert info["architecture"] == "sd1" and info["flavour"] == "standard"
    assert info["pipeline_class"] == "StableDiffusionImg2ImgPipeline"
    assert info["dtype"] == "float32"  # CPU runs in float32
    assert tiny_sd.defaults.guidance > 1 and 0 < tiny_sd.defaults.strength < 1


def test_output_shape_range_dtype_and_change(tiny_sd, photo, seeded):
    out = run(tiny_sd, photo, seeded)
    assert out.shape == photo.shape and out.dtype == torch.float32 and out.device == photo.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert (out - photo).abs().mean() > 1e-3  # it really denoised something


def test_batch_of_two_frames(tiny_sd, photo, seeded):
    batch = torch.cat([photo, photo.flip(-1)])
    out = run(tiny_sd, batch, seeded)
    assert out.shape == batch.shape
    assert not torch.equal(out[0], out[1])


def test_same_seed_same_frame_different_seed_different_frame(tiny_sd, photo, seeded):
    first = run(tiny_sd, photo, seeded, seed=7)
    again = run(tiny_sd, photo, seeded, seed=7)
    other = run(tiny_sd, photo, seeded, seed=8)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 1e-3


def test_strength_zero_returns_input_without_vae_round_trip(tiny_sd, photo, seeded):
    calls = []
    hook = tiny_sd.pipe.vae.register_forward_pre_hook(lambda module, args: calls.append(1))
    encode = tiny_sd.pipe.vae.encode
    try:
        tiny_sd.pipe.vae.encode = lambda *a, **k: calls.append("encode") or encode(*a, **k)
        out = run(tiny_sd, photo, seeded, strength=0.0)
        zero_mask = run(tiny_sd, photo, seeded, strength=0.0, full_denoise_mask=torch.zeros_like(photo[:, :1]))
    finally:
        hook.remove()
        del tiny_sd.pipe.vae.encode
    assert torch.equal(out, photo) and torch.equal(zero_mask, photo)
    assert calls == []  # a VAE round trip would change the picture (and cost time)


def test_steps_times_strength_below_one_still_denoises(tiny_sd, photo, seeded):
    assert steps_for_strength(2, 0.3) == 4 and steps_for_strength(4, 0.5) == 4 and steps_for_strength(10, 0.1) == 10
    # 2 * 0.2 < 1: plain diffusers would run 0 steps; we run one at the noise level of strength 0.2.
    init, final = _vae_latents(tiny_sd, lambda: run(tiny_sd, photo, seeded, strength=0.2, steps=2))
    assert (final - init).abs().mean() > 1e-4


def _vae_latents(denoiser, fn):
    """Run ``fn``; return (init latents the encoder made, latents handed to the decoder), both unscaled Bx4xhxw."""
    vae = denoiser.pipe.vae
    seen = {}

    def keep_init(module, args, moments):
        seen.setdefault("init", moments[:, :4])  # quant_conv outputs the latent moments: the mean comes first

    def keep_final(module, args):
        seen.setdefault("final", args[0])

    hooks = [vae.quant_conv.register_forward_hook(keep_init), vae.post_quant_conv.register_forward_pre_hook(keep_final)]
    try:
        fn()
    finally:
        for hook in hooks:
            hook.remove()
    return seen["init"], seen["final"]


def _left_revealed_mask(photo, columns):
    mask = torch.zeros_like(photo[:, :1])
    mask[..., :columns] = 1.0
    return mask


def test_mask_makes_revealed_latents_change_more_than_kept_ones(tiny_sd, photo, seeded):
    # Left 32 pixels (latent columns 0-3) revealed by the warp; the rest kept at strength 0.3.
    mask = _left_revealed_mask(photo, 32)
    init, final = _vae_latents(tiny_sd, lambda: run(tiny_sd, photo, seeded, strength=0.3, full_denoise_mask=mask))
    change = (final - init).abs().mean(dim=(0, 1, 2))  # per latent column
    assert change[:4].min() > 5 * change[4:].max()
    # Kept pixels are still denoised at 0.3: they move, a little.
    assert change[4:].min() > 0


def test_mask_changes_revealed_pixels_more_than_kept_ones(tiny_sd_taesd, photo, seeded):
    # Pixel space through the tiny VAE, whose decoder is local (a random AutoencoderKL couples all pixels through
    # GroupNorm statistics, hiding where the change happened).
    mask = _left_revealed_mask(photo, 32)
    with torch.no_grad():
        round_trip = tiny_sd_taesd._decode_latents(tiny_sd_taesd._encode_image(photo))
        only_revealed = run(tiny_sd_taesd, photo, seeded, strength=0.0, full_denoise_mask=mask)
        both = run(tiny_sd_taesd, photo, seeded, strength=0.3, full_denoise_mask=mask)
    # strength 0 elsewhere: pixels beyond the decoder's reach of the revealed area come back (float noise aside)
    assert (only_revealed - round_trip)[..., 64:].abs().max() < 5e-4
    assert (only_revealed - round_trip)[..., :32].abs().mean() > 1e-3
    change = (both - round_trip).abs()
    assert change[..., :32].mean() > 2 * change[..., 64:].mean() > 0


def test_mask_at_strength_zero_keeps_kept_latents_exactly(tiny_sd, photo, seeded):
    mask = _left_revealed_mask(photo, 12)  # pixels 0-11 touch latent columns 0-1 (8 pixels per latent)
    init, final = _vae_latents(tiny_sd, lambda: run(tiny_sd, photo, seeded, strength=0.0, full_denoise_mask=mask))
    torch.testing.assert_close(final[..., 2:], init[..., 2:], rtol=1e-5, atol=1e-5)
    assert (final[..., :2] - init[..., :2]).abs().mean() > 0.1


def test_soft_mask_blends_between(tiny_sd, photo, seeded):
    plain = run(tiny_sd, photo, seeded, strength=0.25)
    half = run(tiny_sd, photo, seeded, strength=0.25, full_denoise_mask=torch.full_like(photo[:, :1], 0.5))
    full = run(tiny_sd, photo, seeded, strength=0.25, full_denoise_mask=torch.ones_like(photo[:, :1]))
    distance = lambda a, b: float((a - b).abs().mean())  # noqa: E731
    assert distance(plain, half) > 1e-3 and distance(half, full) > 1e-3
    # strength 0.25 + 0.75 * 1 = 1: the same as asking for strength 1 without a mask
    torch.testing.assert_close(full, run(tiny_sd, photo, seeded, strength=1.0))


def test_prompt_cache_encodes_each_distinct_prompt_once_over_20_frames(tiny_sd_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu")
    calls = []
    hook = denoiser.pipe.text_encoder.register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        # A keyframed schedule: "a forest" for frames 0-9, a 10-frame blend into "a city" ... as the render loop sends.
        for frame in range(20):
            weight = min(max((frame - 5) / 10, 0.0), 1.0)
            prompt = [("a forest", "blurry", 1.0 - weight), ("a city", "blurry", weight)]
            small = torch.nn.functional.interpolate(photo, size=(32, 32))
            denoiser.img2img(small, prompt, strength=0.5, guidance=7.0, steps=2, generator=seeded(frame))
    finally:
        hook.remove()
    # two distinct (prompt, negative) pairs, each needing one positive and one negative text-encoder pass
    assert denoiser.prompts.encodes == 2
    assert len(calls) == 4


def test_prompt_blend_is_between_its_ends(tiny_sd, photo, seeded):
    ends = [
        tiny_sd.img2img(photo, p, strength=0.8, guidance=7.0, steps=4, generator=seeded(3))
        for p in ("a forest", "a city")
    ]
    middle = tiny_sd.img2img(
        photo, [("a forest", "", 0.5), ("a city", "", 0.5)], strength=0.8, guidance=7.0, steps=4, generator=seeded(3)
    )
    only_forest = tiny_sd.img2img(
        photo, [("a forest", "", 1.0), ("a city", "", 0.0)], strength=0.8, guidance=7.0, steps=4, generator=seeded(3)
    )
    torch.testing.assert_close(only_forest, ends[0])
    assert float((middle - ends[0]).abs().mean()) > 1e-4 and float((middle - ends[1]).abs().mean()) > 1e-4


def test_sampler_switch_per_frame_builds_each_scheduler_once(tiny_sd_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", sampler="euler")
    small = torch.nn.functional.interpolate(photo, size=(32, 32))
    outputs = {}
    for sampler in ["euler", "dpm++_2m_karras", "euler", "ddim", "dpm++_2m_karras", "ddim"]:
        outputs[sampler] = denoiser.img2img(
            small, PROMPT, strength=0.5, guidance=7.0, steps=4, generator=seeded(0), sampler=sampler
        )
    assert denoiser.schedulers.builds == 3
    assert float((outputs["euler"] - outputs["ddim"]).abs().mean()) > 1e-4


def test_txt2img_shape_and_seed(tiny_sd, seeded):
    first = tiny_sd.txt2img(PROMPT, height=64, width=32, guidance=7.0, steps=3, generator=seeded(1))
    again = tiny_sd.txt2img(PROMPT, height=64, width=32, guidance=7.0, steps=3, generator=seeded(1))
    assert first.shape == (1, 3, 64, 32) and first.dtype == torch.float32
    assert torch.equal(first, again) and 0 <= float(first.min()) and float(first.max()) <= 1


def test_tiny_vae_option(tiny_sd_taesd, photo, seeded):
    denoiser = tiny_sd_taesd
    assert type(denoiser.pipe.vae).__name__ == "AutoencoderTiny"
    assert denoiser.pipe.vae.config.scaling_factor == 1.0
    out = run(denoiser, photo, seeded)
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert not torch.allclose(out, run(denoiser, photo, seeded, seed=2))


def test_sdxl_shaped_pipeline(tiny_sdxl_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sdxl_folder), device="cpu")
    info = denoiser.describe()
    assert info["architecture"] == "sdxl" and info["pipeline_class"] == "StableDiffusionXLImg2ImgPipeline"
    seen = {}
    hook = denoiser.pipe.unet.register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(kwargs["added_cond_kwargs"]), with_kwargs=True
    )  # returns None
    try:
        out = run(denoiser, photo, seeded, guidance=5.0)
    finally:
        hook.remove()
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    # SDXL micro-conditioning: original size (H, W), crop (0, 0), target size (H, W), for uncond and cond rows.
    assert seen["time_ids"].tolist() == [[64, 96, 0, 0, 64, 96]] * 2
    assert seen["text_embeds"].shape == (2, denoiser.pipe.text_encoder_2.config.projection_dim)
    assert torch.equal(out, run(denoiser, photo, seeded, guidance=5.0))


def test_turbo_kind_uses_trailing_spacing_and_no_cfg(tiny_sd_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", kind="turbo")
    assert denoiser.defaults.guidance == 0.0 and denoiser.defaults.steps <= 4
    scheduler = denoiser.schedulers.get(denoiser.defaults.sampler)
    assert scheduler.config.timestep_spacing == "trailing"
    batches = []
    hook = denoiser.pipe.unet.register_forward_pre_hook(lambda m, args: batches.append(args[0].shape[0]))
    try:
        d = denoiser.defaults
        out = denoiser.img2img(
            photo, PROMPT, strength=d.strength, guidance=d.guidance, steps=d.steps, generator=seeded(0)
        )
    finally:
        hook.remove()
    assert out.shape == photo.shape
    assert batches and set(batches) == {1}  # guidance 0: one UNet pass per step, no unconditional batch
    scheduler.set_timesteps(2)
    assert int(scheduler.timesteps[0]) == 999  # trailing: the first of 2 steps starts at the last training step


def test_lcm_kind_defaults(tiny_sd_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu", kind="lcm")
    assert denoiser.defaults.sampler == "lcm" and 1.0 <= denoiser.defaults.guidance <= 2.0
    d = denoiser.defaults
    out = denoiser.img2img(photo, PROMPT, strength=d.strength, guidance=d.guidance, steps=d.steps, generator=seeded(0))
    assert out.shape == photo.shape
    assert type(denoiser.schedulers.get("lcm")).__name__ == "LCMScheduler"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 path needs a CUDA GPU")
def test_fp16_on_cuda(tiny_sd_folder, photo, seeded):
    denoiser = load_denoiser(str(tiny_sd_folder), device="cuda")
    assert denoiser.describe()["dtype"] == "float16"
    out = denoiser.img2img(photo.cuda(), PROMPT, strength=0.6, guidance=7.0, steps=4, generator=seeded(0))
    assert out.dtype == torch.float32 and out.device.type == "cuda" and torch.isfinite(out).all()


def _fresh_timesteps(cache):
    """SchedulerCache.ready as it was before it kept timestep tables: set_timesteps on every call."""

    def ready(name, steps):
        scheduler = cache.get(name)
        scheduler.set_timesteps(steps, device="cpu")
        return scheduler

    return ready


@pytest.fixture(scope="module")
def kept_and_fresh(tiny_sd_folder):
    """Two denoisers: one as shipped; one that runs set_timesteps every frame and noises through the scheduler's
    own add_noise every time (no kept noising coefficients)."""
    kept = load_denoiser(str(tiny_sd_folder), device="cpu")
    fresh = load_denoiser(str(tiny_sd_folder), device="cpu")
    fresh.schedulers.ready = _fresh_timesteps(fresh.schedulers)
    fresh._add_noise = lambda scheduler, key, samples, noise, timesteps: scheduler.add_noise(samples, noise, timesteps)
    return kept, fresh


@pytest.mark.parametrize("sampler", [name for name in sampler_names() if SAMPLERS[name].needs is None])
def test_kept_timestep_tables_sample_as_fresh_ones(kept_and_fresh, photo, seeded, sampler):
    """A frame's scheduler is put back to the state set_timesteps left it in (its tables made once per step count)
    instead of running set_timesteps every frame, and noising uses coefficients taken from add_noise once. Every
    sampler must give bit-identical frames either way, over a run that changes the step count and the strength,
    comes back to a step count, and repaints a strip (noised again at every step it waits): multistep samplers
    keep a history of model outputs, LMS its derivatives, PNDM a step counter; stale state would show."""
    small = torch.nn.functional.interpolate(photo, size=(32, 32))
    revealed = torch.zeros(1, 1, 32, 32)
    revealed[..., :, 20:] = 1.0  # a repainted strip: its latents are noised again before every step it waits
    runs = [(4, 0.5, None), (6, 0.8, None), (4, 0.5, None), (4, 1.0, None), (6, 0.5, revealed), (6, 0.5, revealed)]

    def frames(denoiser):
        return [
            denoiser.img2img(
                small,
                PROMPT,
                strength=strength,
                guidance=7.0,
                steps=steps,
                generator=seeded(frame),
                sampler=sampler,
                full_denoise_mask=mask,
            )
            for frame, (steps, strength, mask) in enumerate(runs)
        ]

    kept, fresh = kept_and_fresh
    tables = kept.schedulers.timestep_tables
    for frame, (a, b) in enumerate(zip(frames(kept), frames(fresh))):
        assert torch.equal(a, b), f"{sampler}, frame {frame}"
    assert kept.schedulers.timestep_tables == tables + 2  # one per step count (4 and 6)


@pytest.fixture(scope="module")
def on_meta(tiny_sd_folder):
    """A denoiser whose models live on the ``meta`` device: tensors with shapes and no data. A value read back from
    one (``.item()``, ``bool()``, ``float()``, a copy to the host) raises, and so does arithmetic mixing host and
    device tensors that CUDA would refuse: sampling on it shows, without a GPU, what would wait for one or fail."""
    denoiser = load_denoiser(str(tiny_sd_folder), device="cpu")
    denoiser.check_values = False  # as the render runs it: the frame's values are checked once, at the end
    denoiser.prompts.resolve(PROMPT, "")  # the text encoder runs once per prompt, on the host here
    denoiser.pipe.to("meta")
    denoiser._device_cache = torch.device("meta")
    return denoiser


@pytest.mark.parametrize("sampler", [name for name in sampler_names() if SAMPLERS[name].needs is None])
def test_sampling_never_reads_the_device_back(on_meta, sampler):
    """Every sampler's img2img runs with its latents and models on the meta device. The scheduler's tables stay on
    the host, where its scalar arithmetic and comparisons are free (with its tables on the device, euler, ddim,
    ddpm, lms, pndm, lcm and tcd read values back at every step: on a GPU each read waits for the queue)."""
    latents = torch.zeros(1, 4, 8, 8, device="meta")
    out = on_meta.img2img_latents(
        latents,
        PROMPT,
        strength=0.65,
        guidance=7.0,
        steps=6,
        generator=torch.Generator().manual_seed(0),
        sampler=sampler,
    )
    assert out.device.type == "meta" and out.shape == latents.shape
    tables = [value for value in vars(on_meta.schedulers.ready(sampler, 6)).values() if isinstance(value, torch.Tensor)]
    assert tables and all(table.device.type == "cpu" for table in tables)


@pytest.fixture(scope="module")
def cpu_and_cuda(tiny_sd_folder):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return {
        device: load_denoiser(str(tiny_sd_folder), device=device, dtype=torch.float32) for device in ("cpu", "cuda")
    }


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("sampler", [name for name in sampler_names() if SAMPLERS[name].needs is None])
def test_cuda_sampling_waits_for_nothing_and_matches_the_cpu(cpu_and_cuda, sampler):
    """On a real GPU: every sampler's img2img (after a first call that makes its tables and noising coefficients)
    runs with torch's sync debug mode raising at any wait (a sampler marked ``waits_on_gpu`` must raise), and,
    drawing its noise from the same CPU generator, gives the CPU's latents (float32, within the GPU's rounding)."""
    denoisers = cpu_and_cuda
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))

    def sample(device, generator):
        denoisers[device].check_values = False
        return denoisers[device].img2img_latents(
            start.to(device), PROMPT, strength=0.65, guidance=7.0, steps=6, sampler=sampler, generator=generator
        )

    sample("cuda", torch.Generator(device="cuda").manual_seed(0))  # tables, coefficients, prompt: once
    generator = torch.Generator(device="cuda").manual_seed(0)
    latents_gpu = start.to("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    # A sampler whose diffusers step is known to wait says so (SamplerSpec.waits_on_gpu); if diffusers stops
    # waiting, this fails: drop the flag and its note
    known_wait = pytest.raises(RuntimeError, match="synchroniz") if SAMPLERS[sampler].waits_on_gpu else nullcontext()
    try:
        with known_wait:
            denoisers["cuda"].img2img_latents(
                latents_gpu, PROMPT, strength=0.65, guidance=7.0, steps=6, sampler=sampler, generator=generator
            )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # the same noise on both (a CPU generator: diffusers draws on the CPU and moves it), so the same latents. In
    # full float32: cuDNN convolutions default to TF32 (a 10-bit mantissa), which 6 steps at CFG 7 amplified to 1e-2
    # (seen on an H100)
    on_cpu = sample("cpu", torch.Generator().manual_seed(0))
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        on_gpu = sample("cuda", torch.Generator().manual_seed(0))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-3)
