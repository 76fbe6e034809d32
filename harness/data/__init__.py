"""Real datasets from local disk, artifact pixel spaces, ZCA and class-balanced sampling.

``load_dataset(name, split, data_root=None, image_size=None) -> ImageSet`` reads any catalog
dataset (digits, mnist, fashionmnist, usps, svhn, cifar10, cifar100, tinyimagenet) from
torchvision's on-disk layouts or a Hugging Face ``datasets`` directory, without torchvision and
without downloading anything. Loaders are registered in ``LOADERS``, one line per dataset in
its layout module.
"""

from __future__ import annotations

from . import cifar, digits, mnist, svhn, tinyimagenet, usps  # noqa: F401  (register loaders)
from .base import (
    DATA_ROOT_ENV,
    LOADERS,
    SPLITS,
    DatasetFormatError,
    ImageSet,
    default_data_root,
    load_dataset,
    resize_images,
)
from .pixelspace import (
    TensorSpace,
    describe,
    normalized_space,
    to_pixel_space,
    to_unit,
    uint8_space,
    unit_space,
    validate_descriptor,
    zca_space,
)
from .sampling import class_balanced_indices, random_real_indices, validation_split
from .zca import PUBLISHED_VARIANTS, ZCATransform, fit_zca

__all__ = [
    "DATA_ROOT_ENV",
    "LOADERS",
    "SPLITS",
    "DatasetFormatError",
    "ImageSet",
    "default_data_root",
    "load_dataset",
    "resize_images",
    "describe",
    "TensorSpace",
    "normalized_space",
    "to_pixel_space",
    "to_unit",
    "uint8_space",
    "unit_space",
    "validate_descriptor",
    "zca_space",
    "class_balanced_indices",
    "random_real_indices",
    "validation_split",
    "PUBLISHED_VARIANTS",
    "ZCATransform",
    "fit_zca",
]
