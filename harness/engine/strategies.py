"""How the R seeds of a protocol are run: sequentially, as a vmap ensemble, or in processes.

``auto`` measures the candidates on the actual data for a few training steps and picks the
fastest; every strategy uses the same seed-derived init, shuffles and augmentation draws, so they
agree per seed up to float reassociation. The first choice for a setup is remembered
(:mod:`.autotune`), so rerunning the same command reproduces its numbers exactly.

Each strategy is a :class:`Strategy` entry of the :data:`STRATEGIES` registry: how to measure it
(seconds per step of all runs, or None where it does not apply) and how to run the seeds.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from harness.augment import Augmentation
from harness.protocols import Protocol
from harness.registry import Registry

from . import autotune
from .ensemble import supports_ensemble, train_ensemble
from .lifetime import exit_with_parent
from .trainer import RunResult, TestSet, TrainSet, build_model, compiled, loss_fn, make_optimizer, train_one

#: Estimated eager time (s) above which compiling is worth measuring: a cold torch.compile of
#: a ConvNet costs ~35 s on 2 CPU cores (seconds once inductor's disk cache is warm).
COMPILE_WORTH_S = 120.0
AugFactory = Callable[[], Augmentation]


@dataclass
class Choice:
    """The strategy picked and the per-step seconds measured for each candidate."""

    strategy: str
    measured: dict[str, float]
    reason: str


def cpu_workers() -> int:
    """Usable CPU cores for worker processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _time_steps(step: Callable[[], None], steps: int = 3) -> float:
    step()  # warm-up: allocator, kernel selection
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def _sequential_step_time(
    protocol: Protocol, train: TrainSet, aug: Augmentation, compile: bool = False
) -> float:
    model = build_model(protocol, train, 0, train.images.device)
    forward = compiled(model) if compile else model
    opt = make_optimizer(protocol, model.parameters(), protocol.lr)
    crit = loss_fn(protocol, train.soft)
    x, y = train.images[: protocol.batch_size], train.targets[: protocol.batch_size]
    g = torch.Generator().manual_seed(0)

    def step():
        loss = crit(forward(aug(x, g)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if train.images.is_cuda:
            torch.cuda.synchronize()

    return _time_steps(step)


def _vmap_step_time(protocol: Protocol, train: TrainSet, aug: Augmentation, r: int) -> float:
    probe = dataclasses.replace(protocol, epochs=0, runs=r)
    tiny = TrainSet(
        train.images[: protocol.batch_size], train.targets[: protocol.batch_size], train.num_classes, train.lr
    )
    empty = TestSet(train.images[:0], torch.zeros(0, dtype=torch.long, device=train.images.device))
    t0 = time.perf_counter()
    train_ensemble(probe, tiny, empty, aug, list(range(r)))  # 1 epoch = 1 step, plus set-up
    t1 = time.perf_counter()
    train_ensemble(probe, tiny, empty, aug, list(range(r)))
    return min(time.perf_counter() - t1, t1 - t0)


def _worker_step_time(protocol: Protocol, train: TrainSet, aug_factory: AugFactory) -> float:
    torch.set_num_threads(1)
    return _sequential_step_time(protocol, train, aug_factory())


def _processes_step_time(protocol: Protocol, train: TrainSet, aug_factory: AugFactory, workers: int) -> float:
    ctx = torch.multiprocessing.get_context("spawn")
    cpu_train = TrainSet(train.images.cpu(), train.targets.cpu(), train.num_classes, train.lr)
    with ctx.Pool(workers, initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        times = pool.starmap(_worker_step_time, [(protocol, cpu_train, aug_factory)] * workers)
    return max(times)


@dataclass(frozen=True)
class Probe:
    """What a strategy's measurement may look at."""

    protocol: Protocol
    train: TrainSet
    aug_factory: AugFactory
    runs: int
    steps_per_run: int
    sequential_s: float  # the sequential estimate (seconds per step of all runs)


Runner = Callable[
    [Protocol, TrainSet, TestSet, AugFactory, list[int], Callable[[int], object] | None],
    tuple[list[RunResult], bool],
]


@dataclass(frozen=True)
class Strategy:
    """How to run R seeds: ``measure(probe)`` -> seconds per step of all runs (None: not a
    candidate here), ``run(protocol, train, test, aug_factory, seeds, on_progress)``."""

    description: str
    measure: Callable[[Probe], float | None]
    run: Runner


STRATEGIES: Registry[Strategy] = Registry("strategy")


def strategy_names() -> list[str]:
    """The registered strategies (``sequential`` is always first: it is the reference)."""
    return ["sequential"] + [n for n in STRATEGIES.names() if n != "sequential"]


def choose_strategy(
    protocol: Protocol, train: TrainSet, aug_factory: AugFactory, runs: int, forced: str = "auto"
) -> Choice:
    """Pick the fastest strategy for this device and data by measuring a few steps of each."""
    if forced != "auto":
        STRATEGIES.get(forced)  # UnknownNameError listing the strategies
        return Choice(forced.lower(), {}, "forced by --strategy")
    key = _setup_key(protocol, train, runs)
    known = autotune.recall(key)
    if known and known["strategy"] in STRATEGIES:
        return Choice(
            known["strategy"],
            known.get("measured", {}),
            f"measured on first use, remembered in {autotune.cache_dir()}",
        )
    choice = _measure(protocol, train, aug_factory, runs)
    autotune.remember(key, choice.strategy, choice.measured)
    return choice


def _setup_key(protocol: Protocol, train: TrainSet, runs: int) -> str:
    dev = train.images.device
    where = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"{platform.machine()}:{torch.get_num_threads()}threads:{cpu_workers()}cores"
    )
    return autotune.setup_key(
        device=where,
        torch=torch.__version__,
        protocol=protocol.id,
        shape=list(train.images.shape),
        dtype=str(train.images.dtype),
        classes=train.num_classes,
        soft=train.soft,
        runs=runs,
    )


def _measure(protocol: Protocol, train: TrainSet, aug_factory: AugFactory, runs: int) -> Choice:
    steps_per_run = (protocol.epochs + 1) * math.ceil(len(train.images) / protocol.batch_size)
    seq = _sequential_step_time(protocol, train, aug_factory()) * runs
    probe = Probe(protocol, train, aug_factory, runs, steps_per_run, seq)
    measured = {"sequential": seq}
    for name in strategy_names()[1:]:
        t = STRATEGIES.get(name).measure(probe)
        if t is not None:
            measured[name] = t
    best = min(measured, key=measured.__getitem__)
    return Choice(best, measured, "fastest measured (seconds per step of all runs)")


def run_seeds(
    protocol: Protocol,
    train: TrainSet,
    test: TestSet,
    aug_factory: AugFactory,
    seeds: list[int],
    strategy: str,
    on_progress: Callable[[int], object] | None = None,
) -> tuple[list[RunResult], bool]:
    """Run every seed with ``strategy``; returns per-seed results (seed order) and a clip flag.

    ``on_progress(n)`` is called with the number of finished epochs (summed over runs).
    """
    return STRATEGIES.get(strategy).run(protocol, train, test, aug_factory, seeds, on_progress)


# --- the entries ----------------------------------------------------------------------------


def _run_chunk(
    protocol: Protocol, train: TrainSet, test: TestSet, aug_factory: AugFactory, seeds: list[int]
) -> tuple[list[RunResult], bool]:
    """A worker process's share of the seeds (module level: spawned workers import it)."""
    torch.set_num_threads(1)
    aug = aug_factory()
    results = [train_one(protocol, train, test, aug, s) for s in seeds]
    return results, aug.clipped


def _run_sequential(compile: bool) -> Runner:
    def run(protocol, train, test, aug_factory, seeds, on_progress):
        tick = (lambda ep: on_progress(1)) if on_progress else None
        aug = aug_factory()
        results = [train_one(protocol, train, test, aug, s, on_epoch=tick, compile=compile) for s in seeds]
        return results, aug.clipped

    return run


def _measure_compiled(p: Probe) -> float | None:
    if p.sequential_s * p.steps_per_run <= COMPILE_WORTH_S:
        return None
    # The probe's compilation is not wasted: later model instances reuse its graphs.
    protocol, train = p.protocol, p.train
    n = len(train.images)
    full, last = protocol.batch_size, n % protocol.batch_size
    t = _sequential_step_time(protocol, train, p.aug_factory(), True) * p.runs
    if last and n > full:  # a second batch shape: compile it now too
        tail = TrainSet(train.images[:last], train.targets[:last], train.num_classes, train.lr)
        _sequential_step_time(protocol, tail, p.aug_factory(), True)
    return t


def _measure_vmap(p: Probe) -> float | None:
    probe_model = build_model(p.protocol, p.train, 0, torch.device("meta"))
    if p.runs < 2 or not supports_ensemble(probe_model):
        return None
    return _vmap_step_time(p.protocol, p.train, p.aug_factory(), p.runs)


def _run_vmap(protocol, train, test, aug_factory, seeds, on_progress):
    aug = aug_factory()
    n = len(seeds)
    results = train_ensemble(
        protocol, train, test, aug, seeds, on_epoch=(lambda ep: on_progress(n)) if on_progress else None
    )
    return results, aug.clipped


def _measure_processes(p: Probe) -> float | None:
    workers = min(cpu_workers(), p.runs)
    # Spawning workers costs seconds (each imports torch): only worth measuring for long runs.
    if p.train.images.is_cuda or workers < 2 or p.sequential_s * p.steps_per_run <= 60:
        return None
    per_step = _processes_step_time(p.protocol, p.train, p.aug_factory, workers)
    return per_step * math.ceil(p.runs / workers)


def _run_processes(protocol, train, test, aug_factory, seeds, on_progress):
    workers = min(cpu_workers(), len(seeds))
    chunks = [seeds[i::workers] for i in range(workers)]
    ctx = torch.multiprocessing.get_context("spawn")
    cpu = lambda t: t.cpu()  # noqa: E731
    tr = TrainSet(cpu(train.images), cpu(train.targets), train.num_classes, train.lr)
    te = TestSet(cpu(test.images), cpu(test.labels))
    with ctx.Pool(workers, initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        pending = [pool.apply_async(_run_chunk, (protocol, tr, te, aug_factory, c)) for c in chunks]
        outs = []
        for p, chunk in zip(pending, chunks, strict=True):
            outs.append(p.get())
            if on_progress:
                on_progress(len(chunk) * (protocol.epochs + 1))
    by_seed = {r.seed: r for res, _ in outs for r in res}
    return [by_seed[s] for s in seeds], any(c for _, c in outs)


STRATEGIES.register(
    "sequential",
    Strategy("one network after another (the reference)", lambda p: p.sequential_s, _run_sequential(False)),
)
STRATEGIES.register(
    "compiled",
    Strategy(
        "one after another through torch.compile (measured only for long runs)",
        _measure_compiled,
        _run_sequential(True),
    ),
)
STRATEGIES.register(
    "vmap", Strategy("all runs as one vectorized ensemble (torch.func)", _measure_vmap, _run_vmap)
)
STRATEGIES.register(
    "processes",
    Strategy(
        "runs split over CPU worker processes (measured only for long CPU runs)",
        _measure_processes,
        _run_processes,
    ),
)


def augmentation_factory(name: str, **kwargs) -> AugFactory:
    """A picklable zero-argument factory for an augmentation (worker processes rebuild it)."""
    from harness.augment import create_augmentation

    return partial(create_augmentation, name, **kwargs)
