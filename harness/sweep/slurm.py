"""The Slurm executor (``--executor slurm``): cells as a Slurm job array, through submitit.

The cells left are cut into chunks of ``--slurm-cells-per-job`` and submitted as one array
(``submitit.AutoExecutor.map_array``) with ``--slurm-partition``, ``--slurm-time`` (minutes per
job), ``--slurm-gpus`` and ``--slurm-cpus`` per job; ``--slurm-folder`` holds submitit's files
(pickled tasks, logs, results). A job runs its chunk with :func:`~.worker.run_cell`, one thread
on the CPU (the same numbers as a local worker), and returns the outcomes; the driver, here,
writes every result as jobs finish. A job that dies (preempted, out of time) loses its cells:
they are reported and stay "left" for the next run. ``--slurm-cluster local`` (or ``debug``) runs
the same jobs with submitit's local executor, without Slurm (what the tests use). submitit is
the optional extra ``dcregistry[slurm]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from .executor import EXECUTORS, Executor, ExecutorError, ExecutorOptions, WorkerLostError
from .worker import Outcome, Task, run_cell

__all__ = ["SlurmExecutor", "run_chunk"]


def run_chunk(tasks: list[Task]) -> list[Outcome]:
    """One array job: its cells, one after another, in a process prepared like a local worker."""
    import torch

    from harness.engine.allocator import tune_allocator

    tune_allocator()
    torch.set_num_threads(1)
    return [run_cell(t) for t in tasks]


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ExecutorError(
            "--executor slurm needs submitit: pip install 'dcregistry[slurm]' (or pip install submitit)"
        ) from None
    return submitit


class SlurmExecutor(Executor):
    """A Slurm job array per sweep run (see the module docstring)."""

    name = "slurm"

    def __init__(self, options: ExecutorOptions):
        submitit = _import_submitit()
        so = options.slurm
        if so is None:
            raise ExecutorError("--executor slurm needs its options (at least --slurm-folder)")
        if so.cells_per_job < 1 or so.time_min < 1 or so.cpus_per_job < 1 or so.gpus_per_job < 0:
            raise ExecutorError("--slurm-cells-per-job, --slurm-time and --slurm-cpus must be at least 1")
        if so.cluster not in (None, "slurm", "local", "debug"):
            raise ExecutorError(f"--slurm-cluster {so.cluster!r}: use slurm, local or debug")
        if options.device.startswith("cuda") and not so.gpus_per_job:
            raise ExecutorError(f"--device {options.device} with Slurm needs --slurm-gpus N (GPUs per job)")
        try:
            self._ex = submitit.AutoExecutor(folder=so.folder, cluster=so.cluster)
        except RuntimeError as exc:  # no sbatch on this machine
            raise ExecutorError(
                f"cannot submit to Slurm here ({exc}); use --slurm-cluster local to run the jobs locally"
            ) from None
        params: dict[str, Any] = {
            "timeout_min": so.time_min,
            "cpus_per_task": so.cpus_per_job,
            "name": "harness-sweep",
        }
        if so.gpus_per_job:
            params["gpus_per_node"] = so.gpus_per_job
        if so.partition:
            params["slurm_partition"] = so.partition
        self._ex.update_parameters(**params)
        self._options = so
        self.worker_device = "cuda" if so.gpus_per_job else "cpu"
        self.workers = 1 if so.cluster == "debug" else max(1, so.cells_per_job)
        self._jobs: list[Any] = []

    def describe(self) -> str:
        where = self._options.cluster or "slurm"
        part = f" partition {self._options.partition}," if self._options.partition else ""
        return (
            f"slurm executor ({where}),{part} {self._options.cells_per_job} cell(s) per array job "
            f"on {self.worker_device}, jobs in {self._options.folder}"
        )

    def submit(self, task: Task) -> Future[Outcome]:
        """One cell as its own job (``map`` submits arrays)."""
        job = self._ex.submit(run_chunk, [task])
        self._jobs.append(job)
        fut: Future[Outcome] = Future()
        try:
            fut.set_result(job.result()[0])
        except Exception as exc:  # the job died: the cell is lost, not failed
            fut.set_exception(exc)
        return fut

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome]]:
        from submitit.helpers import as_completed

        todo = list(tasks)
        if not todo:
            return
        k = self._options.cells_per_job
        chunks = [todo[i : i + k] for i in range(0, len(todo), k)]
        jobs = self._ex.map_array(run_chunk, chunks)
        self._jobs.extend(jobs)
        by_job = {job.job_id: chunk for job, chunk in zip(jobs, chunks, strict=True)}
        lost: list[tuple[Task, BaseException]] = []
        for job in as_completed(jobs):
            chunk = by_job[job.job_id]
            try:
                outcomes = job.result()
            except Exception as exc:  # preempted, out of time, killed: its cells stay left
                lost.extend((t, exc) for t in chunk)
                continue
            yield from zip(chunk, outcomes, strict=True)
        if lost:
            first, why = lost[0]
            reason = str(why).splitlines()[0] if str(why) else ""
            raise WorkerLostError(
                f"{len(lost)} cell(s) lost by Slurm jobs (first: {first.key}: {type(why).__name__}: "
                f"{reason}); finished cells are saved, rerun to resume"
            )

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for job in self._jobs:
                if not job.done():
                    try:
                        job.cancel(check=False)
                    except Exception:  # already gone: nothing to stop
                        pass
        self._jobs = []


EXECUTORS.register("slurm", SlurmExecutor)
