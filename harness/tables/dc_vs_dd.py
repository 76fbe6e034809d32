"""``dc-vs-dd``: the DC paper's Table 3 (DC vs Dataset Distillation): not makeable here."""

from __future__ import annotations

from . import TABLES
from .base import TableDef

TABLE = TABLES.register(
    "dc-vs-dd",
    TableDef(
        name="dc-vs-dd",
        title="Comparison to Dataset Distillation (DD, Wang et al. 2018)",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table 3 (and T14)",
        template="",
        rows=(),
        columns=(),
        place=lambda e, p, part: [],
        needs="an imported DD set (the harness has no DD method: import one with `dcreg import` and "
        "evaluate it with `harness eval`/`harness sweep`)",
    ),
)
