"""``pt``: the DC list format, via ``torch.save``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...artifact import Artifact
from . import EXPORTERS, LABEL_KEYS, embedded_json


def write_pt(art: Artifact, out: Path) -> list[str]:
    """``{'data': [[images, labels]], 'accs_all_exps': {}}`` via ``torch.save`` (+ ``lr``,
    ``dcreg_tensors`` for other tensors, ``dcreg_metadata``). Images keep their stored dtype."""
    from ..safe_torch import import_torch

    torch = import_torch("writing .pt files")

    notes = []
    names = art.tensor_names
    obj: dict[str, Any] = {"data": [[art.torch("images"), art.torch(art.label_key)]], "accs_all_exps": {}}
    if art.label_key == "soft_labels":
        notes.append(
            "soft labels saved as the [N, K] float labels of data[0] (DC code expects "
            "int labels; the dc-pt importer reads them back as soft labels)"
        )
    if "lr" in names:
        obj["lr"] = art.torch("lr")
    extras = {n: art.torch(n) for n in names if n not in LABEL_KEYS and n != "lr"}
    if extras:
        obj["dcreg_tensors"] = extras
    obj["dcreg_metadata"] = embedded_json(art)
    with open(out, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return notes


EXPORTERS.register("pt", write_pt)
