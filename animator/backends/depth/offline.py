"""The offline default: a plausible depth for common shots, with no weights and no download.

It is a prior, not a model. A learned model is much better (objects standing on the ground, faces, interiors):
``hf download depth-anything/Depth-Anything-V2-Small-hf`` once, then
``--depth depth-anything/Depth-Anything-V2-Small-hf``
(or ``Intel/dpt-large``, or a MiDaS ``.pt`` file you already have).

What it assumes, in order of weight:

1. **A ground plane under a horizon** (the most common shot: landscape, street, room). For a camera looking
   horizontally, a ground point at image row ``v`` below the horizon row ``v_h`` has ``z = f h / (v - v_h)``, so its
   disparity is *linear* in ``v - v_h``: the bottom row is nearest, the horizon is far, everything above is far.
2. **Aerial perspective**: distant things are hazier, so they have less local contrast and less colour saturation.
   These cues lift textured, saturated regions (a subject in front) above the plane prior.
3. **Edges of depth follow edges of the image**: the blend is smoothed with a guided filter (He et al. 2010) whose
   guide is the image, so depth is flat inside flat regions and may step at image edges.

Everything runs on tensors at a small working resolution (about ``work_size`` on the long side) and is brought back to
the
input size by guided upsampling, so it costs a few milliseconds per 512x512 frame on a CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    from torch import Tensor


def check_depth_input(image: Tensor) -> None:
    from animator.checks import check_bchw  # imports torch: this module stays importable without it

    check_bchw(image, "image")
    if image.shape[-1] < 2 or image.shape[-2] < 2:
        raise AnimatorError(
            f"image is too small: {tuple(image.shape[-2:])}", field="image", hint="depth needs at least 2x2 pixels"
        )


def box_blur(x: Tensor, radius: int) -> Tensor:
    """Mean over a ``(2r+1)^2`` window, borders averaged over the pixels that exist. ``# BxCxHxW`` -> same.

    Separable running sums (cumsum), so the cost does not grow with the radius.
    """
    if radius <= 0:
        return x
    return _box_1d(_box_1d(x, radius, -1), radius, -2)


def _box_1d(x: Tensor, radius: int, dim: int) -> Tensor:
    import torch

    length = x.shape[dim]
    size = 2 * radius + 1
    # Zero-pad by the radius (plus one leading zero for the running sum), so every window is a plain slice
    # difference: slices, unlike gathers, cost nothing but the subtraction.
    pad_shape = list(x.shape)
    pad_shape[dim] = radius + 1
    tail_shape = list(x.shape)
    tail_shape[dim] = radius
    running = torch.cat([x.new_zeros(pad_shape), x, x.new_zeros(tail_shape)], dim).cumsum(dim)
    window_sum = running.narrow(dim, size, length) - running.narrow(dim, 0, length)
    # How many real pixels each window covers (fewer near the borders).
    index = torch.arange(length, device=x.device, dtype=x.dtype)
    count = (index + radius).clamp(max=length - 1) - (index - radius).clamp(min=0) + 1
    shape = [1] * x.ndim
    shape[dim] = length
    return window_sum / count.view(shape)


def guided_filter_coefficients(guide: Tensor, source: Tensor, radius: int, eps: float) -> tuple[Tensor, Tensor]:
    """Coefficients ``(a, b)`` of the grey-guide guided filter: the output is ``a * guide + b``.

    Args:
        guide: ``# Bx1xHxW`` grey guide image.
        source: ``# Bx1xHxW`` signal to smooth.
        radius: window radius in pixels.
        eps: regulariser; larger -> flatter (edges weaker than ``sqrt(eps)`` are smoothed over).
    """
    import torch

    # One blur over the four stacked statistics instead of four blurs: the cost here is per call, not per pixel.
    stats = box_blur(torch.cat([guide, source, guide * source, guide * guide], 1), radius)
    mean_g, mean_s, corr_gs, corr_gg = stats.split(guide.shape[1], 1)
    a = (corr_gs - mean_g * mean_s) / (corr_gg - mean_g * mean_g + eps)
    b = mean_s - a * mean_g
    a, b = box_blur(torch.cat([a, b], 1), radius).split(guide.shape[1], 1)
    return a, b


class OfflineDepthEstimator:
    """Ground-plane prior + aerial-perspective cues + edge-aware smoothing. No weights; see the module docstring.

    A learned model is better: ``--depth depth-anything/Depth-Anything-V2-Small-hf`` after
    ``hf download depth-anything/Depth-Anything-V2-Small-hf``.

    Args:
        horizon: horizon row as a fraction of the image height from the top (0.45: slightly above the middle,
            where most shots put it).
        prior_weight: share of the ground-plane prior in the blend; the rest is image cues.
        work_size: working resolution: the frame is subsampled by the integer stride that brings its long side
            to between ``work_size`` and ``2 * work_size`` (the output is guided-upsampled to the input size).
        smoothing: guided-filter radius as a fraction of the working long side.

    Example:
        >>> import torch
        >>> estimator = OfflineDepthEstimator()
        >>> estimator(torch.rand(2, 3, 72, 128)).shape
        torch.Size([2, 1, 72, 128])
    """

    name = "offline"

    def __init__(
        self, *, horizon: float = 0.45, prior_weight: float = 0.65, work_size: int = 128, smoothing: float = 0.06
    ) -> None:
        if not 0.0 <= horizon < 1.0:
            raise AnimatorError(f"horizon must be in [0, 1), got {horizon}", field="horizon")
        if not 0.0 <= prior_weight <= 1.0:
            raise AnimatorError(f"prior_weight must be in [0, 1], got {prior_weight}", field="prior_weight")
        if work_size < 16:
            raise AnimatorError(f"work_size must be at least 16, got {work_size}", field="work_size")
        self.horizon = float(horizon)
        self.prior_weight = float(prior_weight)
        self.work_size = int(work_size)
        self.smoothing = float(smoothing)

    def describe(self) -> dict:
        import torch

        return {
            "name": self.name,
            "class": type(self).__name__,
            "source": "built in (no weights)",
            "horizon": self.horizon,
            "prior_weight": self.prior_weight,
            "work_size": self.work_size,
            "library versions": {"torch": torch.__version__},
            "note": "a heuristic prior; a learned model (Depth Anything, MiDaS/DPT) is much better",
        }

    def __call__(self, image: Tensor) -> Tensor:
        """``# Bx3xHxW`` RGB in [0, 1] -> ``# Bx1xHxW`` float32 relative disparity (larger = nearer), in [0, ~1]."""
        import torch
        import torch.nn.functional as F

        check_depth_input(image)
        with torch.no_grad():
            image = image.float()  # no clamp: a full-size copy per frame, and inputs are in [0, 1] by contract
            height, width = image.shape[-2:]
            # Plain strided subsampling, not area averaging: ~30x cheaper at video sizes, and the cues are local
            # statistics that aliasing does not bias (it keeps texture contrast, which averaging would wash out).
            stride = max(1, max(height, width) // self.work_size)
            small = image[..., ::stride, ::stride].contiguous()
            work_hw = tuple(small.shape[-2:])

            grey_small = _grey(small)
            blend = self.prior_weight * self._ground_prior(small) + (1 - self.prior_weight) * self._cues(
                small, grey_small
            )

            radius = max(1, round(self.smoothing * max(work_hw)))
            a, b = guided_filter_coefficients(grey_small, blend, radius, eps=1e-2)
            if stride > 1:  # guided upsampling: coefficients are smooth, so bilinear is enough
                a, b = F.interpolate(
                    torch.cat([a, b], 1), size=(height, width), mode="bilinear", align_corners=False
                ).split(1, 1)
            return torch.addcmul(b, a, _grey(image)).float()

    def _ground_prior(self, image: Tensor) -> Tensor:
        """Disparity of a horizontal ground plane: 0 above the horizon, rising linearly to 1 at the bottom row."""
        import torch

        batch, _, height, width = image.shape
        rows = (torch.arange(height, device=image.device, dtype=torch.float32) + 0.5) / height
        prior = ((rows - self.horizon) / (1.0 - self.horizon)).clamp_min(0.0)
        return prior.view(1, 1, height, 1).expand(batch, 1, height, width)

    @staticmethod
    def _cues(image: Tensor, grey: Tensor) -> Tensor:
        """Aerial perspective: local contrast and saturation, each scaled to ~[0, 1] per image."""
        import torch

        radius = max(1, round(0.03 * max(image.shape[-2:])))
        saturation = image.amax(1, keepdim=True) - image.amin(1, keepdim=True)
        mean, mean_sq, saturation = box_blur(torch.cat([grey, grey * grey, saturation], 1), radius).split(1, 1)
        contrast = (mean_sq - mean * mean).clamp_min(0.0).sqrt()
        return 0.5 * _unit_range(contrast) + 0.5 * _unit_range(saturation)


def _grey(image: Tensor) -> Tensor:
    """Rec. 601 luma, ``# Bx3xHxW`` -> ``# Bx1xHxW``."""
    import torch
    import torch.nn.functional as F

    from animator.devices import upload

    # uploaded from pinned memory: a plain copy to a GPU would wait for everything queued before it
    weights = upload(torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(1, 3, 1, 1), image.device)
    return F.conv2d(image, weights)  # a 1x1 convolution: one pass over the image, 3x faster than mul + sum


def _unit_range(x: Tensor) -> Tensor:
    """Divide each image by its 95th percentile (robust to a few extreme pixels), clamp to [0, 1]."""
    sample = x.flatten(1)[:, :: max(1, x[0].numel() // 4096)]
    rank = max(1, round(0.95 * (sample.shape[1] - 1)) + 1)
    top = sample.kthvalue(rank, dim=1).values.clamp_min(1e-6)  # linear-time selection; quantile() sorts
    return (x / top.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
