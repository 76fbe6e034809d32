"""Reading a results directory as data: filter cells, group them per artifact x protocol (mean ±
std over seeds), export one row per cell to Parquet or JSONL (``harness results ls|show|export``)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dcregistry.errors import UserError
from dcregistry.records import EvalRecord

from .results import CellResult, merge_cells

__all__ = ["CellFilter", "Group", "group_cells", "export_rows", "write_export", "EXPORT_COLUMNS"]


@dataclass(frozen=True)
class CellFilter:
    """Which cells to keep; every given field must match."""

    dataset: str | None = None
    method: str | None = None
    ipc: int | None = None
    protocol: str | None = None  # a protocol id or name (globs like 'dsa*' work)
    artifact: str | None = None  # a digest prefix (hex, with or without sha256:)
    seed: int | None = None
    status: Literal["done", "failed"] | None = None

    def matches(self, c: CellResult) -> bool:
        """Whether cell ``c`` passes every given condition."""
        if self.dataset is not None and c.dataset != self.dataset:
            return False
        if self.method is not None and c.artifact.get("method") != self.method:
            return False
        if self.ipc is not None and c.ipc != self.ipc:
            return False
        if self.seed is not None and c.key.seed != self.seed:
            return False
        if self.status is not None and c.status != self.status:
            return False
        if self.artifact is not None and not c.key.hex.startswith(
            self.artifact.removeprefix("sha256:").lower()
        ):
            return False
        if self.protocol is not None:
            pid = c.key.protocol_id
            name = pid.rsplit("@", 1)[0]
            if not any(fnmatch.fnmatchcase(x, self.protocol) for x in (pid, name)):
                return False
        return True

    def apply(self, cells: Iterable[CellResult]) -> list[CellResult]:
        return [c for c in cells if self.matches(c)]


@dataclass(frozen=True)
class Group:
    """The cells of one artifact under one protocol."""

    digest: str
    protocol_id: str
    cells: tuple[CellResult, ...]

    @property
    def done(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "done"]

    @property
    def failed(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "failed"]

    @property
    def first(self) -> CellResult:
        return self.cells[0]

    def merged(self) -> EvalRecord | None:
        """The done seeds as one record (mean ± std as ``harness eval`` has it), None if none."""
        return merge_cells(self.done) if self.done else None

    def to_json(self) -> dict[str, Any]:
        m = self.merged()
        return {
            "artifact": dict(self.first.artifact),
            "protocol": self.protocol_id,
            "seeds": [c.key.seed for c in self.done],
            "accuracies": m.accuracies if m else [],
            "mean": m.mean if m else None,
            "std": m.std if m else None,
            "done": len(self.done),
            "failed": len(self.failed),
            "failed_seeds": [c.key.seed for c in self.failed],
        }


def group_cells(cells: Iterable[CellResult]) -> list[Group]:
    """Cells grouped per (artifact digest, protocol id), seeds in order, groups sorted by
    dataset, ipc, method, artifact, protocol."""
    by: dict[tuple[str, str], list[CellResult]] = {}
    for c in cells:
        by.setdefault((c.key.digest, c.key.protocol_id), []).append(c)
    groups = [Group(d, p, tuple(sorted(cs, key=lambda c: c.key.seed))) for (d, p), cs in by.items()]
    return sorted(
        groups,
        key=lambda g: (
            g.first.dataset,
            g.first.ipc,
            str(g.first.artifact.get("method")),
            g.digest,
            g.protocol_id,
        ),
    )


#: One exported row per cell: these columns, in this order (``record`` is the cell file's JSON).
EXPORT_COLUMNS: dict[str, str] = {
    "status": "string",
    "dataset": "string",
    "ipc": "int64",
    "method": "string",
    "artifact_digest": "string",
    "artifact_ref": "string",
    "protocol_id": "string",
    "protocol_name": "string",
    "protocol_hash": "string",
    "seed": "int64",
    "accuracy": "float64",
    "final_train_loss": "float64",
    "wall_time_s": "float64",
    "device": "string",
    "strategy": "string",
    "harness_version": "string",
    "torch_version": "string",
    "python_version": "string",
    "cpu": "string",
    "gpu": "string",
    "sweep_name": "string",
    "sweep_hash": "string",
    "created_at": "string",
    "error": "string",
    "record": "string",
}


def export_rows(cells: Iterable[CellResult]) -> list[dict[str, Any]]:
    """One flat row per cell (:data:`EXPORT_COLUMNS`), sorted by cell."""
    rows = []
    for c in sorted(cells, key=lambda c: (c.dataset, c.ipc, c.key)):
        r = c.record
        pid = c.key.protocol_id
        rows.append(
            {
                "status": c.status,
                "dataset": c.dataset,
                "ipc": c.ipc,
                "method": c.artifact.get("method"),
                "artifact_digest": c.key.digest,
                "artifact_ref": c.artifact.get("ref"),
                "protocol_id": pid,
                "protocol_name": pid.rsplit("@", 1)[0],
                "protocol_hash": pid.rsplit("@", 1)[1],
                "seed": c.key.seed,
                "accuracy": c.accuracy,
                "final_train_loss": r.final_train_loss[0] if r and r.final_train_loss else None,
                "wall_time_s": c.wall_time_s,
                "device": r.device if r else None,
                "strategy": (r.strategy.get("name") if r else None),
                "harness_version": c.env.harness,
                "torch_version": c.env.torch,
                "python_version": c.env.python,
                "cpu": c.env.cpu,
                "gpu": c.env.gpu,
                "sweep_name": c.sweep.name,
                "sweep_hash": c.sweep.hash,
                "created_at": c.created_at,
                "error": c.error,
                "record": json.dumps(c.to_json(), sort_keys=True),
            }
        )
    return rows


def write_export(
    cells: Iterable[CellResult], out: str | Path, fmt: Literal["parquet", "jsonl"] | None = None
) -> int:
    """Write one row per cell to ``out`` (Parquet, or JSONL of the cell files), atomically;
    the format defaults from the suffix. Return the number of rows."""
    from dcregistry.fsio import staged_file

    out = Path(out)
    if fmt is None:
        suffix = out.suffix.lower()
        if suffix not in (".parquet", ".jsonl"):
            raise UserError(f"{out}: give --format parquet|jsonl or a .parquet/.jsonl file name")
        fmt = "parquet" if suffix == ".parquet" else "jsonl"
    rows = export_rows(cells)
    with staged_file(out, overwrite=True) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(row["record"] + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(name, getattr(pa, typ)()) for name, typ in EXPORT_COLUMNS.items()])
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    return len(rows)
