"""The augmentation registry: each augmentation registers its class here, one line in its own file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.registry import Registry

if TYPE_CHECKING:
    from .base import Augmentation

#: name -> the Augmentation subclass; ``cls.create(strategy=, space=, image_size=)`` builds one and
#: class attributes carry the facts about it (``clips``, ``needs_unit_range``).
AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")
