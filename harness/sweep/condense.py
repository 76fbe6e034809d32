"""Condense cells (``[[condense]]`` tables): make a set, push it, then evaluate it like any other.

A condense cell is keyed by the id of its recipe (:meth:`~.spec.CondenseEntry.id`: dataset,
method, IPC, seed, options, network, iterations, image size, and the init when it sets one). It runs on the sweep's executor
like an evaluation cell (:func:`run_condense`, dispatched by :func:`~.worker.run_cell`): the worker
calls :func:`harness.methods.loop.condense` into a work directory under the results directory,
pushes the artifact to the sweep's store under the cell's push name (which contains the id, so
the name belongs to that recipe) and removes the work directory. A cell is done when that name
resolves in the store -- the store's push is atomic, so a sweep killed at any moment either has
the version or condenses again (the same seed gives the same set). The driver alone writes the
cell's record, ``RESULTS/condense/<id>.json`` (done: ref and digest; failed: the one-line error),
and a failed cell is retried only with ``--retry-failed``. On a cluster the results directory
and the store must be shared by the workers (a shared path, a ``dcreg serve`` URL or the Hub).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dcregistry.errors import NotFoundError, UserError
from dcregistry.jsonsafe import loads_bounded

from .results import Environment, ResultFileError, SweepRef, one_line
from .spec import CondenseEntry

__all__ = [
    "CondenseCell",
    "CondenseTask",
    "CondenseOutcome",
    "CondenseRecord",
    "CondenseRecords",
    "run_condense",
    "condense_status",
]

RECORD_KIND = "dcreg-sweep-condense/1"
MAX_RECORD_BYTES = 1 << 20
CondenseState = Literal["done", "failed", "left"]


@dataclass(frozen=True)
class CondenseCell:
    """A planned condense cell: its recipe, its push name and its state."""

    entry: CondenseEntry
    name: str  # the store name it is pushed to
    state: CondenseState
    ref: str | None = None  # name@sha256:..., when done
    error: str | None = None  # when failed


@dataclass(frozen=True)
class CondenseTask:
    """What a worker needs to make one set (picklable, small)."""

    entry: CondenseEntry
    name: str
    store: str | None
    work_dir: str
    device: str = "cpu"
    data_root: str | None = None

    @property
    def key(self) -> str:
        """For messages (an evaluation task's key is its cell)."""
        return f"condense {self.name}"

    def run(self) -> CondenseOutcome:
        """Make, push and clean up (:func:`run_condense`): what a worker's ``run_cell`` calls."""
        return run_condense(self)


@dataclass(frozen=True)
class CondenseOutcome:
    """A condense cell's outcome as the worker returns it: the pushed version, or an error."""

    entry_id: str
    env: Environment
    wall_time_s: float
    ref: str | None = None  # name@vN
    digest: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.digest is not None


def _option_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_condense(task: CondenseTask) -> CondenseOutcome:
    """Make the set, push it, clean up; an error becomes the outcome's one-line ``error``."""
    from dcregistry.store import get_store
    from harness.methods.loop import CondenseSpec, condense

    from .env import environment

    t0 = time.perf_counter()
    env = environment(task.device)
    e = task.entry
    out = Path(task.work_dir) / e.id
    try:
        spec = CondenseSpec(
            dataset=e.dataset,
            method=e.method,
            ipc=e.ipc,
            out=out,
            iterations=e.iterations,
            model=e.model,
            seed=e.seed,
            device=task.device,
            data_root=task.data_root,
            image_size=e.image_size,
            init=e.init or "real",
            options={k: _option_text(v) for k, v in e.options},
            overwrite=True,  # a killed earlier attempt's leftovers
            store=task.store,
        )
        made = condense(spec)
        pushed = (
            get_store(task.store)
            .require("write", "a condense cell's push")
            .push(made.artifact.path, task.name)
        )
        shutil.rmtree(out, ignore_errors=True)
        return CondenseOutcome(
            e.id, env, round(time.perf_counter() - t0, 3), ref=pushed.ref, digest=pushed.digest
        )
    except UserError as exc:
        error = str(exc)
    except Exception as exc:  # a cell's failure is recorded; the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(out, ignore_errors=True)
    return CondenseOutcome(e.id, env, round(time.perf_counter() - t0, 3), error=one_line(error))


@dataclass(frozen=True)
class CondenseRecord:
    """``RESULTS/condense/<id>.json``: what became of a condense cell."""

    status: Literal["done", "failed"]
    entry: CondenseEntry
    name: str
    sweep: SweepRef
    env: Environment
    wall_time_s: float
    created_at: str
    ref: str | None = None
    digest: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": RECORD_KIND,
            "status": self.status,
            "id": self.entry.id,
            "recipe": self.entry.to_json(),
            "name": self.name,
            "sweep": self.sweep.to_json(),
            "env": self.env.to_json(),
            "wall_time_s": self.wall_time_s,
            "created_at": self.created_at,
            **({"ref": self.ref, "digest": self.digest} if self.status == "done" else {"error": self.error}),
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "condense record") -> CondenseRecord:
        if not isinstance(d, Mapping) or d.get("kind") != RECORD_KIND:
            raise ResultFileError(f"{where}: not a {RECORD_KIND} record")
        status = d.get("status")
        if status not in ("done", "failed"):
            raise ResultFileError(f"{where}.status: must be done or failed, got {status!r}")
        entry = CondenseEntry.from_json(d.get("recipe"), f"{where}.recipe")
        if d.get("id") != entry.id:
            raise ResultFileError(f"{where}.id: does not match its recipe")
        name, wall, created = d.get("name"), d.get("wall_time_s"), d.get("created_at")
        if not isinstance(name, str) or not isinstance(created, str):
            raise ResultFileError(f"{where}: name and created_at must be strings")
        if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not wall >= 0:
            raise ResultFileError(f"{where}.wall_time_s: must be a number >= 0")
        ref, digest, error = d.get("ref"), d.get("digest"), d.get("error")
        if status == "done" and not (isinstance(ref, str) and isinstance(digest, str)):
            raise ResultFileError(f"{where}: a done record needs ref and digest")
        if status == "failed" and not isinstance(error, str):
            raise ResultFileError(f"{where}.error: a failed record needs its one-line error")
        return cls(
            status,
            entry,
            name,
            SweepRef.from_json(d.get("sweep"), f"{where}.sweep"),
            Environment.from_json(d.get("env"), f"{where}.env"),
            float(wall),
            created,
            ref,
            digest,
            error,
        )


class CondenseRecords:
    """The condense records of a results directory (``RESULTS/condense/``)."""

    DIRNAME = "condense"

    def __init__(self, results_root: str | Path):
        self.dir = Path(results_root) / self.DIRNAME

    @property
    def work_dir(self) -> Path:
        """Where workers build sets (hidden: never a cell file)."""
        return self.dir / ".work"

    def path_for(self, entry: CondenseEntry) -> Path:
        return self.dir / f"{entry.id}.json"

    def read(self, entry: CondenseEntry) -> CondenseRecord | None:
        """The cell's record; None when it has none or it does not read (it is then recomputed)."""
        path = self.path_for(entry)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_RECORD_BYTES + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ResultFileError(f"{path}: cannot be read ({exc.strerror})") from None
        try:
            if len(data) > MAX_RECORD_BYTES:
                raise ResultFileError(f"{path}: larger than {MAX_RECORD_BYTES} bytes")
            rec = CondenseRecord.from_json(loads_bounded(data, str(path)), str(path))
        except UserError:
            return None
        return rec if rec.entry == entry else None

    def write(self, record: CondenseRecord) -> Path:
        """Write atomically (temp + fsync + rename)."""
        import json

        from dcregistry.fsio import atomic_write_text, ensure_dir

        ensure_dir(self.dir)
        path = self.path_for(record.entry)
        atomic_write_text(path, json.dumps(record.to_json(), indent=1, sort_keys=True) + "\n")
        return path


def condense_status(
    entries: tuple[CondenseEntry, ...], sweep: str, records: CondenseRecords, store_spec: str | None
) -> list[CondenseCell]:
    """Each condense cell's state: done when its name resolves in the store (the store is the
    truth: a push is atomic), failed when its record says so, else left."""
    from dcregistry.store import get_store

    store = get_store(store_spec)
    cells = []
    for e in entries:
        name = e.push_name(sweep)
        try:
            info = store.resolve(name)
        except NotFoundError:
            info = None
        if info is not None:
            cells.append(CondenseCell(e, name, "done", ref=f"{info.name}@{info.digest}"))
            continue
        rec = records.read(e)
        if rec is not None and rec.status == "failed":
            cells.append(CondenseCell(e, name, "failed", error=rec.error))
        else:
            cells.append(CondenseCell(e, name, "left"))
    return cells


def record_outcome(
    cell: CondenseCell, outcome: CondenseOutcome, sweep: SweepRef, records: CondenseRecords
) -> CondenseRecord:
    """The driver's record of a finished condense cell, written."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rec = CondenseRecord(
        "done" if outcome.ok else "failed",
        cell.entry,
        cell.name,
        sweep,
        outcome.env,
        outcome.wall_time_s,
        now,
        ref=outcome.ref,
        digest=outcome.digest,
        error=outcome.error,
    )
    records.write(rec)
    return rec


def tasks_for(
    cells: list[CondenseCell],
    store: str | None,
    records: CondenseRecords,
    device: str,
    data_root: str | None,
    retry_failed: bool,
) -> Iterator[tuple[CondenseCell, CondenseTask]]:
    """The condense cells a run computes, as tasks."""
    for c in cells:
        if c.state == "left" or (retry_failed and c.state == "failed"):
            yield c, CondenseTask(c.entry, c.name, store, str(records.work_dir), device, data_root)
