"""Colour coherence, contrast, noise and sharpening: the per-frame image treatments of the render loop.

Every function takes and returns images as tensors ``(B, 3, H, W)``, RGB, float in ``[0, 1]``, on any device, and
stays on that device (no numpy or OpenCV round trip): the loop calls them on every frame.

- :func:`match_color` keeps a loopback animation from drifting in colour by matching each frame's per-channel
  histograms to a reference (usually the first frame) in LAB, HSV or RGB. Build a :class:`ColorReference` once and
  pass it on every frame so that the reference is sorted only once.
- :func:`adjust_contrast` scales contrast and *clips* (Deforum's uint8 arithmetic wraps bright pixels to black).
- :func:`add_noise` adds gaussian or perlin noise in ``[-1, 1]`` image space, seeded only by a ``torch.Generator``.
- :func:`unsharp_mask` sharpens to counter the blur that repeated warping adds.

Example:
    >>> import torch
    >>> frame0 = torch.rand(1, 3, 64, 64)
    >>> reference = ColorReference(frame0, space="lab")
    >>> drifted = (frame0 * torch.tensor([1.1, 1.0, 0.9]).view(1, 3, 1, 1)).clamp(0, 1)
    >>> match_color(drifted, reference).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from animator.checks import check_bchw
from animator.choices import COLOR_SPACES as SPACES
from animator.choices import NOISE_TYPES as NOISE_KINDS
from animator.errors import AnimatorError
from animator.workspace import scratch

__all__ = [
    "SPACES",
    "NOISE_KINDS",
    "ColorReference",
    "match_color",
    "adjust_contrast",
    "add_noise",
    "perlin_noise",
    "unsharp_mask",
]


# The image's CDF is read from a histogram (O(N)) instead of a sort: sorting 512x512x3 values costs ~85 ms on a CPU
# core, the histogram ~1 ms. Mapping through a per-bin look-up table is continuous and monotone, equal input values
# map to equal outputs (a sort would spread a flat sky into a raster-order gradient), and matched quantiles land
# within a fraction of a bin width of the reference's.
_CDF_BINS = 2048
# Hue is circular: both histograms are cut open at the hue where the two images have the least mass.
_HUE_CUT_BINS = 72
_TWO_PI = 2.0 * math.pi


def _check_space(space: str) -> str:
    if not isinstance(space, str) or space.lower() not in SPACES:
        raise AnimatorError(f"unknown colour space {space!r}", field="space", hint="use one of: " + ", ".join(SPACES))
    return space.lower()


def _check_range(value: float, name: str, low: float, high: float = math.inf) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (low <= float(value) <= high):
        bound = f"[{low}, {high}]" if high != math.inf else f">= {low}"
        raise AnimatorError(f"{name} must be a number {bound}, got {value!r}", field=name)
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# colour spaces


def _to_space(image: Tensor, space: str) -> Tensor:
    """RGB ``(B, 3, H, W)`` in [0, 1] -> the space's channels (LAB: L 0..100, a/b ~±128; HSV: hue in radians)."""
    # Colour maths in float32 at least: half precision loses LAB detail and breaks the hue atan2.
    work = image.float() if image.dtype in (torch.float16, torch.bfloat16) else image
    if space == "lab":
        return _rgb_to_lab(work)
    if space == "hsv":
        import kornia

        hsv = kornia.color.rgb_to_hsv(work.clamp(0.0, 1.0))
        # kornia returns hue in [0, 2*pi]; fold 2*pi onto 0 so the circle has one seam.
        return torch.cat([torch.remainder(hsv[:, :1], _TWO_PI), hsv[:, 1:]], dim=1)
    return work


def _from_space(values: Tensor, space: str, dtype: torch.dtype) -> Tensor:
    """The space's channels -> RGB in [0, 1] in ``dtype``. ``values`` may be overwritten (callers pass their own)."""
    if space == "lab":
        return _lab_to_rgb(values).to(dtype)
    if space == "hsv":
        import kornia

        rgb = kornia.color.hsv_to_rgb(values)
    else:
        rgb = values
    return rgb.clamp(0.0, 1.0).to(dtype)


# LAB (D65, 2 degree observer) with kornia's constants, so values agree with kornia.color.rgb_to_lab / lab_to_rgb to
# float round-off. Written out here because it is the hot path of colour coherence: kornia's version spends most of
# its time in torch.pow and torch.where (neither is fast on a CPU) and in a dozen full-size temporaries. Here every
# piecewise curve is written without a branch, as ``g(max(x, t)) + slope * (min(x, t) - t)`` (both pieces meet at
# ``t``), powers are exp/log, the 3x3 colour matrices are one matmul each, and the work runs in place.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
_WHITE = (0.95047, 1.0, 1.08883)
_SRGB_KNEE = 0.04045  # sRGB value where the linear toe meets the 2.4 power
_LINEAR_KNEE = 0.0031308  # the same point in linear light
_LAB_KNEE = 0.008856  # normalised XYZ where the cube root meets the linear toe of L*
_LAB_F_KNEE = 0.2068966  # f(_LAB_KNEE) = 6/29
_LAB_SLOPE = 7.787
_SRGB_LUT: dict = {}
_LAB_MATRICES: dict = {}


def _workspace(name: str, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A scratch tensor shaped like ``like`` (in ``dtype``), reused by later calls (:mod:`animator.workspace`)."""
    return scratch(f"color.{name}", like.shape, dtype or like.dtype, like.device)


def _lab_matrices(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(rgb->xyz/white, f->lab, lab->f, xyz*white->rgb) 3x3 matrices in ``dtype`` on ``device`` (cached)."""
    key = (dtype, device)
    if key not in _LAB_MATRICES:
        _LAB_MATRICES[key] = _build_lab_matrices(dtype, device)
    return _LAB_MATRICES[key]


def _build_lab_matrices(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    white = torch.tensor(_WHITE, dtype=torch.float64)
    rgb_to_xyz = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64) / white[:, None]
    xyz_to_rgb = torch.tensor(_XYZ_TO_RGB, dtype=torch.float64) * white[None, :]
    f_to_lab = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=torch.float64)
    # inverse of f_to_lab applied to (L + 16, a, b): fy = (L+16)/116, fx = fy + a/500, fz = fy - b/200
    lab_to_f = torch.tensor(
        [[1 / 116.0, 1 / 500.0, 0.0], [1 / 116.0, 0.0, 0.0], [1 / 116.0, 0.0, -1 / 200.0]], dtype=torch.float64
    )
    return tuple(m.to(dtype=dtype, device=device) for m in (rgb_to_xyz, f_to_lab, lab_to_f, xyz_to_rgb))


def _srgb_to_linear(flat: Tensor, scratch: Tensor) -> Tensor:
    """Bx3xN sRGB -> Bx3xN linear RGB in the "linear" workspace (``scratch``: a Bx3xN buffer it may overwrite).

    Frames read from 8-bit files or encoded along the way hold only the values k/255; those take the exact curve
    from a 256-entry table (one gather instead of a log and an exp per value). On the CPU only: finding out reads
    values back, which on a GPU waits for its queue, and there the log and exp cost next to nothing."""
    if (
        flat.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and flat.dtype == torch.float32
        and flat.numel() >= 4096
        and _looks_quantised(flat.reshape(-1)[:1024])
    ):
        code = torch.mul(flat, 255.0, out=scratch).round_()
        index = _workspace("index", code, torch.int32).copy_(code)
        # exactly quantised <=> every value equals its own code / 255 (a value outside [0, 1] is clamped, as below)
        if torch.equal(code.div_(255.0), flat):
            index.clamp_(0, 255)
            linear = _workspace("linear", flat).view(-1)
            return torch.index_select(_srgb_table(flat.device), 0, index.view(-1), out=linear).view_as(flat)
    linear = torch.clamp(flat, 0.0, 1.0, out=_workspace("linear", flat))
    torch.clamp(linear, max=_SRGB_KNEE, out=scratch)
    linear.clamp_(min=_SRGB_KNEE).add_(0.055).div_(1.055).log_().mul_(2.4).exp_()
    return linear.add_(scratch, alpha=1 / 12.92).sub_(_SRGB_KNEE / 12.92)


def _looks_quantised(sample: Tensor) -> bool:
    """Whether a few values are all k/255: a cheap first test, so that float frames skip the full check."""
    return torch.equal(torch.round(sample * 255.0) / 255.0, sample)


def _srgb_table(device: torch.device) -> Tensor:
    """The sRGB -> linear curve at k/255, k = 0..255 (float32, computed in float64)."""
    table = _SRGB_LUT.get(device)
    if table is None:
        code = torch.arange(256, dtype=torch.float64) / 255.0
        exact = torch.where(code > _SRGB_KNEE, ((code + 0.055) / 1.055) ** 2.4, code / 12.92)
        table = _SRGB_LUT[device] = exact.to(dtype=torch.float32, device=device)
    return table


def _rgb_to_lab(image: Tensor) -> Tensor:
    """RGB ``(B, 3, H, W)`` float32/64 in [0, 1] (clamped) -> LAB ``(B, 3, H, W)``, as kornia's rgb_to_lab.

    The result lives in this thread's "linear" workspace: use it up before the next colour conversion."""
    batch, _, height, width = image.shape
    flat = image.reshape(batch, 3, height * width)
    rgb_to_xyz, f_to_lab, _, _ = _lab_matrices(image.dtype, image.device)
    scratch = _workspace("scratch", flat)
    linear = _srgb_to_linear(flat, scratch)
    xyz = torch.matmul(rgb_to_xyz, linear, out=scratch)  # normalised by the white point
    # f(t) = cbrt(t) above the knee, the linear toe below it
    toe = torch.clamp(xyz, max=_LAB_KNEE, out=linear)
    xyz.clamp_(min=_LAB_KNEE).log_().div_(3.0).exp_()
    f = xyz.add_(toe, alpha=_LAB_SLOPE).sub_(_LAB_SLOPE * _LAB_KNEE)
    lab = torch.matmul(f_to_lab, f, out=linear)
    lab[:, 0].sub_(16.0)
    return lab.view(batch, 3, height, width)


def _lab_to_rgb(lab: Tensor) -> Tensor:
    """LAB ``(B, 3, H, W)`` -> RGB in [0, 1], as kornia's lab_to_rgb. Works in place: ``lab`` is overwritten."""
    batch, _, height, width = lab.shape
    _, _, lab_to_f, xyz_to_rgb = _lab_matrices(lab.dtype, lab.device)
    shifted = lab.reshape(batch, 3, height * width)
    shifted[:, 0].add_(16.0)
    f = torch.matmul(lab_to_f, shifted, out=torch.empty_like(shifted))  # becomes the result
    f[:, 2].clamp_(min=0.0)
    # t = f^3 above the knee, the linear toe below it
    toe = torch.clamp(f, max=_LAB_F_KNEE, out=shifted)
    f.clamp_(min=_LAB_F_KNEE)
    xyz = torch.mul(f, f, out=_workspace("scratch", f)).mul_(f)
    xyz.add_(toe, alpha=1 / _LAB_SLOPE).sub_(_LAB_F_KNEE / _LAB_SLOPE)
    linear = torch.matmul(xyz_to_rgb, xyz, out=f)
    # sRGB: 1.055 l^(1/2.4) - 0.055 above the knee, 12.92 l below it; then clipped to [0, 1]
    toe = torch.clamp(linear, max=_LINEAR_KNEE, out=shifted)
    linear.clamp_(min=_LINEAR_KNEE).log_().div_(2.4).exp_().mul_(1.055).sub_(0.055)
    rgb = linear.add_(toe, alpha=12.92).sub_(12.92 * _LINEAR_KNEE).clamp_(0.0, 1.0)
    return rgb.view(batch, 3, height, width)


# ---------------------------------------------------------------------------------------------------------------
# histogram matching


class ColorReference:
    """A reference image's per-channel sorted values in one colour space, computed once and reused every frame.

    Args:
        reference: ``(1, 3, H, W)`` or ``(B, 3, H, W)`` RGB in [0, 1]. A batch of one serves any image batch;
            a batch of B serves image batches of exactly B (item i matched to reference i).
        space: ``"lab"`` (default: lightness and the two colour axes apart), ``"hsv"`` or ``"rgb"``.

    Attributes:
        space: the colour space the values are in.
        sorted_values: ``(B, 3, H*W)`` each channel's values in ascending order (hue in radians, in [0, 2*pi)).
        hue_histogram: ``(B, 72)`` hue mass per 5-degree bin (HSV only, else None), used to cut the hue circle.
    """

    def __init__(self, reference: Tensor, space: str = "lab") -> None:
        check_bchw(reference, "reference", min_pixels=2)
        self.space = _check_space(space)
        values = _to_space(reference, self.space).flatten(2)  # Bx3xN
        self.sorted_values = torch.sort(values, dim=-1).values
        self.hue_histogram = _hue_histogram(values[:, 0]) if self.space == "hsv" else None

    @property
    def batch_size(self) -> int:
        return self.sorted_values.shape[0]

    def to(self, device: torch.device | str) -> ColorReference:
        """Moves the precomputed values to ``device`` in place (returns self)."""
        self.sorted_values = self.sorted_values.to(device)
        if self.hue_histogram is not None:
            self.hue_histogram = self.hue_histogram.to(device)
        return self

    def __repr__(self) -> str:
        return f"ColorReference(space={self.space!r}, batch={self.batch_size}, pixels={self.sorted_values.shape[-1]})"


def match_color(
    image: Tensor,
    reference: ColorReference | Tensor,
    *,
    space: str | None = None,
    strength: float = 1.0,
    compile_mode: str | None = None,
) -> Tensor:
    """Matches each channel's histogram of ``image`` to ``reference``'s in a colour space (colour coherence).

    Every pixel value is mapped through the image's own CDF and the reference's inverse CDF, so after matching the
    image's per-channel quantiles equal the reference's while the picture's structure (the order of values) stays.
    In HSV the hue circle is cut open where both images have the least hue mass, so reds on both sides of 0 degrees
    stay together; hue is blended along the shorter arc.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        reference: a :class:`ColorReference` (precomputed; cheapest for a reference reused every frame) or an RGB
            tensor ``(1|B, 3, H', W')`` in [0, 1] (any size).
        space: ``"lab"``, ``"hsv"`` or ``"rgb"``. Default: the ColorReference's space, or ``"lab"`` for a tensor.
            Naming a space that differs from a ColorReference's is an error.
        strength: 0 returns the image unchanged, 1 the fully matched image; in between blends in the colour space.
        compile_mode: a ``torch.compile`` mode to run the matching as one compiled graph (``lab`` and ``rgb``; see
            :mod:`animator.compiling`), None for eager.

    Returns:
        ``(B, 3, H, W)`` RGB in [0, 1], the dtype and device of ``image``.
    """
    check_bchw(image, "image", min_pixels=2)
    strength = _check_range(strength, "strength", 0.0, 1.0)
    reference = _as_reference(reference, space)
    if strength == 0.0:
        return image.clone()
    if reference.batch_size not in (1, image.shape[0]):
        raise AnimatorError(
            f"reference has batch {reference.batch_size} but image has batch {image.shape[0]}",
            field="reference",
            hint="use a reference batch of 1 (shared) or the same batch size as the image",
        )
    reference.to(image.device)
    if reference.space == "hsv":  # the hue cut is found on the host: never compiled
        values = _to_space(image, "hsv")
        flat = values.flatten(2)
        matched = torch.cat(
            [_match_hue(flat[:, :1], reference), _match_linear(flat[:, 1:], reference.sorted_values[:, 1:])], 1
        ).view_as(values)
        return _from_space(_blend(values, matched, strength, "hsv") if strength < 1.0 else matched, "hsv", image.dtype)
    from animator import compiling
    from animator.devices import upload

    if compile_mode is not None:  # a float argument would be compiled in as a constant: one graph per value
        strength = upload(torch.tensor(strength, dtype=torch.float32), image.device)
    return compiling.call(_match_on_the_line, compile_mode, image, reference.sorted_values, reference.space, strength)


def _match_on_the_line(image: Tensor, reference_sorted: Tensor, space: str, strength: float | Tensor) -> Tensor:
    """:func:`match_color` in ``lab`` or ``rgb``: every channel matched on the real line, no read-backs.
    (``lerp`` at weight 1 is exactly the matched value.)"""
    values = _to_space(image, space)  # Bx3xHxW
    matched = _match_linear(values.flatten(2), reference_sorted).view_as(values)
    return _from_space(torch.lerp(values, matched, strength), space, image.dtype)


def _as_reference(reference: ColorReference | Tensor, space: str | None) -> ColorReference:
    if isinstance(reference, ColorReference):
        if space is not None and _check_space(space) != reference.space:
            raise AnimatorError(
                f"space={space!r} but the ColorReference was built in {reference.space!r}",
                field="space",
                hint=f"build ColorReference(image, space={space!r}) or leave space out",
            )
        return reference
    if isinstance(reference, Tensor):
        return ColorReference(reference, space=_check_space(space or "lab"))
    raise AnimatorError(
        f"reference must be a ColorReference or an image tensor, got {type(reference).__name__}", field="reference"
    )


def _quantiles(sorted_values: Tensor, probability: Tensor) -> Tensor:
    """Linearly interpolated quantiles. ``sorted_values``: (1|B)xCxM ascending, ``probability``: BxCxN -> BxCxN."""
    last = sorted_values.shape[-1] - 1
    rows = sorted_values.to(probability.dtype).expand(probability.shape[0], -1, -1)
    position = probability * last
    lower = position.floor().long().clamp_(0, last)
    upper = (lower + 1).clamp_(max=last)
    weight = position - lower
    return torch.lerp(rows.gather(-1, lower), rows.gather(-1, upper), weight)


def _match_linear(values: Tensor, reference_sorted: Tensor) -> Tensor:
    """Histogram matching on the real line. ``values``: BxCxN, ``reference_sorted``: (1|B)xCxM ascending -> BxCxN.

    Each row's values are binned (see ``_CDF_BINS``); the transfer curve is the reference's quantile at the image's
    CDF at every bin edge, and each value is mapped by linear interpolation between its bin's two edges. That is a
    continuous, monotone look-up table: equal inputs give equal outputs and the order of values is kept.
    """
    batch, channels, count = values.shape
    rows = batch * channels
    # amin and amax apart: the fused aminmax over the last dim is several times slower on a CPU
    low, high = values.amin(dim=-1, keepdim=True), values.amax(dim=-1, keepdim=True)
    span = (high - low).clamp_min(1e-12)
    # Every value gets its position in one flat index space: row r's bins are [r * bins, (r + 1) * bins), so a
    # single bincount and gather serve all rows. The factor just under 1 keeps each row's maximum inside its last
    # bin. (Subtracting ``low`` first, not folding it into the offset: for a nearly flat row low * scale is huge and
    # float32 would lose the position.)
    scale = (_CDF_BINS * (1.0 - 1e-4)) / span
    row_start = torch.arange(rows, device=values.device, dtype=values.dtype).view(batch, channels, 1) * _CDF_BINS
    position = torch.sub(values, low, out=_workspace("position", values)).mul_(scale).add_(row_start)
    # int32: a quarter of the conversion time of int64 on a CPU; bincount and index_select both take it
    bin_index = _workspace("index", position, torch.int32).copy_(position).view(-1)  # truncates, as .to() does
    bin_index.clamp_(0, rows * _CDF_BINS - 1)  # a NaN value lands anywhere: keep its index inside the table

    if values.device.type == "cpu" and not torch.compiler.is_compiling():
        counts = torch.bincount(bin_index, minlength=rows * _CDF_BINS)
    else:  # bincount sizes its result by the largest index, read back from a GPU (a wait); a fixed-size sum instead.
        # int32, not int64: inductor has no atomic add for int64 and falls back to index_put's sort-based accumulate,
        # which took 23 ms of a 34 ms turbo frame at 512x512 on an H100; int32 is one atomic add per value.
        counts = torch.zeros(rows * _CDF_BINS, dtype=torch.int32, device=values.device)
        counts.index_add_(0, bin_index, torch.ones_like(bin_index))
    counts = counts.view(batch, channels, _CDF_BINS)
    cdf_at_edges = torch.cat([counts.new_zeros(batch, channels, 1), counts.cumsum(-1)], dim=-1).to(values.dtype) / count
    curve = _quantiles(reference_sorted, cdf_at_edges)  # BxCx(bins+1): output value at each bin edge
    # Within bin k the output is linear in the position: curve[k] + (curve[k+1] - curve[k]) * (position - k), that is
    # offset[k] + slope[k] * position. Both live in one two-column table so that a single gather fetches them.
    slope = curve[..., 1:] - curve[..., :-1]
    bin_start = torch.arange(rows * _CDF_BINS, device=values.device, dtype=torch.float64).view_as(slope)
    offset = curve[..., :-1].double() - slope.double() * bin_start  # float64: the offset is large where k is
    table = torch.stack([offset.to(values.dtype), slope], -1).view(-1, 2)
    if table.dtype == torch.float32:
        # one 8-byte word per bin: a 1-D gather is several times faster than gathering rows of two
        words = _workspace("words", bin_index, torch.float64)
        pieces = torch.index_select(table.view(torch.float64).view(-1), 0, bin_index, out=words).view(torch.float32)
    else:
        pieces = torch.stack([table[:, 0].index_select(0, bin_index), table[:, 1].index_select(0, bin_index)], -1)
    pieces = pieces.view(batch, channels, count, 2)
    return position.mul_(pieces[..., 1]).add_(pieces[..., 0])


def _hue_histogram(hue: Tensor) -> Tensor:
    """Bx1xN or BxN hue in [0, 2*pi) -> Bx72 fraction of pixels per bin."""
    hue = hue.reshape(hue.shape[0], -1)
    bins = (hue / _TWO_PI * _HUE_CUT_BINS).long().clamp_(0, _HUE_CUT_BINS - 1)
    counts = torch.zeros(hue.shape[0], _HUE_CUT_BINS, device=hue.device, dtype=hue.dtype)
    counts.scatter_add_(1, bins, torch.ones_like(hue))
    return counts / hue.shape[1]


def _match_hue(hue: Tensor, reference: ColorReference) -> Tensor:
    """Histogram matching on the hue circle. Bx1xN radians in [0, 2*pi) -> Bx1xN.

    Both distributions are cut open at the hue bin where they have the least mass together, matched as intervals,
    and wrapped back.
    """
    mass = _hue_histogram(hue) + reference.hue_histogram  # Bx72 (the reference broadcasts from 1)
    cut = (mass.argmin(dim=1).to(hue.dtype) + 0.5) * (_TWO_PI / _HUE_CUT_BINS)  # B, the centre of the emptiest bin
    matched = []
    for item in range(hue.shape[0]):
        reference_sorted = reference.sorted_values[item if reference.batch_size > 1 else 0, 0]  # M
        # Rotating a sorted circular list: values at or after the cut come first, the rest follow one turn later.
        split = torch.searchsorted(reference_sorted, cut[item : item + 1]).item()
        unrolled_reference = torch.cat([reference_sorted[split:], reference_sorted[:split] + _TWO_PI]) - cut[item]
        unrolled_hue = torch.remainder(hue[item : item + 1] - cut[item], _TWO_PI)
        matched.append(_match_linear(unrolled_hue, unrolled_reference.view(1, 1, -1)) + cut[item])
    return torch.remainder(torch.cat(matched), _TWO_PI)


def _blend(original: Tensor, matched: Tensor, strength: float, space: str) -> Tensor:
    """Blends in the colour space; hue goes along the shorter arc."""
    blended = torch.lerp(original, matched, strength)
    if space == "hsv":
        turn = torch.remainder(matched[:, :1] - original[:, :1] + math.pi, _TWO_PI) - math.pi  # in [-pi, pi)
        blended[:, :1] = torch.remainder(original[:, :1] + strength * turn, _TWO_PI)
    return blended


# ---------------------------------------------------------------------------------------------------------------
# contrast


def adjust_contrast(image: Tensor, contrast: float) -> Tensor:
    """Scales each image's contrast around its mean grey level and clips to [0, 1].

    ``contrast`` 1 is the identity, 0 a flat grey image at the mean level, 2 doubles every pixel's distance to the
    mean. Values are clipped, never wrapped: a bright pixel pushed past 1 stays white (Deforum's uint8 multiply
    wraps it around to near black). Around the mean (rather than a fixed mid-grey) so that a loopback with a
    contrast slightly above 1 does not also drift in brightness.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        contrast: >= 0.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    check_bchw(image, "image", min_pixels=2)
    contrast = _check_range(contrast, "contrast", 0.0)
    if contrast == 1.0:
        return image.clone()
    # Rec. 601 luma, the grey level PIL and torchvision use for the same operation.
    luma = 0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]
    mean_grey = luma.mean(dim=(-2, -1)).view(-1, 1, 1, 1)
    return ((image - mean_grey) * contrast + mean_grey).clamp_(0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# noise


def add_noise(
    image: Tensor,
    amount: float,
    *,
    generator: torch.Generator,
    kind: str = "gaussian",
    octaves: int = 4,
    persistence: float = 0.5,
    cells: int = 8,
) -> Tensor:
    """Adds noise in ``[-1, 1]`` image space: ``((image * 2 - 1) + amount * noise + 1) / 2``, clipped to [0, 1].

    Both kinds are standardised per image (zero mean, unit standard deviation), so ``amount`` is the noise's
    standard deviation in [-1, 1] units whatever the kind.

    - ``gaussian``: independent per pixel and channel.
    - ``perlin``: fractal gradient noise, smooth over space and shared by the three channels (a luminance grain,
      as in Deforum): ``octaves`` layers, each with twice the frequency and ``persistence`` times the amplitude
      of the previous one, the first with ``cells`` lattice cells across the longer image side.

    The noise depends only on ``generator`` (its seed and state) and the image size: the same seed gives the same
    noise on any device (it is drawn on the generator's device and moved to the image's).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        amount: >= 0; 0 returns the image unchanged (and draws nothing from the generator).
        generator: the frame's ``torch.Generator`` (required: unseeded noise would make renders unrepeatable).
        kind: ``"gaussian"`` or ``"perlin"``.
        octaves, persistence, cells: perlin only, see above.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    check_bchw(image, "image", min_pixels=2)
    amount = _check_range(amount, "amount", 0.0)
    if not isinstance(generator, torch.Generator):
        raise AnimatorError(
            f"generator must be a torch.Generator, got {type(generator).__name__}",
            field="generator",
            hint="pass torch.Generator().manual_seed(frame_seed)",
        )
    if kind not in NOISE_KINDS:
        raise AnimatorError(f"unknown noise kind {kind!r}", field="kind", hint="use one of: " + ", ".join(NOISE_KINDS))
    if amount == 0.0:
        return image.clone()
    batch, _, height, width = image.shape
    if kind == "gaussian":
        # Already zero-mean and unit variance: standardising again would only cost time.
        noise = torch.randn((batch, 3, height, width), generator=generator, device=generator.device)
    else:
        if not isinstance(octaves, int) or isinstance(octaves, bool) or octaves < 1:
            raise AnimatorError(f"octaves must be an integer >= 1, got {octaves!r}", field="octaves")
        persistence = _check_range(persistence, "persistence", 0.0)
        if not isinstance(cells, int) or isinstance(cells, bool) or cells < 1:
            raise AnimatorError(f"cells must be an integer >= 1, got {cells!r}", field="cells")
        noise = perlin_noise(
            (batch, height, width), generator=generator, octaves=octaves, persistence=persistence, cells=cells
        ).unsqueeze(1)
        noise = _standardize(noise)
    noise = noise.to(device=image.device, dtype=image.dtype)
    # ((image * 2 - 1) + amount * noise + 1) / 2, in one pass.
    return torch.add(image, noise, alpha=0.5 * amount).clamp_(0.0, 1.0)


def _standardize(noise: Tensor) -> Tensor:
    """Zero mean, unit standard deviation per batch item."""
    dims = tuple(range(1, noise.ndim))
    centred = noise - noise.mean(dim=dims, keepdim=True)
    return centred / centred.std(dim=dims, keepdim=True).clamp_min(1e-12)


def perlin_noise(
    size: tuple[int, int, int],
    *,
    generator: torch.Generator,
    octaves: int = 4,
    persistence: float = 0.5,
    cells: int = 8,
) -> Tensor:
    """Fractal 2-D gradient (Perlin) noise, ``size`` = (B, H, W) -> ``(B, H, W)`` on the generator's device.

    Octave k has ``cells * 2**k`` lattice cells across the longer side (the shorter side in proportion, at least
    one) and amplitude ``persistence**k``. Not normalised: a single octave lies within about ±0.7.
    """
    batch, height, width = size
    device = generator.device
    total = torch.zeros(batch, height, width, device=device)
    amplitude = 1.0
    for octave in range(octaves):
        across = cells * 2**octave
        cells_y = max(1, round(across * height / max(height, width)))
        cells_x = max(1, round(across * width / max(height, width)))
        total += amplitude * _perlin_octave(batch, height, width, cells_y, cells_x, generator)
        amplitude *= persistence
    return total


def _perlin_octave(
    batch: int, height: int, width: int, cells_y: int, cells_x: int, generator: torch.Generator
) -> Tensor:
    """One octave of gradient noise, Bx``height``x``width``, with a (cells_y+1)x(cells_x+1) lattice of unit gradients.

    Classic Perlin noise sums, over the four lattice corners c of a pixel's cell, fade_y * fade_x * (g_c . offset_c).
    Each term factors into a function of the row times a function of the column, so the whole image is two
    products of small matrices: noise = Y_fade @ Gx @ X_ramp^T + Y_ramp @ Gy @ X_fade^T, where row y of Y_fade
    holds the vertical fade weights of its two lattice rows and Y_ramp those weights times the vertical offsets.
    That is a few matrix products instead of eight per-pixel gathers (about 10x faster on a CPU).
    """
    device = generator.device
    angles = torch.rand((batch, cells_y + 1, cells_x + 1), generator=generator, device=device) * _TWO_PI
    fade_y, ramp_y = _perlin_axis_weights(height, cells_y, device)  # Hx(cy+1)
    fade_x, ramp_x = _perlin_axis_weights(width, cells_x, device)  # Wx(cx+1)
    along_x = fade_y @ torch.cos(angles) @ ramp_x.T  # BxHxW: x gradient components times x offsets
    along_y = ramp_y @ torch.sin(angles) @ fade_x.T
    return along_x + along_y


def _perlin_axis_weights(length: int, cells: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-pixel weights on the lattice lines of one axis: (fade, fade * offset), each ``length`` x (cells + 1)."""
    coordinate = (torch.arange(length, device=device, dtype=torch.float32) + 0.5) * (cells / length)  # pixel centres
    start = coordinate.floor().long().clamp_(max=cells - 1)
    offset = coordinate - start  # in [0, 1)
    # Quintic fade: zero first and second derivatives at lattice lines, so no grid seams.
    fade = offset * offset * offset * (offset * (offset * 6 - 15) + 10)
    rows = torch.arange(length, device=device)
    fade_weights = torch.zeros(length, cells + 1, device=device)
    ramp_weights = torch.zeros(length, cells + 1, device=device)
    fade_weights[rows, start] = 1 - fade
    fade_weights[rows, start + 1] = fade
    ramp_weights[rows, start] = (1 - fade) * offset
    ramp_weights[rows, start + 1] = fade * (offset - 1)
    return fade_weights, ramp_weights


# ---------------------------------------------------------------------------------------------------------------
# sharpening


def unsharp_mask(image: Tensor, amount: float, *, sigma: float = 1.0, threshold: float = 0.0) -> Tensor:
    """Sharpens by adding back ``amount`` times the detail a gaussian blur removes (anti-blur for loopbacks).

    ``out = image + amount * (image - gaussian_blur(image, sigma))``, clipped to [0, 1]. Pixels whose detail is
    below ``threshold`` in every channel (flat or nearly flat regions, where sharpening only amplifies noise) are
    left as they are.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        amount: >= 0; 0 is the identity.
        sigma: blur standard deviation in pixels (> 0); the kernel spans ±3 sigma.
        threshold: in [0, 1] image units (Deforum's is in 0..255 units: divide by 255).

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    import kornia

    check_bchw(image, "image", min_pixels=2)
    amount = _check_range(amount, "amount", 0.0)
    sigma = _check_range(sigma, "sigma", 1e-3)
    threshold = _check_range(threshold, "threshold", 0.0, 1.0)
    if amount == 0.0:
        return image.clone()
    radius = max(1, math.ceil(3.0 * sigma))
    # Reflect padding needs the kernel radius to be smaller than the image.
    radius = min(radius, image.shape[-2] - 1, image.shape[-1] - 1)
    kernel = 2 * radius + 1
    blurred = kornia.filters.gaussian_blur2d(image, (kernel, kernel), (sigma, sigma), border_type="reflect")
    detail = image - blurred
    if threshold > 0.0:
        detail = detail * (detail.abs().amax(dim=1, keepdim=True) >= threshold)
    return (image + amount * detail).clamp_(0.0, 1.0)
