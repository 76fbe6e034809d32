"""``harness table list | show NAME | run NAME | render NAME``: the papers' tables as shipped sweep
specs, run through the :mod:`harness.sweep` Python API (never through the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dcregistry.cli.common import emit_json, progress_disabled
from harness.cli_options import data_root_option, device_option
from harness.sweep.cli import engine_options, executor_options, placement_options

from . import TABLES
from .base import BUDGET_NAMES, TABLE_DATASETS

__all__ = ["table_group"]

DEFAULT_RESULTS = "table-results"

results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False),
    default=DEFAULT_RESULTS,
    show_default=True,
    help="Results directory (one JSON per cell, as `harness sweep` writes; reruns resume).",
)
dataset_option = click.option(
    "--dataset",
    default=None,
    help=f"Dataset ({', '.join(TABLE_DATASETS)}; default digits, or the last run's in --results).",
)
budget_option = click.option(
    "--budget",
    default=None,
    help=f"Budget: {' | '.join(BUDGET_NAMES)} (default quick, or the last run's in --results).",
)


def _tables(name: str):
    from . import get_tables

    return get_tables(name)


def _budget(name: str):
    from . import get_budget

    return get_budget(name)


@click.group("table")
def table_group() -> None:
    """The papers' tables (DC, DC-Bench) as shipped sweep specs: list, show, run, render."""


@table_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def table_list(as_json: bool) -> None:
    """Every shipped table: name, what it is, and what it needs when the harness cannot make it."""
    from . import TABLE_GROUPS, TABLES

    tables = [TABLES.get(n) for n in TABLES.names()]
    if as_json:
        emit_json(
            [{"name": t.name, "title": t.title, "reference": t.reference, "needs": t.needs} for t in tables]
            + [{"name": g, "group": list(members)} for g, members in TABLE_GROUPS.items()]
        )
        return
    w = max(len(t.name) for t in tables)
    for t in tables:
        click.echo(f"{t.name:<{w}}  {t.title}" + (f"  [needs {t.needs}]" if t.needs else ""))
        click.echo(f"{'':<{w}}  {t.reference}")
    for g, members in TABLE_GROUPS.items():
        click.echo(f"{g:<{w}}  group: {', '.join(members)} (run, shown and rendered one after another)")


@table_group.command("show")
@click.argument("name")
@dataset_option
@data_root_option
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default=None,
    help="Also show what this results directory holds.",
)
def table_show(name: str, dataset: str | None, data_root: str | None, results: str | None) -> None:
    """Layout, cells per budget and the estimated cost of each budget on digits."""
    for i, t in enumerate(_tables(name)):
        if i:
            click.echo()
        _show(t, dataset, data_root, results)


def _show(t: Any, dataset: str | None, data_root: str | None, results: str | None) -> None:
    from .estimate import duration, estimate

    click.echo(f"{t.name}: {t.title}")
    click.echo(f"  {t.reference}")
    if t.needs:
        click.echo(f"  not runnable: needs {t.needs}")
        return
    if t.requires is not None:
        from dcregistry.errors import UserError

        try:
            missing = t.requires(dataset or "digits", None)
        except UserError as exc:  # the store cannot be read: say so, show the rest
            missing = str(exc)
        if missing:
            click.echo(f"  not runnable now: needs {missing}")
    click.echo(f"  rows ({t.row_header or 'row'}): {', '.join(t.rows)}")
    click.echo(f"  columns: {', '.join(t.columns)}")
    ds = dataset or "digits"
    pub_ds, pub = t.published_for(ds)
    click.echo(
        f"  published values: {len(pub)} ({pub_ds}; {t.source})"
        if pub
        else "  published values: none in the seeds"
    )
    from .estimate import SMOKE_MEASURED

    if t.name in SMOKE_MEASURED:
        wall, why = SMOKE_MEASURED[t.name]
        click.echo(
            f"  smoke measured: {wall:.0f} s (`harness table run {t.name} --budget smoke`, a fresh process, "
            f"2-core CPU, 2026-12-03{'; ' + why if why else ''})"
        )
    click.echo(
        "  budgets, estimated on digits for one worker on a 2-core CPU (a cost model: s/iteration "
        "of each method and s/epoch of evaluation measured here, see harness/tables/estimate.py):"
    )
    for b in BUDGET_NAMES:
        specs = t.specs(_budget(b), ds, None, data_root)
        c = estimate(specs)
        protos = sorted({p.protocol().id for s in specs for p in s.protocols})
        click.echo(
            f"    {b:<6} {c.condense_cells:>3} sets to condense, {c.eval_cells:>4} evaluation cells, "
            f"~{duration(c.total_s)} (condense {duration(c.condense_s)}, evaluate {duration(c.eval_s)})"
        )
        earlier, after = _after_earlier_tables(t, b, ds, data_root, specs)
        if earlier and after.total_s < c.total_s:
            click.echo(
                f"           after {', '.join(earlier)} (run first into the same results and store; "
                f"shared sets and cells are not made again): {after.condense_cells} sets to condense, "
                f"{after.eval_cells} evaluation cells, ~{duration(after.total_s)}"
            )
        click.echo(f"           protocols: {', '.join(protos)}")
    if results:
        from .render import collect
        from .run import read_manifest

        man = read_manifest(Path(results), t.name)
        if man is not None:
            res = collect(t, _budget(man["budget"]), Path(results), man["dataset"], data_root)
            done = sum(len(c.values) for c in res.cells.values())
            click.echo(
                f"  {results}: last run {man['budget']} on {man['dataset']}; {done} seed results, {len(res.missing)} missing"
            )
            walls = _measured(Path(results))
            if walls:
                click.echo(
                    f"  measured there: {walls[0]} condense cells {walls[1]:.0f} s, {walls[2]} evaluation cells {walls[3]:.0f} s"
                )
    for n in t.notes:
        click.echo(f"  note: {n}")


def _after_earlier_tables(
    t: Any, budget: str, dataset: str, data_root: str | None, specs: list[Any]
) -> tuple[list[str], Any]:
    """What ``t`` costs after the runnable tables listed before it (``harness table list``'s
    order) that share sets or cells with it ran into the same results directory and store (each
    named only if it shares something the ones before it do not). Returns (their names, the cost)."""
    from .estimate import estimate

    mine: set[tuple[str, ...]] = set()
    estimate(specs, done=mine)
    done: set[tuple[str, ...]] = set()
    sharing = []
    for other in TABLES.values():
        if other.name == t.name:
            break
        if other.needs or other.requires is not None:
            continue  # not runnable (or not without an imported set)
        theirs: set[tuple[str, ...]] = set()
        estimate(other.specs(_budget(budget), dataset, None, data_root), done=theirs)
        if theirs & (mine - done):  # it adds a shared set or cell the others do not
            sharing.append(other.name)
            done |= theirs
    return sharing, estimate(specs, done=done)


def _measured(results: Path) -> tuple[int, float, int, float] | None:
    """Wall times recorded in a results directory: (condense cells, s, evaluation cells, s)."""
    import json

    from harness.sweep.results import ResultsDir

    cs, cw = 0, 0.0
    for p in (results / "condense").glob("*.json"):
        try:
            cw += float(json.loads(p.read_text())["wall_time_s"])
            cs += 1
        except (OSError, ValueError, KeyError, TypeError):
            continue
    cells = [c for c in ResultsDir(results).scan().cells if c.wall_time_s is not None]
    if not cs and not cells:
        return None
    return cs, cw, len(cells), sum(c.wall_time_s or 0.0 for c in cells)


@table_group.command("run")
@click.argument("name")
@budget_option
@dataset_option
@data_root_option
@results_option
@click.option(
    "--out", "-o", "out", type=click.Path(file_okay=False), default=None, help="Also render the table here."
)
@placement_options
@device_option
@click.option(
    "--store",
    "store_spec",
    default=None,
    help="Store the condensed sets are pushed to (default: the local store).",
)
@click.option("--retry-failed", is_flag=True, help="Also rerun cells recorded as failed.")
@engine_options
@click.option(
    "--grids/--no-grids",
    default=True,
    show_default=True,
    help="With -o: also a sample grid PNG of every set shown (from the store): OUT/grids/, OUT/NAME-grids.md.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def table_run(
    name: str,
    budget: str | None,
    dataset: str | None,
    data_root: str | None,
    results: str,
    out: str | None,
    executor: str,
    workers: int | None,
    per_gpu: int,
    device: str,
    strategy: str,
    store_spec: str | None,
    retry_failed: bool,
    grids: bool,
    quiet: bool,
    **engine: Any,
) -> None:
    """Condense and evaluate the table's missing cells (resumable), then say what is left."""
    from .render import collect, write_grids, write_group_markdown, write_outputs
    from .run import run_table

    tables = _tables(name)
    b = _budget(budget or "quick")
    ds = dataset or "digits"
    for t in tables:  # validate (and refuse a table that needs more) before any work
        t.specs(b, ds, store_spec, data_root)
        t.check_needs(ds, store_spec)
    root = Path(results)
    opts = executor_options(workers, per_gpu, device, root, engine)
    log = (lambda s: None) if progress_disabled(quiet) else (lambda s: click.echo(s, err=True))
    failed = 0
    rendered = []
    for t in tables:
        report = run_table(
            t,
            b,
            root,
            dataset=ds,
            executor=executor,
            options=opts,
            store=store_spec,
            data_root=data_root,
            strategy=strategy,
            retry_failed=retry_failed,
            log=log,
        )
        for e in report.errors[:5]:
            click.echo(f"harness: condense failed: {e}", err=True)
        earlier = (
            f", {report.condense_failed_earlier} failed earlier (skipped; --retry-failed reruns them)"
            if report.condense_failed_earlier
            else ""
        )
        click.echo(
            f"{t.name} ({b.name}, {ds}) -> {root}: {report.condensed} set(s) condensed "
            f"({report.condense_failed} failed{earlier}), {report.computed} cells computed, "
            f"{report.skipped_done} already done, {report.failed} failed, {report.wall_s:.0f} s"
        )
        failed += report.failed + report.condense_failed + report.condense_failed_earlier
        if out:
            res = collect(t, b, root, ds, data_root, store_spec)
            rendered.append(res)
            for p in write_outputs(res, Path(out)):
                click.echo(f"wrote {p}")
            if grids:
                grid_files = write_grids(res, Path(out), store_spec)
                click.echo(f"wrote {len(grid_files) - 1} sample grid(s)") if grid_files else None
    if out and len(tables) > 1:
        click.echo(f"wrote {write_group_markdown(name, rendered, Path(out))}")
    if failed:
        from harness.sweep.cli import SweepIncompleteError

        raise SweepIncompleteError(
            f"{failed} cell(s) failed (their files under {root} say why); "
            "fix the cause and rerun with --retry-failed"
        )


@table_group.command("render")
@click.argument("name")
@budget_option
@dataset_option
@data_root_option
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default=DEFAULT_RESULTS,
    show_default=True,
    help="Results directory.",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Write NAME.md/.csv/.json/.png here (default: print the Markdown).",
)
@click.option(
    "--store", "store_spec", default=None, help="Store the sets were pushed to (default: the run's)."
)
@click.option(
    "--grids/--no-grids",
    default=True,
    show_default=True,
    help="With -o: also a sample grid PNG of every set shown (from the store): OUT/grids/, OUT/NAME-grids.md.",
)
def table_render(
    name: str,
    budget: str | None,
    dataset: str | None,
    data_root: str | None,
    results: str,
    out: str | None,
    store_spec: str | None,
    grids: bool,
) -> None:
    """The table in the paper's layout from a results directory (missing cells listed)."""
    from .base import TableError
    from .render import collect, render_markdown, write_grids, write_group_markdown, write_outputs
    from .run import read_manifest

    tables = _tables(name)
    root = Path(results)
    for t in tables:  # what the cells need (an imported set: in the store the run used)
        man = read_manifest(root, t.name) or {}
        t.check_needs(dataset or man.get("dataset") or "digits", store_spec or man.get("store"))
    if not root.is_dir():
        raise TableError(
            f"{results}: no such results directory (run `harness table run {name} --results {results}` first)"
        )
    rendered = []
    for i, t in enumerate(tables):
        man = read_manifest(root, t.name) or {}
        b = _budget(budget or man.get("budget") or "quick")
        ds = dataset or man.get("dataset") or "digits"
        res = collect(t, b, root, ds, data_root, store_spec or man.get("store"))
        rendered.append(res)
        if out:
            for p in write_outputs(res, Path(out)):
                click.echo(f"wrote {p}")
            if grids:
                grid_files = write_grids(res, Path(out), store_spec or man.get("store"))
                click.echo(f"wrote {len(grid_files) - 1} sample grid(s)") if grid_files else None
            if res.missing:
                click.echo(
                    f"{t.name}: {len(res.missing)} cell(s) missing or failed (listed in the files)", err=True
                )
        else:
            click.echo(("\n" if i else "") + render_markdown(res), nl=False)
    if out and len(tables) > 1:
        click.echo(f"wrote {write_group_markdown(name, rendered, Path(out))}")
