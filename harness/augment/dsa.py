"""DSA: differentiable Siamese augmentation (Zhao & Bilen, ICML 2021), batched.

Follows REFERENCE.md ("DSA") and the ParamDiffAug values of the DC/DSA code:

* flip: horizontal, per sample with p = 0.5;
* scale: ``sx, sy ~ U[1/1.2, 1.2]`` (affine grid, bilinear, zero padding);
* rotate: angle ``~ U(-15°, 15°)`` (affine grid, bilinear, zero padding);
* crop: translate by integer pixels ``ty ~ U{-s_h..s_h}``, ``tx ~ U{-s_w..s_w}`` with
  ``s = int(0.125 * size + 0.5)``, zero fill (``out[i, j] = x[i + ty, j + tx]``);
* cutout: a ``int(0.5 * H + 0.5)`` x ``int(0.5 * W + 0.5)`` square set to 0, centre
  ``c ~ U{0 .. size - (size_c % 2)}`` (the square may hang over the border);
* color: brightness ``x + (U(0,1) - 0.5) * 1.0``, then saturation ``(x - m_c) * U(0,1) * 2 + m_c``
  (``m_c``: per-pixel mean over channels; identity on 1-channel images), then contrast
  ``(x - m) * (U(0,1) + 0.5) + m`` (``m``: per-image mean over C, H, W).

Mode "S": per batch ONE family is drawn uniformly from the strategy string's ``_``-separated
families; every sample gets its own parameters. All ops act on the tensor in whatever pixel
space it is in (the original applied DSA to normalized images), never clip, and are
differentiable in ``x``.

Siamese use (condensation): draw once with :func:`sample_dsa`, apply the same
:class:`DSASample` to the real and to the synthetic batch with :func:`apply_dsa`. The original
code made the whole batch share sample 0's parameters; do that with a sample drawn for ``n=1``
and ``apply_dsa(x, sample, broadcast=True)`` (works for any batch size, IPC 1 included).

``align_corners``: the DC/DSA code called ``affine_grid``/``grid_sample`` without the argument,
i.e. with PyTorch's default ``align_corners=False``; that is our default. (MTT's copy passes
``align_corners=True``; set ``DSAParams(align_corners=True)`` to reproduce it. The two differ by
under one pixel of displacement at the borders.)

Random numbers are drawn from the explicit CPU generator and then moved to ``x.device``.
Cost (2-core CPU, 1 thread, batch 256): ~12-15 us per image at 28-32 px, ~110 us at 64 px
(scale/rotate dominate; flip/color/cutout/crop are cheaper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from dcregistry.catalog import DSA_STRATEGY_DEFAULT, DatasetInfo, get_dataset_info
from dcregistry.errors import UnknownNameError

from .base import Augmentation, check_generator, check_images
from .registry import AUGMENTATIONS

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace

FAMILIES: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")

# Tensor keys each family's sample holds (first dimension = n).
_KEYS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "crop": ("ty", "tx"),
    "cutout": ("cy", "cx"),
    "flip": ("flip",),
    "scale": ("sx", "sy"),
    "rotate": ("angle",),
}


@dataclass(frozen=True)
class DSAParams:
    """ParamDiffAug of the DC/DSA code (``aug_mode='S'``)."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0  # degrees
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    align_corners: bool = False


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``"color_crop_cutout"`` -> ``("color", "crop", "cutout")``, validated."""
    families = tuple(p for p in strategy.lower().split("_") if p)
    if not families:
        raise ValueError(f"DSA strategy {strategy!r} names no op family; use e.g. {DSA_STRATEGY_DEFAULT!r}")
    for f in families:
        if f not in FAMILIES:
            raise UnknownNameError(
                f"unknown DSA op family {f!r} in strategy {strategy!r} (known: {', '.join(FAMILIES)})"
            )
    return families


def _crop_shift(size: int, p: DSAParams) -> int:
    return int(size * p.ratio_crop_pad + 0.5)


def _cutout_size(size: int, p: DSAParams) -> int:
    return int(size * p.ratio_cutout + 0.5)


@dataclass(frozen=True, eq=False)
class DSASample:
    """One draw of DSA parameters: the family and per-sample CPU tensors (first dim ``n``).

    ``values`` keys per family: color: brightness (additive shift), saturation, contrast
    (factors); crop: ty, tx (int shifts, rows/cols); cutout: cy, cx (int centres); flip: flip
    (bool); scale: sx, sy; rotate: angle (radians). ``shape`` is the (C, H, W) it was drawn for.
    """

    family: str
    n: int
    shape: tuple[int, int, int]
    values: dict[str, Tensor]
    params: DSAParams = field(default_factory=DSAParams)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise UnknownNameError(f"unknown DSA op family {self.family!r} (known: {', '.join(FAMILIES)})")
        missing = [k for k in _KEYS[self.family] if k not in self.values]
        if missing:
            raise ValueError(f"DSASample({self.family}) lacks values {missing}")
        for k in _KEYS[self.family]:
            if self.values[k].shape[:1] != (self.n,):
                got = tuple(self.values[k].shape)
                raise ValueError(f"DSASample value {k!r} has shape {got}, expected ({self.n},)")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    def expand(self, n: int) -> DSASample:
        """The same parameters for ``n`` samples: a sample drawn for 1 repeated ``n`` times."""
        if n == self.n:
            return self
        if self.n != 1:
            raise ValueError(f"only a sample drawn for n=1 can be broadcast (this one has n={self.n})")
        vals = {k: v.expand(n, *v.shape[1:]).clone() for k, v in self.values.items()}
        return replace(self, n=n, values=vals)

    def select(self, index: Tensor | slice) -> DSASample:
        """The parameters of a subset of the samples."""
        vals = {k: v[index] for k, v in self.values.items()}
        n = next(iter(vals.values())).shape[0]
        return replace(self, n=n, values=vals)


def sample_dsa(
    n: int,
    strategy: str,
    generator: torch.Generator,
    params: DSAParams = DSAParams(),
    shape: tuple[int, ...] | None = None,
    *,
    family: str | None = None,
) -> DSASample:
    """Draw mode-"S" DSA parameters for ``n`` images of ``shape = (C, H, W)``.

    One family is drawn uniformly from ``strategy`` (or forced with ``family=``), then the
    per-sample parameters of that family, all from ``generator`` (a CPU generator).
    """
    check_generator(generator)
    if shape is None or len(shape) != 3:
        raise ValueError(f"sample_dsa needs shape=(C, H, W) of the images (got {shape!r})")
    if n < 1:
        raise ValueError(f"sample_dsa: n must be >= 1, got {n}")
    c, h, w = (int(s) for s in shape)
    if family is None:
        families = parse_strategy(strategy)
        family = families[int(torch.randint(len(families), (1,), generator=generator))]
    elif family not in FAMILIES:
        raise UnknownNameError(f"unknown DSA op family {family!r} (known: {', '.join(FAMILIES)})")
    p, g = params, generator

    def rand() -> Tensor:
        return torch.rand(n, generator=g)

    def randint(lo: int, hi_inclusive: int) -> Tensor:
        return torch.randint(lo, hi_inclusive + 1, (n,), generator=g)

    if family == "color":
        values = {
            "brightness": (rand() - 0.5) * p.brightness,
            "saturation": rand() * p.saturation,
            "contrast": rand() + p.contrast,
        }
    elif family == "crop":
        sh, sw = _crop_shift(h, p), _crop_shift(w, p)
        values = {"ty": randint(-sh, sh), "tx": randint(-sw, sw)}
    elif family == "cutout":
        ch, cw = _cutout_size(h, p), _cutout_size(w, p)
        values = {"cy": randint(0, h - ch % 2), "cx": randint(0, w - cw % 2)}
    elif family == "flip":
        values = {"flip": rand() < p.prob_flip}
    elif family == "scale":
        lo, hi = 1.0 / p.ratio_scale, p.ratio_scale
        values = {"sx": rand() * (hi - lo) + lo, "sy": rand() * (hi - lo) + lo}
    else:  # rotate
        values = {"angle": (rand() - 0.5) * 2 * p.ratio_rotate / 180.0 * math.pi}
    return DSASample(family, n, (c, h, w), values, params)


# --- the ops (x: [N, C, H, W] on any device; values already on x.device) ---------------------


def translate(x: Tensor, ty: Tensor, tx: Tensor, max_ty: int, max_tx: int) -> Tensor:
    """``out[n, :, i, j] = x[n, :, i + ty[n], j + tx[n]]``, zero outside; |ty| <= max_ty etc.

    Pads once and gathers; the result is contiguous (the original's permuted-view crop broke a
    following ``.view`` on 1-channel images).
    """
    n, c, h, w = x.shape
    xp = F.pad(x, (max_tx, max_tx, max_ty, max_ty))
    wp = w + 2 * max_tx
    rows = torch.arange(h, device=x.device).unsqueeze(0) + (ty + max_ty).unsqueeze(1)  # [n, h]
    cols = torch.arange(w, device=x.device).unsqueeze(0) + (tx + max_tx).unsqueeze(1)  # [n, w]
    idx = (rows.unsqueeze(2) * wp + cols.unsqueeze(1)).reshape(n, 1, h * w).expand(n, c, h * w)
    return xp.reshape(n, c, -1).gather(2, idx).reshape(n, c, h, w)


def affine(x: Tensor, a: Tensor, b: Tensor, cc: Tensor, d: Tensor, align_corners: bool) -> Tensor:
    """Sample ``x`` at ``[[a, b], [cc, d]] @ (u, v)`` (normalized output coords), zero padding."""
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([a, b, zero], 1), torch.stack([cc, d, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=align_corners)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


def _color(x: Tensor, v: dict[str, Tensor]) -> Tensor:
    x = x + v["brightness"].view(-1, 1, 1, 1)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * v["saturation"].view(-1, 1, 1, 1) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * v["contrast"].view(-1, 1, 1, 1) + m


def _cutout(x: Tensor, v: dict[str, Tensor], p: DSAParams) -> Tensor:
    _, _, h, w = x.shape
    ch, cw = _cutout_size(h, p), _cutout_size(w, p)
    top = (v["cy"] - ch // 2).unsqueeze(1)
    left = (v["cx"] - cw // 2).unsqueeze(1)
    ar_h = torch.arange(h, device=x.device).unsqueeze(0)
    ar_w = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (ar_h >= top) & (ar_h < top + ch)  # [n, h]
    in_cols = (ar_w >= left) & (ar_w < left + cw)  # [n, w]
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
    return x * keep.unsqueeze(1).to(x.dtype)


def apply_dsa(x: Tensor, sample: DSASample, *, broadcast: bool = False) -> Tensor:
    """Apply a drawn :class:`DSASample` to ``x`` ``[N, C, H, W]`` (differentiable in ``x``).

    ``sample.n`` must equal ``N``; with ``broadcast=True`` a sample drawn for ``n=1`` is applied
    to every image (the original's Siamese "same parameters for the whole batch"). ``H, W`` must
    be those the sample was drawn for (crop and cutout sizes depend on them).
    """
    check_images(x)
    n, _, h, w = x.shape
    if tuple(sample.shape[1:]) != (h, w):
        raise ValueError(f"DSA sample was drawn for {sample.shape[1]}x{sample.shape[2]} images, got {h}x{w}")
    if sample.n != n:
        if broadcast and sample.n == 1:
            sample = sample.expand(n)
        else:
            hint = " (draw it for n=1 and pass broadcast=True to share it)" if not broadcast else ""
            raise ValueError(f"DSA sample was drawn for {sample.n} images, the batch has {n}{hint}")
    p = sample.params
    v = {
        k: t.to(device=x.device, dtype=x.dtype if t.is_floating_point() else t.dtype)
        for k, t in sample.values.items()
    }
    fam = sample.family
    if fam == "color":
        out = _color(x, v)
    elif fam == "crop":
        out = translate(x, v["ty"], v["tx"], _crop_shift(h, p), _crop_shift(w, p))
    elif fam == "cutout":
        out = _cutout(x, v, p)
    elif fam == "flip":
        out = torch.where(v["flip"].view(-1, 1, 1, 1), x.flip(3), x)
    elif fam == "scale":
        zero = torch.zeros_like(v["sx"])
        out = affine(x, v["sx"], zero, zero, v["sy"], p.align_corners)
    else:  # rotate, as in the original: [[cos, -sin], [sin, cos]] in normalized coordinates
        cos, sin = torch.cos(v["angle"]), torch.sin(v["angle"])
        out = affine(x, cos, -sin, sin, cos, p.align_corners)
    return out.contiguous()


def dsa_augment(
    x: Tensor, strategy: str, generator: torch.Generator, params: DSAParams = DSAParams()
) -> Tensor:
    """Draw and apply independent mode-"S" DSA parameters for every image of ``x``."""
    check_images(x)
    sample = sample_dsa(x.shape[0], strategy, generator, params, tuple(x.shape[1:]))
    return apply_dsa(x, sample)


class DSAAugmentation(Augmentation):
    """``dsa`` at evaluation time: independent samples per call, never clips.

    ``strategy`` defaults to :data:`dcregistry.catalog.DSA_STRATEGY_DEFAULT`; pass the dataset's
    ``DatasetInfo.dsa_strategy`` (or use :meth:`for_dataset`), which drops ``flip`` on digits.
    """

    name = "dsa"
    clips = False

    def __init__(self, strategy: str | None = None, params: DSAParams = DSAParams()):
        super().__init__()
        self.strategy = strategy or DSA_STRATEGY_DEFAULT
        self.families = parse_strategy(self.strategy)
        self.params = params

    @classmethod
    def for_dataset(cls, dataset: str | DatasetInfo, params: DSAParams = DSAParams()) -> DSAAugmentation:
        info = dataset if isinstance(dataset, DatasetInfo) else get_dataset_info(dataset)
        return cls(info.dsa_strategy, params)

    @classmethod
    def create(
        cls, *, strategy: str | None = None, space: TensorSpace | None = None, image_size: int | None = None
    ) -> DSAAugmentation:
        return cls(strategy)

    def _apply(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return dsa_augment(x, self.strategy, generator, self.params)

    def __repr__(self) -> str:
        return f"DSAAugmentation(strategy={self.strategy!r})"


AUGMENTATIONS.register("dsa", DSAAugmentation)
