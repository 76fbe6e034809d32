"""Common machinery of the dataset loaders: ``ImageSet``, the ``LOADERS`` registry, ``load_dataset``.

(What a parser returns, :class:`RawSplit`, and the decoded-array cache live in :mod:`.raw`; they
are re-exported here.)

A loader (one per dataset name, registered in its layout-family module) parses the files on disk
and returns a :class:`RawSplit` (uint8 or unit-float numpy arrays, NCHW). ``load_dataset`` turns
that into an :class:`ImageSet`: float32 images in unit space [0, 1], int64 labels, checked against
the catalog (shape, label range), optionally resized.

Data root: ``data_root`` argument, else ``$HARNESS_DATA``, else ``~/.cache/harness/data``.
Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dcregistry.catalog import DatasetInfo, get_dataset_info
from dcregistry.errors import DatasetNotFoundError, UnknownNameError, UserError
from harness.registry import Registry

from . import hf
from .raw import DatasetFormatError as DatasetFormatError  # re-exported
from .raw import RawSplit as RawSplit  # re-exported

SPLITS = ("train", "test")
DATA_ROOT_ENV = "HARNESS_DATA"


@dataclass
class ImageSet:
    """One split of a real dataset, in unit space.

    ``images``: float32 ``[N, C, H, W]`` in [0, 1] (``H, W`` are the catalog's shape unless
    ``load_dataset(image_size=...)`` resized them; ``info.image_shape`` stays the on-disk shape).
    ``labels``: int64 ``[N]`` in ``[0, info.num_classes)``. ``class_names``: in label order.
    ``source``: where the data was read from (layout and path), for records.
    """

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo
    class_names: list[str]
    split: str
    source: str = field(default="")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of ``images`` (after any resize)."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))


Loader = Callable[[Path, str, DatasetInfo], RawSplit]

#: dataset name -> loader ``(root: Path, split: str, info: DatasetInfo) -> RawSplit``.
LOADERS: Registry[Loader] = Registry("dataset")


def default_data_root() -> Path:
    """``$HARNESS_DATA`` if set, else ``~/.cache/harness/data``."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/harness/data").expanduser()


def resolve_data_root(data_root: str | os.PathLike[str] | None) -> Path:
    return Path(data_root).expanduser() if data_root is not None else default_data_root()


def load_dataset(
    name: str,
    split: str,
    data_root: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
) -> ImageSet:
    """Load split ``"train"`` or ``"test"`` of catalog dataset ``name`` from local disk.

    ``data_root`` defaults to ``$HARNESS_DATA``, else ``~/.cache/harness/data`` (``digits`` needs
    none: it is bundled with scikit-learn). Each dataset is read from torchvision's on-disk layout
    under the root, or else from a Hugging Face ``datasets`` directory ``<root>/<name>``
    (``save_to_disk`` output or parquet files). A missing dataset raises
    :class:`~dcregistry.errors.DatasetNotFoundError` whose message says which files to put where.

    ``image_size`` resizes to ``image_size x image_size`` (bilinear, antialiased, on the unit
    images, clamped to [0, 1]), e.g. digits 8 -> 32.
    """
    info = get_dataset_info(name)
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r} for {info.name}; use 'train' or 'test'")
    loader = LOADERS.get(info.name)
    root = resolve_data_root(data_root)
    raw = loader(root, split, info)
    images, labels = _check_raw(raw, info, split)
    if image_size is not None:
        images = resize_images(images, image_size)
    class_names = list(raw.class_names) if raw.class_names is not None else info.class_names_or_default()
    if len(class_names) != info.num_classes:
        raise DatasetFormatError(
            raw.source or info.name,
            f"has {len(class_names)} class names, the catalog says {info.num_classes} classes",
        )
    return ImageSet(images, labels, info, class_names, split, raw.source)


def _check_raw(raw: RawSplit, info: DatasetInfo, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    where = raw.source or f"{info.name}/{split}"
    imgs, labels = raw.images, np.asarray(raw.labels)
    if imgs.ndim != 4 or tuple(imgs.shape[1:]) != tuple(info.image_shape):
        raise DatasetFormatError(
            where,
            f"images have shape {list(imgs.shape)}, expected [N, {', '.join(map(str, info.image_shape))}]",
        )
    if labels.ndim != 1 or labels.shape[0] != imgs.shape[0]:
        raise DatasetFormatError(where, f"{labels.shape} labels for {imgs.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= info.num_classes):
        raise DatasetFormatError(
            where, f"labels span [{labels.min()}, {labels.max()}], expected [0, {info.num_classes - 1}]"
        )
    if imgs.dtype == np.uint8:
        images = torch.from_numpy(imgs.astype(np.float32)).div_(255.0)  # astype copies: writable
    else:
        arr = np.ascontiguousarray(imgs, dtype=np.float32)
        images = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if images.numel() and not (torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
            raise DatasetFormatError(where, "float pixels outside [0, 1]")
    return images, torch.from_numpy(labels.astype(np.int64))


#: The largest image side the harness resizes to (Tiny ImageNet is 64, ImageNet crops 224).
MAX_IMAGE_SIZE = 1024


def resize_images(images: torch.Tensor, image_size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear, antialiased resize of unit ``[N, C, H, W]`` images to ``image_size`` square."""
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if image_size > MAX_IMAGE_SIZE:  # checked before the output is allocated
        raise UserError(f"image size {image_size} is larger than the harness supports ({MAX_IMAGE_SIZE})")
    n, c, h, w = images.shape
    if (h, w) == (image_size, image_size):
        return images
    out = torch.empty((n, c, image_size, image_size), dtype=images.dtype)
    for i in range(0, n, chunk):
        part = F.interpolate(
            images[i : i + chunk],
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out[i : i + chunk] = part.clamp_(0.0, 1.0)
    return out


# ---------------------------------------------------------------------------------------------
# Locating a dataset: torchvision layout first, then the Hugging Face alternative, else a message.


def hf_dir(root: Path, info: DatasetInfo) -> Path:
    """Where the Hugging Face ``datasets`` alternative of ``info`` lives: ``<root>/<name>``."""
    return root / info.name


def not_found(
    info: DatasetInfo, root: Path, layout: str, missing: Sequence[Path] = ()
) -> DatasetNotFoundError:
    """The one-line error for a missing dataset: both layouts and, if partial, what is missing."""
    head = f"{info.name} not found under {root}"
    if missing:
        shown = ", ".join(str(m) for m in missing[:3]) + (
            f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        )
        head += f" (missing {shown})"
    return DatasetNotFoundError(
        f"{head}: put {layout} there, or a Hugging Face datasets directory at {hf_dir(root, info)} "
        f"(DatasetDict.save_to_disk output, or train-*/test-*.parquet files); "
        f"or point --data-root / ${DATA_ROOT_ENV} at the right directory"
    )


def locate(
    root: Path,
    info: DatasetInfo,
    split: str,
    needed: Iterable[Path],
    parse: Callable[[], RawSplit],
    layout: str,
) -> RawSplit:
    """Parse the torchvision layout if every ``needed`` path exists, else the HF alternative."""
    needed = list(needed)
    missing = [p for p in needed if not p.exists()]
    if not missing:
        return parse()
    hdir = hf_dir(root, info)
    if hf.is_hf_dataset_dir(hdir):
        return hf.load_hf_split(hdir, info, split, cache_root=root)
    # Name what is missing only when part of the torchvision layout is there.
    partial = len(missing) < len(needed) or any(p.parent.exists() and p.parent != root for p in missing)
    raise not_found(info, root, layout, missing if partial else ())
