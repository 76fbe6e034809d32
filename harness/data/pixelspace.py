"""Artifact pixel spaces for torch tensors: a thin wrapper over the one numpy-only type,
:class:`dcregistry.pixelspace.PixelSpace` (parsing, validation, per-channel stats, ZCA names).

Descriptors (plain dicts) are validated by ``PixelSpace.parse``: ``normalized`` has exactly one
mean and std per channel; ``zca`` sits on a ``normalized`` or ``unit`` space. Here the same maps
are done in torch (on any device, differentiable) with the fitted
:class:`~harness.data.zca.ZCATransform`. ``uint8`` rounds; ``kip`` ZCA discards each image's
mean and norm (``to_unit`` then returns the per-image standardised image); ``to_unit`` never
clips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch

from dcregistry.catalog import DatasetInfo
from dcregistry.errors import ValidationError
from dcregistry.pixelspace import KINDS, ZCA_TENSOR_NAMES, PixelSpace  # noqa: F401  (re-exported)

from .zca import ZCATransform

Descriptor = Mapping[str, Any]


def unit_space() -> dict[str, Any]:
    return PixelSpace.unit().to_dict()


def uint8_space() -> dict[str, Any]:
    return PixelSpace.uint8().to_dict()


def normalized_space(info: DatasetInfo) -> dict[str, Any]:
    """The canonical normalized space of a catalog dataset (its mean/std)."""
    return PixelSpace.of_dataset(info).to_dict()


def zca_space(variant: str, transform: Any, then: Descriptor) -> dict[str, Any]:
    return PixelSpace.zca(variant, transform, then).to_dict()


def validate_descriptor(desc: Any, channels: int | None = None, field: str = "pixel_space") -> Descriptor:
    """Check ``desc`` is a well-formed descriptor; raise :class:`ValidationError` naming the field."""
    PixelSpace.parse(desc, channels, field)
    return cast(Descriptor, desc)


def _stats(space: PixelSpace, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(space.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    std = torch.tensor(space.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return mean, std


def _check_images(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        raise ValidationError(
            "images", f"expected a [N, C, H, W] or [C, H, W] tensor, got {getattr(x, 'shape', type(x))}"
        )
    return x if x.is_floating_point() else x.to(torch.float32)


def _need_zca(space: PixelSpace, zca: ZCATransform | None) -> ZCATransform:
    if zca is None:
        raise ValidationError(
            "pixel_space.transform",
            f"the {space.variant} ZCA space needs its fitted ZCATransform",
            "load it from the artifact's zca_* tensors or fit it with fit_zca on the train split",
        )
    if zca.variant != space.variant:
        raise ValidationError(
            "pixel_space.variant", f"is {space.variant!r} but the given ZCA transform is {zca.variant!r}"
        )
    return zca


def _to_space(x: torch.Tensor, space: PixelSpace, zca: ZCATransform | None) -> torch.Tensor:
    if space.kind == "unit":
        return x.clone()
    if space.kind == "uint8":
        return (x * 255.0).round().clamp(0.0, 255.0).to(torch.float32)
    if space.kind == "normalized":
        mean, std = _stats(space, x)
        return (x - mean) / std
    assert space.then is not None  # PixelSpace.parse gives every zca space its inner space
    return _need_zca(space, zca).apply(_to_space(x, space.then, None))


def _from_space(x: torch.Tensor, space: PixelSpace, zca: ZCATransform | None) -> torch.Tensor:
    if space.kind == "unit":
        return x.clone()
    if space.kind == "uint8":
        return x.to(torch.float32) / 255.0
    if space.kind == "normalized":
        mean, std = _stats(space, x)
        return x * std + mean
    assert space.then is not None  # PixelSpace.parse gives every zca space its inner space
    return _from_space(_need_zca(space, zca).invert(x), space.then, None)


def to_pixel_space(
    unit_images: torch.Tensor, descriptor: Descriptor | PixelSpace, zca: ZCATransform | None = None
) -> torch.Tensor:
    """Map unit-space images ``[N, C, H, W]`` (or ``[C, H, W]``) into ``descriptor``'s space.

    ``uint8`` returns ``round(x * 255)`` clamped to [0, 255] as a float32 tensor (the values of
    the uint8 pixels, not a uint8 tensor: cast with ``.to(torch.uint8)`` to store). ``zca`` needs
    the fitted ``zca`` transform.
    """
    x = _check_images(unit_images)
    return _to_space(x, PixelSpace.parse(descriptor, x.shape[-3]), zca)


def to_unit(
    images: torch.Tensor, descriptor: Descriptor | PixelSpace, zca: ZCATransform | None = None
) -> torch.Tensor:
    """Inverse of :func:`to_pixel_space`: back to unit space (not clipped), e.g. for viewing.

    ``zca`` uses the transform's stored inverse matrix, then inverts ``then``.
    """
    x = _check_images(images)
    return _from_space(x, PixelSpace.parse(descriptor, x.shape[-3]), zca)


def describe(descriptor: Descriptor | PixelSpace) -> str:
    """One line saying what the numbers mean, e.g. ``normalized: (x - mean) / std, mean [..], std [..]``."""
    return PixelSpace.parse(descriptor).describe()
