"""The papers' tables as shipped sweep specs (``harness table list|show|run|render``).

One file per table: a TOML sweep-spec template plus the paper's layout, published numbers and
budgets (:class:`~.base.TableDef`), registering itself with one line,
``TABLES.register("name", TableDef(...))``. Adding a table is that file plus its line in the
module table below. :mod:`.run` plans and runs a table through the :mod:`harness.sweep` API
(the calls ``harness sweep`` makes); :mod:`.render` reads the results directory back into the
paper's layout (Markdown, CSV, JSON, plots).
"""

from __future__ import annotations

from harness.registry import Registry

from .base import (
    BUDGET_NAMES,
    BUDGETS,
    TABLE_DATASETS,
    Budget,
    Published,
    TableDef,
    TableError,
    TableNeedsError,
)

#: name -> module (in table order: the order `harness table list` shows).
TABLES: Registry[TableDef] = Registry(
    "table",
    lazy={
        "dc-coreset": "dc_coreset",
        "dcbench-aug": "dcbench_aug",
        "dc-cross-arch": "dc_cross_arch",
        "dc-activation": "dc_activation",
        "dc-pooling": "dc_pooling",
        "dc-normalization": "dc_normalization",
        "dc-depth": "dc_depth",
        "dc-width": "dc_width",
        "dcbench-optim": "dcbench_optim",
        "dcbench-ipc": "dcbench_ipc",
        "dc-distance": "dc_distance",
        "dcbench-init": "dcbench_init",
        "dcbench-kcenter": "dcbench_kcenter",
        "dcbench-transfer": "dcbench_transfer",
        "dcbench-time": "dcbench_time",
        "dc-cost": "dc_cost",
        "dc-vs-dd": "dc_vs_dd",
        "dc-nas": "dc_nas",
    },
    package="harness.tables",
)


#: Names that stand for several tables (run, rendered and shown one after another).
TABLE_GROUPS: dict[str, tuple[str, ...]] = {
    # DC's ConvNet ablations T6-T10: one matrix per ablation
    "dc-ablations": ("dc-activation", "dc-pooling", "dc-normalization", "dc-depth", "dc-width"),
}


def get_table(name: str) -> TableDef:
    """The table registered as ``name`` (UnknownNameError with close matches)."""
    return TABLES.get(name)


def get_tables(name: str) -> list[TableDef]:
    """The tables ``name`` stands for: a group's members, else the one table."""
    if name in TABLE_GROUPS:
        return [TABLES.get(n) for n in TABLE_GROUPS[name]]
    return [TABLES.get(name)]


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise TableError(f"unknown budget {name!r} (known: {', '.join(BUDGET_NAMES)})")
    return BUDGETS[name]


__all__ = [
    "TABLES",
    "BUDGETS",
    "BUDGET_NAMES",
    "TABLE_DATASETS",
    "Budget",
    "Published",
    "TableDef",
    "TableError",
    "TableNeedsError",
    "get_table",
    "get_tables",
    "TABLE_GROUPS",
    "get_budget",
]
