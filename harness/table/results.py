"""The table's results document (``results.json``) as typed records.

The retired ``harness table`` command built a :class:`TableResults` from its stored sets and cells;
``results.json`` is its ``to_json()``; the renderers and ``run_table``'s check of a stored document
read it with :meth:`TableResults.from_json`, whose errors name the bad field
(:class:`dcregistry.records.RecordError`). Documents written before a field existed read back with
it None (``warnings`` of a row, ``quality_warning`` of a set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dcregistry.jsonfields import Fields, is_int, is_number
from dcregistry.records import RecordError


def _is_loadavg(v: Any) -> bool:
    return v is None or (isinstance(v, list) and all(is_number(x) for x in v))


@dataclass
class SetResult:
    """One condensed set of a row: what its run recorded (``done``: the artifact exists)."""

    name: str
    seed: int
    done: bool
    # from the artifact's method_config (None: the record does not have it)
    wall_time_s: float | None = None
    s_per_iter: float | None = None
    iterations: int | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    config_hash: str | None = None
    device: str | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    quality_warning: str | None = None
    digest: str | None = None
    # from sets/<name>.run.json: 1/5/15-min load average before and after, the process's wall time
    loadavg: list[list[float] | None] = field(default_factory=lambda: [None, None])
    process_wall_s: float | None = None
    # False for a document written before runs had quality checks (it has no quality_warning)
    quality_checked: bool = True

    DONE_FIELDS = (
        "wall_time_s",
        "s_per_iter",
        "iterations",
        "peak_memory_bytes",
        "peak_memory_kind",
        "config_hash",
        "device",
        "loss_first",
        "loss_last",
        "quality_warning",
        "digest",
        "loadavg",
        "process_wall_s",
    )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "seed": self.seed, "done": self.done}
        if self.done:
            out.update({k: getattr(self, k) for k in self.DONE_FIELDS})
            if not self.quality_checked:
                del out["quality_warning"]
            out["loadavg"] = [list(x) if x is not None else None for x in self.loadavg]
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> SetResult:
        f = Fields(d, where, ("name", "seed", "done", *cls.DONE_FIELDS))
        loadavg = f.opt_array("loadavg", _is_loadavg, "load averages or nulls")
        if loadavg is not None and len(loadavg) != 2:
            raise RecordError(f"{where}.loadavg", "must be [before, after]")
        done = f.boolean("done")
        return cls(
            name=f.string("name"),
            seed=f.integer("seed"),
            done=done,
            wall_time_s=f.opt_number("wall_time_s"),
            s_per_iter=f.opt_number("s_per_iter"),
            iterations=f.opt_integer("iterations"),
            peak_memory_bytes=f.opt_integer("peak_memory_bytes"),
            peak_memory_kind=f.opt_string("peak_memory_kind"),
            config_hash=f.opt_string("config_hash"),
            device=f.opt_string("device"),
            loss_first=f.opt_number("loss_first"),
            loss_last=f.opt_number("loss_last"),
            quality_warning=f.opt_string("quality_warning"),
            digest=f.opt_string("digest"),
            loadavg=loadavg if loadavg is not None else [None, None],
            process_wall_s=f.opt_number("process_wall_s"),
            quality_checked=f.has("quality_warning") or not done,
        )


@dataclass
class ProtocolResult:
    """One (row, protocol) cell: the runs' accuracies and their mean ± std."""

    protocol: str  # the protocol id
    epochs: int
    runs: dict[str, float] = field(default_factory=dict)  # run index (as a string) -> accuracy
    n: int = 0
    mean: float | None = None
    std: float | None = None
    max_loadavg_1min: float | None = None

    FIELDS = ("protocol", "epochs", "runs", "n", "mean", "std", "max_loadavg_1min")

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "epochs": self.epochs,
            "runs": dict(self.runs),
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "max_loadavg_1min": self.max_loadavg_1min,
        }

    @classmethod
    def from_json(cls, d: Any, where: str) -> ProtocolResult:
        f = Fields(d, where, cls.FIELDS)
        runs = f.mapping("runs")
        for k, v in runs.items():
            if not k.isdigit() or not is_number(v):
                raise RecordError(f"{where}.runs.{k}", f"must map a run index to an accuracy, got {v!r}")
        return cls(
            protocol=f.string("protocol"),
            epochs=f.integer("epochs"),
            runs=runs,
            n=f.integer("n"),
            mean=f.opt_number("mean"),
            std=f.opt_number("std"),
            max_loadavg_1min=f.opt_number("max_loadavg_1min"),
        )


@dataclass
class RowResult:
    """One (method, IPC) row: its sets and, per protocol name, its cell."""

    method: str
    ipc: int
    iterations: int | None
    options: dict[str, str]
    sets: list[SetResult] = field(default_factory=list)
    protocols: dict[str, ProtocolResult] = field(default_factory=dict)
    wall_time_s: float | None = None  # mean over the finished sets
    peak_memory_bytes: int | None = None  # max over the finished sets
    warnings: list[str] | None = None  # names of the sets whose run ended with a quality warning

    FIELDS = (
        "method",
        "ipc",
        "iterations",
        "options",
        "sets",
        "protocols",
        "wall_time_s",
        "peak_memory_bytes",
        "warnings",
    )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "ipc": self.ipc,
            "iterations": self.iterations,
            "options": dict(self.options),
            "sets": [s.to_json() for s in self.sets],
            "protocols": {k: b.to_json() for k, b in self.protocols.items()},
            "wall_time_s": self.wall_time_s,
            "peak_memory_bytes": self.peak_memory_bytes,
        }
        if self.warnings is not None:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> RowResult:
        f = Fields(d, where, cls.FIELDS)
        options = f.mapping("options")
        for k, v in options.items():
            if not isinstance(v, str):
                raise RecordError(f"{where}.options.{k}", f"must be a string, got {v!r}")
        sets = f.array("sets")
        protos = f.mapping("protocols")
        return cls(
            method=f.string("method"),
            ipc=f.integer("ipc"),
            iterations=f.opt_integer("iterations"),
            options=options,
            sets=[SetResult.from_json(s, f"{where}.sets[{i}]") for i, s in enumerate(sets)],
            protocols={k: ProtocolResult.from_json(b, f"{where}.protocols.{k}") for k, b in protos.items()},
            wall_time_s=f.opt_number("wall_time_s"),
            peak_memory_bytes=f.opt_integer("peak_memory_bytes"),
            warnings=f.opt_array("warnings", lambda x: isinstance(x, str), "set names"),
        )

    @property
    def done_sets(self) -> list[SetResult]:
        return [s for s in self.sets if s.done]


@dataclass
class TableResults:
    """The whole table: its settings, rows, and what is still missing."""

    dataset: str
    image_size: int | None
    model: str
    runs: int
    sets: int
    epochs: int | None
    protocols: list[str]
    ipcs: list[int]
    rows: list[RowResult]
    missing: list[str]
    cpu_count: int | None
    generated_at: str

    FIELDS = (
        "dataset",
        "image_size",
        "model",
        "runs",
        "sets",
        "epochs",
        "protocols",
        "ipcs",
        "rows",
        "missing",
        "cpu_count",
        "generated_at",
    )

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        return {
            "dataset": self.dataset,
            "image_size": self.image_size,
            "model": self.model,
            "runs": self.runs,
            "sets": self.sets,
            "epochs": self.epochs,
            "protocols": list(self.protocols),
            "ipcs": list(self.ipcs),
            "rows": [r.to_json() for r in self.rows],
            "missing": list(self.missing),
            "cpu_count": self.cpu_count,
            "generated_at": self.generated_at,
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "results") -> TableResults:
        """Parse a stored document; :class:`RecordError` names the first bad field."""
        f = Fields(d, where, cls.FIELDS)
        rows = f.array("rows")
        return cls(
            dataset=f.string("dataset"),
            image_size=f.opt_integer("image_size"),
            model=f.string("model"),
            runs=f.integer("runs"),
            sets=f.integer("sets"),
            epochs=f.opt_integer("epochs"),
            protocols=f.array("protocols", lambda x: isinstance(x, str), "protocol names"),
            ipcs=f.array("ipcs", is_int, "integers"),
            rows=[RowResult.from_json(r, f"{where}.rows[{i}]") for i, r in enumerate(rows)],
            missing=f.array("missing", lambda x: isinstance(x, str), "strings"),
            cpu_count=f.opt_integer("cpu_count"),
            generated_at=f.string("generated_at"),
        )

    @property
    def measured_cells(self) -> int:
        """How many (row, protocol) cells hold at least one run."""
        return sum(1 for r in self.rows for b in r.protocols.values() if b.n)
