"""``hf-datasets``: a ``datasets.Dataset`` saved with ``save_to_disk``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...artifact import Artifact
from ..grid import artifact_unit_images, display_labels, to_uint8_hwc
from . import EXPORTERS, HF_METADATA_FILE, embedded_metadata


def write_hf_datasets(art: Artifact, out: Path, progress: bool = False) -> list[str]:
    """``datasets.Dataset`` with ``image`` (uint8, de-normalized) and ``label`` (ClassLabel)
    columns (+ ``soft_label`` for soft labels), saved with ``save_to_disk``; the dcreg metadata
    goes in ``info.description`` and ``dcreg_metadata.json`` next to the data."""
    import datasets
    from PIL import Image

    md = art.metadata
    unit, notes = artifact_unit_images(art)
    labels, label_notes = display_labels(art)
    columns: dict[str, list[Any]] = {
        "image": [Image.fromarray(to_uint8_hwc(img)) for img in unit],
        "label": [int(v) for v in labels],
    }
    features: dict[str, Any] = {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(md["class_names"])),
    }
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
    (out / HF_METADATA_FILE).write_text(
        json.dumps(block, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return (
        notes
        + label_notes
        + ["images stored as uint8 for viewing; the exact float pixels stay in the dcreg artifact"]
    )


EXPORTERS.register("hf-datasets", write_hf_datasets)
