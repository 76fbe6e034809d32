"""scikit-learn's bundled 8x8 handwritten digits: the offline default dataset.

``sklearn.datasets.load_digits()`` ships with scikit-learn (no download, no data root). Pixels
are integers 0..16, divided by 16 into [0, 1]. The split is fixed:
``train_test_split(arange(1797), test_size=0.25, stratify=y, random_state=0)`` gives 1347 train
and 450 test images, the same on every machine; the catalog's digits mean/std were computed on
that train split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo

from .base import LOADERS, RawSplit

TEST_SIZE = 0.25
SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]  # [1797, 1, 8, 8]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels, random_state=SPLIT_SEED
    )
    return train_idx, test_idx, images, labels


def load_digits_split(root: Path, split: str, info: DatasetInfo) -> RawSplit:
    """Digits split ``split`` (``root`` is ignored: the data is bundled with scikit-learn)."""
    train_idx, test_idx, images, labels = _digits_split()
    idx = train_idx if split == "train" else test_idx
    return RawSplit(images[idx].copy(), labels[idx].copy(), None, "sklearn.datasets.load_digits")


LOADERS.register("digits", load_digits_split)
