"""The Ray executor (``--executor ray``): cells as Ray tasks on a cluster or a local instance.

``--ray-address`` (or ``$RAY_ADDRESS``) connects to a running cluster; without one, a local Ray
instance is started with ``--workers`` CPUs (default: the usable cores) and shut down at the end.
Where Ray is already initialised in this process (a notebook, the tests), that instance is used
and left running. Each cell is one task: ``num_cpus=1`` on CPU; on a cluster with GPUs and a
CUDA device asked for, ``num_gpus=1/per_gpu`` (fractional, so ``--per-gpu K`` packs K small
evaluations on one GPU; Ray sets ``CUDA_VISIBLE_DEVICES``). Tasks carry artifacts by reference
(a store path every node can read, a ``dcreg serve`` URL or the Hub): nothing goes through Ray's
object store but the small task and its outcome, and only the driver writes results. Ray
reuses worker processes, so a worker's opened artifacts and decoded datasets serve later cells.
Ray is the optional extra ``dcregistry[ray]``.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .executor import EXECUTORS, Executor, ExecutorError, ExecutorOptions
from .worker import Outcome, Task, run_cell

__all__ = ["RayExecutor", "TaskResources", "task_resources"]

_READY = False  # per Ray worker process: init done


@dataclass(frozen=True)
class TaskResources:
    """What one cell asks Ray for, and the device string its worker evaluates on."""

    num_cpus: float
    num_gpus: float
    device: str


def task_resources(options: ExecutorOptions, cluster_gpus: float) -> TaskResources:
    """Resources per cell for ``options`` on a cluster with ``cluster_gpus`` GPUs (logical ones
    count: Ray schedules by its resource table, which is what the tests exercise)."""
    if options.per_gpu < 1:
        raise ExecutorError("--per-gpu must be at least 1")
    wants_gpu = options.device.startswith("cuda") or options.device == "auto"
    if options.device.startswith("cuda") and cluster_gpus <= 0:
        raise ExecutorError(f"--device {options.device}: the Ray cluster has no GPUs; use --device cpu")
    if options.device.startswith("cuda:"):
        raise ExecutorError("--executor ray places cells on GPUs itself; give --device cuda, not cuda:N")
    if wants_gpu and cluster_gpus > 0:
        return TaskResources(num_cpus=1, num_gpus=1.0 / options.per_gpu, device="cuda")
    return TaskResources(num_cpus=1, num_gpus=0, device="cpu")


def _ray_cell(task: Task) -> Outcome:
    """A cell in a Ray worker process (prepared once per process, like a local worker)."""
    global _READY
    if not _READY:
        import torch

        from harness.engine.allocator import tune_allocator

        tune_allocator()
        torch.set_num_threads(1)
        _READY = True
    return run_cell(task)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray needs Ray: pip install 'dcregistry[ray]' (or pip install ray)"
        ) from None
    return ray


class RayExecutor(Executor):
    """Cells as Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, options: ExecutorOptions):
        ray = _import_ray()
        self._ray = ray
        self._owned = False
        address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            from harness.engine.strategies import cpu_workers

            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                workers = options.workers if options.workers is not None else cpu_workers()
                if workers < 1:
                    raise ExecutorError("--workers must be at least 1")
                kwargs["num_cpus"] = workers
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(
                    f"cannot start or reach Ray at {address or 'a local instance'}: {exc}"
                ) from None
            self._owned = True
        resources = ray.cluster_resources()
        self.resources = task_resources(options, float(resources.get("GPU", 0)))
        self.worker_device = self.resources.device
        if self.resources.num_gpus:
            self.workers = max(1, int(float(resources.get("GPU", 0)) / self.resources.num_gpus))
        else:
            self.workers = max(1, int(float(resources.get("CPU", 1))))
        self._remote = ray.remote(num_cpus=self.resources.num_cpus, num_gpus=self.resources.num_gpus)(
            _ray_cell
        )
        self._refs: list[Any] = []

    def describe(self) -> str:
        per = f"{self.resources.num_gpus:g} GPU" if self.resources.num_gpus else "1 CPU"
        return f"ray executor, {self.workers} cell(s) at once ({per} per cell, {self.worker_device})"

    def submit(self, task: Task) -> Future[Outcome]:
        ref = self._remote.remote(task)
        self._refs.append(ref)
        fut: Future[Outcome] = ref.future()
        return fut

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished or gone: nothing to stop
                    pass
        self._refs = []
        if self._owned:
            self._owned = False
            self._ray.shutdown()


EXECUTORS.register("ray", RayExecutor)
