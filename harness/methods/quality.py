"""Did a synthesis run make its set better? The check every synthesis run ends with.

Two signals, both recorded in ``method_config["quality"]`` and turned into one warning line:

* the loss trend: the mean loss of the last tenth of the iterations against the first tenth
  (runs of at least :data:`MIN_TREND_ITERATIONS` iterations; a tenth is at least one iteration).
  Matching losses are measured on a fresh random network every iteration, so single values are
  noisy; a rising tenth-mean means the pixels moved away from what the method matches (DC at 8x8
  with a 2x2 normalisation layer was such a run);
* with model selection (``--eval-every``): the best validation accuracy against the initial
  set's, evaluated on the same split and protocol before the first iteration.

A warning never stops the run: the set is written, and the warning goes with it to the card,
``harness table`` and anything else that reads the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dcregistry.method_config import LossTrendRecord, QualityRecord, condense_record
from dcregistry.records import RecordError

MIN_TREND_ITERATIONS = 10


@dataclass(frozen=True)
class LossTrend:
    """Mean loss of the first and the last tenth of a run's iterations."""

    window: int
    first_mean: float
    last_mean: float

    @property
    def rising(self) -> bool:
        return self.last_mean > self.first_mean

    @classmethod
    def of(cls, losses: list[float]) -> LossTrend | None:
        """The trend of ``losses`` (one per iteration), or None for a run too short to have one."""
        if len(losses) < MIN_TREND_ITERATIONS or not all(math.isfinite(v) for v in losses):
            return None
        w = max(1, len(losses) // 10)
        return cls(w, sum(losses[:w]) / w, sum(losses[-w:]) / w)

    def record(self) -> LossTrendRecord:
        return LossTrendRecord(self.window, self.first_mean, self.last_mean, self.rising)

    def to_json(self) -> dict[str, Any]:
        return self.record().to_json()


@dataclass(frozen=True)
class QualityCheck:
    """The verdict on one synthesis run (``method_config["quality"]``)."""

    loss_trend: LossTrend | None
    initial_accuracy: float | None = None  # validation accuracy of the initial set
    best_accuracy: float | None = None  # best validation accuracy of the run

    @property
    def warning(self) -> str | None:
        """One line saying what went wrong, or None."""
        problems = []
        t = self.loss_trend
        if t is not None and t.rising:
            span = "iteration" if t.window == 1 else f"{t.window} iterations"
            problems.append(
                f"the loss rose (first {span}: {t.first_mean:.4g}, last {span}: {t.last_mean:.4g})"
            )
        if (
            self.initial_accuracy is not None
            and self.best_accuracy is not None
            and self.best_accuracy < self.initial_accuracy
        ):
            problems.append(
                f"the best validation accuracy {100 * self.best_accuracy:.2f} % is below the "
                f"initial set's {100 * self.initial_accuracy:.2f} %"
            )
        if not problems:
            return None
        return (
            "this set may be worse than the one it started from: "
            + "; ".join(problems)
            + "; compare it with `harness eval --baseline` before using it"
        )

    def record(self) -> QualityRecord:
        """What ``method_config.quality`` stores (:class:`dcregistry.method_config.QualityRecord`)."""
        return QualityRecord(
            loss_trend=self.loss_trend.record() if self.loss_trend else None,
            warning=self.warning,
            initial_accuracy=self.initial_accuracy,
            best_accuracy=self.best_accuracy,
        )

    def to_json(self) -> dict[str, Any]:
        return self.record().to_json()


def quality_warning(method_config: Any) -> str | None:
    """The warning recorded in an artifact's ``method_config`` (None when there is none, and for
    a record that does not parse)."""
    try:
        rec = condense_record(method_config)
    except RecordError:
        return None
    return rec.quality_warning if rec is not None else None
