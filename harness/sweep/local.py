"""The local executor: worker processes on this machine (``--executor local``, the default).

CPU: ``--workers N`` processes (default: the usable cores), one intra-op thread each. CUDA: one
process per GPU (``--per-gpu K``: K per GPU), each pinned to its GPU with
``CUDA_VISIBLE_DEVICES``. Workers are spawned once (spawn context, :func:`~.worker.init_worker`)
and reused for every cell, so imports, artifact opening and dataset decoding are paid once per
worker. One CPU worker runs the cells in this process (same single thread, same numbers).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .executor import EXECUTORS, Executor, ExecutorError, ExecutorOptions
from .worker import Outcome, Task, init_worker, run_cell

__all__ = ["LocalExecutor"]


def _gpus(device: str) -> list[int]:
    """The GPU indices ``device`` asks for ([] for the CPU)."""
    if device == "cpu":
        return []
    import torch

    if not torch.cuda.is_available():
        if device == "auto":
            return []
        raise ExecutorError(f"--device {device}: torch sees no CUDA device; use --device cpu")
    count = torch.cuda.device_count()
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if index >= count:
            raise ExecutorError(f"--device {device}: there are only {count} CUDA device(s)")
        return [index]
    return list(range(count))


class LocalExecutor(Executor):
    """Worker processes on this machine (see the module docstring)."""

    name = "local"

    def __init__(self, options: ExecutorOptions):
        from harness.engine.strategies import cpu_workers

        if options.per_gpu < 1:
            raise ExecutorError("--per-gpu must be at least 1")
        gpus = _gpus(options.device)
        self._threads: int | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._slots: Any = None
        if gpus:
            if options.workers is not None:
                raise ExecutorError("--workers is for CPU sweeps; on CUDA give --per-gpu K (workers per GPU)")
            self.workers = len(gpus) * options.per_gpu
            self.worker_device = "cuda"  # each worker sees its one GPU as device 0
            ctx = multiprocessing.get_context("spawn")
            self._slots = ctx.Queue()
            for g in gpus:
                for _ in range(options.per_gpu):
                    self._slots.put(str(g))
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=init_worker, initargs=(1, self._slots, os.getpid())
            )
            self._gpus = gpus
            return
        workers = options.workers if options.workers is not None else cpu_workers()
        if workers < 1:
            raise ExecutorError("--workers must be at least 1")
        self.workers = workers
        self.worker_device = "cpu"
        self._gpus = []
        if workers == 1:  # in this process, as a worker would run it: one thread
            import torch

            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)
        else:
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(1, None, os.getpid()),
            )

    def describe(self) -> str:
        if self._gpus:
            return f"local executor, {self.workers} worker(s) on GPU(s) {','.join(map(str, self._gpus))}"
        where = "in this process" if self._pool is None else "worker processes"
        return f"local executor, {self.workers} CPU worker(s) ({where}, 1 thread each)"

    def submit(self, task: Task) -> Future[Outcome]:
        if self._pool is not None:
            return self._pool.submit(run_cell, task)
        fut: Future[Outcome] = Future()
        fut.set_result(run_cell(task))  # KeyboardInterrupt propagates to the driver
        return fut

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome]]:
        if self._pool is not None:
            yield from super().map(tasks)
            return
        for task in tasks:  # in process: one at a time, so Ctrl-C stops between or inside cells
            yield task, self.submit(task).result()

    def shutdown(self, cancel: bool = False) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if cancel:
                # stop running cells too: a worker ignores SIGINT and would finish its cell first
                procs = list(getattr(pool, "_processes", {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                for p in procs:
                    p.join(timeout=10)
            else:
                pool.shutdown(wait=True)
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
            self._threads = None


EXECUTORS.register("local", LocalExecutor)
