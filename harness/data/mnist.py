"""MNIST and Fashion-MNIST from torchvision's raw idx layout, parsed with numpy.

Layout: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (Fashion-MNIST:
``<root>/FashionMNIST/raw/``, same file names), each optionally gzipped (``.gz``; the plain file
wins when both exist). An idx file is: two zero bytes, a type byte (0x08 = unsigned byte), a
byte giving the number of dimensions, one big-endian uint32 per dimension, then the data.
Magic numbers, sizes and the image/label counts are checked; a malformed file gets a one-line
:class:`~harness.data.base.DatasetFormatError` naming it.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo

from .base import LOADERS, DatasetFormatError, RawSplit, locate

_PREFIX = {"train": "train", "test": "t10k"}
_UBYTE = 0x08


def _candidates(raw_dir: Path, name: str) -> list[Path]:
    return [raw_dir / name, raw_dir / f"{name}.gz"]


def _find(raw_dir: Path, name: str) -> Path:
    for p in _candidates(raw_dir, name):
        if p.is_file():
            return p
    return raw_dir / name  # reported as missing


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte idx file with ``ndim`` dimensions (gzip if the name ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetFormatError(path, f"cannot be read as {'gzip' if path.suffix == '.gz' else 'idx'}: {exc}") from None
    expected_magic = (_UBYTE << 8) | ndim
    if len(raw) < 4:
        raise DatasetFormatError(path, f"is {len(raw)} bytes, too short for an idx header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        raise DatasetFormatError(
            path, f"bad idx magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimensions)", "re-download the original file",
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(path, f"is {len(raw)} bytes, too short for its {header}-byte idx header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DatasetFormatError(
            path, f"is {len(raw)} bytes but its idx header {list(dims)} says {expected}",
            "the file is truncated or corrupt; re-download it",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _mnist_like(folder: str, layout: str):
    def load(root: Path, split: str, info: DatasetInfo) -> RawSplit:
        raw_dir = root / folder / "raw"
        prefix = _PREFIX[split]
        img_path = _find(raw_dir, f"{prefix}-images-idx3-ubyte")
        lbl_path = _find(raw_dir, f"{prefix}-labels-idx1-ubyte")

        def parse() -> RawSplit:
            images = read_idx(img_path, 3)
            labels = read_idx(lbl_path, 1)
            _, h, w = images.shape
            if (1, h, w) != tuple(info.image_shape):
                raise DatasetFormatError(img_path, f"holds {h}x{w} images, expected "
                                         f"{info.image_shape[1]}x{info.image_shape[2]}")
            if labels.shape[0] != images.shape[0]:
                raise DatasetFormatError(lbl_path, f"has {labels.shape[0]} labels for "
                                         f"{images.shape[0]} images in {img_path.name}")
            return RawSplit(images[:, None, :, :], labels.astype(np.int64), None, f"idx:{raw_dir}")

        return locate(root, info, split, [img_path, lbl_path], parse, layout)

    return load


_LAYOUT = ("{d}/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
           "t10k-labels-idx1-ubyte; .gz also accepted)")

LOADERS.register("mnist", _mnist_like("MNIST", _LAYOUT.format(d="MNIST")))
LOADERS.register("fashionmnist", _mnist_like("FashionMNIST", _LAYOUT.format(d="FashionMNIST")))
