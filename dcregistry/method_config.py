"""``method_config`` of a set made by ``harness condense``, as a typed record (torch-free).

The condense loop builds a :class:`MethodConfig` and stores ``to_json()`` in the artifact's
metadata (so its JSON is part of the version digest: the fields and which of them appear are
exactly what the loop has always written). The card, ``harness condense``'s summary line and
``harness table`` read it back with :meth:`MethodConfig.from_json`.

Imported and hand-made sets keep a free-form ``method_config`` (what the file said: experiment
index, label encoding, ``soft_labels``, ``learned_lr`` ...); :func:`condense_record` tells the two
apart (a condense record carries ``config_hash``).

Which fields appear (``to_json``): the common ones always (``threads`` and ``allocator`` when
known: records older than them lack them); a selection adds ``selection_s``; a synthesis adds
``iterations``, ``s_per_iter``, ``first_iteration_s`` (null when unknown), ``init``, ``resumed``,
``loss`` and, when checked, ``quality``; ``validation`` with model selection; ``info`` when the
method recorded some (e.g. its embedding network). A record written before a field existed reads
back with that field None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .jsonfields import Fields, is_number, is_point
from .records import RecordError

KINDS = ("selection", "synthesis")


@dataclass(frozen=True)
class LossSummary:
    """A synthesis run's loss: first and last value and the (down-sampled) curve."""

    first: float | None
    last: float | None
    curve: list[list[float]]  # [[iteration, loss], ...]

    FIELDS = ("first", "last", "curve")

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "curve": [list(p) for p in self.curve]}

    @classmethod
    def from_json(cls, d: Any, where: str = "method_config.loss") -> LossSummary:
        f = Fields(d, where, cls.FIELDS)
        return cls(
            first=f.opt_number("first"),
            last=f.opt_number("last"),
            curve=f.array("curve", is_point, "[iteration, value] pairs"),
        )


@dataclass(frozen=True)
class ValidationSummary:
    """Model selection on the validation split (never the test set)."""

    curve: list[list[float]]  # [[iteration, accuracy], ...]
    best_iteration: int | None
    best_accuracy: float | None
    protocol: str | None = None  # the protocol id evaluated under
    accuracies: list[float] | None = None  # a selection: the per-run accuracies of its one set
    initial_accuracy: float | None = None  # a synthesis: the initial set's accuracy
    every: int | None = None  # a synthesis: the evaluation interval (iterations)

    FIELDS = (
        "curve",
        "best_iteration",
        "best_accuracy",
        "protocol",
        "accuracies",
        "initial_accuracy",
        "every",
    )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "curve": [list(p) for p in self.curve],
            "best_iteration": self.best_iteration,
            "best_accuracy": self.best_accuracy,
        }
        if self.accuracies is not None:
            out["accuracies"] = list(self.accuracies)
        if self.every is not None:  # a synthesis run's summary
            out["initial_accuracy"] = self.initial_accuracy
            out["every"] = self.every
        if self.protocol is not None:
            out["protocol"] = self.protocol
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "method_config.validation") -> ValidationSummary:
        f = Fields(d, where, cls.FIELDS)
        return cls(
            curve=f.array("curve", is_point, "[iteration, accuracy] pairs"),
            best_iteration=f.opt_integer("best_iteration"),
            best_accuracy=f.opt_number("best_accuracy"),
            protocol=f.opt_string("protocol"),
            accuracies=f.opt_array("accuracies", is_number, "finite numbers"),
            initial_accuracy=f.opt_number("initial_accuracy"),
            every=f.opt_integer("every"),
        )


@dataclass(frozen=True)
class LossTrendRecord:
    """Mean loss of the first and the last tenth of the iterations (``harness.methods.quality``)."""

    window: int
    first_mean: float
    last_mean: float
    rising: bool

    FIELDS = ("window", "first_mean", "last_mean", "rising")

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "first_mean": self.first_mean,
            "last_mean": self.last_mean,
            "rising": self.rising,
        }

    @classmethod
    def from_json(cls, d: Any, where: str = "method_config.quality.loss_trend") -> LossTrendRecord:
        f = Fields(d, where, cls.FIELDS)
        return cls(f.integer("window"), f.number("first_mean"), f.number("last_mean"), f.boolean("rising"))


@dataclass(frozen=True)
class QualityRecord:
    """The verdict on a synthesis run: its loss trend and, with model selection, the accuracies."""

    loss_trend: LossTrendRecord | None
    warning: str | None
    initial_accuracy: float | None = None
    best_accuracy: float | None = None

    FIELDS = ("loss_trend", "warning", "initial_accuracy", "best_accuracy")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "loss_trend": self.loss_trend.to_json() if self.loss_trend else None,
            "warning": self.warning,
        }
        if self.initial_accuracy is not None:
            out["initial_accuracy"] = self.initial_accuracy
            out["best_accuracy"] = self.best_accuracy
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "method_config.quality") -> QualityRecord:
        f = Fields(d, where, cls.FIELDS)
        trend = f.opt_mapping("loss_trend")
        return cls(
            loss_trend=LossTrendRecord.from_json(trend, f"{where}.loss_trend") if trend is not None else None,
            warning=f.opt_string("warning"),
            initial_accuracy=f.opt_number("initial_accuracy"),
            best_accuracy=f.opt_number("best_accuracy"),
        )


@dataclass(frozen=True)
class MethodConfig:
    """How ``harness condense`` made a set: the method's hashed configuration and the run's record."""

    method: str
    kind: str  # "selection" | "synthesis"
    config: dict[str, Any]  # the method's resolved Config fields (what config_hash hashes)
    config_hash: str
    model: str
    device: str  # device type: cpu | cuda | mps
    data: dict[str, Any]  # the training data the method saw (split, image count, validation, zca)
    wall_time_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    threads: int | None = None
    allocator: str | None = None  # "heap" | "system"
    # a selection
    selection_s: float | None = None
    # a synthesis
    iterations: int | None = None
    s_per_iter: float | None = None
    first_iteration_s: float | None = None
    init: dict[str, Any] | None = None  # {"init": "real" | "noise" | "selection" | "artifact", ...}
    resumed: bool | None = None
    loss: LossSummary | None = None
    quality: QualityRecord | None = None
    # either
    validation: ValidationSummary | None = None
    info: dict[str, Any] | None = None  # what the method recorded (e.g. its embedding network)

    FIELDS = (
        "method",
        "kind",
        "config",
        "config_hash",
        "model",
        "device",
        "data",
        "wall_time_s",
        "peak_memory_bytes",
        "peak_memory_kind",
        "threads",
        "allocator",
        "selection_s",
        "iterations",
        "s_per_iter",
        "first_iteration_s",
        "init",
        "resumed",
        "loss",
        "quality",
        "validation",
        "info",
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecordError("method_config.kind", f"must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        """The ``method_config`` object stored in the artifact's metadata."""
        out: dict[str, Any] = {
            "method": self.method,
            "kind": self.kind,
            "config": dict(self.config),
            "config_hash": self.config_hash,
            "model": self.model,
            "device": self.device,
            "data": dict(self.data),
            "wall_time_s": self.wall_time_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_kind": self.peak_memory_kind,
        }
        if self.kind == "selection":
            out["selection_s"] = self.selection_s
        else:
            out["iterations"] = self.iterations
            out["s_per_iter"] = self.s_per_iter
            out["first_iteration_s"] = self.first_iteration_s
            out["init"] = dict(self.init) if self.init is not None else None
            out["resumed"] = self.resumed
            out["loss"] = self.loss.to_json() if self.loss is not None else None
            if self.quality is not None:
                out["quality"] = self.quality.to_json()
        if self.validation is not None:
            out["validation"] = self.validation.to_json()
        if self.info is not None:
            out["info"] = dict(self.info)
        if self.threads is not None:
            out["threads"] = self.threads
        if self.allocator is not None:
            out["allocator"] = self.allocator
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "method_config") -> MethodConfig:
        """Parse a stored record; :class:`RecordError` names the first bad field."""
        f = Fields(d, where, cls.FIELDS)
        kind = f.string("kind")
        if kind not in KINDS:
            raise RecordError(f"{where}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        synth = kind == "synthesis"
        loss = f.mapping("loss") if synth else None
        quality = f.opt_mapping("quality")
        validation = f.opt_mapping("validation")
        if synth:
            iterations: int | None = f.integer("iterations")
            s_per_iter: float | None = f.number("s_per_iter")
            init: dict[str, Any] | None = f.mapping("init")
            resumed: bool | None = f.boolean("resumed")
            selection_s = None
        else:
            iterations = s_per_iter = init = resumed = None
            selection_s = f.number("selection_s")
        for key in ("iterations", "s_per_iter", "first_iteration_s", "init", "resumed", "loss", "quality"):
            if not synth and f.has(key):
                raise RecordError(f"{where}.{key}", "belongs to a synthesis run, not a selection")
        if synth and f.has("selection_s"):
            raise RecordError(f"{where}.selection_s", "belongs to a selection, not a synthesis run")
        return cls(
            method=f.string("method"),
            kind=kind,
            config=f.mapping("config"),
            config_hash=f.string("config_hash"),
            model=f.string("model"),
            device=f.string("device"),
            data=f.mapping("data"),
            wall_time_s=f.number("wall_time_s"),
            peak_memory_bytes=f.integer("peak_memory_bytes"),
            peak_memory_kind=f.string("peak_memory_kind"),
            threads=f.opt_integer("threads"),
            allocator=f.opt_string("allocator"),
            selection_s=selection_s,
            iterations=iterations,
            s_per_iter=s_per_iter,
            first_iteration_s=f.opt_number("first_iteration_s"),
            init=init,
            resumed=resumed,
            loss=LossSummary.from_json(loss, f"{where}.loss") if loss is not None else None,
            quality=QualityRecord.from_json(quality, f"{where}.quality") if quality is not None else None,
            validation=(
                ValidationSummary.from_json(validation, f"{where}.validation")
                if validation is not None
                else None
            ),
            info=f.opt_mapping("info"),
        )

    # --- views --------------------------------------------------------------------------------

    @property
    def init_kind(self) -> str | None:
        """How a synthesis run's images started: ``real``, ``noise``, ``selection`` (a selection
        method's set, named by ``init.method``) or ``artifact``."""
        v = (self.init or {}).get("init")
        return v if isinstance(v, str) else None

    @property
    def network(self) -> Mapping[str, Any] | None:
        """The network a selection embedded the images with (``info.embedding`` / ``info.network``)."""
        info = self.info or {}
        net = info.get("embedding") or info.get("network")
        return net if isinstance(net, Mapping) else None

    @property
    def quality_warning(self) -> str | None:
        """The run's quality warning (None when it has none)."""
        w = self.quality.warning if self.quality is not None else None
        return w or None

    @property
    def best_validation(self) -> tuple[float, int | None] | None:
        """(best validation accuracy, its iteration), when model selection ran."""
        v = self.validation
        if v is None or v.best_accuracy is None:
            return None
        return v.best_accuracy, v.best_iteration


def condense_record(mc: Any, where: str = "method_config") -> MethodConfig | None:
    """The :class:`MethodConfig` of a set made by ``harness condense``; None for an imported or
    hand-made set's free-form ``method_config`` (one without ``config_hash``). A condense record
    that does not parse raises :class:`RecordError` naming the field."""
    if not isinstance(mc, Mapping) or "config_hash" not in mc:
        return None
    return MethodConfig.from_json(mc, where)
