"""Planning a sweep: resolve the spec's artifacts to digests and expand the cells; the state of
each cell in a results directory (done, failed, left); counts per axis and a time estimate."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dcregistry.errors import UserError
from harness.protocols import Protocol

from .results import BadResultFile, CellKey, CellResult, ResultsDir, check_dataset, check_protocol_id
from .spec import ArtifactEntry, SweepSpec, SweepSpecError

if TYPE_CHECKING:
    from .condense import CondenseCell

__all__ = ["PlannedArtifact", "Cell", "Plan", "plan_sweep", "CellState", "SweepStatus", "sweep_status"]


@dataclass(frozen=True)
class PlannedArtifact:
    """An artifact version the sweep evaluates, pinned by digest, and how a worker opens it."""

    digest: str  # sha256:<hex>
    ref: str  # what records show: ns/name@vN, or the directory
    open_ref: str  # what a worker opens: ns/name@sha256:<hex> (pinned), or the absolute directory
    store: str | None  # the store spec open_ref is resolved in (None: a directory, or the default store)
    dataset: str
    ipc: int
    method: str
    in_store: bool  # a store version (can be annotated) rather than a directory

    @property
    def short(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "ref": self.ref,
            "open_ref": self.open_ref,
            "store": self.store,
            "dataset": self.dataset,
            "ipc": self.ipc,
            "method": self.method,
            "in_store": self.in_store,
        }


@dataclass(frozen=True)
class Cell:
    """One unit of work: an artifact, a protocol and one seed."""

    key: CellKey
    artifact: PlannedArtifact
    protocol: Protocol  # the cell's protocol (keyed by its id); a run restricts it to key.seed


@dataclass
class Plan:
    """The expanded sweep: its artifacts, protocols and cells (artifact-major order)."""

    spec: SweepSpec
    artifacts: list[PlannedArtifact]
    protocols: list[Protocol]
    seeds: dict[str, list[int]]  # protocol id -> its seeds
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)  # e.g. a query that matched nothing
    # [[condense]] cells and their state; the sets of done ones are among `artifacts`
    condense: list[CondenseCell] = field(default_factory=list)
    store: str | None = None  # the store the spec's artifacts (and condensed sets) live in
    results: str | None = None  # the results directory the condense state was read from

    @property
    def condense_left(self) -> int:
        """Condense cells not done (their evaluation cells are planned once their sets exist)."""
        return sum(1 for c in self.condense if c.state != "done")


def _resolve_entry(
    entry: ArtifactEntry, where: str, spec: SweepSpec, store_spec: str | None
) -> list[PlannedArtifact]:
    from dcregistry.refs import is_name_ref
    from dcregistry.store import get_store, store_for

    if entry.kind == "query":
        store = get_store(store_spec)
        return [_from_info(info, store_spec) for info in store.list(query=entry.text)]
    text = entry.text
    if text.startswith("hf://") or is_name_ref(text):
        info = store_for(text, store_spec).resolve(text)
        hub = store_spec if store_spec and store_spec.startswith(("hf", "hub", "http")) else "hub"
        return [_from_info(info, hub if text.startswith("hf://") else store_spec)]
    from dcregistry.artifact import open_artifact

    path = Path(text).expanduser()
    if not path.is_absolute() and spec.base_dir is not None:
        path = spec.base_dir / path
    if not path.is_dir():
        raise SweepSpecError(
            f"{where}: {text!r} is neither a store reference (ns/name[@v..]) nor an artifact directory"
        )
    art = open_artifact(path, verify=False)  # the worker verifies before evaluating
    md = art.metadata
    return [
        PlannedArtifact(
            digest=art.digest,
            ref=str(path),
            open_ref=str(path.resolve()),
            store=None,
            dataset=check_dataset(md.get("dataset"), f"{where}: metadata.dataset"),
            ipc=int(md["ipc"]),
            method=str(md.get("method", "?")),
            in_store=False,
        )
    ]


def _from_info(info: Any, store_spec: str | None) -> PlannedArtifact:
    md = info.metadata or {}
    ipc = md.get("ipc")
    if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
        raise SweepSpecError(f"{info.ref}: metadata.ipc is {ipc!r}, not a positive integer")
    return PlannedArtifact(
        digest=info.digest,
        ref=info.ref,
        open_ref=f"{info.name}@{info.digest}",
        store=store_spec,
        dataset=check_dataset(md.get("dataset"), f"{info.ref}: metadata.dataset"),
        ipc=ipc,
        method=str(md.get("method", "?")),
        in_store=True,
    )


def plan_sweep(spec: SweepSpec, store: str | None = None, results: str | Path | None = None) -> Plan:
    """Resolve every artifact entry (references and queries, once, to digests) and expand the
    cells artifact x protocol x seed; ``store`` overrides the spec's store. The sets of done
    ``[[condense]]`` cells join the artifacts (``results``: where failed ones are recorded)."""
    from .condense import CondenseRecords, condense_status

    store_spec = store or spec.store
    artifacts: dict[str, PlannedArtifact] = {}
    notes: list[str] = []
    condense = []
    if spec.condense:
        records = CondenseRecords(results if results is not None else Path(spec.name))
        condense = condense_status(spec.condense, spec.name, records, store_spec)
        for c in condense:
            if c.ref is not None:
                found = _resolve_entry(ArtifactEntry("ref", c.ref), f"condense {c.name}", spec, store_spec)
                for art in found:
                    artifacts.setdefault(art.digest, art)
    for i, entry in enumerate(spec.artifacts):
        where = f"{spec.name}: artifacts[{i}] {entry.text!r}"
        try:
            found = _resolve_entry(entry, where, spec, store_spec)
        except SweepSpecError:
            raise
        except UserError as exc:
            raise SweepSpecError(f"{where}: {exc}") from None
        if not found:
            notes.append(f"artifacts[{i}] {entry.text!r} matched no version")
        for art in found:
            artifacts.setdefault(art.digest, art)  # listed twice (a ref and a query): one artifact
    protocols = [p.protocol(f"{spec.name}: protocols[{i}]") for i, p in enumerate(spec.protocols)]
    seeds: dict[str, list[int]] = {}
    for p in protocols:
        check_protocol_id(p.id, f"{spec.name}: protocol {p.id!r}")
        seeds[p.id] = list(spec.seeds) if spec.seeds is not None else p.seeds
    cells = [
        Cell(CellKey(a.digest, p.id, s), a, p)
        for a in artifacts.values()
        for p in protocols
        for s in seeds[p.id]
    ]
    plan = Plan(
        spec,
        list(artifacts.values()),
        protocols,
        seeds,
        cells,
        notes,
        condense,
        store_spec,
        None if results is None else str(results),
    )
    if not cells and not plan.condense_left:
        raise SweepSpecError(f"{spec.name}: the sweep has no cells ({'; '.join(notes) or 'no artifacts'})")
    return plan


CellState = Literal["done", "failed", "left"]


@dataclass
class SweepStatus:
    """The state of every planned cell in a results directory, with counts per axis."""

    plan: Plan
    states: dict[CellKey, CellState]
    results: dict[CellKey, CellResult]  # done and failed cells as read
    bad: list[BadResultFile]  # files at a cell's place that failed validation (counted as left)

    def count(self, state: CellState | None = None, **axis: Any) -> int:
        """Cells in ``state`` (any if None), optionally on one axis value (digest=, protocol_id=, seed=)."""
        return sum(
            1
            for c in self.plan.cells
            if (state is None or self.states[c.key] == state)
            and all(getattr(c.key, k) == v for k, v in axis.items())
        )

    def todo(self, retry_failed: bool = False) -> list[Cell]:
        """The cells a run computes: left ones, and failed ones with ``retry_failed``."""
        want = {"left", "failed"} if retry_failed else {"left"}
        return [c for c in self.plan.cells if self.states[c.key] in want]

    def estimate_s(self, workers: int = 1, retry_failed: bool = False) -> float | None:
        """Seconds the remaining cells should take on ``workers`` workers, from the recorded wall
        times of done cells (per protocol where it has some, else overall); None without any."""
        walls: dict[str, list[float]] = {}
        for r in self.results.values():
            if r.status == "done" and r.wall_time_s is not None:
                walls.setdefault(r.key.protocol_id, []).append(r.wall_time_s)
        if not walls:
            return None
        overall = statistics.fmean(w for ws in walls.values() for w in ws)
        per = {pid: statistics.fmean(ws) for pid, ws in walls.items()}
        total = sum(per.get(c.key.protocol_id, overall) for c in self.todo(retry_failed))
        return total / max(1, workers)

    def axes(self) -> list[tuple[str, list[tuple[str, dict[str, int]]]]]:
        """Per axis (artifact, protocol, seed): rows of (label, {done, failed, left})."""
        out = []
        for axis, values in (
            ("artifact", [(f"{a.ref} ({a.short})", {"digest": a.digest}) for a in self.plan.artifacts]),
            ("protocol", [(p.id, {"protocol_id": p.id}) for p in self.plan.protocols]),
            ("seed", [(str(s), {"seed": s}) for s in sorted({c.key.seed for c in self.plan.cells})]),
        ):
            rows = [
                (label, {st: self.count(st, **sel) for st in ("done", "failed", "left")})
                for label, sel in values
            ]
            out.append((axis, rows))
        return out

    def totals(self) -> dict[str, int]:
        counts = Counter(self.states.values())
        return {"total": len(self.plan.cells), **{s: counts.get(s, 0) for s in ("done", "failed", "left")}}

    def to_json(self, workers: int = 1) -> dict[str, Any]:
        return {
            "sweep": {"name": self.plan.spec.name, "hash": self.plan.spec.hash},
            "artifacts": [a.to_json() for a in self.plan.artifacts],
            "protocols": [p.id for p in self.plan.protocols],
            "seeds": self.plan.seeds,
            "cells": self.totals(),
            "condense": [
                {"name": c.name, "id": c.entry.id, "state": c.state, "ref": c.ref, "error": c.error}
                for c in self.plan.condense
            ],
            "axes": {
                axis: [{"value": label, **counts} for label, counts in rows] for axis, rows in self.axes()
            },
            "estimate_s": self.estimate_s(workers),
            "workers": workers,
            "bad_files": [b.to_json() for b in self.bad],
            "notes": list(self.plan.notes),
        }

    def format(self, workers: int = 1) -> str:
        """Counts per axis, totals and the estimate, as text."""
        lines = [f"sweep {self.plan.spec.name} (spec {self.plan.spec.hash[:12]})"]
        lines += [f"note: {n}" for n in self.plan.notes]
        for axis, rows in self.axes():
            lines.append(f"{axis}s: {len(rows)}")
            if not rows:
                continue
            width = max(len(label) for label, _ in rows)
            for label, c in rows:
                lines.append(
                    f"  {label:<{width}}  done {c['done']:>4}  failed {c['failed']:>4}  left {c['left']:>4}"
                )
        if self.plan.condense:
            cs = Counter(c.state for c in self.plan.condense)
            lines.append(
                f"condense cells: {len(self.plan.condense)} total, {cs['done']} done, {cs['failed']} failed, "
                f"{cs['left']} left"
                + (
                    " (their evaluation cells are planned once their sets exist)"
                    if self.plan.condense_left
                    else ""
                )
            )
            for cc in self.plan.condense:
                if cc.state == "failed":
                    lines.append(f"  failed: {cc.name}: {cc.error}")
        t = self.totals()
        lines.append(f"cells: {t['total']} total, {t['done']} done, {t['failed']} failed, {t['left']} left")
        est = self.estimate_s(workers)
        n_done = t["done"]
        if t["left"] == 0:
            lines.append("estimate: nothing left")
        elif est is None:
            lines.append("estimate: none yet (no done cell has a recorded time)")
        else:
            lines.append(
                f"estimate: {_duration(est)} for {t['left']} left cells on {workers} worker(s) (from {n_done} done cells)"
            )
        for b in self.bad:
            lines.append(f"bad file (will be recomputed): {b.problem}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def sweep_status(plan: Plan, results: ResultsDir) -> SweepStatus:
    """Read the file of every planned cell: done, failed, or left (absent or bad)."""
    states: dict[CellKey, CellState] = {}
    found: dict[CellKey, CellResult] = {}
    bad: list[BadResultFile] = []
    for cell in plan.cells:
        got = results.read_cell(cell.artifact.dataset, cell.artifact.ipc, cell.key)
        if isinstance(got, CellResult):
            states[cell.key] = got.status
            found[cell.key] = got
        else:
            states[cell.key] = "left"
            if got is not None:
                bad.append(got)
    return SweepStatus(plan, states, found, bad)
