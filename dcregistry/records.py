"""The evaluation result record (``dcreg-eval/1``) as a typed object, torch-free.

``harness eval`` produces an :class:`EvalRecord`; stores keep its JSON as an "eval" annotation;
the card, ``dcreg show`` and the harness CLI table read it back with :meth:`EvalRecord.from_json`
instead of picking at dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from .errors import ValidationError

RECORD_KIND = "dcreg-eval/1"


class RecordError(ValidationError):
    """A stored evaluation record is malformed."""


@overload
def _num(d: Mapping[str, Any], key: str, where: str, optional: Literal[False] = False) -> float: ...


@overload
def _num(d: Mapping[str, Any], key: str, where: str, optional: bool) -> float | None: ...


def _num(d: Mapping[str, Any], key: str, where: str, optional: bool = False) -> float | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RecordError(f"{where}.{key}", f"must be a finite number, got {v!r}")
    return float(v)


def _nums(d: Mapping[str, Any], key: str, where: str) -> list[float]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise RecordError(f"{where}.{key}", "must be a list of numbers")
    return [float(x) for x in v]


def _obj(d: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key) or {}
    if not isinstance(v, Mapping):
        raise RecordError(f"{where}.{key}", "must be an object")
    return dict(v)


@dataclass(frozen=True)
class Baseline:
    """The equal-size random real subset evaluated under the same protocol."""

    ipc: int
    accuracies: list[float]
    mean: float
    std: float
    delta: float  # record mean - baseline mean
    kind: str = "random-real"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ipc": self.ipc,
            "accuracies": list(self.accuracies),
            "mean": self.mean,
            "std": self.std,
            "delta": self.delta,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "record.baseline") -> Baseline:
        return cls(
            ipc=int(d.get("ipc", 0)),
            accuracies=_nums(d, "accuracies", where),
            mean=_num(d, "mean", where),
            std=_num(d, "std", where),
            delta=_num(d, "delta", where),
            kind=str(d.get("kind", "random-real")),
        )


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation of one artifact under one protocol (all runs)."""

    artifact: dict[str, Any]  # ref, digest, dataset, method, ipc
    protocol: dict[str, Any]  # id, name, hash, content, overrides
    seeds: list[int]
    accuracies: list[float]
    mean: float
    std: float
    device: str = "?"
    harness_version: str | None = None
    torch_version: str | None = None
    strategy: dict[str, Any] = field(default_factory=dict)  # name, measured, reason
    final_train_loss: list[float] = field(default_factory=list)
    lr: float | None = None
    clipped: bool = False
    baseline: Baseline | None = None
    wall_time_s: float | None = None
    created_at: str | None = None
    host: str | None = None
    kind: str = RECORD_KIND

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in result files and store annotations."""
        return {
            "kind": self.kind,
            "artifact": dict(self.artifact),
            "protocol": dict(self.protocol),
            "harness_version": self.harness_version,
            "torch_version": self.torch_version,
            "device": self.device,
            "strategy": dict(self.strategy),
            "seeds": list(self.seeds),
            "accuracies": list(self.accuracies),
            "mean": self.mean,
            "std": self.std,
            "final_train_loss": list(self.final_train_loss),
            "lr": self.lr,
            "clipped": self.clipped,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "wall_time_s": self.wall_time_s,
            "created_at": self.created_at,
            "host": self.host,
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "record") -> EvalRecord:
        """Parse a stored record; raise :class:`RecordError` naming the bad field."""
        if not isinstance(d, Mapping):
            raise RecordError(where, "must be an object")
        kind = d.get("kind", RECORD_KIND)
        if kind != RECORD_KIND:
            raise RecordError(f"{where}.kind", f"is {kind!r}, expected {RECORD_KIND!r}")
        proto = _obj(d, "protocol", where)
        if not isinstance(proto.get("id"), str):
            raise RecordError(f"{where}.protocol.id", "must be a string")
        seeds = d.get("seeds", [])
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise RecordError(f"{where}.seeds", "must be a list of integers")
        base = d.get("baseline")
        if base is not None and not isinstance(base, Mapping):
            raise RecordError(f"{where}.baseline", "must be an object or null")
        return cls(
            artifact=_obj(d, "artifact", where),
            protocol=proto,
            seeds=list(seeds),
            accuracies=_nums(d, "accuracies", where),
            mean=_num(d, "mean", where),
            std=_num(d, "std", where),
            device=str(d.get("device", "?")),
            harness_version=d.get("harness_version"),
            torch_version=d.get("torch_version"),
            strategy=_obj(d, "strategy", where),
            final_train_loss=_nums(d, "final_train_loss", where),
            lr=_num(d, "lr", where, optional=True),
            clipped=bool(d.get("clipped", False)),
            baseline=Baseline.from_json(base, f"{where}.baseline") if base else None,
            wall_time_s=_num(d, "wall_time_s", where, optional=True),
            created_at=d.get("created_at"),
            host=d.get("host"),
            kind=kind,
        )

    def __getitem__(self, key: str) -> Any:
        """JSON-field access (``record["mean"]``), the same values as :meth:`to_json`."""
        return self.to_json()[key]

    # --- views --------------------------------------------------------------------------------

    @property
    def protocol_id(self) -> str:
        pid: str = self.protocol["id"]  # a string (from_json checks it)
        return pid

    @property
    def runs(self) -> int:
        return len(self.accuracies)

    def protocol_field(self, name: str, default: Any = "?") -> Any:
        """A field of the protocol's hashed content (arch, augmentation, epochs ...)."""
        return (self.protocol.get("content") or {}).get(name, default)

    def accuracy_text(self) -> str:
        """``mean ± std`` in percent."""
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}"

    def summary(self) -> str:
        """One line: ``protocol: mean ± std % over R runs (; random real ... (delta))``."""
        line = f"{self.protocol_id}: {self.accuracy_text()} % over {self.runs} runs"
        if self.baseline:
            b = self.baseline
            line += f"; random real {100 * b.mean:.2f} ± {100 * b.std:.2f} % (delta {100 * b.delta:+.2f})"
        return line

    def card_row(self) -> str:
        """A row of the card's results table (see :data:`CARD_TABLE_HEADER`)."""
        b = self.baseline
        base = f"{100 * b.mean:.2f} ± {100 * b.std:.2f}" if b else "-"
        delta = f"{100 * b.delta:+.2f}" if b else "-"
        return (
            f"| `{self.protocol_id}` | {self.protocol_field('arch')} | "
            f"{self.protocol_field('augmentation')} | {self.protocol_field('epochs')} | "
            f"{self.runs} | {self.accuracy_text()} | {base} | {delta} | {self.device} |"
        )


CARD_TABLE_HEADER = (
    "| protocol | arch | augmentation | epochs | runs | accuracy (%) | "
    "random real (%) | delta | device |\n|---|---|---|---|---|---|---|---|---|"
)
