"""The results directory of a sweep: one JSON file per cell, written atomically by the driver.

Layout (the contract ``results ls|show|export``, push, reproduce and rank read)::

    DIR/<dataset>/ipc<N>/<artifact digest, 64 hex>/<protocol id>/seed<S>.json

A cell is (artifact digest, protocol id, seed). A done cell's file is the ``dcreg-eval/1``
record (:class:`~dcregistry.records.EvalRecord` JSON) of that one seed, with ``protocol`` the
cell's protocol (whose own ``seeds`` may be more: the record's ``seeds`` says which run it is),
plus ``status: "done"``, ``cell`` (the key), ``sweep`` (name and spec hash) and ``env`` (CPU/GPU
model, python, torch, numpy, harness versions). A failed cell's file is
``{"kind": "harness-sweep-failed/1", "status": "failed", "error": "<one line>", ...}``. Every
read is bounded and validated (:meth:`ResultsDir.read`); a file that does not parse, does not
validate or lies at the wrong place for its cell is reported (:class:`BadResultFile`), never
crashed on.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dcregistry.errors import UserError
from dcregistry.records import EvalRecord

__all__ = [
    "ResultFileError",
    "ResultsLockedError",
    "CellKey",
    "SweepRef",
    "Environment",
    "CellResult",
    "BadResultFile",
    "ScanReport",
    "ResultsDir",
    "merge_cells",
    "cell_relpath",
    "FAILED_KIND",
    "MAX_CELL_BYTES",
]

FAILED_KIND = "harness-sweep-failed/1"
#: A cell file is a few kilobytes; anything above this is refused unread.
MAX_CELL_BYTES = 1 << 20
#: A protocol id as a directory name: the characters protocol names and overrides use.
_SAFE_COMPONENT_RE = re.compile(r"[A-Za-z0-9_+,=@-][A-Za-z0-9._+,=@-]{0,199}")
_DATASET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_SEED_FILE_RE = re.compile(r"seed([0-9]{1,10})\.json")
_IPC_DIR_RE = re.compile(r"ipc([0-9]{1,9})")
_ERROR_CHARS = 500


class ResultFileError(UserError):
    """A results file (or a cell's place in the layout) is malformed."""


class ResultsLockedError(UserError):
    """Another sweep is writing the same results directory."""


def _problem(where: str, problem: str) -> ResultFileError:
    return ResultFileError(f"{where}: {problem}")


def check_protocol_id(pid: Any, where: str = "protocol id") -> str:
    """``pid`` if it can be a directory name of the layout, else ResultFileError."""
    if not isinstance(pid, str) or not _SAFE_COMPONENT_RE.fullmatch(pid) or "@" not in pid:
        raise _problem(where, f"{pid!r} is not a protocol id usable as a directory name (NAME@HASH)")
    return pid


def check_dataset(name: Any, where: str = "dataset") -> str:
    """``name`` if it is a dataset name usable as a directory name, else ResultFileError."""
    if not isinstance(name, str) or not _DATASET_RE.fullmatch(name):
        raise _problem(where, f"{name!r} is not a dataset name usable as a directory (a-z0-9._-)")
    return name


@dataclass(frozen=True, order=True)
class CellKey:
    """One cell: an artifact version (digest), a protocol (id) and one seed."""

    digest: str  # sha256:<64 hex>
    protocol_id: str
    seed: int

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    def __str__(self) -> str:
        return f"{self.hex[:12]}/{self.protocol_id}/seed{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.digest, "protocol": self.protocol_id, "seed": self.seed}

    @classmethod
    def from_json(cls, d: Any, where: str = "cell") -> CellKey:
        """Parse and validate ``{"artifact": "sha256:..", "protocol": "NAME@HASH", "seed": S}``."""
        if not isinstance(d, Mapping):
            raise _problem(where, "must be an object")
        digest, seed = d.get("artifact"), d.get("seed")
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            raise _problem(f"{where}.artifact", f"must be sha256:<64 hex>, got {digest!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise _problem(f"{where}.seed", f"must be an integer in 0..2^31-1, got {seed!r}")
        return cls(digest, check_protocol_id(d.get("protocol"), f"{where}.protocol"), seed)


def cell_relpath(dataset: str, ipc: int, key: CellKey) -> Path:
    """Where a cell's file lies under the results directory."""
    return (
        Path(check_dataset(dataset))
        / f"ipc{int(ipc)}"
        / key.hex
        / check_protocol_id(key.protocol_id)
        / f"seed{key.seed}.json"
    )


@dataclass(frozen=True)
class SweepRef:
    """Which sweep wrote a cell: its name and spec hash."""

    name: str
    hash: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "hash": self.hash}

    @classmethod
    def from_json(cls, d: Any, where: str = "sweep") -> SweepRef:
        if (
            not isinstance(d, Mapping)
            or not isinstance(d.get("name"), str)
            or not isinstance(d.get("hash"), str)
        ):
            raise _problem(where, "must be an object with string name and hash")
        return cls(d["name"], d["hash"])


@dataclass(frozen=True)
class Environment:
    """Where a cell ran: CPU and GPU model, thread count, library versions."""

    python: str
    harness: str
    torch: str | None = None
    numpy: str | None = None
    cpu: str | None = None
    gpu: str | None = None
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "harness": self.harness,
            "torch": self.torch,
            "numpy": self.numpy,
            "cpu": self.cpu,
            "gpu": self.gpu,
            "threads": self.threads,
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "env") -> Environment:
        if not isinstance(d, Mapping):
            raise _problem(where, "must be an object")
        out: dict[str, Any] = {}
        for k in ("python", "harness", "torch", "numpy", "cpu", "gpu"):
            v = d.get(k)
            if v is not None and not isinstance(v, str):
                raise _problem(f"{where}.{k}", "must be a string or null")
            out[k] = v
        threads = d.get("threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
            raise _problem(f"{where}.threads", "must be an integer or null")
        return cls(
            python=out["python"] or "?",
            harness=out["harness"] or "?",
            threads=threads,
            **{k: out[k] for k in ("torch", "numpy", "cpu", "gpu")},
        )


def one_line(text: str, limit: int = _ERROR_CHARS) -> str:
    """``text`` as one line of at most ``limit`` characters (for error fields)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class CellResult:
    """The content of one cell file: a done cell's record, or a failed cell's error."""

    status: Literal["done", "failed"]
    key: CellKey
    sweep: SweepRef
    artifact: dict[str, Any]  # ref, digest, dataset, method, ipc (as the record has it)
    env: Environment
    record: EvalRecord | None = None  # done
    error: str | None = None  # failed: one line
    wall_time_s: float | None = None
    created_at: str | None = None

    @property
    def dataset(self) -> str:
        return str(self.artifact.get("dataset"))

    @property
    def ipc(self) -> int:
        return int(self.artifact.get("ipc", 0))

    @property
    def accuracy(self) -> float | None:
        return self.record.accuracies[0] if self.record is not None else None

    def relpath(self) -> Path:
        return cell_relpath(self.dataset, self.ipc, self.key)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON: a done cell is its EvalRecord's JSON plus status, cell, sweep, env."""
        extra = {
            "status": self.status,
            "cell": self.key.to_json(),
            "sweep": self.sweep.to_json(),
            "env": self.env.to_json(),
        }
        if self.status == "done":
            assert self.record is not None
            return self.record.to_json() | extra
        return {
            "kind": FAILED_KIND,
            **extra,
            "error": self.error,
            "artifact": dict(self.artifact),
            "protocol": {"id": self.key.protocol_id},
            "seeds": [self.key.seed],
            "wall_time_s": self.wall_time_s,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "cell file") -> CellResult:
        """Parse and validate a cell file's JSON (ResultFileError/RecordError name the field)."""
        if not isinstance(d, Mapping):
            raise _problem(where, "must be a JSON object")
        status = d.get("status")
        if status not in ("done", "failed"):
            raise _problem(f"{where}.status", f"must be 'done' or 'failed', got {status!r}")
        key = CellKey.from_json(d.get("cell"), f"{where}.cell")
        sweep = SweepRef.from_json(d.get("sweep"), f"{where}.sweep")
        env = Environment.from_json(d.get("env"), f"{where}.env")
        art = d.get("artifact")
        if not isinstance(art, Mapping):
            raise _problem(f"{where}.artifact", "must be an object")
        check_dataset(art.get("dataset"), f"{where}.artifact.dataset")
        ipc = art.get("ipc")
        if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
            raise _problem(f"{where}.artifact.ipc", f"must be a positive integer, got {ipc!r}")
        if art.get("digest") != key.digest:
            raise _problem(f"{where}.artifact.digest", "differs from the cell's artifact digest")
        wall = d.get("wall_time_s")
        if wall is not None and (isinstance(wall, bool) or not isinstance(wall, (int, float))):
            raise _problem(f"{where}.wall_time_s", "must be a number or null")
        created = d.get("created_at")
        if created is not None and not isinstance(created, str):
            raise _problem(f"{where}.created_at", "must be a string or null")
        if status == "failed":
            if d.get("kind") != FAILED_KIND:
                raise _problem(f"{where}.kind", f"a failed cell's kind is {FAILED_KIND!r}")
            error = d.get("error")
            if not isinstance(error, str) or not error:
                raise _problem(f"{where}.error", "a failed cell needs its error as a string")
            return cls(
                "failed",
                key,
                sweep,
                dict(art),
                env,
                error=one_line(error),
                wall_time_s=wall,
                created_at=created,
            )
        record = EvalRecord.from_json(d, where)
        if record.protocol_id != key.protocol_id:
            raise _problem(f"{where}.protocol.id", "differs from the cell's protocol")
        if record.seeds != [key.seed] or len(record.accuracies) != 1:
            raise _problem(
                f"{where}.seeds", f"a cell holds exactly its own seed [{key.seed}] and one accuracy"
            )
        if not 0.0 <= record.accuracies[0] <= 1.0:
            raise _problem(f"{where}.accuracies", "an accuracy lies in [0, 1]")
        return cls(
            "done",
            key,
            sweep,
            dict(record.artifact),
            env,
            record=record,
            wall_time_s=record.wall_time_s,
            created_at=record.created_at,
        )


@dataclass(frozen=True)
class BadResultFile:
    """A file under the results directory that is not a valid cell file (and why)."""

    path: Path
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.problem}


@dataclass
class ScanReport:
    """Every cell file of a results directory, and the files that failed validation."""

    cells: list[CellResult] = field(default_factory=list)
    bad: list[BadResultFile] = field(default_factory=list)


class ResultsDir:
    """A results directory: the one reader and writer of cell files."""

    LOCK_NAME = ".sweep.lock"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_for(self, dataset: str, ipc: int, key: CellKey) -> Path:
        """The file of a cell (which may not exist)."""
        return self.root / cell_relpath(dataset, ipc, key)

    def read(self, path: Path) -> CellResult:
        """Read one cell file, bounded and validated, and check it lies where its cell says."""
        from dcregistry.jsonsafe import loads_bounded

        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CELL_BYTES + 1)
        except OSError as exc:
            raise _problem(str(path), f"cannot be read ({exc.strerror or exc})") from None
        if len(raw) > MAX_CELL_BYTES:
            raise _problem(str(path), f"is larger than {MAX_CELL_BYTES} bytes; not a cell file")
        result = CellResult.from_json(loads_bounded(raw, str(path), max_bytes=MAX_CELL_BYTES), str(path))
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return result
        if rel != result.relpath():
            raise _problem(str(path), f"holds cell {result.key} of {result.relpath()}, not of its own place")
        return result

    def read_cell(self, dataset: str, ipc: int, key: CellKey) -> CellResult | BadResultFile | None:
        """A cell's result, a bad file at its place, or None when it has no file."""
        path = self.path_for(dataset, ipc, key)
        if not path.is_file() and not path.is_symlink():
            return None
        try:
            return self.read(path)
        except UserError as exc:
            return BadResultFile(path, str(exc))

    def write(self, result: CellResult) -> Path:
        """Write a cell file atomically (temp + fsync + rename; replaces an older file)."""
        from dcregistry.fsio import staged_file

        path = self.root / result.relpath()
        data = json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"
        with staged_file(path, overwrite=True) as tmp:
            tmp.write_text(data, encoding="utf-8")
        return path

    def make_room(self, bad: BadResultFile) -> None:
        """Before a bad file is recomputed: remove a symbolic link (only the link) and refuse a
        directory or special file at a cell's place (the user's to remove)."""
        import stat

        try:
            st = bad.path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            bad.path.unlink()
        elif not stat.S_ISREG(st.st_mode):
            raise _problem(
                str(bad.path), "is not a regular file but lies where a cell file belongs; remove it"
            )

    def files(self) -> Iterator[Path]:
        """Every candidate cell file (temp files of writers skipped), in sorted order."""
        from dcregistry.fsio import is_tmp_name

        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*/ipc*/*/*/*")):
            if not is_tmp_name(path.name) and not path.name.startswith("."):
                yield path

    def scan(self) -> ScanReport:
        """Read every cell file; invalid ones are listed in ``bad`` with their problem."""
        report = ScanReport()
        for path in self.files():
            try:
                report.cells.append(self.read(path))
            except UserError as exc:
                report.bad.append(BadResultFile(path, str(exc)))
        return report

    def remove_stale_temp_files(self) -> int:
        """Delete temp files left by killed writers (their owner is dead); return how many."""
        from dcregistry.fsio import is_tmp_name, tmp_owner_alive

        n = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.glob("*/ipc*/*/*/.*"):
            if is_tmp_name(path.name) and not tmp_owner_alive(path.name):
                try:
                    path.unlink()
                    n += 1
                except OSError:
                    pass
        return n

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's writer lock (two sweeps writing one directory are refused)."""
        from filelock import FileLock, Timeout

        from dcregistry.fsio import ensure_dir

        ensure_dir(self.root)
        lock = FileLock(str(self.root / self.LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ResultsLockedError(
                f"{self.root}: another sweep is writing this results directory; wait for it or use another"
            ) from None
        try:
            yield
        finally:
            lock.release()
            try:
                os.unlink(self.root / self.LOCK_NAME)
            except OSError:
                pass


def merge_cells(cells: Sequence[CellResult]) -> EvalRecord:
    """One record of an artifact x protocol group from its done cells (seeds in order), with the
    mean and std ``harness eval`` computes over the same seeds."""
    done = sorted((c for c in cells if c.record is not None), key=lambda c: c.key.seed)
    if not done:
        raise ValueError("merge_cells needs at least one done cell")
    keys = {(c.key.digest, c.key.protocol_id) for c in done}
    if len(keys) != 1:
        raise ValueError("merge_cells: cells of different artifacts or protocols")
    recs = [c.record for c in done if c.record is not None]
    accs = [a for r in recs for a in r.accuracies]
    mean = statistics.fmean(accs)
    std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
    devices = sorted({r.device for r in recs})
    hosts = sorted({r.host for r in recs if r.host})
    walls = [r.wall_time_s for r in recs if r.wall_time_s is not None]
    return replace(
        recs[0],
        seeds=[s for r in recs for s in r.seeds],
        accuracies=accs,
        mean=mean,
        std=std,
        device=devices[0] if len(devices) == 1 else "mixed: " + ", ".join(devices),
        final_train_loss=[x for r in recs for x in r.final_train_loss],
        clipped=any(r.clipped for r in recs),
        baseline=None,
        wall_time_s=round(sum(walls), 3) if walls else None,
        created_at=max((r.created_at for r in recs if r.created_at), default=None),
        host=hosts[0] if len(hosts) == 1 else None,
    )
