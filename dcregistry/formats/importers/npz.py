"""``npz``: plain ``.npz`` sets (``images`` + ``labels``/``soft_labels``), incl. ``dcreg export``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ImportFormatError
from . import EMBEDDED_NPZ_KEY, IMPORTERS, TENSOR_NAME_RE, ZCA_TENSOR_NAMES, ImportedSet, ImportOptions
from .common import (
    DecodedSet,
    assemble,
    dataset_info,
    hard_labels,
    images_nchw,
    lr_tensor,
    parse_embedded,
    source_record,
)
from .npzfile import load_npz, require_array


def read_npz(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """Plain ``.npz``: ``images`` NCHW/NHWC, ``labels`` int [N] or ``soft_labels``/float [N, K];
    optional ``lr``; ``metadata_json`` from ``dcreg export`` restores the metadata."""
    info = dataset_info(options)
    arrays = load_npz(path)
    where = path.name
    embedded = parse_embedded(arrays.get(EMBEDDED_NPZ_KEY), f"{where}: {EMBEDDED_NPZ_KEY}", notes)
    images = require_array(arrays, "images", where, "npz")
    images = images_nchw(
        images, info, options.layout, where, notes, image_shape=(embedded or {}).get("image_shape")
    )
    if "labels" in arrays and "soft_labels" in arrays:
        raise ImportFormatError(f"{where}: has both 'labels' and 'soft_labels'; keep one")
    labels = soft = None
    mc: dict[str, Any] = {}
    if "soft_labels" in arrays:
        soft = arrays["soft_labels"]
    else:
        raw = require_array(arrays, "labels", where, "npz")
        if raw.ndim == 2 and raw.dtype.kind == "f":
            soft = raw
        else:
            labels = hard_labels(raw, where, notes)
    if soft is not None and not (embedded or {}).get("method_config", {}).get("soft_labels"):
        mc["soft_labels"] = "logits"
    extras: dict[str, np.ndarray] = {}
    known = {"images", "labels", "soft_labels", EMBEDDED_NPZ_KEY}
    for name in sorted(set(arrays) - known):
        # Decide from the name and the .npy header; only arrays that are kept get decompressed.
        if name == "lr":
            extras["lr"] = lr_tensor(arrays["lr"], where)
            mc["learned_lr"] = True
        elif (
            (name in ZCA_TENSOR_NAMES or embedded is not None)
            and TENSOR_NAME_RE.fullmatch(name)
            and arrays.dtype_kind(name) in "fiub"
        ):
            extras[name] = arrays[name]
        else:
            notes.append(f"{where}: ignored array {name!r}")
    return [
        assemble(
            DecodedSet(
                images=images,
                labels=labels,
                soft=soft,
                where=where,
                default_pixel_space="uint8" if images.dtype == np.uint8 else "unit",
                source=source_record(path, "npz", options),
                method_config=mc,
                extras=extras,
                embedded=embedded,
            ),
            info,
            options,
            notes,
        )
    ]


IMPORTERS.register("npz", read_npz)
