"""Paper tables found in a results directory, as pages of the site.

``harness table run NAME --results DIR -o DIR`` (or ``render``) leaves the rendered table beside
the cells: ``DIR/NAME.json`` (kind ``harness-table-results/1``: the paper's rows and columns, one
cell per position with mean, std, seeds, published value and delta) and its plot ``DIR/NAME.png``
(heat map, accuracy vs IPC, grouped bars, time vs accuracy). Each file is untrusted input: read
without following links, size-capped, checked field by field (a file that fails is listed on the
index page, never shown), and the plot is served only when it is a PNG.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..jsonsafe import loads_bounded
from .files import read_png, read_regular_file

__all__ = ["KIND", "PaperTable", "TableCell", "delta_text", "parse_table", "read_tables", "value_text"]

KIND = "harness-table-results/1"
MAX_TABLE_BYTES = 8 << 20
MAX_POSITIONS = 4096  # rows x columns of one table (the largest shipped one has 60)
MAX_TEXT = 4000  # one note, finding or label
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


#: metrics shown as fixed-point numbers, with their decimals; any other metric is a cost of a set
#: (seconds, MB: 3 significant digits). ``harness.tables.metrics`` and the site both format with
#: :func:`value_text` and :func:`delta_text`, so a table reads the same in Markdown and HTML.
FIXED_DECIMALS = {"accuracy": 1, "spearman": 2, "seconds": 1}


def value_text(metric: str, v: float) -> str:
    """A value of ``metric`` as a table shows it."""
    decimals = FIXED_DECIMALS.get(metric)
    if decimals is not None:
        return f"{v:.{decimals}f}"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def delta_text(metric: str, d: float) -> str:
    """Ours minus the paper's: points with one decimal, a cost in its own significant digits."""
    if metric in FIXED_DECIMALS:
        return f"{d:+.1f}"
    return ("+" if d >= 0 else "-") + value_text(metric, abs(d))


@dataclass(frozen=True)
class TableCell:
    """One position of a paper table, as the rendered JSON gives it."""

    mean: float | None
    std: float | None
    n: int
    expected: int
    metric: str
    published: float | None  # the paper's mean at this position
    published_std: float | None
    delta: float | None
    artifact: str | None  # sha256:<hex> of the set, when one is placed here
    warning: str | None
    why_empty: str  # what the JSON says is missing or failed (empty cells)


@dataclass(frozen=True)
class PaperTable:
    """A rendered paper table: its layout, cells, texts and plot."""

    name: str
    title: str
    reference: str
    dataset: str
    budget: str
    row_header: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], TableCell]
    notes: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    incomplete: int = 0
    source: str = ""
    png: bytes | None = field(default=None, repr=False)


def _text(v: Any, where: str, *, optional: bool = False) -> str:
    if v is None and optional:
        return ""
    if not isinstance(v, str):
        raise UserError(f"{where}: must be a string")
    if len(v) > MAX_TEXT:
        raise UserError(f"{where}: longer than {MAX_TEXT} characters")
    return v


def _texts(v: Any, where: str, limit: int = 200) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or len(v) > limit:
        raise UserError(f"{where}: must be a list of at most {limit} strings")
    return tuple(_text(x, f"{where}[{i}]") for i, x in enumerate(v))


def _number(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{where}: must be a finite number or null")
    return float(v)


def _count(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1_000_000:
        raise UserError(f"{where}: must be an integer from 0 to 1000000")
    return v


def _cell(d: Any, where: str) -> tuple[tuple[str, str], TableCell]:
    if not isinstance(d, Mapping):
        raise UserError(f"{where}: must be an object")
    artifact = d.get("artifact")
    if artifact is not None and (not isinstance(artifact, str) or not DIGEST_RE.fullmatch(artifact)):
        raise UserError(f"{where}.artifact: must be sha256:<64 hex digits> or null")
    why = [*_texts(d.get("missing"), f"{where}.missing"), *_texts(d.get("failed"), f"{where}.failed")]
    pub = d.get("published")
    if pub is not None and not isinstance(pub, Mapping):
        raise UserError(f"{where}.published: must be an object {{mean, std}} or null")
    pub = pub or {}
    cell = TableCell(
        mean=_number(d.get("mean"), f"{where}.mean"),
        std=_number(d.get("std"), f"{where}.std"),
        n=_count(d.get("n"), f"{where}.n"),
        expected=_count(d.get("expected", 0), f"{where}.expected"),
        metric=_text(d.get("metric", "accuracy"), f"{where}.metric"),
        published=_number(pub.get("mean"), f"{where}.published.mean"),
        published_std=_number(pub.get("std"), f"{where}.published.std"),
        delta=_number(d.get("delta"), f"{where}.delta"),
        artifact=artifact,
        warning=_text(d.get("quality_warning"), f"{where}.quality_warning", optional=True) or None,
        why_empty="; ".join(why)[:MAX_TEXT],
    )
    return (_text(d.get("row"), f"{where}.row"), _text(d.get("column"), f"{where}.column")), cell


def parse_table(data: bytes, where: str) -> PaperTable:
    """The table in a rendered JSON file; :class:`UserError` naming the first bad field."""
    if len(data) > MAX_TABLE_BYTES:
        raise UserError(f"{where}: is larger than {MAX_TABLE_BYTES} bytes")
    d = loads_bounded(data, where, max_bytes=MAX_TABLE_BYTES)
    if not isinstance(d, dict) or d.get("kind") != KIND:
        raise UserError(f"{where}: is not a rendered table ({KIND})")
    name = d.get("table")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(f"{where}.table: must be a table name ([a-z0-9-], at most 64 characters)")
    rows, columns = _texts(d.get("rows"), f"{where}.rows"), _texts(d.get("columns"), f"{where}.columns")
    if not rows or not columns or len(rows) * len(columns) > MAX_POSITIONS:
        raise UserError(f"{where}: rows x columns must be 1 to {MAX_POSITIONS} positions")
    raw = d.get("cells")
    if not isinstance(raw, list) or len(raw) > 4 * MAX_POSITIONS:
        raise UserError(f"{where}.cells: must be a list of at most {4 * MAX_POSITIONS} cells")
    layout = set(rows)
    cells: dict[tuple[str, str], TableCell] = {}
    for i, c in enumerate(raw):
        pos, cell = _cell(c, f"{where}.cells[{i}]")
        if pos[0] in layout and pos[1] in columns:  # other cells (a derived table's sources) not shown
            cells[pos] = cell
    missing = d.get("missing")
    return PaperTable(
        name=name,
        title=_text(d.get("title"), f"{where}.title"),
        reference=_text(d.get("reference"), f"{where}.reference", optional=True),
        dataset=_text(d.get("dataset"), f"{where}.dataset"),
        budget=_text(d.get("budget"), f"{where}.budget"),
        row_header=_text(d.get("row_header"), f"{where}.row_header", optional=True),
        rows=rows,
        columns=columns,
        cells=cells,
        notes=_texts(d.get("notes"), f"{where}.notes"),
        findings=_texts(d.get("findings"), f"{where}.findings"),
        incomplete=len(missing) if isinstance(missing, list) else 0,
    )


def read_tables(root: Path, label: str) -> Iterator[PaperTable | tuple[str, str]]:
    """Every rendered table directly in ``root`` (with its plot when that is a PNG), or
    ``(file, problem)`` for a file that claims to be one and is not."""
    for path in sorted(root.glob("*.json")):
        rel = path.name
        try:
            data = read_regular_file(path, rel, MAX_TABLE_BYTES)
            if KIND.encode() not in data[:4096]:  # the writer puts "kind" first
                continue  # another JSON file (a manifest, a record): not a rendered table
            table = parse_table(data, rel)
            if table.name != path.stem:
                raise UserError(f"{rel}: holds table {table.name!r}, not {path.stem!r}")
        except UserError as exc:
            yield rel, str(exc)
            continue
        yield replace(table, source=label, png=read_png(root / f"{path.stem}.png"))
