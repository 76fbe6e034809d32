"""``dc-cost``: the DC paper's T15 (time and memory of condensation), for every method of
``dc-coreset`` beside its accuracy (the same sets and cells), with a time-vs-accuracy scatter."""

from __future__ import annotations

from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, TableDef
from .dc_coreset import METHODS
from .dc_coreset import TEMPLATE as CORESET_TEMPLATE

IPCS = (1, 10, 50)
MEASURES = {"time s": "wall_s", "memory MB": "peak_mb", "accuracy %": "accuracy"}
COLUMNS = tuple(f"IPC {k} {m}" for k in IPCS for m in MEASURES)


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    if entry.ipc not in IPCS:  # dc-coreset's whole-dataset set
        return []
    return [(entry.method, f"IPC {entry.ipc} {m}") for m in MEASURES]


def metric(pos: Position) -> str:
    return MEASURES[pos[1].split(" ", 2)[2]]


TABLE = TABLES.register(
    "dc-cost",
    TableDef(
        name="dc-cost",
        title="Condensation cost vs accuracy: wall time, peak memory, test accuracy (ConvNet)",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), "
        "Table T15 (time and memory; DD is not a method of this harness)",
        template=CORESET_TEMPLATE,  # dc-coreset's sets and evaluation cells, shared
        rows=METHODS,
        columns=COLUMNS,
        row_header="method",
        place=place,
        metric=metric,
        paper_dataset="mnist",
        paper_setup="DC vs DD at 10 images per class on one GPU",
        plot="cost-scatter",
        notes=(
            "the seeds give T15's caption only, not its numbers: no published values",
            "time s: the condensation's wall time (`wall_time_s`, data loading included); memory MB "
            "on a CPU: the worker process's peak RSS (`ru_maxrss`, a high-water mark that includes "
            "earlier cells of the same worker), on CUDA: torch.cuda.max_memory_allocated",
            "the sets and accuracies are dc-coreset's (the same recipes): running one table fills the other",
        ),
    ),
)
