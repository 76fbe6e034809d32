"""SVHN (cropped digits) from torchvision's ``.mat`` layout, read with ``scipy.io.loadmat``.

Layout: ``<root>/train_32x32.mat`` and ``<root>/test_32x32.mat`` (``extra_32x32.mat`` is not
used). ``X`` is uint8 ``[32, 32, 3, N]`` (HWCN), ``y`` is ``[N, 1]`` with digit 0 stored as 10,
mapped back to 0. ``loadmat`` does not execute code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo
from dcregistry.formats.limits import ByteBudget, InputTooLargeError, check_expansion

from .base import LOADERS, DatasetFormatError, RawSplit, locate

_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


_ITEMSIZE = {
    "uint8": 1,
    "int8": 1,
    "uint16": 2,
    "int16": 2,
    "uint32": 4,
    "int32": 4,
    "single": 4,
    "uint64": 8,
    "int64": 8,
    "double": 8,
    "logical": 1,
    "char": 2,
}


def _check_declared_sizes(path: Path) -> None:
    """Read only the variable headers (``whosmat``) and refuse declared sizes that the file or the
    input cap cannot back, before ``loadmat`` allocates them (compressed variables inflate)."""
    import scipy.io

    try:
        variables = scipy.io.whosmat(path)
    except Exception as exc:  # scipy raises several types for a bad file
        raise DatasetFormatError(path, f"cannot be read as a MATLAB file: {exc}") from None
    budget = ByteBudget(str(path))
    size = path.stat().st_size
    try:
        for name, shape, cls in variables:
            if name not in ("X", "y"):
                continue  # never loaded
            count = 1
            for d in shape:
                count *= int(d)
            nbytes = count * _ITEMSIZE.get(cls, 8)
            check_expansion(str(path), f"variable {name!r} {list(shape)}", size, nbytes)
            budget.take(nbytes, f"variable {name!r} {list(shape)} {cls}")
    except InputTooLargeError as exc:
        raise DatasetFormatError(path, str(exc).split(": ", 1)[-1]) from None


def load_svhn(root: Path, split: str, info: DatasetInfo) -> RawSplit:
    path = root / _FILES[split]

    def parse() -> RawSplit:
        import scipy.io

        _check_declared_sizes(path)
        try:
            mat = scipy.io.loadmat(path, variable_names=["X", "y"])
        except Exception as exc:  # scipy raises several types for a bad file
            raise DatasetFormatError(path, f"cannot be read as a MATLAB file: {exc}") from None
        if "X" not in mat or "y" not in mat:
            raise DatasetFormatError(
                path, f"has no 'X'/'y' arrays (keys: {sorted(k for k in mat if not k.startswith('__'))})"
            )
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
