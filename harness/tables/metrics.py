"""What a table position shows: test accuracy over the evaluation seeds (most tables), a cost
the condensed set's record carries (``method_config``: wall time, seconds per iteration, peak
memory; DC-Bench Table 8, DC T15; one number per set, read from the store), or a number a
derived table computes from its cells (DC Table 4's rank correlation and evaluation time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dcregistry.jsonfields import is_int
from dcregistry.leaderboard.tables import value_text
from dcregistry.method_config import MethodConfig

__all__ = ["Metric", "METRICS", "metric_value"]


@dataclass(frozen=True)
class Metric:
    """One kind of table value: its name, unit, and (for costs) how to read it from a set."""

    name: str
    unit: str
    #: the set's parsed record -> the value (None: the record does not say); None for accuracy
    read: Callable[[MethodConfig], float | None] | None = None
    #: computed by the table's ``derive`` from other cells (one number, no seeds, no record)
    derived: bool = False

    def text(self, value: float) -> str:
        """The value as the table shows it (the leaderboard's rule too: fixed decimals for
        accuracy and derived numbers, ``FIXED_DECIMALS``; significant digits for costs)."""
        return value_text(self.name, value)


def _s_per_iter(mc: MethodConfig) -> float | None:
    """Synthesis: seconds per outer iteration; K-Center: seconds per k-means iteration (DC-Bench
    Table 8 divides the selection's total time by its 300 iterations); other selections: None."""
    if mc.s_per_iter is not None:
        return mc.s_per_iter
    its = mc.config.get("max_iter")  # the method's own config: free-form, so checked here
    if mc.method == "kcenter" and is_int(its) and its > 0:
        return mc.wall_time_s / its
    return None


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", "test accuracy %"),
    "wall_s": Metric("wall_s", "condensation s", lambda mc: mc.wall_time_s),
    "s_per_iter": Metric("s_per_iter", "s / iteration", _s_per_iter),
    "peak_mb": Metric("peak_mb", "peak memory MB", lambda mc: mc.peak_memory_bytes / 2**20),
    # derived (dc-nas): a rank correlation across networks, a sum of evaluation cells' wall times
    "spearman": Metric("spearman", "Spearman rank correlation", derived=True),
    "seconds": Metric("seconds", "evaluation s", derived=True),
}


def metric_value(metric: Metric, method_config: MethodConfig) -> float | None:
    """The cost ``metric`` of a set, from its parsed ``method_config`` (None: not recorded)."""
    assert metric.read is not None, "accuracy comes from the evaluation cells"
    return metric.read(method_config)
