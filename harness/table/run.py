"""Running a table: condense each planned set (``condense()`` in a spawned process, for its own
peak memory), evaluate its cells one run at a time, resumably."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dcregistry.errors import UserError
from dcregistry.records import RecordError

from .files import _load, _now, _open_set, _read_json, _write_json, cell_path
from .plan import (
    SetPlan,
    TableConfig,
    TableError,
    _protocol,
    plan_sets,
    validate,
)
from .render import (
    _write_outputs,
    collect,
)
from .results import TableResults

if TYPE_CHECKING:
    from harness.methods.loop import CondenseSpec


def condense_spec(cfg: TableConfig, plan: SetPlan) -> CondenseSpec:
    """What condensing one planned set asks for (resumable: a killed run continues)."""
    from harness.methods.loop import CondenseSpec

    return CondenseSpec(
        dataset=cfg.dataset,
        method=plan.method,
        ipc=plan.ipc,
        out=cfg.out / "sets" / plan.name,
        seed=plan.seed,
        model=cfg.model,
        device=cfg.device,
        image_size=cfg.image_size or None,
        data_root=cfg.data_root,
        iterations=plan.iterations,
        checkpoint_every=max(1, plan.iterations // 10) if plan.iterations is not None else 0,
        options=dict(plan.options),
        overwrite=True,
        resume=True,
    )


def _condense(spec: CondenseSpec, quiet: bool) -> None:
    from harness.methods.loop import condense
    from harness.progress import condense_progress

    condense(spec, progress=condense_progress(quiet))


def _condense_child(spec: CondenseSpec, quiet: bool, errors: Any) -> None:
    """Entry point of the spawned process: tuned allocator as in ``harness``, error text sent back."""
    from harness.engine.allocator import tune_allocator

    tune_allocator()
    try:
        _condense(spec, quiet)
    except BaseException as exc:  # the parent raises it; the child only reports
        errors.put(f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc))
        raise SystemExit(1) from None


def condense_set(cfg: TableConfig, plan: SetPlan, quiet: bool = False) -> dict[str, Any]:
    """Condense one set into ``sets/NAME`` (resuming a killed run) and record how it ran.

    With ``cfg.isolate`` the set is condensed in a spawned process, so the peak memory recorded
    in its card is its own.
    """
    spec = condense_spec(cfg, plan)
    load_before, t0 = _load(), time.perf_counter()
    if cfg.isolate:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        errors = ctx.SimpleQueue()
        child = ctx.Process(target=_condense_child, args=(spec, quiet, errors), name=f"condense {plan.name}")
        child.start()
        child.join()
        if child.exitcode != 0:
            why = errors.get() if not errors.empty() else None
            raise RuntimeError(
                f"condensing {plan.name} failed (exit {child.exitcode})" + (f": {why}" if why else "")
            )
    else:
        _condense(spec, quiet)
    run = {
        "set": plan.name,
        "command": "harness " + " ".join(spec.command_line()),
        "isolated": cfg.isolate,
        "process_wall_s": round(time.perf_counter() - t0, 3),
        "loadavg_before": load_before,
        "loadavg_after": _load(),
        "cpu_count": os.cpu_count(),
        "finished_at": _now(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "host": platform.node(),
    }
    _write_json(cfg.out / "sets" / f"{plan.name}.run.json", run)
    return run


def evaluate_cells(
    cfg: TableConfig,
    plan: SetPlan,
    art,
    protocol_name: str,
    runs: list[int],
    tick: Callable[[int], object] | None = None,
) -> int:
    """Evaluate the given runs of one set under one protocol; one cell file per run."""
    from harness.engine.evaluate import evaluate_sets, prepare, protocol_aug_factory, resolve_device

    proto = _protocol(cfg, protocol_name)
    prepared = prepare(art, resolve_device(cfg.device), cfg.data_root)
    factory = protocol_aug_factory(
        proto, prepared.space, prepared.dsa_strategy, prepared.train.images.shape[-1]
    )
    done = 0
    for r in runs:
        t0, load = time.perf_counter(), _load()
        res = evaluate_sets(
            prepared.train,
            prepared.test,
            proto,
            factory,
            strategy=cfg.strategy,
            seeds=[proto.seed + r],
            tick=tick,
        )
        rr = res.results[0]
        _write_json(
            cell_path(cfg.out, plan.name, proto.id, r),
            {
                "method": plan.method,
                "ipc": plan.ipc,
                "set": plan.name,
                "set_seed": plan.seed,
                "set_digest": art.digest,
                "run": r,
                "eval_seed": proto.seed + r,
                "protocol": proto.id,
                "protocol_name": protocol_name,
                "epochs": proto.epochs,
                "accuracy": rr.accuracy,
                "final_train_loss": rr.final_train_loss,
                "clipped": res.clipped,
                "strategy": res.choice.strategy,
                "wall_s": round(time.perf_counter() - t0, 3),
                "loadavg_before": load,
                "finished_at": _now(),
                "host": platform.node(),
            },
        )
        done += 1
    return done


@dataclass
class RunStats:
    sets_condensed: int = 0
    cells_computed: int = 0
    missing: list[str] = field(default_factory=list)


def _pending_runs(cfg: TableConfig, plan: SetPlan, protocol_name: str) -> list[int]:
    proto_id = _protocol(cfg, protocol_name).id
    return [
        r
        for r in range(cfg.runs)
        if r % cfg.sets == plan.seed and not cell_path(cfg.out, plan.name, proto_id, r).is_file()
    ]


def run_table(
    cfg: TableConfig,
    quiet: bool = False,
    render_only: bool = False,
    log: Callable[[str], None] = lambda s: None,
) -> RunStats:
    """Condense and evaluate whatever is missing, then write the table files (``render_only``:
    just write them from what is stored)."""
    from filelock import FileLock, Timeout
    from tqdm.auto import tqdm

    validate(cfg)
    if render_only:  # from the stored sets and cells only (safe next to a running table)
        if not cfg.out.is_dir():
            raise TableError(f"{cfg.out} does not exist: nothing to render")
        path = cfg.out / "results.json"
        if path.exists() and not collect(cfg).measured_cells:
            # results.json without its sets/ and cells/ (e.g. only the rendered files were kept):
            # rendering would replace the stored table with an empty one
            doc = _read_json(path)
            try:
                stored = TableResults.from_json(doc) if doc is not None else None
            except RecordError as exc:
                raise TableError(
                    f"{path} is not a results document ({exc}) and nothing under sets/ and cells/ "
                    "matches these settings; nothing was rewritten (delete it to render anew)"
                ) from None
            if stored is None:
                raise TableError(
                    f"{path} cannot be read as a results document and nothing under sets/ "
                    "and cells/ matches these settings; nothing was rewritten"
                )
            if stored.measured_cells:
                raise TableError(
                    f"{cfg.out} has a results.json with {stored.measured_cells} measured cells "
                    "but none of them under sets/ and cells/ for these settings; nothing was "
                    "rewritten"
                )
        return RunStats(missing=_write_outputs(cfg))
    cfg.out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cfg.out / ".table.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TableError(
            f"another table run is using {cfg.out}; wait for it or use another output directory"
        ) from None
    stats = RunStats()
    try:
        plans = plan_sets(cfg)
        todo = [(p, pr) for p in plans for pr in cfg.protocols]
        total_cells = sum(len(_pending_runs(cfg, p, pr)) for p, pr in todo)
        bar = tqdm(total=total_cells, desc="table cells", unit="cell", disable=quiet, dynamic_ncols=True)
        for plan in plans:
            pending = {pr: _pending_runs(cfg, plan, pr) for pr in cfg.protocols}
            set_dir = cfg.out / "sets" / plan.name
            art = _open_set(set_dir)
            if art is None and any(pending.values()):
                bar.set_postfix_str(f"condensing {plan.name}")
                log(f"condensing {plan.name}")
                condense_set(cfg, plan, quiet)
                stats.sets_condensed += 1
                art = _open_set(set_dir)
                if art is None:
                    raise RuntimeError(f"condensation of {plan.name} left no readable artifact")
            for pr, runs in pending.items():
                if not runs:
                    continue
                bar.set_postfix_str(f"{plan.method} ipc {plan.ipc} {pr}")
                epochs = _protocol(cfg, pr).epochs + 1
                with tqdm(
                    total=len(runs) * epochs,
                    desc=f"{plan.name} {pr}",
                    unit="ep",
                    disable=quiet,
                    leave=False,
                    dynamic_ncols=True,
                ) as ep_bar:
                    n = evaluate_cells(cfg, plan, art, pr, runs, tick=ep_bar.update)
                stats.cells_computed += n
                bar.update(n)
            _write_outputs(cfg)  # a partial table after every set
        bar.close()
        stats.missing = _write_outputs(cfg)
    finally:
        lock.release()
    return stats
