"""``mtt``: MTT / DATM ``images_best.pt`` + ``labels_best.pt`` + ``lr_best.pt``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ...canonical import sha256_file
from ...errors import ImportFormatError
from ..limits import ByteBudget
from . import IMPORTERS, ImportedSet, ImportOptions
from .common import (
    DecodedSet,
    assemble,
    dataset_info,
    hard_labels,
    images_nchw,
    lr_tensor,
    source_record,
    to_numpy,
)

_MTT_NAME_RE = re.compile(r"images_(?P<tag>.+)\.pt")


def read_mtt(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """A directory with ``images_best.pt`` (+ ``labels_best.pt``, ``lr_best.pt``) or the images
    file itself; siblings with the same tag (``images_5000.pt`` -> ``labels_5000.pt``) are used."""
    from ..safe_torch import safe_torch_load

    info = dataset_info(options)
    if path.is_dir():
        images_file = path / "images_best.pt"
        if not images_file.is_file():
            found = sorted(p.name for p in path.glob("images_*.pt"))
            raise ImportFormatError(
                f"{path}: no images_best.pt in this directory"
                + (
                    f" (found {', '.join(found[:5])}; pass the one you want as FILE)"
                    if found
                    else "; MTT saves images_best.pt, labels_best.pt and lr_best.pt"
                )
            )
    else:
        images_file = path
    tag_match = _MTT_NAME_RE.fullmatch(images_file.name)
    folder = images_file.parent
    labels_file = folder / f"labels_{tag_match['tag']}.pt" if tag_match else None
    lr_file = folder / f"lr_{tag_match['tag']}.pt" if tag_match else None
    where = images_file.name
    budget = ByteBudget(where)  # what the three files may materialise together

    images = to_numpy(safe_torch_load(images_file), where, notes, budget)
    images = images_nchw(images, info, options.layout, where, notes)
    n, k = images.shape[0], info.num_classes
    files = {images_file.name: sha256_file(images_file)[0]}
    mc: dict[str, Any] = {}
    labels = soft = None
    if labels_file is not None and labels_file.is_file():
        files[labels_file.name] = sha256_file(labels_file)[0]
        raw = to_numpy(safe_torch_load(labels_file), labels_file.name, notes, budget)
        if raw.ndim == 2 and raw.dtype.kind == "f":
            soft = raw
            mc["soft_labels"] = "logits"
            notes.append(f"{labels_file.name}: float [N, K] labels imported as soft labels (DATM logits)")
        else:
            labels = hard_labels(raw, labels_file.name, notes)
        mc["labels"] = labels_file.name
    else:
        if n % k:
            raise ImportFormatError(
                f"{where}: no labels file and {n} images are not a multiple of {k} classes"
            )
        labels = np.repeat(np.arange(k, dtype=np.int64), n // k)
        mc["labels"] = "class-major (MTT layout: arange(K).repeat_interleave(ipc)); no labels file"
        notes.append(f"{where}: no labels file; assumed MTT's class-major order ({n // k} images per class)")
    extras: dict[str, np.ndarray] = {}
    if lr_file is not None and lr_file.is_file():
        files[lr_file.name] = sha256_file(lr_file)[0]
        extras["lr"] = lr_tensor(
            to_numpy(safe_torch_load(lr_file), lr_file.name, notes, budget), lr_file.name
        )
        mc["learned_lr"] = True
    else:
        mc["learned_lr"] = False
        notes.append(f"{where}: no lr file; the set carries no learned learning rate")
    if (options.pixel_space or "normalized") == "normalized":
        notes.append(
            "MTT sets distilled with MTT's --zca are ZCA-whitened: import them with "
            "the zca-kornia pixel space"
        )
    return [
        assemble(
            DecodedSet(
                images=images,
                labels=labels,
                soft=soft,
                where=where,
                default_pixel_space="normalized",
                source=source_record(images_file, "mtt", options, files=files),
                method="datm" if soft is not None else "mtt",
                method_config=mc,
                extras=extras,
            ),
            info,
            options,
            notes,
        )
    ]


IMPORTERS.register("mtt", read_mtt)
