"""Tiny ImageNet (200 classes, 64x64) from the original ``tiny-imagenet-200`` directory.

Layout: ``<root>/tiny-imagenet-200/`` with ``wnids.txt``, ``train/<wnid>/images/*.JPEG`` and
``val/images/*.JPEG`` + ``val/val_annotations.txt`` (tab-separated: file name, wnid, box). The
labelled ``val`` set is the test split (the official ``test`` images have no labels). Class
order = the wnids sorted (what ``ImageFolder`` on ``train/`` gives); class names = the wnids.
Grayscale JPEGs are converted to RGB.

Decoding 110k JPEGs is slow, so the decoded uint8 arrays are cached in
``<root>/.harness-cache/`` keyed by the file list (relative paths, sizes, mtimes): changing any
file rebuilds the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcregistry.catalog import DatasetInfo

from .base import LOADERS, DatasetFormatError, RawSplit, locate
from .raw import cache_key, cached_split, file_fingerprint

FOLDER = "tiny-imagenet-200"
_EXTS = (".jpeg", ".jpg", ".png")
_LAYOUT = f"{FOLDER}/ (wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt)"


def read_wnids(base: Path) -> list[str]:
    """The sorted WordNet ids of ``wnids.txt`` (the class order)."""
    path = base / "wnids.txt"
    wnids = [w.strip() for w in path.read_text().splitlines() if w.strip()]
    if len(set(wnids)) != len(wnids):
        raise DatasetFormatError(path, "lists a wnid twice")
    return sorted(wnids)


def _list_split(base: Path, split: str, wnids: list[str]) -> tuple[list[Path], list[int]]:
    index = {w: i for i, w in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for w in wnids:
            d = base / "train" / w / "images"
            if not d.is_dir():
                raise DatasetFormatError(d, "is missing (every wnid in wnids.txt needs train/<wnid>/images/)")
            names = sorted(p for p in d.iterdir() if p.suffix.lower() in _EXTS)
            files += names
            labels += [index[w]] * len(names)
    else:
        ann = base / "val" / "val_annotations.txt"
        for lineno, line in enumerate(ann.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise DatasetFormatError(ann, f"line {lineno} has no known wnid in its second column")
            name = parts[0].strip()
            if "/" in name or "\\" in name or name.startswith("."):
                raise DatasetFormatError(ann, f"line {lineno} names {name!r}, not a plain file name")
            files.append(base / "val" / "images" / name)
            labels.append(index[parts[1]])
        order = np.argsort([f.name for f in files], kind="stable")
        files = [files[i] for i in order]
        labels = [labels[i] for i in order]
        for f in files:
            if not f.is_file():
                raise DatasetFormatError(f, "is listed in val_annotations.txt but missing")
    if not files:
        raise DatasetFormatError(base / split, "holds no images")
    return files, labels


def _decode(files: list[Path], shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image

    c, h, w = shape
    out = np.empty((len(files), c, h, w), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                if im.size != (w, h):  # from the header: refuse before decoding (bombs)
                    raise DatasetFormatError(f, f"is {im.size[0]}x{im.size[1]}, expected {w}x{h}")
                arr = np.asarray(im.convert("RGB"))
        except DatasetFormatError:
            raise
        except Exception as exc:  # PIL raises many types on a bad image
            raise DatasetFormatError(f, f"cannot be decoded as an image: {exc}") from None
        if arr.shape != (h, w, c):
            raise DatasetFormatError(f, f"is {arr.shape[1]}x{arr.shape[0]}, expected {w}x{h}")
        out[i] = arr.transpose(2, 0, 1)
    return out


def load_tinyimagenet(root: Path, split: str, info: DatasetInfo) -> RawSplit:
    base = root / FOLDER
    needed = [base / "wnids.txt"] + (
        [base / "train"]
        if split == "train"
        else [base / "val" / "images", base / "val" / "val_annotations.txt"]
    )

    def parse() -> RawSplit:
        wnids = read_wnids(base)
        if len(wnids) != info.num_classes:
            raise DatasetFormatError(
                base / "wnids.txt", f"lists {len(wnids)} wnids, expected {info.num_classes}"
            )
        files, labels = _list_split(base, split, wnids)
        key = cache_key(
            dataset=info.name, split=split, wnids=wnids, labels=labels, files=file_fingerprint(files, base)
        )

        def build() -> RawSplit:
            return RawSplit(
                _decode(files, info.image_shape),
                np.asarray(labels, dtype=np.int64),
                wnids,
                f"tiny-imagenet:{base}",
            )

        return cached_split(root, f"{info.name}-{split}", key, build)

    return locate(root, info, split, needed, parse, _LAYOUT)


LOADERS.register("tinyimagenet", load_tinyimagenet)
