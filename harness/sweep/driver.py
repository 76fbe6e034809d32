"""The sweep driver: plan -> skip what the results directory holds -> run the rest on an
executor -> write each cell's file (atomically, the driver alone) -> optionally record results
on the artifacts' store.

Resumable by construction: a cell's file appears complete (rename) or not at all, so a run
killed at any moment (SIGKILL included) leaves every finished cell and nothing half-written,
and the next run computes exactly the cells without a file (plus failed ones with
``retry_failed``). A file that fails validation is reported and recomputed.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcregistry.errors import UserError
from dcregistry.records import EvalRecord

from .executor import Executor
from .plan import Cell, Plan, SweepStatus, sweep_status
from .results import CellResult, ResultsDir, SweepRef, merge_cells
from .worker import CellOutcome, CellTask

__all__ = [
    "SweepReport",
    "CondenseReport",
    "run_sweep",
    "run_condense_cells",
    "check_recordable",
    "record_group",
]

#: ``progress(total_cells)`` -> a callback called with each cell result as it is written (and
#: the worker's outcome, which names the worker).
ProgressFactory = Callable[[int], Callable[[CellResult, CellOutcome], None]]


@dataclass
class SweepReport:
    """What one run of a sweep did."""

    results_dir: Path
    total: int
    computed: int = 0
    done: int = 0  # computed and done
    failed: int = 0  # computed and failed
    skipped_done: int = 0
    skipped_failed: int = 0  # failed earlier, not retried
    bad_recomputed: int = 0
    stale_temp_removed: int = 0
    recorded: list[str] = field(default_factory=list)  # annotation ids

    @property
    def failed_total(self) -> int:
        return self.failed + self.skipped_failed

    def summary(self) -> str:
        line = (
            f"{self.results_dir}: {self.total} cells, {self.computed} computed "
            f"({self.done} done, {self.failed} failed), {self.skipped_done} already done"
        )
        if self.skipped_failed:
            line += f", {self.skipped_failed} failed earlier (skipped; --retry-failed reruns them)"
        if self.bad_recomputed:
            line += f", {self.bad_recomputed} bad files recomputed"
        if self.recorded:
            line += f", {len(self.recorded)} results recorded on the store"
        return line

    def to_json(self) -> dict[str, Any]:
        return {
            "results_dir": str(self.results_dir),
            "total": self.total,
            "computed": self.computed,
            "done": self.done,
            "failed": self.failed,
            "skipped_done": self.skipped_done,
            "skipped_failed": self.skipped_failed,
            "bad_recomputed": self.bad_recomputed,
            "stale_temp_removed": self.stale_temp_removed,
            "recorded": list(self.recorded),
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(record: EvalRecord) -> EvalRecord:
    """A diverged run's loss is NaN/inf, which JSON cannot hold: such losses are dropped."""
    losses = record.final_train_loss
    if all(math.isfinite(x) for x in losses):
        return record
    return dataclasses.replace(record, final_train_loss=[x for x in losses if math.isfinite(x)])


def cell_result(plan: Plan, cell: Cell, outcome: CellOutcome) -> CellResult:
    """The cell file's content for an outcome (a record whose artifact disagrees with the plan
    becomes a failure)."""
    sweep = SweepRef(plan.spec.name, plan.spec.hash)
    a = cell.artifact
    art = {"ref": a.ref, "digest": a.digest, "dataset": a.dataset, "method": a.method, "ipc": a.ipc}
    rec = outcome.record
    if rec is not None:
        got = (rec.artifact.get("digest"), rec.artifact.get("dataset"), rec.artifact.get("ipc"))
        if got == (a.digest, a.dataset, a.ipc):
            rec = _finite(rec)
            return CellResult(
                "done",
                cell.key,
                sweep,
                dict(rec.artifact),
                outcome.env,
                record=rec,
                wall_time_s=rec.wall_time_s,
                created_at=rec.created_at,
            )
        error = f"the evaluated artifact {got} is not the planned {(a.digest, a.dataset, a.ipc)}"
    else:
        error = outcome.error or "unknown error"
    return CellResult(
        "failed",
        cell.key,
        sweep,
        art,
        outcome.env,
        error=error,
        wall_time_s=outcome.wall_time_s,
        created_at=_now(),
    )


def check_recordable(plan: Plan) -> None:
    """Refuse ``--record`` before any work unless every artifact is a version in a store that
    keeps results."""
    from dcregistry.store import get_store

    paths = [a.ref for a in plan.artifacts if not a.in_store]
    if paths:
        raise UserError(
            f"--record needs store references; these are directories: {', '.join(paths[:3])}"
            + (" ..." if len(paths) > 3 else "")
            + " (push them and list ns/name instead)"
        )
    for spec in sorted({a.store or "" for a in plan.artifacts}):
        get_store(spec or None).require("annotate", "--record")


def record_group(plan: Plan, status: SweepStatus, digest: str, protocol_id: str) -> str | None:
    """Annotate the artifact with the merged record of its cells under one protocol once every
    planned seed is done (and not already recorded); return the annotation id, or None."""
    from dcregistry.store import EVAL_KIND, get_store

    cells = [c for c in plan.cells if c.key.digest == digest and c.key.protocol_id == protocol_id]
    if not cells or any(status.states[c.key] != "done" for c in cells):
        return None
    merged = merge_cells([status.results[c.key] for c in cells])
    art = cells[0].artifact
    store = get_store(art.store).require("annotate", "--record")
    info = store.resolve(art.open_ref)
    data = merged.to_json() | {"sweep": SweepRef(plan.spec.name, plan.spec.hash).to_json()}
    for ann in store.annotations(info, EVAL_KIND):
        rec = ann.get("record") or {}
        if (
            (rec.get("protocol") or {}).get("id") == protocol_id
            and rec.get("seeds") == merged.seeds
            and rec.get("accuracies") == merged.accuracies
        ):
            return None  # recorded by an earlier run
    return store.annotate(info, EVAL_KIND, data)


@dataclass
class CondenseReport:
    """What the condense phase of one run did."""

    computed: int = 0
    done: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def run_condense_cells(
    plan: Plan,
    results: ResultsDir,
    executor: Executor,
    *,
    retry_failed: bool = False,
    data_root: str | None = None,
    progress: Callable[[int], Callable[[Any], None]] | None = None,
) -> CondenseReport:
    """Make the sets of the plan's condense cells that are not done (push them; record each)."""
    from .condense import CondenseOutcome, CondenseRecords, record_outcome, tasks_for

    report = CondenseReport()
    records = CondenseRecords(results.root)
    pairs = list(
        tasks_for(plan.condense, plan.store, records, executor.worker_device, data_root, retry_failed)
    )
    if not pairs:
        return report
    by_name = {t.name: c for c, t in pairs}
    tick = progress(len(pairs)) if progress else None
    sweep = SweepRef(plan.spec.name, plan.spec.hash)
    for task, outcome in executor.map([t for _, t in pairs]):
        assert isinstance(outcome, CondenseOutcome)
        rec = record_outcome(by_name[task.name], outcome, sweep, records)  # type: ignore[union-attr]
        report.computed += 1
        if rec.status == "done":
            report.done += 1
        else:
            report.failed += 1
            report.errors.append(f"{rec.name}: {rec.error}")
        if tick:
            tick(rec)
    return report


def condense_then_plan(
    plan: Plan,
    results: ResultsDir,
    executor: Executor,
    *,
    retry_failed: bool = False,
    data_root: str | None = None,
    progress: Callable[[int], Callable[[Any], None]] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Plan, CondenseReport | None]:
    """Make the plan's condense cells that are to run (under the results lock), then plan again
    with their sets; ``(plan, None)`` when there is nothing to make. What ``harness sweep`` and
    ``harness table run`` do before :func:`run_sweep`."""
    to_make = sum(c.state == "left" or (retry_failed and c.state == "failed") for c in plan.condense)
    if not to_make:
        return plan, None
    if log:
        log(f"{plan.spec.name}: condensing {to_make} set(s) first ({executor.describe()})")
    with results.locked():
        made = run_condense_cells(
            plan, results, executor, retry_failed=retry_failed, data_root=data_root, progress=progress
        )
    from .plan import plan_sweep

    return plan_sweep(plan.spec, plan.store, results.root), made  # with the new sets


def run_sweep(
    plan: Plan,
    results: ResultsDir,
    executor: Executor,
    *,
    retry_failed: bool = False,
    record: bool = False,
    data_root: str | None = None,
    strategy: str = "sequential",
    progress: ProgressFactory | None = None,
    warn: Callable[[str], None] | None = None,
) -> SweepReport:
    """Run every cell of ``plan`` that ``results`` lacks on ``executor``; see the module doc."""
    if record:
        check_recordable(plan)
    report = SweepReport(results.root, len(plan.cells))
    with results.locked():
        report.stale_temp_removed = results.remove_stale_temp_files()
        status = sweep_status(plan, results)
        for bad in status.bad:
            results.make_room(bad)
            if warn:
                warn(f"{bad.problem}; recomputing it")
        report.bad_recomputed = len(status.bad)
        report.skipped_done = status.count("done")
        report.skipped_failed = 0 if retry_failed else status.count("failed")
        todo = status.todo(retry_failed)
        by_key = {c.key: c for c in todo}
        tasks = [
            CellTask(c.key, c.artifact, c.protocol, executor.worker_device, data_root, strategy) for c in todo
        ]
        groups = sorted({(c.key.digest, c.key.protocol_id) for c in plan.cells})
        if record:  # groups a previous run completed
            for digest, pid in groups:
                if (ann := record_group(plan, status, digest, pid)) is not None:
                    report.recorded.append(ann)
        tick = progress(len(tasks)) if progress else None
        for task, outcome in executor.map(tasks):
            assert isinstance(task, CellTask) and isinstance(outcome, CellOutcome)
            cell = by_key[task.key]
            result = cell_result(plan, cell, outcome)
            CellResult.from_json(result.to_json(), "new cell")  # what is written reads back
            results.write(result)
            report.computed += 1
            status.states[cell.key] = result.status
            status.results[cell.key] = result
            if result.status == "done":
                report.done += 1
                if record and (ann := record_group(plan, status, cell.key.digest, cell.key.protocol_id)):
                    report.recorded.append(ann)
            else:
                report.failed += 1
            if tick:
                tick(result, outcome)
    return report
