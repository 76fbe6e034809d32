"""Reading result records from results stores and grouping them into leaderboard rows.

A *source* yields ``(path, bytes)`` pairs in the results layout
(``<dataset>/ipc<N>/<digest hex>/<protocol id>/seed<S>.json``): a results directory as
``harness sweep`` writes it (:class:`ResultsDirSource`), or the files of a results repo
(:class:`FilesSource`, e.g. ``dcreg serve``'s results repos). Every file is checked with the
results repo's own check (:func:`dcregistry.results.validate_record`, after re-encoding a
directory's indented JSON as the one line a repo stores), so a leaderboard shows exactly what
a results repo would accept; failed cells are counted, bad files listed, never shown as rows.

Rows are groups of one artifact (digest) under one protocol (id): accuracy mean and population
std over the seeds, as ``harness results ls`` and ``harness eval`` compute them. Records of
different protocols are never merged: the protocol id is part of every key.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import UserError
from ..jsonsafe import loads_bounded
from ..records import EvalRecord
from ..results import MAX_RECORD_BYTES, parse_record_path, record_bytes, validate_record
from .files import read_png, read_regular_file
from .tables import PaperTable, read_tables

__all__ = [
    "Source",
    "ResultsDirSource",
    "FilesSource",
    "Cell",
    "Row",
    "Collection",
    "collect",
]

_FAILED_KIND = "harness-sweep-failed/1"
#: a set's grid file name in a results directory (the last part of its store name)
GRID_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Source(Protocol):
    """Where records come from: a label (shown on the site) and its files."""

    label: str

    def files(self) -> Iterable[tuple[str, bytes | Exception]]:
        """``(layout path, content)`` of every candidate record file (or the read error)."""
        ...


class ResultsDirSource:
    """A results directory (``harness sweep --results DIR``): ``DIR/<dataset>/ipc<N>/...``."""

    def __init__(self, root: str | Path, label: str | None = None):
        self.root = Path(root)
        self.label = label or str(root)

    def roots(self) -> list[Path]:
        """The results directories: ``root`` itself, or (for a folder of sweeps such as
        ``sweep-results/``) each subdirectory that holds ``<dataset>/ipc<N>`` folders."""
        if not self.root.is_dir():
            return []
        if any(p.is_dir() for p in self.root.glob("*/ipc*")):
            return [self.root]
        return sorted(p for p in self.root.iterdir() if p.is_dir() and any(p.glob("*/ipc*")))

    def paths(self) -> list[Path]:
        return sorted(
            p for r in self.roots() for p in r.glob("*/ipc*/*/*/seed*.json") if not p.name.startswith(".")
        )

    def signature(self) -> tuple[Any, ...]:
        """Changes whenever a record file, a rendered table (``*.json``, ``*.png`` at the top) or
        a set's grid (``grids/*.png``) is added, removed or rewritten (for caching)."""
        out = []
        tops = [
            p for r in self.roots() for pat in ("*.json", "*.png", "grids/*.png") for p in sorted(r.glob(pat))
        ]
        for p in [*self.paths(), *tops]:
            try:
                st = p.lstat()
            except OSError:
                continue
            out.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def files(self) -> Iterator[tuple[str, bytes | Exception]]:
        for root in self.roots():
            yield from self._files(root)

    def _files(self, root: Path) -> Iterator[tuple[str, bytes | Exception]]:
        for path in sorted(p for p in root.glob("*/ipc*/*/*/seed*.json") if not p.name.startswith(".")):
            rel = path.relative_to(root).as_posix()
            try:
                data = read_regular_file(path, rel, MAX_RECORD_BYTES)
            except UserError as exc:
                yield rel, exc
                continue
            yield rel, data

    def grid(self, ref: str) -> bytes | None:
        """``grids/<name>.png`` of a results directory, ``name`` the last part of the set's store
        name in ``ref`` (``harness table run/render -o`` into it writes one per set): the sample
        grid of a set no reachable store holds."""
        name = ref.partition("@")[0].rsplit("/", 1)[-1]
        if not GRID_NAME_RE.fullmatch(name):
            return None
        for root in self.roots():
            if (png := read_png(root / "grids" / f"{name}.png")) is not None:
                return png
        return None

    def tables(self) -> Iterator[PaperTable | tuple[str, str]]:
        """The rendered paper tables in each results directory (:mod:`.tables`)."""
        for root in self.roots():
            yield from read_tables(root, self.label)


class FilesSource:
    """Record files given as ``(path, bytes)`` (a results repo's tree; ``files`` is re-called on
    every build)."""

    def __init__(self, label: str, files: Callable[[], Iterable[tuple[str, bytes | Exception]]]):
        self.label = label
        self._files = files

    def files(self) -> Iterable[tuple[str, bytes | Exception]]:
        return self._files()


@dataclass(frozen=True)
class Cell:
    """One valid record file: one seed of one artifact under one protocol."""

    source: str
    path: str
    record: EvalRecord
    env: dict[str, Any]

    @property
    def seed(self) -> int:
        return self.record.seeds[0]

    @property
    def accuracy(self) -> float:
        return self.record.accuracies[0]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.pstdev(xs) if len(xs) > 1 else 0.0)


@dataclass
class Row:
    """One artifact under one protocol: its seeds' accuracies and (when recorded) DD-Ranking."""

    dataset: str
    ipc: int
    digest: str
    protocol_id: str
    method: str
    ref: str | None
    protocol: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    @property
    def seeds(self) -> list[int]:
        return [c.seed for c in self.cells]

    @property
    def accuracies(self) -> list[float]:
        return [c.accuracy for c in self.cells]

    @property
    def runs(self) -> int:
        return len(self.cells)

    @property
    def mean_std(self) -> tuple[float, float]:
        return _mean_std(self.accuracies)

    def _rank_runs(self, metric: str) -> list[float]:
        out: list[float] = []
        for c in self.cells:
            rank = c.record.rank
            if rank is not None:
                out.extend(rank.ior_runs if metric == "ior" else rank.lrs_runs)
        return out

    def rank(self, metric: str) -> tuple[float, float, int] | None:
        """(mean, std, seeds) of ``ior`` or ``lrs`` over the seeds whose record has a rank
        block; None when none has."""
        xs = self._rank_runs(metric)
        if not xs:
            return None
        mean, std = _mean_std(xs)
        return mean, std, len(xs)

    @property
    def has_rank(self) -> bool:
        return any(c.record.rank is not None for c in self.cells)

    @property
    def devices(self) -> list[str]:
        out: list[str] = []
        for c in self.cells:
            d = c.record.device
            gpu = c.env.get("gpu")
            text = f"{d} ({gpu})" if isinstance(gpu, str) and gpu and gpu not in d else d
            if text not in out:
                out.append(text)
        return out

    @property
    def protocol_name(self) -> str:
        name = self.protocol.get("name")
        return name if isinstance(name, str) and name else self.protocol_id.split("@")[0]


@dataclass(frozen=True)
class Problem:
    """A file that is not a valid record (shown on the site's index, never as a row)."""

    source: str
    path: str
    problem: str


@dataclass
class Collection:
    """Everything read from the sources: rows by key, failed cells, bad files."""

    rows: dict[tuple[str, str], Row] = field(default_factory=dict)  # (digest, protocol id)
    failed: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0
    sources: list[str] = field(default_factory=list)
    tables: list[PaperTable] = field(default_factory=list)  # rendered paper tables

    def datasets(self) -> list[str]:
        return sorted({r.dataset for r in self.rows.values()})

    def ipcs(self, dataset: str) -> list[int]:
        return sorted({r.ipc for r in self.rows.values() if r.dataset == dataset})

    def select(self, dataset: str, ipc: int | None = None) -> list[Row]:
        return [r for r in self.rows.values() if r.dataset == dataset and (ipc is None or r.ipc == ipc)]

    def protocols(self, rows: Iterable[Row]) -> list[str]:
        return sorted({r.protocol_id for r in rows})

    def digests(self) -> list[str]:
        return sorted({r.digest for r in self.rows.values()})


def _decode(path: str, data: bytes) -> tuple[EvalRecord | None, dict[str, Any]]:
    """The record in a file (None for a failed cell) and the file's JSON; UserError naming the
    problem."""
    if parse_record_path(path) is None:
        raise UserError(f"{path[:200]}: is not a results-layout path")
    if len(data) > MAX_RECORD_BYTES:
        raise UserError(f"{path[:200]}: is larger than {MAX_RECORD_BYTES} bytes")
    obj = loads_bounded(data, path[:200], max_bytes=MAX_RECORD_BYTES)
    if isinstance(obj, dict) and obj.get("status") == "failed" and obj.get("kind") == _FAILED_KIND:
        return None, obj
    if not isinstance(obj, dict):
        raise UserError(f"{path[:200]}: is not a JSON object")
    return validate_record(path, record_bytes(obj)), obj


def collect(sources: Iterable[Source]) -> Collection:
    """Read every source; group valid records by (artifact digest, protocol id)."""
    out = Collection()
    seen: dict[tuple[str, str, int], Cell] = {}
    for src in sources:
        out.sources.append(src.label)
        for path, data in src.files():
            if isinstance(data, Exception):
                out.problems.append(Problem(src.label, path, str(data)))
                continue
            try:
                record, obj = _decode(path, data)
            except UserError as exc:
                out.problems.append(Problem(src.label, path, str(exc)))
                continue
            if record is None:
                out.failed += 1
                continue
            env = obj.get("env") or {}
            cell = Cell(src.label, path, record, dict(env) if isinstance(env, dict) else {})
            key = (record.artifact["digest"], record.protocol_id, cell.seed)
            if key in seen:  # the same cell from two sources (a directory and its pushed repo)
                out.duplicates += 1
                continue
            seen[key] = cell
            art = record.artifact
            row = out.rows.get(key[:2])
            if row is None:
                method = art.get("method")
                ref = art.get("ref")
                row = out.rows[key[:2]] = Row(
                    dataset=str(art["dataset"]),
                    ipc=int(art["ipc"]),
                    digest=key[0],
                    protocol_id=key[1],
                    method=method if isinstance(method, str) and method else "?",
                    ref=ref if isinstance(ref, str) and ref else None,
                    protocol=dict(record.protocol),
                )
            row.cells.append(cell)
        for found in getattr(src, "tables", lambda: ())():
            if isinstance(found, tuple):
                out.problems.append(Problem(src.label, *found))
            elif all(t.name != found.name for t in out.tables):  # the first source's copy
                out.tables.append(found)
    for row in out.rows.values():
        row.cells.sort(key=lambda c: c.seed)
        assert all(math.isfinite(a) for a in row.accuracies)
    return out
