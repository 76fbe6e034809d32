"""THE pixel-space type of dcreg/1 (numpy only): parse/validate the ``pixel_space`` descriptor,
map images to and from unit range, and name the ZCA tensors.

A descriptor is one of::

    {"kind": "unit"}                                   # floats in [0, 1]
    {"kind": "uint8"}                                  # the integers 0..255 (as numbers)
    {"kind": "normalized", "mean": [..], "std": [..]}  # (x - mean) / std, ONE value per channel
    {"kind": "zca", "variant": "kornia-eps0.1" | "kip-reg0.1",
     "transform": {...} or "sha256:...",               # which fitted transform
     "then": <normalized or unit descriptor>}          # the space the ZCA was fitted/applied on

``normalized`` always lists one mean and one std per channel (a single value for all channels is
refused everywhere, so a descriptor means the same thing to every reader). For ``zca`` the pixels
are ``ZCA(then(x))``; the fitted transform travels as the artifact tensors
:data:`ZCA_TENSOR_NAMES`: ``zca_mean`` [D], ``zca_matrix`` [D, D] (whitening, applied as
``(flat - mean) @ matrix``) and ``zca_inverse`` [D, D] (``flat @ inverse + mean``). The ``kip``
variants standardise each image (centre, unit L2 norm) before whitening, so their inverse gives
the standardised image. Conversions never clip; ``uint8`` rounds.

The harness wraps this type for torch tensors (:mod:`harness.data.pixelspace`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from .errors import ValidationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .catalog import DatasetInfo

KINDS = ("unit", "uint8", "normalized", "zca")
ZCA_VARIANTS = ("kornia-eps0.1", "kip-reg0.1")
ZCA_INNER_KINDS = ("normalized", "unit")
ZCA_TENSOR_NAMES = ("zca_mean", "zca_matrix", "zca_inverse")


def _finite_numbers(vals: Any) -> TypeGuard[Sequence[int | float]]:
    return (
        isinstance(vals, (list, tuple))
        and len(vals) > 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals)
    )


@dataclass(frozen=True)
class PixelSpace:
    """A parsed, validated ``pixel_space`` descriptor."""

    kind: str
    mean: tuple[float, ...] | None = None  # normalized: one per channel
    std: tuple[float, ...] | None = None
    variant: str | None = None  # zca
    transform: Any = None  # zca: a mapping or a digest string (opaque here)
    then: PixelSpace | None = None  # zca: the inner space

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        desc: Any,
        channels: int | None = None,
        field: str = "pixel_space",
        error: type[ValidationError] = ValidationError,
    ) -> PixelSpace:
        """Validate ``desc`` (a descriptor dict or a PixelSpace); ``error`` names the field."""
        if isinstance(desc, PixelSpace):
            desc = desc.to_dict()
        if not isinstance(desc, Mapping):
            raise error(field, f"must be an object, got {type(desc).__name__}")
        kind = desc.get("kind")
        if kind not in KINDS:
            raise error(f"{field}.kind", f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
        if kind in ("unit", "uint8"):
            return cls(kind)
        if kind == "normalized":
            for key in ("mean", "std"):
                vals = desc.get(key)
                if not _finite_numbers(vals):
                    raise error(f"{field}.{key}", "must be a non-empty list of finite numbers")
                if channels is not None and len(vals) != channels:
                    raise error(
                        f"{field}.{key}",
                        f"has {len(vals)} values for {channels} channel(s)",
                        "give one value per channel",
                    )
            if len(desc["mean"]) != len(desc["std"]):
                raise error(field, "mean and std have different lengths", "give one value per channel")
            if any(s <= 0 for s in desc["std"]):
                raise error(f"{field}.std", "must be positive")
            return cls(kind, tuple(float(v) for v in desc["mean"]), tuple(float(v) for v in desc["std"]))
        variant = desc.get("variant")
        if variant not in ZCA_VARIANTS:
            raise error(
                f"{field}.variant",
                f"unknown ZCA variant {variant!r}",
                f"use one of {', '.join(ZCA_VARIANTS)}",
            )
        transform = desc.get("transform")
        if not isinstance(transform, (Mapping, str)):
            raise error(f"{field}.transform", "must be an object or a digest string")
        then = desc.get("then")
        if isinstance(then, Mapping) and then.get("kind") not in ZCA_INNER_KINDS:
            raise error(
                f"{field}.then",
                f"ZCA over {then.get('kind')!r} is not supported",
                "ZCA is applied to normalized or unit images",
            )
        inner = cls.parse(then, channels, f"{field}.then", error)
        return cls(
            kind,
            variant=variant,
            transform=dict(transform) if isinstance(transform, Mapping) else transform,
            then=inner,
        )

    @classmethod
    def unit(cls) -> PixelSpace:
        return cls("unit")

    @classmethod
    def uint8(cls) -> PixelSpace:
        return cls("uint8")

    @classmethod
    def normalized(cls, mean: Iterable[float], std: Iterable[float]) -> PixelSpace:
        return cls.parse({"kind": "normalized", "mean": list(mean), "std": list(std)})

    @classmethod
    def of_dataset(cls, info: DatasetInfo) -> PixelSpace:
        """The canonical normalized space of a catalog dataset (its mean/std)."""
        return cls.normalized(info.mean, info.std)

    @classmethod
    def zca(cls, variant: str, transform: Any, then: PixelSpace | Mapping[str, Any]) -> PixelSpace:
        inner = then.to_dict() if isinstance(then, PixelSpace) else dict(then)
        return cls.parse({"kind": "zca", "variant": variant, "transform": transform, "then": inner})

    def to_dict(self) -> dict[str, Any]:
        """The descriptor as stored in metadata."""
        if self.kind == "normalized":
            mean, std = self._mean_std()
            return {"kind": "normalized", "mean": list(mean), "std": list(std)}
        if self.kind == "zca":
            return {
                "kind": "zca",
                "variant": self.variant,
                "transform": self.transform,
                "then": self._inner().to_dict(),
            }
        return {"kind": self.kind}

    # --- facts --------------------------------------------------------------------------------

    def _mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``mean`` and ``std`` of a normalized space (:meth:`parse` always sets both)."""
        assert self.mean is not None and self.std is not None, "a normalized space without stats"
        return self.mean, self.std

    def _inner(self) -> PixelSpace:
        """``then`` of a zca space (:meth:`parse` always sets it)."""
        assert self.then is not None, "a zca space without its inner space"
        return self.then

    @property
    def is_zca(self) -> bool:
        return self.kind == "zca"

    @property
    def zca_standardizes(self) -> bool:
        """Whether the ZCA variant standardises each image first (KIP)."""
        return bool(self.variant and self.variant.startswith("kip"))

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """Artifact tensors this space needs to be inverted exactly."""
        return ZCA_TENSOR_NAMES if self.is_zca else ()

    def check_channels(self, channels: int) -> None:
        """Raise if the descriptor's per-channel stats do not fit ``channels``."""
        PixelSpace.parse(self, channels)

    def describe(self) -> str:
        """One line saying what the numbers mean."""
        if self.kind == "unit":
            return "unit: floats in [0, 1]"
        if self.kind == "uint8":
            return "uint8: integer pixel values 0..255"
        if self.kind == "normalized":
            return f"normalized: (x - mean) / std with mean {_nums(self.mean)}, std {_nums(self.std)}"
        return f"ZCA-whitened ({self.variant}) after {self._inner().describe()}"

    # --- numpy conversions --------------------------------------------------------------------

    def from_unit(self, x: np.ndarray, zca: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Unit-range images ``[N, C, H, W]`` -> this space (float32; uint8 as rounded values)."""
        x = np.asarray(x, dtype=np.float32)
        if self.kind == "unit":
            return x.copy()
        if self.kind == "uint8":
            return np.clip(np.rint(x * 255.0), 0.0, 255.0).astype(np.float32)
        if self.kind == "normalized":
            mean, std = self._stats(x)
            return ((x - mean) / std).astype(np.float32)
        mats = self._zca_tensors(zca, ("zca_mean", "zca_matrix"))
        inner = self._inner().from_unit(x)
        flat = inner.reshape(inner.shape[0], -1).astype(np.float64)
        if self.zca_standardizes:
            flat = flat - flat.mean(axis=1, keepdims=True)
            flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        out = (flat - mats["zca_mean"].reshape(1, -1)) @ mats["zca_matrix"]
        return out.reshape(x.shape).astype(np.float32)

    def to_unit(self, x: np.ndarray, zca: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """This space -> unit range (float32, not clipped); ZCA needs ``zca_inverse``/``zca_mean``."""
        x = np.asarray(x)
        if self.kind == "uint8":
            return x.astype(np.float32) / 255.0
        x = x.astype(np.float32)
        if self.kind == "unit":
            return x.copy()
        if self.kind == "normalized":
            mean, std = self._stats(x)
            return (x * std + mean).astype(np.float32)
        mats = self._zca_tensors(zca, ("zca_mean", "zca_inverse"))
        flat = x.reshape(x.shape[0], -1).astype(np.float64) @ mats["zca_inverse"]
        flat = flat + mats["zca_mean"].reshape(1, -1)
        return self._inner().to_unit(flat.reshape(x.shape).astype(np.float32))

    def _stats(self, x: np.ndarray) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        c = x.shape[-3]
        mean, std = self._mean_std()
        if len(mean) != c:
            raise ValidationError(
                "pixel_space.mean", f"has {len(mean)} values for {c} channel(s)", "give one value per channel"
            )
        shape = (c, 1, 1)
        return (np.asarray(mean, np.float32).reshape(shape), np.asarray(std, np.float32).reshape(shape))

    def _zca_tensors(
        self, zca: Mapping[str, Any] | None, need: tuple[str, ...]
    ) -> dict[str, NDArray[np.float64]]:
        have: Mapping[str, Any] = zca or {}
        missing = [n for n in need if n not in have]
        if missing:
            raise ValidationError(
                "pixel_space.transform",
                f"the {self.variant} ZCA space needs the tensors {', '.join(missing)}",
                "the artifact must carry them (zca_mean, zca_matrix, zca_inverse)",
            )
        return {n: np.asarray(have[n], dtype=np.float64) for n in need}


def _nums(vals: Any) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in vals) + "]"


def parse_pixel_space(desc: Any, channels: int | None = None, field: str = "pixel_space") -> PixelSpace:
    """Shorthand for :meth:`PixelSpace.parse`."""
    return PixelSpace.parse(desc, channels, field)
