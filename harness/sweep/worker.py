"""What runs a cell, wherever it runs: :class:`CellTask` in, :class:`CellOutcome` out.

Every executor ships a task (plain, picklable data: the artifact *by reference*, never its
tensors) to :func:`run_cell` in some process and hands the outcome back to the driver, which
alone writes results. A worker process keeps the artifacts it opened (verified once) across
cells; the datasets' decoded arrays are cached by :mod:`harness.data` itself (digits in memory,
the others on disk). :func:`init_worker` prepares a worker process: SIGINT ignored (the driver
stops the sweep), one intra-op thread, a GPU pinned through ``CUDA_VISIBLE_DEVICES``, and an
exit soon after the driver dies.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, overload

from dcregistry.errors import UserError
from dcregistry.records import EvalRecord
from harness.engine.lifetime import exit_with_parent
from harness.protocols import Protocol

from .env import environment
from .plan import PlannedArtifact
from .results import CellKey, Environment, one_line

if TYPE_CHECKING:
    from dcregistry.artifact import Artifact

    from .condense import CondenseOutcome, CondenseTask

__all__ = [
    "CellTask",
    "CellOutcome",
    "Task",
    "Outcome",
    "run_cell",
    "init_worker",
    "environment",
    "cell_protocol",
]

#: Artifacts a worker keeps open (least recently used dropped first).
ARTIFACT_CACHE_SIZE = 16
_ARTIFACTS: OrderedDict[tuple[str, str | None], Artifact] = OrderedDict()


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs for one cell, by reference (picklable, small)."""

    key: CellKey
    artifact: PlannedArtifact
    protocol: Protocol
    device: str = "cpu"
    data_root: str | None = None
    strategy: str = "sequential"


@dataclass(frozen=True)
class CellOutcome:
    """A cell's result as the worker returns it: a record, or a one-line error."""

    key: CellKey
    env: Environment
    wall_time_s: float
    record: EvalRecord | None = None
    error: str | None = None
    worker: str = ""  # host:pid of the process that ran it (for progress displays)

    @property
    def ok(self) -> bool:
        return self.record is not None


_WORKER = f"{platform.node()}:{os.getpid()}"


def cell_protocol(protocol: Protocol, seed: int) -> Protocol:
    """The protocol a cell runs: ``protocol`` restricted to the single run of ``seed``."""
    return protocol.with_overrides(seed=seed, runs=1)


def init_worker(threads: int = 1, gpu_slots: Any = None, parent_pid: int | None = None) -> None:
    """Initializer of a worker process (before any cell): see the module docstring; the worker
    exits when the driver ``parent_pid`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    if gpu_slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_slots.get())
    import torch

    from harness.engine.allocator import tune_allocator

    tune_allocator()
    torch.set_num_threads(threads)


def _open(art: PlannedArtifact) -> Artifact:
    """The artifact, opened (and verified) once per process; its digest must be the planned one."""
    key = (art.open_ref, art.store)
    if key in _ARTIFACTS:
        _ARTIFACTS.move_to_end(key)
        return _ARTIFACTS[key]
    from dcregistry.artifact import open_artifact
    from dcregistry.store import get_store

    opened = open_artifact(art.open_ref) if not art.in_store else get_store(art.store).open(art.open_ref)
    if opened.digest != art.digest:
        raise UserError(
            f"{art.ref} is now {opened.digest[:19]}, not the planned {art.digest[:19]}: the directory "
            "changed since the sweep was planned; rerun to plan it again"
        )
    _ARTIFACTS[key] = opened
    while len(_ARTIFACTS) > ARTIFACT_CACHE_SIZE:
        _ARTIFACTS.popitem(last=False)
    return opened


#: What executors run and return: evaluation cells, and condense cells (:mod:`.condense`).
Task = Union[CellTask, "CondenseTask"]
Outcome = Union[CellOutcome, "CondenseOutcome"]


@overload
def run_cell(task: CellTask) -> CellOutcome: ...
@overload
def run_cell(task: CondenseTask) -> CondenseOutcome: ...
def run_cell(task: Task) -> Outcome:
    """Evaluate one cell: the artifact under the cell's protocol for its one seed.

    The record's protocol is the cell's (``task.protocol``), its seeds ``[seed]``; the accuracy
    is the one ``harness eval`` reports for that seed. An error becomes the outcome's one-line
    ``error`` (KeyboardInterrupt and SystemExit propagate)."""
    if not isinstance(task, CellTask):  # a condense cell (.condense): the same workers make the sets
        return task.run()
    from harness.engine.evaluate import evaluate

    t0 = time.perf_counter()
    env = environment(task.device)
    try:
        artifact = _open(task.artifact)
        record = evaluate(
            artifact,
            cell_protocol(task.protocol, task.key.seed),
            ref=task.artifact.ref,
            device=task.device,
            data_root=task.data_root,
            strategy=task.strategy,
        )
        record = dataclasses.replace(record, protocol=task.protocol.to_record())
        return CellOutcome(task.key, env, round(time.perf_counter() - t0, 3), record=record, worker=_WORKER)
    except UserError as exc:
        error = str(exc)
    except Exception as exc:  # a cell's failure is recorded; the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    return CellOutcome(
        task.key, env, round(time.perf_counter() - t0, 3), error=one_line(error), worker=_WORKER
    )
