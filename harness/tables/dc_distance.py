"""``dc-distance``: the DC paper's Table T11 (gradient distance metrics of DC)."""

from __future__ import annotations

from typing import Any

from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, TableDef

TEMPLATE = """
[[sweep]]
name = "distance"
protocols = ["dc-noaug"]

[[sweep.condense]]
method = "dc"
ipc = [1, 10]
options = { dis_metric = "mse" }

[[sweep.condense]]
method = "dc"
ipc = [1, 10]
options = { dis_metric = "cos" }

[[sweep.condense]]
method = "dc"
ipc = [1, 10]
options = { dis_metric = "ours" }
"""

ROWS = ("Euclidean", "Cosine", "Ours")
_LABEL = {"mse": "Euclidean", "cos": "Cosine", "ours": "Ours"}


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    return [(_LABEL[str(dict(entry.options)["dis_metric"])], f"IPC {entry.ipc}")]


def _for_dataset(doc: dict[str, Any], dataset: str) -> None:
    if dataset == "mnist":
        doc["sweep"][0]["protocols"] = ["dc-mnist"]


TABLE = TABLES.register(
    "dc-distance",
    TableDef(
        name="dc-distance",
        title="Gradient distance metrics of DC (test accuracy %, ConvNet)",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T11",
        template=TEMPLATE,
        rows=ROWS,
        columns=("IPC 1", "IPC 10"),
        row_header="distance",
        place=place,
        paper_setup="1000 iterations; evaluation 300 epochs; the paper's columns are datasets (one per run here)",
        plot="bars",
        for_dataset=_for_dataset,
        notes=(
            "the seeds give T11's caption only: no published values",
            "Euclidean: squared Euclidean over the flattened gradients (`dis_metric=mse`); Cosine: "
            "over the flattened vector (`cos`); Ours: per-output-channel 1 - cos (`ours`)",
        ),
    ),
)
