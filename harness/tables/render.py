"""A table's results, read back from the results directory into the paper's layout: Markdown, CSV,
JSON (mean ± std over the seeds, the published value and Δ beside ours where the table carries
one, missing cells listed) and a plot (matplotlib, Agg)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcregistry.leaderboard.tables import delta_text
from dcregistry.method_config import MethodConfig, condense_record
from dcregistry.records import RecordError
from harness.sweep.condense import CondenseRecords, condense_status
from harness.sweep.plan import PlannedArtifact
from harness.sweep.results import CellKey, CellResult, ResultsDir
from harness.sweep.spec import SweepSpec

from .base import Budget, Position, Published, TableDef, pct
from .metrics import METRICS, metric_value

__all__ = [
    "TableCell",
    "TableResults",
    "collect",
    "render_markdown",
    "render_csv",
    "render_json",
    "render_plot",
]


@dataclass
class TableCell:
    """One position of the table: our values per seed (accuracy %; a cost: one per set), and the
    published value."""

    row: str
    column: str
    expected: int = 0  # seeds planned (a cost: 1)
    values: list[float] = field(default_factory=list)  # done seeds' accuracies %, or the cost
    metric: str = "accuracy"  # a name of harness.tables.metrics.METRICS
    missing: list[str] = field(default_factory=list)  # what is not there yet
    failed: list[str] = field(default_factory=list)
    published: Published | None = None
    protocol: str | None = None
    digest: str | None = None
    ref: str | None = None  # NAME@digest of the set in the store it was pushed to
    warning: str | None = None  # the set's condensation ended with a quality warning
    wall_times: list[float] = field(default_factory=list)  # the done cells' wall times, s

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.pstdev(self.values) if self.values else None

    @property
    def delta(self) -> float | None:
        m = self.mean
        return None if m is None or self.published is None else m - self.published.mean

    def ours_text(self) -> str:
        m, s = self.mean, self.std
        if m is None or s is None:
            return "failed" if self.failed else "—"
        metric = METRICS[self.metric]
        one = metric.read is not None or metric.derived  # one number, not seeds
        text = (metric.text(m) if one else f"{m:.1f} ± {s:.1f}") + (" ⚠" if self.warning else "")
        return text if len(self.values) == self.expected else f"{text} ({len(self.values)}/{self.expected})"

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "mean": self.mean,
            "std": self.std,
            "n": len(self.values),
            "expected": self.expected,
            "metric": self.metric,
            "values": self.values,
            "published": None
            if self.published is None
            else {"mean": self.published.mean, "std": self.published.std},
            "delta": self.delta,
            "protocol": self.protocol,
            "artifact": self.digest,
            "missing": self.missing,
            "failed": self.failed,
            "quality_warning": self.warning,
            "wall_times_s": self.wall_times,
        }


@dataclass
class TableResults:
    table: TableDef
    budget: Budget
    dataset: str
    published_dataset: str
    cells: dict[Position, TableCell]
    protocols: list[str]
    #: a derived table's collected cells (what ``TableDef.derive`` computed the shown ones from)
    source_cells: dict[Position, TableCell] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [f"{c.row} / {c.column}: {m}" for c in self.cells.values() for m in c.missing + c.failed]

    @property
    def has_published(self) -> bool:
        return any(c.published is not None for c in self.cells.values())

    def findings(self) -> list[str]:
        """What the table's own reading of these results says (none: it has no reading)."""
        return self.table.findings(self) if self.table.findings is not None else []

    def differs(self) -> list[str]:
        """Notes on how this table's setting differs from the paper's."""
        t, out = self.table, []
        if self.dataset == "digits":
            size = self.budget.image_size
            target = self.published_dataset if self.has_published else t.paper_dataset
            out.append(
                f"digits is not {target}: scikit-learn's 8x8 digits (1347 training images, "
                + (f"resized to {size}x{size})" if size else "at 8x8)")
                + (
                    f"; the published numbers beside ours are {target}'s, for orientation only"
                    if self.has_published
                    else f"; the paper's table is on {target}"
                )
            )
        elif self.has_published and self.published_dataset != self.dataset:
            out.append(f"the published numbers are {self.published_dataset}'s, not {self.dataset}'s")
        elif not self.has_published:
            out.append(f"the seeds give no published numbers of this table for {self.dataset}")
        if self.budget.name != "paper":
            out.append(
                f"budget `{self.budget.name}` ({self.budget.description}), not the paper's"
                + (f" ({t.paper_setup})" if t.paper_setup else "")
            )
        return out


def collect(
    table: TableDef,
    budget: Budget,
    results: Path,
    dataset: str = "digits",
    data_root: str | None = None,
    store: str | None = None,
) -> TableResults:
    """Every position of ``table`` as stored in ``results`` (missing cells listed); the sets'
    quality warnings are read from ``store`` (where the run pushed them)."""
    specs = table.specs(budget, dataset, None, data_root)
    rd, records = ResultsDir(results), CondenseRecords(results)
    pub_ds, published = table.published_for(dataset)
    cells: dict[Position, TableCell] = {
        (r, c): TableCell(r, c, published=published.get((r, c)), metric=table.metric_of((r, c)))
        for r in table.rows
        for c in table.columns
    }
    protocols: list[str] = []
    configs: dict[str, MethodConfig | str | None] = {}  # digest -> its record, read once
    for spec in specs:
        states = {c.entry.id: c for c in condense_status(spec.condense, spec.name, records, store)}
        part = spec.name.removeprefix(f"{table.name}-").split(f"-{dataset}-")[0]
        arts = _artifact_sets(spec, store) if spec.artifacts and table.place_artifact is not None else []
        for pe in spec.protocols:
            proto = pe.protocol()
            protocols.append(proto.id) if proto.id not in protocols else None
            seeds = list(spec.seeds) if spec.seeds is not None else proto.seeds
            for entry in spec.condense:
                positions = table.place(entry, pe, part)
                if not positions:
                    continue
                rec = records.read(entry)
                state = states[entry.id]
                what = f"{entry.method} ipc {entry.ipc} ({entry.model}{_opts(entry)})"
                # the store is the truth (as for the sweep): a set pushed by another results
                # directory's run counts; the record's digest serves where the store is not at hand
                digest = (
                    state.ref.partition("@")[2]
                    if state.state == "done" and state.ref
                    else (rec.digest if rec is not None and rec.status == "done" else None)
                )
                for pos in positions:
                    cell = cells.setdefault(pos, TableCell(*pos, published=published.get(pos)))
                    metric = METRICS[table.metric_of(pos)]
                    cell.metric = metric.name
                    cell.expected, cell.protocol = (1, None) if metric.read else (len(seeds), proto.id)
                    if digest is None:
                        if state.state == "failed":
                            cell.failed.append(f"condensing {what} failed: {state.error}")
                        else:
                            cell.missing.append(f"set {what} not condensed yet")
                        continue
                    cell.digest, cell.ref = digest, f"{state.name}@{digest}"
                    if digest not in configs:  # one store lookup per set, not per position
                        configs[digest] = _method_config(store, state.name, digest)
                    mc = configs[digest]
                    cell.warning = mc.quality_warning if isinstance(mc, MethodConfig) else None
                    if metric.read is not None:  # a cost of the set: one number, from its record
                        if cell.values:
                            continue  # the same set placed by another protocol
                        v = metric_value(metric, mc) if isinstance(mc, MethodConfig) else None
                        if isinstance(mc, str):
                            cell.failed.append(f"set {what}: its record does not parse ({mc})")
                        elif v is None:
                            cell.missing.append(f"set {what}: its record has no {metric.unit}")
                        else:
                            cell.values.append(v)
                        continue
                    _read_seeds(cell, rd, entry.dataset, entry.ipc, digest, proto.id, seeds)
            for art in arts:
                assert table.place_artifact is not None
                for pos in table.place_artifact(art, pe, part):
                    cell = cells.setdefault(pos, TableCell(*pos, published=published.get(pos)))
                    cell.expected += len(seeds)  # every set placed here, every seed
                    cell.protocol, cell.digest = proto.id, art.digest
                    _read_seeds(cell, rd, art.dataset, art.ipc, art.digest, proto.id, seeds, art.ref)
    res = TableResults(table, table.budget(budget), dataset, pub_ds, cells, protocols)
    if table.derive is not None:  # the displayed cells, computed from the placed ones
        layout = [(r, c) for r in table.rows for c in table.columns]
        res.source_cells = {pos: c for pos, c in cells.items() if pos not in layout}
        derived = dict(table.derive(res))
        res.cells = {pos: derived.get(pos) or TableCell(*pos, published=published.get(pos)) for pos in layout}
        res.cells.update({pos: c for pos, c in derived.items() if pos not in layout})
    return res


def _read_seeds(
    cell: TableCell,
    rd: ResultsDir,
    dataset: str,
    ipc: int,
    digest: str,
    protocol: str,
    seeds: list[int],
    what: str | None = None,
) -> None:
    """A set's evaluation cells (one per seed) into ``cell``: accuracies %, wall times, and what
    is missing or failed (``what``: the set, where several sets share the position)."""
    left = []
    of = f"{what}: " if what else ""
    for s in seeds:
        got = rd.read_cell(dataset, ipc, CellKey(digest, protocol, s))
        if isinstance(got, CellResult) and got.status == "done" and got.record is not None:
            cell.values.append(100 * got.record.accuracies[0])
            wall = got.wall_time_s if got.wall_time_s is not None else got.record.wall_time_s
            if wall is not None:
                cell.wall_times.append(wall)
        elif isinstance(got, CellResult) and got.status == "failed":
            cell.failed.append(f"{of}seed {s} failed: {got.error}")
        else:
            left.append(str(s))
    if left:
        cell.missing.append(f"{of}{protocol} seed(s) {','.join(left)} not evaluated yet")


def _artifact_sets(spec: SweepSpec, store: str | None) -> list[PlannedArtifact]:
    """The sets a part's ``artifacts`` resolve to now (store queries: those in the store)."""
    import dataclasses

    from harness.sweep.plan import plan_sweep
    from harness.sweep.spec import SweepSpecError

    try:
        plan = plan_sweep(dataclasses.replace(spec, condense=()), store)
    except SweepSpecError:  # nothing matched: no cells
        return []
    return list(plan.artifacts)


def _method_config(store: str | None, name: str, digest: str) -> MethodConfig | str | None:
    """The parsed ``method_config`` of a pushed set; a string says why its record does not parse
    (None: the store cannot say, or the set was not made by ``harness condense``)."""
    from dcregistry.errors import UserError
    from dcregistry.store import get_store

    try:
        md = get_store(store).resolve(f"{name}@{digest}").metadata or {}
    except (UserError, OSError):
        return None
    try:
        return condense_record(md.get("method_config"))
    except RecordError as exc:
        return str(exc)


def _opts(entry: Any) -> str:
    """What tells two of a table's sets apart besides method, IPC and network."""
    opts = "".join(f", {k}={v}" for k, v in entry.options if k in ("dis_metric", "embed"))
    return opts + (f", init={entry.init}" if entry.init else "")


def _header(res: TableResults) -> list[str]:
    t = res.table
    shown = {METRICS[t.metric_of((r, c))] for r in t.rows for c in t.columns}
    what = []
    if METRICS["accuracy"] in shown:
        what.append(
            "mean ± std over the seeds (accuracy % on the test split); protocols: "
            + ", ".join(f"`{p}`" for p in res.protocols)
        )
    costs = sorted(m.unit for m in shown if m.read is not None)
    if costs:
        what.append(f"{', '.join(costs)}: one condensation each, from the set's `method_config`")
    derived = sorted(m.unit for m in shown if m.derived)
    if derived:
        what.append(f"{', '.join(derived)}: computed by the table from its evaluation cells (see the notes)")
    return [
        f"# {t.title}",
        "",
        f"{t.reference}. Ours: {res.dataset}, budget `{res.budget.name}`; {'; '.join(what)}.",
        "",
    ]


def render_markdown(res: TableResults) -> str:
    t = res.table
    pub = res.has_published
    head = [t.row_header or ""] + list(t.columns)
    lines = _header(res)
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.rows:
        row = [r]
        for c in t.columns:
            cell = res.cells.get((r, c))
            if cell is None or (cell.expected == 0 and cell.published is None):
                row.append("")
                continue
            text = cell.ours_text() if cell.expected else "not in this budget"
            if cell.published is not None:
                d, metric = cell.delta, METRICS[cell.metric]
                # a cost (0.0012 s, 3575 MB): significant digits, not one decimal
                paper = pct(cell.published.mean) if metric.read is None else metric.text(cell.published.mean)
                delta = None if d is None else delta_text(cell.metric, d)
                text += f" (paper {paper}" + (f", Δ {delta})" if delta is not None else ")")
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    if pub:
        notes.append(f"paper: the published value ({res.published_dataset}; {t.source}); Δ: ours − paper.")
    notes += res.differs() + list(t.notes)
    warned = [c for c in res.cells.values() if c.warning]
    if warned:
        notes.append(
            "⚠ the set's condensation ended with a quality warning (its loss rose, or model selection "
            "found nothing better than its initial set; see `quality` in its method_config): "
            + "; ".join(f"{c.row} / {c.column}: {c.warning}" for c in warned)
        )
    found = res.findings()
    if found:
        lines += ["", "**Findings**:", ""] + [f"- {f}" for f in found]
    lines += [""] + [f"- {n}" for n in notes]
    missing = res.missing
    if missing:
        lines += ["", f"**Incomplete**: {len(missing)} missing or failed:", ""] + [f"- {m}" for m in missing]
    return "\n".join(lines) + "\n"


def render_csv(res: TableResults) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "column", "mean", "std", "n", "expected", "published", "delta", "protocol", "missing"])
    for r in res.table.rows:
        for c in res.table.columns:
            cell = res.cells.get((r, c))
            if cell is None or (cell.expected == 0 and cell.published is None):
                continue
            f = lambda x: "" if x is None else f"{x:.2f}"  # noqa: E731
            w.writerow(
                [
                    r,
                    c,
                    f(cell.mean),
                    f(cell.std),
                    len(cell.values),
                    cell.expected,
                    "" if cell.published is None else cell.published.mean,
                    f(cell.delta),
                    cell.protocol or "",
                    "; ".join(cell.missing + cell.failed),
                ]
            )
    return buf.getvalue()


def render_json(res: TableResults) -> str:
    t = res.table
    doc = {
        "kind": "harness-table-results/1",
        "table": t.name,
        "title": t.title,
        "reference": t.reference,
        "dataset": res.dataset,
        "budget": res.budget.name,
        "published_dataset": res.published_dataset if res.has_published else None,
        "published_source": t.source or None,
        "rows": list(t.rows),
        "columns": list(t.columns),
        "protocols": res.protocols,
        "notes": res.differs() + list(t.notes),
        "findings": res.findings(),
        "cells": [
            res.cells[(r, c)].to_json()
            for r in t.rows
            for c in t.columns
            if (r, c) in res.cells and (res.cells[(r, c)].expected or res.cells[(r, c)].published)
        ],
        "missing": res.missing,
    }
    if res.source_cells:  # a derived table: the cells its shown ones were computed from
        doc["source_cells"] = [c.to_json() for c in res.source_cells.values()]
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def render_plot(res: TableResults, path: Path) -> bool:
    """The table's plot (``ipc-lines``, ``heatmap`` or ``bars``); False when it has none."""
    kind = res.table.plot
    if kind is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = res.table
    title = f"{t.name} on {res.dataset} ({res.budget.name})"
    if kind == "ipc-lines":  # accuracy vs IPC per method (the columns), error bars = std
        fig, ax = plt.subplots(figsize=(6, 4))
        for c in t.columns:
            xs, ms, ss, pxs, pys = [], [], [], [], []
            for r in t.rows:
                cell = res.cells.get((r, c))
                if cell is None or not r.isdigit():
                    continue
                if cell.mean is not None and cell.std is not None:
                    xs.append(int(r))
                    ms.append(cell.mean)
                    ss.append(cell.std)
                if cell.published is not None:
                    pxs.append(int(r))
                    pys.append(cell.published.mean)
            if len(set(ms)) == 1 and len(xs) == len(t.rows) > 1:  # one set for every row (whole dataset)
                line = ax.axhline(ms[0], linestyle="--", linewidth=1, label=f"{c} ({ms[0]:.1f})")
            elif xs:
                line = ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, label=c).lines[0]
            else:
                continue
            if pxs:  # the published values, in the same colour
                ax.plot(pxs, pys, linestyle=":", marker="x", color=line.get_color(), alpha=0.6)
        if any(c.published is not None for c in res.cells.values()):
            ax.plot(
                [], [], linestyle=":", marker="x", color="gray", label=f"published ({res.published_dataset})"
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"{t.row_header or 'row'} (log)")
        ax.set_ylabel("test accuracy %")
        ax.legend(fontsize=7)
    elif kind == "heatmap":  # rows x columns
        import numpy as np

        grid = np.full((len(t.rows), len(t.columns)), np.nan)
        for i, r in enumerate(t.rows):
            for j, c in enumerate(t.columns):
                cell = res.cells.get((r, c))
                if cell is not None and cell.mean is not None:
                    grid[i, j] = cell.mean
        fig, ax = plt.subplots(figsize=(1.2 * len(t.columns) + 2, 0.6 * len(t.rows) + 1.5))
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
        for i in range(len(t.rows)):
            for j in range(len(t.columns)):
                v = grid[i, j]
                ax.text(
                    j, i, "—" if np.isnan(v) else f"{v:.1f}", ha="center", va="center", fontsize=7, color="w"
                )
        ax.set_xticks(range(len(t.columns)), t.columns, rotation=30, fontsize=8)
        ax.set_yticks(range(len(t.rows)), t.rows, fontsize=8)
        ax.set_xlabel("evaluated with")
        ax.set_ylabel(t.row_header or "condensed with")
        fig.colorbar(im, ax=ax, label="test accuracy %")
    elif kind == "cost-scatter":  # condensation time vs accuracy, one point per (row, IPC)
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in t.rows:
            pts = []
            for c in t.columns:
                cell = res.cells.get((r, c))
                if cell is None or cell.metric != "wall_s" or cell.mean is None:
                    continue
                group = c.rsplit(" ", 2)[0]  # "IPC 10"
                acc = next(
                    (
                        x
                        for x in (res.cells.get((r, o)) for o in t.columns if o.startswith(group + " "))
                        if x is not None and x.metric == "accuracy" and x.mean is not None
                    ),
                    None,
                )
                if acc is not None and acc.mean is not None:
                    pts.append((cell.mean, acc.mean, acc.std or 0.0, group.removeprefix("IPC ")))
            if not pts:
                continue
            line = ax.errorbar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                yerr=[p[2] for p in pts],
                marker="o",
                linestyle="none",
                capsize=3,
                label=r,
            ).lines[0]
            for x, y, _, ipc in pts:
                ax.annotate(
                    f"{ipc}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 3),
                    fontsize=6,
                    color=line.get_color(),
                )
        ax.set_xscale("log")
        ax.set_xlabel("condensation wall time, s (log; labels: IPC)")
        ax.set_ylabel("test accuracy %")
        ax.legend(fontsize=7)
    else:  # grouped bars: one group per row, one bar per column
        rows = [
            r
            for r in t.rows
            if any((res.cells.get((r, c)) or TableCell(r, c)).mean is not None for c in t.columns)
        ]
        rows = rows or list(t.rows)
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4))
        width = 0.8 / max(1, len(t.columns))
        for j, c in enumerate(t.columns):
            pos = [i + (j - (len(t.columns) - 1) / 2) * width for i in range(len(rows))]
            cells = [res.cells.get((r, c)) for r in rows]
            means = [(x.mean or 0) if x is not None else 0 for x in cells]
            stds = [(x.std or 0) if x is not None else 0 for x in cells]
            ax.bar(pos, means, width, yerr=stds, capsize=2, label=c)
            pub = [
                (x, cell.published.mean)
                for x, cell in zip(pos, cells, strict=True)
                if cell and cell.published
            ]
            if pub:  # the published value as a black tick on the bar
                ax.scatter([p[0] for p in pub], [p[1] for p in pub], marker="_", color="k", s=80, zorder=3)
        if any(c.published is not None for c in res.cells.values()):
            ax.scatter([], [], marker="_", color="k", s=80, label=f"published ({res.published_dataset})")
        ax.set_xticks(range(len(rows)), rows, rotation=30, fontsize=8)
        ax.set_ylabel("test accuracy %")
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    from dcregistry.fsio import staged_file

    with staged_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return True


def write_outputs(res: TableResults, out: Path) -> list[Path]:
    """``OUT/<table>.md``, ``.csv``, ``.json`` and ``.png`` (where the table has a plot)."""
    from dcregistry.fsio import atomic_write_text, ensure_dir

    ensure_dir(out)
    base = out / res.table.name
    paths = []
    for suffix, text in (
        (".md", render_markdown(res)),
        (".csv", render_csv(res)),
        (".json", render_json(res)),
    ):
        atomic_write_text(base.with_suffix(suffix), text)
        paths.append(base.with_suffix(suffix))
    if render_plot(res, base.with_suffix(".png")):
        paths.append(base.with_suffix(".png"))
    return paths


def write_grids(res: TableResults, out: Path, store: str | None = None) -> list[Path]:
    """``OUT/grids/<set name>.png``: a labelled sample grid of every set the table shows (opened
    and verified from ``store``; sets the store does not have are skipped; one file per set,
    shared by the tables that show it), and ``OUT/<table>-grids.md`` showing them with the
    positions each fills."""
    from dcregistry.errors import UserError
    from dcregistry.formats.grid import save_grid_png
    from dcregistry.fsio import atomic_write_text, ensure_dir
    from dcregistry.store import open_ref

    folder = out / "grids"
    where: dict[str, list[str]] = {}  # ref -> the positions it fills, in table order
    for r in res.table.rows:
        for c in res.table.columns:
            cell = res.cells.get((r, c))
            if cell is not None and cell.ref is not None:
                where.setdefault(cell.ref, []).append(f"{r} / {c}")
    made: dict[str, Path] = {}
    lines = [f"# Sample grids: {res.table.title}", ""]
    for ref, positions in where.items():
        try:
            art = open_ref(ref, store=store)
        except (UserError, OSError):
            continue
        ensure_dir(folder)
        path = folder / (ref.partition("@")[0].rsplit("/", 1)[-1] + ".png")
        save_grid_png(art, path)  # the name holds the recipe id: tables showing a set share it
        made[ref] = path
        lines += [
            f"## {path.stem}",
            "",
            f"{'; '.join(positions)}",
            "",
            f"![{path.stem}]({folder.name}/{path.name})",
            "",
        ]
    if not made:
        return []
    index = out / f"{res.table.name}-grids.md"
    atomic_write_text(index, "\n".join(lines) + "\n")
    return [index, *sorted(set(made.values()))]


def write_group_markdown(name: str, results: list[TableResults], out: Path) -> Path:
    """``OUT/<group>.md``: a group's tables (e.g. ``dc-ablations``) one after another."""
    from dcregistry.fsio import atomic_write_text, ensure_dir

    ensure_dir(out)
    path = out / f"{name}.md"
    atomic_write_text(path, "\n".join(render_markdown(r) for r in results))
    return path
