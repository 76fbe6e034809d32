"""The augmentation registry: each augmentation registers its factory here, one line in its own file."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.registry import Registry

if TYPE_CHECKING:
    from .base import Augmentation

#: name -> ``factory(*, strategy, stats, image_size) -> Augmentation`` (a ``create`` classmethod).
AUGMENTATIONS: Registry[Callable[..., Augmentation]] = Registry("augmentation")
