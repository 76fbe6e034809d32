"""The dataset catalog: names, class order, image shapes and canonical normalization stats.

Plain data shared by the registry (importers fill pixel-space stats from it) and the harness
(loaders and protocols). Class order is each dataset's standard order. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import UnknownNameError

#: DSA augmentation strategy of the DSA/DM papers; gray / digit datasets drop ``flip``.
DSA_STRATEGY_DEFAULT = "color_crop_cutout_flip_scale_rotate"
DSA_STRATEGY_NO_FLIP = "color_crop_cutout_scale_rotate"

_DIGITS = [str(i) for i in range(10)]
_CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_FASHION = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_CIFAR100 = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset without reading its files."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]  # (C, H, W) as stored on disk
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None  # None: read from the data (TinyImageNet's WordNet ids)
    dsa_strategy: str = DSA_STRATEGY_DEFAULT
    description: str = ""
    stats_source: str = "REFERENCE.md (DC/DSA/DM code)"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    def class_names_or_default(self) -> list[str]:
        """Class names in dataset order; ``class_<i>`` where the names come from the data."""
        if self.class_names is not None:
            return list(self.class_names)
        return [f"class_{i}" for i in range(self.num_classes)]


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        DatasetInfo(
            "digits",
            10,
            (1, 8, 8),
            (0.3052,),
            (0.3760,),
            tuple(_DIGITS),
            DSA_STRATEGY_NO_FLIP,
            "scikit-learn's bundled 8x8 handwritten digits (1797 images); offline default",
            stats_source="computed on the fixed 75% stratified train split, pixels /16",
        ),
        DatasetInfo(
            "mnist",
            10,
            (1, 28, 28),
            (0.1307,),
            (0.3081,),
            tuple(_DIGITS),
            DSA_STRATEGY_NO_FLIP,
            "MNIST handwritten digits",
        ),
        DatasetInfo(
            "fashionmnist",
            10,
            (1, 28, 28),
            (0.2861,),
            (0.3530,),
            tuple(_FASHION),
            DSA_STRATEGY_DEFAULT,
            "Fashion-MNIST",
        ),
        DatasetInfo(
            "usps",
            10,
            (1, 16, 16),
            (0.2469,),
            (0.2989,),
            tuple(_DIGITS),
            DSA_STRATEGY_NO_FLIP,
            "USPS handwritten digits",
            stats_source="commonly used USPS train-set values (not in the DC papers)",
        ),
        DatasetInfo(
            "svhn",
            10,
            (3, 32, 32),
            (0.4377, 0.4438, 0.4728),
            (0.1980, 0.2010, 0.1970),
            tuple(_DIGITS),
            DSA_STRATEGY_NO_FLIP,
            "Street View House Numbers (cropped digits)",
        ),
        DatasetInfo(
            "cifar10",
            10,
            (3, 32, 32),
            (0.4914, 0.4822, 0.4465),
            (0.2023, 0.1994, 0.2010),
            tuple(_CIFAR10),
            DSA_STRATEGY_DEFAULT,
            "CIFAR-10",
        ),
        DatasetInfo(
            "cifar100",
            100,
            (3, 32, 32),
            (0.5071, 0.4866, 0.4409),
            (0.2673, 0.2564, 0.2762),
            tuple(_CIFAR100),
            DSA_STRATEGY_DEFAULT,
            "CIFAR-100",
        ),
        DatasetInfo(
            "tinyimagenet",
            200,
            (3, 64, 64),
            (0.485, 0.456, 0.406),
            (0.229, 0.224, 0.225),
            None,
            DSA_STRATEGY_DEFAULT,
            "Tiny ImageNet (200 WordNet classes, 64x64)",
        ),
    ]
}

assert len(_CIFAR100) == 100


def get_dataset_info(name: str) -> DatasetInfo:
    """Return the catalog entry for ``name`` (case-insensitive)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise UnknownNameError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[key]


def list_datasets() -> list[str]:
    """Names of every dataset in the catalog."""
    return sorted(DATASETS)
