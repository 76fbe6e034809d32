"""The executor interface: where cells run. One file per engine -- ``local.py`` (worker
processes), ``ray_executor.py`` (Ray tasks), ``slurm.py`` (Slurm job arrays through submitit) --
registered in :data:`EXECUTORS`.

An executor takes :class:`~.worker.CellTask` objects and returns, per task, a
``concurrent.futures.Future`` of its :class:`~.worker.CellOutcome` (:meth:`Executor.submit`);
:meth:`Executor.map` submits many and yields ``(task, outcome)`` as they finish. What an engine
must keep:

- run :func:`~.worker.run_cell` on the task and nothing else (the same function everywhere, so
  every engine gives the same per-seed numbers), in a process prepared by
  :func:`~.worker.init_worker` (one thread per CPU worker, one GPU per GPU worker);
- ship tasks, which hold artifacts *by reference* (the worker opens them from their store), and
  never write results: the driver writes every cell file;
- a future that raises (not an outcome carrying an ``error``) means the engine lost the cell
  (a worker died); :meth:`map` reports those as :class:`WorkerLostError` after yielding every
  outcome that did arrive, and the cells stay "left" for the next run;
- :meth:`shutdown` with ``cancel=True`` (Ctrl-C) drops queued tasks and stops running ones.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from types import TracebackType

from dcregistry.errors import UserError
from harness.registry import Registry

from .worker import Outcome, Task

__all__ = [
    "Executor",
    "ExecutorOptions",
    "SlurmOptions",
    "ExecutorError",
    "WorkerLostError",
    "EXECUTORS",
    "make_executor",
]


class ExecutorError(UserError):
    """An executor cannot be set up as asked (workers, devices) or lost its workers."""


class WorkerLostError(ExecutorError):
    """Worker processes died with cells in flight; finished cells are saved, rerun to resume."""


@dataclass(frozen=True)
class ExecutorOptions:
    """What ``harness sweep`` passes every executor (engines ignore what does not apply)."""

    workers: int | None = None  # CPU workers (default: the usable cores)
    per_gpu: int = 1  # workers per GPU on CUDA
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    ray_address: str | None = None  # ray: a cluster (default $RAY_ADDRESS, else a local instance)
    slurm: SlurmOptions | None = None  # slurm: partition, time, GPUs, log folder


@dataclass(frozen=True)
class SlurmOptions:
    """What ``--executor slurm`` submits with (submitit's parameters)."""

    folder: str  # submitit's job folder (logs, pickled tasks and results)
    partition: str | None = None
    time_min: int = 60  # per job
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    cells_per_job: int = 1  # cells one array task runs (process start paid once per job)
    cluster: str | None = None  # None: Slurm when sbatch is there; "local"/"debug": submitit's local modes


class Executor(abc.ABC):
    """Runs cell tasks; use as a context manager (``with make_executor(...) as ex``)."""

    #: The registry name.
    name: str = "?"
    #: How many cells run at once (for estimates and messages).
    workers: int = 1
    #: The device string tasks must carry for this executor's workers (e.g. ``cuda`` for a worker
    #: pinned to one GPU, where that GPU is device 0).
    worker_device: str = "cpu"

    @abc.abstractmethod
    def submit(self, task: Task) -> Future[Outcome]:
        """Start (or queue) one cell; the future's result is its outcome."""

    @abc.abstractmethod
    def shutdown(self, cancel: bool = False) -> None:
        """Release the workers; with ``cancel`` drop queued tasks and stop running ones."""

    def describe(self) -> str:
        """One line for the start of a sweep (engine, workers, device)."""
        return f"{self.name} executor, {self.workers} worker(s) on {self.worker_device}"

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome]]:
        """Submit every task; yield ``(task, outcome)`` in completion order; raise
        :class:`WorkerLostError` at the end when some futures failed."""
        futures = {self.submit(t): t for t in tasks}
        lost: list[tuple[Task, BaseException]] = []
        for fut in as_completed(futures):
            exc = fut.exception()
            if exc is not None:
                lost.append((futures[fut], exc))
                continue
            yield futures[fut], fut.result()
        if lost:
            task, exc = lost[0]
            raise WorkerLostError(
                f"{len(lost)} cell(s) lost by the {self.name} executor (first: {task.key}: "
                f"{type(exc).__name__}: {exc}); finished cells are saved, rerun to resume"
            )

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown(cancel=exc is not None)


#: Executor engines by name -> factory(ExecutorOptions); modules imported when first used.
EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry(
    "executor", lazy={"local": "local", "ray": "ray_executor", "slurm": "slurm"}, package="harness.sweep"
)


def make_executor(name: str, options: ExecutorOptions | None = None) -> Executor:
    """The executor ``name`` (see :data:`EXECUTORS`) set up with ``options``."""
    return EXECUTORS.get(name)(options or ExecutorOptions())
