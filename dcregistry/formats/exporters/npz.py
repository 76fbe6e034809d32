"""``npz``: every tensor + ``metadata_json``, readable with ``numpy.load(allow_pickle=False)``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ...artifact import Artifact
from ...errors import ExportFormatError
from . import EXPORTERS, embedded_json

#: The member that holds the artifact's metadata (JSON text).
METADATA_KEY = "metadata_json"


def write_npz(art: Artifact, out: Path) -> list[str]:
    """``images`` NCHW + ``labels`` or ``soft_labels`` (+ ``lr``, other tensors) +
    ``metadata_json``; readable with ``numpy.load(allow_pickle=False)``."""
    notes = []
    arrays: dict[str, np.ndarray] = {}
    for name in art.tensor_names:
        if art.reader.tensors[name].dtype == "BF16":
            notes.append(f"{name}: bfloat16 widened to float32 (numpy has no bfloat16)")
        arrays[name] = np.asarray(art.numpy(name))
    if METADATA_KEY in arrays:
        raise ExportFormatError(
            f"tensor {METADATA_KEY!r}",
            f"the npz format keeps the metadata under {METADATA_KEY!r}",
            "export to another format, or rename the tensor",
        )
    arrays[METADATA_KEY] = np.array(embedded_json(art))
    # Written as numpy.savez writes (stored members NAME.npy, zip64), but by name: savez takes its
    # arrays as keyword arguments, so a tensor named "file" or "allow_pickle" would not be saved.
    with open(out, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, array in arrays.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    return notes


EXPORTERS.register("npz", write_npz)
