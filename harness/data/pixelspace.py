"""Artifact pixel spaces: the ``pixel_space`` descriptor of dcreg/1 and conversions to/from unit space.

A descriptor is a plain dict, one of::

    {"kind": "unit"}                                   # floats in [0, 1]
    {"kind": "uint8"}                                  # the integers 0..255 (as numbers)
    {"kind": "normalized", "mean": [..], "std": [..]}  # (x - mean) / std per channel
    {"kind": "zca", "variant": "kornia-eps0.1" | "kip-reg0.1",
     "transform": {...} or "sha256:...",               # which fitted transform (opaque here)
     "then": <inner descriptor>}                       # the space the ZCA was fitted/applied on

For ``zca`` the pixels are ``ZCA(inner(x))``: the unit images are first brought to the ``then``
space (e.g. ``unit`` as MTT does, or ``normalized`` as KIP does), then whitened. The fitted
transform itself travels as tensors (:class:`~harness.data.zca.ZCATransform`), so the functions
here take it as an argument.

The conversions are exact inverses except: ``uint8`` rounds (``to_pixel_space`` quantises), and
``kip`` ZCA discards each image's mean and norm (``to_unit`` then returns the per-image
standardised image, mapped through the inverse of ``then`` -- fine for looking at, not the
original pixels). ``to_unit`` never clips: synthetic images may leave [0, 1]; clamp for display.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from dcregistry.catalog import DatasetInfo
from dcregistry.errors import ValidationError

from .zca import PUBLISHED_VARIANTS, ZCATransform

KINDS = ("unit", "uint8", "normalized", "zca")
Descriptor = Mapping[str, Any]


def unit_space() -> dict:
    return {"kind": "unit"}


def uint8_space() -> dict:
    return {"kind": "uint8"}


def normalized_space(info: DatasetInfo) -> dict:
    """The canonical normalized space of a catalog dataset (its mean/std)."""
    return {"kind": "normalized", "mean": [float(m) for m in info.mean], "std": [float(s) for s in info.std]}


def zca_space(variant: str, transform: Any, then: Descriptor) -> dict:
    desc = {"kind": "zca", "variant": variant, "transform": transform, "then": dict(then)}
    validate_descriptor(desc)
    return desc


def validate_descriptor(desc: Any, channels: int | None = None, field: str = "pixel_space") -> Descriptor:
    """Check ``desc`` is a well-formed descriptor; raise :class:`ValidationError` naming the field."""
    if not isinstance(desc, Mapping):
        raise ValidationError(field, f"must be an object, got {type(desc).__name__}")
    kind = desc.get("kind")
    if kind not in KINDS:
        raise ValidationError(f"{field}.kind", f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    if kind == "normalized":
        for key in ("mean", "std"):
            vals = desc.get(key)
            if not isinstance(vals, (list, tuple)) or not vals or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals
            ):
                raise ValidationError(f"{field}.{key}", "must be a non-empty list of finite numbers")
            if channels is not None and len(vals) not in (1, channels):
                raise ValidationError(f"{field}.{key}", f"has {len(vals)} values for {channels} channels")
        if any(s <= 0 for s in desc["std"]):
            raise ValidationError(f"{field}.std", "must be positive")
        if len(desc["mean"]) != len(desc["std"]):
            raise ValidationError(field, "mean and std have different lengths")
    elif kind == "zca":
        if desc.get("variant") not in PUBLISHED_VARIANTS:
            raise ValidationError(f"{field}.variant", f"unknown ZCA variant {desc.get('variant')!r}",
                                  f"use one of {', '.join(PUBLISHED_VARIANTS)}")
        if not isinstance(desc.get("transform"), (Mapping, str)):
            raise ValidationError(f"{field}.transform", "must be an object or a digest string")
        then = desc.get("then")
        if isinstance(then, Mapping) and then.get("kind") == "zca":
            raise ValidationError(f"{field}.then", "a ZCA space cannot be applied on another ZCA space")
        validate_descriptor(then, channels, f"{field}.then")
    return desc


def _stats(desc: Descriptor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(desc["mean"], dtype=x.dtype, device=x.device).view(-1, 1, 1)
    std = torch.tensor(desc["std"], dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return mean, std


def _check_images(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        raise ValidationError("images", f"expected a [N, C, H, W] or [C, H, W] tensor, got {getattr(x, 'shape', type(x))}")
    return x if x.is_floating_point() else x.to(torch.float32)


def _need_zca(desc: Descriptor, zca: ZCATransform | None) -> ZCATransform:
    if zca is None:
        raise ValidationError(
            "pixel_space.transform", f"the {desc['variant']} ZCA space needs its fitted ZCATransform",
            "load it from the artifact's zca_* tensors or fit it with fit_zca on the train split",
        )
    if zca.variant != desc["variant"]:
        raise ValidationError("pixel_space.variant", f"is {desc['variant']!r} but the given ZCA transform is {zca.variant!r}")
    return zca


def to_pixel_space(unit_images: torch.Tensor, descriptor: Descriptor, zca: ZCATransform | None = None) -> torch.Tensor:
    """Map unit-space images ``[N, C, H, W]`` (or ``[C, H, W]``) into ``descriptor``'s space.

    ``uint8`` returns ``round(x * 255)`` clamped to [0, 255] as a float32 tensor (the values of
    the uint8 pixels, not a uint8 tensor: cast with ``.to(torch.uint8)`` to store). ``zca`` needs
    the fitted ``zca`` transform.
    """
    x = _check_images(unit_images)
    validate_descriptor(descriptor, x.shape[-3])
    kind = descriptor["kind"]
    if kind == "unit":
        return x.clone()
    if kind == "uint8":
        return (x * 255.0).round().clamp(0.0, 255.0).to(torch.float32)
    if kind == "normalized":
        mean, std = _stats(descriptor, x)
        return (x - mean) / std
    inner = to_pixel_space(x, descriptor["then"])
    return _need_zca(descriptor, zca).apply(inner)


def to_unit(images: torch.Tensor, descriptor: Descriptor, zca: ZCATransform | None = None) -> torch.Tensor:
    """Inverse of :func:`to_pixel_space`: back to unit space (not clipped), e.g. for viewing.

    ``zca`` uses the transform's stored inverse matrix, then inverts ``then``.
    """
    x = _check_images(images)
    validate_descriptor(descriptor, x.shape[-3])
    kind = descriptor["kind"]
    if kind == "unit":
        return x.clone()
    if kind == "uint8":
        return x.to(torch.float32) / 255.0
    if kind == "normalized":
        mean, std = _stats(descriptor, x)
        return x * std + mean
    inner = _need_zca(descriptor, zca).invert(x)
    return to_unit(inner, descriptor["then"])


def _nums(vals: Any) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in vals) + "]"


def describe(descriptor: Descriptor) -> str:
    """One line saying what the numbers mean, e.g. ``normalized (x - mean) / std, mean [..], std [..]``."""
    validate_descriptor(descriptor)
    kind = descriptor["kind"]
    if kind == "unit":
        return "unit: floats in [0, 1]"
    if kind == "uint8":
        return "uint8: integer pixel values 0..255"
    if kind == "normalized":
        return f"normalized: (x - mean) / std with mean {_nums(descriptor['mean'])}, std {_nums(descriptor['std'])}"
    return f"ZCA-whitened ({descriptor['variant']}) after {describe(descriptor['then'])}"
