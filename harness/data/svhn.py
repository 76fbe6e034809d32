"""SVHN (cropped digits) from torchvision's ``.mat`` layout, read with ``scipy.io.loadmat``.

Layout: ``<root>/train_32x32.mat`` and ``<root>/test_32x32.mat`` (``extra_32x32.mat`` is not
used). ``X`` is uint8 ``[32, 32, 3, N]`` (HWCN), ``y`` is ``[N, 1]`` with digit 0 stored as 10,
mapped back to 0. ``loadmat`` does not execute code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo

from .base import LOADERS, DatasetFormatError, RawSplit, locate

_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def load_svhn(root: Path, split: str, info: DatasetInfo) -> RawSplit:
    path = root / _FILES[split]

    def parse() -> RawSplit:
        import scipy.io

        try:
            mat = scipy.io.loadmat(path)
        except Exception as exc:  # scipy raises several types for a bad file
            raise DatasetFormatError(path, f"cannot be read as a MATLAB file: {exc}") from None
        if "X" not in mat or "y" not in mat:
            raise DatasetFormatError(path, f"has no 'X'/'y' arrays (keys: {sorted(k for k in mat if not k.startswith('__'))})")
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
            raise DatasetFormatError(path, f"X has shape {list(x.shape)}, expected [32, 32, 3, N]")
        if y.shape[0] != x.shape[3]:
            raise DatasetFormatError(path, f"y has {y.shape[0]} labels for {x.shape[3]} images")
        if x.dtype != np.uint8:
            raise DatasetFormatError(path, f"X has dtype {x.dtype}, expected uint8")
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() > 10:
            raise DatasetFormatError(path, f"labels span [{y.min()}, {y.max()}], expected 1..10")
        images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))  # HWCN -> NCHW
        return RawSplit(images, np.where(y == 10, 0, y), None, f"mat:{path}")

    return locate(root, info, split, [path], parse, "train_32x32.mat and test_32x32.mat")


LOADERS.register("svhn", load_svhn)
