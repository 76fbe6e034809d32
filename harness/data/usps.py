"""USPS handwritten digits from the LIBSVM files torchvision uses.

Layout: ``<root>/usps.bz2`` (train, 7291 images) and ``<root>/usps.t.bz2`` (test, 2007), bzip2
text in LIBSVM format: ``<label> <index>:<value> ...`` with labels 1..10 (-> 0..9) and 256
values in [-1, 1] (16x16, row-major). Pixels become ``(v + 1) / 2`` in float (torchvision
instead truncates to uint8 first, a difference under 1/255). Indices are honoured, so a sparse
line (omitted index = value 0) parses correctly.
"""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo
from dcregistry.formats.limits import ByteBudget, InputTooLargeError

from .base import LOADERS, DatasetFormatError, RawSplit, locate

_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
_SIDE = 16
_MAX_LINE = 64 * 1024


def read_libsvm_bz2(path: Path, num_features: int = _SIDE * _SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Parse a bzip2 LIBSVM file into ``(features float32 [N, D], labels int64 [N])``."""
    rows: list[np.ndarray] = []
    labels: list[int] = []
    # A bzip2 file of a few KB can expand to gigabytes of lines: bound the line length (a USPS
    # line is ~3 KB) and the number of rows by the input cap before allocating each row.
    budget = ByteBudget(str(path))
    try:
        with bz2.open(path, "rt", encoding="ascii") as f:
            lineno = 0
            while line := f.readline(_MAX_LINE + 1):
                lineno += 1
                if len(line) > _MAX_LINE:
                    raise DatasetFormatError(
                        path, f"line {lineno} is longer than {_MAX_LINE} characters; not a LIBSVM file"
                    )
                parts = line.split()
                if not parts:
                    continue
                try:
                    labels.append(int(float(parts[0])))
                    budget.take(4 * num_features, f"row {lineno}")
                    row = np.zeros(num_features, dtype=np.float32)
                    for tok in parts[1:]:
                        idx, _, val = tok.partition(":")
                        i = int(idx)
                        if not 1 <= i <= num_features:
                            raise ValueError(f"feature index {i} outside 1..{num_features}")
                        row[i - 1] = float(val)
                except ValueError as exc:
                    raise DatasetFormatError(path, f"line {lineno} is not LIBSVM ({exc})") from None
                rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(path, f"cannot be read as bzip2 text: {exc}") from None
    except InputTooLargeError as exc:
        raise DatasetFormatError(path, str(exc).split(": ", 1)[-1]) from None
    if not rows:
        raise DatasetFormatError(path, "holds no samples")
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def load_usps(root: Path, split: str, info: DatasetInfo) -> RawSplit:
    path = root / _FILES[split]

    def parse() -> RawSplit:
        feats, labels = read_libsvm_bz2(path)
        if labels.min() < 1 or labels.max() > 10:
            raise DatasetFormatError(path, f"labels span [{labels.min()}, {labels.max()}], expected 1..10")
        images = np.clip((feats + 1.0) / 2.0, 0.0, 1.0).reshape(-1, 1, _SIDE, _SIDE)
        return RawSplit(images.astype(np.float32), labels - 1, None, f"libsvm:{path}")

    return locate(root, info, split, [path], parse, "usps.bz2 and usps.t.bz2 (LIBSVM, bzip2)")


LOADERS.register("usps", load_usps)
