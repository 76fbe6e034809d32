"""What a table position shows: test accuracy over the evaluation seeds (most tables), a cost
the condensed set's record carries (``method_config``: wall time, seconds per iteration, peak
memory; DC-Bench Table 8, DC T15; one number per set, read from the store), or a number a
derived table computes from its cells (DC Table 4's rank correlation and evaluation time)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Metric", "METRICS", "metric_value"]


@dataclass(frozen=True)
class Metric:
    """One kind of table value: its name, unit, and (for costs) how to read it from a set."""

    name: str
    unit: str
    #: method_config -> the value (None: the record does not say); None for accuracy (the cells)
    read: Callable[[Mapping[str, Any]], float | None] | None = None
    digits: int = 1  # decimals of the Markdown text (costs: significant digits, see `text`)
    #: computed by the table's ``derive`` from other cells (one number, no seeds, no record)
    derived: bool = False

    def text(self, value: float) -> str:
        if self.read is None:
            return f"{value:.{self.digits}f}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _s_per_iter(mc: Mapping[str, Any]) -> float | None:
    """Synthesis: seconds per outer iteration; K-Center: seconds per k-means iteration (DC-Bench
    Table 8 divides the selection's total time by its 300 iterations); other selections: None."""
    if (v := _number(mc.get("s_per_iter"))) is not None:
        return v
    config = mc.get("config") or {}
    wall, its = _number(mc.get("wall_time_s")), _number(config.get("max_iter"))
    if mc.get("method") == "kcenter" and wall is not None and its:
        return wall / its
    return None


def _peak_mb(mc: Mapping[str, Any]) -> float | None:
    v = _number(mc.get("peak_memory_bytes"))
    return None if v is None else v / 2**20


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", "test accuracy %"),
    "wall_s": Metric("wall_s", "condensation s", lambda mc: _number(mc.get("wall_time_s"))),
    "s_per_iter": Metric("s_per_iter", "s / iteration", _s_per_iter),
    "peak_mb": Metric("peak_mb", "peak memory MB", _peak_mb),
    # derived (dc-nas): a rank correlation across networks, a sum of evaluation cells' wall times
    "spearman": Metric("spearman", "Spearman rank correlation", digits=2, derived=True),
    "seconds": Metric("seconds", "evaluation s", digits=1, derived=True),
}


def metric_value(metric: Metric, method_config: Mapping[str, Any]) -> float | None:
    """The cost ``metric`` of a set, from its ``method_config`` (None: not recorded)."""
    assert metric.read is not None, "accuracy comes from the evaluation cells"
    return metric.read(method_config)
