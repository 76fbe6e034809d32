"""Exporters: a dcreg/1 artifact -> ``pt`` (the DC list format), ``npz``, ``png`` (labelled
grid) or ``hf-datasets`` (a ``datasets.Dataset`` saved to disk).

``pt`` and ``npz`` keep the stored tensors exactly and embed the dcreg metadata (``dcreg_metadata``
/ ``metadata_json``, a JSON string ``{"format", "digest", "metadata"}``) so that
``dcreg import --format dc-pt`` / ``--format npz`` gives back the same tensors and metadata.
Every output is written to a temporary path next to ``OUT`` and renamed into place.
Torch (``pt``), PIL (``png``) and ``datasets`` (``hf-datasets``) are imported on use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifact import FORMAT, Artifact
from ..errors import UserError
from .grid import artifact_unit_images, display_labels, save_grid_png, to_uint8_hwc

EXPORT_FORMATS = ("pt", "npz", "png", "hf-datasets")
HF_METADATA_FILE = "dcreg_metadata.json"
_LABEL_KEYS = ("images", "labels", "soft_labels")


@dataclass
class ExportResult:
    """Where an export went and what the user should know about it."""

    path: Path
    format: str
    notes: list[str] = field(default_factory=list)


def embedded_metadata(art: Artifact) -> dict:
    """The metadata block embedded in exports: format, version digest, metadata."""
    return {"format": FORMAT, "digest": art.digest, "metadata": art.metadata}


def _embedded_json(art: Artifact) -> str:
    return json.dumps(embedded_metadata(art), sort_keys=True, ensure_ascii=False)


def write_pt(art: Artifact, out: Path) -> list[str]:
    """``{'data': [[images, labels]], 'accs_all_exps': {}}`` via ``torch.save`` (+ ``lr``,
    ``dcreg_tensors`` for other tensors, ``dcreg_metadata``). Images keep their stored dtype."""
    from .safe_torch import import_torch

    torch = import_torch("writing .pt files")

    notes = []
    names = art.tensor_names
    obj: dict[str, Any] = {"data": [[art.torch("images"), art.torch(art.label_key)]],
                           "accs_all_exps": {}}
    if art.label_key == "soft_labels":
        notes.append("soft labels saved as the [N, K] float labels of data[0] (DC code expects "
                     "int labels; dcreg import --format dc-pt reads them back as soft labels)")
    if "lr" in names:
        obj["lr"] = art.torch("lr")
    extras = {n: art.torch(n) for n in names if n not in _LABEL_KEYS and n != "lr"}
    if extras:
        obj["dcreg_tensors"] = extras
    obj["dcreg_metadata"] = _embedded_json(art)
    with open(out, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return notes


def write_npz(art: Artifact, out: Path) -> list[str]:
    """``images`` NCHW + ``labels`` or ``soft_labels`` (+ ``lr``, other tensors) +
    ``metadata_json``; readable with ``numpy.load(allow_pickle=False)``."""
    notes = []
    arrays: dict[str, np.ndarray] = {}
    for name in art.tensor_names:
        if art.reader.tensors[name].dtype == "BF16":
            notes.append(f"{name}: bfloat16 widened to float32 (numpy has no bfloat16)")
        arrays[name] = np.asarray(art.numpy(name))
    arrays["metadata_json"] = np.array(_embedded_json(art))
    with open(out, "wb") as f:  # a file object: numpy would append .npz to a bare name
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return notes


def write_png(art: Artifact, out: Path, max_per_class: int = 10) -> list[str]:
    """A labelled image grid (one row per class), de-normalized for viewing."""
    return save_grid_png(art, out, max_per_class)


def write_hf_datasets(art: Artifact, out: Path, progress: bool = False) -> list[str]:
    """``datasets.Dataset`` with ``image`` (uint8, de-normalized) and ``label`` (ClassLabel)
    columns (+ ``soft_label`` for soft labels), saved with ``save_to_disk``; the dcreg metadata
    goes in ``info.description`` and ``dcreg_metadata.json`` next to the data."""
    import datasets
    from PIL import Image

    md = art.metadata
    unit, notes = artifact_unit_images(art)
    labels, label_notes = display_labels(art)
    columns: dict[str, list] = {
        "image": [Image.fromarray(to_uint8_hwc(img)) for img in unit],
        "label": [int(v) for v in labels],
    }
    features: dict[str, Any] = {"image": datasets.Image(),
                                "label": datasets.ClassLabel(names=list(md["class_names"]))}
    if md["label_kind"] == "soft":
        columns["soft_label"] = np.asarray(art.numpy("soft_labels"), dtype=np.float32).tolist()
        list_type = getattr(datasets, "List", None) or datasets.Sequence
        features["soft_label"] = list_type(datasets.Value("float32"))
        label_notes = ["soft labels: 'label' is the argmax, 'soft_label' the stored values"]
    block = embedded_metadata(art)
    if "lr" in art.tensor_names:
        block["lr"] = float(np.asarray(art.numpy("lr")).reshape(-1)[0])
    text = json.dumps(block, sort_keys=True, ensure_ascii=False)
    feats = datasets.Features(features)
    info = datasets.DatasetInfo(description=text, license=md["license"], features=feats)
    ds = datasets.Dataset.from_dict(columns, features=feats, info=info)
    was_enabled = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        ds.save_to_disk(str(out))
    finally:
        if was_enabled and not progress:
            datasets.enable_progress_bars()
    (out / HF_METADATA_FILE).write_text(json.dumps(block, indent=2, sort_keys=True,
                                                   ensure_ascii=False) + "\n", encoding="utf-8")
    return notes + label_notes + ["images stored as uint8 for viewing; the exact float pixels "
                                  "stay in the dcreg artifact"]


#: Format name -> writer(artifact, out_path, **options) -> notes.
EXPORTERS: dict[str, Callable[..., list[str]]] = {
    "pt": write_pt,
    "npz": write_npz,
    "png": write_png,
    "hf-datasets": write_hf_datasets,
}


def export_artifact(art: Artifact, fmt: str, out: str | Path, *, overwrite: bool = False,
                    max_per_class: int = 10, progress: bool = False) -> ExportResult:
    """Export ``art`` as ``fmt`` to ``out`` (a file, or a directory for hf-datasets).

    Refuses an existing ``out`` unless ``overwrite``; nothing is left at ``out`` on failure.
    """
    if fmt not in EXPORTERS:
        raise UserError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if max_per_class < 1:
        raise UserError("--max-per-class must be at least 1")
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; choose another -o or pass --overwrite")
    if out.exists() and out.is_dir() != (fmt == "hf-datasets"):
        raise UserError(f"{out} exists and is a {'directory' if out.is_dir() else 'file'}; "
                        f"{fmt} writes a {'directory' if fmt == 'hf-datasets' else 'file'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.dcreg-export-", dir=out.parent))
    try:
        tmp = staging / "out"
        kwargs: dict[str, Any] = ({"max_per_class": max_per_class} if fmt == "png" else
                                  {"progress": progress} if fmt == "hf-datasets" else {})
        notes = EXPORTERS[fmt](art, tmp, **kwargs)
        if fmt == "hf-datasets" and out.exists():
            old = staging / "old"
            os.rename(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, fmt, notes)
