"""Augmentations with explicit generators: ``none``, ``dsa``, ``dc``, ``imagenet``, ``randaug``, ``autoaug``.

``aug = create_augmentation(name, strategy=..., space=..., image_size=...)`` then
``aug(x, generator)`` on a float batch ``[N, C, H, W]`` in the artifact's pixel space; the
result is in the same space and depends only on ``x`` and the (CPU) generator's state.
torchvision is imported lazily, on first use of a torchvision-based augmentation. Each
augmentation registers itself in :data:`~harness.augment.registry.AUGMENTATIONS` with one line
in its own file; this package imports each file once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Augmentation, Identity
from .dc import DCAugmentation
from .dsa import (
    DSAAugmentation,
    DSAParams,
    DSASample,
    apply_dsa,
    dsa_augment,
    parse_strategy,
    sample_dsa,
)
from .registry import AUGMENTATIONS
from .torchvision_policies import AutoAugmentation, ImageNetAugmentation, RandAugmentation

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace


def create_augmentation(
    name: str,
    *,
    strategy: str | None = None,
    space: TensorSpace | None = None,
    image_size: int | None = None,
) -> Augmentation:
    """Build the augmentation registered as ``name``.

    ``strategy``: DSA's op-family string (``DatasetInfo.dsa_strategy``; default
    ``color_crop_cutout_flip_scale_rotate``), used by ``dsa`` only. ``space``: the images' pixel
    space (default unit), used by the ones with ``needs_unit_range`` (``imagenet``, ``randaug``,
    ``autoaug``) to go to [0, 1] and back; they refuse a space that does not map back exactly. ``image_size``: the artifact's image size; picks ``autoaug``'s policy
    (IMAGENET for 64) and is checked against the batches; ``None`` takes it from each batch.
    """
    return AUGMENTATIONS.get(name).create(strategy=strategy, space=space, image_size=image_size)


__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "AutoAugmentation",
    "DCAugmentation",
    "DSAAugmentation",
    "DSAParams",
    "DSASample",
    "Identity",
    "ImageNetAugmentation",
    "RandAugmentation",
    "apply_dsa",
    "create_augmentation",
    "dsa_augment",
    "parse_strategy",
    "sample_dsa",
]
