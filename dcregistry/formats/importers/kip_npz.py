"""``kip-npz``: KIP ``.npz`` sets (NHWC float images, one-hot, centered or learned labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import IMPORTERS, ImportedSet, ImportOptions
from .common import DecodedSet, assemble, dataset_info, hard_labels, images_nchw, lr_tensor, source_record
from .npzfile import load_npz, require_array


def _one_hot_rows(y: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """If every row of ``y`` is one-hot (one max, all others equal, the same on/off values in
    every row, e.g. KIP's centered -0.1/0.9), return (argmax, on, off); else None."""
    if y.ndim != 2 or y.shape[1] < 2 or y.shape[0] == 0 or not np.isfinite(y).all():
        return None
    arg = y.argmax(axis=1)
    rows = np.arange(y.shape[0])
    on = y[rows, arg]
    if not (on == on[0]).all():
        return None
    mask = np.ones_like(y, dtype=bool)
    mask[rows, arg] = False
    off = y[mask]
    if not (off == off[0]).all() or off[0] >= on[0]:
        return None
    return arg.astype(np.int64), float(on[0]), float(off[0])


def read_kip_npz(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """KIP ``.npz``: ``images`` NHWC float, ``labels`` one-hot (maybe centered) or learned."""
    info = dataset_info(options)
    arrays = load_npz(path)
    where = path.name
    images = require_array(arrays, "images", where, "kip-npz")
    raw = require_array(arrays, "labels", where, "kip-npz")
    images = images_nchw(images, info, options.layout, where, notes)
    mc: dict[str, Any] = {}
    labels = soft = None
    if raw.ndim == 2 and raw.dtype.kind == "f":
        hot = _one_hot_rows(raw)
        if hot is not None:
            labels, on, off = hot
            mc["label_encoding"] = {"on": on, "off": off}
            if (on, off) != (1.0, 0.0):
                notes.append(
                    f"{where}: one-hot labels with centering on={on:g} off={off:g} "
                    "-> hard labels (the encoding is kept in method_config)"
                )
        else:
            soft = raw
            mc["soft_labels"] = "kip-regression-targets"
            notes.append(f"{where}: labels are learned (not one-hot) -> soft labels")
    else:
        labels = hard_labels(raw, where, notes)
    extras = {}
    if "lr" in arrays:
        extras["lr"] = lr_tensor(arrays["lr"], where)
    ignored = sorted(set(arrays) - {"images", "labels", "lr"})
    if ignored:
        notes.append(f"{where}: ignored arrays {', '.join(ignored)}")
    return [
        assemble(
            DecodedSet(
                images=images,
                labels=labels,
                soft=soft,
                where=where,
                default_pixel_space="zca-kip",
                source=source_record(path, "kip-npz", options),
                method="kip",
                method_config=mc,
                extras=extras,
            ),
            info,
            options,
            notes,
        )
    ]


IMPORTERS.register("kip-npz", read_kip_npz)
