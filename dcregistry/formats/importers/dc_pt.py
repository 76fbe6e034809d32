"""``dc-pt``: DC / DSA / DM ``res_{METHOD}_{DATASET}_{MODEL}_{IPC}ipc.pt`` files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ...catalog import get_dataset_info
from ...errors import ImportFormatError, UserError
from ..limits import ByteBudget
from . import (
    EMBEDDED_PT_KEY,
    EMBEDDED_PT_TENSORS,
    IMPORTERS,
    TENSOR_NAME_RE,
    ImportedSet,
    ImportOptionError,
    ImportOptions,
)
from .common import (
    DecodedSet,
    assemble,
    dataset_info,
    hard_labels,
    images_nchw,
    lr_tensor,
    parse_embedded,
    source_record,
    to_numpy,
)

_DC_NAME_RE = re.compile(
    r"res_(?P<method>[A-Za-z0-9]+)_(?P<dataset>[A-Za-z0-9]+)_(?P<model>.+)_(?P<ipc>\d+)ipc"
    r"(?:[._-].*)?\.pt"
)


def read_dc_pt(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """``{'data': [[images, labels], ...], 'accs_all_exps': {...}}``, one set per experiment
    (DataDAM's single-experiment ``{'data': [images, labels]}`` too)."""
    from ..safe_torch import safe_torch_load

    info = dataset_info(options)
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a directory; dc-pt needs the res_*.pt file")
    obj = safe_torch_load(path)
    where = path.name
    budget = ByteBudget(where)  # what all experiments may materialise together
    if not isinstance(obj, dict) or "data" not in obj:
        found = f"keys {sorted(map(str, obj))}" if isinstance(obj, dict) else type(obj).__name__
        raise ImportFormatError(
            f"{where}: expected the DC layout {{'data': [[images, labels], "
            f"...], 'accs_all_exps': ...}}, found {found}"
        )
    data = obj["data"]
    if not isinstance(data, (list, tuple)) or not data:
        raise ImportFormatError(f"{where}: 'data' must be a non-empty list of [images, labels]")
    if len(data) == 2 and getattr(data[0], "ndim", None) == 4:
        # DataDAM (and other forks) save a single experiment as {'data': [images, labels]}.
        notes.append(f"{where}: 'data' holds one [images, labels] pair (DataDAM layout)")
        data = [data]
    for i, pair in enumerate(data):
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            raise ImportFormatError(f"{where}: data[{i}] is not an [images, labels] pair")

    parsed = _DC_NAME_RE.fullmatch(path.name)
    method = model = None
    if parsed:
        method, model = parsed["method"].lower(), parsed["model"]
        try:
            named = get_dataset_info(parsed["dataset"]).name
        except UserError:
            named = None
        if named is not None and named != info.name:
            raise ImportOptionError(
                f"{where}: the file name says dataset {parsed['dataset']} "
                f"but the dataset given is {info.name}",
                "dataset",
            )
    embedded = parse_embedded(obj.get(EMBEDDED_PT_KEY), f"{where}: {EMBEDDED_PT_KEY}", notes)
    accs = _plain_accs(obj.get("accs_all_exps"))

    extras: dict[str, np.ndarray] = {}
    if obj.get("lr") is not None:
        extras["lr"] = lr_tensor(to_numpy(obj["lr"], f"{where}: lr", notes, budget), where)
    dcreg_tensors = obj.get(EMBEDDED_PT_TENSORS)
    if isinstance(dcreg_tensors, dict):
        for name, t in dcreg_tensors.items():
            if isinstance(name, str) and TENSOR_NAME_RE.fullmatch(name):
                extras[name] = to_numpy(t, f"{where}: {name}", notes, budget)

    if options.exp is not None:
        if not 0 <= options.exp < len(data):
            raise ImportOptionError(
                f"experiment {options.exp} is out of range: {where} holds "
                f"{len(data)} experiment(s) (0..{len(data) - 1})",
                "exp",
            )
        chosen = [options.exp]
    else:
        chosen = list(range(len(data)))
    multi = len(chosen) > 1
    if multi:
        notes.append(
            f"{where}: {len(data)} experiments -> one artifact each (-e0..-e"
            f"{len(data) - 1}); choose one experiment to import only it"
        )
    sets = []
    for i in chosen:
        w = f"{where} experiment {i}"
        images = to_numpy(data[i][0], f"{w}: images", notes, budget)
        raw_labels = to_numpy(data[i][1], f"{w}: labels", notes, budget)
        images = images_nchw(
            images, info, options.layout, w, notes, image_shape=(embedded or {}).get("image_shape")
        )
        labels = soft = None
        if raw_labels.ndim == 2 and raw_labels.dtype.kind == "f":
            soft = raw_labels
        else:
            labels = hard_labels(raw_labels, w, notes)
        mc: dict[str, Any] = {"experiment": i, "num_experiments": len(data)}
        if model:
            mc["model"] = model
        if accs:
            mc["reported_accs"] = accs
        if soft is not None:
            mc["soft_labels"] = "logits"
        if "lr" in extras:
            mc["learned_lr"] = True
        sets.append(
            assemble(
                DecodedSet(
                    images=images,
                    labels=labels,
                    soft=soft,
                    where=w,
                    default_pixel_space="normalized",
                    source=source_record(path, "dc-pt", options, experiment=i),
                    method=method,
                    method_config=mc,
                    extras=extras,
                    embedded=embedded,
                    suffix=f"-e{i}" if multi else "",
                ),
                info,
                options,
                notes,
            )
        )
        if parsed and int(parsed["ipc"]) != sets[-1].metadata["ipc"]:
            raise ImportFormatError(
                f"{w}: the file name says {parsed['ipc']} ipc but the data "
                f"holds {sets[-1].metadata['ipc']} images per class"
            )
    return sets


def _plain_accs(accs: Any) -> dict[str, list[float]] | None:
    """``accs_all_exps`` as {model: [float, ...]} if it is that shape, else None."""
    if not isinstance(accs, dict):
        return None
    out: dict[str, list[float]] = {}
    for key, values in accs.items():
        if not isinstance(key, str) or not isinstance(values, (list, tuple)):
            return None
        try:
            vals = [float(v) for v in values]
        except (TypeError, ValueError):
            return None
        if not all(np.isfinite(vals)):
            return None
        out[key] = vals
    return out or None


IMPORTERS.register("dc-pt", read_dc_pt)
