"""``dc-nas``: the DC paper's Table 4 (neural architecture search on condensed sets): not makeable."""

from __future__ import annotations

from . import TABLES
from .base import TableDef

TABLE = TABLES.register(
    "dc-nas",
    TableDef(
        name="dc-nas",
        title="Neural architecture search with condensed sets (performance, rank correlation, time)",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table 4",
        template="",
        rows=(),
        columns=(),
        place=lambda e, p, part: [],
        needs="a NAS search space (720 ConvNet configurations) and a ranking-correlation evaluator, "
        "which the harness does not have",
    ),
)
