"""``harness sweep SPEC`` / ``harness sweep status SPEC`` and ``harness results ls|show|export DIR``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import click

from dcregistry.cli.common import emit_json, progress_disabled
from dcregistry.errors import UserError
from harness.cli_options import data_root_option, device_option, json_option, quiet_option
from harness.cli_options import store_option as _store_option

from .executor import EXECUTORS

__all__ = ["sweep_group", "results_group", "SweepIncompleteError"]


class SweepIncompleteError(UserError):
    """A sweep ended with failed cells (their files say why); exit 1."""


class _DefaultRun(click.Group):
    """``harness sweep SPEC ...`` means ``harness sweep run SPEC ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _results_dir(spec_name: str, results: str | None) -> Path:
    return Path(results) if results else Path("sweep-results") / spec_name


results_option = click.option(
    "--results",
    "-o",
    "results",
    type=click.Path(file_okay=False),
    default=None,
    help="Results directory (default: sweep-results/<spec name>); reruns resume into it.",
)
store_option = _store_option(help="Store for the spec's artifacts (overrides its store).")


@click.group("sweep", cls=_DefaultRun)
def sweep_group() -> None:
    """Evaluate artifacts x protocols x seeds from a TOML spec, one result file per cell (resumable).

    `harness sweep SPEC.toml` runs it (same as `harness sweep run SPEC.toml`); `harness sweep
    status SPEC.toml` shows what is done.
    """


def engine_options(f: Any) -> Any:
    """The Ray and Slurm executors' options (ignored by the local one)."""
    for opt in reversed(
        [
            click.option(
                "--ray-address",
                envvar="RAY_ADDRESS",
                default=None,
                help="ray: the cluster to connect to (default $RAY_ADDRESS, else a local instance).",
            ),
            click.option("--slurm-partition", default=None, help="slurm: the partition to submit to."),
            click.option(
                "--slurm-time",
                type=click.IntRange(min=1),
                default=60,
                show_default=True,
                help="slurm: minutes per job.",
            ),
            click.option(
                "--slurm-gpus",
                type=click.IntRange(min=0),
                default=0,
                show_default=True,
                help="slurm: GPUs per job.",
            ),
            click.option(
                "--slurm-cpus",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="slurm: CPUs per job.",
            ),
            click.option(
                "--slurm-cells-per-job",
                type=click.IntRange(min=1),
                default=4,
                show_default=True,
                help="slurm: cells one array job runs (its process start is paid once).",
            ),
            click.option(
                "--slurm-folder",
                type=click.Path(file_okay=False),
                default=None,
                help="slurm: submitit's job folder (default: RESULTS.slurm beside the results).",
            ),
            click.option(
                "--slurm-cluster",
                type=click.Choice(["slurm", "local", "debug"]),
                default=None,
                help="slurm: 'local' runs the jobs here through submitit, without Slurm.",
            ),
        ]
    ):
        f = opt(f)
    return f


def placement_options(f: Any) -> Any:
    """Where and how cells run: ``--executor``, ``--workers``, ``--per-gpu``, ``--strategy``
    (``harness sweep`` and ``harness table run``)."""
    for opt in reversed(
        [
            click.option(
                "--executor",
                default="local",
                show_default=True,
                type=click.Choice(EXECUTORS.names()),
                help="Where cells run.",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="CPU worker processes (default: the cores).",
            ),
            click.option(
                "--per-gpu",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Workers per GPU on CUDA.",
            ),
            click.option(
                "--strategy",
                default="sequential",
                show_default=True,
                help="How a cell's run is executed (`harness strategies`); a cell is one seed.",
            ),
        ]
    ):
        f = opt(f)
    return f


def executor_options(
    workers: int | None, per_gpu: int, device: str, results_root: Path, engine: dict[str, Any]
) -> Any:
    """The :class:`~.executor.ExecutorOptions` of the command line."""
    from .executor import ExecutorOptions, SlurmOptions

    slurm = SlurmOptions(
        folder=str(engine["slurm_folder"] or f"{results_root}.slurm"),
        partition=engine["slurm_partition"],
        time_min=engine["slurm_time"],
        gpus_per_job=engine["slurm_gpus"],
        cpus_per_job=engine["slurm_cpus"],
        cells_per_job=engine["slurm_cells_per_job"],
        cluster=engine["slurm_cluster"],
    )
    return ExecutorOptions(
        workers=workers, per_gpu=per_gpu, device=device, ray_address=engine["ray_address"], slurm=slurm
    )


@sweep_group.command("run")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@results_option
@click.option(
    "--dry-run", is_flag=True, help="Plan only: counts per axis, cells done/failed/left, an estimate."
)
@placement_options
@device_option
@data_root_option
@click.option("--retry-failed", is_flag=True, help="Also rerun cells recorded as failed.")
@click.option(
    "--record", is_flag=True, help="Attach each artifact x protocol result to the artifact in its store."
)
@store_option
@engine_options
@click.option(
    "--push-results",
    "push_target",
    default=None,
    metavar="TARGET",
    help="Push done cells as they finish to a results repo: http://HOST:PORT/NS/NAME or hf://datasets/ORG/NAME.",
)
@quiet_option
@json_option
def sweep_run(
    spec_path: str,
    results: str | None,
    dry_run: bool,
    executor: str,
    workers: int | None,
    per_gpu: int,
    device: str,
    data_root: str | None,
    strategy: str,
    retry_failed: bool,
    record: bool,
    store_spec: str | None,
    push_target: str | None,
    quiet: bool,
    as_json: bool,
    **engine: Any,
) -> None:
    """Run the sweep SPEC (TOML); a killed run resumes where it stopped."""
    from .driver import CondenseReport, SweepReport, check_recordable, condense_then_plan, run_sweep
    from .executor import make_executor
    from .plan import plan_sweep, sweep_status
    from .results import ResultsDir
    from .spec import load_spec

    if strategy != "sequential":
        from harness.engine.strategies import STRATEGIES

        if strategy != "auto":
            STRATEGIES.get(strategy)
    spec = load_spec(spec_path)
    out = ResultsDir(_results_dir(spec.name, results))
    plan = plan_sweep(spec, store_spec, out.root)
    if record:
        check_recordable(plan)
    options = executor_options(workers, per_gpu, device, out.root, engine)
    pusher = None
    if push_target is not None and not dry_run:
        from .push import ResultsPusher

        pusher = ResultsPusher(push_target)  # a bad target or a missing token fails before any work
    pending: list[Any] = []
    last_push = [time.monotonic()]

    def push_pending(final: bool = False) -> None:
        """Push the cells finished since the last push (every 20 cells or 60 s, and at the end)."""
        if pusher is None or not pending:
            return
        if not final and len(pending) < 20 and time.monotonic() - last_push[0] < 60:
            return
        batch = list(pending)
        try:
            pusher.push_cells(batch)
        except UserError as exc:
            if final:
                raise
            click.echo(f"harness: warning: pushing results failed ({exc}); will retry at the end", err=True)
            return
        del pending[: len(batch)]
        last_push[0] = time.monotonic()

    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    if dry_run:
        with make_executor(executor, options) as ex:
            n = ex.workers
        status = sweep_status(plan, out)
        if as_json:
            emit_json(status.to_json(n) | {"results_dir": str(out.root), "dry_run": True})
        else:
            click.echo(f"results: {out.root}")
            click.echo(status.format(n))
        return
    written = [0]
    bar: list[Any] = []

    def progress(total: int):
        from tqdm.auto import tqdm

        bar.append(
            tqdm(
                total=total,
                desc=f"sweep {spec.name}",
                unit="cell",
                disable=progress_disabled(quiet),
                dynamic_ncols=True,
            )
        )
        failed = [0]

        workers: dict[str, str] = {}  # worker -> the cell it finished last

        def tick(result, outcome) -> None:
            pending.append(result)
            push_pending()
            written[0] += 1
            failed[0] += result.status == "failed"
            name = outcome.worker.rsplit(":", 1)[-1] or "?"
            mark = "failed" if result.status == "failed" else f"{100 * (result.accuracy or 0):.1f}%"
            workers[name] = f"{result.key} {mark}"
            shown = " | ".join(f"w{w}: {c}" for w, c in sorted(workers.items()))
            bar[0].set_postfix_str((f"{failed[0]} failed; " if failed[0] else "") + shown, refresh=False)
            bar[0].update(1)

        return tick

    report: SweepReport
    made: CondenseReport | None = None
    try:
        with make_executor(executor, options) as ex:
            plan, made = condense_then_plan(
                plan,
                out,
                ex,
                retry_failed=retry_failed,
                data_root=data_root,
                progress=lambda n: _condense_bar(n, spec.name, quiet, bar),
                log=None if quiet else lambda m: click.echo(f"sweep {m}", err=True),
            )
            for e in made.errors[:5] if made else []:
                click.echo(f"harness: condense failed: {e}", err=True)
            if not quiet:
                click.echo(
                    f"sweep {spec.name}: {len(plan.cells)} cells -> {out.root} ({ex.describe()})", err=True
                )
            report = run_sweep(
                plan,
                out,
                ex,
                retry_failed=retry_failed,
                record=record,
                data_root=data_root,
                strategy=strategy,
                progress=progress,
                warn=lambda m: click.echo(f"harness: warning: {m}", err=True),
            )
    except KeyboardInterrupt:
        click.echo(
            f"sweep {spec.name}: stopped; {written[0]} cells written this run; rerun to resume", err=True
        )
        raise
    finally:
        for b in bar:
            b.close()
    pushed = None
    if pusher is not None:  # every done cell of the sweep (earlier runs' too): unchanged ones are skipped
        status = sweep_status(plan, out)
        pending[:] = [r for r in status.results.values() if r.status == "done"]
        from .push import PushReport

        pushed = PushReport(pusher.target, pusher.repo)
        pusher.push_cells(pending, pushed)
    if as_json:
        emit_json(
            report.to_json()
            | ({"condense": dataclasses.asdict(made)} if made else {})
            | ({"pushed": len(pushed.pushed), "push_commits": pushed.commits} if pushed else {})
        )
    else:
        if made is not None:
            click.echo(f"condense: {made.done} set(s) made and pushed, {made.failed} failed")
        click.echo(report.summary())
        if pushed is not None:
            click.echo(
                f"results pushed to {pusher.target if pusher else '?'}: {len(pushed.pushed)} new or changed record(s)"
            )
    if made is not None and made.failed or any(c.state == "failed" for c in plan.condense):
        n = sum(1 for c in plan.condense if c.state == "failed")
        raise SweepIncompleteError(
            f"{n} condense cell(s) failed (their records under {out.root}/condense say why); "
            "fix the cause and rerun with --retry-failed"
        )
    if report.failed_total:
        raise SweepIncompleteError(
            f"{report.failed_total} cell(s) failed (`harness sweep status {spec_path}` lists them, "
            "their files say why); fix the cause and rerun with --retry-failed"
        )


def _condense_bar(total: int, name: str, quiet: bool, bars: list[Any]) -> Any:
    """A progress bar over condense cells; returns its tick."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total, desc=f"condense {name}", unit="set", disable=progress_disabled(quiet), dynamic_ncols=True
    )
    bars.append(bar)
    return lambda _rec: bar.update(1)


@sweep_group.command("status")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@results_option
@store_option
@json_option
def sweep_status_cmd(spec_path: str, results: str | None, store_spec: str | None, as_json: bool) -> None:
    """Show done/failed/left cells of SPEC per artifact, protocol and seed."""
    from .plan import plan_sweep, sweep_status
    from .results import ResultsDir
    from .spec import load_spec

    spec = load_spec(spec_path)
    out = ResultsDir(_results_dir(spec.name, results))
    plan = plan_sweep(spec, store_spec, out.root)
    status = sweep_status(plan, out)
    if as_json:
        emit_json(status.to_json())
        return
    click.echo(status.format())
    failed = [r for r in status.results.values() if r.status == "failed"]
    for r in failed[:10]:
        click.echo(f"failed {r.key}: {r.error}")
    if len(failed) > 10:
        click.echo(f"... and {len(failed) - 10} more failed cells")


# ------------------------------------------------------------------------------ results
def _filters(f: Any) -> Any:
    for opt in reversed(
        [
            click.option("--dataset", default=None, help="Only this dataset."),
            click.option("--method", default=None, help="Only this method."),
            click.option("--ipc", type=int, default=None, help="Only this IPC."),
            click.option("--protocol", default=None, help="Protocol id or name (globs like 'dsa*')."),
            click.option("--artifact", default=None, help="Artifact digest prefix (hex)."),
        ]
    ):
        f = opt(f)
    return f


def _scan(directory: str, **filters: Any):
    from .groups import CellFilter
    from .results import ResultsDir

    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"{directory}: no such results directory")
    scan = ResultsDir(root).scan()
    for bad in scan.bad[:5]:
        click.echo(f"harness: warning: skipped {bad.problem}", err=True)
    if len(scan.bad) > 5:
        click.echo(f"harness: warning: skipped {len(scan.bad) - 5} more bad files", err=True)
    return CellFilter(**filters).apply(scan.cells)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


@click.group("results")
def results_group() -> None:
    """Read a sweep's results directory: list, show, export."""


@results_group.command("ls")
@click.argument("directory", metavar="DIR")
@_filters
@json_option
def results_ls(directory: str, as_json: bool, **filters: Any) -> None:
    """One row per artifact x protocol: mean ± std over the done seeds."""
    from .groups import group_cells

    groups = group_cells(_scan(directory, **filters))
    if as_json:
        emit_json([g.to_json() for g in groups])
        return
    if not groups:
        click.echo("no matching results", err=True)
        return
    rows = []
    for g in groups:
        m = g.merged()
        a = g.first.artifact
        rows.append(
            [
                g.first.dataset,
                str(g.first.ipc),
                str(a.get("method", "?")),
                f"{a.get('ref', '?')}",
                g.digest.removeprefix("sha256:")[:12],
                g.protocol_id,
                f"{len(g.done)}" + (f" (+{len(g.failed)} failed)" if g.failed else ""),
                m.accuracy_text() if m else "-",
            ]
        )
    click.echo(
        _table(rows, ["DATASET", "IPC", "METHOD", "ARTIFACT", "DIGEST", "PROTOCOL", "SEEDS", "ACCURACY %"])
    )


@results_group.command("show")
@click.argument("directory", metavar="DIR")
@_filters
@click.option("--seed", type=int, default=None, help="One cell: this seed.")
@json_option
def results_show(directory: str, seed: int | None, as_json: bool, **filters: Any) -> None:
    """One artifact x protocol group (per-seed accuracies), or one cell with --seed."""
    from .groups import group_cells

    groups = group_cells(_scan(directory, seed=seed, **filters))
    if not groups:
        raise UserError(f"{directory}: no cell matches; `harness results ls {directory}` lists them")
    if len(groups) > 1:
        listed = ", ".join(f"{g.digest[7:19]} {g.protocol_id}" for g in groups[:4])
        raise UserError(
            f"{len(groups)} artifact x protocol groups match ({listed}{' ...' if len(groups) > 4 else ''}); "
            "narrow with --artifact and --protocol"
        )
    g = groups[0]
    if seed is not None:
        cell = g.cells[0]
        if as_json:
            emit_json(cell.to_json())
            return
        click.echo(f"{cell.relpath()}: {cell.status}")
        click.echo(
            f"  accuracy {100 * cell.accuracy:.2f} %"
            if cell.accuracy is not None
            else f"  error: {cell.error}"
        )
        click.echo(
            f"  sweep {cell.sweep.name} ({cell.sweep.hash[:12]}), {cell.wall_time_s} s, env {cell.env.to_json()}"
        )
        return
    if as_json:
        emit_json(g.to_json())
        return
    a = g.first.artifact
    click.echo(f"{a.get('ref')} ({g.digest}) under {g.protocol_id}")
    click.echo(f"  {a.get('dataset')}, ipc {a.get('ipc')}, method {a.get('method')}")
    for c in g.cells:
        text = f"{100 * c.accuracy:.2f} %" if c.accuracy is not None else f"failed: {c.error}"
        click.echo(f"  seed {c.key.seed:>4}  {text}")
    m = g.merged()
    if m is not None:
        click.echo(f"  mean ± std over {len(g.done)} seeds: {m.accuracy_text()} %")


@results_group.command("export")
@click.argument("directory", metavar="DIR")
@click.option(
    "--out", "-o", required=True, type=click.Path(dir_okay=False), help="Output file (.parquet or .jsonl)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "jsonl"]), default=None, help="Default: from the suffix."
)
@_filters
def results_export(directory: str, out: str, fmt: str | None, **filters: Any) -> None:
    """Write one row per cell to Parquet (flat columns + the record) or JSONL (the cell files)."""
    from .groups import write_export

    n = write_export(_scan(directory, **filters), out, fmt)  # type: ignore[arg-type]
    click.echo(f"wrote {n} rows to {out}")


from .push import results_push  # noqa: E402  (`harness results push`, harness/sweep/push.py)

results_group.add_command(results_push)
