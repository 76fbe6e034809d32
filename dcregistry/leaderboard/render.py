"""The site's pages, as files in memory (path -> bytes), from a collection and its artifacts.

Layout (every link relative, so the folder works from any web server or path prefix)::

    index.html                 datasets, sources, files that were not valid records
    d/<dataset>.html           plots (accuracy vs IPC per method, one per protocol), then per
                               IPC one sortable table per protocol, and sample grids per method
    a/<digest hex>.html        one artifact: facts, its results per protocol, grid, card
    a/<digest hex>.png         its sample grid (when its store is reachable)
    a/<digest hex>.md          its card's Markdown (when its store is reachable)
    t/<table>.html, .png       a paper table found in a results directory, in the paper's
                               layout, and its plot
    style.css, sort.js, favicon.svg
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from urllib.parse import quote

from .artifacts import ArtifactInfo
from .assets import FAVICON_SVG, SORT_JS, STYLE_CSS
from .collect import Collection, Row
from .html import esc, page, render_markdown
from .plot import Series, accuracy_plot
from .tables import PaperTable, TableCell, delta_text, value_text

__all__ = ["render_site"]

DASH = "–"


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _duration(s: float | None) -> str:
    if s is None:
        return DASH
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def artifact_label(of: Row | ArtifactInfo, art: ArtifactInfo | None) -> str:
    """How a set is named: its store version (``ns/name@vN``), else the ref its records give,
    else the digest's first 12 hex digits."""
    if art is not None and art.info is not None:
        return art.info.ref
    return of.ref or of.hex[:12]


def _protocol_summary(row: Row) -> str:
    content = row.protocol.get("content")
    content = content if isinstance(content, dict) else {}
    parts = [f"{k} {content[k]}" for k in ("arch", "augmentation", "optimizer", "epochs") if k in content]
    return ", ".join(str(p) for p in parts)


def _num_cell(sort: float | None, text: str, title: str = "") -> str:
    key = "" if sort is None else repr(float(sort))
    tip = f' title="{esc(title)}"' if title else ""
    return f'<td class="num" data-sort="{esc(key)}"{tip}>{esc(text)}</td>'


def _rank_cell(row: Row, metric: str) -> str:
    r = row.rank(metric)
    if r is None:
        return _num_cell(None, DASH)
    mean, std, n = r
    if metric == "ior":
        text = f"{100 * mean:+.2f} ± {100 * std:.2f}"
    else:
        text = f"{mean:.3f} ± {std:.3f}"
    if n != row.runs:
        text += f" ({n} of {row.runs} seeds)"
    return _num_cell(mean, text)


def results_table(rows: Sequence[Row], arts: dict[str, ArtifactInfo], *, up: str, table_id: str) -> str:
    """One sortable table of rows that all share one protocol (the caller's guarantee)."""
    assert len({r.protocol_id for r in rows}) <= 1, "a table never mixes protocols"
    rank = any(r.has_rank for r in rows)
    heads = ["method", "artifact", "protocol", "accuracy (%)", "runs"]
    if rank:
        heads += ["IOR (pt)", "LRS"]
    heads += ["condensation time", "peak memory", "device"]
    sorted_by = ' aria-sort="descending"'  # the rows come best first
    ths = "".join(f'<th scope="col"{sorted_by if h == "accuracy (%)" else ""}>{esc(h)}</th>' for h in heads)
    body = []
    for row in sorted(rows, key=lambda r: (-r.mean_std[0], r.method, r.digest)):
        art = arts.get(row.digest)
        mean, std = row.mean_std
        cells = [
            f"<td>{esc(row.method)}</td>",
            f'<td><a href="{up}a/{row.hex}.html">{esc(artifact_label(row, art))}</a></td>',
            f"<td><code>{esc(row.protocol_id)}</code></td>",
            _num_cell(mean, f"{_pct(mean)} ± {_pct(std)}"),
            _num_cell(row.runs, str(row.runs)),
        ]
        if rank:
            cells += [_rank_cell(row, "ior"), _rank_cell(row, "lrs")]
        t = art.condense_time_s if art is not None else None
        mem = art.peak_memory if art is not None else None
        cells += [
            _num_cell(t, _duration(t)),
            _num_cell(mem[0] if mem else None, _bytes(mem[0]) if mem else DASH, mem[1] if mem else ""),
            f"<td>{esc(', '.join(row.devices))}</td>",
        ]
        body.append(f'<tr data-artifact="{esc(row.digest)}">{"".join(cells)}</tr>')
    return (
        f'<table class="sortable" id="{esc(table_id)}" data-protocol="{esc(rows[0].protocol_id) if rows else ""}">'
        f"<thead><tr>{ths}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>"
    )


def _plots(dataset: str, rows: Sequence[Row]) -> str:
    """One accuracy-vs-IPC plot per protocol id (each method's point: all evaluations of its
    sets at that IPC under that protocol)."""
    figs = []
    by_protocol: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_protocol[r.protocol_id].append(r)
    for i, (pid, prow) in enumerate(sorted(by_protocol.items())):
        pts: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in prow:
            pts[r.method][r.ipc].extend(r.accuracies)
        series = []
        for method in sorted(pts):
            points = {}
            for ipc, accs in pts[method].items():
                mean = sum(accs) / len(accs)
                std = (sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5
                points[ipc] = (mean, std, len(accs))
            series.append(Series(method, points))
        svg = accuracy_plot(series, f"{dataset} · {pid}")
        figs.append(
            f'<figure id="plot-{i}" data-protocol="{esc(pid)}">{svg}<figcaption>Test accuracy against '
            f"IPC under <code>{esc(pid)}</code>: the mean of every evaluation (all seeds of all sets "
            "of a method at that IPC), error bars ± one standard deviation.</figcaption></figure>"
        )
    return '<div class="plots">' + "\n".join(figs) + "</div>"


def _samples(rows: Sequence[Row], arts: dict[str, ArtifactInfo], up: str, ipc: int) -> str:
    """A grid per method: the first reachable set of that method at this IPC."""
    shown: dict[str, ArtifactInfo] = {}
    for r in sorted(rows, key=lambda r: (r.method, r.digest)):
        art = arts.get(r.digest)
        if r.method not in shown and art is not None and art.grid_png is not None:
            shown[r.method] = art
    if not shown:
        return ""
    figs = [
        f'<figure><a href="{up}a/{a.hex}.html"><img src="{up}a/{a.hex}.png" '
        f'alt="{esc("sample grid of " + artifact_label(a, a))}"></a>'
        f"<figcaption>{esc(method)}: {esc(artifact_label(a, a))}</figcaption></figure>"
        for method, a in sorted(shown.items())
    ]
    return (
        f'<h3>Samples at IPC {ipc}</h3><div class="samples" id="samples-ipc{ipc}">' + "".join(figs) + "</div>"
    )


def dataset_page(c: Collection, dataset: str, arts: dict[str, ArtifactInfo]) -> str:
    rows = c.select(dataset)
    parts = [f"<h1>{esc(dataset)}</h1>"]
    parts.append(
        '<section class="box" id="plots"><h2>Accuracy against IPC</h2>' + _plots(dataset, rows) + "</section>"
    )
    n = 0
    for ipc in c.ipcs(dataset):
        irows = c.select(dataset, ipc)
        sec = [f'<section class="box" id="ipc{ipc}"><h2>IPC {ipc}</h2>']
        for pid in c.protocols(irows):
            prows = [r for r in irows if r.protocol_id == pid]
            summary = _protocol_summary(prows[0])
            sec.append(
                f"<h3>Protocol <code>{esc(pid)}</code>"
                + (f' <span class="muted">({esc(summary)})</span>' if summary else "")
                + "</h3>"
            )
            sec.append(results_table(prows, arts, up="../", table_id=f"table-{n}"))
            n += 1
        sec.append(_samples(irows, arts, "../", ipc))
        sec.append("</section>")
        parts.append("\n".join(sec))
    return page(dataset, "\n".join(parts), depth=1, crumbs=esc(dataset))


def artifact_page(c: Collection, digest: str, art: ArtifactInfo) -> str:
    rows = [r for r in c.rows.values() if r.digest == digest]
    first = rows[0]
    label = artifact_label(first, art)
    md = art.metadata
    facts = [
        ("digest", f"<code>{esc(digest)}</code>"),
        ("dataset", f'<a href="../d/{quote(first.dataset)}.html">{esc(first.dataset)}</a>'),
        ("IPC", esc(first.ipc)),
        ("method", esc(first.method)),
        ("ref in the records", f"<code>{esc(first.ref or DASH)}</code>"),
    ]
    if art.info is not None:
        facts.append(("store version", f"<code>{esc(art.info.ref)}</code>"))
        for key in ("label_kind", "license"):
            if key in md:
                facts.append((key.replace("_", " "), esc(md[key])))
        ps = md.get("pixel_space")
        if isinstance(ps, dict):
            facts.append(("pixel space", esc(ps.get("kind", "?"))))
    t, mem = art.condense_time_s, art.peak_memory
    facts.append(("condensation time", esc(_duration(t))))
    facts.append(("peak memory", esc(f"{_bytes(mem[0])} {mem[1]}".strip() if mem else DASH)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    parts = [
        f'<h1 id="title">{esc(label)}</h1>',
        f'<section class="box"><dl class="facts">{dl}</dl></section>',
    ]
    parts.append('<section class="box" id="results"><h2>Results</h2>')
    for i, pid in enumerate(sorted({r.protocol_id for r in rows})):
        prows = [r for r in rows if r.protocol_id == pid]
        parts.append(f"<h3>Protocol <code>{esc(pid)}</code></h3>")
        parts.append(results_table(prows, {digest: art}, up="../", table_id=f"results-{i}"))
        seeds = ", ".join(f"seed {c.seed}: {_pct(c.accuracy)}" for c in prows[0].cells)
        parts.append(f'<p class="muted">{esc(seeds)}</p>')
    parts.append("</section>")
    if art.grid_png is not None:
        parts.append(
            f'<section class="box grid"><h2>Images</h2><img id="grid" src="{art.hex}.png" '
            f'alt="{esc("sample grid of " + label)}"></section>'
        )
    if art.card is not None:
        from ..card import parse_card
        from ..errors import UserError

        try:
            _, body = parse_card(art.card)
        except UserError:
            body = art.card
        parts.append(
            f'<section class="box" id="card-box"><h2>Card <a class="muted" href="{art.hex}.md">(Markdown)</a></h2>'
            f'<div class="card-body" id="card">{render_markdown(body)}</div></section>'
        )
    else:
        parts.append(
            '<section class="box" id="card-box"><h2>Card</h2><p class="note" id="no-card">'
            f"This artifact is not in a reachable store ({esc(art.problem or 'not looked up')}); "
            f"its records name it <code>{esc(first.ref or digest)}</code>"
            + (f' (<a href="{esc(_hub_url(first.ref))}">on the Hub</a>)' if _hub_url(first.ref) else "")
            + ". Fetch its card with <code>dcreg card REF --store S</code>.</p></section>"
        )
    crumbs = f'<a href="../d/{quote(first.dataset)}.html">{esc(first.dataset)}</a>'
    return page(label, "\n".join(parts), depth=1, crumbs=crumbs)


def _hub_url(ref: str | None) -> str | None:
    """https://huggingface.co/datasets/ORG/NAME for an ``hf://datasets/ORG/NAME[@rev]`` ref."""
    import re

    m = re.fullmatch(
        r"hf://datasets/([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(@[A-Za-z0-9._-]+)?", ref or ""
    )
    return f"https://huggingface.co/datasets/{m.group(1)}" if m else None


#: The index page's note when there is no record.
EMPTY_NOTE = "No result records yet."


def _paper_cell(cell: TableCell | None, links: set[str]) -> str:
    if cell is None:
        return "<td></td>"
    if cell.mean is None:
        why = cell.why_empty or "no result"
        pub = f" (paper {value_text(cell.metric, cell.published)})" if cell.published is not None else ""
        return f'<td class="muted" title="{esc(why)}">{DASH}{esc(pub)}</td>'
    text = value_text(cell.metric, cell.mean)
    if cell.std is not None and cell.n > 1:
        text += f" ± {value_text(cell.metric, cell.std)}"
    if cell.artifact in links:
        text_html = f'<a href="../a/{esc(cell.artifact.removeprefix("sha256:"))}.html">{esc(text)}</a>'
    else:
        text_html = esc(text)
    extra = ""
    if cell.published is not None:
        delta = f", Δ {delta_text(cell.metric, cell.delta)}" if cell.delta is not None else ""
        pub = value_text(cell.metric, cell.published)
        if cell.published_std is not None:
            pub += f" ± {value_text(cell.metric, cell.published_std)}"
        extra = f' <span class="muted">(paper {esc(pub)}{esc(delta)})</span>'
    warn = f' <span class="warn" title="{esc(cell.warning)}">⚠</span>' if cell.warning else ""
    n = f"{cell.n} of {cell.expected} seeds" if cell.expected else f"{cell.n} seeds"
    return f'<td class="num" title="{esc(n)}">{text_html}{extra}{warn}</td>'


def table_page(t: PaperTable, links: set[str]) -> str:
    """A paper table in its layout (rows x columns as the paper prints them), its plot, notes
    and findings; a cell links to its set's page when the site has one."""
    head = "".join(f"<th>{esc(c)}</th>" for c in (t.row_header, *t.columns))
    body = "".join(
        f"<tr><th>{esc(r)}</th>"
        + "".join(_paper_cell(t.cells.get((r, c)), links) for c in t.columns)
        + "</tr>"
        for r in t.rows
    )
    parts = [
        f"<h1>{esc(t.title)}</h1>",
        f'<p class="muted">{esc(t.reference)}</p>' if t.reference else "",
        f"<p>Ours: <code>{esc(t.dataset)}</code>, budget <code>{esc(t.budget)}</code>; from "
        f"<code>{esc(t.source)}</code>.</p>",
        f'<section class="box"><table class="paper" id="paper-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
        + (
            f'<p class="warn">Incomplete: {t.incomplete} position(s) missing or failed.</p>'
            if t.incomplete
            else ""
        )
        + "</section>",
    ]
    if t.png is not None:
        parts.append(
            f'<section class="box"><h2>Plot</h2><img id="plot" src="{esc(t.name)}.png" alt="{esc(t.title)}"></section>'
        )
    for heading, items in (("Findings", t.findings), ("Notes", t.notes)):
        if items:
            lis = "".join(f"<li>{esc(x)}</li>" for x in items)
            parts.append(f'<section class="box"><h2>{heading}</h2><ul>{lis}</ul></section>')
    return page(t.title, "\n".join(p for p in parts if p), depth=1, crumbs=f" / {esc(t.name)}")


def _tables_section(c: Collection) -> str:
    if not c.tables:
        return ""
    items = "".join(
        f'<tr><td><a href="t/{esc(t.name)}.html">{esc(t.name)}</a></td><td>{esc(t.title)}</td>'
        f"<td>{esc(t.dataset)}</td><td>{esc(t.budget)}</td></tr>"
        for t in sorted(c.tables, key=lambda t: t.name)
    )
    return (
        '<section class="box"><h2>Paper tables</h2><table class="sortable" id="paper-tables"><thead><tr>'
        "<th>table</th><th>title</th><th>dataset</th><th>budget</th></tr></thead>"
        f"<tbody>{items}</tbody></table></section>"
    )


def index_page(
    c: Collection, arts: dict[str, ArtifactInfo], title: str, empty_note: str | None = None
) -> str:
    """The index; ``empty_note`` (phrasing HTML, escaped by the caller) replaces EMPTY_NOTE."""
    parts = [f"<h1>{esc(title)}</h1>"]
    if not c.rows:
        parts.append(f'<p class="note" id="empty">{empty_note or EMPTY_NOTE}</p>')
    rows_html = []
    for ds in c.datasets():
        rows = c.select(ds)
        rows_html.append(
            f'<tr><td><a href="d/{quote(ds)}.html">{esc(ds)}</a></td>'
            f'<td class="num">{esc(", ".join(str(i) for i in c.ipcs(ds)))}</td>'
            f"<td>{esc(', '.join(sorted({r.method for r in rows})))}</td>"
            f"<td>{esc(', '.join(c.protocols(rows)))}</td>"
            f'<td class="num" data-sort="{len({r.digest for r in rows})}">{len({r.digest for r in rows})}</td>'
            f'<td class="num" data-sort="{sum(r.runs for r in rows)}">{sum(r.runs for r in rows)}</td></tr>'
        )
    if rows_html:
        parts.append(
            '<section class="box"><h2>Datasets</h2><table class="sortable" id="datasets"><thead><tr>'
            "<th>dataset</th><th>IPC</th><th>methods</th><th>protocols</th><th>sets</th>"
            "<th>evaluations</th></tr></thead><tbody>" + "".join(rows_html) + "</tbody></table></section>"
        )
    parts.append(_tables_section(c))
    src = "".join(f"<li><code>{esc(s)}</code></li>" for s in c.sources)
    notes = []
    if c.failed:
        notes.append(f"{c.failed} failed cell(s) are not shown.")
    if c.duplicates:
        notes.append(f"{c.duplicates} record(s) found in more than one source were counted once.")
    unreachable = sum(1 for a in arts.values() if a.info is None)
    if unreachable:
        notes.append(f"{unreachable} set(s) are not in a reachable store: their pages show their ref only.")
    parts.append(
        f'<section class="box"><h2>Sources</h2><ul>{src}</ul>'
        + "".join(f'<p class="muted">{esc(n)}</p>' for n in notes)
        + "</section>"
    )
    if c.problems:
        items = "".join(
            f"<li><code>{esc(p.source)}</code> <code>{esc(p.path)}</code>: {esc(p.problem)}</li>"
            for p in c.problems[:200]
        )
        more = f"<p>… and {len(c.problems) - 200} more.</p>" if len(c.problems) > 200 else ""
        parts.append(
            f'<section class="box" id="problems"><h2>Files that are not valid records</h2><ul>{items}</ul>{more}</section>'
        )
    return page(title, "\n".join(parts))


def render_site(
    c: Collection, arts: dict[str, ArtifactInfo], *, title: str = "Leaderboard", empty_note: str | None = None
) -> dict[str, bytes]:
    """path -> content of every file of the site (``empty_note``: see :func:`index_page`)."""
    files: dict[str, bytes] = {
        "style.css": STYLE_CSS.encode(),
        "sort.js": SORT_JS.encode(),
        "favicon.svg": FAVICON_SVG.encode(),
        "index.html": index_page(c, arts, title, empty_note).encode(),
    }
    for ds in c.datasets():
        files[f"d/{ds}.html"] = dataset_page(c, ds, arts).encode()
    for digest in c.digests():
        art = arts.get(digest) or ArtifactInfo(digest, None, problem="not looked up")
        files[f"a/{art.hex}.html"] = artifact_page(c, digest, art).encode()
        if art.grid_png is not None:
            files[f"a/{art.hex}.png"] = art.grid_png
        if art.card is not None:
            files[f"a/{art.hex}.md"] = art.card.encode("utf-8", "replace")
    links = set(c.digests())
    for t in c.tables:
        files[f"t/{t.name}.html"] = table_page(t, links).encode()
        if t.png is not None:
            files[f"t/{t.name}.png"] = t.png
    return files
