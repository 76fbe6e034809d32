"""The Hugging Face ``datasets`` alternative layout, available for every dataset.

``<root>/<name>/`` (``name`` as in the catalog, e.g. ``cifar10``) holding either

* ``DatasetDict.save_to_disk`` output (``dataset_dict.json`` + one directory per split), or a
  single ``Dataset.save_to_disk`` per split at ``<root>/<name>/<split>/``; or
* parquet files: ``**/<split>-*.parquet``, ``**/<split>.parquet`` or ``<split>/**/*.parquet``
  (e.g. a snapshot of a Hub dataset repo such as ``plain_text/train-00000-of-00001.parquet``).
  Where several directories hold files of one split (Hub repos with several configs), the
  dataset's standard config (SVHN: ``cropped_digits``) is chosen, else the layout is refused.

The test split is looked up as ``test``; for Tiny ImageNet as ``valid``/``validation``/``val``
first (the labelled validation set is its test split), then ``test``.

Columns: the image column is the first of ``img``, ``image`` (an ``Image`` feature, a
``{"bytes", "path"}`` struct, or a numeric array); the label column is the first of ``label``,
``labels``, ``fine_label`` (``fine_label`` first for CIFAR-100). When the label column is a
``ClassLabel`` whose names are a permutation of the catalog's class names (compared ignoring case
and punctuation), labels are mapped to the catalog's order; for Tiny ImageNet the class order is
the sorted names (wnids), as for the torchvision layout.

Loading goes through ``datasets.load_from_disk`` / ``datasets.load_dataset("parquet", ...)`` with
the library held offline; its parquet cache and the decoded arrays are kept under
``<root>/.harness-cache/``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dcregistry.catalog import DatasetInfo
from dcregistry.errors import JSONFormatError
from dcregistry.formats.limits import ByteBudget, InputTooLargeError, check_expansion
from dcregistry.jsonsafe import loads_bounded

from .raw import CACHE_DIRNAME, DatasetFormatError, RawSplit, cache_key, cached_split, file_fingerprint

IMAGE_COLUMNS = ("img", "image")
LABEL_COLUMNS = ("label", "labels", "fine_label")
_LABEL_COLUMNS_BY_DATASET = {"cifar100": ("fine_label", "label", "labels")}
_PREFERRED_CONFIG = {"svhn": "cropped_digits"}
_MAX_JSON_BYTES = 16 << 20


def split_aliases(info: DatasetInfo, split: str) -> tuple[str, ...]:
    """Split names to look for, in order."""
    if split == "test" and info.name == "tinyimagenet":
        return ("valid", "validation", "val", "test")
    return (split,)


def _parquet_files(hdir: Path) -> list[Path]:
    return sorted(p for p in hdir.rglob("*.parquet") if CACHE_DIRNAME not in p.relative_to(hdir).parts)


def is_hf_dataset_dir(hdir: Path) -> bool:
    """Whether ``hdir`` looks like a ``save_to_disk`` or parquet dataset directory."""
    if not hdir.is_dir():
        return False
    if (hdir / "dataset_dict.json").is_file():
        return True
    if any((d / "state.json").is_file() for d in hdir.iterdir() if d.is_dir()):
        return True
    return bool(_parquet_files(hdir))


def _matches_split(path: Path, hdir: Path, split: str) -> bool:
    rel = path.relative_to(hdir)
    name = rel.name.lower()
    if name == f"{split}.parquet" or name.startswith((f"{split}-", f"{split}_")):
        return True
    return split in (p.lower() for p in rel.parts[:-1])


def _parquet_split(hdir: Path, info: DatasetInfo, split_name: str) -> list[Path]:
    files = [p for p in _parquet_files(hdir) if _matches_split(p, hdir, split_name)]
    groups: dict[Path, list[Path]] = {}
    for p in files:
        # Group by the directory under hdir that is not the split directory itself.
        rel_parent = p.relative_to(hdir).parent
        key = Path(*[q for q in rel_parent.parts if q.lower() != split_name]) if rel_parent.parts else Path()
        groups.setdefault(key, []).append(p)
    if len(groups) > 1:
        pref = _PREFERRED_CONFIG.get(info.name)
        chosen = [k for k in groups if pref and pref in k.parts]
        if len(chosen) != 1:
            dirs = ", ".join(str(hdir / k) for k in sorted(groups))
            raise DatasetFormatError(
                hdir,
                f"holds {split_name} parquet files in several directories ({dirs})",
                "keep only one configuration of the dataset there",
            )
        return groups[chosen[0]]
    return files


def _read_json(path: Path) -> Any:
    """A JSON file of the layout, parsed with bounded size and nesting (a UserError if bad)."""
    try:
        return loads_bounded(path.read_bytes(), str(path), max_bytes=_MAX_JSON_BYTES)
    except JSONFormatError as exc:
        raise DatasetFormatError(path, exc.problem, exc.fix) from None


def _check_json_files(files: list[Path]) -> None:
    """``datasets`` parses these with the recursive stdlib parser: check them first."""
    for f in files:
        if f.suffix == ".json":
            if f.stat().st_size > _MAX_JSON_BYTES:
                raise DatasetFormatError(f, f"is larger than {_MAX_JSON_BYTES} bytes")
            _read_json(f)


def _check_parquet_files(files: list[Path]) -> None:
    """Read each parquet footer ourselves: a garbage file is one DatasetFormatError (not a
    pyarrow exception plus a logged line from ``datasets``), and the declared uncompressed size
    must fit the file (a plausible compression ratio) and the input cap."""
    import pyarrow
    import pyarrow.parquet as pq

    budget = ByteBudget("parquet files")
    for f in files:
        try:
            md = pq.read_metadata(f)
        except (pyarrow.ArrowException, OSError, ValueError) as exc:
            raise DatasetFormatError(f, f"is not a readable parquet file ({exc})") from None
        declared = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        try:
            check_expansion(str(f), "its data", f.stat().st_size, declared)
            budget.take(declared, f"{f.name}'s data")
        except InputTooLargeError as exc:
            raise DatasetFormatError(f, str(exc).split(": ", 1)[-1]) from None


def _find_source(hdir: Path, info: DatasetInfo, split: str) -> tuple[str, str, list[Path]]:
    """``(kind, split name, files)``: kind is ``dict`` / ``dataset`` / ``parquet``."""
    aliases = split_aliases(info, split)
    if (hdir / "dataset_dict.json").is_file():
        index = _read_json(hdir / "dataset_dict.json")
        names = index.get("splits") if isinstance(index, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DatasetFormatError(
                hdir / "dataset_dict.json", "is not a DatasetDict index (no list of 'splits')"
            )
        for a in aliases:
            if a in names:
                return "dict", a, sorted(p for p in (hdir / a).rglob("*") if p.is_file())
        raise DatasetFormatError(hdir, f"has splits {names}, none of {list(aliases)}")
    for a in aliases:
        if (hdir / a / "state.json").is_file():
            return "dataset", a, sorted(p for p in (hdir / a).rglob("*") if p.is_file())
    for a in aliases:
        files = _parquet_split(hdir, info, a)
        if files:
            return "parquet", a, files
    raise DatasetFormatError(
        hdir,
        f"has no {' / '.join(aliases)} split (expected save_to_disk output or {aliases[0]}-*.parquet files)",
    )


@contextlib.contextmanager
def _offline_quiet(datasets: Any) -> Iterator[None]:
    """Hold ``datasets`` offline and without progress bars for the duration."""
    cfg = datasets.config
    saved = {k: getattr(cfg, k) for k in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if hasattr(cfg, k)}
    bars = datasets.is_progress_bar_enabled()
    for k in saved:
        setattr(cfg, k, True)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(cfg, k, v)
        if bars:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def _parquet_cache_dir(cache_root: Path) -> Iterator[str]:
    d = cache_root / CACHE_DIRNAME / "hf-datasets"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            yield str(d)
            return
    except OSError:
        pass
    with tempfile.TemporaryDirectory(prefix="harness-hf-") as tmp:
        yield tmp


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _first(columns: list[str], wanted: tuple[str, ...], what: str, hdir: Path) -> str:
    for c in wanted:
        if c in columns:
            return c
    raise DatasetFormatError(
        hdir, f"has no {what} column (looked for {', '.join(wanted)}; columns: {columns})"
    )


def _decode_images(ds: Any, col: str, info: DatasetInfo, where: Path) -> np.ndarray:
    import datasets
    from PIL import Image

    c, h, w = info.image_shape
    feat = ds.features[col]
    is_struct = isinstance(feat, dict) and "bytes" in feat
    if isinstance(feat, datasets.Image) or is_struct:
        cells = ds.with_format("arrow")[col].to_pylist()  # the undecoded {"bytes", "path"} storage
        out = np.empty((len(cells), c, h, w), dtype=np.uint8)
        mode = "L" if c == 1 else "RGB"
        for i, cell in enumerate(cells):
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if not data:
                raise DatasetFormatError(where, f"row {i} of column {col!r} has no image bytes")
            try:
                with Image.open(io.BytesIO(data)) as im:
                    if im.size != (w, h):  # from the header: refuse before decoding (bombs)
                        raise DatasetFormatError(
                            where, f"row {i} is {im.size[0]}x{im.size[1]}, expected {w}x{h}"
                        )
                    arr = np.asarray(im.convert(mode))
            except DatasetFormatError:
                raise
            except Exception as exc:
                raise DatasetFormatError(
                    where, f"row {i} of column {col!r} is not a decodable image: {exc}"
                ) from None
            if arr.shape[:2] != (h, w):
                raise DatasetFormatError(where, f"row {i} is {arr.shape[1]}x{arr.shape[0]}, expected {w}x{h}")
            out[i] = arr[None] if c == 1 else arr.transpose(2, 0, 1)
        return out
    arr = ds.with_format("numpy")[col]
    arr = np.asarray(arr if isinstance(arr, np.ndarray) else list(arr))
    if arr.dtype == object:
        arr = np.stack(list(arr))
    if arr.ndim == 3 and c == 1:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[1:] == (h, w, c) and arr.shape[1:] != (c, h, w):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4 or arr.shape[1:] != (c, h, w):
        raise DatasetFormatError(
            where, f"column {col!r} has shape {list(arr.shape)}, expected images {c}x{h}x{w}"
        )
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.min() >= 0 and arr.max() <= 1:
        return np.ascontiguousarray(arr, dtype=np.float32)
    if np.issubdtype(arr.dtype, np.integer) and arr.size and arr.min() >= 0 and arr.max() <= 255:
        return arr.astype(np.uint8)
    raise DatasetFormatError(
        where, f"column {col!r} holds {arr.dtype} values that are neither uint8 nor in [0, 1]"
    )


def _class_mapping(feat: Any, info: DatasetInfo, where: Path) -> tuple[np.ndarray | None, list[str] | None]:
    """``(old label -> catalog label, class names)`` from a ``ClassLabel`` feature, if any."""
    names = list(getattr(feat, "names", None) or [])
    if not names:
        return None, None
    if len(names) != info.num_classes:
        raise DatasetFormatError(where, f"label column has {len(names)} classes, expected {info.num_classes}")
    if info.class_names is None:  # names from the data (Tiny ImageNet wnids): sorted order
        order = sorted(names)
        return np.array([order.index(n) for n in names], dtype=np.int64), order
    got, want = [_norm(n) for n in names], [_norm(n) for n in info.class_names]
    if got == want:
        return None, None
    if sorted(got) == sorted(want) and len(set(got)) == len(got):
        return np.array([want.index(g) for g in got], dtype=np.int64), None
    warnings.warn(
        f"{where}: class names {names[:3]}... do not match the catalog's {list(info.class_names[:3])}...; "
        "labels are taken to be in the catalog's class order",
        stacklevel=3,
    )
    return None, None


def _to_raw(ds: Any, info: DatasetInfo, hdir: Path, source: str) -> RawSplit:
    columns = list(ds.column_names)
    img_col = _first(columns, IMAGE_COLUMNS, "image", hdir)
    lbl_col = _first(columns, _LABEL_COLUMNS_BY_DATASET.get(info.name, LABEL_COLUMNS), "label", hdir)
    images = _decode_images(ds, img_col, info, hdir)
    labels = np.asarray(ds.with_format("arrow")[lbl_col].to_numpy(), dtype=np.int64).reshape(-1)
    remap, class_names = _class_mapping(ds.features[lbl_col], info, hdir)
    if remap is not None:
        if labels.size and (labels.min() < 0 or labels.max() >= len(remap)):
            raise DatasetFormatError(
                hdir, f"labels span [{labels.min()}, {labels.max()}] outside the ClassLabel range"
            )
        labels = remap[labels]
    return RawSplit(images, labels, class_names, source)


def load_hf_split(hdir: Path, info: DatasetInfo, split: str, cache_root: Path) -> RawSplit:
    """Load ``split`` of ``info`` from the Hugging Face layout in ``hdir`` (decoded arrays cached)."""
    kind, split_name, files = _find_source(hdir, info, split)
    key = cache_key(
        dataset=info.name, split=split, kind=kind, split_name=split_name, files=file_fingerprint(files, hdir)
    )

    def build() -> RawSplit:
        import datasets
        import pyarrow

        if kind == "parquet":
            _check_parquet_files(files)
        else:
            _check_json_files(files)
        with _offline_quiet(datasets):
            try:
                if kind == "dict":
                    ds = datasets.load_from_disk(str(hdir))[split_name]
                elif kind == "dataset":
                    ds = datasets.load_from_disk(str(hdir / split_name))
                else:
                    with _parquet_cache_dir(cache_root) as cache_dir:
                        ds = datasets.load_dataset(
                            "parquet",
                            data_files={split_name: [str(f) for f in files]},
                            split=split_name,
                            cache_dir=cache_dir,
                        )
                        return _to_raw(ds, info, hdir, f"hf-parquet:{hdir}")
            except (pyarrow.ArrowException, datasets.exceptions.DatasetGenerationError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise DatasetFormatError(
                    hdir,
                    f"holds {kind} files that cannot be read ({first})",
                    "re-create or re-download the dataset there",
                ) from None
            return _to_raw(ds, info, hdir, f"hf-{kind}:{hdir}/{split_name}")

    return cached_split(cache_root, f"hf-{info.name}-{split}", key, build)
