"""From stored cells to outputs: the aggregated results document, ``table.md``, the chart, the
image grids and the README section."""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import _now, _open_set, _read_json, _write_json, cell_path
from .plan import (
    TableConfig,
    TableError,
    _protocol,
    plan_sets,
)
from .results import ProtocolResult, RowResult, SetResult, TableResults

if TYPE_CHECKING:
    pass


def collect(cfg: TableConfig) -> TableResults:
    """Everything stored for the current configuration: per (method, ipc) the sets' records and per
    protocol the runs' accuracies; plus the list of missing cells."""
    from dcregistry.method_config import condense_record
    from dcregistry.records import RecordError

    plans = plan_sets(cfg)
    rows: dict[tuple[str, int], RowResult] = {}
    missing: list[str] = []
    cell_loads: dict[tuple[str, int, str], list[Any]] = {}  # 1-min load before each cell's run
    for plan in plans:
        row = rows.setdefault(
            (plan.method, plan.ipc),
            RowResult(
                method=plan.method, ipc=plan.ipc, iterations=plan.iterations, options=dict(plan.options)
            ),
        )
        set_dir = cfg.out / "sets" / plan.name
        art = _open_set(set_dir)
        srec = SetResult(name=plan.name, seed=plan.seed, done=art is not None)
        if art is not None:
            try:
                mc = condense_record(art.metadata.get("method_config"))
            except RecordError:
                mc = None
            if mc is not None:
                srec.wall_time_s, srec.s_per_iter, srec.iterations = (
                    mc.wall_time_s,
                    mc.s_per_iter,
                    mc.iterations,
                )
                srec.peak_memory_bytes, srec.peak_memory_kind = mc.peak_memory_bytes, mc.peak_memory_kind
                srec.config_hash, srec.device = mc.config_hash, mc.device
                if mc.loss is not None:
                    srec.loss_first, srec.loss_last = mc.loss.first, mc.loss.last
                srec.quality_warning = mc.quality_warning
            srec.digest = art.digest
            run = _read_json(cfg.out / "sets" / f"{plan.name}.run.json") or {}
            srec.loadavg = [run.get("loadavg_before"), run.get("loadavg_after")]
            srec.process_wall_s = run.get("process_wall_s")
        else:
            missing.append(f"set {plan.name}")
        row.sets.append(srec)
        for pr in cfg.protocols:
            proto = _protocol(cfg, pr)
            block = row.protocols.setdefault(pr, ProtocolResult(protocol=proto.id, epochs=proto.epochs))
            loads = cell_loads.setdefault((plan.method, plan.ipc, pr), [])
            for r in range(cfg.runs):
                if r % cfg.sets != plan.seed:
                    continue
                doc = _read_json(cell_path(cfg.out, plan.name, proto.id, r))
                if doc is None:
                    missing.append(f"{plan.method} ipc {plan.ipc} {pr} run {r}")
                    continue
                block.runs[str(r)] = doc["accuracy"]
                loads.append(doc.get("loadavg_before", [None])[0])
    for row in rows.values():
        for pr, block in row.protocols.items():
            accs = [block.runs[k] for k in sorted(block.runs, key=int)]
            block.n = len(accs)
            block.mean = statistics.fmean(accs) if accs else None
            block.std = statistics.pstdev(accs) if len(accs) > 1 else (0.0 if accs else None)
            loads = [x for x in cell_loads.get((row.method, row.ipc, pr), []) if x is not None]
            block.max_loadavg_1min = max(loads) if loads else None
        done_sets = row.done_sets
        walls = [s.wall_time_s for s in done_sets if s.wall_time_s is not None]
        row.wall_time_s = statistics.fmean(walls) if walls else None
        row.peak_memory_bytes = max(
            (s.peak_memory_bytes for s in done_sets if s.peak_memory_bytes is not None), default=None
        )
        row.warnings = [s.name for s in done_sets if s.quality_warning]
    return TableResults(
        dataset=cfg.dataset,
        image_size=cfg.image_size,
        model=cfg.model,
        runs=cfg.runs,
        sets=cfg.sets,
        epochs=cfg.epochs,
        protocols=list(cfg.protocols),
        ipcs=list(cfg.ipcs),
        rows=list(rows.values()),
        missing=missing,
        cpu_count=os.cpu_count(),
        generated_at=_now(),
    )


def _fmt_acc(block: ProtocolResult | None, runs: int) -> str:
    if block is None or block.n == 0 or block.mean is None or block.std is None:
        return "—"
    s = f"{100 * block.mean:.1f} ± {100 * block.std:.1f}"
    return s if block.n == runs else f"{s} ({block.n}/{runs})"


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.0f} min"


def _fmt_mem(b: int | None) -> str:
    return "—" if b is None else f"{b / 2**20:.0f} MiB"


def _group_missing(missing: list[str]) -> list[str]:
    """``["m ipc 1 p run 0", "m ipc 1 p run 1", "set x"]`` -> ``["m ipc 1 p runs 0,1", "set x"]``."""
    groups: dict[str, list[str]] = {}
    for item in missing:
        head, sep, run = item.rpartition(" run ")
        key, val = (head, run) if sep else (item, "")
        groups.setdefault(key, []).append(val)
    return [k + (f" run{'s' if len(v) > 1 else ''} {','.join(v)}" if v[0] else "") for k, v in groups.items()]


def render_markdown(res: TableResults) -> str:
    """The comparison table (accuracy %, mean ± std over the runs) and its budgets, as Markdown."""
    rows = {(r.method, r.ipc): r for r in res.rows}
    methods = list(dict.fromkeys(r.method for r in res.rows))
    ipcs, protos, runs = res.ipcs, res.protocols, res.runs
    head = ["method"]
    for k in ipcs:
        head += [f"IPC {k} {p}" for p in protos] + [f"IPC {k} time", f"IPC {k} peak mem"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    warned = []
    for m in methods:
        cells = [m]
        for k in ipcs:
            row = rows.get((m, k))
            if row is None:
                cells += ["n/a"] * (len(protos) + 2)
                continue
            mark = " ⚠" if row.warnings else ""
            warned += [(m, k, n) for n in row.warnings or []]
            cells += [_fmt_acc(row.protocols.get(p), runs) + mark for p in protos]
            cells += [_fmt_time(row.wall_time_s), _fmt_mem(row.peak_memory_bytes)]
        lines.append("| " + " | ".join(cells) + " |")
    epochs = {p: b.epochs for r in res.rows for p, b in r.protocols.items()}
    notes = [
        "",
        f"{res.dataset} at {res.image_size}x{res.image_size}, {res.model}, accuracy % "
        f"on the test split, mean ± std over {runs} evaluation runs"
        f" ({res.sets} condensed set{'s' if res.sets > 1 else ''} per cell"
        + (", run r on set r mod sets" if res.sets > 1 else ", one network per run")
        + "); "
        + ", ".join(f"`{p}` trained {e}+1 epochs" for p, e in epochs.items())
        + ". "
        "Time: wall time of condensing the set (data loading to written artifact; interpreter start "
        "excluded); "
        "peak mem: the condensing process's peak RSS (interpreter, torch and data included).",
        "",
        "| method | IPC | iterations | options | s/iter | loss first → last | 1-min load during condensation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res.rows:
        s = next((x for x in r.sets if x.done), None)
        its = (
            "selection"
            if r.iterations is None and (s is None or s.iterations is None)
            else str(s.iterations if s else r.iterations)
        )
        opts = ", ".join(f"{k}={v}" for k, v in r.options.items()) or "defaults"
        spi = f"{s.s_per_iter:.2f}" if s and s.s_per_iter else "—"
        loss = f"{s.loss_first:.4g} → {s.loss_last:.4g}" if s and s.loss_first is not None else "—"
        load = "—"
        before, after = s.loadavg if s else (None, None)
        if before and after:
            load = f"{before[0]:.1f} → {after[0]:.1f}"
        notes.append(f"| {r.method} | {r.ipc} | {its} | {opts} | {spi} | {loss} | {load} |")
    if warned:
        notes += [
            "",
            "⚠ the set's run ended with a quality warning (its loss rose, or model selection "
            "found nothing better than the initial set); see `quality` in its method_config: "
            + "; ".join(f"{m} IPC {k} ({n})" for m, k, n in warned),
        ]
    if res.missing:
        notes += [
            "",
            f"**Incomplete**: {len(res.missing)} missing: " + "; ".join(_group_missing(res.missing)),
        ]
    return "\n".join(lines + notes) + "\n"


def render_chart(res: TableResults, path: Path) -> None:
    """A grouped bar chart of the table (one panel per IPC, one bar per protocol, std as error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ipcs, protos = res.ipcs, res.protocols
    fig, axes = plt.subplots(1, len(ipcs), figsize=(4.2 * len(ipcs) + 1, 3.4), squeeze=False)
    width = 0.8 / max(1, len(protos))
    for ax, k in zip(axes[0], ipcs, strict=True):
        rows = [r for r in res.rows if r.ipc == k]
        xs = range(len(rows))
        for j, p in enumerate(protos):
            pos = [x + (j - (len(protos) - 1) / 2) * width for x in xs]
            blocks = [r.protocols.get(p) for r in rows]
            means = [100 * ((b.mean if b else None) or 0) for b in blocks]
            stds = [100 * ((b.std if b else None) or 0) for b in blocks]
            ax.bar(pos, means, width, yerr=stds, capsize=2, label=p)
            for x, b in zip(pos, blocks, strict=True):
                if b is None or not b.n:  # a cell not computed yet: say so instead of a zero bar
                    ax.text(x, 2, "not run", rotation=90, fontsize=6, color="gray", ha="center", va="bottom")
        ax.set_xticks(list(xs), [r.method for r in rows], rotation=30, fontsize=8)
        ax.set_title(f"{res.dataset} IPC {k}", fontsize=10)
        ax.set_ylabel("test accuracy %")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    from dcregistry.fsio import staged_file

    with staged_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def render_grids(cfg: TableConfig) -> list[Path]:
    """One labelled image grid per finished set (``grids/NAME.png``), written once."""
    from dcregistry.formats.grid import grid_image
    from dcregistry.fsio import staged_file

    paths = []
    gdir = cfg.out / "grids"
    gdir.mkdir(parents=True, exist_ok=True)
    for plan in plan_sets(cfg):
        target = gdir / f"{plan.name}.png"
        if not target.is_file():
            art = _open_set(cfg.out / "sets" / plan.name)
            if art is None:
                continue
            image, _ = grid_image(art, max_per_class=10)
            if art.metadata["image_shape"][0] == 1:  # one channel: an 8-bit gray PNG is a third the size
                image = image.convert("L")
            with staged_file(target, overwrite=True) as tmp:
                image.save(tmp, format="PNG", optimize=True)
        paths.append(target)
    return paths


def _write_outputs(cfg: TableConfig) -> list[str]:
    from dcregistry.fsio import atomic_write_bytes

    res = collect(cfg)
    _write_json(cfg.out / "results.json", res.to_json())
    atomic_write_bytes(cfg.out / "table.md", render_markdown(res).encode())
    render_grids(cfg)
    if res.measured_cells:
        render_chart(res, cfg.out / "chart.png")
    return res.missing


README_BEGIN = "<!-- method-table:begin -->"


README_END = "<!-- method-table:end -->"


def readme_block(cfg: TableConfig, readme: Path) -> str:
    """The README's table section: table.md, the chart and the grids (paths relative to the README)."""
    rel = Path(os.path.relpath(cfg.out.resolve(), readme.resolve().parent))
    parts = [(cfg.out / "table.md").read_text().rstrip(), ""]
    if (cfg.out / "chart.png").is_file():
        parts += [f"![accuracy by method, IPC and protocol]({(rel / 'chart.png').as_posix()})", ""]
    for ipc in cfg.ipcs:
        imgs = [
            f"![{p.method}]({(rel / 'grids' / f'{p.name}.png').as_posix()})"
            for p in plan_sets(cfg)
            if p.ipc == ipc and p.seed == 0 and (cfg.out / "grids" / f"{p.name}.png").is_file()
        ]
        if imgs:
            names = ", ".join(
                p.method
                for p in plan_sets(cfg)
                if p.ipc == ipc and p.seed == 0 and (cfg.out / "grids" / f"{p.name}.png").is_file()
            )
            parts += [f"IPC {ipc} sets ({names}):", "", " ".join(imgs), ""]
    return "\n".join(parts).rstrip() + "\n"


def update_readme(cfg: TableConfig, readme: Path) -> None:
    """Replace what lies between the README's method-table markers by :func:`readme_block`."""
    from dcregistry.fsio import atomic_write_bytes

    text = readme.read_text()
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        raise TableError(f"{readme} has no {README_BEGIN} ... {README_END} section to fill")
    new = text[: i + len(README_BEGIN)] + "\n" + readme_block(cfg, readme) + text[j:]
    atomic_write_bytes(readme, new.encode())
