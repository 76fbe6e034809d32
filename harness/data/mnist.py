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
from dcregistry.formats.limits import ByteBudget, InputTooLargeError, check_expansion

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
    """Read an unsigned-byte idx file with ``ndim`` dimensions (gzip if the name ends in .gz).

    The header is read first; its dimensions (multiplied exactly, so 2^31 x 2^31 cannot wrap)
    must match the file's length (plain) or stay within the input cap and a plausible
    compression ratio (gzip) before any buffer for the data is allocated."""
    gz = path.suffix == ".gz"
    try:
        file_size = path.stat().st_size
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            head = f.read(4)
            expected_magic = (_UBYTE << 8) | ndim
            if len(head) < 4:
                raise DatasetFormatError(path, f"is {len(head)} bytes, too short for an idx header")
            magic = struct.unpack(">I", head)[0]
            if magic != expected_magic:
                raise DatasetFormatError(
                    path,
                    f"bad idx magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                    f"(unsigned bytes, {ndim} dimensions)",
                    "re-download the original file",
                )
            header = 4 + 4 * ndim
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DatasetFormatError(path, f"is too short for its {header}-byte idx header")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            count = 1
            for d in dims:  # exact integers: a wrapped product could match the file length
                count *= d
            if not gz and header + count != file_size:
                raise DatasetFormatError(
                    path,
                    f"is {file_size} bytes but its idx header {list(dims)} says {header + count}",
                    "the file is truncated or corrupt; re-download it",
                )
            if gz:
                check_expansion(str(path), f"idx data {list(dims)}", file_size, count)
            ByteBudget(str(path)).take(count, f"the idx header {list(dims)}")
            data = f.read(count)
            if len(data) != count or (gz and f.read(1)):
                raise DatasetFormatError(
                    path,
                    f"holds {'fewer' if len(data) != count else 'more'} bytes than its idx "
                    f"header {list(dims)} says ({count})",
                    "the file is truncated or corrupt; re-download it",
                )
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetFormatError(path, f"cannot be read as {'gzip' if gz else 'idx'}: {exc}") from None
    except InputTooLargeError as exc:
        raise DatasetFormatError(
            path, str(exc).split(": ", 1)[-1], "the file is corrupt or not an idx file; re-download it"
        ) from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


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
                raise DatasetFormatError(
                    img_path, f"holds {h}x{w} images, expected {info.image_shape[1]}x{info.image_shape[2]}"
                )
            if labels.shape[0] != images.shape[0]:
                raise DatasetFormatError(
                    lbl_path, f"has {labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}"
                )
            return RawSplit(images[:, None, :, :], labels.astype(np.int64), None, f"idx:{raw_dir}")

        return locate(root, info, split, [img_path, lbl_path], parse, layout)

    return load


_LAYOUT = (
    "{d}/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte; .gz also accepted)"
)

LOADERS.register("mnist", _mnist_like("MNIST", _LAYOUT.format(d="MNIST")))
LOADERS.register("fashionmnist", _mnist_like("FashionMNIST", _LAYOUT.format(d="FashionMNIST")))
