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
from .ranking import ars, check_lambda, lrs

RECORD_KIND = "dcreg-eval/1"
RANK_KIND = "dd-ranking/1"


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


def _mean_std(xs: list[float]) -> tuple[float, float]:
    mean = math.fsum(xs) / len(xs)
    var = math.fsum((x - mean) ** 2 for x in xs) / len(xs)
    return mean, math.sqrt(var)


def _fractions(d: Mapping[str, Any], key: str, where: str, runs: int | None) -> list[float]:
    xs = _nums(d, key, where)
    if not xs or not all(0.0 <= x <= 1.0 for x in xs):
        raise RecordError(f"{where}.{key}", "must be a non-empty list of accuracies in [0, 1]")
    if runs is not None and len(xs) != runs:
        raise RecordError(f"{where}.{key}", f"has {len(xs)} values, expected one per seed ({runs})")
    return xs


@dataclass(frozen=True)
class RankBlock:
    """DD-Ranking's metrics of a set under the record's protocol and seeds (``harness rank``).

    The component accuracies are stored per seed, as fractions in [0, 1]; the scores are
    computed from them per seed (:mod:`dcregistry.ranking`) and reported as mean and std over
    seeds, as DD-Ranking does. A soft-label set's IOR uses its soft labels and its HLR the
    argmax labels (``labels = "soft"``); for a hard-label set both use its labels.
    """

    lam: float
    labels: str  # "hard" | "soft": the set's label kind
    set_acc: list[float]  # IOR's set accuracy (soft labels for a soft set)
    random_acc: list[float]  # the equal-size class-balanced random real subset
    set_hard_acc: list[float]  # HLR's set accuracy (argmax labels for a soft set)
    full_acc: list[float]  # the full real training set
    set_noaug_acc: list[float] | None = None  # ARS: the same, with augmentation "none"
    random_noaug_acc: list[float] | None = None
    full_data: dict[str, Any] = field(default_factory=dict)  # protocol id, cache key, cached
    kind: str = RANK_KIND

    def __post_init__(self) -> None:
        runs = len(self.set_acc)
        series = [self.random_acc, self.set_hard_acc, self.full_acc]
        if (self.set_noaug_acc is None) != (self.random_noaug_acc is None):
            raise RecordError("set_noaug_acc", "and random_noaug_acc go together")
        if self.set_noaug_acc is not None and self.random_noaug_acc is not None:
            series += [self.set_noaug_acc, self.random_noaug_acc]
        if runs == 0 or any(len(s) != runs for s in series):
            raise RecordError("set_acc", "every component needs one accuracy per seed, and at least one")
        if self.labels not in ("hard", "soft"):
            raise RecordError("labels", f"must be hard or soft, got {self.labels!r}")
        try:
            check_lambda(self.lam)
        except ValueError as exc:
            raise RecordError("lam", str(exc)) from None

    # --- per seed, then mean over seeds ---------------------------------------------------

    @property
    def ior_runs(self) -> list[float]:
        return [s - r for s, r in zip(self.set_acc, self.random_acc, strict=True)]

    @property
    def hlr_runs(self) -> list[float]:
        return [f - s for f, s in zip(self.full_acc, self.set_hard_acc, strict=True)]

    @property
    def lrs_runs(self) -> list[float]:
        return [lrs(i, h, self.lam) for i, h in zip(self.ior_runs, self.hlr_runs, strict=True)]

    @property
    def ars_runs(self) -> list[float] | None:
        if self.set_noaug_acc is None or self.random_noaug_acc is None:
            return None
        noaug = [s - r for s, r in zip(self.set_noaug_acc, self.random_noaug_acc, strict=True)]
        return [ars(a, n, self.lam) for a, n in zip(self.ior_runs, noaug, strict=True)]

    @property
    def ior(self) -> float:
        return _mean_std(self.ior_runs)[0]

    @property
    def hlr(self) -> float:
        return _mean_std(self.hlr_runs)[0]

    @property
    def lrs(self) -> float:
        return _mean_std(self.lrs_runs)[0]

    @property
    def ars(self) -> float | None:
        runs = self.ars_runs
        return _mean_std(runs)[0] if runs is not None else None

    def scores(self) -> dict[str, dict[str, float] | None]:
        """``{ior, hlr, lrs, ars: {mean, std} | None}`` (fractions; LRS/ARS in [0, 1])."""
        out: dict[str, dict[str, float] | None] = {}
        for name, runs in (
            ("ior", self.ior_runs),
            ("hlr", self.hlr_runs),
            ("lrs", self.lrs_runs),
            ("ars", self.ars_runs),
        ):
            if runs is None:
                out[name] = None
            else:
                mean, std = _mean_std(runs)
                out[name] = {"mean": mean, "std": std}
        return out

    def text(self) -> str:
        """``IOR +x.xx pt · HLR y.yy pt · LRS 0.zzz · ARS 0.www`` (IOR/HLR in points)."""
        parts = [f"IOR {100 * self.ior:+.2f} pt", f"HLR {100 * self.hlr:+.2f} pt", f"LRS {self.lrs:.3f}"]
        a = self.ars
        parts.append(f"ARS {a:.3f}" if a is not None else "ARS -")
        return " · ".join(parts)

    # --- JSON -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lam": self.lam,
            "labels": self.labels,
            "set_acc": list(self.set_acc),
            "random_acc": list(self.random_acc),
            "set_hard_acc": list(self.set_hard_acc),
            "full_acc": list(self.full_acc),
            "set_noaug_acc": list(self.set_noaug_acc) if self.set_noaug_acc is not None else None,
            "random_noaug_acc": list(self.random_noaug_acc) if self.random_noaug_acc is not None else None,
            "full_data": dict(self.full_data),
            "scores": self.scores(),  # derived; checked against the components on read
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "record.rank") -> RankBlock:
        if not isinstance(d, Mapping):
            raise RecordError(where, "must be an object")
        kind = d.get("kind", RANK_KIND)
        if kind != RANK_KIND:
            raise RecordError(f"{where}.kind", f"is {kind!r}, expected {RANK_KIND!r}")
        set_acc = _fractions(d, "set_acc", where, None)
        runs = len(set_acc)
        noaug = d.get("set_noaug_acc") is not None or d.get("random_noaug_acc") is not None
        fields: dict[str, Any] = {
            "lam": _num(d, "lam", where),
            "labels": str(d.get("labels")),
            "set_acc": set_acc,
            "random_acc": _fractions(d, "random_acc", where, runs),
            "set_hard_acc": _fractions(d, "set_hard_acc", where, runs),
            "full_acc": _fractions(d, "full_acc", where, runs),
            "set_noaug_acc": _fractions(d, "set_noaug_acc", where, runs) if noaug else None,
            "random_noaug_acc": _fractions(d, "random_noaug_acc", where, runs) if noaug else None,
            "full_data": _obj(d, "full_data", where),
        }
        try:
            block = cls(**fields, kind=kind)
        except RecordError as exc:  # raised by __post_init__, with a field name of its own
            raise RecordError(f"{where}.{exc.field}", exc.problem) from None
        stored = d.get("scores")
        if stored is not None:  # derived numbers that disagree with their components: tampered
            for name, value in block.scores().items():
                got = stored.get(name) if isinstance(stored, Mapping) else None
                if value is None and got is None:
                    continue
                mean = got.get("mean") if isinstance(got, Mapping) else None
                if (
                    value is None
                    or isinstance(mean, bool)
                    or not isinstance(mean, (int, float))
                    or not math.isclose(mean, value["mean"], rel_tol=1e-9, abs_tol=1e-12)
                ):
                    raise RecordError(f"{where}.scores.{name}", "does not match the component accuracies")
        return block


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
    rank: RankBlock | None = None  # DD-Ranking's metrics (``harness rank``); absent in most
    wall_time_s: float | None = None
    created_at: str | None = None
    host: str | None = None
    kind: str = RECORD_KIND

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in result files and store annotations (``rank`` only when
        present, so records without it keep their exact JSON)."""
        out: dict[str, Any] = {
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
        if self.rank is not None:
            out["rank"] = self.rank.to_json()
        return out

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
        rank = d.get("rank")
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
            rank=RankBlock.from_json(rank, f"{where}.rank") if rank is not None else None,
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
        if self.rank:
            line += f"; {self.rank.text()}"
        return line

    def card_row(self) -> str:
        """A row of the card's results table (see :data:`CARD_TABLE_HEADER`)."""
        b = self.baseline
        base = f"{100 * b.mean:.2f} ± {100 * b.std:.2f}" if b else "-"
        delta = f"{100 * b.delta:+.2f}" if b else "-"
        return (
            f"| `{self.protocol_id}` | {self.protocol_field('arch')} | "
            f"{self.protocol_field('augmentation')} | {self.protocol_field('epochs')} | "
            f"{self.runs} | {self.accuracy_text()} | {base} | {delta} | "
            f"{self.rank.text() if self.rank else '-'} | {self.device} |"
        )


CARD_TABLE_HEADER = (
    "| protocol | arch | augmentation | epochs | runs | accuracy (%) | "
    "random real (%) | delta | DD-Ranking | device |\n|---|---|---|---|---|---|---|---|---|---|"
)
