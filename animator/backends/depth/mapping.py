"""From relative disparity to positive z, and keeping that z stable from frame to frame.

Depth models return *relative inverse depth* (disparity): larger is nearer, with an unknown scale and shift that
change from frame to frame. The 3D warp needs z in scene units. :func:`disparity_to_depth` is THE one mapping:

1. normalise the disparity robustly to ``d`` in [0, 1] (the ``low``/``high`` percentiles go to 0/1, then clamp),
2. interpolate in inverse depth: ``1/z = d/near + (1 - d)/far``, so ``d = 1`` is at ``near`` and ``d = 0`` at ``far``.

Interpolating ``1/z`` (not ``z``) keeps the model's disparity ratios: a surface twice as near in disparity stays
twice as near in z, which is what makes parallax look right.

Deforum re-normalises every frame, so the same wall jumps back and forth in depth when the model's output range
changes (a bright object entering the frame is enough). :class:`DepthTracker` carries the scale and shift instead:
each new disparity is fitted (least squares, robust) to the previous frame's depth warped into the current frame,
so a static scene under a static camera keeps its depth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from animator.errors import AnimatorError

if TYPE_CHECKING:
    from torch import Tensor

# Quantiles are estimated on at most this many pixels per image: a regular subsample gives the same percentile to
# well under 1% and keeps torch.quantile (which sorts) cheap at video resolutions.
_QUANTILE_SAMPLES = 16384
# Pixels used to fit the per-frame scale and shift in DepthTracker's align mode.
_FIT_SAMPLES = 8192


def _check_depth_map(name: str, value: Tensor) -> None:
    from animator.checks import check_bchw  # imports torch: this module stays importable without it

    check_bchw(value, name, channels=1)


def _per_sample(name: str, value: float | Tensor, batch: int, like: Tensor) -> float | Tensor:
    """A float stays a float (checked on the host: the frame loop passes floats, and a tensor made of one would be
    an upload and its check a read-back on a GPU); a (B,) tensor becomes (B,1,1,1) float32 on ``like``'s device."""
    import math

    import torch

    if not isinstance(value, torch.Tensor):
        number = float(value)
        if not (math.isfinite(number) and number > 0):
            raise AnimatorError(f"must be positive and finite, got {number!r}", field=name)
        return number
    tensor = value.to(dtype=torch.float32, device=like.device)
    if tensor.ndim == 0:
        tensor = tensor.expand(batch)
    if tensor.shape != (batch,):
        raise AnimatorError(f"expected a float or a ({batch},) tensor, got shape {tuple(tensor.shape)}", field=name)
    if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
        raise AnimatorError(f"must be positive and finite, got {tensor.tolist()}", field=name)
    return tensor.view(batch, 1, 1, 1)


def _check_near_far(near: float | Tensor, far: float | Tensor) -> None:
    import torch

    if isinstance(near, torch.Tensor) or isinstance(far, torch.Tensor):
        wrong = bool(torch.as_tensor(far <= near).any())
    else:
        wrong = far <= near
    if wrong:
        listed = [value.flatten().tolist() if isinstance(value, torch.Tensor) else value for value in (far, near)]
        raise AnimatorError(
            f"far ({listed[0]}) must be greater than near ({listed[1]})",
            field="far",
            hint="typical values: near 0.5, far 50 (scene units, the same units as translation_*)",
        )


def _column(value: float | Tensor) -> float | Tensor:
    """A (B,1,1,1) per-image value as (B,1) for ``B x N`` rows; a float as itself."""
    return value.view(-1, 1) if hasattr(value, "view") else value


def disparity_percentiles(disparity: Tensor, low: float = 0.02, high: float = 0.98) -> tuple[Tensor, Tensor]:
    """Robust range of each image's disparity.

    Args:
        disparity: ``# Bx1xHxW`` relative inverse depth.
        low, high: quantiles (in [0, 1]) that map to 0 and 1.

    Returns:
        ``(lo, hi)``, each ``# B``, float32, with ``hi > lo`` (a flat image gets a tiny range instead of 0/0).
    """
    import torch

    flat = disparity.detach().flatten(1).float()  # B x HW
    stride = max(1, flat.shape[1] // _QUANTILE_SAMPLES)
    sample = flat[:, ::stride]
    finite = torch.isfinite(sample)
    sample = torch.where(finite, sample, sample.nan_to_num(0.0).median())
    lo, hi = _quantiles(sample, (low, high))
    hi = torch.maximum(hi, lo + 1e-6 * (lo.abs() + 1.0))
    return lo, hi


def disparity_to_depth(
    disparity: Tensor,
    near: float | Tensor,
    far: float | Tensor,
    *,
    low: float = 0.02,
    high: float = 0.98,
) -> Tensor:
    """Relative disparity -> positive z in ``[near, far]``: the one documented mapping (see the module docstring).

    Args:
        disparity: ``# Bx1xHxW`` relative inverse depth (larger = nearer), any scale and shift.
        near: z given to the nearest pixels (the ``high`` quantile and above); float or ``# B`` tensor.
        far: z given to the farthest pixels (the ``low`` quantile and below); float or ``# B`` tensor, > near.
        low, high: the quantiles that map to ``far`` and ``near``; outliers beyond them are clamped.

    Returns:
        ``# Bx1xHxW`` float32 depth on the input's device.

    Example:
        >>> import torch
        >>> disparity = torch.tensor([0.0, 1.0, 3.0]).view(1, 1, 1, 3)
        >>> disparity_to_depth(disparity, near=1.0, far=10.0, low=0.0, high=1.0).flatten().tolist()
        [10.0, 2.5, 1.0]
    """
    _check_depth_map("disparity", disparity)
    batch = disparity.shape[0]
    near_t = _per_sample("near", near, batch, disparity)
    far_t = _per_sample("far", far, batch, disparity)
    _check_near_far(near_t, far_t)
    lo, hi = disparity_percentiles(disparity, low, high)
    normalised = _normalise(disparity, lo, hi)
    return _depth_from_normalised(normalised, near_t, far_t)


def _normalise(disparity: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    d = (disparity.float() - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)
    return d.nan_to_num(0.0).clamp(0.0, 1.0)


def _depth_from_normalised(d: Tensor, near: Tensor, far: Tensor) -> Tensor:
    inverse_depth = d / near + (1.0 - d) / far
    return 1.0 / inverse_depth


class DepthTracker:
    """Turns each frame's disparity into z with a scale and shift carried across frames.

    Modes:
        ``"align"`` (default): when the caller passes ``reference_depth`` (the previous frame's depth warped into this
            frame by the 3D warp) and its valid mask, fit ``1/z_ref ≈ s * disparity + t`` by least squares over valid
            pixels (re-weighted so occluded or moving pixels do not pull the fit), then use ``1/z = s * disparity + t``.
            Without a reference (or when the fit is degenerate) it falls back to ``"smooth"``.
        ``"smooth"``: the normalisation range (the disparity percentiles of :func:`disparity_to_depth`) is smoothed
            over time with ``momentum``, so a single frame cannot make the whole scene jump.
        ``"none"``: plain :func:`disparity_to_depth` every frame (Deforum's behaviour).

    The first call (and the first after :meth:`reset`) is always plain :func:`disparity_to_depth`. While aligning,
    z follows the reference, so a scheduled change of ``near``/``far`` acts only through the clamp; call
    :meth:`reset` (e.g. at a scene cut) to re-spread the scene over a new range.
    Output z is clamped to ``[near, far]``: a fit can put a pixel nearer than ``near`` (the camera moved forward),
    but the warp should never see z <= 0 or infinity.

    Args:
        near, far: default z range (scene units), ``far > near > 0``; can be overridden per call (schedules).
        mode: ``"align"``, ``"smooth"`` or ``"none"``.
        momentum: weight of the past in ``"smooth"`` mode (0: no smoothing, 0.9: slow).
        min_valid_fraction: fewer valid reference pixels than this fraction -> no fit, fall back to smoothing.
        low, high: quantiles used by the normalisation (see :func:`disparity_to_depth`).

    Example:
        >>> import torch
        >>> tracker = DepthTracker(near=1.0, far=10.0)
        >>> disparity = torch.rand(1, 1, 8, 8)
        >>> depth0 = tracker(disparity)
        >>> depth1 = tracker(3.0 * disparity + 2.0, reference_depth=depth0)   # same scene, model rescaled
        >>> bool(torch.allclose(depth0, depth1, rtol=1e-4))
        True
    """

    MODES = ("align", "smooth", "none")

    def __init__(
        self,
        near: float,
        far: float,
        *,
        mode: str = "align",
        momentum: float = 0.8,
        min_valid_fraction: float = 0.05,
        low: float = 0.02,
        high: float = 0.98,
        compile_mode: str | None = None,
    ) -> None:
        if mode not in self.MODES:
            raise AnimatorError(
                f"unknown depth tracking mode {mode!r}", field="mode", hint="use one of: " + ", ".join(self.MODES)
            )
        if not 0.0 <= momentum < 1.0:
            raise AnimatorError(f"momentum must be in [0, 1), got {momentum}", field="momentum")
        if not (near > 0 and far > near):
            raise AnimatorError(f"need far > near > 0, got near={near}, far={far}", field="near")
        self.near = float(near)
        self.far = float(far)
        self.mode = mode
        self.momentum = float(momentum)
        self.min_valid_fraction = float(min_valid_fraction)
        self.low = float(low)
        self.high = float(high)
        self.compile_mode = compile_mode  # torch.compile mode of the robust fit (animator.compiling), None: eager
        self._range: tuple[Tensor, Tensor] | None = None  # smoothed (lo, hi) disparity percentiles, each (B,)
        self._last_fit: dict | None = None

    @property
    def last_fit(self) -> dict | None:
        """Diagnostics of the last call (for run records and tests): ``method`` (align, smooth or normalise) and,
        after an align, each image's ``scale``, ``shift`` and ``valid_fraction`` as lists. Read from the device
        only when asked: the frame loop never asks."""
        if self._last_fit is None:
            return None
        method = self._last_fit["method"]
        if not isinstance(method, str):  # align mode decided on the device which of the two it kept
            if not bool(method):
                return {"method": "smooth"}
            method = "align"
        return {**{key: value.tolist() for key, value in self._last_fit.items() if key != "method"}, "method": method}

    def reset(self) -> None:
        """Forget the carried scale and shift (a scene cut)."""
        self._range = None
        self._last_fit = None

    def snapshot(self) -> dict:
        """The carried state as it is now, without copying it off the device (the tracker replaces its tensors,
        never changes them in place): the frame loop keeps one with each frame, because it checkpoints a frame
        after the tracker has already moved on to the next."""
        return {"range": self._range}

    def state_dict(self, snapshot: dict | None = None) -> dict:
        """The carried state (for a render's resume checkpoint) on the host, now or as ``snapshot`` kept it:
        restoring it makes the next frames identical."""
        carried = (snapshot if snapshot is not None else self.snapshot())["range"]
        return {"range": None if carried is None else tuple(t.detach().cpu() for t in carried)}

    def load_state_dict(self, state: dict) -> None:
        carried = state.get("range")
        self._range = None if carried is None else tuple(carried)
        self._last_fit = None

    def __call__(
        self,
        disparity: Tensor,
        *,
        reference_depth: Tensor | None = None,
        reference_valid: Tensor | None = None,
        near: float | Tensor | None = None,
        far: float | Tensor | None = None,
    ) -> Tensor:
        """Depth of this frame.

        Args:
            disparity: ``# Bx1xHxW`` relative inverse depth from a :class:`DepthEstimator`.
            reference_depth: ``# Bx1xHxW`` previous depth warped into this frame (positive z), or None.
            reference_valid: ``# Bx1xHxW`` bool (or 0/1 float) mask of pixels where ``reference_depth`` is known;
                None means all finite positive pixels of ``reference_depth``.
            near, far: this frame's range (float or ``# B``), default the constructor's.

        Returns:
            ``# Bx1xHxW`` float32 z on the disparity's device, within ``[near, far]``.
        """
        _check_depth_map("disparity", disparity)
        batch = disparity.shape[0]
        near_t = _per_sample("near", self.near if near is None else near, batch, disparity)
        far_t = _per_sample("far", self.far if far is None else far, batch, disparity)
        _check_near_far(near_t, far_t)
        disparity = disparity.float()

        if self.mode == "none" or self._range is None or self._range[0].shape != (batch,):
            lo, hi = disparity_percentiles(disparity, self.low, self.high)
            self._range = (lo, hi)
            self._last_fit = {"method": "normalise"}
            return _depth_from_normalised(_normalise(disparity, lo, hi), near_t, far_t)

        if self.mode == "align" and reference_depth is not None:
            self._check_reference(reference_depth, reference_valid, disparity)
            return self._align(disparity, reference_depth, reference_valid, near_t, far_t)
        lo, hi = self._smoothed_range(disparity)
        self._range = (lo, hi)
        self._last_fit = {"method": "smooth"}
        return _depth_from_normalised(_normalise(disparity, lo, hi), near_t, far_t)

    def _smoothed_range(self, disparity: Tensor) -> tuple[Tensor, Tensor]:
        past_lo, past_hi = (value.to(disparity.device) for value in self._range)
        return _smoothed_range(disparity, past_lo, past_hi, self.momentum, self.low, self.high)

    @staticmethod
    def _check_reference(reference_depth: Tensor, reference_valid: Tensor | None, disparity: Tensor) -> None:
        _check_depth_map("reference_depth", reference_depth)
        for name, value in (("reference_depth", reference_depth), ("reference_valid", reference_valid)):
            if value is not None and value.shape != disparity.shape:
                raise AnimatorError(
                    f"shape {tuple(value.shape)} differs from the disparity's {tuple(disparity.shape)}",
                    field=name,
                )

    def _align(self, disparity, reference_depth, reference_valid, near_t, far_t) -> Tensor:
        """Robust least-squares fit of ``1/reference = s * disparity + t`` per image; where any image cannot be
        fitted (too few valid pixels, or a fit that turns near into far), the smoothed normalisation instead.

        Both are computed and one is selected on the device (:func:`_aligned_depth`, one compiled graph with
        ``compile_mode``): deciding on the host would read a value back, which on a GPU waits for everything
        queued (the fallback costs a percentile and a few elementwise passes).
        """
        import torch

        from animator import compiling
        from animator.devices import upload

        if self.compile_mode is not None:
            # as tensors: a float would be compiled in as a constant, one graph per scheduled near/far value
            near_t, far_t = (
                value
                if not isinstance(value, float)
                else upload(torch.full((disparity.shape[0], 1, 1, 1), value), disparity.device)
                for value in (near_t, far_t)
            )
        past_lo, past_hi = (value.to(disparity.device) for value in self._range)
        depth, lo, hi, usable, scale, shift, valid_fraction = compiling.call(
            _aligned_depth,
            self.compile_mode,
            disparity,
            reference_depth,
            reference_valid,
            near_t,
            far_t,
            past_lo,
            past_hi,
            self.momentum,
            self.low,
            self.high,
            self.min_valid_fraction,
        )
        self._range = (lo, hi)
        self._last_fit = {"method": usable, "scale": scale, "shift": shift, "valid_fraction": valid_fraction}
        return depth


def _aligned_depth(
    disparity,
    reference_depth,
    reference_valid,
    near_t,
    far_t,
    past_lo,
    past_hi,
    momentum: float,
    low: float,
    high: float,
    min_valid_fraction: float,
):
    """:meth:`DepthTracker._align` as pure tensor code (no read-back: one compiled graph).

    Returns ``(depth, lo, hi, usable, scale, shift, valid_fraction)``: the depth (the fit where ``usable``, the
    smoothed normalisation elsewhere), the carried range for the next frame, and the fit's diagnostics.
    """
    import torch

    # Two numbers per image do not need every pixel: fit on a regular subsample (<= _FIT_SAMPLES pixels), which
    # keeps the robust iterations (medians sort) cheap at video resolutions; apply the fit to all pixels.
    stride = max(1, disparity[0].numel() // _FIT_SAMPLES)
    x = disparity.flatten(1)[:, ::stride]  # B x N
    ref = reference_depth.float().to(x.device).flatten(1)[:, ::stride]
    y = 1.0 / ref.clamp_min(1e-12)
    # Reference pixels sitting on the near/far clamp carry no scale information (their true z is unknown):
    # leave them out of the fit.
    valid = (ref > _column(near_t) * (1 + 1e-4)) & (ref < _column(far_t) * (1 - 1e-4)) & torch.isfinite(x)
    if reference_valid is not None:
        valid &= reference_valid.to(x.device).flatten(1)[:, ::stride].bool()
    scale, shift, usable, valid_fraction = _robust_line_fit(x, y, valid, min_valid_fraction)
    # mul + add_ and float clamp bounds: the broadcasting addcmul / tensor-bound clamp are ~5x slower on CPU
    inverse_depth = disparity.mul(scale.view(-1, 1, 1, 1)).add_(shift.view(-1, 1, 1, 1))
    if isinstance(near_t, float) and isinstance(far_t, float):
        inverse_depth = inverse_depth.clamp_(1.0 / far_t, 1.0 / near_t)
    else:
        inverse_depth = torch.maximum(inverse_depth, 1.0 / torch.as_tensor(far_t, device=inverse_depth.device))
        inverse_depth = torch.minimum(inverse_depth, 1.0 / torch.as_tensor(near_t, device=inverse_depth.device))
    aligned = inverse_depth.reciprocal_()
    lo_smooth, hi_smooth = _smoothed_range(disparity, past_lo, past_hi, momentum, low, high)
    smoothed = _depth_from_normalised(_normalise(disparity, lo_smooth, hi_smooth), near_t, far_t)
    # Keep the smoothing state consistent with the fitted frame, so a later fallback continues from here
    # rather than from an old range: the disparities that map to far and near under this fit.
    lo = (1.0 / _flat(far_t) - shift) / scale
    hi = (1.0 / _flat(near_t) - shift) / scale
    return (
        torch.where(usable, aligned, smoothed),
        torch.where(usable, lo, lo_smooth),
        torch.where(usable, hi, hi_smooth),
        usable,
        scale,
        shift,
        valid_fraction,
    )


def _smoothed_range(disparity, past_lo, past_hi, momentum: float, low: float, high: float):
    """This frame's disparity percentiles, moved only part of the way from the carried range (``momentum``)."""
    lo, hi = disparity_percentiles(disparity, low, high)
    return momentum * past_lo + (1 - momentum) * lo, momentum * past_hi + (1 - momentum) * hi


def _robust_line_fit(x: Tensor, y: Tensor, valid: Tensor, min_valid_fraction: float):
    """Per row of ``# BxN``, ``(scale, shift)`` of ``y ~ scale * x + shift`` over the valid pixels, robustly, with
    ``usable`` (0-dim bool: every row had enough valid pixels and a finite, positive scale) and the share of pixels
    the final fit kept. Pure tensor code with no read-back (compiled as one graph by :mod:`animator.compiling`).

    Starts from matched quantiles (robust to a few percent of wrong correspondences, which a plain least-squares
    start is not: one very near moving object has enough leverage to tilt the whole line), then re-weights
    (Cauchy-like weights on residuals scaled by their median) so that pixels the warp got wrong (disocclusions it
    did not mask, moving objects) stop pulling the least-squares fit.
    """
    import torch

    weight = valid.float()
    enough_valid = weight.mean(dim=1) >= min_valid_fraction
    scale, shift = _quantile_line_fit(x, y, weight)
    for _ in range(3):
        residual = (scale[:, None] * x + shift[:, None] - y).abs()
        # median of each row's valid residuals, without boolean indexing (which waits for the GPU)
        typical = torch.where(valid, residual, float("nan")).nanmedian(dim=1).values.clamp_min(1e-12)
        weight = valid.float() / (1.0 + (residual / (3.0 * typical[:, None])) ** 2)
        scale, shift = _weighted_line_fit(x, y, weight)
    # too few valid pixels, or disparity and reference disagree about what is near: not to be trusted
    usable = (enough_valid & torch.isfinite(scale) & torch.isfinite(shift) & (scale > 0)).all()
    return scale, shift, usable, (weight > 0).float().mean(1)


def _flat(value: float | Tensor) -> float | Tensor:
    return value.flatten() if hasattr(value, "flatten") else value


def _weighted_line_fit(x: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Per row, ``(s, t)`` minimising ``sum w (s x + t - y)^2``; all ``# BxN``, returns two ``# B``."""
    w_sum = w.sum(1).clamp_min(1e-12)
    x_mean = (w * x).sum(1) / w_sum
    y_mean = (w * y).sum(1) / w_sum
    xc, yc = x - x_mean[:, None], y - y_mean[:, None]
    var = (w * xc * xc).sum(1)
    cov = (w * xc * yc).sum(1)
    scale = cov / var.clamp_min(1e-20)
    return scale, y_mean - scale * x_mean


def _quantile_line_fit(x: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Per row, ``(s, t)`` mapping the 10-90% quantile range and median of ``x`` onto those of ``y`` (where w > 0)."""
    keep = w > 0
    qx = _masked_quantiles(x, keep, (0.1, 0.5, 0.9))
    qy = _masked_quantiles(y, keep, (0.1, 0.5, 0.9))
    scale = (qy[2] - qy[0]) / (qx[2] - qx[0]).clamp_min(1e-20)
    return scale, qy[1] - scale * qx[1]


def _masked_quantiles(values: Tensor, keep: Tensor, levels: tuple[float, ...]) -> list[Tensor]:
    """:func:`_quantiles` of each row's kept values (rows keep different counts), in one sort and without
    boolean indexing, so that nothing waits for the GPU: left-out values sort last as +inf and each row's
    nearest rank is taken among its own kept count."""
    import torch

    ordered = torch.where(keep, values, float("inf")).sort(dim=1).values
    count = keep.sum(dim=1, keepdim=True)
    result = []
    for level in levels:
        rank = torch.round(level * (count - 1).clamp_min(0).double()).long().clamp_(0, values.shape[1] - 1)
        result.append(ordered.gather(1, rank).squeeze(1))
    return result


def _quantiles(values: Tensor, levels: tuple[float, ...]) -> list[Tensor]:
    """Per row of ``# BxN`` finite values, the nearest-rank quantile at each level (each ``# B``).

    ``kthvalue`` selects in linear time; ``torch.quantile`` sorts, ~10x slower at these sizes.
    """
    count = values.shape[1]
    return [values.kthvalue(min(count, max(1, round(level * (count - 1)) + 1)), dim=1).values for level in levels]
