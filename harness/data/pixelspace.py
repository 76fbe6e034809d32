"""Artifact pixel spaces for torch tensors: :class:`TensorSpace`, the one pixel-space type
(:class:`dcregistry.pixelspace.PixelSpace`, which owns parsing, validation and the conversion
maths) with its fitted :class:`~harness.data.zca.ZCATransform` and a torch backend.

The harness parses an artifact's descriptor once into a TensorSpace and passes that object on
(evaluation, augmentations, condensation). Conversions run on any device and are differentiable;
``uint8`` rounds; ``kip`` ZCA discards each image's mean and norm (``to_unit`` then returns the
per-image standardised image); ``to_unit`` never clips.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


def _check_images(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        raise ValidationError(
            "images", f"expected a [N, C, H, W] or [C, H, W] tensor, got {getattr(x, 'shape', type(x))}"
        )
    return x if x.is_floating_point() else x.to(torch.float32)


class _TorchOps:
    """The torch backend of :class:`PixelSpace`'s conversions: any device, differentiable, in the
    images' float dtype; a ZCA space's transform is a fitted :class:`ZCATransform`."""

    def floats(self, x: torch.Tensor) -> torch.Tensor:
        return _check_images(x)

    def copy(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def channel(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0).round().clamp(0.0, 255.0).to(torch.float32)

    def dequantize(self, x: torch.Tensor) -> torch.Tensor:
        return _check_images(x).to(torch.float32) / 255.0

    def whiten(self, x: torch.Tensor, space: PixelSpace, zca: ZCATransform | None) -> torch.Tensor:
        return _need_zca(space, zca).apply(x)

    def unwhiten(self, x: torch.Tensor, space: PixelSpace, zca: ZCATransform | None) -> torch.Tensor:
        return _need_zca(space, zca).invert(x)


TORCH = _TorchOps()


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


@dataclass(frozen=True, eq=False)  # eq would compare tensors; see same_as
class TensorSpace:
    """A pixel space as the harness carries it from artifact open to evaluation: the parsed
    :class:`PixelSpace` plus, for a ZCA space, its fitted :class:`ZCATransform` (``None`` until
    fitted). ``from_unit``/``to_unit`` map ``[N, C, H, W]`` (or ``[C, H, W]``) tensors."""

    space: PixelSpace
    zca: ZCATransform | None = None

    @classmethod
    def of(cls, desc: Descriptor | PixelSpace | TensorSpace, zca: ZCATransform | None = None) -> TensorSpace:
        """Parse ``desc`` once (a descriptor dict, a PixelSpace or a TensorSpace)."""
        if isinstance(desc, TensorSpace):
            return desc if zca is None else cls(desc.space, zca)
        return cls(PixelSpace.parse(desc), zca)

    @classmethod
    def unit(cls) -> TensorSpace:
        return cls(PixelSpace.unit())

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-range images -> this space (``uint8``: the rounded values as float32)."""
        out: torch.Tensor = self.space.from_unit(x, self.zca, TORCH)
        return out

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """This space -> unit range (not clipped); ``kip`` ZCA gives the standardised image."""
        out: torch.Tensor = self.space.to_unit(x, self.zca, TORCH)
        return out

    @property
    def kind(self) -> str:
        return self.space.kind

    @property
    def unit_range_exact(self) -> bool:
        """Whether images go to [0, 1] and back without loss (what torchvision policies need)."""
        return self.space.unit_range_exact

    def to_dict(self) -> dict[str, Any]:
        """The dcreg/1 descriptor."""
        return self.space.to_dict()

    def describe(self) -> str:
        return self.space.describe()

    def same_as(self, other: TensorSpace) -> bool:
        """Same descriptor and, for ZCA, the same fitted transform (descriptors do not name it)."""
        if self.space != other.space:
            return False
        return self.zca is None or other.zca is None or self.zca.digest() == other.zca.digest()


def to_pixel_space(
    unit_images: torch.Tensor,
    descriptor: Descriptor | PixelSpace | TensorSpace,
    zca: ZCATransform | None = None,
) -> torch.Tensor:
    """Map unit-space images into ``descriptor``'s space (:meth:`TensorSpace.from_unit`).

    ``uint8`` returns ``round(x * 255)`` clamped to [0, 255] as a float32 tensor (the values of
    the uint8 pixels, not a uint8 tensor: cast with ``.to(torch.uint8)`` to store). ``zca`` needs
    the fitted ``zca`` transform.
    """
    return TensorSpace.of(descriptor, zca).from_unit(unit_images)


def to_unit(
    images: torch.Tensor, descriptor: Descriptor | PixelSpace | TensorSpace, zca: ZCATransform | None = None
) -> torch.Tensor:
    """Inverse of :func:`to_pixel_space`: back to unit space (not clipped), e.g. for viewing."""
    return TensorSpace.of(descriptor, zca).to_unit(images)


def describe(descriptor: Descriptor | PixelSpace | TensorSpace) -> str:
    """One line saying what the numbers mean, e.g. ``normalized: (x - mean) / std, mean [..], std [..]``."""
    return TensorSpace.of(descriptor).describe()
