"""Running a table: plan each of its sweep specs and run it through the :mod:`harness.sweep` API
(``plan_sweep`` -> ``condense_then_plan`` (the condense cells, then the plan with their sets) ->
``run_sweep``: the calls ``harness sweep`` makes), into one results directory; resumable (a rerun
computes only the missing cells). ``RESULTS/tables/<name>.json`` records what was asked (budget,
dataset, the specs' names and hashes) so that ``render`` shows the same cells."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.sweep.driver import condense_then_plan, run_sweep
from harness.sweep.executor import ExecutorOptions, make_executor
from harness.sweep.plan import plan_sweep
from harness.sweep.results import ResultsDir

from .base import Budget, TableDef

__all__ = ["TableRun", "run_table", "manifest_path", "read_manifest", "write_manifest"]


@dataclass
class TableRun:
    """What one ``harness table run`` did."""

    table: str
    budget: str
    dataset: str
    results_dir: Path
    condensed: int = 0
    condense_failed: int = 0
    condense_failed_earlier: int = 0  # recorded as failed by an earlier run, not retried
    computed: int = 0
    failed: int = 0
    skipped_done: int = 0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def manifest_path(results: Path, table: str) -> Path:
    return results / "tables" / f"{table}.json"


def write_manifest(
    results: Path, table: TableDef, budget: Budget, dataset: str, specs: list[Any], store: str | None = None
) -> None:
    from dcregistry.fsio import atomic_write_text, ensure_dir

    path = manifest_path(results, table.name)
    ensure_dir(path.parent)
    doc = {
        "kind": "harness-table/1",
        "table": table.name,
        "budget": budget.name,
        "dataset": dataset,
        "store": store,
        "specs": [{"name": s.name, "hash": s.hash} for s in specs],
    }
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def read_manifest(results: Path, table: str) -> dict[str, Any] | None:
    """The last run's budget and dataset for ``table`` in ``results`` (None: never run there)."""
    from dcregistry.errors import UserError
    from dcregistry.jsonsafe import loads_bounded

    path = manifest_path(results, table)
    try:
        doc = loads_bounded(path.read_bytes()[: 1 << 20], str(path))
    except (OSError, UserError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "harness-table/1":
        return None
    return doc


def run_table(
    table: TableDef,
    budget: Budget,
    results: Path,
    *,
    dataset: str = "digits",
    executor: str = "local",
    options: ExecutorOptions | None = None,
    store: str | None = None,
    data_root: str | None = None,
    strategy: str = "sequential",
    retry_failed: bool = False,
    log: Callable[[str], None] = lambda s: None,
) -> TableRun:
    """Condense and evaluate every missing cell of ``table`` at ``budget`` into ``results``."""
    t0 = time.perf_counter()
    table.check_needs(dataset, store)  # before anything is planned or written
    specs = table.specs(budget, dataset, store, data_root)
    out = ResultsDir(results)
    write_manifest(out.root, table, budget, dataset, specs, store)
    report = TableRun(table.name, budget.name, dataset, out.root)
    with make_executor(executor, options or ExecutorOptions(workers=1)) as ex:
        for spec in specs:
            plan, made = condense_then_plan(
                plan_sweep(spec, None, out.root),
                out,
                ex,
                retry_failed=retry_failed,
                data_root=data_root,
                log=log,
            )
            if made is not None:
                report.condensed += made.done
                report.condense_failed += made.failed
                report.errors += made.errors
            failed_now = made.failed if made is not None else 0
            report.condense_failed_earlier += sum(c.state == "failed" for c in plan.condense) - failed_now
            log(f"{spec.name}: {len(plan.cells)} evaluation cells")
            if not plan.cells:
                continue
            rep = run_sweep(plan, out, ex, retry_failed=retry_failed, data_root=data_root, strategy=strategy)
            report.computed += rep.computed
            report.failed += rep.failed_total
            report.skipped_done += rep.skipped_done
    report.wall_s = round(time.perf_counter() - t0, 1)
    return report
