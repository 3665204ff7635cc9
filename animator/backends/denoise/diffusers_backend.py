"""Img2img with a loaded diffusers pipeline, driven step by step so tensors stay on the device.

The pipeline object supplies the components (VAE, UNet, text encoders) and ``encode_prompt``; the sampling loop is
ours, because the render loop needs two things ``pipe(...)`` cannot give: no PIL/numpy round trip per frame, and a
per-pixel strength (revealed pixels repainted fully, the rest at the scheduled strength) in ONE sampling run.

Masked strength, differential-diffusion style: every latent pixel p gets its own strength ``s_p`` and so its own
first step ``start_p = steps - floor(steps * s_p)``. Sampling starts at the earliest step any pixel needs; before
each step, pixels whose own start has not come yet are reset to the init latents noised to the current timestep,
so they join the run carrying exactly the noise level plain img2img at ``s_p`` would have given them.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

from animator.backends.denoise.base import (
    DenoiseDefaults,
    check_image,
    check_mask,
    check_sampling_args,
    check_strength,
)
from animator.backends.denoise.conditioning import PromptEncoder
from animator.backends.denoise.embeddings import PromptEmbeddingFiles
from animator.backends.denoise.lora import PromptLoras
from animator.backends.denoise.prompts import PromptCache, PromptEmbeddings, PromptInput, normalize_prompt
from animator.backends.denoise.samplers import SchedulerCache, normalize_sampler_name
from animator.backends.denoise.vae import check_latents, decode_latents, encode_image
from animator.devices import profiled, upload
from animator.errors import AnimatorError
from animator.keyframes.prompt_syntax import mixed_lora_weights, parse_prompt

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from torch import Tensor

    from animator.backends.controlnet.units import ControlInput

__all__ = ["DiffusersDenoiser", "steps_for_strength"]

# floor(steps * strength) must not lose a step to float error (0.29 * 100 = 28.999999999999996).
_STEP_EPS = 1e-6


def steps_for_strength(steps: int, strength: float) -> int:
    """Scheduler steps so that img2img at ``strength`` runs at least one: ``steps`` unless ``steps * strength < 1``.

    Turbo models run 1-4 steps; 2 steps at strength 0.3 would run none. Raising the schedule's step count keeps the
    requested noise level (the first timestep still matches ``strength``) instead of silently skipping the frame.
    """
    if strength <= 0:
        return steps
    needed = steps
    while math.floor(needed * strength + _STEP_EPS) < 1:
        needed += 1
    return needed


class DiffusersDenoiser:
    """A Stable Diffusion (1.x/2.x, SDXL, Turbo, LCM) img2img denoiser; see :func:`load_denoiser` to make one.

    Args:
        pipe: a loaded ``StableDiffusionImg2ImgPipeline`` or ``StableDiffusionXLImg2ImgPipeline``, already on its
            device / dtype (or with model CPU offload enabled).
        name: short name for logs (``diffusers:<source>``).
        architecture: ``sd1``, ``sd2`` or ``sdxl``.
        flavour: ``standard``, ``turbo`` (trailing timesteps) or ``lcm``.
        defaults: settings suited to the model.
        info: extra facts for :meth:`describe` (source, loras, memory switches ...).
        lora_dirs: folders where ``<lora:NAME:WEIGHT>`` in a prompt finds ``NAME.safetensors``.
        embedding_dirs: folders of textual-inversion files whose names work as words in prompts.
        fixed_loras: ``(adapter name, weight)`` of the LoRAs already loaded for the whole run.
    """

    def __init__(
        self,
        pipe,
        *,
        name: str,
        architecture: str,
        flavour: str,
        defaults: DenoiseDefaults,
        device: torch.device,
        dtype: torch.dtype,
        info: dict[str, Any] | None = None,
        lora_dirs=(),
        embedding_dirs=(),
        fixed_loras=(),
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.architecture = architecture
        self.flavour = flavour
        self.defaults = defaults
        self.device = device
        self.dtype = dtype
        self.info = dict(info or {})
        self.is_sdxl = architecture == "sdxl"
        self.schedulers = SchedulerCache(pipe.scheduler.config, trailing=flavour == "turbo")
        # Prompts: weighted, chunked encoding (conditioning.py), LoRAs and embeddings named in them, and a cache of
        # encodings keyed by the text with its weights and by the text encoders' LoRA weights.
        self.loras = PromptLoras(pipe, lora_dirs, fixed=fixed_loras)
        self.embeddings = PromptEmbeddingFiles(pipe, embedding_dirs, sdxl=self.is_sdxl)
        self.text = PromptEncoder(pipe, sdxl=self.is_sdxl, device=device)
        self.prompts = PromptCache(
            self._encode_prompt,
            state=self.loras.text_encoder_state,
            pad=lambda parts: self.text.pad_all(parts, self.loras.text_encoder_state()),
        )
        self.vae_scale_factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        self._step_kwargs: dict[int, set[str]] = {}
        self._device_cache: torch.device | None = None
        self._dtypes: dict[str, tuple[Any, torch.dtype]] = {}
        self._noising: dict[tuple, tuple[Tensor, Tensor]] = {}  # see _add_noise
        # Check input values (finite, in range: a read-back that makes the host wait for a GPU). The render turns it
        # off: it checks every finished frame once, which catches what a check of the next input would.
        self.check_values = True

    # ---------------------------------------------------------------- public API

    def img2img(
        self,
        image: Tensor,
        prompt: PromptInput,
        *,
        negative: str = "",
        strength: float,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        full_denoise_mask: Tensor | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """Denoise ``image`` (Bx3xHxW, [0,1]) towards ``prompt``; returns Bx3xHxW float32 [0,1] on image's device.

        ``strength`` 0 with no mask returns the input unchanged (no VAE round trip). ``full_denoise_mask``
        (Bx1xHxW in [0,1], 1 = repaint fully) raises each pixel's strength to ``strength + (1 - strength) * mask``.
        ``control``: the frame's ControlNet inputs (:class:`~animator.backends.controlnet.ControlInput`, one per unit).
        """
        import torch

        # 1. Check arguments before any model work.
        check_image(image, multiple_of=self.vae_scale_factor, values=self.check_values)
        strength = check_strength(strength)
        check_sampling_args(steps=steps, guidance=guidance, generator=generator)
        sampler = normalize_sampler_name(sampler or self.defaults.sampler)
        full_denoise_mask = self._used_mask(full_denoise_mask, image, strength)
        if strength == 0 and full_denoise_mask is None:
            return image.to(torch.float32)
        # 2. Encode, sample, decode.
        with torch.inference_mode():
            latents = self._sample_img2img(
                self._encode_image(image),
                prompt,
                negative=negative,
                strength=strength,
                guidance=guidance,
                steps=steps,
                generator=generator,
                sampler=sampler,
                full_denoise_mask=full_denoise_mask,
                control=control,
            )
            return self._decode_latents(latents).to(image.device)

    def img2img_latents(
        self,
        latents: Tensor,
        prompt: PromptInput,
        *,
        negative: str = "",
        strength: float,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        full_denoise_mask: Tensor | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """:meth:`img2img` on latents (Bx4xhxw, as :meth:`encode` gives them): no VAE encode or decode.

        The render's latent feedback warps the previous frame's latents and continues from them, so a frame costs
        one VAE decode (for the video) instead of a decode and an encode. ``full_denoise_mask`` is Bx1xhxw.
        """
        import torch

        self._check_latents(latents)
        strength = check_strength(strength)
        check_sampling_args(steps=steps, guidance=guidance, generator=generator)
        sampler = normalize_sampler_name(sampler or self.defaults.sampler)
        full_denoise_mask = self._used_mask(full_denoise_mask, latents, strength)
        if strength == 0 and full_denoise_mask is None:
            return latents
        with torch.inference_mode():
            return self._sample_img2img(
                latents.to(self._dtype_of("unet")),
                prompt,
                negative=negative,
                strength=strength,
                guidance=guidance,
                steps=steps,
                generator=generator,
                sampler=sampler,
                full_denoise_mask=full_denoise_mask,
                control=control,
            )

    def encode(self, image: Tensor) -> Tensor:
        """Bx3xHxW [0,1] -> Bx4xhxw latents (scaled as the UNet takes them; the mean of the VAE's distribution)."""
        import torch

        check_image(image, multiple_of=self.vae_scale_factor, values=self.check_values)
        with torch.inference_mode():
            return self._encode_image(image)

    def decode(self, latents: Tensor) -> Tensor:
        """Bx4xhxw latents -> Bx3xHxW float32 [0,1] on the latents' device."""
        import torch

        self._check_latents(latents)
        with torch.inference_mode():
            return self._decode_latents(latents).to(latents.device)

    def txt2img(
        self,
        prompt: PromptInput,
        *,
        negative: str = "",
        height: int,
        width: int,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """A first frame from text: 1x3xHxW float32 in [0,1] on the denoiser's device."""
        import torch

        latents = self.txt2img_latents(
            prompt,
            negative=negative,
            height=height,
            width=width,
            guidance=guidance,
            steps=steps,
            generator=generator,
            sampler=sampler,
            control=control,
        )
        with torch.inference_mode():
            return self._decode_latents(latents)

    def txt2img_latents(
        self,
        prompt: PromptInput,
        *,
        negative: str = "",
        height: int,
        width: int,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """:meth:`txt2img` before the VAE decode: 1x4x(height/8)x(width/8) latents."""
        import torch

        for field, value in (("height", height), ("width", width)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < self.vae_scale_factor
                or value % self.vae_scale_factor
            ):
                raise AnimatorError(
                    f"{field} must be a positive multiple of {self.vae_scale_factor}, got {value!r}", field=field
                )
        check_sampling_args(steps=steps, guidance=guidance, generator=generator)
        sampler = normalize_sampler_name(sampler or self.defaults.sampler)
        with torch.inference_mode():
            embeddings = self._resolve_prompt(prompt, negative)
            latent_size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
            return self._sample(
                None,
                1.0,
                None,
                embeddings,
                guidance=float(guidance),
                steps=steps,
                generator=generator,
                sampler=sampler,
                image_size=(height, width),
                latent_shape=(1, *latent_size),
                control=control,
            )

    def prepare_prompts(self, texts) -> None:
        """Load the LoRAs and embeddings the prompts ``texts`` name (each once), so that a missing or unfitting
        file is an error before the first frame; a render calls it with every frame's prompts."""
        for text in texts:
            parsed = parse_prompt(text)
            self.loras.ensure(tag.name for tag in parsed.loras)
            self.embeddings.ensure([parsed.text], required=parsed.embeddings)

    def describe(self) -> dict:
        """Model source, classes, dtype, scheduler and library versions, for the run record."""
        import diffusers
        import torch
        import transformers

        pipe = self.pipe
        return {
            "name": self.name,
            "architecture": self.architecture,
            "flavour": self.flavour,
            "pipeline_class": type(pipe).__name__,
            "unet_class": type(pipe.unet).__name__,
            "vae_class": type(pipe.vae).__name__,
            "dtype": str(self.dtype).replace("torch.", ""),
            "vae_dtype": str(pipe.vae.dtype).replace("torch.", ""),
            "device": str(self.device),
            "default_sampler": self.defaults.sampler,
            "scheduler_config_class": pipe.scheduler.config.get("_class_name", type(pipe.scheduler).__name__),
            "timestep_spacing": "trailing"
            if self.schedulers.trailing
            else pipe.scheduler.config.get("timestep_spacing"),
            "defaults": {
                "steps": self.defaults.steps,
                "guidance": self.defaults.guidance,
                "strength": self.defaults.strength,
                "sampler": self.defaults.sampler,
            },
            "prompt_encodes": self.prompts.encodes,
            "prompt_loras": self.loras.describe(),
            "embeddings": self.embeddings.describe(),
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            **self.info,
        }

    # ---------------------------------------------------------------- steps

    @property
    def _execution_device(self) -> torch.device:
        # With model CPU offload the modules live on the CPU between calls; accelerate's hooks say where they run.
        # diffusers finds that by walking every module (~8 ms for SD 1.5, several times a frame), and it never
        # changes after loading: look once.
        if self._device_cache is None:
            self._device_cache = getattr(self.pipe, "_execution_device", None) or self.device
        return self._device_cache

    def _dtype_of(self, part: str) -> torch.dtype:
        """The dtype of ``pipe.unet`` / ``pipe.vae``, looked up once: diffusers' ``.dtype`` walks every submodule
        (a few ms for SD 1.5's UNet in Python, several times a frame), and a loaded model's dtype never changes.
        Keyed by the module object, so a VAE swapped later is looked up again."""
        module = getattr(self.pipe, part)
        cached = self._dtypes.get(part)
        if cached is None or cached[0] is not module:
            cached = self._dtypes[part] = (module, module.dtype)
        return cached[1]

    def _sample_img2img(
        self,
        init_latents: Tensor,
        prompt: PromptInput,
        *,
        negative: str,
        strength: float,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str,
        full_denoise_mask: Tensor | None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """Checked img2img from init latents to denoised latents (inside inference mode)."""
        embeddings = self._resolve_prompt(prompt, negative)  # text conditioning, cached per distinct prompt
        batch, _, height, width = init_latents.shape
        strength_map = self._strength_map(strength, full_denoise_mask, batch, (height, width))  # Bx1xhxw or None
        image_size = (height * self.vae_scale_factor, width * self.vae_scale_factor)
        return self._sample(
            init_latents,
            strength,
            strength_map,
            embeddings,
            guidance=float(guidance),
            steps=steps,
            generator=generator,
            sampler=sampler,
            image_size=image_size,
            control=control,
        )

    def _used_mask(self, mask: Tensor | None, like: Tensor, strength: float) -> Tensor | None:
        """The checked mask; at strength 0, None when it repaints nothing (then the input is returned as it is).

        Whether a mask repaints anything is a read-back, asked only at strength 0: at any other strength an empty
        mask samples exactly as no mask (every pixel starts at the frame's strength), and the sampler reads the
        strength range once anyway."""
        import torch

        if mask is None:
            return None
        check_mask(mask, like, values=self.check_values)
        if strength > 0:
            return mask
        return mask if bool(mask.to(torch.float32).gt(0).any()) else None

    def _check_latents(self, latents) -> None:
        check_latents(latents, channels=int(self.pipe.vae.config.latent_channels), values=self.check_values)

    def _strength_map(self, strength: float, mask, batch: int, latent_size: tuple[int, int]) -> Tensor | None:
        """Bx1xhxw per-latent-pixel strength: ``strength`` raised towards 1 where the mask says so (None without a
        mask). float64, so that its step arithmetic is the same as the host's for an unmasked frame."""
        import torch
        import torch.nn.functional as F

        if mask is None:
            return None
        mask = mask.to(device=self._execution_device, dtype=torch.float64).clamp(0, 1)
        # Max-pool: a latent pixel decodes to a whole 8x8 block, so one revealed pixel in it makes it revealed.
        mask = F.adaptive_max_pool2d(mask, latent_size).expand(batch, 1, *latent_size)
        return strength + (1.0 - strength) * mask

    def _encode_image(self, image: Tensor) -> Tensor:
        """Bx3xHxW [0,1] -> Bx4xhxw scaled latents in the UNet's dtype."""
        return encode_image(
            self.pipe.vae,
            image,
            device=self._execution_device,
            vae_dtype=self._dtype_of("vae"),
            unet_dtype=self._dtype_of("unet"),
        )

    def _decode_latents(self, latents: Tensor) -> Tensor:
        """Bx4xhxw scaled latents -> Bx3xHxW float32 in [0,1]."""
        return decode_latents(self.pipe.vae, latents, vae_dtype=self._dtype_of("vae"))

    def _sample(
        self,
        init_latents,
        strength: float,
        strength_map: Tensor | None,
        embeddings: PromptEmbeddings,
        *,
        guidance: float,
        steps: int,
        generator: torch.Generator,
        sampler: str,
        image_size: tuple[int, int],
        latent_shape: tuple[int, int, int] | None = None,
        control: Sequence[ControlInput] | None = None,
    ) -> Tensor:
        """Run the sampler from the earliest timestep any pixel needs; ``init_latents`` None means txt2img.

        ``strength``: the frame's strength; ``strength_map``: per-pixel strengths at least that high, or None when
        every pixel has ``strength`` (then nothing here waits for the GPU: the step counts are host arithmetic).
        ``latent_shape`` (batch, h, w) is needed only without init latents. ``control``: the frame's ControlNet
        inputs (:mod:`animator.backends.controlnet.residuals` says which steps each unit runs on).
        """
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        device = self._execution_device
        unet = self.pipe.unet
        if init_latents is not None:
            latent_shape = (init_latents.shape[0], *init_latents.shape[-2:])
        batch = latent_shape[0]
        shape = (batch, unet.config.in_channels, *latent_shape[1:])

        # Steps each latent pixel runs (out of `steps` for strength 1), and the step it starts at. With a map, its
        # range is the one read-back (it decides the schedule); the map is float64, so the host's arithmetic on
        # its extremes gives exactly the extreme start steps of the device's per-pixel arithmetic.
        def start_step(pixel_strength: float) -> int:
            return steps - min(math.floor(pixel_strength * steps + _STEP_EPS), steps)

        if strength_map is None:
            strength_min = strength_max = strength
        else:
            strength_min, strength_max = torch.stack(torch.aminmax(strength_map)).tolist()
        steps = steps_for_strength(steps, strength_max)
        first_step, last_start = start_step(strength_max), start_step(strength_min)
        pixel_start = None
        if strength_map is not None:
            pixel_steps = torch.floor(strength_map * steps + _STEP_EPS).clamp(max=steps)  # Bx1xhxw
            pixel_start = steps - pixel_steps  # Bx1xhxw

        unet_timesteps = self.schedulers.unet_timesteps(sampler, steps, device)  # the scheduler's, on the device
        scheduler = self.schedulers.ready(sampler, steps)  # its tables on the host
        order = getattr(scheduler, "order", 1)
        timesteps = scheduler.timesteps[first_step * order :]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(first_step * order)

        noise = randn_tensor(shape, generator=generator, device=device, dtype=self._dtype_of("unet"))
        if init_latents is None:
            latents = noise * scheduler.init_noise_sigma
        else:
            schedule = (sampler, steps, first_step)  # with the step, names the scheduler's state where it noises
            latents = self._add_noise(scheduler, (*schedule, None), init_latents, noise, timesteps[:1].repeat(batch))

        conditioning = self._unet_conditioning(embeddings, batch, guidance, image_size)
        step_kwargs = self._scheduler_step_kwargs(scheduler, generator)
        control_run = self._control_run(control, len(timesteps), batch, conditioning, shape[-2:], image_size)
        for index, timestep in enumerate(timesteps):
            absolute_step = first_step * order + index
            if init_latents is not None and absolute_step < last_start * order:
                # Pixels whose own strength has not begun yet follow the init image, noised to this timestep.
                waiting = pixel_start * order > absolute_step
                noised_init = self._add_noise(
                    scheduler, (*schedule, absolute_step), init_latents, noise, timestep.reshape(1).repeat(batch)
                )
                latents = torch.where(waiting, noised_init, latents)
            noise_pred = self._predict_noise(
                scheduler, latents, timestep, unet_timesteps[absolute_step], conditioning, guidance, control_run, index
            )
            latents = scheduler.step(noise_pred, timestep, latents, **step_kwargs, return_dict=False)[0]

        if init_latents is not None and pixel_start is not None and last_start >= steps:
            # Pixels at strength < 1/steps never started: they keep the init latents exactly.
            latents = torch.where(pixel_start >= steps, init_latents, latents)
        return latents

    def _add_noise(self, scheduler, key: tuple, samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """``scheduler.add_noise(samples, noise, timesteps)`` as ``a * samples + b * noise``.

        Every diffusers scheduler noises linearly (``x + sigma n``, ``sqrt(alpha) x + sqrt(1 - alpha) n``), but its
        add_noise copies the sigma table from the host to the device on every call, and that copy waits for the GPU.
        So the two coefficients are taken from add_noise once per ``key`` (sampler, step count, first step, step
        of the run: what decides the scheduler's state at this call) and kept on the device: the same products
        and sums, bit for bit.
        """
        import torch

        key = (*key, samples.device, samples.dtype)
        coefficients = self._noising.get(key)
        if coefficients is None:
            one = torch.ones((1,) * samples.ndim, device=samples.device, dtype=samples.dtype)
            zero = torch.zeros_like(one)
            coefficients = self._noising[key] = (
                scheduler.add_noise(one, zero, timesteps[:1]),
                scheduler.add_noise(zero, one, timesteps[:1]),
            )
        a, b = coefficients
        return a * samples + b * noise

    def _unet_conditioning(
        self, embeddings: PromptEmbeddings, batch: int, guidance: float, image_size: tuple[int, int]
    ) -> dict:
        """encoder_hidden_states (+ SDXL added_cond_kwargs, + LCM guidance embedding) for a batch of ``batch``."""
        import torch

        unet = self.pipe.unet
        device, dtype = self._execution_device, self._dtype_of("unet")
        distilled_guidance = unet.config.get("time_cond_proj_dim") is not None
        use_cfg = guidance > 1.0 and not distilled_guidance

        def stack(uncond, cond):
            cond = cond.to(device=device, dtype=dtype).repeat(batch, *([1] * (cond.ndim - 1)))
            if not use_cfg:
                return cond
            uncond = uncond.to(device=device, dtype=dtype).repeat(batch, *([1] * (uncond.ndim - 1)))
            return torch.cat([uncond, cond])

        conditioning: dict[str, Any] = {"encoder_hidden_states": stack(embeddings.uncond, embeddings.cond)}
        if self.is_sdxl:
            time_ids = upload(torch.tensor([self._sdxl_time_ids(image_size)], dtype=dtype), device)  # no GPU wait
            conditioning["added_cond_kwargs"] = {
                "text_embeds": stack(embeddings.pooled_uncond, embeddings.pooled_cond),
                "time_ids": stack(time_ids, time_ids),
            }
        if distilled_guidance:
            # LCM-distilled UNets take the guidance scale as an embedding instead of running CFG.
            scale = torch.full((batch,), guidance - 1.0, device=device)
            conditioning["timestep_cond"] = self.pipe.get_guidance_scale_embedding(
                scale, embedding_dim=unet.config.time_cond_proj_dim
            ).to(device=device, dtype=dtype)
        conditioning["_use_cfg"] = use_cfg
        return conditioning

    def _sdxl_time_ids(self, image_size: tuple[int, int]) -> list[float]:
        """SDXL micro-conditioning: original size, crop top-left (0, 0), target size (or aesthetic score)."""
        height, width = image_size
        if self.pipe.config.get("requires_aesthetics_score", False):
            return [height, width, 0, 0, 6.0]  # the refiner takes an aesthetic score instead of the target size
        return [height, width, 0, 0, height, width]

    def _control_run(self, control, steps: int, batch: int, conditioning: dict, latent_size, image_size):
        """The ControlNet units' residuals for this sampling run (None without control inputs)."""
        if not control:
            return None
        from animator.backends.controlnet.residuals import ControlRun

        return ControlRun(
            control,
            steps=steps,
            batch=batch,
            use_cfg=conditioning["_use_cfg"],
            latent_size=tuple(latent_size),
            image_size=tuple(image_size),
            unet_config=self.pipe.unet.config,
            device=self._execution_device,
            dtype=self._dtype_of("unet"),
        )

    def _predict_noise(
        self,
        scheduler,
        latents: Tensor,
        timestep,
        unet_timestep,
        conditioning: dict,
        guidance: float,
        control=None,
        step: int = 0,
    ) -> Tensor:
        """The UNet's noise prediction (CFG combined); ``timestep`` is the scheduler's (on the host),
        ``unet_timestep`` the same value on the UNet's device; ``control`` a ControlRun, called for ``step``'s
        residuals."""
        import torch

        use_cfg = conditioning["_use_cfg"]
        model_input = torch.cat([latents] * 2) if use_cfg else latents
        model_input = scheduler.scale_model_input(model_input, timestep)
        kwargs = {k: v for k, v in conditioning.items() if not k.startswith("_")}
        if control is not None:
            kwargs.update(control(step, model_input, unet_timestep, kwargs))
        with profiled("model:unet"):
            noise_pred = self.pipe.unet(model_input, unet_timestep, return_dict=False, **kwargs)[0]
        if use_cfg:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + guidance * (cond - uncond)
        return noise_pred

    def _scheduler_step_kwargs(self, scheduler, generator) -> dict:
        key = id(scheduler)
        if key not in self._step_kwargs:
            self._step_kwargs[key] = set(inspect.signature(scheduler.step).parameters)
        accepted = self._step_kwargs[key]
        return {"generator": generator} if "generator" in accepted else {}

    def _resolve_prompt(self, prompt: PromptInput, negative: str) -> PromptEmbeddings:
        """The frame's conditioning: its LoRAs loaded and set to the frame's weights, then the (cached) embeddings."""
        entries = normalize_prompt(prompt, negative)
        self.prepare_prompts(text for positive, neg, _ in entries for text in (positive, neg))
        self.loras.apply(mixed_lora_weights(entries))
        return self.prompts.resolve(entries)

    def _encode_prompt(self, positive: str, negative: str) -> PromptEmbeddings:
        """Both prompts with emphasis weights, in 75-token chunks (:mod:`conditioning`), padded to one length."""
        import torch

        with torch.inference_mode():
            return self.text.encode(positive, negative, self.loras.text_encoder_state())
