"""Sweeps: a TOML spec of artifacts x protocols x seeds, expanded into cells keyed by (artifact
digest, protocol id, seed), run on an executor, one result file per cell, resumable after SIGKILL.

Modules, one concern each: :mod:`.spec` (the spec, validated and hashed), :mod:`.plan`
(resolution to digests, cells, done/failed/left, estimates), :mod:`.results` (the results
directory: layout, atomic writes, validated reads), :mod:`.worker` (what runs a cell, anywhere),
:mod:`.executor` (the executor interface and registry), :mod:`.local` (local worker processes),
:mod:`.driver` (the run loop; the only writer), :mod:`.groups` (results as data: filters, mean ±
std per artifact x protocol, Parquet/JSONL export), :mod:`.cli` (``harness sweep``,
``harness results``).
"""

from __future__ import annotations

from .driver import SweepReport, run_sweep
from .executor import EXECUTORS, Executor, ExecutorOptions, make_executor
from .plan import Cell, Plan, PlannedArtifact, SweepStatus, plan_sweep, sweep_status
from .results import CellKey, CellResult, ResultsDir, merge_cells
from .spec import SweepSpec, SweepSpecError, load_spec, parse_spec
from .worker import CellOutcome, CellTask, run_cell

__all__ = [
    "SweepSpec",
    "SweepSpecError",
    "load_spec",
    "parse_spec",
    "Plan",
    "Cell",
    "PlannedArtifact",
    "plan_sweep",
    "SweepStatus",
    "sweep_status",
    "CellKey",
    "CellResult",
    "ResultsDir",
    "merge_cells",
    "CellTask",
    "CellOutcome",
    "run_cell",
    "Executor",
    "ExecutorOptions",
    "EXECUTORS",
    "make_executor",
    "SweepReport",
    "run_sweep",
]
