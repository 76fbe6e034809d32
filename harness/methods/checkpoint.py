"""The condense loop's checkpoint: a typed :class:`Checkpoint` record and its two files.

``OUT/.checkpoint/state-<iteration>.safetensors`` holds the tensors (the method's state and the
best set so far); ``OUT/.checkpoint/state.json`` holds :meth:`Checkpoint.to_json` (everything
else, with tensors referenced as ``{"__tensor__": key}``) and the sha256 of the tensor file. Each
is written to a temp file, fsynced and renamed; ``state.json`` is the commit point.

The JSON is what the loop has always written (format ``harness-condense-checkpoint/1``), so a
checkpoint made by an earlier version resumes; one without ``init_accuracy`` or
``first_iteration_s`` (written before they existed) reads back with them None. A damaged or
foreign ``state.json`` is refused with a :class:`CheckpointError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcregistry.errors import JSONFormatError, UserError
from dcregistry.fsio import atomic_write_text, staged_file
from dcregistry.jsonfields import Fields, is_point
from dcregistry.jsonsafe import loads_bounded
from dcregistry.records import RecordError

CHECKPOINT_DIR = ".checkpoint"
CHECKPOINT_FORMAT = "harness-condense-checkpoint/1"
STATE_FILE = "state.json"


class CheckpointError(UserError):
    """A checkpoint cannot be resumed (different settings, or damaged files)."""


# --- tensors in nested structures ---------------------------------------------------------------


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace tensors in a nested structure by {"__tensor__": key} and collect them."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [flatten(k, tensors, f"{prefix}.k{i}"), flatten(v, tensors, f"{prefix}.{i}")]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        return {
            "__list__": [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)],
            "tuple": isinstance(obj, tuple),
        }
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint state holds an unsupported {type(obj).__name__} at {prefix}")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor], where: str = "checkpoint.state") -> Any:
    """Inverse of :func:`flatten`; a reference to a missing tensor or a malformed node raises
    :class:`RecordError` naming where it is."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            key = obj["__tensor__"]
            if not isinstance(key, str) or key not in tensors:
                raise RecordError(where, f"names tensor {key!r}, which the tensor file does not hold")
            return tensors[key]
        if "__dict__" in obj:
            items = obj["__dict__"]
            if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
                raise RecordError(where, "must hold [key, value] pairs")
            out = {}
            for i, (k, v) in enumerate(items):
                key = unflatten(k, tensors, f"{where}.k{i}")
                try:
                    out[key] = unflatten(v, tensors, f"{where}.{i}")
                except TypeError:  # an unhashable key
                    raise RecordError(f"{where}.k{i}", "is not a usable key") from None
            return out
        if "__list__" in obj:
            if not isinstance(obj["__list__"], list):
                raise RecordError(where, "must hold a list")
            vals = [unflatten(v, tensors, f"{where}.{i}") for i, v in enumerate(obj["__list__"])]
            return tuple(vals) if obj.get("tuple") else vals
    return obj


# --- the record ---------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Where a synthesis run stood after ``iteration`` iterations (tensors kept apart)."""

    identity: dict[str, Any]  # the run's settings; a resume must match them all
    iteration: int
    state: Any  # the method's state_dict, flattened (tensors as {"__tensor__": key})
    best: Any  # the best set so far, flattened; None without one
    losses: list[list[float]]  # [[iteration, loss], ...]
    curve: list[list[float]]  # [[iteration, validation accuracy], ...]
    lineage: list[str]
    init_record: dict[str, Any]
    best_iteration: int | None
    best_accuracy: float | None
    init_accuracy: float | None
    step_s: float
    first_iteration_s: float | None
    wall_s: float
    peak_bytes: int
    tensor_file: str = ""  # set by save_checkpoint
    tensor_sha256: str = ""
    format: str = CHECKPOINT_FORMAT

    FIELDS = (
        "identity",
        "iteration",
        "state",
        "best",
        "losses",
        "curve",
        "lineage",
        "init_record",
        "best_iteration",
        "best_accuracy",
        "init_accuracy",
        "step_s",
        "first_iteration_s",
        "wall_s",
        "peak_bytes",
        "tensor_file",
        "tensor_sha256",
        "format",
    )

    def to_json(self) -> dict[str, Any]:
        """The ``state.json`` document."""
        return {k: getattr(self, k) for k in self.FIELDS}

    @classmethod
    def from_json(cls, d: Any, where: str = "checkpoint") -> Checkpoint:
        """Parse ``state.json``; :class:`RecordError` names the first bad field."""
        f = Fields(d, where, cls.FIELDS)
        fmt = f.string("format")
        if fmt != CHECKPOINT_FORMAT:
            raise RecordError(f"{where}.format", f"is {fmt!r}, expected {CHECKPOINT_FORMAT!r}")
        name = f.string("tensor_file")
        if Path(name).name != name or not name.endswith(".safetensors"):
            raise RecordError(f"{where}.tensor_file", f"is not a file name in the checkpoint: {name!r}")
        if not f.has("state"):
            raise RecordError(f"{where}.state", "is missing")
        if not f.has("best"):
            raise RecordError(f"{where}.best", "is missing")
        return cls(
            identity=f.mapping("identity"),
            iteration=f.integer("iteration"),
            state=d["state"],
            best=d["best"],
            losses=f.array("losses", is_point, "[iteration, loss] pairs"),
            curve=f.array("curve", is_point, "[iteration, accuracy] pairs"),
            lineage=f.array("lineage", lambda x: isinstance(x, str), "digests"),
            init_record=f.mapping("init_record"),
            best_iteration=f.opt_integer("best_iteration"),
            best_accuracy=f.opt_number("best_accuracy"),
            init_accuracy=f.opt_number("init_accuracy"),
            step_s=f.number("step_s"),
            first_iteration_s=f.opt_number("first_iteration_s"),
            wall_s=f.number("wall_s"),
            peak_bytes=f.integer("peak_bytes"),
            tensor_file=name,
            tensor_sha256=f.string("tensor_sha256"),
            format=fmt,
        )

    def differences(self, identity: dict[str, Any]) -> list[str]:
        """The settings of ``identity`` this checkpoint was not made with."""
        return [k for k in identity if self.identity.get(k) != identity[k]]


def save_checkpoint(out: Path, ck: Checkpoint, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically write a checkpoint (tensor file first, then the json that names it)."""
    from safetensors.torch import save_file

    d = out / CHECKPOINT_DIR
    d.mkdir(parents=True, exist_ok=True)
    name = f"state-{ck.iteration}.safetensors"
    with staged_file(d / name, overwrite=True) as tmp:
        save_file(tensors, str(tmp))
    ck.tensor_file, ck.tensor_sha256 = name, hashlib.sha256((d / name).read_bytes()).hexdigest()
    ck.format = CHECKPOINT_FORMAT
    atomic_write_text(d / STATE_FILE, json.dumps(ck.to_json(), sort_keys=True, allow_nan=False))
    for old in d.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(out: Path) -> tuple[Checkpoint, dict[str, torch.Tensor]] | None:
    """The last committed checkpoint under ``out`` and its tensors (None when there is none)."""
    from safetensors.torch import load_file

    d = out / CHECKPOINT_DIR
    meta = d / STATE_FILE
    if not meta.is_file():
        return None
    try:
        ck = Checkpoint.from_json(loads_bounded(meta.read_bytes(), str(meta)))
        blob = (d / ck.tensor_file).read_bytes()
        if hashlib.sha256(blob).hexdigest() != ck.tensor_sha256:
            raise ValueError(f"{ck.tensor_file} does not match its recorded sha256")
        tensors = load_file(str(d / ck.tensor_file))
        unflatten(ck.state, tensors)  # every reference resolves (the loop unflattens again)
        if ck.best is not None:
            unflatten(ck.best, tensors, "checkpoint.best")
        return ck, tensors
    except RecordError as exc:
        raise CheckpointError(f"checkpoint {meta} is damaged: {exc}; delete {d} to start over") from None
    except (OSError, ValueError, KeyError, TypeError, JSONFormatError) as exc:
        raise CheckpointError(f"checkpoint in {d} is damaged ({exc}); delete it to start over") from None
