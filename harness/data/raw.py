"""What a layout parser returns (:class:`RawSplit`), its error, and the decoded-array cache.

Shared by the torchvision-layout parsers (through :mod:`.base`) and the Hugging Face parser
(:mod:`.hf`), which :mod:`.base` dispatches to: kept apart so neither imports the other's module.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcregistry.errors import StorageError, ValidationError
from dcregistry.fsio import staged_file

CACHE_DIRNAME = ".harness-cache"
_CACHE_FORMAT = 1


class DatasetFormatError(ValidationError):
    """A dataset file on disk exists but is malformed (bad magic number, wrong size, bad keys)."""

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str | None = None):
        super().__init__(str(path), problem, fix)


@dataclass
class RawSplit:
    """What a layout parser returns: NCHW ``images`` (uint8, or float32 already in [0, 1])."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None = None
    source: str = ""


# ---------------------------------------------------------------------------------------------
# Decoded-array cache under <root>/.harness-cache/ (JPEG/PNG decoding is the slow part).


def file_fingerprint(paths: Iterable[Path], base: Path) -> list[list[str | int]]:
    """``[relative path, size, mtime_ns]`` per file: the cache key material."""
    out: list[list[str | int]] = []
    for p in paths:
        st = p.stat()
        out.append([p.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def cache_key(**parts) -> str:
    blob = json.dumps({"format": _CACHE_FORMAT, **parts}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_split(root: Path, stem: str, key: str, build: Callable[[], RawSplit]) -> RawSplit:
    """Return the split cached as ``<root>/.harness-cache/<stem>-<key>.npz``, building it if absent.

    The cache holds only plain arrays (loaded with ``allow_pickle=False``). A data root that is not
    writable just means no cache. Older caches of the same stem are removed when a new one is written.
    """
    cache_dir = root / CACHE_DIRNAME
    path = cache_dir / f"{stem}-{key}.npz"
    if path.is_file():
        try:
            from dcregistry.formats.importers.npzfile import NpzArchive

            z = NpzArchive(path)  # sizes checked before allocating: the cache is a file too
            try:
                names = [str(s) for s in z["class_names"]] if "class_names" in z else None
                return RawSplit(z["images"], z["labels"], names, str(z["source"]))
            finally:
                z.close()
        except Exception as exc:  # a corrupt cache is rebuilt, never trusted
            warnings.warn(f"ignoring unreadable dataset cache {path}: {exc}", stacklevel=2)
    raw = build()
    try:
        with staged_file(path, overwrite=True) as tmp:
            arrays = {"images": raw.images, "labels": raw.labels, "source": np.array(raw.source)}
            if raw.class_names is not None:
                arrays["class_names"] = np.array(raw.class_names, dtype=str)
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle: bool
        for old in cache_dir.glob(f"{stem}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, StorageError) as exc:  # an unwritable data root just means no cache
        warnings.warn(f"could not write dataset cache under {cache_dir}: {exc}", stacklevel=2)
    return raw
