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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from .errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .catalog import DatasetInfo

KINDS = ("unit", "uint8", "normalized", "zca")
ZCA_VARIANTS = ("kornia-eps0.1", "kip-reg0.1")
ZCA_INNER_KINDS = ("normalized", "unit")
ZCA_TENSOR_NAMES = ("zca_mean", "zca_matrix", "zca_inverse")
#: Short names for the spaces a user picks (``dcreg import --pixel-space``), see :meth:`PixelSpace.named`.
SPACE_NAMES = ("normalized", "unit", "uint8", "zca-kornia", "zca-kip")
_VARIANT_RE = re.compile(r"(kornia)-eps([0-9.eE+-]+)|(kip)-reg([0-9.eE+-]+)")


def parse_zca_variant(variant: Any, *, published: bool = True) -> tuple[str, float]:
    """``"kornia-eps0.1"`` -> ``("kornia", 0.1)``, ``"kip-reg0.1"`` -> ``("kip", 0.1)``.

    Descriptors take only the published :data:`ZCA_VARIANTS`; ``published=False`` (fitting, for
    experiments) also takes ``kornia-eps<x>`` / ``kip-reg<x>`` with any positive ``x``.
    """
    m = _VARIANT_RE.fullmatch(variant) if isinstance(variant, str) else None
    value = None
    if m and (not published or variant in ZCA_VARIANTS):
        try:
            value = float(m.group(2) or m.group(4))
        except ValueError:
            value = None
    if m is None or value is None or not value > 0 or not math.isfinite(value):
        raise ValidationError(
            "pixel_space.variant",
            f"unknown ZCA variant {variant!r}",
            f"use one of {', '.join(ZCA_VARIANTS)}",
        )
    return (m.group(1) or m.group(3)), value


def standardize_rows(flat: Any, xp: Any = None) -> Any:
    """KIP's per-image standardisation of ``[N, D]`` rows: centre each row, scale it to unit L2
    norm. ``xp`` is the array module (numpy, or torch for tensors)."""
    if xp is None:
        import numpy as xp
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = xp.linalg.norm(flat, axis=1, keepdims=True)
    return flat / norms.clip(min=xp.finfo(flat.dtype).tiny)


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
        try:
            parse_zca_variant(variant)
        except ValidationError as e:
            raise error(f"{field}.variant", e.problem, e.fix) from None
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

    @classmethod
    def named(
        cls, name: str, info: DatasetInfo, *, zca_over: str | None = None, zca_stored: bool = False
    ) -> PixelSpace:
        """The space a short name of :data:`SPACE_NAMES` means for dataset ``info``.

        ``zca-kornia`` is kornia ZCA over ``zca_over`` (default unit), ``zca-kip`` KIP's over
        ``zca_over`` (default normalized); the transform is the artifact's tensors when
        ``zca_stored``, else refitted on the train split.
        """
        if name not in SPACE_NAMES:
            raise ValidationError(
                "pixel_space", f"unknown pixel space {name!r}", f"use one of {', '.join(SPACE_NAMES)}"
            )
        if name == "normalized":
            return cls.of_dataset(info)
        if name in ("unit", "uint8"):
            return cls(name)
        kornia = name == "zca-kornia"
        over = zca_over or ("unit" if kornia else "normalized")
        if over not in ZCA_INNER_KINDS:
            raise ValidationError(
                "pixel_space.then", f"ZCA over {over!r} is not supported", "use unit or normalized"
            )
        return cls.zca(
            "kornia-eps0.1" if kornia else "kip-reg0.1",
            {"source": "tensors"} if zca_stored else {"source": "fit", "split": "train"},
            cls.of_dataset(info) if over == "normalized" else cls.unit(),
        )

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
    def zca_stored(self) -> bool:
        """Whether the fitted ZCA travels as the artifact's tensors (else it is refitted)."""
        return (
            self.is_zca and isinstance(self.transform, Mapping) and self.transform.get("source") == "tensors"
        )

    @property
    def inner(self) -> PixelSpace:
        """The space a ZCA space whitens (``then``); the space itself otherwise."""
        return self._inner() if self.is_zca else self

    @property
    def unit_range_exact(self) -> bool:
        """Whether pixels map to unit range and back without loss (not ZCA): what augmentations
        that work on [0, 1] images need."""
        return not self.is_zca

    @property
    def key(self) -> str:
        """A short stable label: the kind, or ``zca:<variant>:<inner kind>`` (stats left out)."""
        if self.is_zca:
            return f"zca:{self.variant}:{self._inner().kind}"
        return self.kind

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

    def card_text(self) -> str:
        """The card's sentence(s) on how pixel values relate to the original images (Markdown)."""
        if self.kind == "normalized":
            return (
                f"Normalized: `x = (pixel01 - mean) / std` with mean {list(self._mean_std()[0])} and std "
                f"{list(self._mean_std()[1])}. De-normalize with `x * std + mean` to view."
            )
        if self.kind == "unit":
            return "Unit range: float pixels in [0, 1] (synthetic pixels may leave it slightly)."
        if self.kind == "uint8":
            return "uint8: integer pixels in [0, 255]."
        how = (
            "the whitening tensors `zca_mean`, `zca_matrix`, `zca_inverse` are stored in this artifact"
            if self.zca_stored
            else "refit it on the training split to evaluate"
        )
        return (
            f"ZCA-whitened ({self.variant}) after this inner space: "
            f"{self._inner().card_text()} The test set must get the same ZCA: {how}."
        )

    # --- conversions (one definition; the array backend is pluggable) -------------------------

    def from_unit(self, x: Any, zca: Any = None, ops: PixelOps | None = None) -> Any:
        """Unit-range images ``[N, C, H, W]`` -> this space (float32; uint8 as rounded values).

        ``ops`` is the array backend (default numpy, where ``zca`` is a mapping of the
        :data:`ZCA_TENSOR_NAMES` arrays; the harness passes a torch backend and a fitted
        transform). Conversions never clip, except ``uint8`` to 0..255.
        """
        ops = ops or NUMPY
        return self._from_unit(ops.floats(x), zca, ops)

    def to_unit(self, x: Any, zca: Any = None, ops: PixelOps | None = None) -> Any:
        """This space -> unit range (float32, not clipped); ZCA needs its inverse (see from_unit)."""
        ops = ops or NUMPY
        if self.kind == "uint8":
            return ops.dequantize(x)
        return self._to_unit(ops.floats(x), zca, ops)

    def _from_unit(self, x: Any, zca: Any, ops: PixelOps) -> Any:
        if self.kind == "unit":
            return ops.copy(x)
        if self.kind == "uint8":
            return ops.quantize(x)
        if self.kind == "normalized":
            mean, std = self._channel_stats(x, ops)
            return (x - mean) / std
        return ops.whiten(self._inner()._from_unit(x, None, ops), self, zca)

    def _to_unit(self, x: Any, zca: Any, ops: PixelOps) -> Any:
        if self.kind == "unit":
            return ops.copy(x)
        if self.kind == "uint8":
            return ops.dequantize(x)
        if self.kind == "normalized":
            mean, std = self._channel_stats(x, ops)
            return x * std + mean
        return self._inner()._to_unit(ops.unwhiten(x, self, zca), None, ops)

    def _channel_stats(self, x: Any, ops: PixelOps) -> tuple[Any, Any]:
        c = x.shape[-3]
        mean, std = self._mean_std()
        if len(mean) != c:
            raise ValidationError(
                "pixel_space.mean", f"has {len(mean)} values for {c} channel(s)", "give one value per channel"
            )
        return ops.channel(mean, x), ops.channel(std, x)

    def missing_zca(self, zca: Mapping[str, Any] | None, need: Iterable[str]) -> None:
        """Raise naming the ZCA tensors of ``need`` that ``zca`` lacks."""
        missing = [n for n in need if n not in (zca or {})]
        if missing:
            raise ValidationError(
                "pixel_space.transform",
                f"the {self.variant} ZCA space needs the tensors {', '.join(missing)}",
                "the artifact must carry them (zca_mean, zca_matrix, zca_inverse)",
            )


class PixelOps(Protocol):
    """The array backend of :class:`PixelSpace`'s conversions (numpy here, torch in the harness)."""

    def floats(self, x: Any) -> Any:
        """``x`` as a float array (float32 for numpy)."""

    def copy(self, x: Any) -> Any:
        """A copy of ``x``."""

    def channel(self, values: tuple[float, ...], like: Any) -> Any:
        """Per-channel constants shaped ``[C, 1, 1]``, in ``like``'s dtype (and device)."""

    def quantize(self, x: Any) -> Any:
        """Unit range -> ``round(x * 255)`` clipped to 0..255, as float32 values."""

    def dequantize(self, x: Any) -> Any:
        """0..255 values -> float32 unit range."""

    def whiten(self, x: Any, space: PixelSpace, zca: Any) -> Any:
        """Apply ``space``'s fitted ZCA (``zca``) to images ``[N, C, H, W]``."""

    def unwhiten(self, x: Any, space: PixelSpace, zca: Any) -> Any:
        """Invert :meth:`whiten` (KIP: back to the per-image standardised images)."""


class _NumpyOps:
    """numpy backend: float32 images; ZCA in float64 from the artifact's tensors. numpy is
    imported on first use, so that the name tables above import nothing heavy."""

    def floats(self, x: Any) -> NDArray[np.float32]:
        import numpy as np

        return np.asarray(x, dtype=np.float32)

    def copy(self, x: Any) -> Any:
        import numpy as np

        return np.array(x, copy=True)

    def channel(self, values: tuple[float, ...], like: Any) -> NDArray[np.float32]:
        import numpy as np

        return np.asarray(values, np.float32).reshape(-1, 1, 1)

    def quantize(self, x: Any) -> Any:
        import numpy as np

        return np.clip(np.rint(x * 255.0), 0.0, 255.0).astype(np.float32)

    def dequantize(self, x: Any) -> NDArray[np.float32]:
        import numpy as np

        return np.asarray(x).astype(np.float32) / 255.0

    @staticmethod
    def _tensors(space: PixelSpace, zca: Any, need: tuple[str, ...]) -> dict[str, NDArray[np.float64]]:
        import numpy as np

        space.missing_zca(zca, need)
        return {n: np.asarray(zca[n], dtype=np.float64) for n in need}

    def whiten(self, x: Any, space: PixelSpace, zca: Any) -> NDArray[np.float32]:
        import numpy as np

        mats = self._tensors(space, zca, ("zca_mean", "zca_matrix"))
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        if space.zca_standardizes:
            flat = standardize_rows(flat)
        out = (flat - mats["zca_mean"].reshape(1, -1)) @ mats["zca_matrix"]
        return np.asarray(out.reshape(x.shape), dtype=np.float32)

    def unwhiten(self, x: Any, space: PixelSpace, zca: Any) -> NDArray[np.float32]:
        import numpy as np

        mats = self._tensors(space, zca, ("zca_mean", "zca_inverse"))
        flat = x.reshape(x.shape[0], -1).astype(np.float64) @ mats["zca_inverse"]
        flat = flat + mats["zca_mean"].reshape(1, -1)
        return np.asarray(flat.reshape(x.shape), dtype=np.float32)


NUMPY: PixelOps = _NumpyOps()


def _nums(vals: Any) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in vals) + "]"


def parse_pixel_space(desc: Any, channels: int | None = None, field: str = "pixel_space") -> PixelSpace:
    """Shorthand for :meth:`PixelSpace.parse`."""
    return PixelSpace.parse(desc, channels, field)
